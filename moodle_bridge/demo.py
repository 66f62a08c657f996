"""The demo: a synthetic roster synced twice into a built-in Moodle emulator over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from moodle_bridge.emulator import Emulator, default_seed
from moodle_bridge.emulator.server import running
from moodle_bridge.moodle.client import MoodleClient
from moodle_bridge.samples import generate_people, write_roster_csv
from moodle_bridge.store import Store
from moodle_bridge.sync.engine import Engine, SyncOptions, SyncReport
from moodle_bridge.sync.executor import Progress
from moodle_bridge.units import discover_units

#: Three units of very different sizes, as in the ministry.
DEMO_UNITS = {"PENDIS": 0.6, "BIMAS_ISLAM": 0.25, "SETJEN": 0.15}


@dataclass
class DemoResult:
    """The demo's three runs and where it left its files."""

    roster: Path
    state_dir: Path
    site_url: str
    plan: SyncReport
    first_sync: SyncReport
    second_sync: SyncReport

    @property
    def ok(self) -> bool:
        """Whether the demo showed what it should: a sync applied, the next changed nothing."""
        first = self.first_sync.result
        second = self.second_sync
        return (
            first is not None
            and first.stopped is None
            and not any(second.planned.values())
            and sum(second.calls.values()) == 0
        )


def run_demo(
    workdir: Path, *, size: int = 3000, seed: int = 1, progress: Progress | None = None
) -> DemoResult:
    """Generate a roster of ``size`` synthetic ASN (with some dirty rows) in ``workdir``,
    serve a fresh emulator on 127.0.0.1, and run plan, sync and sync again."""
    workdir.mkdir(parents=True, exist_ok=True)
    roster = workdir / "roster.csv"
    write_roster_csv(roster, generate_people(size, seed, units=DEMO_UNITS))
    state_dir = workdir / "state"
    unit = discover_units().require("generic")
    emulator = Emulator(default_seed())
    with (
        running(emulator) as server,
        MoodleClient(server.url, emulator.token_for("bridge")) as client,
    ):
        with Store.open(state_dir / "state.sqlite3") as store:
            reports = []
            for apply in (False, True, True):
                engine = Engine(
                    client,
                    store,
                    state_dir,
                    SyncOptions(apply=apply),
                    progress=progress if apply else None,
                )
                reports.append(engine.run("generic", unit, roster))
        return DemoResult(roster, state_dir, server.url, *reports)
