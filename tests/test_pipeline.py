"""Tests of Pipeline: concurrency bound, plan order, bounded waiting results and shutdown."""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_modeleval.client import ChatClient, ChatReply, Endpoint
from pytest_modeleval.pipeline import Pipeline, PlannedJob
from tests.scripted_server import Reply, ScriptedServer

WAIT_S = 5.0  # upper bound for events that should happen within milliseconds
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                   "all_proxy")


class JobLog:
    """Records which jobs started, in what order, and how many ran at once."""

    def __init__(self, duration_s: float = 0.0) -> None:
        self.duration_s = duration_s
        self.started: list[str] = []
        self.calls: Counter[str] = Counter()
        self.threads: dict[str, threading.Thread] = {}
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def job(self, key: str, result: Any = None) -> Callable[[], Any]:
        return functools.partial(self._run, key, key if result is None else result)

    def plan(self, keys: list[str]) -> list[PlannedJob]:
        return [PlannedJob(key, self.job(key)) for key in keys]

    def count_started(self) -> int:
        with self._lock:
            return len(self.started)

    def _run(self, key: str, result: Any) -> Any:
        with self._lock:
            self.started.append(key)
            self.calls[key] += 1
            self.threads[key] = threading.current_thread()
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(self.duration_s)
        with self._lock:
            self.running -= 1
        return result


def wait_until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def keys_of(count: int) -> list[str]:
    return [f"item{index:02d}" for index in range(count)]


@pytest.fixture
def pipelines() -> Iterator[list[Pipeline]]:
    """Collect the pipelines a test starts and close them afterwards."""
    started: list[Pipeline] = []
    yield started
    for pipeline in started:
        pipeline.close()


def start(pipelines: list[Pipeline], plan: list[PlannedJob], concurrency: int,
          max_waiting: int | None = None) -> Pipeline:
    pipeline = Pipeline(concurrency, max_waiting)
    pipelines.append(pipeline)
    pipeline.start(plan)
    return pipeline


def test_pipeline_peak_equals_concurrency(pipelines: list[Pipeline]) -> None:
    log = JobLog(duration_s=0.05)
    keys = keys_of(40)
    pipeline = start(pipelines, log.plan(keys), concurrency=4)

    # The fallback job equals the planned one, because the main thread may claim an
    # item before the feeder thread has submitted it.
    results = [pipeline.result(key, log.job(key)) for key in keys]

    assert results == keys
    assert log.peak == 4
    assert sorted(log.calls) == keys
    assert set(log.calls.values()) == {1}


def test_pipeline_starts_in_plan_order(pipelines: list[Pipeline]) -> None:
    log = JobLog(duration_s=0.001)
    keys = keys_of(15)
    # No result is claimed until every job has run, so the start order comes from the feeder alone.
    start(pipelines, log.plan(keys), concurrency=1, max_waiting=len(keys))

    assert wait_until(lambda: log.count_started() == len(keys))
    assert log.started == keys


def test_pipeline_bounds_unclaimed_results(pipelines: list[Pipeline]) -> None:
    log = JobLog()
    keys = keys_of(12)
    pipeline = start(pipelines, log.plan(keys), concurrency=2, max_waiting=3)

    assert wait_until(lambda: log.count_started() >= 5)
    time.sleep(0.2)  # give a feeder that ignores the bound time to start more
    assert log.started == keys[:5]

    assert pipeline.result(keys[0], log.job(keys[0], "unplanned")) == keys[0]
    assert pipeline.result(keys[1], log.job(keys[1], "unplanned")) == keys[1]

    assert wait_until(lambda: log.count_started() >= 7)
    time.sleep(0.2)
    assert log.started == keys[:7]


def test_pipeline_zero_max_waiting(pipelines: list[Pipeline]) -> None:
    log = JobLog()
    keys = keys_of(10)
    start(pipelines, log.plan(keys), concurrency=2, max_waiting=0)

    assert wait_until(lambda: log.count_started() >= 2)
    time.sleep(0.2)
    assert log.started == keys[:2]


def test_pipeline_runs_unplanned_key(pipelines: list[Pipeline]) -> None:
    log = JobLog()
    pipeline = start(pipelines, log.plan(keys_of(3)), concurrency=2)

    result = pipeline.result("unplanned", log.job("unplanned", "unplanned result"))

    assert result == "unplanned result"
    assert log.calls["unplanned"] == 1


def test_pipeline_without_plan_runs_job(pipelines: list[Pipeline]) -> None:
    log = JobLog()
    pipeline = start(pipelines, [], concurrency=2)

    assert pipeline.result("only", log.job("only", 42)) == 42
    assert log.calls == Counter({"only": 1})


def test_pipeline_claimed_key_runs_once(pipelines: list[Pipeline]) -> None:
    log = JobLog()
    keys = keys_of(8)
    early = keys[5]
    last_started = threading.Event()

    def last_job() -> str:
        last_started.set()
        return keys[-1]

    plan = [*log.plan(keys[:-1]), PlannedJob(keys[-1], last_job)]
    # Three slots: the feeder stops after item00-item02 until results are claimed.
    pipeline = start(pipelines, plan, concurrency=2, max_waiting=1)
    assert wait_until(lambda: log.count_started() == 3)

    assert pipeline.result(early, log.job(early, "claimed early")) == "claimed early"
    for key in keys[:5] + keys[6:7]:
        assert pipeline.result(key, log.job(key)) == key
    # The last planned job starting means the feeder has passed item05.
    assert last_started.wait(WAIT_S)

    assert log.calls[early] == 1
    assert set(log.calls.values()) == {1}
    assert pipeline.result(keys[-1], last_job) == keys[-1]


def test_pipeline_job_error_propagates(pipelines: list[Pipeline]) -> None:
    log = JobLog()
    job_threads: list[threading.Thread] = []
    keys = keys_of(4)

    def failing_job() -> None:
        job_threads.append(threading.current_thread())
        raise ValueError("server sent no choices")

    plan = [PlannedJob(keys[0], failing_job), *log.plan(keys[1:])]
    # Two slots: item02 starts only when the failed item00 gives its slot back.
    pipeline = start(pipelines, plan, concurrency=1, max_waiting=1)
    assert wait_until(lambda: log.count_started() == 1)

    with pytest.raises(ValueError, match="server sent no choices"):
        pipeline.result(keys[0], log.job(keys[0], "unplanned"))

    assert job_threads[0] is not threading.current_thread()
    assert wait_until(lambda: log.count_started() == 2)
    assert log.started == keys[1:3]


def test_pipeline_close_returns_promptly(pipelines: list[Pipeline]) -> None:
    log = JobLog(duration_s=0.05)
    pipeline = start(pipelines, log.plan(keys_of(20)), concurrency=2, max_waiting=1)
    # The feeder now waits for a slot that no claim will free.
    assert wait_until(lambda: log.count_started() == 3)

    started = time.monotonic()
    pipeline.close()
    elapsed = time.monotonic() - started

    assert elapsed < 2.0
    time.sleep(0.2)
    assert log.count_started() <= 3


def test_pipeline_overlaps_server_requests(scripted_server: ScriptedServer,
                                           pipelines: list[Pipeline],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    delay_s = 0.2
    scripted_server.script = lambda body, attempt: Reply(
        content=body["messages"][0]["content"].upper(), delay=delay_s)
    client = ChatClient(Endpoint("scripted-model", scripted_server.url, "MODELEVAL_TEST_KEY"))
    lock = threading.Lock()
    in_flight = [0, 0]  # requests waiting for a reply now, and the peak of that count

    def ask(key: str) -> ChatReply:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        try:
            return client.chat([{"role": "user", "content": key}])
        finally:
            with lock:
                in_flight[0] -= 1

    keys = keys_of(16)
    plan = [PlannedJob(key, functools.partial(ask, key)) for key in keys]

    try:
        started = time.monotonic()
        pipeline = start(pipelines, plan, concurrency=8)
        replies: list[ChatReply] = [pipeline.result(key, functools.partial(ask, key))
                                    for key in keys]
        elapsed = time.monotonic() - started
    finally:
        client.close()

    assert [reply.content for reply in replies] == [key.upper() for key in keys]
    assert len(scripted_server.requests) == 16
    assert in_flight[1] == 8
    # Sent one at a time, the requests take at least 16 * 0.2 s = 3.2 s. The run takes
    # 0.5-0.7 s on an idle 2-CPU machine, so the bound leaves room for a loaded one.
    assert elapsed < 16 * delay_s
