"""The manifest of every unit's sources, and the state directory's lock."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from moodle_bridge.errors import ConfigError
from moodle_bridge.files import StateBusy, exclusive
from moodle_bridge.manifest import digest, load_manifest, newest


def write(path: Path, text: str, mtime: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_a_manifest_names_its_sources_relative_to_itself(tmp_path: Path):
    manifest = write(
        tmp_path / "conf" / "units.toml",
        '[[source]]\nplugin = "pendis"\nroster = "exports/p-*.csv"\n'
        '[[source]]\nname = "setjen"\nplugin = "generic"\nroster = "/abs/s.csv"\n'
        'assessments = "a.csv"\nscope = ["SETJEN"]\n',
    )
    loaded = load_manifest(manifest)
    assert [s.name for s in loaded.source] == ["pendis", "setjen"]
    assert loaded.base == (tmp_path / "conf").resolve()
    assert loaded.source[1].scope == ("SETJEN",)


def test_the_newest_file_of_a_glob_wins_and_a_missing_one_is_none(tmp_path: Path):
    write(tmp_path / "exports" / "p-1.csv", "a", mtime=1_000)
    write(tmp_path / "exports" / "p-2.csv", "b", mtime=3_000)
    write(tmp_path / "exports" / "p-3.csv", "c", mtime=2_000)
    assert newest(tmp_path, "exports/p-*.csv") == tmp_path / "exports" / "p-2.csv"
    assert newest(tmp_path, "exports/q-*.csv") is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[[source]]\nplugin = 'x'\n", "roster"),
        ("[[source]]\nplugin = 'x'\nroster = 'r'\nunknown = 1\n", "unknown"),
        ("[[source]]\nplugin = 'x'\nroster = 'r'\n[[source]]\nplugin = 'x'\nroster = 's'\n",
         "unique"),
        ("source = [", "not valid TOML"),
        ("", "source"),
    ],
)
def test_a_bad_manifest_is_one_clear_configuration_error(tmp_path: Path, text: str, problem: str):
    with pytest.raises(ConfigError, match=problem):
        load_manifest(write(tmp_path / "m.toml", text))


def test_the_digest_changes_with_the_content_only(tmp_path: Path):
    a = write(tmp_path / "a.csv", "nip\n1\n")
    b = write(tmp_path / "b.csv", "nip\n1\n")
    assert digest([a, None]) == digest([b, None])
    assert digest([a, None]) != digest([a, a])
    write(tmp_path / "a.csv", "nip\n2\n")
    assert digest([a, None]) != digest([b, None])


def test_a_second_holder_of_the_state_is_refused_at_once(tmp_path: Path):
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with exclusive(tmp_path / "state"):
            inside.set()
            release.wait(5)

    # flock locks belong to open file descriptions: a second open in another thread conflicts
    # just as another process would.
    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(5)
    with pytest.raises(StateBusy, match="another moodle-bridge run"), exclusive(tmp_path / "state"):
        pass
    release.set()
    holder.join()
    with exclusive(tmp_path / "state"):
        pass
