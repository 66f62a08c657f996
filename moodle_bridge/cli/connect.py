"""The Moodle a command talks to: the configured site, or a fresh built-in emulator."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click

from moodle_bridge.cli.app import AppContext
from moodle_bridge.config import Settings
from moodle_bridge.errors import ConfigError
from moodle_bridge.moodle.client import MoodleClient
from moodle_bridge.moodle.transport import Transport

__all__ = ["client_for", "connect", "site_and_state"]


def client_for(settings: Settings, url: str, token: str) -> MoodleClient:
    """A client configured from the settings."""
    moodle = settings.moodle
    transport = Transport(
        connect_timeout=moodle.connect_timeout,
        read_timeout=moodle.read_timeout,
        ca_bundle=moodle.ca_bundle,
        concurrency=moodle.workers,
    )
    retry = moodle.retry_policy()
    return MoodleClient(
        url, token, transport=transport, retry=retry, field_budget=moodle.field_budget
    )


@contextlib.contextmanager
def connect(app: AppContext, use_emulator: bool = False) -> Iterator[MoodleClient]:
    """A client for the configured site, or for a built-in emulator served on 127.0.0.1.

    Raises ConfigError when the site's URL or token is missing or unusable.
    """
    settings = app.settings
    if use_emulator:
        from moodle_bridge.emulator import Emulator, default_seed
        from moodle_bridge.emulator.server import running

        emulator = Emulator(default_seed())
        with (
            running(emulator) as server,
            client_for(settings, server.url, emulator.token_for("bridge")) as client,
        ):
            yield client
        return
    if not settings.moodle.url:
        msg = "no Moodle URL: set MOODLE_BRIDGE_URL or [moodle] url in moodle-bridge.toml"
        raise ConfigError(msg)
    token = settings.token(app.env)
    with client_for(settings, str(settings.moodle.url), token) as client:
        yield client


@contextlib.contextmanager
def site_and_state(app: AppContext, use_emulator: bool) -> Iterator[tuple[MoodleClient, Path]]:
    """A client and the state folder that belongs to its site.

    The configured state belongs to the configured site; a fresh emulator is another site, so
    it gets a state folder of its own that is removed afterwards.
    """
    if not use_emulator:
        with connect(app) as client:
            yield client, app.settings.state.dir
        return
    with (
        tempfile.TemporaryDirectory(prefix="moodle-bridge-emulator-") as folder,
        connect(app, use_emulator=True) as client,
    ):
        click.echo(
            f"moodle-bridge: --emulator: a throwaway state in {folder}, removed afterwards "
            f"(the configured state {app.settings.state.dir} is not opened)",
            err=True,
        )
        yield client, Path(folder)
