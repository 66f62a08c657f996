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

from moodle_bridge.i18n import N_, _

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

_SCIENTIFIC_REASON = N_(
    "Excel turned the NIP into a number; the digits are lost: export the column as text"
)
#: How HR corrects each kind of refused NIP, for the HR error file.
_FIX_EMPTY = N_("Fill in the person's 18-digit NIP.")
_FIX_NUMBER = N_(
    "Format the NIP column as Text in Excel, type the 18 digits again and export the file again."
)
_FIX_DIGITS = N_("Type the NIP again as 18 plain digits 0-9, without letters or other signs.")
_FIX_CHECK = N_("Check the NIP against the person's SK or SIASN data and correct it.")


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
    #: With ``error``: how HR corrects the NIP, in a short sentence.
    fix: str | None = None

    @property
    def ok(self) -> bool:
        """True when the NIP was accepted (possibly with warnings)."""
        return self.nip is not None


def _refuse(reason: str, fix: str) -> NipResult:
    """A refusal; ``reason`` is translated already, ``fix`` is a marked message id."""
    return NipResult(nip=None, error=reason, fix=_(fix))


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
            return _refuse(_("The NIP is empty"), _FIX_EMPTY)
        if _SCIENTIFIC.match(text) or _DECIMAL_NUMBER.match(text):
            return _refuse(_(_SCIENTIFIC_REASON), _FIX_NUMBER)
        digits = _SEPARATORS.sub("", text)
        if len(digits) != 18 or not _ASCII_DIGITS.fullmatch(digits):
            return _refuse(_shape_reason(digits), _FIX_DIGITS)

    born = _birth_date(digits[:8])
    if born is None:
        return _refuse(
            _(
                "The first 8 digits of the NIP must be the birth date (YYYYMMDD); "
                "{year}-{month}-{day} is not a real date"
            ).format(year=digits[0:4], month=digits[4:6], day=digits[6:8]),
            _FIX_CHECK,
        )
    if born.year < MIN_BIRTH_YEAR:
        return _refuse(
            _("The birth year in the NIP ({year}) is before {earliest}: check the number").format(
                year=born.year, earliest=MIN_BIRTH_YEAR
            ),
            _FIX_CHECK,
        )
    today = today or date.today()
    if born > today:
        return _refuse(
            _("The birth date in the NIP ({date}) is in the future").format(date=born.isoformat()),
            _FIX_CHECK,
        )
    return _check_middle(digits, born, today)


@lru_cache(maxsize=65536)
def _birth_date(text: str) -> date | None:
    """The date of the first 8 digits, None when they are no real date (cached: ~30,000 exist).

    Only dates are cached, never text: the reasons are in the language of the moment.
    """
    try:
        return date(int(text[0:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def _shape_reason(digits: str) -> str:
    for ch in digits:
        if ch.isdigit() and not ch.isascii():
            return _(
                "The NIP contains digits that are not the plain digits 0-9 "
                "(for example Arabic-Indic or full-width digits): retype it with 0-9"
            )
    for ch in digits:
        if not ("0" <= ch <= "9"):
            shown = ch if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X}"
            return _("The NIP may contain only digits; it contains '{character}'").format(
                character=shown
            )
    return _("The NIP must have exactly 18 digits; this one has {count}").format(count=len(digits))


def _check_middle(digits: str, born: date, today: date) -> NipResult:
    # Months are compared as year * 12 + month.
    year, month = int(digits[8:12]), int(digits[12:14])
    sex_digit = digits[14]
    appointed = year * 12 + month
    earliest = (born.year + MIN_APPOINTMENT_AGE) * 12 + born.month
    latest = today.year * 12 + today.month + _APPOINTMENT_SLACK_MONTHS

    warning: str
    if not 1 <= month <= 12:
        warning = _(
            "The NIP does not have the PNS layout (digits 9-14 ({year}-{month}) are not a real "
            "appointment month); it was accepted as a PPPK number. If this person is a PNS, "
            "check the NIP"
        ).format(year=digits[8:12], month=digits[12:14])
    elif appointed < earliest:
        # The middle reads as a real month, so it is what it says: an appointment before the
        # 17th birthday is an error in the number, PNS or PPPK alike.
        return _refuse(
            _(
                "The appointment date in the NIP ({year}-{month}, digits 9-14) is less than "
                "{age} years after the birth date (digits 1-8): check the number"
            ).format(year=digits[8:12], month=digits[12:14], age=MIN_APPOINTMENT_AGE),
            _FIX_CHECK,
        )
    elif appointed > latest:
        warning = _(
            "The NIP does not have the PNS layout (digits 9-14 ({year}-{month}) are an "
            "appointment month too far in the future); it was accepted as a PPPK number. If "
            "this person is a PNS, check the NIP"
        ).format(year=digits[8:12], month=digits[12:14])
    elif sex_digit == "1" or sex_digit == "2":
        return NipResult(digits, None, (), "PNS", born, (year, month), _SEX[sex_digit])
    else:
        warning = _(
            "The NIP does not have the PNS layout (digit 15 is {digit}, where a PNS NIP has 1 "
            "(male) or 2 (female)); it was accepted as a PPPK number. If this person is a PNS, "
            "check the NIP"
        ).format(digit=sex_digit)
    return NipResult(nip=digits, warnings=(warning,), kind="PPPK", birth_date=born)
