"""A crashed xdist worker: its item fails as crashed and the rest of the run goes on."""

from __future__ import annotations

import pytest

from tests.bfcl_oracle import build_oracle
from tests.plugin_helpers import add_bfcl_module, load_results, run_args
from tests.scripted_server import ScriptedServer

CRASHING_MODULE = """
import os
import signal


def test_crash_first_worker():
    if os.environ.get("PYTEST_XDIST_WORKER") == "gw0":
        os.kill(os.getpid(), signal.SIGKILL)
"""


def test_worker_crash_run_continues(pytester: pytest.Pytester) -> None:
    oracle = build_oracle("fc", subsets=("simple", "multiple"), limit=4)
    add_bfcl_module(pytester)
    # Collected first, so the partition gives it to gw0 before any sample.
    pytester.makepyfile(test_a_crash=CRASHING_MODULE)
    report_dir = pytester.path / "report"

    with ScriptedServer(oracle.script) as server:
        result = pytester.runpytest_subprocess(*run_args(
            server.url, report_dir, "-n", "2", "-k", "crash or [simple/ or [multiple/",
            "--limit", "4"))

    output = result.stdout.str()
    assert "INTERNALERROR" not in output
    assert "worker 'gw0' crashed while running" in output
    result.assert_outcomes(passed=8, failed=1)
    document = load_results(report_dir)
    assert document["totals"]["samples"] == 8
    assert document["totals"]["errors"] == 0
