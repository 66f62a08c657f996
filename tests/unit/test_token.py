"""load_token: environment first, then a token file only its owner can read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from moodle_bridge.config import TOKEN_ENV, TOKEN_FILE_ENV, load_token
from moodle_bridge.errors import ConfigError

TOKEN = "tok-SECRET-5f3a9c"

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def token_file(tmp_path: Path, text: str = TOKEN + "\n", mode: int = 0o600) -> Path:
    path = tmp_path / "moodle.token"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_environment_variable_wins(tmp_path: Path):
    path = token_file(tmp_path, "from-file")
    env = {TOKEN_ENV: f"  {TOKEN}\n", TOKEN_FILE_ENV: str(path)}
    assert load_token(env, path) == TOKEN


def test_token_file_from_the_environment(tmp_path: Path):
    path = token_file(tmp_path)
    other = tmp_path / "other.token"
    assert load_token({TOKEN_FILE_ENV: str(path)}, other) == TOKEN


def test_token_file_given_by_the_caller(tmp_path: Path):
    assert load_token({}, token_file(tmp_path, f"\n\t{TOKEN}  \n")) == TOKEN


def test_empty_file_variable_falls_back_to_the_given_file(tmp_path: Path):
    assert load_token({TOKEN_FILE_ENV: ""}, token_file(tmp_path)) == TOKEN


@posix_only
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o666, 0o620])
def test_file_open_to_others_is_refused_with_the_fix(tmp_path: Path, mode: int):
    path = token_file(tmp_path, mode=mode)
    with pytest.raises(ConfigError, match="group or others") as info:
        load_token({}, path)
    message = str(info.value)
    assert f"chmod 600 {path}" in message
    assert TOKEN not in message


@posix_only
@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_owner_only_modes_are_accepted(tmp_path: Path, mode: int):
    assert load_token({}, token_file(tmp_path, mode=mode)) == TOKEN


@pytest.mark.parametrize("text", ["", "   \n", "\n\n"])
def test_empty_token_file_is_refused(tmp_path: Path, text: str):
    with pytest.raises(ConfigError, match="empty"):
        load_token({}, token_file(tmp_path, text))


@pytest.mark.parametrize("value", ["", "  ", "\n"])
def test_empty_environment_token_is_refused(value: str):
    with pytest.raises(ConfigError, match="MOODLE_BRIDGE_TOKEN is empty"):
        load_token({TOKEN_ENV: value}, None)


def test_token_with_inner_whitespace_is_refused_without_showing_it(tmp_path: Path):
    with pytest.raises(ConfigError, match="whitespace") as info:
        load_token({}, token_file(tmp_path, f"{TOKEN} {TOKEN}"))
    assert TOKEN not in str(info.value)


def test_no_token_anywhere():
    with pytest.raises(ConfigError, match="MOODLE_BRIDGE_TOKEN"):
        load_token({}, None)


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read token file"):
        load_token({}, tmp_path / "absent.token")


def test_directory_is_not_a_token_file(tmp_path: Path):
    folder = tmp_path / "dir"
    folder.mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_token({}, folder)


def test_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    token_file(tmp_path)
    assert load_token({TOKEN_FILE_ENV: "~/moodle.token"}, None) == TOKEN
