"""End-to-end helpers: the CLI driven with CliRunner against the emulator served over HTTP."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from click.testing import CliRunner, Result

from moodle_bridge.cli import main
from moodle_bridge.emulator import Emulator
from moodle_bridge.emulator.cohorts import link_cohort_to_course
from moodle_bridge.emulator.server import EmulatorHTTPServer

FAST = "[moodle]\nmax_attempts = 2\nmax_total_wait = 1\n"
#: Settings of a test about removal -> suspension, not about the grace an absent person has.
NO_GRACE = "[sync]\nabsent_grace_days = 0\n"
#: The one read a run makes when nothing changed: the site's identity, checked first.
SITE_INFO = "core_webservice_get_site_info"
#: The course an administrator links the bridge's probe cohort to (see ``prove_removals``).
PROBE_COURSE = "BRIDGE-PROBE"
HEADER = ("nip", "nama", "email", "unit", "satker", "jabatan", "golongan", "status")
UNITS = ("PENDIS", "SETJEN", "BIMAS_ISLAM")

#: Web-service functions that change Moodle.
WRITE_PREFIXES = (
    "core_user_create_users",
    "core_user_update_users",
    "core_user_delete_users",
    "core_cohort_add_cohort_members",
    "core_cohort_delete_cohort_members",
    "core_cohort_create_cohorts",
    "core_cohort_update_cohorts",
    "core_cohort_delete_cohorts",
    "enrol_",
)


def nip(i: int) -> str:
    """A valid PNS NIP: born 1980-01-01, appointed 2005-01, male, sequence ``i``."""
    assert 0 <= i < 1000
    return f"198001012005011{i:03d}"


def person(i: int, **changes: str) -> dict[str, str]:
    """A synthetic roster row (generic format) for person ``i``."""
    row = {
        "nip": nip(i),
        "nama": f"Ahmad Pegawai{i:03d}",
        "email": f"p{i}@kemenag.example",
        "unit": UNITS[i % len(UNITS)],
        "satker": f"Kanwil Provinsi {i % 7}",
        "jabatan": "Analis SDM Aparatur",
        "golongan": "III/a",
        "status": "",
    }
    row.update(changes)
    return row


def people(ids: Iterable[int]) -> list[dict[str, str]]:
    return [person(i) for i in ids]


def write_csv(
    path: Path,
    rows: Sequence[dict[str, str]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> Path:
    with path.open("w", newline="", encoding=encoding) as out:
        writer = csv.DictWriter(out, fieldnames=HEADER, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def is_write(wsfunction: str) -> bool:
    return wsfunction.startswith(WRITE_PREFIXES)


@dataclass
class Run:
    """One CLI invocation: its result, its JSON (when --json) and the calls it caused."""

    result: Result
    data: dict[str, Any] | None
    calls: list[tuple[str, int]] = field(default_factory=list)
    #: The requests sent: (wsfunction, form fields), in order.
    requests: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return self.result.exit_code

    @property
    def output(self) -> str:
        return self.result.output

    @property
    def writes(self) -> list[tuple[str, int]]:
        return [c for c in self.calls if is_write(c[0])]

    def fields(self, wsfunction: str) -> list[list[tuple[str, str]]]:
        """The form fields of every request to ``wsfunction``."""
        return [pairs for name, pairs in self.requests if name == wsfunction]

    def count(self, wsfunction: str) -> int:
        return Counter(name for name, _ in self.calls)[wsfunction]


class Bridge:
    """Runs ``moodle-bridge`` commands against one emulator and one state directory."""

    def __init__(self, emulator: Emulator, served: EmulatorHTTPServer, tmp_path: Path) -> None:
        self.emulator = emulator
        self.tmp_path = tmp_path
        self.state_dir = tmp_path / "state"
        self.config = tmp_path / "moodle-bridge.toml"
        self.config.write_text(FAST, encoding="utf-8")
        self.token = emulator.token_for("bridge")
        self.url = served.url
        self._rosters = 0
        #: Every request served: (wsfunction, its form fields without wstoken and wsfunction).
        self.requests: list[tuple[str, list[tuple[str, str]]]] = []
        serve = emulator.handle_form

        def recording(body: str, query: str = "") -> Any:
            pairs = parse_qsl(body, keep_blank_values=True) + parse_qsl(
                query, keep_blank_values=True
            )
            name = next((v for k, v in pairs if k == "wsfunction"), "")
            kept = [
                (k, v) for k, v in pairs if k not in ("wstoken", "wsfunction", "moodlewsrestformat")
            ]
            self.requests.append((name, kept))
            return serve(body, query)

        emulator.handle_form = recording  # type: ignore[method-assign]

    @property
    def env(self) -> dict[str, str]:
        return {
            "MOODLE_BRIDGE_URL": self.url,
            "MOODLE_BRIDGE_TOKEN": self.token,
            "MOODLE_BRIDGE_STATE_DIR": str(self.state_dir),
        }

    def configure(self, extra: str) -> None:
        """Append TOML to the settings file (e.g. a ``[sync]`` section)."""
        self.config.write_text(FAST + extra, encoding="utf-8")

    def roster(self, rows: Sequence[dict[str, str]], **kwargs: Any) -> Path:
        self._rosters += 1
        return write_csv(self.tmp_path / f"roster{self._rosters}.csv", rows, **kwargs)

    def invoke(self, *args: str) -> Run:
        before = len(self.emulator.calls)
        sent = len(self.requests)
        result = CliRunner().invoke(main, ["--config", str(self.config), *args], env=self.env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        data = None
        if "--json" in args:
            try:
                data = json.loads(result.stdout)
            except ValueError:
                data = None
        return Run(result, data, list(self.emulator.calls[before:]), self.requests[sent:])

    def sync(self, roster: Path, *options: str) -> Run:
        return self.invoke(
            "sync", "--plugin", "generic", "--roster", str(roster), "--yes", "--json", *options
        )

    def plan(self, roster: Path) -> Run:
        return self.invoke("plan", "--plugin", "generic", "--roster", str(roster), "--json")

    # --- the emulated site ------------------------------------------------------------------
    def users_by_idnumber(self, idnumber: str) -> list[dict[str, Any]]:
        world = self.emulator.world
        return [
            world.users[uid]
            for uid in sorted(world.idnumber_index.get(idnumber, ()))
            if uid in world.users
        ]

    def user(self, idnumber: str) -> dict[str, Any]:
        found = self.users_by_idnumber(idnumber)
        assert len(found) == 1, f"{len(found)} accounts with idnumber {idnumber}"
        return found[0]

    def cohort_members(self, unit: str) -> set[int]:
        world = self.emulator.world
        cohort_id = world.cohort_idnumber_index.get(f"unit:{unit}")
        assert cohort_id is not None, f"no cohort unit:{unit}"
        return set(world.cohort_member_sets[cohort_id])

    def create_courses(self, shortnames: Sequence[str]) -> dict[str, int]:
        """Create courses with the admin token, as an administrator would: shortname -> id."""
        fields = {
            key: value
            for k, name in enumerate(shortnames)
            for key, value in (
                (f"courses[{k}][fullname]", f"Pelatihan {name}"),
                (f"courses[{k}][shortname]", name),
                (f"courses[{k}][categoryid]", "1"),
            )
        }
        created = self.admin_call("core_course_create_courses", fields)
        return {c["shortname"]: int(c["id"]) for c in created}

    def prove_removals(self) -> str:
        """Set the site up as an administrator does for the bridge to prove that removing a
        cohort member suspends the enrolment: cohort sync's external unenrol action "suspend"
        (3), a probe course and the cohort ``bridge:probe`` linked to it. Returns the settings
        that name the probe course (for :meth:`configure`)."""
        self.emulator.world.settings["enrol_cohort_unenrolaction"] = "3"
        course = self.create_courses([PROBE_COURSE])[PROBE_COURSE]
        made = self.admin_call(
            "core_cohort_create_cohorts",
            {
                "cohorts[0][name]": "moodle-bridge probe",
                "cohorts[0][idnumber]": "bridge:probe",
                "cohorts[0][categorytype][type]": "system",
                "cohorts[0][categorytype][value]": "",
            },
        )
        link_cohort_to_course(self.emulator, course, int(made[0]["id"]))
        return f'[cohorts]\nprobe_course = "{PROBE_COURSE}"\n'

    def admin_call(self, wsfunction: str, fields: dict[str, str]) -> Any:
        """A web-service call with the admin token, straight into the emulator."""
        pairs = [
            ("wstoken", self.emulator.token_for("admin")),
            ("wsfunction", wsfunction),
            ("moodlewsrestformat", "json"),
            *fields.items(),
        ]
        reply = self.emulator.handle(pairs)
        answer = json.loads(reply.body)
        assert not (isinstance(answer, dict) and "exception" in answer), answer
        return answer


@pytest.fixture
def bridge(emulator: Emulator, served: EmulatorHTTPServer, tmp_path: Path) -> Bridge:
    return Bridge(emulator, served, tmp_path)


CATALOGUE_HEADER = [
    "competency",
    "from_level",
    "to_level",
    "course_shortname",
    "jp",
    "window_start",
    "window_end",
    "capacity",
    "mode",
]


def write_csv_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A small CSV file (mapping tables and the like), folders created as needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)


def write_tables(
    folder: Path,
    *,
    unit: str,
    jabatan: str,
    competencies: Sequence[Sequence[Any]],
    standard: dict[str, int],
    catalogue: Sequence[Sequence[Any]],
    cap: int | None = None,
) -> Path:
    """Mapping tables for one unit and one position: the e2e tests' own small world."""
    write_csv_rows(folder / "competencies.csv", ["code", "name", "kind", "priority"], competencies)
    write_csv_rows(folder / "position_levels.csv", ["unit", "jabatan", "position_level"], [])
    if cap is not None:
        write_csv_rows(folder / "units.csv", ["unit", "annual_cap"], [[unit, cap]])
    write_csv_rows(
        folder / "standards" / f"{unit}.csv",
        ["jabatan", "competency", "level"],
        [[jabatan, c, level] for c, level in standard.items()],
    )
    write_csv_rows(folder / "catalogue" / "national.csv", CATALOGUE_HEADER, catalogue)
    return folder


def write_assessments(path: Path, rows: Sequence[tuple[int, str, int, Any]]) -> Path:
    """An assessment file: (person number, competency, level, date) per row."""
    write_csv_rows(
        path,
        ["nip", "kompetensi", "level", "tanggal"],
        [[nip(i), c, level, day.isoformat()] for i, c, level, day in rows],
    )
    return path
