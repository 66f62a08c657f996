"""A synthetic HR world: three units' roster exports, day by day, for a year or more.

Everything is drawn from one seeded :class:`random.Random`, so a seed gives the same year every
time. The people are synthetic (made-up names, ``kemenag.example`` addresses, NIPs that are
valid in shape and date but belong to nobody).

What happens, per person and per month (:class:`Rates`): moves between units with an HR lag of
0-10 days between leaving one file and appearing in the next (some movers are listed as
``MUTASI KELUAR`` by their old unit meanwhile), leave (``CUTI ...``, active), unpaid leave
(``CLTN``, inactive, then back), retirement (``PENSIUN``) and death (``MENINGGAL``), whose rows
stay a while and then leave the file, people who leave the file without a word, and new hires.
On every export, a share of the rows of people listed before carries one bad cell: an email
with a space or a name that is only a title (the row is refused, its NIP still readable), or a
NIP that Excel turned into ``1.97501E+17`` (the row cannot be tied to anyone).

Each unit exports on its own days (:data:`SCHEDULES`); each export is a file in the generic
plugin's CSV format whose modification time is the export day (the bridge dates a roster by its
file's time). The world keeps every export's rows with what each row *means*
(:class:`RowKind`), which is the truth the invariants judge the bridge by.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Asia/Jakarta")
UNITS = ("PENDIS", "BIMAS_ISLAM", "SETJEN")
#: Each unit's share of the people at the start.
SHARES = {"PENDIS": 0.5, "BIMAS_ISLAM": 0.3, "SETJEN": 0.2}
HEADER = ("nip", "nama", "email", "unit", "satker", "jabatan", "golongan", "status")
#: The hour (local time) files are exported at, and the hour the nightly runs start.
EXPORT_HOUR = 17
RUN_HOUR = 23

#: Statuses as HR writes them, by what they mean (the world's own table, not the bridge's).
ACTIVE_STATUSES = frozenset(
    {"", "AKTIF", "PNS AKTIF", "CPNS", "MPP", "DIPERBANTUKAN", "TUGAS BELAJAR"}
)
LEAVE_STATUSES = ("CUTI TAHUNAN", "CUTI SAKIT", "CUTI BESAR", "CUTI MELAHIRKAN", "CUTI")
INACTIVE_STATUSES = frozenset({"CLTN", "PENSIUN", "MENINGGAL"})
LEFT_UNIT_STATUSES = frozenset({"MUTASI KELUAR"})

JABATAN = {
    "PENDIS": ("Guru Madrasah Ahli Pertama", "Pengawas Madrasah Ahli Muda"),
    "BIMAS_ISLAM": ("Penyuluh Agama Islam Ahli Pertama", "Penghulu Ahli Muda"),
    "SETJEN": ("Analis Kepegawaian Ahli Muda", "Pranata Komputer Ahli Pertama"),
}
SATKER = {
    "PENDIS": ("MAN 1 Kota Bandung", "MTsN 2 Sleman", "MIN 3 Malang", "UIN Walisongo"),
    "BIMAS_ISLAM": ("KUA Kecamatan Cibiru", "Kankemenag Kab. Sleman", "Kanwil Kemenag Jatim"),
    "SETJEN": ("Biro SDM", "Biro Umum", "Pusat Data dan Sistem Informasi"),
}
_GIVEN = ("Ahmad", "Siti", "Muhammad", "Nur", "Dewi", "Budi", "Fitri", "Agus", "Rina", "Hadi")
_FAMILY = ("Hidayat", "Lestari", "Saputra", "Rahmawati", "Santoso", "Wulandari", "Fauzi")
_FRONT = ("", "", "", "Drs. ", "H. ", "Dr. ", "Hj. ")
_BACK = ("", "", "", ", S.Pd.", ", M.Ag.", ", S.Ag., M.Pd.I.", ", S.Kom.")
_GOLONGAN = ("III/a", "III/b", "III/c", "III/d", "IV/a", "IV/b")


class RowKind(StrEnum):
    """What a roster row tells the bridge about the person it lists."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    #: The person left this unit (``MUTASI KELUAR``), not the ministry.
    LEFT_UNIT = "left_unit"
    #: A bad cell the reader refuses, the NIP still readable: the person is kept as they are.
    REFUSED = "refused"
    #: The NIP cell cannot be read: the row is tied to nobody.
    UNTIED = "untied"


def status_kind(status: str) -> RowKind:
    """What a status means in this world."""
    if status in ACTIVE_STATUSES or status in LEAVE_STATUSES:
        return RowKind.ACTIVE
    if status in INACTIVE_STATUSES:
        return RowKind.INACTIVE
    if status in LEFT_UNIT_STATUSES:
        return RowKind.LEFT_UNIT
    msg = f"status {status!r} is not in the world's table"
    raise ValueError(msg)


@dataclass(frozen=True)
class Scale:
    """How big and how long a simulation is, and its seed."""

    people: int = 600
    days: int = 365
    seed: int = 9

    @classmethod
    def from_env(cls, default: Scale | None = None) -> Scale:
        """``default`` (the CI size), or the long version: ``MOODLE_BRIDGE_LONG_SIMULATION=1``
        runs 3,000 people for two years; ``SIMULATION_SCALE=N`` multiplies the people and
        ``SIMULATION_DAYS`` sets the length."""
        base = default or cls()
        people, days = base.people, base.days
        if os.environ.get("MOODLE_BRIDGE_LONG_SIMULATION", "") not in ("", "0"):
            people, days = people * 5, days * 2
        scale = float(os.environ.get("SIMULATION_SCALE", "1") or 1)
        days = int(os.environ.get("SIMULATION_DAYS", "0") or 0) or days
        return cls(max(30, int(people * scale)), days, base.seed)

    @property
    def long(self) -> bool:
        """Whether this is bigger or longer than the CI size."""
        return self.people > Scale().people or self.days > Scale().days


@dataclass(frozen=True)
class Rates:
    """How often things happen: per person and month, except ``bad_cell`` (per row and export)."""

    move: float = 0.01
    leave: float = 0.02
    cltn: float = 0.003
    retire: float = 0.003
    death: float = 0.0005
    silent: float = 0.0005
    hire: float = 0.006
    bad_cell: float = 0.005
    #: Share of movers whose old unit lists them as MUTASI KELUAR for a while.
    mutasi_row: float = 0.4
    max_lag: int = 10


@dataclass
class Employee:
    """One person as HR knows them today."""

    index: int
    nip: str
    display_name: str
    email: str
    satker: str
    jabatan: str
    golongan: str
    #: The unit whose file lists the person now (None: between two units, or gone).
    unit: str | None
    status: str = "AKTIF"
    #: The status a temporary one (leave, CLTN) returns to, and when.
    back_on: dt.date | None = None
    back_to: str = "AKTIF"
    #: Retired or dead: the row leaves the file on this day.
    drop_on: dt.date | None = None
    #: Moving: listed by this unit from this day.
    arrival: tuple[str, dt.date] | None = None
    #: Moved out: the old unit lists them as MUTASI KELUAR until this day.
    mutasi: tuple[str, dt.date] | None = None
    gone: bool = False
    #: Listed by at least one export already (bad cells only hit people listed before).
    listed: bool = False
    #: Competency -> (level, assessment day): what the assessments file says of the person.
    levels: dict[str, tuple[int, dt.date]] = field(default_factory=dict)

    @property
    def settled(self) -> bool:
        """Listed as active by one unit, with nothing pending: free for a new event."""
        return (
            self.unit is not None
            and not self.gone
            and self.arrival is None
            and self.back_on is None
            and self.drop_on is None
            and status_kind(self.status) is RowKind.ACTIVE
        )


@dataclass(frozen=True)
class Row:
    """One row of an export, as written and as meant."""

    nip: str
    kind: RowKind
    status: str
    cells: tuple[str, ...]


@dataclass(frozen=True)
class Export:
    """One unit's roster file of one day."""

    unit: str
    day: dt.date
    path: Path
    rows: tuple[Row, ...]

    @property
    def stamp(self) -> int:
        """The file's modification time: the export day, late afternoon, local time."""
        return export_stamp(self.day)


@dataclass(frozen=True)
class Event:
    """Something that happened to a person, for statistics and tests."""

    day: dt.date
    what: str
    nip: str
    detail: str = ""


def export_stamp(day: dt.date) -> int:
    """Unix seconds of ``day`` at the export hour, local time."""
    return int(dt.datetime.combine(day, dt.time(EXPORT_HOUR), ZONE).timestamp())


def run_stamp(day: dt.date) -> int:
    """Unix seconds of ``day`` at the nightly runs' hour, local time."""
    return int(dt.datetime.combine(day, dt.time(RUN_HOUR), ZONE).timestamp())


def exports_on(unit: str, day: dt.date, start: dt.date) -> bool:
    """Whether ``unit`` exports its roster on ``day``: PENDIS every second day, BIMAS_ISLAM on
    Mondays and Thursdays, SETJEN on Wednesdays."""
    return SCHEDULES[unit](day, start)


SCHEDULES: dict[str, Callable[[dt.date, dt.date], bool]] = {
    "PENDIS": lambda day, start: (day - start).days % 2 == 0,
    "BIMAS_ISLAM": lambda day, _: day.weekday() in (0, 3),
    "SETJEN": lambda day, _: day.weekday() == 2,
}


def scientific(nip: str) -> str:
    """How Excel shows an 18-digit number: the digits are gone."""
    return f"{nip[0]}.{nip[1:6]}E+17"


class HRWorld:
    """The ministry's HR, day by day, for three units."""

    def __init__(
        self,
        scale: Scale = Scale(),
        *,
        start: dt.date = dt.date(2026, 1, 1),
        rates: Rates = Rates(),
    ) -> None:
        self.scale = scale
        self.rates = rates
        self.start = start
        self.today = start
        self.rng = random.Random(scale.seed)
        self.people: list[Employee] = []
        self.events: list[Event] = []
        self.exports: list[Export] = []
        self._nips: set[str] = set()
        for _ in range(scale.people):
            unit = self.rng.choices(UNITS, weights=[SHARES[u] for u in UNITS])[0]
            status = self.rng.choices(
                ("AKTIF", "PNS AKTIF", "", "MPP", "DIPERBANTUKAN", "TUGAS BELAJAR"),
                weights=(60, 20, 10, 4, 3, 3),
            )[0]
            self._hire(unit, status, event=False)

    @property
    def end(self) -> dt.date:
        """The last day of the simulation."""
        return self.start + dt.timedelta(days=self.scale.days - 1)

    def days(self) -> Iterator[dt.date]:
        """Every day of the simulation, in order."""
        for offset in range(self.scale.days):
            yield self.start + dt.timedelta(days=offset)

    def by_nip(self) -> dict[str, Employee]:
        """Everyone who ever worked here, by NIP."""
        return {p.nip: p for p in self.people}

    # --- people ----------------------------------------------------------------------------
    def _new_nip(self) -> str:
        while True:
            born = dt.date(1966, 1, 1) + dt.timedelta(days=self.rng.randrange(33 * 365))
            year = min(born.year + self.rng.randint(22, 32), 2024)
            nip = (
                f"{born:%Y%m%d}{year}{self.rng.randint(1, 12):02d}"
                f"{self.rng.choice('12')}{self.rng.randint(1, 999):03d}"
            )
            if nip not in self._nips:
                self._nips.add(nip)
                return nip

    def _hire(self, unit: str, status: str, *, event: bool = True) -> Employee:
        index = len(self.people)
        given, family = self.rng.choice(_GIVEN), self.rng.choice(_FAMILY)
        name = f"{self.rng.choice(_FRONT)}{given} {family}{self.rng.choice(_BACK)}"
        person = Employee(
            index=index,
            nip=self._new_nip(),
            display_name=name,
            email=f"{given.lower()}.{family.lower()}{index}@kemenag.example",
            satker=self.rng.choice(SATKER[unit]),
            jabatan=self.rng.choice(JABATAN[unit]),
            golongan=self.rng.choice(_GOLONGAN),
            unit=unit,
            status=status,
        )
        self.people.append(person)
        if event:
            self._event("hire", person, unit)
        return person

    def _event(self, what: str, person: Employee, detail: str = "") -> None:
        self.events.append(Event(self.today, what, person.nip, detail))

    # --- days ------------------------------------------------------------------------------
    def advance_to(self, day: dt.date) -> None:
        """Let HR's days pass until ``day`` (each day's events happen once, in order)."""
        while self.today < day:
            self.today += dt.timedelta(days=1)
            self._one_day()

    def _one_day(self) -> None:
        today, rng, rates = self.today, self.rng, self.rates
        daily = 1 / 30
        for person in list(self.people):
            self._settle(person, today)
            if not person.settled:
                continue
            draw = rng.random()
            for rate, happen in (
                (rates.move, self._move),
                (rates.leave, self._leave),
                (rates.cltn, self._cltn),
                (rates.retire, self._retire),
                (rates.death, self._die),
                (rates.silent, self._vanish),
            ):
                if draw < rate * daily:
                    happen(person)
                    break
                draw -= rate * daily
        hires = sum(1 for p in self.people if not p.gone) * rates.hire * daily
        while hires > 0:
            if rng.random() < hires:
                unit = rng.choices(UNITS, weights=[SHARES[u] for u in UNITS])[0]
                self._hire(unit, rng.choice(("CPNS", "AKTIF")))
            hires -= 1

    def _settle(self, person: Employee, today: dt.date) -> None:
        """Let what was pending for ``person`` happen when its day comes."""
        if person.arrival is not None and person.arrival[1] <= today:
            person.unit, person.arrival = person.arrival[0], None
            self._event("arrive", person, person.unit)
        if person.mutasi is not None and person.mutasi[1] <= today:
            person.mutasi = None
        if person.back_on is not None and person.back_on <= today:
            person.status, person.back_on = person.back_to, None
            self._event("back", person, person.status)
        if person.drop_on is not None and person.drop_on <= today:
            person.unit, person.drop_on, person.gone = None, None, True
            self._event("dropped", person)

    def _move(self, person: Employee) -> None:
        old = person.unit
        assert old is not None
        new = self.rng.choice([u for u in UNITS if u != old])
        lag = self.rng.randint(0, self.rates.max_lag)
        person.jabatan = self.rng.choice(JABATAN[new])
        person.satker = self.rng.choice(SATKER[new])
        if self.rng.random() < self.rates.mutasi_row:
            person.mutasi = (old, self.today + dt.timedelta(days=lag + self.rng.randint(1, 10)))
        if lag == 0:
            person.unit = new
        else:
            person.unit, person.arrival = None, (new, self.today + dt.timedelta(days=lag))
        self._event("move", person, f"{old}->{new} lag {lag}")

    def _leave(self, person: Employee) -> None:
        person.back_to = person.status
        person.status = self.rng.choice(LEAVE_STATUSES)
        person.back_on = self.today + dt.timedelta(days=self.rng.randint(3, 90))
        self._event("leave", person, person.status)

    def _cltn(self, person: Employee) -> None:
        person.back_to, person.status = "AKTIF", "CLTN"
        person.back_on = self.today + dt.timedelta(days=self.rng.randint(30, 150))
        self._event("cltn", person)

    def _retire(self, person: Employee) -> None:
        person.status = "PENSIUN"
        person.drop_on = self.today + dt.timedelta(days=self.rng.randint(20, 90))
        self._event("retire", person)

    def _die(self, person: Employee) -> None:
        person.status = "MENINGGAL"
        person.drop_on = self.today + dt.timedelta(days=self.rng.randint(5, 60))
        self._event("death", person)

    def _vanish(self, person: Employee) -> None:
        person.unit, person.gone = None, True
        self._event("vanish", person)

    # --- exports ---------------------------------------------------------------------------
    def units_exporting(self, day: dt.date | None = None) -> list[str]:
        """The units whose export falls on ``day`` (default: today)."""
        return [u for u in UNITS if exports_on(u, day or self.today, self.start)]

    def export(self, unit: str, folder: Path) -> Export:
        """Write ``unit``'s roster of today into ``folder`` and date the file by its day."""
        rows: list[Row] = []
        for person in self.people:
            if person.unit == unit:
                rows.append(self._row(person, unit, person.status))
            elif person.mutasi is not None and person.mutasi[0] == unit:
                rows.append(self._row(person, unit, "MUTASI KELUAR"))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{unit.lower()}-{self.today:%Y%m%d}.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(HEADER)
            writer.writerows(row.cells for row in rows)
        stamp = export_stamp(self.today)
        os.utime(path, (stamp, stamp))
        export = Export(unit, self.today, path, tuple(rows))
        self.exports.append(export)
        return export

    def _row(self, person: Employee, unit: str, status: str) -> Row:
        cells = [
            person.nip,
            person.display_name,
            person.email,
            unit,
            person.satker,
            person.jabatan,
            person.golongan,
            status,
        ]
        kind = status_kind(status)
        if person.listed and self.rng.random() < self.rates.bad_cell:
            flaw = self.rng.choice(("email", "name", "nip"))
            if flaw == "email":
                local, domain = person.email.split("@")
                cells[2] = f"{local[:3]} {local[3:]}@{domain}"
                kind = RowKind.REFUSED
            elif flaw == "name":
                cells[1] = "S.Pd."
                kind = RowKind.REFUSED
            else:
                cells[0] = scientific(person.nip)
                kind = RowKind.UNTIED
        person.listed = True
        return Row(person.nip, kind, status, tuple(cells))

    # --- assessments -----------------------------------------------------------------------
    def assess(self, standards: dict[str, dict[str, int]], share: float) -> int:
        """Assess a share of the people listed today against their jabatan's standard:
        someone never assessed gets a level at or below the standard (a gap may open), someone
        assessed before rises one level (a gap closes, or narrows) or is found at the same
        level again. Returns how many rows were added."""
        added = 0
        for person in self.people:
            if person.unit is None or self.rng.random() >= share:
                continue
            for competency, need in sorted(standards.get(person.jabatan, {}).items()):
                held = person.levels.get(competency)
                draw = self.rng.random()
                if held is None:
                    level = self.rng.randint(max(1, need - 2), need)
                elif held[0] < 5 and draw < 0.5:
                    level = held[0] + 1
                elif draw < 0.7:
                    level = held[0]  # assessed again: no better than before
                else:
                    continue
                person.levels[competency] = (level, self.today)
                added += 1
        return added

    def write_assessments(self, path: Path) -> Path:
        """Every person's latest assessment per competency (``nip, kompetensi, level,
        tanggal``), as a unit's assessment export."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(("nip", "kompetensi", "level", "tanggal"))
            for person in self.people:
                for competency, (level, day) in sorted(person.levels.items()):
                    writer.writerow((person.nip, competency, level, day.isoformat()))
        return path
