"""The SQLite state store: files, migrations, accounts, journal, cohorts, and crash safety."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import moodle_bridge
from moodle_bridge.errors import BridgeError
from moodle_bridge.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Account,
    AccountConflict,
    Applied,
    Changes,
    CohortRow,
    EnrolmentRow,
    JournalError,
    LedgerEntry,
    NewAccount,
    SchemaTooNew,
    Store,
    StoreBusy,
    StoreError,
    UnknownAccount,
)

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes and signals are POSIX")

NIP_A = "198507262010011001"
NIP_B = "199001012015022002"
NIP_C = "197812312005031003"
TABLES = {
    "accounts",
    "cohorts",
    "cohort_members",
    "runs",
    "batches",
    "units_seen",
    "schema_migrations",
}


class Clock:
    """A settable clock, so times in the store are predictable."""

    def __init__(self, now: float = 1_780_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    with Store.open(tmp_path / "state" / "state.db", clock=clock) as opened:
        yield opened


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def nip(i: int) -> str:
    return f"19850726{i:010d}"


def owned(store: Store, *nips: str) -> None:
    store.record_accounts(NewAccount(n, 1000 + i, n, "BIMAS", f"h-{n}") for i, n in enumerate(nips))


# --- opening, files and migrations --------------------------------------------------------------
def test_fresh_database_is_migrated_and_configured(tmp_path: Path):
    path = tmp_path / "state.db"
    with Store.open(path, clock=Clock(1_780_000_000.5)) as store:
        assert store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
        assert store.journal_mode == "wal"
        db = store._db
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
    conn = raw(path)
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names >= TABLES
    assert conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall() == [
        (version, 1_780_000_000) for version, _ in MIGRATIONS
    ]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_reopening_is_idempotent_and_keeps_the_data(tmp_path: Path):
    path = tmp_path / "state.db"
    with Store.open(path) as store:
        owned(store, NIP_A)
    for _ in range(2):
        with Store.open(path) as store:
            assert store.schema_version() == SCHEMA_VERSION
            assert set(store.accounts()) == {NIP_A}
    conn = raw(path)
    assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)
    conn.close()


def test_later_migrations_are_applied_in_order_on_an_existing_database(tmp_path: Path):
    path = tmp_path / "state.db"
    with Store.open(path) as store:
        owned(store, NIP_A)
    newer = [
        *MIGRATIONS,
        (
            SCHEMA_VERSION + 1,
            "CREATE TABLE notes (nip TEXT REFERENCES accounts (nip), text TEXT);"
            "INSERT INTO notes SELECT nip, 'carried over' FROM accounts;",
        ),
        (SCHEMA_VERSION + 2, "ALTER TABLE notes ADD COLUMN seen INTEGER NOT NULL DEFAULT 0"),
    ]
    with Store.open(path, migrations=newer) as store:
        assert store.schema_version() == SCHEMA_VERSION + 2
        assert store._db.execute("SELECT nip, text, seen FROM notes").fetchall() == [
            (NIP_A, "carried over", 0)
        ]
    # The older code now refuses the file rather than guess at a schema it does not know.
    with pytest.raises(
        SchemaTooNew, match=rf"schema version {SCHEMA_VERSION + 2}, newer than the {SCHEMA_VERSION}"
    ):
        Store.open(path)


def test_a_database_newer_than_the_code_is_refused_untouched(tmp_path: Path):
    path = tmp_path / "state.db"
    Store.open(path).close()
    conn = raw(path)
    conn.execute("INSERT INTO schema_migrations VALUES (99, 0)")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(SchemaTooNew) as caught:
        Store.open(path)
    assert isinstance(caught.value, StoreError)
    assert isinstance(caught.value, BridgeError)
    assert "99" in str(caught.value)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before


def test_a_failing_migration_leaves_nothing_half_done(tmp_path: Path):
    path = tmp_path / "state.db"
    broken = [
        *MIGRATIONS,
        (
            SCHEMA_VERSION + 1,
            "CREATE TABLE half (a INTEGER); INSERT INTO no_such_table VALUES (1);",
        ),
    ]
    with pytest.raises(
        StoreError, match=rf"migration {SCHEMA_VERSION + 1} .* failed: no such table"
    ):
        Store.open(path, migrations=broken)
    conn = raw(path)
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "half" not in names
    assert (
        conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == SCHEMA_VERSION
    )
    conn.close()
    with Store.open(path) as store:
        assert store.schema_version() == SCHEMA_VERSION


@pytest.mark.parametrize(
    "migrations",
    [
        [(2, "SELECT 1")],
        [(1, "SELECT 1"), (3, "SELECT 1")],
        [(1, "SELECT 1"), (1, "SELECT 2")],
    ],
)
def test_migrations_must_be_numbered_from_one_in_order(tmp_path: Path, migrations):
    with pytest.raises(ValueError, match="numbered 1, 2, 3"):
        Store.open(tmp_path / "state.db", migrations=migrations)
    assert not (tmp_path / "state.db").exists()


def test_a_migration_script_may_hold_triggers_and_semicolons_in_strings(tmp_path: Path):
    script = """
        CREATE TABLE log (line TEXT);
        CREATE TRIGGER log_units AFTER INSERT ON units_seen BEGIN
            INSERT INTO log VALUES ('unit; ' || new.unit);
        END;
        INSERT INTO log VALUES ('a;b');
    """
    with Store.open(
        tmp_path / "state.db", migrations=[*MIGRATIONS, (SCHEMA_VERSION + 1, script)]
    ) as store:
        store.record_units_seen(None, {"PENDIS": 3})
        lines = [row[0] for row in store._db.execute("SELECT line FROM log ORDER BY rowid")]
    assert lines == ["a;b", "unit; PENDIS"]


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not SQLite at all, just some bytes" * 100)
    with pytest.raises(StoreError, match=r"state\.db"):
        Store.open(path)


@posix_only
def test_new_files_are_private_whatever_the_umask(tmp_path: Path):
    path = tmp_path / "a" / "state" / "state.db"
    old = os.umask(0)
    try:
        with Store.open(path) as store:
            owned(store, NIP_A)  # makes SQLite create the -wal and -shm files
            wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
            assert wal.exists()
            assert shm.exists()
            assert stat.S_IMODE(wal.stat().st_mode) == 0o600
            assert stat.S_IMODE(shm.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@posix_only
def test_an_existing_directory_keeps_its_mode(tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    Store.open(shared / "state.db").close()
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert stat.S_IMODE((shared / "state.db").stat().st_mode) == 0o600


def test_a_closed_store_says_so(tmp_path: Path):
    store = Store.open(tmp_path / "state.db")
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.accounts()


def test_a_full_disk_is_a_store_error_and_rolls_back(store: Store):
    owned(store, NIP_A)
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")  # as if the disk were full
    with pytest.raises(StoreError, match="full"):
        store.record_accounts(
            NewAccount(nip(i), i + 1, nip(i), "BIMAS", "h" * 64) for i in range(5_000)
        )
    assert set(store.accounts()) == {NIP_A}


def test_a_writer_waits_then_reports_a_busy_database(tmp_path: Path):
    path = tmp_path / "state.db"
    with Store.open(path, busy_timeout=0.05) as store:
        other = raw(path)
        other.execute("BEGIN IMMEDIATE")
        try:
            # Readers are not blocked by a writer in WAL mode...
            assert store.accounts() == {}
            # ...but a second writer is, for the busy timeout only.
            with pytest.raises(StoreBusy, match="locked by another process"):
                owned(store, NIP_A)
        finally:
            other.execute("ROLLBACK")
            other.close()
        owned(store, NIP_A)
        assert store.account(NIP_A) is not None


# --- accounts -----------------------------------------------------------------------------------
def test_recording_created_and_adopted_accounts(store: Store, clock: Clock):
    store.record_accounts(
        [NewAccount(NIP_A, 501, "198507262010011001", "BIMAS", "h1", how="created")]
    )
    clock.now += 60
    store.record_accounts(
        [NewAccount(NIP_B, 502, "budi.s", "PENDIS", "h2", how="adopted", suspended=True)]
    )
    a = store.account(NIP_A)
    assert a == Account(
        NIP_A,
        501,
        "198507262010011001",
        "BIMAS",
        "created",
        "h1",
        False,
        1_780_000_000,
        1_780_000_000,
    )
    b = store.account_by_moodle_id(502)
    assert b is not None
    assert (b.nip, b.how, b.suspended, b.owned_since) == (NIP_B, "adopted", True, 1_780_000_060)
    assert store.account(NIP_C) is None
    assert store.account_by_moodle_id(999) is None
    assert set(store.accounts()) == {NIP_A, NIP_B}
    assert set(store.accounts("PENDIS")) == {NIP_B}
    assert store.accounts("NOWHERE") == {}


def test_recording_the_same_account_again_updates_it_but_keeps_ownership(
    store: Store, clock: Clock
):
    store.record_accounts([NewAccount(NIP_A, 501, "old.name", "BIMAS", "h1", how="adopted")])
    clock.now += 100
    store.record_accounts(
        [NewAccount(NIP_A, 501, NIP_A, "PENDIS", "h2", how="created", record={"firstname": "Siti"})]
    )
    a = store.account(NIP_A)
    assert a is not None
    assert (a.username, a.unit, a.applied_hash) == (NIP_A, "PENDIS", "h2")
    assert (a.how, a.owned_since, a.updated_at) == ("adopted", 1_780_000_000, 1_780_000_100)
    assert store.applied_records([NIP_A]) == {NIP_A: {"firstname": "Siti"}}


def test_a_nip_is_never_given_a_second_moodle_id(store: Store):
    store.record_accounts([NewAccount(NIP_A, 501, NIP_A, "BIMAS", "h1", how="created")])
    with pytest.raises(AccountConflict) as caught:
        store.record_accounts(
            [
                NewAccount(NIP_B, 502, NIP_B, "BIMAS", "h2"),
                NewAccount(NIP_A, 777, NIP_A, "BIMAS", "h3"),  # Moodle does not enforce idnumbers
            ]
        )
    assert caught.value.nips == (NIP_A,)
    assert NIP_A not in str(caught.value)  # messages get logged; NIPs stay in .nips
    assert set(store.accounts()) == {NIP_A}  # all or nothing: NIP_B was not recorded either
    assert store.account(NIP_A) == store.account_by_moodle_id(501)


def test_a_moodle_id_is_never_owned_under_two_nips(store: Store):
    store.record_accounts([NewAccount(NIP_A, 501, NIP_A, "BIMAS", "h1", how="created")])
    with pytest.raises(AccountConflict) as caught:
        store.record_accounts(
            [
                NewAccount(NIP_C, 503, NIP_C, "BIMAS", "h3"),
                NewAccount(NIP_B, 501, NIP_B, "BIMAS", "h2"),
            ]
        )
    assert caught.value.nips == (NIP_B,)
    assert set(store.accounts()) == {NIP_A}


def test_conflicts_inside_one_call_are_refused_too(store: Store):
    with pytest.raises(AccountConflict) as caught:
        store.record_accounts(
            [
                NewAccount(NIP_A, 501, NIP_A, "BIMAS", "h1"),
                NewAccount(NIP_A, 502, NIP_A, "BIMAS", "h1"),
            ]
        )
    assert caught.value.nips == (NIP_A,)
    assert store.accounts() == {}


def test_an_invalid_ownership_is_a_store_error(store: Store):
    stolen = NewAccount(NIP_A, 501, NIP_A, "BIMAS", "h", how="stolen")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="CHECK constraint"):
        store.record_accounts([stolen])


def test_record_applied_updates_hash_suspension_and_record(store: Store, clock: Clock):
    owned(store, NIP_A, NIP_B)
    clock.now += 5
    store.record_applied(
        [
            (NIP_A, "new-a", True),
            Applied(NIP_B, "new-b", False, {"email": "b@kemenag.go.id"}),
        ]
    )
    a, b = store.account(NIP_A), store.account(NIP_B)
    assert a is not None
    assert b is not None
    assert (a.applied_hash, a.suspended, a.updated_at) == ("new-a", True, 1_780_000_005)
    assert (b.applied_hash, b.suspended) == ("new-b", False)
    assert store.applied_records([NIP_A, NIP_B, NIP_C]) == {NIP_B: {"email": "b@kemenag.go.id"}}
    # A record is only kept together with its hash: a new hash without one forgets it.
    store.record_applied([(NIP_B, "newer-b", False)])
    assert store.applied_records([NIP_B]) == {}


def test_record_applied_refuses_accounts_it_does_not_own_and_writes_nothing(store: Store):
    owned(store, NIP_A)
    with pytest.raises(UnknownAccount) as caught:
        store.record_applied([(NIP_A, "new-a", True), (NIP_C, "new-c", False)])
    assert caught.value.nips == (NIP_C,)
    assert NIP_C not in str(caught.value)
    a = store.account(NIP_A)
    assert a is not None
    assert (a.applied_hash, a.suspended) == (f"h-{NIP_A}", False)


def test_a_whole_civil_service_in_one_transaction(store: Store):
    """233,000 accounts: recorded, re-applied and loaded in one statement each."""
    count = 233_000
    store.record_accounts(
        NewAccount(nip(i), i + 1, nip(i), ("BIMAS", "PENDIS", "SETJEN")[i % 3], "h0")
        for i in range(count)
    )
    store.record_applied((nip(i), f"h1-{i}", i % 100 == 0) for i in range(count))
    accounts = store.accounts()
    assert len(accounts) == count
    last = accounts[nip(count - 1)]
    assert (last.moodle_id, last.applied_hash, last.suspended) == (count, f"h1-{count - 1}", False)
    assert sum(a.suspended for a in accounts.values()) == count // 100
    assert len(store.accounts("PENDIS")) == len(range(1, count, 3))


# --- runs and the journal -----------------------------------------------------------------------
def test_runs_begin_and_finish(store: Store, clock: Clock):
    run_id = store.begin_run("sync", "BIMAS")
    run = store.run(run_id)
    assert run is not None
    assert (run.command, run.unit, run.status, run.started_at) == (
        "sync",
        "BIMAS",
        "running",
        1_780_000_000,
    )
    assert (run.pid, run.finished_at, run.summary) == (os.getpid(), None, None)
    assert run.host
    assert store.unfinished_runs() == [run]
    clock.now += 42
    store.finish_run(run_id, "record_errors", {"create": 10, "errors": [{"row": 7}]})
    done = store.run(run_id)
    assert done is not None
    assert (done.status, done.finished_at) == ("record_errors", 1_780_000_042)
    assert done.summary == {"create": 10, "errors": [{"row": 7}]}
    assert store.unfinished_runs() == []
    assert store.run(run_id + 1) is None


def test_a_run_finishes_once_and_never_as_running(store: Store):
    run_id = store.begin_run("plan", None)
    with pytest.raises(ValueError, match="'running'"):
        store.finish_run(run_id, "running")  # type: ignore[arg-type]
    store.finish_run(run_id, "ok")
    with pytest.raises(JournalError, match=f"run {run_id}: it is ok, not running"):
        store.finish_run(run_id, "fatal")
    with pytest.raises(JournalError, match="not in the journal"):
        store.finish_run(999, "ok")


def test_unfinished_runs_can_be_marked_crashed(store: Store):
    first, second, third = (store.begin_run("sync", u) for u in ("A", "B", "C"))
    store.finish_run(third, "ok")
    assert [r.id for r in store.unfinished_runs()] == [first, second]
    assert store.mark_crashed([first, third, 999]) == 1
    assert [r.id for r in store.unfinished_runs()] == [second]
    crashed = store.run(first)
    assert crashed is not None
    assert crashed.status == "crashed"
    with pytest.raises(JournalError, match="crashed, not running"):
        store.finish_run(first, "ok")


def test_a_batch_is_committed_before_journal_batch_returns(store: Store):
    run_id = store.begin_run("sync", "BIMAS")
    payload = {"nips": [NIP_A], "records": {NIP_A: {"username": NIP_A, "firstname": "Siti"}}}
    batch_id = store.journal_batch(run_id, "create_users", payload)
    # Another connection, as a process started after a crash would have, already sees it.
    other = raw(store.path)
    assert other.execute(
        "SELECT state, payload_json FROM batches WHERE id = ?", (batch_id,)
    ).fetchone() == ("pending", json.dumps(payload, separators=(",", ":")))
    other.close()
    batch = store.batch(batch_id)
    assert batch is not None
    assert (batch.run_id, batch.action, batch.payload, batch.state) == (
        run_id,
        "create_users",
        payload,
        "pending",
    )
    assert (batch.settled_at, batch.settled_by_run, batch.result) == (None, None, None)


def test_journal_batch_needs_a_known_run_and_a_json_payload(store: Store):
    with pytest.raises(JournalError, match="run 5 is not in the journal"):
        store.journal_batch(5, "create_users", [])
    run_id = store.begin_run("sync", None)
    with pytest.raises(TypeError):
        store.journal_batch(run_id, "create_users", {"nips": {NIP_A}})
    with pytest.raises(ValueError, match="JSON"):
        store.journal_batch(run_id, "create_users", {"x": float("nan")})
    assert store.pending_batches() == []


def test_confirm_records_the_answer_and_the_accounts_together(store: Store, clock: Clock):
    run_id = store.begin_run("sync", "BIMAS")
    store.record_cohort(CohortRow("kemenag-bimas", 7, "Bimas Islam", True))
    owned(store, NIP_C)
    batch_id = store.journal_batch(run_id, "create_users", {"nips": [NIP_A, NIP_B]})
    clock.now += 3
    store.confirm_batch(
        batch_id,
        [{"id": 501, "username": NIP_A}, {"id": 502, "username": NIP_B}],
        Changes(
            accounts=[
                NewAccount(NIP_A, 501, NIP_A, "BIMAS", "ha", record={"firstname": "Siti"}),
                NewAccount(NIP_B, 502, NIP_B, "BIMAS", "hb"),
            ],
            applied=[(NIP_C, "hc2", True)],
            cohorts=[CohortRow("kemenag-pendis", 8, "Pendidikan Islam", True)],
            members_added=[("kemenag-bimas", NIP_A), ("kemenag-pendis", NIP_B)],
        ),
    )
    batch = store.batch(batch_id)
    assert batch is not None
    assert (batch.state, batch.settled_at, batch.settled_by_run) == (
        "confirmed",
        1_780_000_003,
        run_id,
    )
    assert batch.result == [{"id": 501, "username": NIP_A}, {"id": 502, "username": NIP_B}]
    assert {n: a.moodle_id for n, a in store.accounts().items()} == {
        NIP_A: 501,
        NIP_B: 502,
        NIP_C: 1000,
    }
    c = store.account(NIP_C)
    assert c is not None
    assert (c.applied_hash, c.suspended) == ("hc2", True)
    assert store.applied_records([NIP_A]) == {NIP_A: {"firstname": "Siti"}}
    assert store.cohort_members() == {"kemenag-bimas": {NIP_A}, "kemenag-pendis": {NIP_B}}
    assert store.pending_batches() == []
    with pytest.raises(JournalError, match="already confirmed"):
        store.confirm_batch(batch_id, None)
    with pytest.raises(JournalError, match="already confirmed"):
        store.fail_batch(batch_id, "late")


def test_a_confirm_that_breaks_an_invariant_records_nothing(store: Store):
    run_id = store.begin_run("sync", "BIMAS")
    owned(store, NIP_C)  # Moodle id 1000
    batch_id = store.journal_batch(run_id, "create_users", {"nips": [NIP_A, NIP_B]})
    with pytest.raises(AccountConflict):
        store.confirm_batch(
            batch_id,
            {"ok": True},
            Changes(
                accounts=[
                    NewAccount(NIP_A, 501, NIP_A, "BIMAS", "ha"),
                    NewAccount(NIP_B, 1000, NIP_B, "BIMAS", "hb"),
                ]
            ),
        )
    with pytest.raises(StoreError, match="cohort or an account is not recorded"):
        store.confirm_batch(
            batch_id, {"ok": True}, Changes(members_added=[("kemenag-nowhere", NIP_C)])
        )
    with pytest.raises(UnknownAccount):
        store.confirm_batch(batch_id, None, Changes(applied=[(NIP_A, "x", False)]))
    assert [b.id for b in store.pending_batches()] == [batch_id]
    batch = store.batch(batch_id)
    assert batch is not None
    assert (batch.state, batch.result, batch.settled_at) == ("pending", None, None)
    assert set(store.accounts()) == {NIP_C}


def test_fail_batch_keeps_the_reason(store: Store):
    run_id = store.begin_run("sync", "BIMAS")
    batch_id = store.journal_batch(run_id, "update_users", {"nips": [NIP_A]})
    store.fail_batch(batch_id, "invalidparameter", result={"errorcode": "invalidparameter"})
    batch = store.batch(batch_id)
    assert batch is not None
    assert batch.state == "failed"
    assert batch.result == {
        "reason": "invalidparameter",
        "result": {"errorcode": "invalidparameter"},
    }
    with pytest.raises(JournalError, match="already failed"):
        store.confirm_batch(batch_id)
    with pytest.raises(JournalError, match="batch 99: it is not in the journal"):
        store.fail_batch(99, "x")


def test_mark_sent_keeps_a_batch_open(store: Store):
    run_id = store.begin_run("sync", "BIMAS")
    batch_id = store.journal_batch(run_id, "enrol", {"nips": [NIP_A]})
    store.mark_sent(batch_id)
    assert [(b.id, b.state) for b in store.pending_batches()] == [(batch_id, "sent_unconfirmed")]
    with pytest.raises(JournalError, match="already sent_unconfirmed"):
        store.mark_sent(batch_id)
    store.confirm_batch(batch_id, {"warnings": []})
    assert store.pending_batches() == []


def test_pending_batches_survive_a_crash_and_are_resolved_by_the_next_run(tmp_path: Path):
    path = tmp_path / "state.db"
    # The first process journals three batches and dies before confirming the last two.
    crashed = Store.open(path)
    first_run = crashed.begin_run("sync", "BIMAS")
    done = crashed.journal_batch(first_run, "create_users", {"nips": [NIP_A]})
    crashed.confirm_batch(
        done, [{"id": 501}], Changes(accounts=[NewAccount(NIP_A, 501, NIP_A, "BIMAS", "ha")])
    )
    lost = crashed.journal_batch(first_run, "create_users", {"nips": [NIP_B]})
    unsent = crashed.journal_batch(first_run, "create_users", {"nips": [NIP_C]})
    crashed._db.close()  # as a killed process would: no orderly close

    with Store.open(path) as store:
        assert [r.id for r in store.unfinished_runs()] == [first_run]
        assert store.mark_crashed([first_run]) == 1
        resume = store.begin_run("sync", "BIMAS")
        pending = store.pending_batches()
        assert [(b.id, b.run_id, b.payload) for b in pending] == [
            (lost, first_run, {"nips": [NIP_B]}),
            (unsent, first_run, {"nips": [NIP_C]}),
        ]
        # The re-check finds NIP_B in Moodle (the request did arrive) and NIP_C missing.
        store.resolve_batch(
            lost,
            {"found": {NIP_B: 502}},
            Changes(accounts=[NewAccount(NIP_B, 502, NIP_B, "BIMAS", "hb")]),
            run_id=resume,
        )
        store.resolve_batch(unsent, {"found": {}, "missing": [NIP_C]}, run_id=resume)
        assert store.pending_batches() == []
        assert [(b.id, b.state, b.settled_by_run) for b in store.batches(first_run)] == [
            (done, "confirmed", first_run),
            (lost, "resolved", resume),
            (unsent, "resolved", resume),
        ]
        assert store.account_by_moodle_id(502) is not None
        with pytest.raises(JournalError, match="already resolved"):
            store.resolve_batch(lost, None, run_id=resume)


def test_the_store_can_be_shared_between_worker_threads(store: Store):
    run_id = store.begin_run("sync", "BIMAS")
    count, workers = 200, 4
    batch_ids = [
        store.journal_batch(run_id, "create_users", {"nips": [nip(i)]}) for i in range(count)
    ]
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(worker, count, workers):
                store.confirm_batch(
                    batch_ids[i],
                    {"id": i + 1},
                    Changes(accounts=[NewAccount(nip(i), i + 1, nip(i), "BIMAS", "h")]),
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.accounts()) == count
    assert store.pending_batches() == []


# --- cohorts and units --------------------------------------------------------------------------
def test_cohorts_and_their_members(store: Store):
    owned(store, NIP_A, NIP_B)
    store.record_cohort(CohortRow("kemenag-bimas", None, "Bimas Islam", False))
    store.record_cohort(CohortRow("kemenag-bimas", 7, "Bimas Islam (baru)", True))
    store.record_cohort(CohortRow("kemenag-bimas", 7, "Bimas Islam", False))
    store.record_cohort(CohortRow("kemenag-pendis", 8, "Pendidikan Islam", False))
    assert store.cohort("kemenag-bimas") == CohortRow("kemenag-bimas", 7, "Bimas Islam", True)
    assert store.cohort("nope") is None
    assert set(store.cohorts()) == {"kemenag-bimas", "kemenag-pendis"}

    store.add_members(
        [("kemenag-bimas", NIP_A), ("kemenag-bimas", NIP_B), ("kemenag-pendis", NIP_A)]
    )
    store.add_members([("kemenag-bimas", NIP_A)])  # again: harmless
    assert store.cohort_members() == {"kemenag-bimas": {NIP_A, NIP_B}, "kemenag-pendis": {NIP_A}}
    assert store.cohort_members("kemenag-pendis") == {"kemenag-pendis": {NIP_A}}
    store.remove_members([("kemenag-bimas", NIP_B), ("kemenag-bimas", NIP_C)])
    assert store.cohort_members("kemenag-bimas") == {"kemenag-bimas": {NIP_A}}
    store.remove_cohort("kemenag-pendis")
    assert store.cohort_members() == {"kemenag-bimas": {NIP_A}}
    assert set(store.cohorts()) == {"kemenag-bimas"}


def test_members_need_a_recorded_cohort_and_an_owned_account(store: Store):
    owned(store, NIP_A)
    store.record_cohort(CohortRow("kemenag-bimas", 7, "Bimas Islam", True))
    with pytest.raises(StoreError, match="not recorded"):
        store.add_members([("kemenag-bimas", NIP_A), ("kemenag-bimas", NIP_C)])
    with pytest.raises(StoreError, match="not recorded"):
        store.add_members([("kemenag-other", NIP_A)])
    assert store.cohort_members() == {}


def test_a_moodle_cohort_id_belongs_to_one_cohort(store: Store):
    store.record_cohort(CohortRow("kemenag-bimas", 7, "Bimas Islam", True))
    with pytest.raises(StoreError, match="cohort id"):
        store.record_cohort(CohortRow("kemenag-pendis", 7, "Pendidikan Islam", True))


def test_units_seen(store: Store, clock: Clock):
    first = store.begin_run("sync", None)
    store.record_units_seen(first, {"BIMAS": 120, "PENDIS": 80})
    clock.now += 86_400
    second = store.begin_run("sync", "PENDIS")
    store.record_units_seen(second, {"PENDIS": 82})
    seen = store.units_seen()
    assert {u: (s.last_run_id, s.people_count) for u, s in seen.items()} == {
        "BIMAS": (first, 120),
        "PENDIS": (second, 82),
    }
    assert seen["PENDIS"].updated_at == 1_780_086_400
    store.forget_units(["BIMAS"])
    assert set(store.units_seen()) == {"PENDIS"}
    with pytest.raises(StoreError, match="run 999"):
        store.record_units_seen(999, {"SETJEN": 1})


# --- crash safety -------------------------------------------------------------------------------
CRASH_ROWS = 100_000
CRASH_BATCH = 20_000

#: The child process: writes big transactions in a loop and says on stdout when each one
#: begins and commits (from SQLite's own statement trace, so "tx" means BEGIN has run and no
#: "commit" means COMMIT has not started).
CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from moodle_bridge.store import NewAccount, Store

    path, mode, rows = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    store = Store.open(path)
    generation = 0

    def trace(statement):
        if statement == "BEGIN IMMEDIATE":
            sys.stdout.write(f"tx {generation}\\n")
            sys.stdout.flush()
        elif statement == "COMMIT":
            sys.stdout.write(f"commit {generation}\\n")
            sys.stdout.flush()

    nips = [f"19850726{i:010d}" for i in range(rows)]
    while True:
        generation += 1
        if mode == "applied":
            batch = [(n, f"g{generation}", generation % 2 == 0) for n in nips]
            store._db.set_trace_callback(trace)
            store.record_applied(batch)
        else:
            batch = [NewAccount(f"{generation:04d}{i:014d}", generation * 10_000_000 + i,
                                "u", "BIMAS", "h") for i in range(rows)]
            store._db.set_trace_callback(trace)
            store.record_accounts(batch)
        store._db.set_trace_callback(None)
""")


@pytest.fixture(scope="module")
def crash_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("crash") / "template.db"
    with Store.open(path) as store:
        store.record_accounts(
            NewAccount(nip(i), i + 1, nip(i), "BIMAS", "g0") for i in range(CRASH_ROWS)
        )
    return path


def _kill_mid_transaction(path: Path, mode: str, rows: int, fraction: float) -> tuple[int, bool]:
    """Run the child, kill it with SIGKILL inside its second (or later) transaction.

    Returns the generation it was in and whether its COMMIT had started.
    """
    root = Path(moodle_bridge.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), mode, str(rows)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert child.stdout is not None
    stdout = child.stdout

    def read() -> None:
        for line in stdout:
            lines.put(line.strip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        began: dict[int, float] = {}
        took = None
        while True:
            event, generation = lines.get(timeout=120).split()
            number = int(generation)
            if event == "tx":
                began[number] = time.monotonic()
                if took is not None:
                    break
            else:
                took = time.monotonic() - began[number]
        time.sleep(took * fraction)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:  # pragma: no cover - only when the test itself fails
            child.kill()
            child.wait()
    reader.join(timeout=30)
    events = []
    while not lines.empty():
        events.append(lines.get())
    return number, f"commit {number}" in events


def _integrity(path: Path) -> str:
    conn = raw(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


@posix_only
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_sigkill_during_record_applied_leaves_all_or_nothing(
    tmp_path: Path, crash_template: Path, fraction: float
):
    path = tmp_path / "state.db"
    shutil.copy(crash_template, path)
    generation, commit_started = _kill_mid_transaction(path, "applied", CRASH_ROWS, fraction)

    assert _integrity(path) == "ok"
    with Store.open(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        accounts = store.accounts()
    assert len(accounts) == CRASH_ROWS
    states = {(a.applied_hash, a.suspended) for a in accounts.values()}
    before = (f"g{generation - 1}", (generation - 1) % 2 == 0)
    after = (f"g{generation}", generation % 2 == 0)
    # Every row carries the same generation: the killed transaction wrote all of its rows
    # or none of them; and if its COMMIT never started, none.
    assert states in ({before}, {after}) if commit_started else states == {before}


@posix_only
def test_sigkill_during_record_accounts_leaves_all_or_nothing(tmp_path: Path, crash_template: Path):
    path = tmp_path / "state.db"
    shutil.copy(crash_template, path)
    generation, commit_started = _kill_mid_transaction(path, "insert", CRASH_BATCH, 0.5)

    assert _integrity(path) == "ok"
    conn = raw(path)
    per_generation = dict(
        conn.execute(
            "SELECT substr(nip, 1, 4), count(*) FROM accounts WHERE username = 'u' GROUP BY 1"
        )
    )
    conn.close()
    done = {f"{g:04d}": CRASH_BATCH for g in range(1, generation)}
    if commit_started and per_generation.get(f"{generation:04d}"):
        done[f"{generation:04d}"] = CRASH_BATCH
    assert per_generation == done


def test_enrolments_are_recorded_with_their_batch(tmp_path: Path):
    with Store.open(tmp_path / "state.db") as store:
        owned(store, NIP_A)
        store.record_courses({"TEK-KEU-1": 5})
        run = store.begin_run("sync", "PENDIS")
        batch = store.journal_batch(run, "enrol", {"n": 1})
        store.confirm_batch(
            batch, None, Changes(enrolments=[EnrolmentRow(NIP_A, "TEK-KEU-1", False, 10, 20)])
        )
        assert store.courses() == {"TEK-KEU-1": 5}
        [made] = store.enrolments().values()
        assert made[:5] == (NIP_A, "TEK-KEU-1", False, 10, 20)
        assert made.enrolled_at > 0
        later = store.journal_batch(run, "enrol", {"n": 1})
        store.confirm_batch(
            later, None, Changes(enrolments=[EnrolmentRow(NIP_A, "TEK-KEU-1", True, 10, 20)])
        )
        again = store.enrolments()[(NIP_A, "TEK-KEU-1")]
        assert again.suspended is True
        assert again.enrolled_at == made.enrolled_at, "first enrolment time is kept"
        # An enrolment of someone the bridge does not own is refused, with the batch left open.
        third = store.journal_batch(run, "enrol", {"n": 1})
        with pytest.raises(StoreError):
            store.confirm_batch(
                third, None, Changes(enrolments=[EnrolmentRow(NIP_B, "TEK-KEU-1", False)])
            )
        assert [b.id for b in store.pending_batches()] == [third]


def test_the_completion_ledger_is_append_only(tmp_path: Path):
    with Store.open(tmp_path / "state.db") as store:
        entry = LedgerEntry(NIP_A, "TEK-KEU-1", 1_760_000_000, 20, "TEK-KEU", 2)
        assert store.record_completions([entry]) == 1
        # Recording it again (a later pull) changes nothing and adds nothing.
        assert store.record_completions([entry._replace(jp=99)]) == 0
        assert store.completions() == [entry]
        assert store.completions(since=1_760_000_001) == []
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            store._db.execute("DELETE FROM completions")
