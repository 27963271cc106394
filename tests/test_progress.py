"""The periodic progress line: rates and time left while items run; none under -q."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pytest_modeleval.progress import Progress
from tests.bfcl_oracle import build_oracle
from tests.plugin_helpers import add_bfcl_module, run_args
from tests.scripted_server import Reply, ScriptedServer

LINE = "modeleval: */24 items, * req/s, * tok/s, ETA *"


def test_progress_line_rates() -> None:
    progress = Progress(total=10, interval_s=5, started=100.0)
    for _ in range(4):
        progress.item_done()
        progress.add_record({"reply": {"cached": False}, "prompt_tokens": 90,
                             "completion_tokens": 10})
    progress.add_record({"reply": {"cached": True}, "prompt_tokens": 5})

    assert progress.line(now=102.0) is None  # before the first interval
    assert progress.line(now=108.0) == "modeleval: 4/10 items, 0.5 req/s, 51 tok/s, ETA 12 s"
    assert progress.line(now=109.0) is None


def test_progress_counts_conversation_steps() -> None:
    progress = Progress(total=1, interval_s=1, started=0.0)
    steps = [{"reply": {"cached": False}}, {"reply": {"cached": True}},
             {"reply": {"cached": False}}]

    progress.add_record({"transcript": [{"steps": steps[:2]}, {"steps": steps[2:]}]})

    assert progress.requests == 2


@pytest.mark.parametrize(("flags", "expected"), [([], True), (["-n", "2"], True),
                                                 (["-q"], False)], ids=["plain", "n2", "quiet"])
def test_progress_line_in_run(pytester: pytest.Pytester, flags: list[str],
                              expected: bool) -> None:
    oracle = build_oracle("fc", subsets=("simple", "multiple"), limit=12)

    def slow(body: dict[str, Any], attempt: int) -> Reply:
        return dataclasses.replace(oracle.script(body, attempt), delay=0.1)

    add_bfcl_module(pytester)
    with ScriptedServer(slow) as server:
        result = pytester.runpytest_subprocess(*run_args(
            server.url, pytester.path / "report", "-k", "[simple/ or [multiple/", "--limit",
            "12", "--concurrency", "2", "--progress-interval", "0.2", "--no-cache", *flags))

    lines = result.stdout.str()
    if expected:
        result.stdout.fnmatch_lines([LINE])
    else:
        assert "modeleval: " not in lines
