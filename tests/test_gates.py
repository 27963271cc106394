"""Gates end to end: a baseline run, then a rerun compared with it, against a scripted server.

The benchmark is a user's JSONL file of 400 questions in one subset, so each
run is cheap. The scripted model answers every question but those named in
the test, which lets a rerun be worse on exactly the chosen samples.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_modeleval.__main__ import main
from tests.plugin_helpers import load_results, run_args
from tests.scripted_server import Reply, ScriptedServer

SAMPLES = 400
# Questions the baseline model already gets wrong; every run below keeps them wrong.
BASELINE_WRONG = frozenset(range(390, 400))
API_KEY = "sk-test-gates-7f3a9c21e5"

TEST_MODULE = '''
import pytest

@pytest.mark.modeleval_data("quiz.jsonl", subset="subset", id="id", prompt="question")
def test_quiz(sample, model):
    assert sample["answer"] in model.chat(sample["question"]).text
'''


def write_quiz(pytester: pytest.Pytester) -> None:
    rows = [{"id": f"q{index:03d}", "subset": "all", "question": f"What is {index} + 0?",
             "answer": f"={index}="} for index in range(SAMPLES)]
    text = "\n".join(json.dumps(row) for row in rows) + "\n"
    (pytester.path / "quiz.jsonl").write_text(text, encoding="utf-8")
    pytester.makepyfile(test_quiz=TEST_MODULE)


def quiz_model(wrong: frozenset[int]) -> Callable[[dict[str, Any], int], Reply]:
    def reply(body: dict[str, Any], attempt: int) -> Reply:
        index = int(body["messages"][-1]["content"].split()[2])
        return Reply(content="no idea" if index in wrong else f"={index}=")

    return reply


def run_quiz(pytester: pytest.Pytester, report_dir: Path, wrong: frozenset[int],
             *extra: str) -> pytest.RunResult:
    with ScriptedServer(quiz_model(wrong)) as server:
        # --no-cache: the baseline and the rerun send the same requests.
        return pytester.runpytest(*run_args(server.url, report_dir, "-p", "no:xdist",
                                            "--no-cache", "-q", *extra))


@pytest.fixture
def baseline(pytester: pytest.Pytester) -> Path:
    """Run the baseline model once and return its results.json."""
    write_quiz(pytester)
    report_dir = pytester.path / "baseline-report"
    run_quiz(pytester, report_dir, BASELINE_WRONG)
    return report_dir / "results.json"


def gate_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "gate " in line]


def test_identical_rerun_passes(pytester: pytest.Pytester, baseline: Path) -> None:
    report_dir = pytester.path / "report"
    result = run_quiz(pytester, report_dir, BASELINE_WRONG, f"--baseline={baseline}",
                      "--max-regression", "0.02")
    assert result.ret == 0
    document = load_results(report_dir)
    (row,) = document["baseline"]["subsets"]
    assert (row["pairs"], row["delta"], row["to_wrong"], row["to_correct"]) == (400, 0, 0, 0)
    assert row["test"] == "mcnemar"
    assert row["p_value"] == 1.0
    assert document["baseline"]["flips"] == []
    assert document["baseline"]["warnings"] == []
    assert [gate["kind"] for gate in document["gates"]] == ["regression", "error_rate"]
    assert all(gate["passed"] for gate in document["gates"])


def test_worse_on_30_fails(pytester: pytest.Pytester, baseline: Path) -> None:
    report_dir = pytester.path / "report"
    result = run_quiz(pytester, report_dir, BASELINE_WRONG | frozenset(range(30)),
                      f"--baseline={baseline}", "--max-regression", "0.02")
    print("\n".join(gate_lines(result)))
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "regression gate failed: quiz/all dropped by 0.0750 (0.9750 -> 0.9000 over 400 pairs, "
        "30 correct->wrong, 0 wrong->correct), more than the allowed 0.02, significant "
        "(McNemar p=1.9e-09 < alpha 0.05)",
    ])
    document = load_results(report_dir)
    gate = document["gates"][0]
    assert (gate["kind"], gate["name"], gate["passed"], gate["noise"]) == (
        "regression", "quiz/all", False, False)
    assert gate["value"] == pytest.approx(-0.075)
    assert gate["bound"] == -0.02
    flips = document["baseline"]["flips"]
    assert len(flips) == 30
    assert flips[0] == {"benchmark": "quiz", "subset": "all", "sample_id": "q000", "repeat": 0,
                        "from": "correct", "to": "wrong", "baseline_reply": "=0=",
                        "current_reply": "no idea"}


@pytest.mark.parametrize("allowed", ["0.02", "0"])
def test_worse_on_2_not_significant(pytester: pytest.Pytester, baseline: Path,
                                    allowed: str) -> None:
    report_dir = pytester.path / "report"
    result = run_quiz(pytester, report_dir, BASELINE_WRONG | {0, 1}, f"--baseline={baseline}",
                      "--max-regression", allowed)
    print("\n".join(gate_lines(result)))
    assert result.ret == 0
    limit = "within the allowed 0.02" if allowed == "0.02" else "more than the allowed 0"
    result.stdout.fnmatch_lines([
        f"regression gate passed: quiz/all dropped by 0.0050 (0.9750 -> 0.9700 over 400 "
        f"pairs, 2 correct->wrong, 0 wrong->correct), {limit}, not significant "
        "(McNemar p=0.5 >= alpha 0.05)*",
    ])
    document = load_results(report_dir)
    gate = document["gates"][0]
    assert gate["noise"] is (allowed == "0")
    assert gate["bound"] == -float(allowed)
    if allowed == "0":
        assert gate["message"].endswith("; within noise: the bound 0 is inside the 95 % "
                                        "interval of the delta [-0.0119, 0.0019]")
    row = document["baseline"]["subsets"][0]
    assert row["p_value"] == 0.5
    assert row["ci"][0] < -0.005 < row["ci"][1]


def test_threshold_inside_interval_flagged(pytester: pytest.Pytester) -> None:
    write_quiz(pytester)
    report_dir = pytester.path / "report"
    result = run_quiz(pytester, report_dir, BASELINE_WRONG, "--threshold", "quiz/all>=0.97",
                      "--threshold", "quiz/all>=0.9")
    print("\n".join(gate_lines(result)))
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "threshold passed: quiz/all>=0.97 (measured 0.9750); margin 0.0050; within noise: "
        "the bound is inside the 95 % interval [0.9546, 0.9864]",
        "threshold passed: quiz/all>=0.9 (measured 0.9750); margin 0.0750",
        "error-rate gate passed: 0 of 400 samples (0.0000) ended in a server error, allowed 0",
    ])
    document = load_results(report_dir)
    assert [gate["noise"] for gate in document["gates"]] == [True, False, False]
    (row,) = document["subsets"]
    assert row["ci"] == pytest.approx([0.9546, 0.9864], abs=1e-4)
    assert row["stderr"] == pytest.approx((0.975 * 0.025 / 399) ** 0.5)


def test_report_command_reevaluates_gates(pytester: pytest.Pytester, baseline: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    current_dir = pytester.path / "report"
    run_quiz(pytester, current_dir, BASELINE_WRONG | frozenset(range(30)))
    rendered = pytester.path / "rendered"
    status = main(["report", str(current_dir / "results.json"), f"--baseline={baseline}",
                   "--max-regression", "0.02", "--report-dir", str(rendered)])
    assert status == 1
    assert "regression gate failed: quiz/all dropped by 0.0750" in capsys.readouterr().out
    document = load_results(rendered)
    assert document["baseline"]["path"] == str(baseline)
    assert [gate["passed"] for gate in document["gates"]] == [False, True]
    assert main(["report", str(current_dir / "results.json"), "--report-dir",
                 str(rendered)]) == 0


def test_report_command_rejects_bad_baseline(pytester: pytest.Pytester, baseline: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    missing = pytester.path / "missing.json"
    status = main(["report", str(baseline), "--baseline", str(missing),
                   "--report-dir", str(pytester.path / "out")])
    assert status == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --baseline {missing}: file not found; pass the results.json of an "
        "earlier run")


def test_bad_baseline_is_usage_error(pytester: pytest.Pytester) -> None:
    write_quiz(pytester)
    (pytester.path / "notes.json").write_text("[1, 2]", encoding="utf-8")
    result = run_quiz(pytester, pytester.path / "report", frozenset(), "--baseline=notes.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--baseline notes.json is not a pytest-modeleval "
                                 "results.json (no samples list)*"])


def test_max_regression_needs_baseline(pytester: pytest.Pytester) -> None:
    write_quiz(pytester)
    result = run_quiz(pytester, pytester.path / "report", frozenset(), "--max-regression",
                      "0.02")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--max-regression 0.02 compares with a baseline: pass "
                                 "--baseline FILE*"])


def test_errors_fail_gated_run(pytester: pytest.Pytester) -> None:
    write_quiz(pytester)
    report_dir = pytester.path / "report"

    def flaky(body: dict[str, Any], attempt: int) -> Any:
        from tests.scripted_server import Fail

        index = int(body["messages"][-1]["content"].split()[2])
        return Fail(400) if index < 3 else quiz_model(frozenset())(body, attempt)

    with ScriptedServer(flaky) as server:
        args = run_args(server.url, report_dir, "-p", "no:xdist", "--no-cache", "-q")
        result = pytester.runpytest(*args, "--threshold", "quiz/all>=0.5")
        tolerant = pytester.runpytest(*args, "--max-error-rate", "0.01")
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "threshold passed: quiz/all>=0.5 (measured 1.0000); margin 0.5000",
        "error-rate gate failed: 3 of 400 samples (0.0075) ended in a server error, more "
        "than the allowed 0; fix the server or raise --max-error-rate",
    ])
    assert tolerant.ret == 0
    assert [gate["kind"] for gate in load_results(report_dir)["gates"]] == ["error_rate"]


def test_ini_gates_and_settings_warning(pytester: pytest.Pytester, baseline: Path) -> None:
    pytester.makeini(f"""
        [pytest]
        modeleval_baseline = {baseline}
        modeleval_max_regression = 0.02
        modeleval_alpha = 0.01
        modeleval_threshold =
            quiz/all>=0.5
    """)
    report_dir = pytester.path / "report"
    result = run_quiz(pytester, report_dir, BASELINE_WRONG, "--gen", "temperature=0.5")
    assert result.ret == 0
    document = load_results(report_dir)
    assert [gate["kind"] for gate in document["gates"]] == ["threshold", "regression",
                                                            "error_rate"]
    assert document["config"]["alpha"] == 0.01
    assert document["baseline"]["warnings"] == [
        "setting gen differs: {} in the baseline, {'temperature': 0.5} in this run"]
    result.stdout.fnmatch_lines(["warning: baseline: setting gen differs*"])


def test_key_absent_from_reports_and_junit(pytester: pytest.Pytester, baseline: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    report_dir = pytester.path / "report"
    junit = pytester.path / "junit.xml"
    result = run_quiz(pytester, report_dir, BASELINE_WRONG | {0}, f"--baseline={baseline}",
                      "--max-regression", "0.02", f"--junitxml={junit}")
    assert result.ret == 0
    written = [*report_dir.iterdir(), junit]
    assert len(written) == 4
    for path in written:
        assert API_KEY not in path.read_text(encoding="utf-8"), path.name
    xml = junit.read_text(encoding="utf-8")
    assert '<property name="subset" value="all" />' in xml
    assert '<property name="score" value="0.0" />' in xml
    assert "modeleval_record" not in xml


def test_junit_properties_with_xdist(pytester: pytest.Pytester) -> None:
    write_quiz(pytester)
    junit = pytester.path / "junit.xml"
    report_dir = pytester.path / "report"
    with ScriptedServer(quiz_model(frozenset({5}))) as server:
        result = pytester.runpytest(*run_args(server.url, report_dir, "-n", "2", "--limit",
                                              "20", "--no-cache", f"--junitxml={junit}"))
    assert result.ret == 1
    xml = junit.read_text(encoding="utf-8")
    assert xml.count('<property name="subset" value="all" />') == 20
    assert xml.count('<property name="score" value="1.0" />') == 19
    assert "modeleval_record" not in xml
    assert len(load_results(report_dir)["samples"]) == 20


@pytest.mark.parametrize("samples", [[1, "x", None], [{"benchmark": "quiz"}],
                                     [{"benchmark": "quiz", "subset": "all", "sample_id": "q1",
                                       "outcome": "correct", "score": "high"}]])
def test_malformed_baseline_is_usage_error(pytester: pytest.Pytester, samples: list) -> None:
    write_quiz(pytester)
    (pytester.path / "bad.json").write_text(json.dumps({"samples": samples}), encoding="utf-8")
    result = run_quiz(pytester, pytester.path / "report", frozenset(), "--baseline=bad.json",
                      "--max-regression", "0.02")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--baseline bad.json: sample 0 *; pass the results.json of "
                                 "an earlier run, unedited*"])
    assert not (pytester.path / "report").exists()


def test_report_command_needs_baseline_for_regression(baseline: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    status = main(["report", str(baseline), "--max-regression", "0.02", "--report-dir",
                   str(tmp_path / "out")])
    assert status == 2
    assert "--max-regression needs a baseline" in capsys.readouterr().err


def test_report_command_refuses_interrupted_run(baseline: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    document = json.loads(baseline.read_text(encoding="utf-8"))
    document["interrupted"] = True
    partial = tmp_path / "results.json"
    partial.write_text(json.dumps(document), encoding="utf-8")
    assert main(["report", str(partial), "--report-dir", str(tmp_path / "out")]) == 2
    assert "is from an interrupted run" in capsys.readouterr().err
    assert main(["merge", str(partial), "--report-dir", str(tmp_path / "out")]) == 2


def test_base_url_credentials_kept_out_of_reports(pytester: pytest.Pytester) -> None:
    write_quiz(pytester)
    pytester.makepyfile(test_quiz=TEST_MODULE.replace(
        'assert sample["answer"] in model.chat(sample["question"]).text',
        'assert sample["answer"] == model'))
    report_dir = pytester.path / "report"
    with ScriptedServer(quiz_model(frozenset())) as server:
        plain_url = server.url
        url = plain_url.replace("http://", "http://bob:PASSW0RDxyz@") + "?token=QUERYSECRET"
        result = pytester.runpytest("-p", "no:cacheprovider", "--model", "m", "--base-url", url,
                                    f"--report-dir={report_dir}", "--no-cache", "-k", "q00",
                                    f"--junitxml={report_dir / 'junit.xml'}")
    assert result.parseoutcomes()["failed"] == 10
    output = result.stdout.str() + result.stderr.str()
    for secret in ("PASSW0RDxyz", "QUERYSECRET"):
        assert secret not in output
        for path in report_dir.iterdir():
            assert secret not in path.read_text(encoding="utf-8"), path
    assert load_results(report_dir)["config"]["base_url"] == plain_url


def test_misspelled_gate_key_fails_with_strict_config(pytester: pytest.Pytester) -> None:
    write_quiz(pytester)
    pytester.makeini("""
        [pytest]
        addopts = --strict-config
        modeleval_treshold = quiz/all>=0.99
    """)
    result = run_quiz(pytester, pytester.path / "report", frozenset())
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*Unknown config option: modeleval_treshold*"])
