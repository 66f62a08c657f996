"""Bugs the simulated years found, each reduced to a few runs, so they stay fixed."""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from moodle_bridge.emulator.completion import learner_completes
from moodle_bridge.sync.engine import SyncOptions, SyncReport
from tests.simulation import invariants as inv
from tests.simulation.driver import Bridge
from tests.simulation.site import SimClock, Site
from tests.simulation.tables import CAP, shortnames, write_tables
from tests.simulation.world import HEADER, ZONE, run_stamp

NIP = "198501012010011001"
#: Both standards ask TEK-A 3, MAN-B 3, SOS-C 2 (tests/simulation/tables.py).
JABATAN = {"SETJEN": "Analis Kepegawaian Ahli Muda", "PENDIS": "Pengawas Madrasah Ahli Muda"}
DAY = 86400


def stamp(day: dt.date, hour: int = 9) -> int:
    return int(dt.datetime.combine(day, dt.time(hour), ZONE).timestamp())


class Scene:
    """One person (SETJEN, unless told) on a site with the simulation's catalogue (SIM-A-23
    takes TEK-A from 2 to 3; for PENDIS, so does the cohort-mode PENDIS-A-23)."""

    def __init__(self, folder: Path, site: Site, clock: SimClock, unit: str = "SETJEN") -> None:
        self.folder, self.site, self.clock, self.unit = folder, site, clock, unit
        mappings = write_tables(folder / "mappings", dt.date(2026, 1, 1), dt.date(2026, 12, 31))
        self.ids = site.create_courses(shortnames([2026]))
        options = SyncOptions(mappings_dir=mappings)
        self.bridge = Bridge(site, folder / "state", clock, mappings, options)

    def roster(self, day: dt.date) -> Path:
        path = self.folder / f"{self.unit.lower()}-{day:%Y%m%d}.csv"
        jabatan = JABATAN[self.unit]
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(HEADER)
            writer.writerow(
                [NIP, "Siti Lestari", "siti@kemenag.example", self.unit, "Kantor", jabatan,
                 "III/c", "AKTIF"]
            )  # fmt: skip
        os.utime(path, (stamp(day), stamp(day)))
        return path

    def assessed(self, day: dt.date, tek_a: int, man_b: int, sos_c: int) -> Path:
        path = self.folder / f"assessments-{day:%Y%m%d}.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["nip", "kompetensi", "level", "tanggal"])
            for competency, level in (("TEK-A", tek_a), ("MAN-B", man_b), ("SOS-C", sos_c)):
                writer.writerow([NIP, competency, level, day.isoformat()])
        return path

    def sync(self, day: dt.date, tek_a: int, man_b: int = 3, sos_c: int = 2) -> SyncReport:
        """Sync the person's row, with an assessment of ``day`` (no gap but TEK-A's, unless
        told)."""
        self.clock.at(run_stamp(day))
        assessments = self.assessed(day, tek_a, man_b, sos_c)
        report = self.bridge.run(self.roster(day), assessments=assessments, name=self.unit)
        assert report.guard is None, report.guard
        assert report.result is None or report.result.stopped is None
        return report

    @property
    def userid(self) -> int:
        return self.bridge.store.accounts()[NIP].moodle_id


@pytest.fixture(params=["SETJEN"])
def scene(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scene]:
    """The scene for the unit of the fixture's parameter (indirect), on 1 January 2026."""
    clock = SimClock(stamp(dt.date(2026, 1, 1)))
    with Site(clock) as site:
        scene = Scene(tmp_path, site, clock, unit=request.param)
        yield scene
        scene.bridge.close()


def test_a_completed_hand_enrolment_is_never_taken_over(scene: Scene) -> None:
    march = dt.date(2026, 3, 2)
    scene.sync(march, tek_a=1)  # the account is made; the TEK-A gap is from level 1
    # An administrator enrols the learner by hand in the course of the next step, with a
    # window of their own, and the learner finishes it.
    start, end = stamp(dt.date(2026, 3, 10), 0), stamp(dt.date(2026, 7, 1), 0)
    key = scene.site.enrol_by_hand(scene.userid, scene.ids["SIM-A-23"], start, end)
    hand = inv.HandEnrolments()
    hand.record(scene.site.world, [key])
    scene.sync(dt.date(2026, 3, 16), tek_a=2)  # now the bridge wants SIM-A-23: not ours
    assert scene.bridge.store.enrolments()[(NIP, "SIM-A-23")].method == "other"
    assert hand.changed(scene.site.world) == []
    learner_completes(
        scene.site.emulator, scene.userid, scene.ids["SIM-A-23"], stamp(march, 20) + 20 * DAY
    )
    scene.clock.at(stamp(dt.date(2026, 3, 25)))
    scene.bridge.pull()
    assert [c.course for c in scene.bridge.store.completions()] == ["SIM-A-23"]
    # A later assessment still says level 2: the learner needs more than the course gave.
    scene.sync(dt.date(2026, 4, 6), tek_a=2)
    assert hand.changed(scene.site.world) == []
    assert scene.bridge.store.enrolments()[(NIP, "SIM-A-23")].method == "other"


def test_a_completed_course_is_not_enrolled_again(scene: Scene) -> None:
    scene.sync(dt.date(2026, 3, 2), tek_a=2)  # the bridge enrols the learner in SIM-A-23
    assert (NIP, "SIM-A-23") in scene.bridge.store.enrolments()
    when = stamp(dt.date(2026, 3, 20), 20)
    learner_completes(scene.site.emulator, scene.userid, scene.ids["SIM-A-23"], when)
    scene.clock.at(stamp(dt.date(2026, 3, 25)))
    scene.bridge.pull()
    assert [c.course for c in scene.bridge.store.completions()] == ["SIM-A-23"]
    # Newer assessments still say level 2, week after week.
    for day in (dt.date(2026, 4, 6), dt.date(2026, 4, 13)):
        report = scene.sync(day, tek_a=2)
        assert report.plan is not None
        again = [e for e in report.plan.enrolments if (e.nip, e.course) == (NIP, "SIM-A-23")]
        assert again == [], day


@pytest.mark.parametrize("scene", ["PENDIS"], indirect=True)
def test_a_hand_enrolment_in_another_course_of_the_step_counts_for_the_step_and_the_cap(
    scene: Scene,
) -> None:
    pendis = scene
    january = dt.date(2026, 1, 5)
    pendis.sync(january, tek_a=3)  # no gap yet: the account only
    window = stamp(dt.date(2026, 5, 1), 0), stamp(dt.date(2026, 9, 1), 0)
    pendis.site.enrol_by_hand(pendis.userid, pendis.ids["SIM-A-23"], *window)
    # New results in June: three gaps (TEK-A 2->3, MAN-B 1->2, SOS-C 1->2), the unit's cap is
    # 3, and the hand enrolment already serves TEK-A 2->3 (SIM-A-23's own next window opens in
    # September, PENDIS-A-23's is open now).
    pendis.sync(dt.date(2026, 6, 2), tek_a=2, man_b=1, sos_c=1)
    # The administrator links the audience cohorts the bridge created; their people join at
    # the next sync.
    pendis.site.link_audiences()
    pendis.sync(dt.date(2026, 6, 3), tek_a=2, man_b=1, sos_c=1)
    mine = {c for n, c in pendis.bridge.store.enrolments() if n == NIP}
    assert not mine & {"PENDIS-A-23"}, mine
    bridge = inv.bridge_user_id(pendis.site.emulator)
    assert inv.over_cap(pendis.site.world, pendis.ids, CAP, bridge) == []
