"""The synthetic HR world: deterministic, valid, on schedule, and as eventful as promised."""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from pathlib import Path

import pytest

from moodle_bridge.roster.generic import read_generic_roster
from moodle_bridge.roster.nip import normalise_nip
from tests.simulation.tables import standards
from tests.simulation.world import (
    HRWorld,
    RowKind,
    Scale,
    export_stamp,
    exports_on,
    scientific,
)

SMALL = Scale(people=200, days=120, seed=3)


def a_year(folder: Path, scale: Scale = SMALL) -> HRWorld:
    world = HRWorld(scale)
    for day in world.days():
        world.advance_to(day)
        for unit in world.units_exporting():
            world.export(unit, folder)
    return world


def test_the_same_seed_writes_the_same_files(tmp_path: Path) -> None:
    first, second = a_year(tmp_path / "a"), a_year(tmp_path / "b")
    assert [e.path.name for e in first.exports] == [e.path.name for e in second.exports]
    assert all(
        a.path.read_bytes() == b.path.read_bytes()
        for a, b in zip(first.exports, second.exports, strict=True)
    )
    other = a_year(tmp_path / "c", Scale(people=200, days=120, seed=4))
    assert other.exports[-1].path.read_bytes() != first.exports[-1].path.read_bytes()


def test_every_nip_is_a_valid_unique_18_digit_nip() -> None:
    world = HRWorld(Scale(people=2000, days=1))
    nips = [p.nip for p in world.people]
    assert len(set(nips)) == len(nips)
    for nip in nips:
        checked = normalise_nip(nip)
        assert checked.nip == nip, checked.error
    assert normalise_nip(scientific(nips[0])).nip is None


def test_each_unit_exports_on_its_own_days(tmp_path: Path) -> None:
    start = dt.date(2026, 1, 1)  # a Thursday
    week = [start + dt.timedelta(days=i) for i in range(7)]
    assert [d for d in week if exports_on("PENDIS", d, start)] == week[::2]
    assert [d.weekday() for d in week if exports_on("BIMAS_ISLAM", d, start)] == [3, 0]
    assert [d.weekday() for d in week if exports_on("SETJEN", d, start)] == [2]
    world = a_year(tmp_path)
    export = world.exports[-1]
    assert int(export.path.stat().st_mtime) == export.stamp == export_stamp(export.day)


def test_a_file_is_the_generic_format_and_its_rows_mean_what_the_world_says(
    tmp_path: Path,
) -> None:
    world = a_year(tmp_path, Scale(people=400, days=200, seed=5))
    kinds: Counter[RowKind] = Counter()
    for export in world.exports[-20:]:
        with export.path.open(encoding="utf-8") as handle:
            header = next(csv.reader(handle))
        assert header == ["nip", "nama", "email", "unit", "satker", "jabatan", "golongan", "status"]
        read = read_generic_roster(export.path)
        people = {p.nip: p for p in read.people}
        refused = {e.nip for e in read.errors}
        for row in export.rows:
            kinds[row.kind] += 1
            if row.kind is RowKind.ACTIVE:
                assert people[row.nip].active, row
            elif row.kind is RowKind.INACTIVE:
                assert not people[row.nip].active, row
                assert not people[row.nip].left_unit, row
            elif row.kind is RowKind.LEFT_UNIT:
                assert people[row.nip].left_unit, row
            elif row.kind is RowKind.REFUSED:
                assert row.nip in refused, row
                assert row.nip not in people, row
            else:
                assert row.nip not in people, row
                assert row.nip not in refused, row
        assert read.untied == sum(1 for r in export.rows if r.kind is RowKind.UNTIED)
    assert all(kinds[kind] for kind in RowKind), kinds


def test_a_year_holds_every_kind_of_event_at_about_the_promised_rates(tmp_path: Path) -> None:
    world = a_year(tmp_path, Scale(people=600, days=365, seed=9))
    events = Counter(e.what for e in world.events)
    for what in ("move", "arrive", "leave", "back", "cltn", "retire", "hire", "dropped"):
        assert events[what], what
    # 1% of people move each month: about 72 a year for 600 people.
    assert 40 <= events["move"] <= 110
    rows = [r for e in world.exports for r in e.rows]
    bad = sum(1 for r in rows if r.kind in (RowKind.REFUSED, RowKind.UNTIED))
    assert 0.003 < bad / len(rows) < 0.008
    assert any(r.kind is RowKind.LEFT_UNIT for r in rows)
    statuses = {r.status for r in rows}
    assert {"CUTI SAKIT", "CLTN", "PENSIUN", "MPP", "MUTASI KELUAR"} <= statuses


def test_a_mover_leaves_one_file_and_appears_in_another_within_ten_days(
    tmp_path: Path,
) -> None:
    world = a_year(tmp_path, Scale(people=600, days=200, seed=11))
    movers = [e for e in world.events if e.what == "move"]
    assert movers
    for move in movers:
        old, new = move.detail.split(" ")[0].split("->")
        lag = int(move.detail.split(" ")[-1])
        assert 0 <= lag <= 10
        assert old != new
        arrived = [
            e
            for e in world.events
            if e.what == "arrive" and e.nip == move.nip and e.day >= move.day
        ]
        if lag and move.day + dt.timedelta(days=lag) <= world.today:
            assert arrived[0].day - move.day == dt.timedelta(days=lag)
            assert arrived[0].detail == new
        # Between leaving and arriving, no file lists the mover as active.
        for export in world.exports:
            if move.day <= export.day < move.day + dt.timedelta(days=lag):
                assert all(r.kind is not RowKind.ACTIVE for r in export.rows if r.nip == move.nip)


def test_assessments_open_gaps_then_close_them(tmp_path: Path) -> None:
    world = HRWorld(SMALL)
    wanted = standards()
    assert world.assess(wanted, share=1.0) > 0
    gaps = sum(
        1 for p in world.people for c, need in wanted[p.jabatan].items() if p.levels[c][0] < need
    )
    assert gaps
    world.advance_to(world.start + dt.timedelta(days=30))
    world.assess(wanted, share=1.0)
    raised = sum(1 for p in world.people for level, day in p.levels.values() if day > world.start)
    assert raised
    path = world.write_assessments(tmp_path / "a.csv")
    assert path.read_text(encoding="utf-8").startswith("nip,kompetensi,level,tanggal")


@pytest.mark.parametrize(
    ("env", "people", "days"),
    [({}, 600, 365), ({"MOODLE_BRIDGE_LONG_SIMULATION": "1"}, 3000, 730),
     ({"SIMULATION_SCALE": "2", "SIMULATION_DAYS": "90"}, 1200, 90)],
)  # fmt: skip
def test_the_environment_selects_the_long_version(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], people: int, days: int
) -> None:
    for name in ("MOODLE_BRIDGE_LONG_SIMULATION", "SIMULATION_SCALE", "SIMULATION_DAYS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    scale = Scale.from_env()
    assert (scale.people, scale.days) == (people, days)
    assert scale.long == bool(env)
