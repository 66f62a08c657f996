"""Syncs through an emulator that fails like production: 5xx, 429, timeouts, resets, HTML, cut
JSON (issue 6, "Faults"), and the site's own faults: its database down, maintenance, a commit
whose answer is lost to the database going away (issue 14; outages in the middle of a run are in
test_site_faults.py). Servers listen on 127.0.0.1 only; the client's retries are made fast
through the settings file, and the read timeout short so that injected timeouts cost < 1 s.

The full run of the issue (20,000 people) is::

    MOODLE_BRIDGE_FAULT_PEOPLE=20000 .venv/bin/pytest tests/faults -k converges
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moodle_bridge.emulator import Emulator, default_seed
from moodle_bridge.emulator.faults import (
    COMMITTED,
    PATH_KINDS,
    SITE_KINDS,
    FaultKind,
    FaultPlan,
    FaultyEmulatorServer,
    running_with_faults,
)
from moodle_bridge.roster.generic import read_generic_roster
from moodle_bridge.samples import generate_people, write_roster_csv
from moodle_bridge.store import Store
from tests.conftest import SECRET_TOKEN
from tests.e2e.conftest import UNITS, Bridge, Run, nip, people
from tests.e2e.test_enrolments import Site as GapSite
from tests.e2e.test_enrolments import manual_choices

PEOPLE = int(os.environ.get("MOODLE_BRIDGE_FAULT_PEOPLE", "2000"))
MAX_ATTEMPTS = 4
READ_TIMEOUT = 0.5
#: Small requests (about 20 accounts, 70 memberships each): many batches to hit.
SETTINGS = (
    f"[moodle]\nmax_attempts = {MAX_ATTEMPTS}\nmax_total_wait = 4\n"
    f"read_timeout = {READ_TIMEOUT}\nfield_budget = 300\nworkers = 2\n"
)
#: The server holds a timed-out answer this long: past the client's read timeout.
TIMEOUT_DELAY = READ_TIMEOUT + 0.3
MAX_RUNS = 10
CREATE = "core_user_create_users"
ADD_MEMBERS = "core_cohort_add_cohort_members"
LOOKUP = "core_user_get_users_by_field"


@pytest.fixture
def faulty(emulator: Emulator) -> Iterator[FaultyEmulatorServer]:
    plan = FaultPlan(rate=0.0, timeout_delay=TIMEOUT_DELAY)
    with running_with_faults(emulator, plan) as server:
        yield server


class Site(Bridge):
    """The e2e bridge driver, against a faulty server, with fast retries and a short timeout."""

    def __init__(self, emulator: Emulator, server: FaultyEmulatorServer, folder: Path) -> None:
        super().__init__(emulator, server, folder)
        self.server = server
        self.config.write_text(SETTINGS, encoding="utf-8")


@pytest.fixture
def site(emulator: Emulator, faulty: FaultyEmulatorServer, tmp_path: Path) -> Site:
    return Site(emulator, faulty, tmp_path)


def inject(server: FaultyEmulatorServer, **plan: Any) -> None:
    server.plan = FaultPlan(timeout_delay=TIMEOUT_DELAY, **plan)
    server.reset_counters()


def heal(server: FaultyEmulatorServer) -> None:
    server.plan = FaultPlan(rate=0.0, timeout_delay=TIMEOUT_DELAY)


def batch_states(bridge: Bridge) -> Counter[str]:
    with sqlite3.connect(bridge.state_dir / "state.sqlite3") as db:
        return Counter(dict(db.execute("SELECT state, count(*) FROM batches GROUP BY state")))


#: The seeded site's own unit cohorts: the bridge did not create them, so it leaves them alone.
SITE_COHORTS = frozenset({"unit:PENDIS", "unit:SETJEN"})


def assert_desired(bridge: Bridge, units: dict[str, str]) -> None:
    """Every NIP in ``units`` has exactly one account, a member of its unit's cohort only
    (of none when that cohort is the site's own)."""
    world = bridge.emulator.world
    cohorts = {
        c["idnumber"]: world.cohort_member_sets.get(cid, set())
        for cid, c in world.cohorts.items()
        if c["idnumber"].startswith("unit:")
    }
    missing, duplicated, outside = [], [], []
    for person_nip, unit in units.items():
        found = [uid for uid in world.idnumber_index.get(person_nip, ()) if uid in world.users]
        if not found:
            missing.append(person_nip)
            continue
        if len(found) > 1:
            duplicated.append(person_nip)
        member_of = {idnumber for idnumber, members in cohorts.items() if found[0] in members}
        if member_of != {f"unit:{unit}"} - SITE_COHORTS:
            outside.append((person_nip, unit, sorted(member_of)))
    assert not duplicated, f"{len(duplicated)} NIPs have two accounts: {duplicated[:5]}"
    assert not missing, f"{len(missing)} people have no account: {missing[:5]}"
    assert not outside, f"{len(outside)} people not in (only) their unit cohort: {outside[:5]}"


def planned(run: Run) -> int:
    assert run.data is not None, run.output
    return sum(run.data["planned"].values())


def assert_in_sync(bridge: Site, roster: Path) -> None:
    """Read Moodle back (--reconcile): nothing is left to do, nothing is written.

    With the default field budget: --reconcile fails with a small one (see
    test_reconcile_reads_back_within_a_small_field_budget).
    """
    heal(bridge.server)
    bridge.config.write_text(SETTINGS.replace("field_budget = 300", "field_budget = 4990"))
    try:
        check = bridge.sync(roster, "--reconcile")
    finally:
        bridge.config.write_text(SETTINGS, encoding="utf-8")
    assert check.exit_code == 0, check.output
    assert planned(check) == 0, check.data and check.data["planned"]
    assert check.writes == []
    assert "pending" not in batch_states(bridge)
    assert "sent_unconfirmed" not in batch_states(bridge)


def make_site(emulator: Emulator, server: FaultyEmulatorServer, folder: Path) -> Site:
    folder.mkdir()
    return Site(emulator, server, folder)


def units_of(ids: range) -> dict[str, str]:
    return {nip(i): UNITS[i % len(UNITS)] for i in ids}


# --- 1. a full sync under 5% random faults of every kind -------------------------------------
@pytest.mark.parametrize(
    ("kinds", "seed"),
    [(PATH_KINDS, 20240611), (PATH_KINDS, 7), (SITE_KINDS, 3)],
    ids=["path-20240611", "path-7", "site-3"],
)
def test_a_full_sync_under_five_percent_faults_converges_without_duplicates(
    tmp_path: Path, kinds: tuple[FaultKind, ...], seed: int
) -> None:
    roster = tmp_path / "roster.csv"
    write_roster_csv(roster, generate_people(PEOPLE, 61, dirty_share=0.0))
    units = {p.nip: p.unit for p in read_generic_roster(roster).people if p.active}
    assert len(units) > PEOPLE * 0.9

    # The minimum: the same sync against a site that never fails.
    clean = Emulator(default_seed())
    with running_with_faults(clean, FaultPlan(rate=0.0)) as server:
        baseline = make_site(clean, server, tmp_path / "clean").sync(roster)
        assert baseline.exit_code == 0, baseline.output
        minimum = server.requests

    emulator = Emulator(default_seed())
    # A maintenance answer asks for 1 s here (a real Moodle asks 300: that stops a run at once,
    # see test_site_faults.py).
    plan = FaultPlan(
        rate=0.05,
        kinds=kinds,
        seed=seed,
        timeout_delay=TIMEOUT_DELAY,
        maintenance_retry_after="1",
    )
    with running_with_faults(emulator, plan) as server:
        bridge = make_site(emulator, server, tmp_path / "faulty")
        codes: list[int] = []
        stops: list[str] = []
        for _ in range(MAX_RUNS):
            run = bridge.sync(roster)
            codes.append(run.exit_code)
            if run.data is not None and run.data["stopped"]:
                stops.append(run.data["stopped"])
            assert run.exit_code in (0, 1, 4), run.output
            if kinds == SITE_KINDS:
                # The site's faults are never a record's.
                assert run.data is not None
                assert run.data["record_errors"] == [], run.data["record_errors"]
            if run.exit_code in (0, 1) and planned(run) == 0:
                break
        else:
            pytest.fail(f"no convergence after {MAX_RUNS} runs: exit codes {codes}")
        sent, injected = server.requests, dict(server.injected)
        faults = server.faults
        print(
            f"\n{PEOPLE} people, {len(codes)} runs (exit codes {codes}); {sent} requests "
            f"against a minimum of {minimum}; {faults} faults injected: "
            + ", ".join(f"{kind} {n}" for kind, n in sorted(injected.items()))
            + "".join(f"\n  stopped: {stop}" for stop in stops)
            + "\n  on: "
            + ", ".join(f"{f}/{k} {n}" for (f, k), n in sorted(server.injected_by_function.items()))
        )
        assert faults >= 3, "the plan injected (almost) nothing: the test proves nothing"
        assert codes[-1] == 0, codes
        assert_desired(bridge, units)
        assert_in_sync(bridge, roster)
    # Each fault costs at most a few requests (a retry; or a lookup and a resend of a create
    # batch); a rerun after a stop re-checks its open batches and re-chunks what is left.
    extra = sent - minimum
    assert extra <= 3 * faults + 6 * (len(codes) - 1), (sent, minimum, faults, codes)


def test_reconcile_reads_back_within_a_small_field_budget(site: Site) -> None:
    """Not a fault: --reconcile must split its read-back to the configured field budget
    (PHP's default max_input_vars is 1000, so sites need budgets under 1000)."""
    roster = site.roster(people(range(300)))
    assert site.sync(roster).exit_code == 0
    check = site.sync(roster, "--reconcile")
    assert check.exit_code == 0, check.output
    assert planned(check) == 0
    assert check.writes == []


# --- 2. each kind alone ----------------------------------------------------------------------
SIXTY = range(60)
RETRIED = (
    FaultKind.SERVER_ERROR,
    FaultKind.RATE_LIMITED,
    FaultKind.TIMEOUT,
    FaultKind.RESET_BEFORE,
)


def baseline_calls(tmp_path: Path) -> Counter[str]:
    """The requests of a fault-free first sync of the sixty people, by function."""
    clean = Emulator(default_seed())
    with running_with_faults(clean, FaultPlan(rate=0.0)) as server:
        made = make_site(clean, server, tmp_path / "clean")
        assert made.sync(made.roster(people(SIXTY))).exit_code == 0
        return Counter(server.requests_by_function)


@pytest.mark.parametrize("kind", RETRIED, ids=str)
def test_transient_faults_on_the_first_requests_are_retried(site: Site, kind: FaultKind) -> None:
    server = site.server
    # Every function, the first requests of the run: reads, cohort creation, ...
    inject(server, rate=1.0, kinds=(kind,), limit=MAX_ATTEMPTS - 1)
    roster = site.roster(people(SIXTY))

    run = site.sync(roster)

    assert run.exit_code == 0, run.output
    assert run.data is not None
    assert run.data["stopped"] is None
    assert run.data["applied"]["create"] == 60
    assert server.injected == {kind: MAX_ATTEMPTS - 1}
    assert_desired(site, units_of(SIXTY))
    assert_in_sync(site, roster)


@pytest.mark.parametrize("kind", [*RETRIED, FaultKind.HTML_PAGE], ids=str)
def test_a_create_batch_refused_before_commit_is_looked_up_then_sent_again(
    site: Site, kind: FaultKind, tmp_path: Path
) -> None:
    minimum = baseline_calls(tmp_path)
    server = site.server
    inject(server, rate=1.0, kinds=(kind,), limit=1, functions={CREATE})
    roster = site.roster(people(SIXTY))

    run = site.sync(roster)

    assert run.exit_code == 0, run.output
    assert server.injected == {kind: 1}
    assert_desired(site, units_of(SIXTY))
    sent = server.requests_by_function
    if kind is FaultKind.RATE_LIMITED:
        # Refused before any work: the client may (and does) simply send it again.
        assert sent[CREATE] == minimum[CREATE] + 1
        assert sent[LOOKUP] == minimum[LOOKUP]
    else:
        # retry_writes=False: not resent blindly; looked up by idnumber first, then resent
        # (nothing was committed; a timeout here commits: found by the lookup, not resent).
        assert sent[LOOKUP] == minimum[LOOKUP] + 1
        resent = 0 if kind in COMMITTED else 1
        assert sent[CREATE] == minimum[CREATE] + resent
    assert_in_sync(site, roster)


def test_a_reset_after_a_committed_create_is_resolved_by_idnumber_without_a_duplicate(
    site: Site, tmp_path: Path
) -> None:
    minimum = baseline_calls(tmp_path)
    server = site.server
    # The 2nd create batch: the first goes alone (it proves the profile fields), then workers.
    inject(server, rate=1.0, kinds=(FaultKind.RESET_AFTER,), limit=2, functions={CREATE})
    roster = site.roster(people(SIXTY))

    run = site.sync(roster)

    assert run.exit_code == 0, run.output
    assert run.data is not None
    assert run.data["applied"]["create"] == 60
    assert server.injected == {FaultKind.RESET_AFTER: 2}
    assert_desired(site, units_of(SIXTY))
    sent = server.requests_by_function
    # Committed: found by the lookup, never sent again.
    assert sent[CREATE] == minimum[CREATE]
    assert sent[LOOKUP] == minimum[LOOKUP] + 2
    assert batch_states(site)["resolved"] == 2
    assert_in_sync(site, roster)


def test_cut_json_is_retried_then_stops_the_run_and_is_reported(site: Site) -> None:
    kind = FaultKind.TRUNCATED_JSON
    server = site.server
    roster = site.roster(people(SIXTY))
    # Once: the next attempt gets the real answer.
    inject(server, rate=1.0, kinds=(kind,), limit=1, functions={ADD_MEMBERS})
    once = site.sync(roster)
    assert once.exit_code == 0, once.output
    assert server.injected == {kind: 1}
    assert_desired(site, units_of(SIXTY))

    # Every attempt of one call: the run stops (exit 4) and says why. One worker: with two,
    # two membership batches in flight share the cut answers and both get through.
    more = site.roster(people(range(120)))
    inject(server, rate=1.0, kinds=(kind,), limit=MAX_ATTEMPTS, functions={ADD_MEMBERS})
    site.config.write_text(SETTINGS.replace("workers = 2", "workers = 1"), encoding="utf-8")
    stopped = site.sync(more)
    site.config.write_text(SETTINGS, encoding="utf-8")
    assert stopped.exit_code == 4, stopped.output
    assert stopped.data is not None
    assert "invalid JSON" in (stopped.data["stopped"] or ""), stopped.data
    assert server.injected == {kind: MAX_ATTEMPTS}
    assert server.requests_by_function[ADD_MEMBERS] == MAX_ATTEMPTS, "no more calls after it"

    heal(server)
    again = site.sync(more)
    assert again.exit_code == 0, again.output
    assert_desired(site, units_of(range(120)))
    assert_in_sync(site, more)


def test_html_pages_are_the_sites_fault_waited_out_within_the_budget(site: Site) -> None:
    kind = FaultKind.HTML_PAGE
    server = site.server
    fast = SETTINGS + "retry_delay = 0.01\n"
    site.config.write_text(fast, encoding="utf-8")
    roster = site.roster(people(SIXTY))
    # More pages than attempts: a site fault is not cut short by the attempt count.
    inject(server, rate=1.0, kinds=(kind,), limit=MAX_ATTEMPTS + 2, functions={ADD_MEMBERS})
    rode = site.sync(roster)
    assert rode.exit_code == 0, rode.output
    assert server.injected == {kind: MAX_ATTEMPTS + 2}
    assert_desired(site, units_of(SIXTY))

    # Pages for longer than the wait budget: the run stops (exit 4) and says what came back.
    site.config.write_text(fast.replace("max_total_wait = 4", "max_total_wait = 0.5"))
    more = site.roster(people(range(120)))
    inject(server, rate=1.0, kinds=(kind,), functions={ADD_MEMBERS})
    stopped = site.sync(more)
    assert stopped.exit_code == 4, stopped.output
    assert stopped.data is not None
    # The injected page's title says maintenance; its text is shown, not its markup.
    line = stopped.data["stopped"] or ""
    assert line.startswith("site in maintenance: "), line
    assert "<" not in line
    assert stopped.data["record_errors"] == []
    assert server.requests_by_function[ADD_MEMBERS] == server.injected[kind], "none after it"

    heal(server)
    site.config.write_text(SETTINGS, encoding="utf-8")
    again = site.sync(more)
    assert again.exit_code == 0, again.output
    assert_desired(site, units_of(range(120)))
    assert_in_sync(site, more)


# --- 3. a token revoked in the middle of a run -----------------------------------------------
REVOKED_PEOPLE = range(300)


def revoke_mid_run(site: Site) -> tuple[Run, int]:
    """Sync 300 people; the token is revoked once the third create batch is committed.

    Returns the run and how many requests reached the server after the revocation.
    """
    emulator, server = site.emulator, site.server
    bridge_user = emulator.world.username_index["bridge"]
    emulator.world.add_token(SECRET_TOKEN, bridge_user)
    site.token = SECRET_TOKEN
    serve = emulator.handle_form
    revoked_at: list[int] = []

    def revoke_on_third_create(body: str, query: str = "") -> Any:
        reply = serve(body, query)
        if not revoked_at and sum(1 for name, _ in emulator.calls if name == CREATE) == 3:
            emulator.world.revoke_token(SECRET_TOKEN)
            revoked_at.append(server.requests)
        return reply

    emulator.handle_form = revoke_on_third_create  # type: ignore[method-assign]
    try:
        run = site.sync(site.roster(people(REVOKED_PEOPLE)))
    finally:
        emulator.handle_form = serve  # type: ignore[method-assign]
    assert revoked_at, "the run ended before its third create batch"
    assert run.exit_code == 4, run.output
    assert run.data is not None
    assert "invalidtoken" in (run.data["stopped"] or ""), run.data["stopped"]
    assert SECRET_TOKEN not in run.output
    return run, server.requests - revoked_at[0]


def test_a_token_revoked_mid_run_stops_the_run_at_once(site: Site) -> None:
    _run, after = revoke_mid_run(site)
    # At once: only the requests already in flight (one per worker) may follow the
    # revocation; the create batches still queued must not be sent with a dead token.
    assert after <= 2, f"{after} requests were sent after the token was refused"


def test_after_a_revoked_token_the_journal_lets_the_next_run_finish_without_duplicates(
    site: Site,
) -> None:
    revoke_mid_run(site)
    created = [i for i in REVOKED_PEOPLE if site.users_by_idnumber(nip(i))]
    assert 0 < len(created) < len(REVOKED_PEOPLE)
    open_batches = batch_states(site)["pending"] + batch_states(site)["sent_unconfirmed"]
    assert open_batches >= 1, "the refused batches stay open for the next run to re-check"

    site.emulator.world.add_token(SECRET_TOKEN, site.emulator.world.username_index["bridge"])
    again = site.sync(site.roster(people(REVOKED_PEOPLE)))
    assert again.exit_code == 0, again.output
    assert again.data is not None
    assert sum(again.data["resumed"].values()) == open_batches
    assert_desired(site, units_of(REVOKED_PEOPLE))
    assert_in_sync(site, site.roster(people(REVOKED_PEOPLE)))


# --- 4. an enrolment whose answer was lost -------------------------------------------------------
ENROL = "enrol_manual_enrol_users"


@pytest.mark.parametrize("kind", [FaultKind.RESET_AFTER, FaultKind.COMMIT_THEN_FAIL], ids=str)
def test_an_enrolment_committed_before_its_answer_was_lost_stays_the_bridges_own(
    site: Site, kind: FaultKind
) -> None:
    """Moodle enrolled the batch, the answer never came: the next run finds those people
    enrolled. They are the bridge's own enrolments (sent again, recorded as manual), never
    "someone else's" that the bridge would then never suspend, retime or reactivate."""
    gaps = GapSite(site)
    wanted = manual_choices(gaps.plan())
    # Every attempt: the client sends an enrolment again (harmless) until it gives up.
    inject(site.server, rate=1.0, kinds=(kind,), functions={ENROL})

    lost = gaps.sync()

    assert lost.exit_code == 4, lost.output
    assert set(site.server.injected) == {kind}
    assert gaps.enrolments(), "Moodle committed the enrolments whose answers were lost"
    heal(site.server)

    again = gaps.sync()

    assert again.exit_code == 0, again.output
    assert set(gaps.enrolments()) == wanted
    with Store.open(site.state_dir / "state.sqlite3") as store:
        methods = {key: row.method for key, row in store.enrolments().items()}
    assert methods == dict.fromkeys(wanted, "manual")
    assert gaps.sync().writes == []
