"""Oracle parity: the plugin's per-subset accuracy equals bfcl-eval's own
checker on the same replies, for all 13 single-turn subsets."""

from __future__ import annotations

import pytest

from pytest_modeleval.suites.bfcl_v3.data import FILE_STEMS
from tests.bfcl_oracle import build_oracle, expected_accuracy, tamper_every
from tests.plugin_helpers import add_bfcl_module, load_results, run_args, subset_scores
from tests.scripted_server import ScriptedServer

TOTAL_SAMPLES = 3641


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
    tamper = tamper_every()
    oracle = build_oracle(mode, tamper=tamper, limit=limit)  # type: ignore[arg-type]
    expected = expected_accuracy(oracle, mode, limit=limit)  # type: ignore[arg-type]
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
    result.stdout.fnmatch_lines(["|*Model*|*Dataset*|*Metric*|*Subset*|*Num*|*Score*|*Cat.0*|"])


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
