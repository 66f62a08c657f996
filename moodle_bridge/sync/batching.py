"""Send records to Moodle in budgeted batches, isolating the records Moodle refuses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from moodle_bridge import errors
from moodle_bridge.moodle.encoding import value_field_count

T = TypeVar("T")
R = TypeVar("R")


def chunk_by_fields(
    items: Sequence[T], fields_of: Callable[[T], int], budget: int, max_items: int | None = None
) -> list[list[T]]:
    """Split ``items`` into the fewest consecutive chunks whose field counts fit ``budget``.

    Raises RequestTooLarge for an item that alone does not fit.
    """
    chunks: list[list[T]] = []
    current: list[T] = []
    used = 0
    for item in items:
        size = fields_of(item)
        if size > budget:
            msg = f"one record needs {size} form fields, more than the budget of {budget}"
            raise errors.RequestTooLarge(msg, record=item)
        if current and (used + size > budget or (max_items and len(current) >= max_items)):
            chunks.append(current)
            current, used = [], 0
        current.append(item)
        used += size
    if current:
        chunks.append(current)
    return chunks


def fields_of_record(prefix_fields: int = 0) -> Callable[[object], int]:
    """Field counter for one list item as Moodle's form encoding sends it."""

    def count(item: object) -> int:
        return prefix_fields + value_field_count(item)

    return count


@dataclass
class Refused(Generic[T]):
    """A record Moodle refused, with the error that says why."""

    item: T
    error: errors.MoodleError


def bisect_send(
    items: list[T],
    send: Callable[[list[T]], R],
    on_sent: Callable[[list[T], R], None],
    on_refused: Callable[[Refused[T]], None] = lambda _refused: None,
) -> list[Refused[T]]:
    """Send ``items``; when Moodle refuses the batch as a whole, halve it until each refused
    record stands alone.

    Moodle's user-creation and enrolment batches are all-or-nothing and its validation error
    does not say which record failed, so halving finds one bad record among n in about
    2·log2(n) extra calls while every good record is still applied. ``on_refused`` hears of
    each refused record as soon as it is isolated (so a circuit breaker can stop a run mid-way).
    Retriable and fatal errors propagate: they say nothing about the records.
    """
    try:
        result = send(items)
    except errors.RecordError as error:
        if len(items) == 1:
            refused = Refused(items[0], error.with_record(items[0]))
            on_refused(refused)
            return [refused]
        middle = len(items) // 2
        return bisect_send(items[:middle], send, on_sent, on_refused) + bisect_send(
            items[middle:], send, on_sent, on_refused
        )
    on_sent(items, result)
    return []
