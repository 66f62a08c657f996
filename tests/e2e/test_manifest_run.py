"""``moodle-bridge run --manifest`` end to end: every unit's source in one process, against the
emulator over HTTP. A source whose files did not change since its last successful run is
skipped without a write; the exit code is the highest of the sources'."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.conftest import NO_GRACE, SITE_INFO, Bridge, Run, nip, person, write_csv

SKIPPED = "unchanged since its last successful run"
#: Ten PENDIS people and ten SETJEN people.
PENDIS = [person(i, unit="PENDIS") for i in range(10)]
SETJEN = [person(i, unit="SETJEN") for i in range(10, 20)]


def manifest(bridge: Bridge, *names: str) -> Path:
    """A manifest of one generic source per name, reading ``<name>.csv`` beside it."""
    path = bridge.tmp_path / "units.toml"
    path.write_text(
        "".join(
            f'[[source]]\nname = "{name}"\nplugin = "generic"\nroster = "{name}.csv"\n'
            for name in names
        ),
        encoding="utf-8",
    )
    return path


def export(bridge: Bridge, name: str, rows: list[dict[str, str]]) -> None:
    """The unit's HR export, where the manifest looks for it."""
    write_csv(bridge.tmp_path / f"{name}.csv", rows)


def run(bridge: Bridge, units: Path) -> Run:
    return bridge.invoke("run", "--manifest", str(units), "--yes", "--json")


def outcomes(run: Run) -> dict[str, dict[str, Any]]:
    assert run.data is not None, run.output
    return {source["name"]: source for source in run.data["sources"]}


def test_a_second_run_with_unchanged_files_skips_every_source_without_a_write(bridge: Bridge):
    units = manifest(bridge, "pendis", "setjen")
    export(bridge, "pendis", PENDIS)
    export(bridge, "setjen", SETJEN)
    first = run(bridge, units)
    assert first.exit_code == 0, first.output
    assert {name: o["report"]["applied"]["create"] for name, o in outcomes(first).items()} == {
        "pendis": 10,
        "setjen": 10,
    }

    again = run(bridge, units)

    assert again.exit_code == 0, again.output
    assert again.writes == []
    # Moodle is asked only whose state this is (a skip must not hide another site's).
    assert [name for name, _ in again.calls] == [SITE_INFO]
    assert {name: (o["code"], o["note"]) for name, o in outcomes(again).items()} == {
        "pendis": (0, SKIPPED),
        "setjen": (0, SKIPPED),
    }
    assert all(o["report"] is None for o in outcomes(again).values())
    # In words too, one line per source.
    text = bridge.invoke("run", "--manifest", str(units), "--yes")
    assert text.exit_code == 0, text.output
    assert text.output.splitlines() == [
        f"pendis: {SKIPPED} (exit 0)",
        f"setjen: {SKIPPED} (exit 0)",
    ]
    assert text.writes == []

    # A changed file runs again; the other is still skipped.
    export(bridge, "setjen", [*SETJEN[:-1], person(19, unit="SETJEN", satker="Biro Baru")])
    changed = run(bridge, units)

    assert changed.exit_code == 0, changed.output
    done = outcomes(changed)
    assert done["pendis"]["note"] == SKIPPED
    assert done["setjen"]["report"]["applied"] == {"update": 1}
    assert bridge.user(nip(19))["customfields"]["satker"] == "Biro Baru"


def test_the_exit_code_is_the_highest_of_the_sources(bridge: Bridge):
    bridge.configure(NO_GRACE)
    # The source that stops comes first: the exit code is not merely the last source's.
    units = manifest(bridge, "setjen", "pendis")
    export(bridge, "pendis", PENDIS)
    export(bridge, "setjen", SETJEN)
    assert run(bridge, units).exit_code == 0
    # SETJEN's export has lost half its people (the guard stops it); PENDIS's has one change.
    export(bridge, "setjen", SETJEN[:5])
    export(bridge, "pendis", [*PENDIS[:-1], person(9, unit="PENDIS", satker="Biro Baru")])

    mixed = run(bridge, units)

    assert mixed.exit_code == 3, mixed.output
    assert mixed.data is not None
    assert mixed.data["exit_code"] == 3
    done = outcomes(mixed)
    assert [(name, o["code"]) for name, o in done.items()] == [("setjen", 3), ("pendis", 0)]
    assert done["setjen"]["report"]["guard"]
    assert done["setjen"]["report"]["applied"] == {}
    assert done["pendis"]["report"]["applied"] == {"update": 1}
    assert all(bridge.user(p["nip"])["suspended"] == 0 for p in SETJEN)
    # The stopped source was not a success: the next run takes it up again.
    retried = outcomes(run(bridge, units))
    assert retried["setjen"]["code"] == 3
    assert retried["pendis"]["note"] == SKIPPED
