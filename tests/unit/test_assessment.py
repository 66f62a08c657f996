"""LatestAssessments: the latest assessment per person and competency, kept while reading."""

from __future__ import annotations

import datetime as dt
import random

from hypothesis import given
from hypothesis import strategies as st

from moodle_bridge.roster.assessment import (
    Assessment,
    LatestAssessments,
    collect_latest,
    rank_day,
    rank_level,
)
from moodle_bridge.roster.person import RowError

NIP1, NIP2 = "198001012005011001", "198001012005011002"
D1, D2 = dt.date(2025, 1, 10), dt.date(2025, 6, 10)


def assessed(nip: str, competency: str, level: int, date: dt.date = D1, row: int = 2) -> Assessment:
    """An assessment, written as briefly as the gap engine's tests write theirs."""
    return Assessment(nip=nip, competency=competency, level=level, date=date, row=row)


def kept(latest: LatestAssessments) -> set[tuple[str, str, int, dt.date, int]]:
    return {(a.nip, a.competency, a.level, a.date, a.row) for a in latest}


def test_the_latest_day_then_the_later_row_then_the_higher_level_is_kept() -> None:
    rows = [
        assessed(NIP1, "TEK-B", 3, D2, 5),
        assessed(NIP1, "TEK-B", 1, D1, 9),
        assessed(NIP1, "TEK-C", 2, D2, 4),
        assessed(NIP1, "TEK-C", 1, D2, 7),
        assessed(NIP1, "MAN-A", 1, D1, 3),
        assessed(NIP1, "MAN-A", 3, D1, 3),
        assessed(NIP2, "TEK-B", 4, D1, 8),
    ]
    for order in (rows, rows[::-1]):
        latest = LatestAssessments(order)
        assert kept(latest) == {
            (NIP1, "TEK-B", 3, D2, 5),
            (NIP1, "TEK-C", 1, D2, 7),
            (NIP1, "MAN-A", 3, D1, 3),
            (NIP2, "TEK-B", 4, D1, 8),
        }
        assert len(latest) == 4
        assert latest.rows_by_competency() == {"TEK-B": 3, "TEK-C": 2, "MAN-A": 2}
        rank = latest.by_nip[NIP1]["TEK-B"]
        assert (rank_level(rank), dt.date.fromordinal(rank_day(rank))) == (3, D2)
    assert LatestAssessments(rows) == LatestAssessments(rows[::-1])
    assert LatestAssessments(rows) != LatestAssessments(rows[1:])


def test_rows_out_of_range_still_order_by_day() -> None:
    rows = [assessed(NIP1, "TEK-B", 2, D2, -4), assessed(NIP1, "TEK-B", 5, D1, 2**40)]
    latest = LatestAssessments(rows)
    assert kept(latest) == {(NIP1, "TEK-B", 2, D2, 0)}


def test_take_hands_a_person_over_once() -> None:
    latest = LatestAssessments([assessed(NIP1, "TEK-B", 2), assessed(NIP2, "TEK-B", 3)])
    taken = latest.take(NIP1)
    assert taken is not None
    assert rank_level(taken["TEK-B"]) == 2
    assert latest.take(NIP1) is None
    assert set(latest.by_nip) == {NIP2}


def test_collect_latest_keeps_the_errors_in_file_order() -> None:
    bad = [RowError(source="a.csv", row=r, column="level", reason="bad") for r in (3, 5)]
    good = [
        Assessment(nip=NIP1, competency="TEK-B", level=1, date=D1, row=2),
        Assessment(nip=NIP1, competency="TEK-B", level=4, date=D2, row=4),
    ]
    latest, errors = collect_latest([good[0], bad[0], good[1], bad[1]])
    assert errors == bad
    assert list(latest) == [Assessment(nip=NIP1, competency="TEK-B", level=4, date=D2, row=4)]


_NIPS = [NIP1, NIP2]
_CODES = ["MAN-A", "TEK-B"]
_DAYS = [D1, D2]


@given(
    st.lists(
        st.builds(
            assessed,
            st.sampled_from(_NIPS),
            st.sampled_from(_CODES),
            st.integers(1, 5),
            st.sampled_from(_DAYS),
            st.integers(0, 4),
        ),
        max_size=20,
    ),
    st.randoms(use_true_random=False),
)
def test_the_kept_rows_are_the_maxima_whatever_the_order(
    rows: list[Assessment], rng: random.Random
) -> None:
    shuffled = list(rows)
    rng.shuffle(shuffled)
    latest = LatestAssessments(shuffled)
    expected: dict[tuple[str, str], tuple[str, str, dt.date, int, int]] = {}
    for a in rows:
        key = (a.nip, a.competency)
        if key not in expected or (a.date, a.row, a.level) > expected[key][2:]:
            expected[key] = (a.nip, a.competency, a.date, a.row, a.level)
    assert kept(latest) == {(n, c, lv, d, r) for n, c, d, r, lv in expected.values()}
    assert sum(latest.rows_by_competency().values()) == len(rows)
