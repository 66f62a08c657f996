"""A small scheduler: the chunks of several lanes, sent by a bounded pool of workers.

Each :class:`Lane` is one stage's queue of chunks, taken lazily (a chunk's records are built
when a worker is free for it, not for the whole run at once). Lanes are served in the order
they were made, so work that others wait for goes first; a gated lane sends its first chunk
alone and the rest once that one is settled (its read-back checks have run). Work may add
chunks to any lane while the pipeline runs: a created batch's memberships join their lane
as soon as the accounts exist, and go out while the next batch is created.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Lane", "Pipeline"]

Chunk = list[Any]


@dataclass(eq=False)
class Lane:
    """One stage's chunks, in order (chunks added ``first`` go before those waiting)."""

    stage: Any
    gated: bool = False
    sources: deque[Iterator[Chunk]] = field(default_factory=deque)
    started: bool = False
    opened: bool = False

    def take(self) -> Chunk | None:
        """The next chunk this lane may send now, or None."""
        if self.gated and self.started and not self.opened:
            return None
        while self.sources:
            chunk = next(self.sources[0], None)
            if chunk is None:
                self.sources.popleft()
                continue
            self.started = True
            return chunk
        return None


class Pipeline:
    """Runs lanes' chunks through ``workers`` threads; see the module's docstring."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self.lanes: list[Lane] = []
        self._lock = threading.Lock()

    def lane(self, stage: Any, *, gated: bool = False) -> Lane:
        """A new lane for ``stage``, served after the lanes made before it."""
        lane = Lane(stage, gated)
        self.lanes.append(lane)
        return lane

    def add(self, lane: Lane, chunks: Iterator[Chunk], *, first: bool = False) -> None:
        """Queue ``chunks`` on ``lane`` (safe from a worker while the pipeline runs)."""
        with self._lock:
            if first:
                lane.sources.appendleft(chunks)
            else:
                lane.sources.append(chunks)

    def run(self, work: Callable[[Lane, Chunk], None]) -> None:
        """Call ``work(lane, chunk)`` for every chunk until no lane has one left.

        After the first failure no further chunk is started, but the calls in flight are
        waited for, so none is left half-recorded; then the first failure is raised.
        """
        failure: BaseException | None = None
        running: dict[Future[None], Lane] = {}
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            while True:
                while failure is None and len(running) < self.workers:
                    job = self._next()
                    if job is None:
                        break
                    running[pool.submit(work, *job)] = job[0]
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    running.pop(future).opened = True
                    error = future.exception()
                    failure = failure or error
        if failure is not None:
            raise failure

    def _next(self) -> tuple[Lane, Chunk] | None:
        with self._lock:
            for lane in self.lanes:
                chunk = lane.take()
                if chunk is not None:
                    return lane, chunk
        return None
