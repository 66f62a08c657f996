"""gap_state: turning the gap plan into Moodle terms, run after run."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from moodle_bridge.roster.person import Person
from moodle_bridge.store import EnrolmentRow, EnrolMethod
from moodle_bridge.sync.gaps import GapInputs, gap_state
from moodle_bridge.units import discover_units

NIPS = [f"19800101200501100{i}" for i in range(3)]


def tables(folder: Path) -> Path:
    (folder / "standards").mkdir(parents=True)
    (folder / "catalogue").mkdir()
    (folder / "competencies.csv").write_text("code,name,kind,priority\nTEK-A,A,teknis,1\n")
    (folder / "position_levels.csv").write_text("unit,jabatan,position_level\n")
    (folder / "standards" / "PENDIS.csv").write_text("jabatan,competency,level\nGuru,TEK-A,2\n")
    # One seat, in a window that opened years ago and is still open.
    (folder / "catalogue" / "national.csv").write_text(
        "competency,from_level,to_level,course_shortname,jp,window_start,window_end,capacity,mode\n"
        "TEK-A,1,2,A-12,20,2020-01-01,2099-12-31,1,manual\n"
    )
    return folder


def test_a_seat_taken_today_in_an_old_window_stays_taken(tmp_path: Path):
    people = [
        Person(nip=n, display_name="N", firstname="N", lastname="A", unit="PENDIS", jabatan="Guru")
        for n in NIPS
    ]
    assessments = tmp_path / "a.csv"
    assessments.write_text(
        "nip,kompetensi,level,tanggal\n" + "".join(f"{n},TEK-A,1,2026-01-10\n" for n in NIPS)
    )
    inputs = GapInputs(assessments, tables(tmp_path / "m"), dt.date.today())
    unit = discover_units().require("generic")
    first = gap_state(people, unit, inputs, {})
    assert len(first.wanted) == 1
    # What the bridge records after enrolling: the window's start, and today.
    known = {
        key: EnrolmentRow(w.nip, w.course, False, w.timestart, w.timeend, int(time.time()))
        for key, w in first.wanted.items()
    }
    second = gap_state(people, unit, inputs, known)
    assert set(second.wanted) == set(first.wanted), "nobody else gets the one seat"


def two_gaps(tmp_path: Path, catalogue: str) -> tuple[Person, GapInputs]:
    """One person with a gap in TEK-A and in TEK-B, an annual cap of 1, and ``catalogue``
    (rows of ``national.csv``)."""
    folder = tables(tmp_path / "m")
    (folder / "units.csv").write_text("unit,annual_cap\nPENDIS,1\n")
    (folder / "competencies.csv").write_text(
        "code,name,kind,priority\nTEK-A,A,teknis,1\nTEK-B,B,teknis,2\n"
    )
    (folder / "standards" / "PENDIS.csv").write_text(
        "jabatan,competency,level\nGuru,TEK-A,2\nGuru,TEK-B,2\n"
    )
    (folder / "catalogue" / "national.csv").write_text(
        "competency,from_level,to_level,course_shortname,jp,window_start,window_end,capacity,mode\n"
        + catalogue
    )
    person = Person(
        nip=NIPS[0], display_name="N", firstname="N", lastname="A", unit="PENDIS", jabatan="Guru"
    )
    assessments = tmp_path / "a.csv"
    assessments.write_text(
        f"nip,kompetensi,level,tanggal\n{NIPS[0]},TEK-A,1,2026-01-10\n"
        f"{NIPS[0]},TEK-B,1,2026-01-10\n"
    )
    return person, GapInputs(assessments, folder, dt.date.today())


def test_a_training_in_next_years_window_counts_against_this_years_cap(tmp_path: Path):
    next_year = dt.date.today().year + 1
    person, inputs = two_gaps(
        tmp_path,
        f"TEK-A,1,2,A-12,20,{next_year}-01-05,{next_year}-06-30,,manual\n"
        "TEK-B,1,2,B-12,20,,,,manual\n",
    )
    unit = discover_units().require("generic")
    first = gap_state([person], unit, inputs, {})
    assert len(first.wanted) == 1
    known = {
        key: EnrolmentRow(w.nip, w.course, False, w.timestart, w.timeend, int(time.time()))
        for key, w in first.wanted.items()
    }
    second = gap_state([person], unit, inputs, known)
    assert set(second.wanted) == set(first.wanted), "the cap of 1 is used up"


@pytest.mark.parametrize("method", ["manual", "cohort", "other"])
def test_explain_counts_every_enrolment_this_year_against_the_cap(
    tmp_path: Path, method: EnrolMethod
):
    """An enrolment through an audience cohort, or someone else's in a catalogue course, is a
    training of the year like the bridge's own: it counts for the cap ``explain`` shows."""
    person, inputs = two_gaps(
        tmp_path, "TEK-A,1,2,A-12,20,,,,manual\nTEK-B,1,2,B-12,20,,,,cohort\n"
    )
    known = {
        (NIPS[0], "B-12"): EnrolmentRow(
            NIPS[0], "B-12", False, enrolled_at=int(time.time()), method=method
        )
    }

    state = gap_state([person], discover_units().require("generic"), inputs, known)

    lines = state.plan.explain(NIPS[0]).lines()
    assert "trainings this year: 1 before this plan, 0 chosen now, cap 1" in lines
    assert any(line.startswith("TEK-A: not chosen: the annual cap") for line in lines), lines
    assert any(line.startswith("TEK-B: already enrolled in B-12") for line in lines), lines
