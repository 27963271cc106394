"""Background execution of the network work of items, in run order, with at
most `concurrency` jobs in flight and a bounded number of results waiting."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

logger = logging.getLogger(__name__)

Job = Callable[[], Any]


@dataclass(frozen=True)
class PlannedJob:
    """The network work of one item, keyed by its node id."""

    key: str
    run: Job


class Pipeline:
    """Runs planned jobs ahead of the items that consume them.

    A feeder thread submits jobs in plan order to a pool of `concurrency`
    threads, so at most `concurrency` requests are in flight. A job is only
    submitted while fewer than `concurrency + max_waiting` results are
    unclaimed, which bounds the memory held by finished replies. An item
    whose job was not planned, or not yet submitted, gets it submitted at
    once, so a plan that differs from the real run order costs speed only.
    """

    def __init__(self, concurrency: int, max_waiting: int | None = None) -> None:
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="modeleval")
        waiting = 2 * concurrency if max_waiting is None else max_waiting
        self._slots = threading.BoundedSemaphore(concurrency + waiting)
        self._lock = threading.Lock()
        self._futures: dict[str, Future[Any]] = {}
        # Every key ever submitted, so the feeder never sends a job twice when
        # an item claimed it before the feeder reached it.
        self._submitted: set[str] = set()
        self._slot_held: set[str] = set()
        self._plan: list[PlannedJob] = []
        self._stopping = threading.Event()
        self._feeder: threading.Thread | None = None

    def start(self, plan: list[PlannedJob]) -> None:
        self._plan = plan
        self._feeder = threading.Thread(target=self._feed, name="modeleval-feeder", daemon=True)
        self._feeder.start()

    def result(self, key: str, job: Job) -> Any:
        """Return the job's result for `key`, running `job` now if it was not submitted."""
        with self._lock:
            future = self._futures.get(key)
            if future is None:
                future = self._executor.submit(job)
                self._futures[key] = future
                self._submitted.add(key)
        try:
            return future.result()
        finally:
            self._release(key)

    def close(self) -> None:
        self._stopping.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
        # Wake a feeder blocked on a full window so that it checks the stop flag.
        with self._lock:
            held_slots = len(self._slot_held)
            self._slot_held.clear()
        for _ in range(held_slots):
            self._slots.release()
        if self._feeder is not None:
            self._feeder.join(timeout=5)

    def _feed(self) -> None:
        for planned in self._plan:
            self._slots.acquire()
            if self._stopping.is_set():
                return
            with self._lock:
                if planned.key in self._submitted:
                    self._slots.release()
                    continue
                try:
                    self._futures[planned.key] = self._executor.submit(planned.run)
                except RuntimeError:  # executor shut down while waiting
                    return
                self._submitted.add(planned.key)
                self._slot_held.add(planned.key)

    def _release(self, key: str) -> None:
        with self._lock:
            self._futures.pop(key, None)
            if key not in self._slot_held:
                return
            self._slot_held.discard(key)
        self._slots.release()
