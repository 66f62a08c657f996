"""``[moodle]`` retry settings become the client's RetryPolicy."""

from __future__ import annotations

from pathlib import Path

import pytest

from moodle_bridge.config import load_settings
from moodle_bridge.errors import ConfigError
from moodle_bridge.moodle.client import DEFAULT_MAX_SITE_WAIT, RetryPolicy


def test_defaults_are_the_clients_defaults(tmp_path: Path):
    settings = load_settings({}, _write(tmp_path, ""))
    assert settings.moodle.retry_policy() == RetryPolicy()
    assert RetryPolicy().wait_for_site is False
    assert RetryPolicy().max_site_wait == DEFAULT_MAX_SITE_WAIT


def test_the_file_sets_every_retry_setting(tmp_path: Path):
    text = (
        "[moodle]\nmax_attempts = 3\nmax_total_wait = 2\nretry_delay = 0.01\n"
        "wait_for_site = true\nmax_site_wait = 600\n"
    )
    policy = load_settings({}, _write(tmp_path, text)).moodle.retry_policy()
    assert policy == RetryPolicy(
        max_attempts=3,
        max_total_wait=2,
        base_delay=0.01,
        wait_for_site=True,
        max_site_wait=600,
    )
    assert policy.site_budget == 600


def test_the_environment_turns_waiting_for_the_site_on(tmp_path: Path):
    settings = load_settings({"MOODLE_BRIDGE_WAIT_FOR_SITE": "1"}, _write(tmp_path, ""))
    assert settings.moodle.retry_policy().wait_for_site is True


@pytest.mark.parametrize("text", ["retry_delay = 0", "max_site_wait = -1", "wait_for_site = 7"])
def test_bad_values_are_refused(tmp_path: Path, text: str):
    with pytest.raises(ConfigError, match="moodle"):
        load_settings({}, _write(tmp_path, f"[moodle]\n{text}\n"))


def _write(folder: Path, text: str) -> Path:
    path = folder / "moodle-bridge.toml"
    path.write_text(text, encoding="utf-8")
    return path
