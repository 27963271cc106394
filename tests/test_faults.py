"""Runs against a failing server: retried faults change no score, dead servers end quickly."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import socket
import time
from typing import Any

import pytest

from tests.bfcl_oracle import build_oracle
from tests.plugin_helpers import add_bfcl_module, load_results, run_args
from tests.scripted_server import Drop, Fail, Garbled, Outcome, ScriptedServer

SAMPLES = 12
SELECTION = ["-k", "[simple/ or [live_simple/", "--limit", str(SAMPLES)]
# One fault per request on its first attempt; the retry gets the oracle's reply.
FAULTS: list[Any] = [Fail(429, retry_after="0"), Fail(429), Fail(500), Fail(502), Fail(503),
                     Drop(), Garbled(), "timeout"]


def pick_fault(body: dict[str, Any]) -> Any:
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()
    return FAULTS[digest[0] % len(FAULTS)]


def outcomes(report_dir: Any) -> dict[str, tuple[str, float | None]]:
    return {s["sample_id"]: (s["outcome"], s["score"])
            for s in load_results(report_dir)["samples"]}


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["plain", "n2"])
def test_faulty_run_equals_clean_run(pytester: pytest.Pytester, xdist: list[str]) -> None:
    oracle = build_oracle("fc", subsets=("simple", "live_simple"), limit=SAMPLES)
    add_bfcl_module(pytester)

    def faulty(body: dict[str, Any], attempt: int) -> Outcome:
        reply = oracle.script(body, attempt)
        if attempt > 0:
            return reply
        fault = pick_fault(body)
        return dataclasses.replace(reply, delay=3.0) if fault == "timeout" else fault

    args = [*SELECTION, "--no-cache", "--gen", "timeout=1", *xdist]
    with ScriptedServer(oracle.script) as clean_server:
        pytester.runpytest(*run_args(clean_server.url, pytester.path / "clean", *args))
    with ScriptedServer(faulty) as faulty_server:
        result = pytester.runpytest(*run_args(faulty_server.url, pytester.path / "faulty",
                                              *args))
        kinds = {repr(pick_fault(body)) for body in faulty_server.requests}
        sent = len(faulty_server.requests)

    assert len(kinds) == len(FAULTS)  # every kind of fault was injected
    assert outcomes(pytester.path / "faulty") == outcomes(pytester.path / "clean")
    assert load_results(pytester.path / "faulty")["totals"]["errors"] == 0
    assert sent >= 2 * 2 * SAMPLES  # each request failed once, then was retried
    result.assert_outcomes(passed=2 * SAMPLES - outcomes_failed(pytester.path / "clean"),
                           failed=outcomes_failed(pytester.path / "clean"))


def outcomes_failed(report_dir: Any) -> int:
    return sum(outcome == "wrong" for outcome, _ in outcomes(report_dir).values())


def test_dead_server_gives_errors_quickly(pytester: pytest.Pytester) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The port is closed again, so every connection is refused.
    add_bfcl_module(pytester)
    started = time.monotonic()
    result = pytester.runpytest(*run_args(f"http://127.0.0.1:{port}/v1",
                                          pytester.path / "report", "-k", "[simple/",
                                          "--limit", "2", "--max-retries", "1", "--no-cache"))

    assert time.monotonic() - started < 30
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*simple_python_0: server error: *Connection error*"])
    assert "Traceback" not in result.stdout.str()


def test_silent_server_bounded_by_timeout(pytester: pytest.Pytester) -> None:
    add_bfcl_module(pytester)
    with ScriptedServer(lambda body, attempt: Drop(delay=60)) as server:
        started = time.monotonic()
        result = pytester.runpytest(*run_args(server.url, pytester.path / "report", "-k",
                                              "[simple/", "--limit", "2", "--max-retries",
                                              "0", "--gen", "timeout=0.5", "--no-cache"))
        elapsed = time.monotonic() - started

    assert elapsed < 20
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*simple_python_0: server error: *timed out*"])
