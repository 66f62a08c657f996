"""The state database's way back: a backup before each migration, and a damaged file named with
what to do about it (the messages the CLI shows with exit code 4)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from moodle_bridge.store import MIGRATIONS, SCHEMA_VERSION, StateDamaged, Store

NIP = "198001012005011001"


def version_of(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT max(version) FROM schema_migrations").fetchone()[0])


def test_an_existing_state_is_backed_up_before_it_is_migrated(tmp_path: Path):
    path = tmp_path / "state.sqlite3"
    Store.open(path, migrations=MIGRATIONS[:4]).close()
    with sqlite3.connect(path) as db:
        # As moodle_bridge of schema 4 wrote an owned account.
        db.execute(
            "INSERT INTO accounts (nip, moodle_id, username, unit, how, applied_hash, "
            "suspended, owned_since, updated_at) VALUES (?, 10, ?, 'PENDIS', 'created', 'h', "
            "0, 1, 1)",
            (NIP, NIP),
        )

    with Store.open(path) as store:
        assert store.schema_version() == SCHEMA_VERSION

    backup = tmp_path / "state.sqlite3.bak-v4"
    assert oct(backup.stat().st_mode & 0o777) == "0o600"
    assert version_of(backup) == 4
    with sqlite3.connect(backup) as db:
        assert db.execute("SELECT nip FROM accounts").fetchall() == [(NIP,)]
    # The old code can open its backup as it left it: nothing is migrated, nothing backed up
    # again. (This code's queries need schema 5: the row is read as schema 4 reads it.)
    with Store.open(backup, migrations=MIGRATIONS[:4]) as old:
        assert old.schema_version() == 4
    assert version_of(backup) == 4
    assert list(tmp_path.glob("*.bak-v4.bak-v*")) == []
    with sqlite3.connect(backup) as db:
        assert db.execute("SELECT nip, moodle_id, unit FROM accounts").fetchall() == [
            (NIP, 10, "PENDIS")
        ]


def test_no_backup_of_a_new_or_current_state(tmp_path: Path):
    path = tmp_path / "state.sqlite3"
    Store.open(path).close()
    Store.open(path).close()
    assert sorted(p.name for p in tmp_path.iterdir() if ".bak" in p.name) == []


def test_a_file_that_is_not_a_database_is_named_damaged(tmp_path: Path):
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"not sqlite at all\n" * 400)
    with pytest.raises(StateDamaged) as caught:
        Store.open(path)
    message = str(caught.value)
    assert f"the state database {path} is damaged (file is not a database)" in message
    assert f"move it to {path}.damaged" in message
    assert f"sqlite3 {path}.damaged .recover | sqlite3 {path}" in message
    assert "backup" not in message  # there is none to name


def test_corrupt_pages_are_damage_and_the_newest_backup_is_named(tmp_path: Path):
    path = tmp_path / "state.sqlite3"
    Store.open(path, migrations=MIGRATIONS[:3]).close()
    Store.open(path, migrations=MIGRATIONS[:4]).close()
    Store.open(path).close()
    assert (tmp_path / "state.sqlite3.bak-v3").exists()
    data = bytearray(path.read_bytes())
    data[4096:] = b"\x55" * (len(data) - 4096)  # every page after the first
    path.write_bytes(bytes(data))

    with pytest.raises(StateDamaged) as caught:
        Store.open(path)

    message = str(caught.value)
    assert "malformed" in message
    assert f"copy the backup {tmp_path / 'state.sqlite3.bak-v4'}" in message
