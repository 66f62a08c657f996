"""What the typed wrappers share: the :class:`Caller` they talk through, base models, helpers.

Each component module (``site``, ``users``, ``cohorts``, ``courses``, ``enrol``, ``completion``,
``reportbuilder``, ``competency``) is a set of functions taking a :class:`Caller` first and
returning pydantic models. They hold no business rules: they name Moodle's parameters, send
them, and parse the answer.

Conventions of the models:

* Answers (:class:`MoodleModel`) ignore fields they do not know, because Moodle adds fields
  between versions. A field Moodle may leave out is ``None`` when absent (lists are empty),
  so ``None`` means "Moodle did not say", never a value of its own.
* Inputs (:class:`MoodleInput`) refuse unknown fields, so a misspelt field fails here instead
  of being dropped silently by Moodle. Fields left at ``None`` are not sent at all, and Moodle
  applies its own default (on an update: leaves the value as it is).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cache
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from moodle_bridge import errors

__all__ = [
    "Caller",
    "Context",
    "MoodleInput",
    "MoodleModel",
    "MoodleWarning",
    "NameValue",
    "UnexpectedResponse",
    "expect_count",
    "name_value_list",
    "parse",
    "parse_list",
    "parse_warnings",
    "to_params",
]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


@runtime_checkable
class Caller(Protocol):
    """Anything that can call a Moodle web-service function (``MoodleClient`` does).

    ``params`` are nested dicts and lists; the caller flattens them into Moodle's form fields,
    decodes the JSON answer and raises the :mod:`moodle_bridge.errors` exceptions.
    ``retry_writes=False`` asks it not to resend a write whose answer was lost.
    """

    def call(
        self,
        wsfunction: str,
        params: Mapping[str, Any] | None = None,
        *,
        retry_writes: bool = True,
    ) -> Any:
        """Call ``wsfunction`` with ``params``; return the decoded answer (None for none)."""
        ...

    def chunks(
        self,
        items: Iterable[T],
        item_params: Callable[[T], Any],
        *,
        others: Mapping[str, Any] | None = None,
        limit: int | None = None,
    ) -> Iterator[list[T]]:
        """Split ``items`` lazily into consecutive chunks that each fit one request's budget.

        ``item_params(item)`` is one element of the call's list parameter, ``others`` the
        call's other parameters, ``limit`` the most items per chunk.
        """
        ...


class UnexpectedResponse(errors.Fatal):
    """Moodle answered with a shape the wrapper does not know (another Moodle version?).

    Every further call would misread the same way, so the run stops.
    """


class MoodleModel(BaseModel):
    """Base of every model parsed from a Moodle answer."""

    # PARAM_RAW fields (preference values, course format options) come back as JSON numbers
    # when PHP held an int; they are text all the same.
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class MoodleInput(BaseModel):
    """Base of every model sent to Moodle; ``None`` fields are not sent."""

    model_config = ConfigDict(extra="forbid")


class MoodleWarning(MoodleModel):
    """A per-item warning Moodle returns beside a result (``item``/``itemid`` may be absent).

    ``warningcode`` is text: Moodle uses both names (``invaliduserid``) and digits (``"2"``).
    """

    item: str | None = None
    itemid: int | None = None
    warningcode: str
    message: str


class _WarningsOnly(MoodleModel):
    warnings: list[MoodleWarning] = []


class NameValue(MoodleModel):
    """A ``{name, value}`` pair (preferences, course format options)."""

    name: str
    value: str


class Context(MoodleInput):
    """A Moodle context, by ``contextid`` or by ``contextlevel`` plus ``instanceid``."""

    contextid: int | None = None
    contextlevel: str | None = None
    instanceid: int | None = None

    @classmethod
    def system(cls) -> Context:
        """The system context, named by level so it holds on any site."""
        return cls(contextlevel="system", instanceid=0)


def to_params(model: BaseModel) -> dict[str, Any]:
    """Return an input model as Moodle parameters, leaving out every field that is None."""
    return model.model_dump(mode="python", exclude_none=True)


def name_value_list(
    pairs: Mapping[str, Any], *, name: str = "name", value: str = "value"
) -> list[dict[str, Any]]:
    """Turn ``{"a": 1}`` into Moodle's ``[{"name": "a", "value": 1}]`` (key names adjustable)."""
    return [{name: key, value: item} for key, item in pairs.items()]


@cache
def _list_adapter(model: type[M]) -> TypeAdapter[list[M]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _unexpected(wsfunction: str, exc: ValidationError) -> UnexpectedResponse:
    # Only locations and reasons: the input values may hold personal data.
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "answer"
    return UnexpectedResponse(
        f"unexpected answer shape ({exc.error_count()} problem(s)); {where}: {first['msg']}",
        wsfunction=wsfunction,
    )


def parse(wsfunction: str, model: type[M], data: Any) -> M:
    """Parse one answer of ``wsfunction`` into ``model``; raise UnexpectedResponse if unfit."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _unexpected(wsfunction, exc) from exc


def parse_list(wsfunction: str, model: type[M], data: Any) -> list[M]:
    """Parse a list answer of ``wsfunction`` into ``model``s; raise UnexpectedResponse if unfit."""
    try:
        return _list_adapter(model).validate_python(data)
    except ValidationError as exc:
        raise _unexpected(wsfunction, exc) from exc


def parse_warnings(wsfunction: str, data: Any) -> list[MoodleWarning]:
    """Parse an answer that is only ``{"warnings": [...]}``; raise UnexpectedResponse if unfit."""
    return parse(wsfunction, _WarningsOnly, data).warnings


def expect_count(wsfunction: str, sent: Sequence[Any], received: Sequence[Any]) -> None:
    """Raise TruncatedRequest when Moodle answered for fewer items than were sent.

    PHP silently drops form fields beyond ``max_input_vars``, and Moodle then acts on the
    items that arrived; a short answer is the only sign of it.
    """
    if len(received) != len(sent):
        msg = f"sent {len(sent)} item(s) but Moodle answered for {len(received)}"
        raise errors.TruncatedRequest(msg, wsfunction=wsfunction)


class CountingCaller:
    """Wraps a client and counts the calls made and the seconds they took, per function
    (thread-safe): what a run cost Moodle."""

    def __init__(self, caller: Caller) -> None:
        self.caller = caller
        self.calls: Counter[str] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def call(
        self,
        wsfunction: str,
        params: Mapping[str, Any] | None = None,
        *,
        retry_writes: bool = True,
    ) -> Any:
        """Count, then pass the call on, timing it."""
        with self._lock:
            self.calls[wsfunction] += 1
        started = time.monotonic()
        try:
            answer = self.caller.call(wsfunction, params, retry_writes=retry_writes)
        finally:
            elapsed = time.monotonic() - started
            with self._lock:
                self.seconds[wsfunction] += elapsed
        self.answered(wsfunction, params, elapsed)
        return answer

    def answered(self, wsfunction: str, params: Mapping[str, Any] | None, seconds: float) -> None:
        """Moodle answered a call in ``seconds``: a hook for wrappers that measure more."""

    def chunks(
        self,
        items: Iterable[T],
        item_params: Callable[[T], Any],
        *,
        others: Mapping[str, Any] | None = None,
        limit: int | None = None,
    ) -> Iterator[list[T]]:
        """The wrapped client's chunks (no call is made)."""
        return self.caller.chunks(items, item_params, others=others, limit=limit)
