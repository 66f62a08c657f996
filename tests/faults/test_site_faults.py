"""A fault of the Moodle site is never a fault of a record (issue 14): the acceptance tests.

The CLI runs against the emulator over HTTP on 127.0.0.1, with the answers a real Moodle 4.5
gave while its database was down and while it was in maintenance mode, injected by the fault
layer. Retries are fast through the settings file (``retry_delay``); the maintenance window is
measured on a clock the test moves, so nobody waits 30 s.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from moodle_bridge.emulator import Emulator, default_seed
from moodle_bridge.emulator.faults import (
    FaultKind,
    FaultPlan,
    FaultyEmulatorServer,
    Outage,
    running_with_faults,
)
from moodle_bridge.roster.generic import read_generic_roster
from moodle_bridge.samples import generate_people, write_roster_csv
from tests.e2e.conftest import Bridge, Run, people
from tests.faults.test_faults import (
    ADD_MEMBERS,
    CREATE,
    assert_desired,
    batch_states,
    planned,
    units_of,
)

#: Small, fast retries; a budget the 20-request database outage fits in.
SETTINGS = (
    "[moodle]\nmax_attempts = 4\nmax_total_wait = 20\nretry_delay = 0.002\n"
    "read_timeout = 5\nworkers = 2\nfield_budget = {budget}\n"
)
PEOPLE = 5000


class FakeClock:
    """The fault layer's clock: only the test moves it."""

    def __init__(self) -> None:
        self.now = 50_000.0

    def __call__(self) -> float:
        return self.now


class Site(Bridge):
    """The e2e bridge driver against a faulty server, with this file's settings."""

    def __init__(
        self, emulator: Emulator, server: FaultyEmulatorServer, folder: Path, **settings: object
    ) -> None:
        super().__init__(emulator, server, folder)
        self.server = server
        self.settings(**settings)

    def settings(self, budget: int = 300, extra: str = "") -> None:
        self.config.write_text(SETTINGS.format(budget=budget) + extra, encoding="utf-8")

    def owned(self) -> dict[str, str]:
        """NIP -> how the state database holds the account ('created' or 'adopted')."""
        with sqlite3.connect(self.state_dir / "state.sqlite3") as db:
            return dict(db.execute("SELECT nip, how FROM accounts"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def site(emulator: Emulator, clock: FakeClock, tmp_path: Path) -> Iterator[Site]:
    with running_with_faults(emulator, FaultPlan(rate=0.0), clock=clock) as server:
        yield Site(emulator, server, tmp_path)


def nth_call(wsfunction: str, n: int) -> object:
    """An outage trigger: the ``n``-th request to ``wsfunction``."""
    seen = [0]

    def trigger(name: str) -> bool:
        seen[0] += name == wsfunction
        return name == wsfunction and seen[0] == n

    return trigger


def assert_settled(site: Site, roster: Path) -> None:
    """A second run finds nothing to do and writes nothing; no batch is left open."""
    site.server.disarm()
    again = site.sync(roster)
    assert again.exit_code == 0, again.output
    assert planned(again) == 0, again.data and again.data["planned"]
    assert again.writes == []
    states = batch_states(site)
    assert not states["pending"]
    assert not states["sent_unconfirmed"]


# --- (a) the database down for 20 requests in the middle of a 5,000-person sync --------------
def test_a_database_outage_mid_sync_refuses_nobody_bisects_nothing_creates_once(tmp_path: Path):
    roster = tmp_path / "roster.csv"
    write_roster_csv(roster, generate_people(PEOPLE, 14, dirty_share=0.0))
    units = {p.nip: p.unit for p in read_generic_roster(roster).people if p.active}
    budget = 1200  # about 100 accounts a batch: 50 create calls to fall in the middle of

    clean = Emulator(default_seed())
    with running_with_faults(clean, FaultPlan(rate=0.0)) as server:
        baseline = Site(clean, server, _folder(tmp_path, "clean"), budget=budget).sync(roster)
        assert baseline.exit_code == 0, baseline.output
        minimum = dict(server.requests_by_function)
    assert minimum[CREATE] >= 40

    emulator = Emulator(default_seed())
    with running_with_faults(emulator, FaultPlan(rate=0.0)) as server:
        site = Site(emulator, server, _folder(tmp_path, "faulty"), budget=budget)
        outage = server.arm(
            Outage(
                FaultKind.DATABASE_DOWN,
                requests=20,
                when=nth_call(CREATE, minimum[CREATE] // 2),  # type: ignore[arg-type]
            )
        )
        run = site.sync(roster)

        assert run.exit_code == 0, run.output
        assert run.data is not None
        assert outage.hits == 20, "the whole outage happened during the run"
        assert run.data["record_errors"] == [], "nobody is refused for the site's fault"
        assert run.data["stopped"] is None
        assert not batch_states(site)["failed"]
        assert_desired(site, units)
        assert set(site.owned()) == set(units)
        # No bisection: each create the outage answered is sent again once, whole.
        sent = server.requests_by_function
        failed_creates = server.injected_by_function[CREATE, FaultKind.DATABASE_DOWN]
        assert failed_creates >= 1, "the outage must meet a create batch to prove anything"
        assert sent[CREATE] - failed_creates <= minimum[CREATE] * 1.02, (sent, minimum)
        assert_settled(site, roster)


def stop_for_a_long_database_outage(site: Site, clock: FakeClock) -> tuple[Run, Path]:
    """Sync 200 people while the database is away (60 s) longer than the wait budget."""
    site.settings(extra="")
    site.config.write_text(
        site.config.read_text().replace("max_total_wait = 20", "max_total_wait = 0.3")
    )
    site.server.arm(
        Outage(FaultKind.DATABASE_DOWN, seconds=60, when=nth_call(CREATE, 3))  # type: ignore[arg-type]
    )
    roster = site.roster(people(range(200)))
    return site.sync(roster), roster


def test_a_database_outage_longer_than_the_budget_stops_and_the_next_run_resumes(
    site: Site, clock: FakeClock
):
    stopped, roster = stop_for_a_long_database_outage(site, clock)

    assert stopped.exit_code == 4, stopped.output
    assert stopped.data is not None
    line = stopped.data["stopped"]
    assert line.startswith("database unavailable: Error: Database connection failed."), line
    assert "\n" not in line
    assert "<" not in line
    assert stopped.data["record_errors"] == []

    clock.now += 60  # the database is back
    site.settings()
    again = site.sync(roster)
    assert again.exit_code == 0, again.output
    assert again.data is not None
    assert sum(again.data["resumed"].values()) >= 1
    assert_desired(site, units_of(range(200)))
    assert len(site.owned()) == 200
    assert_settled(site, roster)


def test_the_run_report_keeps_what_the_site_answered(site: Site, clock: FakeClock):
    stopped, _roster = stop_for_a_long_database_outage(site, clock)
    assert stopped.data is not None
    # The line is short and plain; the report file keeps Moodle's answer itself (raw).
    report = Path(stopped.data["report_file"]).read_text(encoding="utf-8")
    assert "dml_connection_exception" in report
    assert site.token not in report


# --- (b) the database goes away after Moodle committed a create batch --------------------------
def test_a_create_batch_committed_then_answered_dbconnectionfailed_is_the_bridges_own(
    site: Site,
):
    server = site.server
    outage = server.arm(
        Outage(FaultKind.COMMIT_THEN_FAIL, requests=1, when=nth_call(CREATE, 3))  # type: ignore[arg-type]
    )
    roster = site.roster(people(range(200)))

    run = site.sync(roster)

    assert run.exit_code == 0, run.output
    assert outage.hits == 1
    assert run.data is not None
    assert run.data["record_errors"] == []
    assert run.data["applied"]["create"] == 200
    # Settled by reading back: the committed batch's accounts are recorded as created.
    assert batch_states(site)["resolved"] >= 1
    assert_desired(site, units_of(range(200)))
    assert set(site.owned().values()) == {"created"}
    assert len(site.owned()) == 200
    # Nothing stalls on the bridge's own accounts: the next run has nothing to write.
    assert_settled(site, roster)


def bisect_through_an_outage(site: Site) -> Run:
    """Sync 60 people, one of whom Moodle refuses, with the database away mid-bisection."""
    # Person 7's email belongs to an account the bridge does not own: Moodle refuses the
    # whole first batch, and the bridge halves it to find the record.
    site.admin_call(
        "core_user_create_users",
        {
            "users[0][username]": "someone.else",
            "users[0][firstname]": "Lain",
            "users[0][lastname]": "Orang",
            "users[0][email]": people(range(60))[7]["email"],
            "users[0][password]": "Passw0rd!",
        },
    )
    # The database goes away at the first half of the bisection, for 8 requests.
    outage = site.server.arm(
        Outage(FaultKind.DATABASE_DOWN, requests=8, when=nth_call(CREATE, 2))  # type: ignore[arg-type]
    )
    run = site.sync(site.roster(people(range(60))))
    assert outage.hits == 8
    return run


def test_a_database_outage_in_the_middle_of_a_bisection_refuses_only_the_bad_record(site: Site):
    run = bisect_through_an_outage(site)

    assert run.exit_code == 1, run.output
    assert run.data is not None
    refused = run.data["record_errors"]
    # Masked on output: 1980************07 is person 7.
    assert [(e["action"], e["nip"][-2:]) for e in refused] == [("create", "07")]
    assert "email" in refused[0]["reason"]
    assert_desired(site, units_of(i for i in range(60) if i != 7))
    assert len(site.owned()) == 59


def test_a_bisection_that_met_an_outage_leaves_no_batch_open(site: Site):
    # The executor settles the lost answer by reading back, then sends the rest again as a
    # batch of its own: when Moodle refuses it, the bisection starts again from there, so
    # every journal entry is settled.
    bisect_through_an_outage(site)
    states = batch_states(site)
    assert not states["pending"], states
    assert not states["sent_unconfirmed"], states


# --- (c) maintenance for 30 s in the middle of a sync ------------------------------------------
def test_maintenance_mid_sync_stops_with_one_line_and_the_next_run_finishes(
    site: Site, clock: FakeClock
):
    server = site.server
    server.arm(Outage(FaultKind.MAINTENANCE, seconds=30, when=nth_call(CREATE, 3)))  # type: ignore[arg-type]
    roster = site.roster(people(range(200)))

    stopped = site.sync(roster)

    # Retry-After: 300 is beyond the 20 s budget: stop at once rather than wait in vain.
    assert stopped.exit_code == 4, stopped.output
    assert stopped.data is not None
    line = stopped.data["stopped"]
    assert line.startswith("site in maintenance until about "), line
    assert "The site is undergoing maintenance" in line
    assert "\n" not in line
    assert "<" not in line
    assert stopped.data["record_errors"] == []
    created = [i for i in range(200) if site.users_by_idnumber(f"198001012005011{i:03d}")]
    assert 0 < len(created) < 200

    clock.now += 30  # the administrator ends maintenance
    again = site.sync(roster)
    assert again.exit_code == 0, again.output
    assert_desired(site, units_of(range(200)))
    assert len(site.owned()) == 200
    assert_settled(site, roster)


@pytest.mark.parametrize("how", ["setting", "option"])
def test_maintenance_mid_sync_is_ridden_through_with_wait_for_site(site: Site, how: str):
    # Real time here: the client waits out the site's Retry-After.
    site.server.clock = time.monotonic
    site.settings(extra="wait_for_site = true\n" if how == "setting" else "")
    site.config.write_text(
        site.config.read_text().replace("max_total_wait = 20", "max_total_wait = 0.5")
    )
    outage = site.server.arm(
        Outage(
            FaultKind.MAINTENANCE,
            seconds=1.0,
            retry_after="1",
            when=nth_call(ADD_MEMBERS, 1),  # type: ignore[arg-type]
        )
    )
    roster = site.roster(people(range(120)))

    run = site.sync(roster, *(["--wait-for-site"] if how == "option" else []))

    assert run.exit_code == 0, run.output
    assert outage.hits >= 1
    assert run.data is not None
    assert run.data["stopped"] is None
    assert_desired(site, units_of(range(120)))
    assert_settled(site, roster)


def _folder(parent: Path, name: str) -> Path:
    folder = parent / name
    folder.mkdir()
    return folder
