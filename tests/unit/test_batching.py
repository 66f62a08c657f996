"""Budgeted chunks and bisection of all-or-nothing batches."""

from __future__ import annotations

import math

import pytest

from moodle_bridge import errors
from moodle_bridge.sync.batching import bisect_send, chunk_by_fields


def test_chunks_are_the_fewest_that_fit_the_budget():
    chunks = chunk_by_fields(list(range(1000)), lambda _i: 6, 4990)
    assert [len(c) for c in chunks] == [831, 169]
    assert [i for c in chunks for i in c] == list(range(1000))


def test_a_record_larger_than_the_budget_is_refused():
    with pytest.raises(errors.RequestTooLarge):
        chunk_by_fields([1, 2], lambda i: 10 * i, 15)


def test_one_bad_record_in_200_is_isolated_and_the_rest_applied():
    sent_calls: list[int] = []
    applied: list[int] = []

    def send(items: list[int]) -> str:
        sent_calls.append(len(items))
        if 137 in items:
            raise errors.InvalidParameter("Invalid parameter value detected",
                                          errorcode="invalidparameter")
        return "ok"

    refused = bisect_send(list(range(200)), send, lambda items, _r: applied.extend(items))
    assert [r.item for r in refused] == [137]
    assert refused[0].error.errorcode == "invalidparameter"
    assert sorted(applied) == [i for i in range(200) if i != 137]
    # One call for the batch, then two per halving: a few more than the single call needed.
    assert len(sent_calls) <= 1 + 2 * math.ceil(math.log2(200))


def test_fatal_errors_are_not_bisected():
    def send(_items: list[int]) -> None:
        raise errors.InvalidToken("Invalid token - token not found")

    with pytest.raises(errors.InvalidToken):
        bisect_send(list(range(10)), send, lambda _i, _r: None)


def test_the_create_field_count_matches_the_encoded_request():
    from moodle_bridge.moodle.encoding import value_field_count
    from moodle_bridge.sync.executor import _new_user, _new_user_fields
    from moodle_bridge.sync.planner import CreateAccount

    record = {"username": "u", "idnumber": "1", "firstname": "A", "lastname": "B",
              "email": "a@b.example", "auth": "manual", "profile_field_unit": "PENDIS",
              "profile_field_satker": ""}
    create = CreateAccount("1", "PENDIS", record)
    assert _new_user_fields(create) == value_field_count(_new_user(create)) == 11
