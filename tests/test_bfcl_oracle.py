"""Oracle parity: the plugin's per-subset accuracy equals bfcl-eval's own
checkers on the same replies, for all 17 BFCL v3 subsets."""

from __future__ import annotations

import pytest

from pytest_modeleval.suites.bfcl_v3.data import FILE_STEMS
from tests import bfcl_multi_turn_oracle as multi_turn
from tests.bfcl_oracle import build_full_oracle, build_oracle
from tests.plugin_helpers import add_bfcl_module, load_results, run_args, subset_scores
from tests.scripted_server import ScriptedServer

TOTAL_SAMPLES = 4441


@pytest.mark.parametrize(
    ("mode", "xdist", "limit"),
    [
        ("fc", [], None),
        ("prompt", [], None),
        ("fc", ["-n", "2"], None),
        ("prompt", ["-n", "2"], 30),
        ("fc", ["-n", "0"], 30),
        ("fc", ["-p", "no:xdist"], 30),
    ],
    ids=["fc", "prompt", "fc-n2", "prompt-n2", "fc-n0", "fc-no-xdist"],
)
def test_oracle_parity(pytester: pytest.Pytester, mode: str, xdist: list[str],
                       limit: int | None) -> None:
    oracle, expected = build_full_oracle(mode, limit=limit)  # type: ignore[arg-type]
    add_bfcl_module(pytester)
    report_dir = pytester.path / "report"
    extra = ["--bfcl-mode", mode, "--concurrency", "32", *xdist]
    if limit:
        extra += ["--limit", str(limit)]

    with ScriptedServer(oracle.script) as server:
        result = pytester.runpytest(*run_args(server.url, report_dir, *extra))

    document = load_results(report_dir)
    assert subset_scores(document) == expected
    assert set(expected) == set(FILE_STEMS)
    totals = document["totals"]
    assert totals["errors"] == 0
    if limit is None:
        assert totals["samples"] == TOTAL_SAMPLES
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == totals["wrong"]
    assert outcomes["passed"] == totals["correct"]
    assert totals["wrong"] > len(FILE_STEMS)  # tampered ids really failed
    # Multi-turn verdicts agree sample by sample, and most altered samples fail.
    outcome = {s["sample_id"]: s["outcome"] == "correct" for s in document["samples"]}
    assert {i: outcome[i] for i in oracle.multi.verdicts} == oracle.multi.verdicts
    altered = [i for i in multi_turn.wrong_every() if i in outcome]
    assert sum(not outcome[i] for i in altered) >= 0.75 * len(altered)
    rollups = {r["name"]: r for r in document["rollups"]}
    assert not rollups["OVERALL"]["partial"]
    assert not rollups["MULTI_TURN"]["partial"]
    assert 0.5 < rollups["OVERALL"]["score"] < 1
    result.stdout.fnmatch_lines(["|*Model*|*Dataset*|*Metric*|*Subset*|*Num*|*Score*|*Cat.0*|",
                                 "*| OVERALL *"])


def test_wrong_sample_explained(pytester: pytest.Pytester) -> None:
    oracle = build_oracle("fc", subsets=("simple",), tamper={"simple_python_1": "wrong"},
                          limit=3)
    add_bfcl_module(pytester)
    report_dir = pytester.path / "report"
    with ScriptedServer(oracle.script) as server:
        result = pytester.runpytest(*run_args(server.url, report_dir, "-k", "simple_python",
                                              "--limit", "3"))
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*bfcl_v3/simple simple_python_1: wrong: *math.factorial*__definitely_wrong__*",
    ])
    assert "Traceback" not in result.stdout.str()
    assert "def test_bfcl_v3" not in result.stdout.str()


def test_multi_turn_failure_names_turn(pytester: pytest.Pytester) -> None:
    oracle = multi_turn.build_multi_turn_oracle(
        "fc", subsets=("multi_turn_base",), wrong=frozenset({"multi_turn_base_1"}), limit=3)
    add_bfcl_module(pytester)
    report_dir = pytester.path / "report"
    with ScriptedServer(oracle.script) as server:
        result = pytester.runpytest(*run_args(server.url, report_dir, "-k", "multi_turn_base",
                                              "--limit", "3"))

    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*bfcl_v3/multi_turn_base multi_turn_base_1: wrong: turn 3: *Missing results: *",
    ])
    record = next(s for s in load_results(report_dir)["samples"]
                  if s["sample_id"] == "multi_turn_base_1")
    transcript = record["transcript"]
    assert len(transcript) == 4
    first_step = transcript[0]["steps"][0]
    assert first_step["calls"] == ["ls(a=True)"]
    request = record["request"]
    assert request["messages"][0]["content"] == transcript[0]["query"][0]["content"]
    assert "ls" in request["tools"]
    assert "cd" in request["tools"]
    assert first_step["results"][0].startswith('{"current_directory_content": ')
    assert transcript[0]["steps"][-1]["reply"]["content"] == multi_turn.END_OF_TURN
    assert record["prompt_tokens"] == sum(step["prompt_tokens"] for turn in transcript
                                          for step in turn["steps"])
