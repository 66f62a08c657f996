"""The generic roster format: one row per ASN, columns named in Indonesian.

Columns (header names are matched lower-cased; other columns are ignored):

==========  ========  ==========================================================================
column      required  meaning
==========  ========  ==========================================================================
nip         yes       18-digit NIP (spaces, dots and dashes are removed)
nama        yes       the name as HR writes it, titles included
unit        yes       Eselon I code (``PENDIS``, ``BIMAS_ISLAM``...): upper-cased, spaces ─► ``_``
email       no        empty (or ``-``) for none; trimmed and lower-cased
satker      no        work unit (Kanwil, Kankemenag, madrasah, university)
jabatan     no        position
golongan    no        rank (``III/a``)
status      no        empty means ``AKTIF``; looked up in the status table (see below)
==========  ========  ==========================================================================

Cell cleaning: every cell is trimmed and its whitespace collapsed. Invisible characters (control
characters, right-to-left and other bidi marks, zero-width characters, soft hyphens, stray BOMs)
are *removed*, and the row carries a warning naming the column: they are always a copy-paste
accident in this data and never meaningful, and removing them also defuses names that would
display reversed. A cell holding only ``-`` (the usual "nothing" in these sheets) is empty.

Statuses: the ``status`` cell is looked up in a
:class:`~moodle_bridge.roster.statuses.StatusTable` (the shipped ``mappings/statuses.csv``
unless one is given), with the overrides of the row's unit. ``yes`` gives an active person,
``no`` an inactive one, ``left_unit`` an inactive person with ``left_unit`` set. A status the
table does not know gives an :class:`~moodle_bridge.roster.person.UnknownStatus`: the row is set
aside with a warning, never refused, and the person is kept as they are.

Each row gives a :class:`~moodle_bridge.roster.person.Person` or one
:class:`~moodle_bridge.roster.person.RowError` (the first problem, in the order nip, nama, unit,
email, status), whose ``nip`` is set whenever the NIP cell could be read, whatever else is
wrong. :func:`read_generic_roster` also settles duplicate NIPs: rows that are identical after
cleaning count once (with a warning); rows that differ are all refused, each error naming
every row, because choosing one would be a guess. The result's ``kept`` names every NIP whose
row could not be used, and ``untied`` counts the refused rows whose NIP could not be read.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import NamedTuple, TypeVar

from moodle_bridge.i18n import N_, _, current_language, ngettext
from moodle_bridge.roster.names import InvalidName, MononymRule, split_name
from moodle_bridge.roster.nip import NipResult, normalise_nip
from moodle_bridge.roster.person import Person, RowError, UnknownStatus
from moodle_bridge.roster.sources import SourceRow, read_rows
from moodle_bridge.roster.statuses import (
    Meaning,
    StatusTable,
    normalise_status,
    shipped_statuses,
)

__all__ = [
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "ROW_COLUMN",
    "Outcome",
    "RosterResult",
    "collect_outcomes",
    "normalise_email",
    "parse_generic_row",
    "read_generic_roster",
]

REQUIRED_COLUMNS: tuple[str, ...] = ("nip", "nama", "unit")
COLUMNS: tuple[str, ...] = (
    "nip", "nama", "email", "unit", "satker", "jabatan", "golongan", "status",
)  # fmt: skip
#: The ``column`` of a RowError about the whole row rather than one cell.
ROW_COLUMN = "(row)"

# Controls other than the whitespace ones (\t \n \v \f \r), which are collapsed like spaces.
# Printable ASCII words separated by single spaces: nothing to clean (the common case).
_CLEAN_ASCII = re.compile(r"(?:[!-~]+(?: [!-~]+)*)?")
_ASCII_INVISIBLE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
#: Control characters and Unicode's default-ignorable code points (bidi marks, zero-width
#: characters, the combining grapheme joiner, Hangul fillers, variation selectors, tag
#: characters): they display as nothing, so a name made of them would look blank in Moodle.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5"
    "\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f"
    "\ufeff\uffa0\ufff0-\ufffb\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e0fff]"
)
_PLACEHOLDER = re.compile(r"[-\u2013\u2014]+")
_UNIT = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_LOCAL = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_EMAIL = re.compile(rf"{_LOCAL}(?:\.{_LOCAL})*@{_LABEL}(?:\.{_LABEL})+")
#: Moodle's ``email`` column holds 100 characters.
MAX_EMAIL = 100


@dataclass(slots=True)
class RosterResult:
    """What a roster file gave: accepted ``people``, refused rows (``errors``), ``warnings``.

    ``warnings`` repeats each accepted person's warnings as a RowError (with its column) and
    adds the file-level findings: duplicate rows counted once, emails shared by several people,
    rows set aside for an unknown status (:class:`~moodle_bridge.roster.person.UnknownStatus`).
    """

    people: list[Person] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)
    #: Non-empty data rows read.
    rows: int = 0
    #: NIP -> why the row listing it could not be used: a refused row whose NIP could be read,
    #: an unknown status, conflicting duplicate rows (the first such row of the NIP). Those
    #: people's accounts, memberships and enrolments must stay exactly as they are. No NIP
    #: here is also among ``people``.
    kept: dict[str, RowError] = field(default_factory=dict)
    #: Refused rows whose NIP could not be read at all: they cannot be tied to anyone.
    untied: int = 0


def _clean(value: str) -> tuple[str, bool]:
    """Trim, collapse whitespace, drop invisible characters; True when any were dropped."""
    if _CLEAN_ASCII.fullmatch(value):
        return value, False
    if value.isascii():
        if _ASCII_INVISIBLE.search(value) is None:
            return " ".join(value.split()), False
        return " ".join(_ASCII_INVISIBLE.sub("", value).split()), True
    dropped = _INVISIBLE.search(value) is not None
    if dropped:
        value = _INVISIBLE.sub("", value)
    return unicodedata.normalize("NFC", " ".join(value.split())), dropped


def normalise_email(raw: str) -> tuple[str | None, str | None]:
    """``(email, None)`` for a valid address (lower case), ``(None, None)`` for an empty cell,
    ``(None, reason)`` for an invalid one. The reason never repeats the address."""
    email = raw.strip().lower()
    if not email or _PLACEHOLDER.fullmatch(email):
        return None, None
    if _EMAIL.fullmatch(email):
        if len(email) > MAX_EMAIL:
            return None, _("The email address is longer than {most} characters").format(
                most=MAX_EMAIL
            )
        return email, None
    if email.count("@") != 1:
        return None, _("An email address has exactly one @ (one address per cell)")
    if any(ch.isspace() for ch in email):
        return None, _("The email address contains a space")
    if not email.isascii():
        return None, _("The email address contains letters Moodle does not accept (use a-z, 0-9)")
    return None, _("Not a valid email address (expected name@domain.tld)")


_INVISIBLE_REMOVED = N_("Invisible characters (control or right-to-left marks) were removed")
_EXTRA_CELLS = N_(
    "The row has {count} more cell(s) than the header has columns; a comma or semicolon inside "
    "an unquoted cell (such as a name with titles) shifts the columns: quote that cell or "
    "remove the extra cells"
)
_UNKNOWN_STATUS = N_(
    "Unknown status {status!r}: this row was not used and the person's account is left as it "
    "is. Add the status to mappings/statuses.csv (or mappings/statuses/{unit}.csv for this unit "
    "only) to say whether it means active"
)
#: How HR corrects a row, per column of the generic format (the NIP's fixes come with it).
_FIXES = {
    "nama": N_(
        "Write the person's name as in SIASN (titles may stay); each part of the name at most "
        "100 characters, without < or >."
    ),
    "unit": N_("Write the Eselon I unit code, such as PENDIS or BIMAS_ISLAM."),
    "email": N_("Write one valid email address (name@domain), or leave the cell empty."),
    "status": N_(
        "Correct the status (such as AKTIF or PENSIUN), or ask the bridge's administrator to add "
        "it to the status table."
    ),
}
_FIX_EXTRA_CELLS = N_(
    "Put the cell that holds a comma or semicolon in quotes, or remove the extra cells, and "
    "export the file again."
)
_FIX_DUPLICATE = N_("Keep one correct row per person and delete the others.")
#: Unknown statuses longer than this are shown cut, with "...".
_STATUS_SHOWN = 40
_NO_WARNINGS: tuple[tuple[str | None, str], ...] = ()
#: Distinct values remembered per repeated column before the memo starts again.
_MEMO_LIMIT = 100_000

#: A parsed row and its warnings as ``(column, reason)``.
Outcome = tuple[Person | RowError, tuple[tuple[str | None, str], ...]]


class _Problem(NamedTuple):
    column: str
    reason: str
    #: The cell as written.
    value: str
    #: Set for an unknown status (the normalised status): the row is set aside, not refused.
    unknown_status: str | None = None


class _Fields(NamedTuple):
    unit: str
    status: str
    meaning: Meaning
    email: str | None
    satker: str
    jabatan: str
    golongan: str


class _RowParser:
    """Parses rows of one file. Columns whose values repeat across the file (unit, satker,
    jabatan, golongan, status) are cleaned once per distinct value: that keeps 230,000 rows
    fast and lets equal values share one string in memory. Its memos hold text in the
    language of the moment, so a parser serves one language only."""

    def __init__(
        self,
        source: str,
        *,
        mononym: MononymRule,
        marker: str,
        statuses: StatusTable,
        today: date | None,
    ) -> None:
        # Fail on a bad naming setting now, not on every row.
        split_name("Setting Check", mononym=mononym, marker=marker)
        self.source = source
        self.mononym: MononymRule = mononym
        self.marker = marker
        self.statuses = statuses
        self.today = today or date.today()
        self._optional_memo: dict[str, tuple[str, bool]] = {}
        self._unit_memo: dict[str, tuple[str, str | None, bool]] = {}
        self._status_memo: dict[str, tuple[str, bool]] = {}

    def _optional(self, raw: str) -> tuple[str, bool]:
        hit = self._optional_memo.get(raw)
        if hit is None:
            value, dropped = _clean(raw)
            hit = ("" if _PLACEHOLDER.fullmatch(value) else value, dropped)
            _remember(self._optional_memo, raw, hit)
        return hit

    def _unit(self, raw: str) -> tuple[str, str | None, bool]:
        hit = self._unit_memo.get(raw)
        if hit is None:
            value, dropped = _clean(raw)
            unit = value.upper().replace(" ", "_")
            error: str | None = None
            if not unit:
                error = _("The unit is empty (an Eselon I code such as PENDIS)")
            elif not _UNIT.fullmatch(unit):
                error = _(
                    "The unit must be a code of letters, digits and _ such as PENDIS or BIMAS_ISLAM"
                )
            hit = _remember(self._unit_memo, raw, (unit, error, dropped))
        return hit

    def _status(self, raw: str) -> tuple[str, bool]:
        """The normalised status (``AKTIF`` for an empty cell) and whether characters were
        dropped."""
        hit = self._status_memo.get(raw)
        if hit is None:
            value, dropped = _clean(raw)
            hit = _remember(self._status_memo, raw, (normalise_status(value) or "AKTIF", dropped))
        return hit

    def parse(self, row: SourceRow) -> Outcome:
        """The outcome of one row and its warnings as ``(column, reason)``."""
        source, number = self.source, row.row
        values = row.values
        warnings: list[tuple[str, str]] = []
        raw_nip, dropped = _clean(values.get("nip", ""))
        if dropped:
            warnings.append(("nip", _(_INVISIBLE_REMOVED)))
        checked = normalise_nip(raw_nip, today=self.today)
        nip = checked.nip
        if row.extra or nip is None:
            return self._refused(row, nip, checked), ()
        if checked.warnings:
            warnings.extend(("nip", warning) for warning in checked.warnings)

        display, dropped = _clean(values.get("nama", ""))
        if dropped:
            warnings.append(("nama", _(_INVISIBLE_REMOVED)))
        try:
            firstname, lastname = split_name(display, mononym=self.mononym, marker=self.marker)
        except InvalidName as exc:
            fields: _Fields | _Problem = _Problem("nama", exc.reason, display)
        else:
            fields = self._rest(values, warnings)
        if isinstance(fields, _Problem):
            column, reason, value, unknown = fields
            found = {
                "source": source, "row": number, "column": column, "reason": reason, "nip": nip,
                "value": value, "fix": _(_FIXES[column]),
            }  # fmt: skip
            if unknown is not None:
                return UnknownStatus(**found, status=unknown), ()
            return RowError(**found), ()
        person = _person(nip, (display, firstname, lastname), fields, (source, number), warnings)
        return person, (tuple(warnings) if warnings else _NO_WARNINGS)

    def _refused(self, row: SourceRow, nip: str | None, checked: NipResult) -> RowError:
        """The refusal of a row with cells beyond the header, or with no usable NIP."""
        if row.extra:
            return RowError(
                source=self.source,
                row=row.row,
                column=ROW_COLUMN,
                reason=_(_EXTRA_CELLS).format(count=len(row.extra)),
                nip=nip,
                value=", ".join(row.extra),
                fix=_(_FIX_EXTRA_CELLS),
            )
        return RowError(
            source=self.source,
            row=row.row,
            column="nip",
            reason=checked.error or _("The NIP is not valid"),
            value=row.values.get("nip", ""),
            fix=checked.fix or "",
        )

    def _rest(self, values: dict[str, str], warnings: list[tuple[str, str]]) -> _Fields | _Problem:
        """Check unit, email, status and the optional columns: their values or the first
        problem."""
        get = values.get
        unit, error, dropped = self._unit(get("unit", ""))
        if dropped:
            warnings.append(("unit", _(_INVISIBLE_REMOVED)))
        if error is not None:
            return _Problem("unit", error, get("unit", ""))

        raw_email, dropped = _clean(get("email", ""))
        if dropped:
            warnings.append(("email", _(_INVISIBLE_REMOVED)))
        email, error = normalise_email(raw_email)
        if error is not None:
            return _Problem("email", error, raw_email)

        status, dropped = self._status(get("status", ""))
        if dropped:
            warnings.append(("status", _(_INVISIBLE_REMOVED)))
        meaning = self.statuses.meanings(unit).get(status)
        if meaning is None:
            shown = status if len(status) <= _STATUS_SHOWN else status[:_STATUS_SHOWN] + "..."
            reason = _(_UNKNOWN_STATUS).format(status=shown, unit=unit)
            return _Problem("status", reason, get("status", ""), status)

        satker, dropped = self._optional(get("satker", ""))
        if dropped:
            warnings.append(("satker", _(_INVISIBLE_REMOVED)))
        jabatan, dropped = self._optional(get("jabatan", ""))
        if dropped:
            warnings.append(("jabatan", _(_INVISIBLE_REMOVED)))
        golongan, dropped = self._optional(get("golongan", ""))
        if dropped:
            warnings.append(("golongan", _(_INVISIBLE_REMOVED)))
        return _Fields(unit, status, meaning, email, satker, jabatan, golongan)


_T = TypeVar("_T")


def _remember(memo: dict[str, _T], raw: str, value: _T) -> _T:
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[raw] = value
    return value


def parse_generic_row(
    source_name: str,
    row: SourceRow,
    *,
    mononym: MononymRule = "repeat",
    marker: str = ".",
    statuses: StatusTable | None = None,
    today: date | None = None,
) -> Person | RowError:
    """Turn one row of the generic format into a Person, or the RowError of its first problem
    (an :class:`~moodle_bridge.roster.person.UnknownStatus` when only the status is unknown).

    ``mononym``/``marker`` choose how a one-word name is split (see
    :func:`~moodle_bridge.roster.names.split_name`); ``statuses`` is the status table (None:
    :func:`~moodle_bridge.roster.statuses.shipped_statuses`); ``today`` bounds the NIP's dates.
    Never raises for bad data; raises :class:`ValueError` for a bad ``mononym``/``marker``
    setting.
    """
    day = today or date.today()
    table = shipped_statuses() if statuses is None else statuses
    key = (source_name, mononym, marker, day, table, current_language())
    parser = _PARSERS.get(key)
    if parser is None:
        parser = _RowParser(source_name, mononym=mononym, marker=marker, statuses=table, today=day)
        if len(_PARSERS) >= _PARSERS_KEPT:
            _PARSERS.clear()
        _PARSERS[key] = parser
    return parser.parse(row)[0]


# Plugins call parse_generic_row once per row: reuse the parser (and its memos) per file and
# language.
_PARSERS: dict[tuple[str, str, str, date, StatusTable, str], _RowParser] = {}
_PARSERS_KEPT = 32


def _content(person: Person) -> tuple[object, ...]:
    return (
        person.nip,
        person.display_name,
        person.firstname,
        person.lastname,
        person.email,
        person.unit,
        person.satker,
        person.jabatan,
        person.golongan,
        person.active,
        person.left_unit,
        person.status,
    )


#: Row numbers listed in one message; a longer list ends with "and N more".
_ROWS_SHOWN = 10


def _rows_text(rows: Iterable[int]) -> str:
    numbers = [str(r) for r in sorted(rows)]
    if len(numbers) > _ROWS_SHOWN:
        shown = ", ".join(numbers[:_ROWS_SHOWN])
        # Translators: a list of row numbers cut short: "2, 3, 5 and 4 more".
        return _("{rows} and {count} more").format(rows=shown, count=len(numbers) - _ROWS_SHOWN)
    if len(numbers) == 1:
        return numbers[0]
    # Translators: the end of a list of row numbers: "2, 3 and 5".
    return _("{rows} and {last}").format(rows=", ".join(numbers[:-1]), last=numbers[-1])


def read_generic_roster(
    path: str | Path,
    *,
    source_name: str | None = None,
    mononym: MononymRule = "repeat",
    marker: str = ".",
    statuses: StatusTable | None = None,
    today: date | None = None,
) -> RosterResult:
    """Read a whole roster file in the generic format.

    ``source_name`` (default: the file name) is what errors call the file; ``statuses`` is the
    status table (None: the shipped one), the other options are those of
    :func:`parse_generic_row`. Raises
    :class:`~moodle_bridge.roster.sources.MissingColumn` when ``nip``, ``nama`` or ``unit`` is
    not in the header, and another :class:`~moodle_bridge.roster.sources.SourceError` when the
    file cannot be read at all; every problem of a single row is a RowError in the result.
    """
    p = Path(path)
    source = source_name or p.name
    table = shipped_statuses() if statuses is None else statuses
    parser = _RowParser(source, mononym=mononym, marker=marker, statuses=table, today=today)
    rows = read_rows(p, required=REQUIRED_COLUMNS, columns=COLUMNS)
    return collect_outcomes(source, (parser.parse(row) for row in rows))


def _person(
    nip: str,
    names: tuple[str, str, str],
    fields: _Fields,
    where: tuple[str, int],
    warnings: list[tuple[str, str]],
) -> Person:
    display, firstname, lastname = names
    unit, status, meaning, email, satker, jabatan, golongan = fields
    return Person(
        nip=nip,
        display_name=display,
        firstname=firstname,
        lastname=lastname,
        email=email,
        unit=unit,
        satker=satker,
        jabatan=jabatan,
        golongan=golongan,
        active=meaning == "yes",
        left_unit=meaning == "left_unit",
        status=status,
        source=where[0],
        row=where[1],
        warnings=tuple(reason for _column, reason in warnings) if warnings else (),
    )


def collect_outcomes(
    source_name: str, outcomes: Iterable[Person | RowError | Outcome]
) -> RosterResult:
    """Gather the parsed rows of one file into a :class:`RosterResult`, the way
    :func:`read_generic_roster` does: for unit plugins that map rows themselves.

    Each item is a Person or a RowError, or a pair ``(outcome, ((column, reason), ...))`` that
    names the column of each of a person's warnings (a bare Person's warnings get column
    ``None``). Duplicate NIPs are settled: rows identical after cleaning count once, with a
    warning; rows that differ are all refused. Emails shared by several people are warnings.
    An :class:`~moodle_bridge.roster.person.UnknownStatus` goes to the warnings, every other
    RowError to the errors; each unused row's NIP goes to ``kept``, or counts in ``untied``
    when it has none.
    """
    result = RosterResult()
    staged, repeated_nips = _stage(outcomes)
    result.rows = len(staged)
    # Duplicate NIPs: settle each group once, replacing outcomes in place.
    dropped: set[int] = set()
    for indexes in repeated_nips.values():
        _settle_duplicates(source_name, staged, indexes, dropped, result.warnings)
    emails = _sort_outcomes(source_name, staged, dropped, result)
    for email, sharing in emails.items():
        result.warnings.extend(_shared_email(source_name, email, sharing))
    result.warnings.sort(key=lambda w: w.row)
    return result


def _stage(
    outcomes: Iterable[Person | RowError | Outcome],
) -> tuple[list[Outcome], dict[str, list[int]]]:
    """Each item as an outcome with its warnings, and the indexes of every NIP seen twice."""
    staged: list[Outcome] = []
    # Most NIPs are unique: remember the first index, list the rest only on a clash.
    first_of_nip: dict[str, int] = {}
    repeated_nips: dict[str, list[int]] = {}
    for item in outcomes:
        parsed: Outcome
        if isinstance(item, tuple):
            parsed = item
        elif isinstance(item, Person) and item.warnings:
            parsed = (item, tuple((None, w) for w in item.warnings))
        else:
            parsed = (item, _NO_WARNINGS)
        nip = parsed[0].nip
        if nip is not None:
            first = first_of_nip.setdefault(nip, len(staged))
            if first != len(staged):
                repeated_nips.setdefault(nip, [first]).append(len(staged))
        staged.append(parsed)
    return staged, repeated_nips


def _sort_outcomes(
    source_name: str, staged: list[Outcome], dropped: set[int], result: RosterResult
) -> dict[str, list[Person]]:
    """People, refusals, warnings, kept and untied rows into ``result``; returns the emails
    given by more than one person."""
    first_of_email: dict[str, Person] = {}
    emails: dict[str, list[Person]] = {}
    people, errors, kept = result.people, result.errors, result.kept
    for i, (outcome, warnings) in enumerate(staged):
        if isinstance(outcome, RowError):
            (result.warnings if isinstance(outcome, UnknownStatus) else errors).append(outcome)
            if outcome.nip is None:
                result.untied += 1
            elif outcome.nip not in kept:
                kept[outcome.nip] = outcome
            continue
        if dropped and i in dropped:
            continue
        people.append(outcome)
        if warnings:
            result.warnings.extend(
                RowError(source=source_name, row=outcome.row, column=c, reason=w, nip=outcome.nip)
                for c, w in warnings
            )
        email = outcome.email
        if email is not None:
            other = first_of_email.setdefault(email, outcome)
            if other is not outcome:
                emails.setdefault(email, [other]).append(outcome)
    return emails


def _shared_email(source_name: str, email: str, sharing: list[Person]) -> list[RowError]:
    reason = _(
        "Rows {rows} have the same email address; Moodle refuses this unless the site allows "
        "accounts with the same email"
    ).format(rows=_rows_text(p.row for p in sharing))
    return [
        RowError(
            source=source_name,
            row=person.row,
            column="email",
            reason=reason,
            nip=person.nip,
            value=email,
        )
        for person in sharing
    ]


def _settle_duplicates(
    source: str,
    outcomes: list[Outcome],
    indexes: list[int],
    dropped: set[int],
    warnings: list[RowError],
) -> None:
    group = [outcomes[i][0] for i in indexes]
    rows = [o.row for o in group]
    people = [o for o in group if isinstance(o, Person)]
    if len(people) == len(group) and len({_content(p) for p in people}) == 1:
        first = people[0]
        for i, person in zip(indexes[1:], people[1:], strict=True):
            dropped.add(i)
            warnings.append(
                RowError(
                    source=source,
                    row=person.row,
                    column="nip",
                    reason=_("Row {row} repeats row {first} exactly; counted once").format(
                        row=person.row, first=first.row
                    ),
                    nip=person.nip,
                    value=person.nip,
                )
            )
        return
    if len(people) == len(group):
        reason = _(
            "The same NIP is on rows {rows} with different data; none of these rows was used: "
            "keep one row per person"
        ).format(rows=_rows_text(rows))
    else:
        failed = [o.row for o in group if isinstance(o, RowError)]
        # Translators: completes "The same NIP is on rows {rows}, and {which}".
        which = ngettext(
            "row {rows} has its own error", "rows {rows} have their own errors", len(failed)
        ).format(rows=_rows_text(failed))
        reason = _(
            "The same NIP is on rows {rows}, and {which}; none of these rows was used: keep one "
            "correct row per person"
        ).format(rows=_rows_text(rows), which=which)
    for i, outcome in zip(indexes, group, strict=True):
        if isinstance(outcome, Person):
            outcomes[i] = (
                RowError(
                    source=source,
                    row=outcome.row,
                    column="nip",
                    reason=reason,
                    nip=outcome.nip,
                    value=outcome.nip,
                    fix=_(_FIX_DUPLICATE),
                ),
                (),
            )
