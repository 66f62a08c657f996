"""A small pool of workers for calls to Moodle: two double a 2-core site's throughput."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["run_parallel"]

T = TypeVar("T")


def run_parallel(items: Sequence[T], work: Callable[[T], None], workers: int) -> None:
    """Call ``work`` on every item, ``workers`` at a time, in order when there is one worker.

    After the first failure no further item is started (a revoked token fails every call
    alike), but the calls already in flight are waited for, so none is left half-recorded;
    then the first failure is raised.
    """
    if workers <= 1 or len(items) <= 1:
        for item in items:
            work(item)
        return
    stop = threading.Event()

    def guarded(item: T) -> None:
        if stop.is_set():
            return
        try:
            work(item)
        except BaseException:
            stop.set()
            raise

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(guarded, item) for item in items]
        failures = [f.exception() for f in futures]
    for failure in failures:
        if failure is not None:
            raise failure
