"""The NIP (Nomor Induk Pegawai): clean what HR typed, refuse what cannot be trusted.

A PNS NIP is 18 digits: birth date ``YYYYMMDD``, CPNS appointment ``YYYYMM``, sex ``1``/``2``
and a 3-digit sequence (Perka BKN 22/2007). PPPK numbers are also 18 digits and start with the
birth date, but their middle is laid out differently, so a middle that does not read as a CPNS
appointment is accepted with a warning, never refused (see ``DOMAIN.md``).

What is refused (``NipResult.error``): Excel's scientific notation (the digits are gone), letters,
non-ASCII digits, anything but 18 digits, a birth date that is not a real past date, and an
appointment month that reads as a real month but falls before the 17th birthday. Reasons never
repeat the NIP itself: they end up in reports and logs, where NIPs must be masked.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import Literal, NamedTuple

__all__ = [
    "MIN_APPOINTMENT_AGE",
    "MIN_BIRTH_YEAR",
    "NipResult",
    "mask_nip",
    "normalise_nip",
]

#: Birth years before this are treated as typing errors.
MIN_BIRTH_YEAR = 1900
#: A CPNS appointment before the 17th birthday cannot be right.
MIN_APPOINTMENT_AGE = 17
#: How far in the future an appointment month may lie (NIPs are issued before the TMT date).
_APPOINTMENT_SLACK_MONTHS = 12

# HR writes "19750101 200003 1 001", "19750101.200003.1.001" or "19750101-200003-1-001", and
# sometimes "NIP. 1975..." or Excel's text prefix "'1975...". Unicode spaces and dashes too.
_LABEL = re.compile(r"^\s*(?:nip\b\s*[.:]?\s*)?'?", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s.\-\u2010-\u2015\u2212]+")
_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:[.,]\d*)?\s*[eE]\s*[+-]?\d+$")
# "197501012000031008.0": a spreadsheet number printed in full; past 15 digits it is not exact.
_DECIMAL_NUMBER = re.compile(r"^\d{15,}[.,]\d+$")
_ASCII_DIGITS = re.compile(r"[0-9]{18}")
# The usual shapes ("197501012000031001", "19750101 200003 1 001"), without the general cleanup.
_COMMON = re.compile(r"\s*([0-9]{8})[ .\-]?([0-9]{6})[ .\-]?([0-9])[ .\-]?([0-9]{3})\s*")

_SEX: dict[str, Literal["M", "F"]] = {"1": "M", "2": "F"}

_SCIENTIFIC_REASON = (
    "Excel turned the NIP into a number; the digits are lost: export the column as text"
)


class NipResult(NamedTuple):
    """The outcome of :func:`normalise_nip`.

    Exactly one of ``nip`` (the 18 digits) and ``error`` (why the value was refused, in plain
    words) is set. ``warnings`` holds findings that do not stop the row. ``kind`` is ``"PNS"``
    when the middle reads as a CPNS appointment, ``"PPPK"`` when it does not.
    """

    nip: str | None
    error: str | None = None
    warnings: tuple[str, ...] = ()
    kind: Literal["PNS", "PPPK"] | None = None
    birth_date: date | None = None
    #: ``(year, month)`` of the CPNS appointment, for ``kind == "PNS"``.
    appointment: tuple[int, int] | None = None
    #: ``"M"`` or ``"F"`` from the 15th digit, for ``kind == "PNS"``.
    sex: Literal["M", "F"] | None = None

    @property
    def ok(self) -> bool:
        """True when the NIP was accepted (possibly with warnings)."""
        return self.nip is not None


def _refuse(reason: str) -> NipResult:
    return NipResult(nip=None, error=reason)


def mask_nip(nip: str) -> str:
    """Mask a NIP for logs (``1975************01``), as UU PDP asks; short values are starred."""
    if len(nip) <= 6:
        return "*" * len(nip)
    return nip[:4] + "*" * (len(nip) - 6) + nip[-2:]


def normalise_nip(raw: str, *, today: date | None = None) -> NipResult:
    """Clean and check one NIP as HR wrote it.

    Spaces, dots, dashes, a leading ``NIP.`` label and Excel's ``'`` text prefix are removed.
    ``today`` (default: the current date) bounds the birth and appointment dates; pass it when
    checking many NIPs.
    Never raises on bad input: the reason is in the result.
    """
    common = _COMMON.fullmatch(raw)
    if common is not None:
        digits = "".join(common.groups())
    else:
        text = _LABEL.sub("", raw, count=1).strip()
        if not text:
            return _refuse("The NIP is empty")
        if _SCIENTIFIC.match(text) or _DECIMAL_NUMBER.match(text):
            return _refuse(_SCIENTIFIC_REASON)
        digits = _SEPARATORS.sub("", text)
        if len(digits) != 18 or not _ASCII_DIGITS.fullmatch(digits):
            return _refuse(_shape_reason(digits))

    born = _birth_date(digits[:8])
    if isinstance(born, str):
        return _refuse(born)
    today = today or date.today()
    if born > today:
        return _refuse(f"The birth date in the NIP ({born.isoformat()}) is in the future")
    return _check_middle(digits, born, today)


@lru_cache(maxsize=65536)
def _birth_date(text: str) -> date | str:
    """The birth date of the first 8 digits, or why they are not one (cached: ~30,000 exist)."""
    year, month, day = int(text[0:4]), int(text[4:6]), int(text[6:8])
    try:
        born = date(year, month, day)
    except ValueError:
        return (
            f"The first 8 digits of the NIP must be the birth date (YYYYMMDD); "
            f"{text[0:4]}-{text[4:6]}-{text[6:8]} is not a real date"
        )
    if year < MIN_BIRTH_YEAR:
        return f"The birth year in the NIP ({year}) is before {MIN_BIRTH_YEAR}: check the number"
    return born


def _shape_reason(digits: str) -> str:
    for ch in digits:
        if ch.isdigit() and not ch.isascii():
            return (
                "The NIP contains digits that are not the plain digits 0-9 "
                "(for example Arabic-Indic or full-width digits): retype it with 0-9"
            )
    for ch in digits:
        if not ("0" <= ch <= "9"):
            shown = ch if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X}"
            return f"The NIP may contain only digits; it contains '{shown}'"
    return f"The NIP must have exactly 18 digits; this one has {len(digits)}"


def _check_middle(digits: str, born: date, today: date) -> NipResult:
    # Months are compared as year * 12 + month.
    year, month = int(digits[8:12]), int(digits[12:14])
    sex_digit = digits[14]
    appointed = year * 12 + month
    earliest = (born.year + MIN_APPOINTMENT_AGE) * 12 + born.month
    latest = today.year * 12 + today.month + _APPOINTMENT_SLACK_MONTHS

    problem: str
    if not 1 <= month <= 12:
        problem = f"digits 9-14 ({digits[8:12]}-{digits[12:14]}) are not a real appointment month"
    elif appointed < earliest:
        # The middle reads as a real month, so it is what it says: an appointment before the
        # 17th birthday is an error in the number, PNS or PPPK alike.
        return _refuse(
            f"The appointment date in the NIP ({digits[8:12]}-{digits[12:14]}, digits 9-14) is "
            f"less than {MIN_APPOINTMENT_AGE} years after the birth date (digits 1-8): "
            "check the number"
        )
    elif appointed > latest:
        problem = (
            f"digits 9-14 ({digits[8:12]}-{digits[12:14]}) are an appointment month "
            "too far in the future"
        )
    elif sex_digit == "1" or sex_digit == "2":
        return NipResult(digits, None, (), "PNS", born, (year, month), _SEX[sex_digit])
    else:
        problem = f"digit 15 is {sex_digit}, where a PNS NIP has 1 (male) or 2 (female)"
    warning = (
        f"The NIP does not have the PNS layout ({problem}); it was accepted as a PPPK number. "
        "If this person is a PNS, check the NIP"
    )
    return NipResult(nip=digits, warnings=(warning,), kind="PPPK", birth_date=born)
