"""The bridge's own state in SQLite: owned accounts, cohorts, runs and the batch journal.

One file per state directory, opened with :meth:`Store.open`. It holds NIPs, so the file is
created readable by its owner only, inside a directory only its owner can enter.

Durability: every write is one transaction, and transactions are committed with
``synchronous=FULL``. In WAL mode ``NORMAL`` survives a killed process but may lose the last
commits on a power cut; the journal's promise is that a batch is on disk *before* its request
leaves, so a lost ``pending`` row could mean an account created in Moodle that no later run
knows to look for. One fsync per batch of a few hundred records is a cheap price for that.

The schema changes only through the numbered :data:`MIGRATIONS`, recorded in
``schema_migrations``; a database written by a newer moodle_bridge is refused, not guessed at.

The store holds no business rules: it records what the executor tells it, refuses only what
would break its own invariants (one account per NIP, one NIP per Moodle id, journal states
moving forward), and never prints. A :class:`Store` may be shared between threads: each
method holds the store's lock for its whole transaction.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple, Self, get_args

from moodle_bridge.errors import BridgeError

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Account",
    "AccountConflict",
    "Applied",
    "AppliedRow",
    "Batch",
    "BatchState",
    "CohortRow",
    "EnrolmentRow",
    "FinalStatus",
    "JournalError",
    "LedgerEntry",
    "Migration",
    "NewAccount",
    "Ownership",
    "Run",
    "RunStatus",
    "SchemaTooNew",
    "StateDamaged",
    "Store",
    "StoreBusy",
    "StoreError",
    "UnitSeen",
    "UnknownAccount",
]


# --- errors -------------------------------------------------------------------------------------
class StoreError(BridgeError):
    """The state database cannot be opened, migrated or written as asked."""


class SchemaTooNew(StoreError):
    """The database was written by a newer moodle_bridge than this one."""


class StateDamaged(StoreError):
    """The state database file is not a SQLite database, or its pages are corrupt.

    The message names the file, the newest backup kept before a migration (if any) and the
    ``sqlite3 .recover`` command that rebuilds a database from what is left of it.
    """


class StoreBusy(StoreError):
    """Another process held the database's write lock for longer than the busy timeout."""


class JournalError(StoreError):
    """A run or batch is unknown, or not in a state that allows the change asked for."""


class AccountConflict(StoreError):
    """Recording these accounts would give a NIP two Moodle ids, or a Moodle id two NIPs.

    ``nips`` lists the NIPs concerned; the message does not, so it can be logged as it is.
    """

    def __init__(self, message: str, nips: Sequence[str]) -> None:
        super().__init__(message)
        self.nips = tuple(nips)


class UnknownAccount(StoreError):
    """An applied state was recorded for NIPs whose accounts the store does not hold.

    ``nips`` lists them; the message does not.
    """

    def __init__(self, message: str, nips: Sequence[str]) -> None:
        super().__init__(message)
        self.nips = tuple(nips)


# --- records ------------------------------------------------------------------------------------
Ownership = Literal["created", "adopted"]
RunStatus = Literal["running", "ok", "record_errors", "guard", "fatal", "crashed"]
#: The statuses a run may finish with.
FinalStatus = Literal["ok", "record_errors", "guard", "fatal", "crashed"]
BatchState = Literal["pending", "sent_unconfirmed", "confirmed", "failed", "resolved"]

_FINAL_STATUSES = frozenset(get_args(FinalStatus))
_SETTLE_VERBS = {"confirmed": "confirm", "failed": "fail", "resolved": "resolve"}
#: Batches in these states may or may not have reached Moodle: re-check before resending.
_OPEN_STATES = ("pending", "sent_unconfirmed")


class Account(NamedTuple):
    """An account the bridge owns. Times are Unix seconds."""

    nip: str
    moodle_id: int
    username: str
    unit: str
    how: Ownership
    #: Hash of the desired record last applied to Moodle (None: unknown).
    applied_hash: str | None
    #: What the bridge last set.
    suspended: bool
    owned_since: int
    updated_at: int
    #: The roster's date of the latest row that listed the person (0: never recorded).
    seen_at: int = 0
    #: When a run first missed the person in their unit's roster (None: not absent).
    absent_since: int | None = None
    #: Why (a JSON reason), when and by which run the bridge suspended the account.
    suspended_reason: str | None = None
    suspended_at: int | None = None
    suspended_by_run: int | None = None


class NewAccount(NamedTuple):
    """An account to record as owned: just created in Moodle, or adopted.

    Recording the same NIP again with the same Moodle id updates username, unit, hash,
    record and suspension (ownership and ``owned_since`` are kept).
    """

    nip: str
    moodle_id: int
    username: str
    unit: str
    applied_hash: str | None
    how: Ownership = "created"
    suspended: bool = False
    #: The applied record itself, kept so a later plan can send only the fields that differ.
    record: Mapping[str, Any] | None = None
    display_name: str = ""
    #: The roster's date of the row that listed the person.
    seen_at: int = 0


class Applied(NamedTuple):
    """What was just applied to an owned account. A plain ``(nip, hash, suspended)`` works too.

    The stored record is replaced by ``record``: None means "not kept", never "unchanged".
    ``unit``, ``display_name`` and ``seen_at`` are kept as they were when None. ``reason`` is
    why the account was suspended (JSON); the settling run is recorded with it, and an
    unsuspended account forgets both, and any absence.
    """

    nip: str
    applied_hash: str | None
    suspended: bool
    record: Mapping[str, Any] | None = None
    unit: str | None = None
    reason: str | None = None
    display_name: str | None = None
    seen_at: int | None = None


AppliedRow = Applied | tuple[str, str | None, bool]


EnrolMethod = Literal["manual", "cohort", "other"]


class EnrolmentRow(NamedTuple):
    """An enrolment the bridge knows of: course by shortname, as the bridge last set it.

    ``method``: ``manual`` (the bridge enrolled the person), ``cohort`` (through the bridge's
    audience cohort ``cohort`` of the course) or ``other`` (someone else enrolled the person
    before the bridge would have: counted for the cap and pulled, never written).
    """

    nip: str
    course: str
    suspended: bool
    timestart: int = 0
    timeend: int = 0
    #: When the bridge first made it (set by the store; ignored when recording).
    enrolled_at: int = 0
    method: EnrolMethod = "manual"
    cohort: str | None = None
    #: Why (JSON) and by which run the bridge suspended it; kept only while suspended.
    suspended_reason: str | None = None
    suspended_by_run: int | None = None


class PersonChange(NamedTuple):
    """One person-level change a run applied (or a plan proposes), for people to read.

    ``action``: create, update, move, suspend, unsuspend, cohort_add, cohort_remove,
    enrol_enrol, enrol_suspend, enrol_reactivate, enrol_retime. ``target`` is the cohort or
    course; ``reason`` a JSON reason; ``detail`` JSON (changed fields before and after).
    """

    action: str
    nip: str
    unit: str
    target: str
    reason: str
    detail: str | None
    source: str
    row: int


class SiteIdentity(NamedTuple):
    """The Moodle site a state belongs to."""

    url: str
    siteurl: str
    sitename: str
    release: str
    token_userid: int


@dataclass
class Changes:
    """What one settled batch changed, recorded in the same transaction as its settlement.

    ``accounts`` were created (or adopted), ``applied`` owned accounts were updated,
    ``cohorts`` created or found, members are ``(cohort_idnumber, nip)``, ``enrolments``
    made or changed, and ``log`` the person-level lines for the run's change log.
    """

    accounts: list[NewAccount] = field(default_factory=list)
    applied: list[AppliedRow] = field(default_factory=list)
    cohorts: list[CohortRow] = field(default_factory=list)
    members_added: list[tuple[str, str]] = field(default_factory=list)
    members_removed: list[tuple[str, str]] = field(default_factory=list)
    enrolments: list[EnrolmentRow] = field(default_factory=list)
    log: list[PersonChange] = field(default_factory=list)


class LedgerEntry(NamedTuple):
    """A course completion in the ledger: who, which course, when, and what it was worth."""

    nip: str
    course: str
    timecompleted: int
    jp: int = 0
    competency: str = ""
    to_level: int = 0
    source: str = "moodle"
    #: How the person was enrolled (see :class:`EnrolmentRow`) and when the enrolment started.
    method: str = "manual"
    timestarted: int = 0


class CohortRow(NamedTuple):
    """A cohort the bridge knows, found in Moodle or created by the bridge."""

    idnumber: str
    moodle_id: int | None
    name: str
    created_by_bridge: bool
    #: Found in Moodle and taken over on purpose (``--adopt-cohorts``).
    adopted: bool = False


class Run(NamedTuple):
    """One invocation of a command. Times are Unix seconds; ``summary`` is decoded JSON."""

    id: int
    command: str
    unit: str | None
    status: RunStatus
    started_at: int
    finished_at: int | None
    summary: Any
    #: Process id and host name of the process that began the run.
    pid: int | None
    host: str | None
    #: The manifest source (or roster) it ran for, who ran it, and how it exited.
    source: str | None = None
    os_user: str | None = None
    exit_code: int | None = None


class Batch(NamedTuple):
    """One journalled request. ``payload`` and ``result`` are decoded JSON."""

    id: int
    run_id: int
    action: str
    payload: Any
    state: BatchState
    created_at: int
    #: When it left the open states (confirmed, failed or resolved), and by which run.
    settled_at: int | None
    settled_by_run: int | None
    result: Any


class UnitSeen(NamedTuple):
    """A unit as the last roster that covered it listed it."""

    unit: str
    last_run_id: int | None
    people_count: int
    updated_at: int


# --- schema -------------------------------------------------------------------------------------
#: ``(version, SQL)``: numbered from 1, applied in order, each in its own transaction.
Migration = tuple[int, str]

_MIGRATION_1 = """
CREATE TABLE accounts (
    nip          TEXT    NOT NULL PRIMARY KEY,
    moodle_id    INTEGER NOT NULL UNIQUE,
    username     TEXT    NOT NULL,
    unit         TEXT    NOT NULL,
    how          TEXT    NOT NULL CHECK (how IN ('created', 'adopted')),
    applied_hash TEXT,
    applied_json TEXT,
    suspended    INTEGER NOT NULL DEFAULT 0 CHECK (suspended IN (0, 1)),
    owned_since  INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX accounts_unit ON accounts (unit);

CREATE TABLE cohorts (
    idnumber          TEXT    NOT NULL PRIMARY KEY,
    moodle_id         INTEGER UNIQUE,
    name              TEXT    NOT NULL,
    created_by_bridge INTEGER NOT NULL CHECK (created_by_bridge IN (0, 1)),
    updated_at        INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE cohort_members (
    cohort_idnumber TEXT    NOT NULL
                    REFERENCES cohorts (idnumber) ON DELETE CASCADE ON UPDATE CASCADE,
    nip             TEXT    NOT NULL
                    REFERENCES accounts (nip) ON DELETE CASCADE ON UPDATE CASCADE,
    added_at        INTEGER NOT NULL,
    PRIMARY KEY (cohort_idnumber, nip)
) WITHOUT ROWID;
CREATE INDEX cohort_members_nip ON cohort_members (nip);

CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    command      TEXT    NOT NULL,
    unit         TEXT,
    status       TEXT    NOT NULL DEFAULT 'running' CHECK (status IN
                 ('running', 'ok', 'record_errors', 'guard', 'fatal', 'crashed')),
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    summary_json TEXT,
    pid          INTEGER,
    host         TEXT
);
CREATE INDEX runs_running ON runs (id) WHERE status = 'running';

CREATE TABLE batches (
    id             INTEGER PRIMARY KEY,
    run_id         INTEGER NOT NULL REFERENCES runs (id),
    action         TEXT    NOT NULL,
    payload_json   TEXT    NOT NULL,
    state          TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN
                   ('pending', 'sent_unconfirmed', 'confirmed', 'failed', 'resolved')),
    created_at     INTEGER NOT NULL,
    settled_at     INTEGER,
    settled_by_run INTEGER REFERENCES runs (id),
    result_json    TEXT
);
CREATE INDEX batches_run ON batches (run_id);
CREATE INDEX batches_open ON batches (id) WHERE state IN ('pending', 'sent_unconfirmed');

CREATE TABLE units_seen (
    unit         TEXT    NOT NULL PRIMARY KEY,
    last_run_id  INTEGER REFERENCES runs (id),
    people_count INTEGER NOT NULL CHECK (people_count >= 0),
    updated_at   INTEGER NOT NULL
) WITHOUT ROWID;
"""

#: Enrolments by competency gap: the course ids the bridge resolved, and the enrolments it
#: made (never one it did not make), as it last set them.
_MIGRATION_2 = """
CREATE TABLE courses (
    shortname  TEXT    NOT NULL PRIMARY KEY,
    moodle_id  INTEGER NOT NULL UNIQUE,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE enrolments (
    nip        TEXT    NOT NULL REFERENCES accounts (nip),
    course     TEXT    NOT NULL,
    suspended  INTEGER NOT NULL CHECK (suspended IN (0, 1)),
    timestart  INTEGER NOT NULL DEFAULT 0,
    timeend    INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (nip, course)
) WITHOUT ROWID;
CREATE INDEX enrolments_course ON enrolments (course);
"""

#: When the bridge first made each enrolment: a course without a window has no timestart, and
#: the annual cap counts the trainings a person started in the year.
_MIGRATION_3 = """
ALTER TABLE enrolments ADD COLUMN enrolled_at INTEGER NOT NULL DEFAULT 0;
"""

#: The completion ledger: append-only, so a completion once recorded is never lost, even when
#: the enrolment is later suspended. ``checked`` remembers pending enrolments already asked.
_MIGRATION_4 = """
CREATE TABLE completions (
    nip           TEXT    NOT NULL,
    course        TEXT    NOT NULL,
    timecompleted INTEGER NOT NULL,
    jp            INTEGER NOT NULL DEFAULT 0,
    competency    TEXT    NOT NULL DEFAULT '',
    to_level      INTEGER NOT NULL DEFAULT 0,
    source        TEXT    NOT NULL DEFAULT 'moodle',
    recorded_at   INTEGER NOT NULL,
    PRIMARY KEY (nip, course)
) WITHOUT ROWID;
CREATE INDEX completions_time ON completions (timecompleted);
CREATE TRIGGER completions_append_only_update BEFORE UPDATE ON completions
BEGIN SELECT RAISE(ABORT, 'the completion ledger is append-only'); END;
CREATE TRIGGER completions_append_only_delete BEFORE DELETE ON completions
BEGIN SELECT RAISE(ABORT, 'the completion ledger is append-only'); END;
ALTER TABLE enrolments ADD COLUMN checked_at INTEGER NOT NULL DEFAULT 0;
"""

#: Day-2 operation. ``site``: the one Moodle site this state belongs to (a state is never used
#: against another). On accounts: the display name for reports, when the person was last listed
#: (the roster's date), since when they are absent from their unit's roster (the grace period),
#: and why, when and by which run an account was suspended (for ``runs revert``). Enrolments:
#: how Moodle enrolled the person (``manual`` by the bridge, ``cohort`` through one of the
#: bridge's course-audience cohorts, ``other``: already enrolled by someone else, never written)
#: and why it was suspended. Completions: the enrolment method and its start, for SIASN.
#: ``run_changes``: every person-level change a run applied, with its reason. ``sources``: the
#: digest of each manifest source's last successful input. ``state_values``: small named
#: values (probe results, cursors, measured rates) that need no table of their own.
_MIGRATION_5 = """
CREATE TABLE site (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    url          TEXT    NOT NULL,
    siteurl      TEXT    NOT NULL DEFAULT '',
    sitename     TEXT    NOT NULL DEFAULT '',
    release      TEXT    NOT NULL DEFAULT '',
    token_userid INTEGER NOT NULL DEFAULT 0,
    recorded_at  INTEGER NOT NULL
);
ALTER TABLE accounts ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN seen_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN absent_since INTEGER;
ALTER TABLE accounts ADD COLUMN suspended_reason TEXT;
ALTER TABLE accounts ADD COLUMN suspended_at INTEGER;
ALTER TABLE accounts ADD COLUMN suspended_by_run INTEGER;
ALTER TABLE enrolments ADD COLUMN method TEXT NOT NULL DEFAULT 'manual'
    CHECK (method IN ('manual', 'cohort', 'other'));
ALTER TABLE enrolments ADD COLUMN cohort TEXT;
ALTER TABLE enrolments ADD COLUMN suspended_reason TEXT;
ALTER TABLE enrolments ADD COLUMN suspended_by_run INTEGER;
ALTER TABLE completions ADD COLUMN method TEXT NOT NULL DEFAULT 'manual';
ALTER TABLE completions ADD COLUMN timestarted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE courses ADD COLUMN fullname TEXT NOT NULL DEFAULT '';
ALTER TABLE cohorts ADD COLUMN adopted INTEGER NOT NULL DEFAULT 0 CHECK (adopted IN (0, 1));
ALTER TABLE runs ADD COLUMN source TEXT;
ALTER TABLE runs ADD COLUMN os_user TEXT;
ALTER TABLE runs ADD COLUMN exit_code INTEGER;
CREATE TABLE run_changes (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    seq    INTEGER NOT NULL,
    action TEXT    NOT NULL,
    nip    TEXT    NOT NULL,
    unit   TEXT    NOT NULL DEFAULT '',
    target TEXT    NOT NULL DEFAULT '',
    reason TEXT    NOT NULL DEFAULT '',
    detail TEXT,
    source TEXT    NOT NULL DEFAULT '',
    row    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE INDEX run_changes_nip ON run_changes (nip);
CREATE TABLE sources (
    name        TEXT    NOT NULL PRIMARY KEY,
    digest      TEXT    NOT NULL,
    last_run_id INTEGER REFERENCES runs (id),
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE state_values (
    name       TEXT    NOT NULL PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
"""

MIGRATIONS: tuple[Migration, ...] = (
    (1, _MIGRATION_1),
    (2, _MIGRATION_2),
    (3, _MIGRATION_3),
    (4, _MIGRATION_4),
    (5, _MIGRATION_5),
)
#: The schema version this code writes and understands.
SCHEMA_VERSION = MIGRATIONS[-1][0]

_ACCOUNT_COLUMNS = (
    "nip, moodle_id, username, unit, how, applied_hash, suspended, owned_since, updated_at, "
    "seen_at, absent_since, suspended_reason, suspended_at, suspended_by_run"
)
_RUN_COLUMNS = (
    "id, command, unit, status, started_at, finished_at, summary_json, pid, host, source, "
    "os_user, exit_code"
)
_BATCH_COLUMNS = (
    "id, run_id, action, payload_json, state, created_at, settled_at, settled_by_run, result_json"
)

_UPSERT_ACCOUNT = """
INSERT INTO accounts (nip, moodle_id, username, unit, how, applied_hash, applied_json,
                      suspended, owned_since, updated_at, display_name, seen_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (nip) DO UPDATE SET
    username = excluded.username, unit = excluded.unit,
    applied_hash = excluded.applied_hash, applied_json = excluded.applied_json,
    suspended = excluded.suspended, updated_at = excluded.updated_at,
    display_name = excluded.display_name, seen_at = max(seen_at, excluded.seen_at)
WHERE accounts.moodle_id = excluded.moodle_id
"""

#: A suspension keeps its reason and run; an unsuspended account forgets them and its absence.
_UPDATE_APPLIED = """
UPDATE accounts SET applied_hash = :hash, applied_json = :record, updated_at = :now,
    unit = coalesce(:unit, unit), display_name = coalesce(:display_name, display_name),
    seen_at = max(seen_at, coalesce(:seen_at, 0)),
    suspended_reason = CASE WHEN :suspended THEN coalesce(:reason, suspended_reason) END,
    suspended_at = CASE WHEN :suspended THEN
        CASE WHEN suspended THEN suspended_at ELSE :now END END,
    suspended_by_run = CASE WHEN :suspended THEN
        CASE WHEN suspended THEN suspended_by_run ELSE :run END END,
    absent_since = CASE WHEN :suspended THEN absent_since END,
    suspended = :suspended
WHERE nip = :nip
"""

#: A suspended enrolment keeps its reason and the run that suspended it; an active one forgets
#: them. ``enrolled_at`` is set once, by the first recording.
_UPSERT_ENROLMENT = """
INSERT INTO enrolments (nip, course, suspended, timestart, timeend, updated_at, enrolled_at,
                        method, cohort, suspended_reason, suspended_by_run)
VALUES (:nip, :course, :suspended, :timestart, :timeend, :now, :now, :method, :cohort,
        CASE WHEN :suspended THEN :reason END, CASE WHEN :suspended THEN :run END)
ON CONFLICT (nip, course) DO UPDATE SET
    suspended = excluded.suspended, timestart = excluded.timestart,
    timeend = excluded.timeend, updated_at = excluded.updated_at,
    method = excluded.method, cohort = excluded.cohort,
    suspended_reason = CASE WHEN excluded.suspended THEN
        CASE WHEN enrolments.suspended THEN enrolments.suspended_reason
             ELSE excluded.suspended_reason END END,
    suspended_by_run = CASE WHEN excluded.suspended THEN
        CASE WHEN enrolments.suspended THEN enrolments.suspended_by_run
             ELSE excluded.suspended_by_run END END
"""

_UPSERT_COHORT = """
INSERT INTO cohorts (idnumber, moodle_id, name, created_by_bridge, adopted, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (idnumber) DO UPDATE SET
    moodle_id = excluded.moodle_id, name = excluded.name,
    created_by_bridge = max(created_by_bridge, excluded.created_by_bridge),
    adopted = max(adopted, excluded.adopted),
    updated_at = excluded.updated_at
"""


# --- the store ----------------------------------------------------------------------------------
class Store:
    """The state database. Open it with :meth:`Store.open`; close it, or use it as a context."""

    def __init__(
        self, connection: sqlite3.Connection, path: Path, clock: Callable[[], float]
    ) -> None:
        """Wrap an open, migrated connection (use :meth:`Store.open` instead)."""
        self.path = path
        self._connection: sqlite3.Connection | None = connection
        self._clock = clock
        self._lock = threading.RLock()
        self.journal_mode: str = str(connection.execute("PRAGMA journal_mode").fetchone()[0])

    # -- opening and closing ---------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        busy_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> Store:
        """Open the state database at ``path``, creating and migrating it as needed.

        A missing parent directory is created with mode 0700 and a missing database file with
        mode 0600. ``busy_timeout`` is how many seconds a write waits for another process's
        lock; ``clock`` gives the time in Unix seconds; ``migrations`` is for tests and tools.
        Raises SchemaTooNew when the file was written by a newer moodle_bridge, and
        StoreError when it cannot be created, read, or migrated.
        """
        path = Path(path)
        _check_migrations(migrations)
        _create_private(path)
        try:
            connection = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            msg = f"cannot open the state database {path}: {exc}"
            raise StoreError(msg) from exc
        try:
            _configure(connection)
            _migrate(connection, migrations, path, clock)
            return cls(connection, path, clock)
        except (sqlite3.Error, StoreError) as exc:
            connection.close()
            cause = exc if isinstance(exc, sqlite3.Error) else exc.__cause__
            if isinstance(cause, sqlite3.Error) and _is_damage(cause):
                raise StateDamaged(_damage_message(path, cause)) from exc
            if isinstance(exc, StoreError):
                raise
            msg = f"cannot use the state database {path}: {exc}"
            raise StoreError(msg) from exc
        except BaseException:
            connection.close()
            raise

    def close(self) -> None:
        """Close the database. Closing twice is harmless."""
        with self._lock:
            if self._connection is None:
                return
            # A statistics refresh is not worth failing a close for.
            with contextlib.suppress(sqlite3.Error):
                self._connection.execute("PRAGMA optimize")
            self._connection.close()
            self._connection = None

    def __enter__(self) -> Self:
        """Use the store as a context: it is closed on the way out."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the store."""
        self.close()

    def schema_version(self) -> int:
        """The schema version of the open database (equal to :data:`SCHEMA_VERSION`)."""
        with self._lock:
            return _current_version(self._db)

    # -- accounts --------------------------------------------------------------------------------
    def account(self, nip: str) -> Account | None:
        """The owned account of ``nip``, or None."""
        return self._account_where("nip", nip)

    def account_by_moodle_id(self, moodle_id: int) -> Account | None:
        """The owned account with Moodle user id ``moodle_id``, or None."""
        return self._account_where("moodle_id", moodle_id)

    def _account_where(self, column: Literal["nip", "moodle_id"], value: object) -> Account | None:
        row = self._one(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE {column} = ?", (value,))
        return None if row is None else _account(row)

    def accounts(self, unit: str | None = None) -> dict[str, Account]:
        """Every owned account (or those of ``unit``), keyed by NIP, in one query."""
        query = f"SELECT {_ACCOUNT_COLUMNS} FROM accounts"
        params: tuple[str, ...] = ()
        if unit is not None:
            query += " WHERE unit = ?"
            params = (unit,)
        with self._lock:
            # Built inline rather than through _account(): this runs for 233,000 rows.
            return {
                row[0]: Account._make((*row[:6], row[6] == 1, *row[7:]))
                for row in self._db.execute(query, params)
            }

    def display_names(self, unit: str | None = None) -> dict[str, str]:
        """NIP -> the name as the roster writes it (titles included), for the owned accounts
        (of ``unit``) whose roster name a sync recorded."""
        query = "SELECT nip, display_name FROM accounts WHERE display_name != ''"
        params: tuple[str, ...] = ()
        if unit is not None:
            query += " AND unit = ?"
            params = (unit,)
        with self._lock:
            return dict(self._db.execute(query, params))

    def applied_records(self, nips: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The applied records kept for ``nips`` (NIPs without one are left out)."""
        rows = self._all(
            "SELECT nip, applied_json FROM accounts WHERE applied_json IS NOT NULL "
            "AND nip IN (SELECT value FROM json_each(?))",
            (json.dumps(list(nips)),),
        )
        return {nip: json.loads(text) for nip, text in rows}

    def record_accounts(self, rows: Iterable[NewAccount]) -> None:
        """Record owned accounts, all or none, in one transaction.

        Raises AccountConflict (and records nothing) when a NIP is already recorded with
        another Moodle id, or a Moodle id with another NIP.
        """
        with self._transaction() as db:
            _write_accounts(db, list(rows), self._now())

    def record_applied(self, rows: Iterable[AppliedRow]) -> None:
        """Record what was applied to owned accounts, all or none, in one transaction.

        Each row is ``(nip, applied_hash, suspended)`` or an :class:`Applied`. Raises
        UnknownAccount (and records nothing) when a NIP is not an owned account.
        """
        with self._transaction() as db:
            _write_applied(db, list(rows), self._now())

    def record_observations(
        self, seen: Mapping[str, int], absent_since: Mapping[str, int | None]
    ) -> None:
        """Record what a run learnt of owned accounts without writing to Moodle.

        ``seen``: NIP -> the roster date of the row that lists the person now (only ever moves
        forward). ``absent_since``: NIP -> since when the person is missing from their unit's
        roster, or None when they are listed again.
        """
        with self._transaction() as db:
            db.executemany(
                "UPDATE accounts SET seen_at = max(seen_at, ?) WHERE nip = ?",
                [(when, nip) for nip, when in seen.items()],
            )
            db.executemany(
                "UPDATE accounts SET absent_since = ? WHERE nip = ?",
                [(since, nip) for nip, since in absent_since.items()],
            )

    # -- the site --------------------------------------------------------------------------------
    def site(self) -> SiteIdentity | None:
        """The Moodle site this state belongs to, or None before the first run."""
        row = self._one("SELECT url, siteurl, sitename, release, token_userid FROM site")
        return None if row is None else SiteIdentity(*row)

    def record_site(self, site: SiteIdentity) -> None:
        """Bind this state to ``site`` (its name and release may be updated later)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO site (id, url, siteurl, sitename, release, token_userid, "
                "recorded_at) VALUES (1, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "url = excluded.url, siteurl = excluded.siteurl, sitename = excluded.sitename, "
                "release = excluded.release, token_userid = excluded.token_userid",
                (*site, self._now()),
            )

    # -- runs ------------------------------------------------------------------------------------
    def begin_run(self, command: str, unit: str | None, source: str | None = None) -> int:
        """Record the start of a run of ``command`` (status ``running``); return its id.

        The OS user and host that started it are recorded with it, for the run history.
        """
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (command, unit, status, started_at, pid, host, source, "
                "os_user) VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
                (
                    command,
                    unit,
                    self._now(),
                    os.getpid(),
                    socket.gethostname(),
                    source,
                    _os_user(),
                ),
            )
            return _lastrowid(cursor)

    def run_changes(self, run_id: int) -> list[PersonChange]:
        """The person-level changes run ``run_id`` applied, in order."""
        rows = self._all(
            "SELECT action, nip, unit, target, reason, detail, source, row FROM run_changes "
            "WHERE run_id = ? ORDER BY seq",
            (run_id,),
        )
        return [PersonChange(*row) for row in rows]

    def run_units(self, run_id: int) -> list[str]:
        """The units of the people run ``run_id`` changed, sorted (one query, not its
        changes: a first load changes 233,000 people)."""
        rows = self._all(
            "SELECT DISTINCT unit FROM run_changes WHERE run_id = ? AND unit != '' ORDER BY unit",
            (run_id,),
        )
        return [str(row[0]) for row in rows]

    def finish_run(
        self,
        run_id: int,
        status: FinalStatus,
        summary: object = None,
        exit_code: int | None = None,
    ) -> None:
        """Record how a running run ended, with its JSON-able ``summary`` and exit code.

        Raises ValueError for a status a run cannot finish with, and JournalError when the
        run is unknown or no longer running (for instance marked crashed by another process).
        """
        if status not in _FINAL_STATUSES:
            msg = f"a run cannot finish with status {status!r}"
            raise ValueError(msg)
        text = _dump(summary)
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, summary_json = ?, exit_code = ? "
                "WHERE id = ? AND status = 'running'",
                (status, self._now(), text, exit_code, run_id),
            )
            if cursor.rowcount != 1:
                raise JournalError(_run_state_message(db, run_id, "finish"))

    def run(self, run_id: int) -> Run | None:
        """The run ``run_id``, or None."""
        row = self._one(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return None if row is None else _run(row)

    def runs(self, limit: int = 50) -> list[Run]:
        """The most recent runs, newest first."""
        query = f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?"
        return [_run(row) for row in self._all(query, (limit,))]

    def unfinished_runs(self) -> list[Run]:
        """Runs still marked ``running``, oldest first: crashed, or alive in another process.

        Tell them apart with ``pid`` and ``host`` before calling :meth:`mark_crashed`.
        """
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE status = 'running' ORDER BY id"
            ).fetchall()
        return [_run(row) for row in rows]

    def mark_crashed(self, run_ids: Iterable[int]) -> int:
        """Mark these running runs ``crashed``; return how many were. Their batches stay open."""
        ids = [(run_id,) for run_id in run_ids]
        with self._transaction() as db:
            cursor = db.executemany(
                "UPDATE runs SET status = 'crashed' WHERE id = ? AND status = 'running'", ids
            )
            return max(cursor.rowcount, 0)

    # -- the journal -----------------------------------------------------------------------------
    def journal_batch(self, run_id: int, action: str, payload: object) -> int:
        """Write a batch to the journal as ``pending``; return its id.

        The row is committed (and on disk) when this returns: call it before sending the
        request. ``payload`` must be JSON-able and name the records so that a later run can
        look them up in Moodle (NIPs, the desired records). Raises JournalError for an
        unknown run, TypeError or ValueError for a payload JSON cannot hold.
        """
        text = _dump(payload)
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                msg = f"run {run_id} is not in the journal"
                raise JournalError(msg)
            cursor = db.execute(
                "INSERT INTO batches (run_id, action, payload_json, state, created_at) "
                "VALUES (?, ?, ?, 'pending', ?)",
                (run_id, action, text, self._now()),
            )
            return _lastrowid(cursor)

    def mark_sent(self, batch_id: int) -> None:
        """Optionally note that a pending batch's request went out (costs one more commit)."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE batches SET state = 'sent_unconfirmed' WHERE id = ? AND state = 'pending'",
                (batch_id,),
            )
            if cursor.rowcount != 1:
                raise JournalError(_batch_state_message(db, batch_id, "mark as sent"))

    def confirm_batch(
        self, batch_id: int, result: object = None, changes: Changes | None = None
    ) -> None:
        """Record Moodle's answer to an open batch, and what it changed, in ONE transaction.

        After a crash the batch is therefore either confirmed with all of ``changes`` recorded,
        or still open with none of it. Raises JournalError when the batch is unknown or not
        open, and AccountConflict, UnknownAccount or StoreError when a change breaks the
        store's invariants; then nothing is recorded and the batch stays open.
        """
        self._settle(batch_id, "confirmed", result, None, changes or Changes())

    def fail_batch(self, batch_id: int, reason: str, *, result: object = None) -> None:
        """Record that Moodle applied nothing of an open batch (its whole request failed).

        ``reason`` and the optional JSON-able ``result`` are kept as
        ``{"reason": ..., "result": ...}``. Raises JournalError when the batch is not open.
        """
        self._settle(batch_id, "failed", {"reason": reason, "result": result}, None, Changes())

    def resolve_batch(
        self,
        batch_id: int,
        result: object = None,
        changes: Changes | None = None,
        *,
        run_id: int | None = None,
    ) -> None:
        """Settle an open batch after re-checking it against Moodle (its answer was lost).

        ``result`` says what the check found and ``changes`` what Moodle turned out to hold,
        recorded as for :meth:`confirm_batch`. ``run_id`` is the run that did the check (None:
        the batch's own run). Raises as :meth:`confirm_batch`.
        """
        self._settle(batch_id, "resolved", result, run_id, changes or Changes())

    def batch(self, batch_id: int) -> Batch | None:
        """The batch ``batch_id``, or None."""
        row = self._one(f"SELECT {_BATCH_COLUMNS} FROM batches WHERE id = ?", (batch_id,))
        return None if row is None else _batch(row)

    def batches(self, run_id: int) -> list[Batch]:
        """The batches journalled by run ``run_id``, in order."""
        query = f"SELECT {_BATCH_COLUMNS} FROM batches WHERE run_id = ? ORDER BY id"
        return [_batch(row) for row in self._all(query, (run_id,))]

    def pending_batches(self) -> list[Batch]:
        """Batches of any run neither confirmed, failed nor resolved, in journal order.

        Each may or may not have reached Moodle: look its records up before resending.
        """
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_BATCH_COLUMNS} FROM batches "
                "WHERE state IN ('pending', 'sent_unconfirmed') ORDER BY id"
            ).fetchall()
        return [_batch(row) for row in rows]

    def unanswered_batches(self, actions: Iterable[str]) -> list[Batch]:
        """Batches of ``actions`` whose answer never came, in journal order: still open, or
        settled by reading back (``resolved``). Moodle may hold what they sent."""
        rows = self._all(
            f"SELECT {_BATCH_COLUMNS} FROM batches "
            "WHERE state IN ('pending', 'sent_unconfirmed', 'resolved') "
            "AND action IN (SELECT value FROM json_each(?)) ORDER BY id",
            (json.dumps(sorted(set(actions))),),
        )
        return [_batch(row) for row in rows]

    def journalled_usernames(
        self, nips: Iterable[str], *, failed_with: Iterable[str]
    ) -> dict[str, set[str]]:
        """NIP -> the usernames sent for it by ``create_users`` batches recorded as failed
        for one of the reasons ``failed_with``.

        An older version took site faults for refusals: such a batch may still have created
        the account (the site failed after Moodle committed it). A batch Moodle refused as a
        whole created nothing (one transaction), and an open one is the batch being sent.
        """
        wanted = json.dumps(sorted(set(nips)))
        reasons = json.dumps(sorted(set(failed_with)))
        with self._lock:
            rows = self._db.execute(
                "SELECT sent.key, sent.value FROM batches, json_each(batches.payload_json, "
                "'$.usernames') AS sent WHERE batches.action = 'create_users' "
                "AND batches.state = 'failed' "
                "AND json_extract(batches.result_json, '$.reason') IN "
                "(SELECT value FROM json_each(?)) "
                "AND sent.type = 'text' AND sent.key IN (SELECT value FROM json_each(?))",
                (reasons, wanted),
            ).fetchall()
        found: dict[str, set[str]] = {}
        for nip, username in rows:
            found.setdefault(nip, set()).add(username)
        return found

    # -- cohorts ---------------------------------------------------------------------------------
    def cohort(self, idnumber: str) -> CohortRow | None:
        """The cohort ``idnumber``, or None."""
        row = self._one(
            "SELECT idnumber, moodle_id, name, created_by_bridge, adopted FROM cohorts "
            "WHERE idnumber = ?",
            (idnumber,),
        )
        return None if row is None else _cohort(row)

    def cohorts(self) -> dict[str, CohortRow]:
        """Every known cohort, keyed by idnumber."""
        with self._lock:
            rows = self._db.execute(
                "SELECT idnumber, moodle_id, name, created_by_bridge, adopted FROM cohorts"
            ).fetchall()
        return {row[0]: _cohort(row) for row in rows}

    def record_cohort(self, cohort: CohortRow) -> None:
        """Record a cohort (again). Once created by the bridge or adopted, a cohort stays so.

        Raises StoreError when its Moodle id is recorded for another cohort.
        """
        with self._transaction() as db:
            _write_cohorts(db, [cohort], self._now())

    def remove_cohort(self, idnumber: str) -> None:
        """Forget a cohort and the memberships recorded in it."""
        with self._transaction() as db:
            db.execute("DELETE FROM cohorts WHERE idnumber = ?", (idnumber,))

    def cohort_members(self, cohort_idnumber: str | None = None) -> dict[str, set[str]]:
        """The memberships the bridge added: cohort idnumber -> NIPs (one cohort, or all)."""
        query = "SELECT cohort_idnumber, nip FROM cohort_members"
        params: tuple[str, ...] = ()
        if cohort_idnumber is not None:
            query += " WHERE cohort_idnumber = ?"
            params = (cohort_idnumber,)
        members: dict[str, set[str]] = {}
        with self._lock:
            for cohort, nip in self._db.execute(query, params):
                members.setdefault(cohort, set()).add(nip)
        return members

    def add_members(self, rows: Iterable[tuple[str, str]]) -> None:
        """Record memberships ``(cohort_idnumber, nip)`` the bridge added (again is harmless).

        Raises StoreError, recording none, when a cohort or account is not recorded.
        """
        with self._transaction() as db:
            _write_members(db, list(rows), (), self._now())

    def remove_members(self, rows: Iterable[tuple[str, str]]) -> None:
        """Forget memberships ``(cohort_idnumber, nip)``."""
        with self._transaction() as db:
            _write_members(db, (), list(rows), self._now())

    # -- courses and enrolments ------------------------------------------------------------------
    def courses(self) -> dict[str, int]:
        """Course shortname -> Moodle id, as resolved by earlier runs."""
        with self._lock:
            return dict(self._db.execute("SELECT shortname, moodle_id FROM courses"))

    def course_names(self) -> dict[str, str]:
        """Course shortname -> full name, for the courses whose full name a sync recorded."""
        with self._lock:
            return dict(
                self._db.execute("SELECT shortname, fullname FROM courses WHERE fullname != ''")
            )

    def record_courses(
        self, ids: Mapping[str, int], fullnames: Mapping[str, str] | None = None
    ) -> None:
        """Remember resolved course ids (shortname -> Moodle id) and full names."""
        now = self._now()
        names = fullnames or {}
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO courses (shortname, moodle_id, updated_at, fullname) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (shortname) DO UPDATE SET "
                "moodle_id = excluded.moodle_id, updated_at = excluded.updated_at, "
                "fullname = CASE WHEN excluded.fullname = '' THEN courses.fullname "
                "ELSE excluded.fullname END",
                [(name, moodle_id, now, names.get(name, "")) for name, moodle_id in ids.items()],
            )

    def enrolments(self) -> dict[tuple[str, str], EnrolmentRow]:
        """The enrolments the bridge made: (nip, course shortname) -> as last set."""
        with self._lock:
            rows = self._db.execute(
                "SELECT nip, course, suspended, timestart, timeend, enrolled_at, method, cohort, "
                "suspended_reason, suspended_by_run FROM enrolments"
            ).fetchall()
        return {(r[0], r[1]): EnrolmentRow(r[0], r[1], r[2] == 1, *r[3:]) for r in rows}

    def record_enrolments(self, rows: Iterable[EnrolmentRow]) -> None:
        """Record enrolments that need no write to Moodle (someone else's, found there)."""
        with self._transaction() as db:
            _write_enrolments(db, list(rows), self._now())

    # -- the completion ledger -------------------------------------------------------------------
    def record_completions(self, rows: Iterable[LedgerEntry]) -> int:
        """Add completions to the ledger; one already there is kept as it was. Returns how many
        were new."""
        now = self._now()
        with self._transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO completions (nip, course, timecompleted, jp, competency, "
                "to_level, source, method, timestarted, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*row, now) for row in rows],
            )
            return int(db.total_changes - before)

    def completions(self, *, since: int = 0, until: int | None = None) -> list[LedgerEntry]:
        """Ledger entries completed in ``[since, until)``, oldest first."""
        query = (
            "SELECT nip, course, timecompleted, jp, competency, to_level, source, method, "
            "timestarted FROM completions WHERE timecompleted >= ?"
        )
        params: list[int] = [since]
        if until is not None:
            query += " AND timecompleted < ?"
            params.append(until)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY timecompleted, nip, course", params)
            return [LedgerEntry(*row) for row in rows.fetchall()]

    def mark_checked(self, keys: Iterable[tuple[str, str]], *, at: int | None = None) -> None:
        """Remember when these (nip, course) enrolments were last asked about completion: at
        ``at`` (Unix seconds, when Moodle was asked), else now."""
        now = self._now() if at is None else at
        with self._transaction() as db:
            db.executemany(
                "UPDATE enrolments SET checked_at = ? WHERE nip = ? AND course = ?",
                [(now, nip, course) for nip, course in keys],
            )

    def checked_at(self) -> dict[tuple[str, str], int]:
        """(nip, course) -> when its completion was last asked (0: never)."""
        with self._lock:
            rows = self._db.execute("SELECT nip, course, checked_at FROM enrolments")
            return {(r[0], r[1]): r[2] for r in rows.fetchall()}

    # -- units -----------------------------------------------------------------------------------
    def units_seen(self) -> dict[str, UnitSeen]:
        """The units earlier rosters listed, with how many people each had."""
        with self._lock:
            rows = self._db.execute(
                "SELECT unit, last_run_id, people_count, updated_at FROM units_seen"
            ).fetchall()
        return {row[0]: UnitSeen(*row) for row in rows}

    def record_units_seen(self, run_id: int | None, counts: Mapping[str, int]) -> None:
        """Record that run ``run_id`` saw these units with these head counts.

        Units not in ``counts`` are left as they were. Raises StoreError for an unknown run.
        """
        now = self._now()
        rows = [(unit, run_id, count, now) for unit, count in counts.items()]
        with self._transaction() as db:
            try:
                db.executemany(
                    "INSERT INTO units_seen (unit, last_run_id, people_count, updated_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (unit) DO UPDATE SET "
                    "last_run_id = excluded.last_run_id, people_count = excluded.people_count, "
                    "updated_at = excluded.updated_at",
                    rows,
                )
            except sqlite3.IntegrityError as exc:
                msg = f"cannot record units seen by run {run_id}: {exc}"
                raise StoreError(msg) from exc

    def forget_units(self, units: Iterable[str]) -> None:
        """Forget units, so a roster without them is no longer compared with them."""
        with self._transaction() as db:
            db.executemany("DELETE FROM units_seen WHERE unit = ?", [(u,) for u in units])

    def markers(self) -> list[Any]:
        """What changes whenever the ledger or the enrolments change: cheap to read, for the
        digests that let a run skip work whose input is unchanged."""
        with self._lock:
            ledger = self._db.execute(
                "SELECT count(*), coalesce(max(recorded_at), 0) FROM completions"
            ).fetchone()
            enrolments = self._db.execute(
                "SELECT count(*), coalesce(sum(suspended), 0), coalesce(max(updated_at), 0) "
                "FROM enrolments"
            ).fetchone()
        return [*ledger, *enrolments]

    # -- manifest sources --------------------------------------------------------------------------
    def source_digest(self, name: str) -> str | None:
        """The digest of the input of source ``name``'s last successful run, or None."""
        row = self._one("SELECT digest FROM sources WHERE name = ?", (name,))
        return None if row is None else str(row[0])

    def record_source(self, name: str, digest: str, run_id: int | None) -> None:
        """Remember the input of source ``name``'s successful run ``run_id``."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO sources (name, digest, last_run_id, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET digest = excluded.digest, "
                "last_run_id = excluded.last_run_id, updated_at = excluded.updated_at",
                (name, digest, run_id, self._now()),
            )

    # -- named values ----------------------------------------------------------------------------
    def value(self, name: str) -> Any:
        """The JSON value stored under ``name``, or None."""
        row = self._one("SELECT value FROM state_values WHERE name = ?", (name,))
        return None if row is None else _load(row[0])

    def set_value(self, name: str, value: object) -> None:
        """Store a JSON-able ``value`` under ``name`` (None removes it)."""
        with self._transaction() as db:
            if value is None:
                db.execute("DELETE FROM state_values WHERE name = ?", (name,))
                return
            db.execute(
                "INSERT INTO state_values (name, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (name, _dump(value), self._now()),
            )

    # -- internals -------------------------------------------------------------------------------
    def _one(self, query: str, params: Sequence[Any] = ()) -> Any:
        """The first row of ``query``, or None."""
        with self._lock:
            return self._db.execute(query, params).fetchone()

    def _all(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        """Every row of ``query``."""
        with self._lock:
            return self._db.execute(query, params).fetchall()

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            msg = f"the state database {self.path} is closed"
            raise StoreError(msg)
        return self._connection

    def _now(self) -> int:
        return int(self._clock())

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and a write transaction; commit on success, roll back otherwise."""
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    msg = f"the state database {self.path} is locked by another process"
                    raise StoreBusy(msg) from exc
                msg = f"cannot write the state database {self.path}: {exc}"
                raise StoreError(msg) from exc
            with _committed(db, f"cannot write the state database {self.path}"):
                yield db

    def _settle(
        self,
        batch_id: int,
        state: BatchState,
        result: object,
        run_id: int | None,
        changes: Changes,
    ) -> None:
        text = _dump(result)
        now = self._now()
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE batches SET state = ?, settled_at = ?, result_json = ?, "
                "settled_by_run = coalesce(?, run_id) "
                "WHERE id = ? AND state IN ('pending', 'sent_unconfirmed') "
                "RETURNING settled_by_run",
                (state, now, text, run_id, batch_id),
            )
            settled = cursor.fetchone()
            if settled is None:
                raise JournalError(_batch_state_message(db, batch_id, _SETTLE_VERBS[state]))
            settling_run = int(settled[0])
            if changes.cohorts:
                _write_cohorts(db, changes.cohorts, now)
            if changes.accounts:
                _write_accounts(db, changes.accounts, now)
            if changes.applied:
                _write_applied(db, changes.applied, now, settling_run)
            if changes.members_added or changes.members_removed:
                _write_members(db, changes.members_added, changes.members_removed, now)
            if changes.enrolments:
                _write_enrolments(db, changes.enrolments, now, settling_run)
            if changes.log:
                _write_log(db, settling_run, changes.log)


# --- opening ------------------------------------------------------------------------------------
def _create_private(path: Path) -> None:
    """Create the state directory (0700) and an empty database file (0600) if missing."""
    posix = os.name == "posix"
    try:
        try:
            path.parent.mkdir(parents=True, mode=0o700)
        except FileExistsError:
            pass
        else:
            if posix:
                path.parent.chmod(0o700)  # mkdir's mode is narrowed by the umask, not set
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        try:
            if posix:
                os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
    except OSError as exc:
        msg = f"cannot create the state database {path}: {exc.strerror or exc}"
        raise StoreError(msg) from exc


def _configure(connection: sqlite3.Connection) -> None:
    # WAL lets reports read while a sync writes. It is a property of the file; a file
    # system without shared memory refuses it, and the rollback journal that stays is just
    # as safe, only less concurrent, so the answer is not checked.
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")  # why FULL: see the module docstring
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA cache_size = -32768")  # 32 MiB: a whole-roster update fits
    connection.execute("PRAGMA temp_store = MEMORY")
    # A 233,000-row transaction leaves a WAL of tens of MiB; truncate it after checkpoints.
    connection.execute("PRAGMA journal_size_limit = 16777216")


def _check_migrations(migrations: Sequence[Migration]) -> None:
    versions = [version for version, _ in migrations]
    if versions != list(range(1, len(versions) + 1)):
        msg = f"migrations must be numbered 1, 2, 3... in order, not {versions}"
        raise ValueError(msg)


def _current_version(db: sqlite3.Connection) -> int:
    exists = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if exists is None:
        return 0
    row = db.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def _migrate(
    db: sqlite3.Connection,
    migrations: Sequence[Migration],
    path: Path,
    clock: Callable[[], float],
) -> None:
    known = len(migrations)
    current = _current_version(db)
    if current > known:
        msg = (
            f"the state database {path} has schema version {current}, newer than the "
            f"{known} this moodle_bridge knows: upgrade moodle_bridge, or use another state "
            "directory"
        )
        raise SchemaTooNew(msg)
    if 0 < current < known:
        _back_up(db, path, current)
    for version, sql in migrations:
        if version <= current:
            continue
        db.execute("BEGIN IMMEDIATE")
        with _committed(db, f"migration {version} of the state database {path} failed"):
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
            )
            # Another process may have migrated while this one waited for the lock.
            if _current_version(db) >= version:
                db.execute("ROLLBACK")
                continue
            for statement in _statements(sql):
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (version, int(clock())),
            )


def _back_up(db: sqlite3.Connection, path: Path, version: int) -> Path:
    """Copy the database to ``<name>.bak-v<version>`` beside it before migrating it.

    A migration is one transaction, but a file damaged later, or a return to the older
    moodle_bridge, needs the database as that version left it. SQLite's online backup copies
    a consistent snapshot, WAL included, which copying the file would not. The copy holds NIPs:
    it is created owner-only like the database.
    """
    backup = path.with_name(f"{path.name}.bak-v{version}")
    _create_private(backup)
    target = sqlite3.connect(backup)
    try:
        db.backup(target)
    finally:
        target.close()
    return backup


#: SQLite's primary result codes for a file that is not a database or has corrupt pages.
_DAMAGE_CODES = frozenset({sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT})


def _is_damage(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    # Extended result codes keep the primary code in their low byte.
    return code is not None and code & 0xFF in _DAMAGE_CODES


def _damage_message(path: Path, exc: sqlite3.Error) -> str:
    aside = path.with_name(f"{path.name}.damaged")
    backup = _newest_backup(path)
    restore = (
        f"copy the backup {backup} (kept before the last migration) to {path}, or "
        if backup is not None
        else ""
    )
    return (
        f"the state database {path} is damaged ({exc}): move it to {aside}, then "
        f"{restore}rebuild it with: sqlite3 {aside} .recover | sqlite3 {path}"
    )


def _newest_backup(path: Path) -> Path | None:
    found: dict[int, Path] = {}
    for candidate in path.parent.glob(f"{path.name}.bak-v*"):
        version = candidate.name.rpartition("-v")[2]
        if version.isdigit():
            found[int(version)] = candidate
    return found[max(found)] if found else None


@contextlib.contextmanager
def _committed(db: sqlite3.Connection, failure: str) -> Iterator[None]:
    """Commit the open transaction when the block ends normally, roll it back otherwise.

    A full disk or an I/O error reaches the caller as one StoreError starting with
    ``failure``, never as sqlite3's own exception. A block that already rolled back (or
    committed) leaves nothing to do.
    """
    try:
        yield
        if db.in_transaction:
            db.execute("COMMIT")
    except sqlite3.Error as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        msg = f"{failure}: {exc}"
        raise StoreError(msg) from exc
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _statements(script: str) -> Iterator[str]:
    """Split an SQL script into statements (``executescript`` would commit half-way)."""
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                yield buffer.strip()
            buffer = ""
    rest = buffer.strip().removesuffix(";").strip()
    if rest:
        yield rest


# --- writing ------------------------------------------------------------------------------------
def _write_accounts(db: sqlite3.Connection, rows: Sequence[NewAccount], now: int) -> None:
    params = [
        (
            a.nip,
            a.moodle_id,
            a.username,
            a.unit,
            a.how,
            a.applied_hash,
            _dump_record(a.record),
            int(a.suspended),
            now,
            now,
            a.display_name,
            a.seen_at,
        )
        for a in rows
    ]
    try:
        changed = db.executemany(_UPSERT_ACCOUNT, params).rowcount
    except sqlite3.IntegrityError as exc:
        if "moodle_id" not in str(exc):
            msg = f"cannot record accounts: {exc}"
            raise StoreError(msg) from exc
        changed = -1
    if changed != len(rows):
        nips = _conflicting(db, rows)
        msg = (
            f"{len(nips)} account(s) conflict with the store: a NIP already owned with "
            "another Moodle id, or a Moodle id owned under another NIP"
        )
        raise AccountConflict(msg, nips)


def _conflicting(db: sqlite3.Connection, rows: Sequence[NewAccount]) -> list[str]:
    """The NIPs of ``rows`` that clash with the store or with each other."""
    by_nip: dict[str, int] = {}
    by_id: dict[int, str] = {}
    clashes: set[str] = set()
    for a in rows:
        if by_nip.setdefault(a.nip, a.moodle_id) != a.moodle_id:
            clashes.add(a.nip)
        if by_id.setdefault(a.moodle_id, a.nip) != a.nip:
            clashes.update((a.nip, by_id[a.moodle_id]))
        for nip, moodle_id in db.execute(
            "SELECT nip, moodle_id FROM accounts WHERE nip = ? OR moodle_id = ?",
            (a.nip, a.moodle_id),
        ):
            if (nip, moodle_id) != (a.nip, a.moodle_id):
                clashes.add(a.nip)
    return sorted(clashes)


def _write_applied(
    db: sqlite3.Connection, rows: Sequence[AppliedRow], now: int, run_id: int | None = None
) -> None:
    params = [_applied_params(Applied(*row), now, run_id) for row in rows]
    changed = db.executemany(_UPDATE_APPLIED, params).rowcount
    if changed != len(rows):
        known = {
            nip
            for (nip,) in db.execute(
                "SELECT nip FROM accounts WHERE nip IN (SELECT value FROM json_each(?))",
                (json.dumps([row[0] for row in rows]),),
            )
        }
        unknown = sorted({row[0] for row in rows} - known)
        msg = f"{len(unknown)} NIP(s) have no owned account to record an applied state for"
        raise UnknownAccount(msg, unknown)


def _applied_params(row: Applied, now: int, run_id: int | None) -> dict[str, Any]:
    return {
        "nip": row.nip,
        "hash": row.applied_hash,
        "suspended": int(row.suspended),
        "record": _dump_record(row.record),
        "unit": row.unit,
        "reason": row.reason,
        "display_name": row.display_name,
        "seen_at": row.seen_at,
        "now": now,
        "run": run_id,
    }


def _write_cohorts(db: sqlite3.Connection, rows: Sequence[CohortRow], now: int) -> None:
    params = [
        (c.idnumber, c.moodle_id, c.name, int(c.created_by_bridge), int(c.adopted), now)
        for c in rows
    ]
    try:
        db.executemany(_UPSERT_COHORT, params)
    except sqlite3.IntegrityError as exc:
        msg = f"cannot record cohorts: a Moodle cohort id is recorded twice ({exc})"
        raise StoreError(msg) from exc


def _write_members(
    db: sqlite3.Connection,
    added: Sequence[tuple[str, str]],
    removed: Sequence[tuple[str, str]],
    now: int,
) -> None:
    try:
        db.executemany(
            "INSERT OR IGNORE INTO cohort_members (cohort_idnumber, nip, added_at) "
            "VALUES (?, ?, ?)",
            [(cohort, nip, now) for cohort, nip in added],
        )
    except sqlite3.IntegrityError as exc:
        msg = "cannot record cohort members: a cohort or an account is not recorded"
        raise StoreError(msg) from exc
    db.executemany("DELETE FROM cohort_members WHERE cohort_idnumber = ? AND nip = ?", removed)


def _write_enrolments(
    db: sqlite3.Connection, rows: Sequence[EnrolmentRow], now: int, run_id: int | None = None
) -> None:
    params = [
        {
            "nip": e.nip,
            "course": e.course,
            "suspended": int(e.suspended),
            "timestart": e.timestart,
            "timeend": e.timeend,
            "method": e.method,
            "cohort": e.cohort,
            "reason": e.suspended_reason,
            "run": run_id,
            "now": now,
        }
        for e in rows
    ]
    try:
        db.executemany(_UPSERT_ENROLMENT, params)
    except sqlite3.IntegrityError as exc:
        msg = "cannot record enrolments: an account is not recorded"
        raise StoreError(msg) from exc


def _write_log(db: sqlite3.Connection, run_id: int, rows: Sequence[PersonChange]) -> None:
    (last,) = db.execute(
        "SELECT coalesce(max(seq), 0) FROM run_changes WHERE run_id = ?", (run_id,)
    ).fetchone()
    db.executemany(
        "INSERT INTO run_changes (run_id, seq, action, nip, unit, target, reason, detail, "
        "source, row) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(run_id, last + i, *row) for i, row in enumerate(rows, start=1)],
    )


# --- reading ------------------------------------------------------------------------------------
def _account(row: Sequence[Any]) -> Account:
    return Account._make((*row[:6], row[6] == 1, *row[7:]))


def _cohort(row: Sequence[Any]) -> CohortRow:
    return CohortRow(row[0], row[1], row[2], row[3] == 1, row[4] == 1)


def _run(row: Sequence[Any]) -> Run:
    return Run._make((*row[:6], _load(row[6]), *row[7:]))


def _batch(row: Sequence[Any]) -> Batch:
    return Batch(
        row[0], row[1], row[2], _load(row[3]), row[4], row[5], row[6], row[7], _load(row[8])
    )


def _run_state_message(db: sqlite3.Connection, run_id: int, verb: str) -> str:
    row = db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        return f"cannot {verb} run {run_id}: it is not in the journal"
    return f"cannot {verb} run {run_id}: it is {row[0]}, not running"


def _batch_state_message(db: sqlite3.Connection, batch_id: int, verb: str) -> str:
    row = db.execute("SELECT state FROM batches WHERE id = ?", (batch_id,)).fetchone()
    if row is None:
        return f"cannot {verb} batch {batch_id}: it is not in the journal"
    return f"cannot {verb} batch {batch_id}: it is already {row[0]}"


def _lastrowid(cursor: sqlite3.Cursor) -> int:
    rowid = cursor.lastrowid
    if rowid is None:  # pragma: no cover - an INSERT always sets it
        msg = "SQLite returned no row id for an insert"
        raise StoreError(msg)
    return rowid


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        return str(os.getuid()) if hasattr(os, "getuid") else ""


# --- JSON ---------------------------------------------------------------------------------------
def _dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _dump_record(record: Mapping[str, Any] | None) -> str | None:
    return None if record is None else _dump(dict(record))


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)
