"""MoodleClient.chunks: the one place that splits a list parameter by the request budget."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from hypothesis import given
from hypothesis import strategies as st

from moodle_bridge import errors
from moodle_bridge.moodle.api import CountingCaller
from moodle_bridge.moodle.client import MoodleClient
from moodle_bridge.moodle.encoding import encode_params

SITE = "https://lms.example.go.id"
ENDPOINT = SITE + "/webservice/rest/server.php"



def _min_chunks(sizes: list[int], room: int) -> int:
    """The optimum by dynamic programming, to check the greedy split against."""
    best = [0] + [len(sizes) + 1] * len(sizes)
    for end in range(1, len(sizes) + 1):
        total = 0
        for start in range(end - 1, -1, -1):
            total += sizes[start]
            if total > room:
                break
            best[end] = min(best[end], best[start] + 1)
    return best[-1]

@given(
    sizes=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=40),
    budget=st.integers(min_value=10, max_value=40),
)
def test_chunks_are_the_fewest_in_order_and_each_request_fits(sizes: list[int], budget: int):
    client = MoodleClient(SITE, "tok", field_budget=budget)
    items = [{f"f{k}": i for k in range(size)} for i, size in enumerate(sizes)]
    chunks = list(client.chunks(items, lambda item: item, others={"courseid": 3}))
    assert [item for chunk in chunks for item in chunk] == items
    for chunk in chunks:
        fields = encode_params({"courseid": 3, "items": chunk})
        assert 3 + len(fields) <= budget  # wstoken, wsfunction and the format travel too
    assert len(chunks) == _min_chunks(sizes, budget - 3 - 1)


def test_chunks_are_made_as_they_are_taken():
    client = MoodleClient(SITE, "tok", field_budget=13)
    built: list[int] = []

    def params(i: int) -> dict[str, Any]:
        built.append(i)
        return {"a": i, "b": i}

    chunks = client.chunks(range(1000), params)
    assert next(chunks) == [0, 1, 2, 3, 4]
    # Only what the first chunk needed (and the item that did not fit) was built.
    assert built == [0, 1, 2, 3, 4, 5]


def test_limit_caps_the_items_per_chunk():
    client = MoodleClient(SITE, "tok")
    chunks = list(client.chunks(range(25), lambda i: i, limit=10))
    assert [len(c) for c in chunks] == [10, 10, 5]


@responses.activate
def test_an_item_too_large_alone_comes_alone_and_the_call_refuses_it():
    client = MoodleClient(SITE, "tok", field_budget=10)
    big = {f"f{i}": i for i in range(9)}
    chunks = list(client.chunks([{"a": 1}, big, {"a": 2}], lambda item: item))
    assert chunks == [[{"a": 1}], [big], [{"a": 2}]]
    with pytest.raises(errors.RequestTooLarge):
        client.call("core_user_create_users", {"users": chunks[1]})
    assert len(responses.calls) == 0


def test_the_counting_caller_chunks_as_its_client_without_a_call():
    client = MoodleClient(SITE, "tok", field_budget=8)
    counting = CountingCaller(client)
    assert list(counting.chunks(range(7), lambda i: [i, i])) == [[0, 1], [2, 3], [4, 5], [6]]
    assert counting.calls == {}
