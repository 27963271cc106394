"""A user's own benchmark: a JSONL file and a plain test marked with modeleval_data."""

from __future__ import annotations

import json

import pytest

from tests.plugin_helpers import load_results, run_args
from tests.scripted_server import Fail, Reply, ScriptedServer

ROWS = [
    {"id": "fr", "continent": "Europe", "question": "Capital of France?", "answer": "Paris"},
    {"id": "de", "continent": "Europe", "question": "Capital of Germany?", "answer": "Berlin"},
    {"id": "jp", "continent": "Asia", "question": "Capital of Japan?", "answer": "Tokyo"},
    {"id": "cn", "continent": "Asia", "question": "Capital of China?", "answer": "Beijing"},
    {"id": "ke", "continent": "Africa", "question": "Capital of Kenya?", "answer": "Nairobi"},
]
# The scripted model gives every capital but Germany's and China's.
KNOWN = {"France": "Paris", "Japan": "Tokyo", "Kenya": "It is Nairobi."}

TEST_MODULE = '''
import pytest

@pytest.mark.modeleval_data("capitals.jsonl", subset="continent", id="id", {prompt})
def test_capitals(sample, model):
    assert sample["answer"] in model.chat(sample["question"]).text
'''


def capital_reply(body: dict, attempt: int) -> Reply | Fail:
    question = body["messages"][-1]["content"]
    if "Kenya" in question and attempt == 0:
        return Fail(503)  # retried once, then answered
    country = question.removeprefix("Capital of ").rstrip("?")
    return Reply(content=KNOWN.get(country, "I am not sure."))


def write_benchmark(pytester: pytest.Pytester, declared: bool = True) -> None:
    lines = "\n".join(json.dumps(row) for row in ROWS) + "\n"
    (pytester.path / "capitals.jsonl").write_text(lines, encoding="utf-8")
    prompt = 'prompt="question"' if declared else ""
    pytester.makepyfile(test_capitals=TEST_MODULE.format(prompt=prompt))


@pytest.mark.parametrize("xdist", [["-n", "2"], ["-n", "0"], ["-p", "no:xdist"]],
                         ids=["n2", "n0", "no-xdist"])
def test_user_benchmark_scores_and_reports(pytester: pytest.Pytester, xdist: list[str]) -> None:
    write_benchmark(pytester)
    report_dir = pytester.path / "report"
    with ScriptedServer(capital_reply) as server:
        result = pytester.runpytest(*run_args(server.url, report_dir, *xdist,
                                              "--threshold", "capitals/OVERALL>=0.6",
                                              "--threshold", "capitals/Asia>=0.6"))
        # Declared up front, each question is sent once (plus Kenya's retry).
        assert len(server.requests) == len(ROWS) + 1
    result.assert_outcomes(passed=3, failed=2)
    assert result.ret == 1  # capitals/Asia is 0.5
    document = load_results(report_dir)
    scores = {row["subset"]: row["score"] for row in document["subsets"]}
    assert scores == {"Europe": 0.5, "Asia": 0.5, "Africa": 1.0}
    overall = next(row for row in document["rollups"] if row["benchmark"] == "capitals")
    assert (overall["name"], overall["score"], overall["num"]) == ("OVERALL", 0.6, 5)
    assert document["versions"]["capitals_data"].startswith("capitals.jsonl sha256:")
    by_id = {s["sample_id"]: s for s in document["samples"]}
    assert by_id["ke"]["reply"]["content"] == "It is Nairobi."
    assert by_id["ke"]["request"]["messages"] == [{"role": "user",
                                                   "content": "Capital of Kenya?"}]
    assert by_id["de"]["outcome"] == "wrong"
    assert "AssertionError" in by_id["de"]["explanation"]
    assert [row["passed"] for row in document["thresholds"]] == [True, False]
    for name in ("report.md", "report.html"):
        text = (report_dir / name).read_text(encoding="utf-8")
        assert "capitals" in text
        assert "Africa" in text
    result.stdout.fnmatch_lines(["*| capitals | accuracy | Europe *|   2 | 0.5000 |*",
                                 "threshold failed: capitals/Asia>=0.6*"])


def test_request_sent_from_the_test_when_not_declared(pytester: pytest.Pytester) -> None:
    write_benchmark(pytester, declared=False)
    report_dir = pytester.path / "report"
    with ScriptedServer(capital_reply) as server:
        result = pytester.runpytest(*run_args(server.url, report_dir, "-k", "Europe"))
        assert len(server.requests) == 2
    result.assert_outcomes(passed=1, failed=1)


def test_server_error_is_error_not_wrong(pytester: pytest.Pytester) -> None:
    write_benchmark(pytester)
    report_dir = pytester.path / "report"
    with ScriptedServer(lambda body, attempt: Fail(400, "bad request")) as server:
        result = pytester.runpytest(*run_args(server.url, report_dir, "-k", "Asia"))
    result.assert_outcomes(errors=2)
    document = load_results(report_dir)
    assert {s["outcome"] for s in document["samples"]} == {"error"}
    assert document["totals"]["wrong"] == 0


def test_test_without_model_fixture_is_scored(pytester: pytest.Pytester) -> None:
    write_benchmark(pytester)
    pytester.makepyfile(test_capitals='''
import pytest

@pytest.mark.modeleval_data("capitals.jsonl", subset="continent")
def test_capitals(sample):
    assert sample["answer"] != "Berlin"
''')
    report_dir = pytester.path / "report"
    with ScriptedServer(capital_reply) as server:
        result = pytester.runpytest(*run_args(server.url, report_dir))
        assert server.requests == []
    result.assert_outcomes(passed=4, failed=1)
    scores = {row["subset"]: row["score"] for row in load_results(report_dir)["subsets"]}
    assert scores == {"Europe": 0.5, "Asia": 1.0, "Africa": 1.0}


def test_bad_marker_and_missing_field_are_one_line(pytester: pytest.Pytester) -> None:
    write_benchmark(pytester)
    pytester.makepyfile(test_bad='''
import pytest

@pytest.mark.modeleval_data("capitals.jsonl", subset="region")
def test_regions(sample, model):
    pass
''')
    result = pytester.runpytest("--model", "m", "--base-url", "http://127.0.0.1:9/v1",
                                "test_bad.py")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*capitals.jsonl: row 0 has no field 'region'; fields: id, "
                                 "continent, question, answer; fix the modeleval_data marker*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(("marker", "message"), [
    ('"capitals.jsonl", prompt="query"', "*row 0 has no field 'query'*"),
    ('"capitals.jsonl", name="bfcl_v3"', "*invalid benchmark name 'bfcl_v3'*"),
    ('"capitals.jsonl", name="a/b"', "*invalid benchmark name 'a/b'*"),
    ('"capitals.jsonl", subset="continent", id="continent"',
     "*row 1 repeats id 'Europe' of subset 'Europe'; give each row its own id*"),
    ('"missing.jsonl"', "*@pytest.mark.modeleval_data file *missing.jsonl: no such file*"),
])
def test_bad_marker_is_one_line(pytester: pytest.Pytester, marker: str, message: str) -> None:
    write_benchmark(pytester)
    pytester.makepyfile(test_capitals=f'''
import pytest

@pytest.mark.modeleval_data({marker})
def test_capitals(sample, model):
    pass
''')
    result = pytester.runpytest("--model", "m", "--base-url", "http://127.0.0.1:9/v1")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([message])
    assert "During handling" not in result.stdout.str()


def test_broken_test_is_error_not_wrong(pytester: pytest.Pytester) -> None:
    write_benchmark(pytester)
    pytester.makepyfile(test_capitals='''
import pytest

@pytest.mark.modeleval_data("capitals.jsonl", subset="continent", id="id")
def test_capitals(sample, model):
    assert sample["nope"]
''')
    report_dir = pytester.path / "report"
    with ScriptedServer(capital_reply) as server:
        result = pytester.runpytest(*run_args(server.url, report_dir, "-k", "Asia"))
    result.assert_outcomes(failed=2)
    records = load_results(report_dir)["samples"]
    assert {r["outcome"] for r in records} == {"error"}
    assert records[0]["explanation"] == "KeyError: 'nope'"


def test_interrupted_run_is_marked(pytester: pytest.Pytester) -> None:
    write_benchmark(pytester)
    pytester.makepyfile(test_capitals='''
import pytest

@pytest.mark.modeleval_data("capitals.jsonl", subset="continent", id="id")
def test_capitals(sample, model):
    if sample["id"] == "jp":
        raise KeyboardInterrupt
    assert sample["answer"] in model.chat(sample["question"]).text
''')
    report_dir = pytester.path / "report"
    with ScriptedServer(capital_reply) as server:
        # In a subprocess: in process, the interrupt would stop this test session too.
        result = pytester.runpytest_subprocess(*run_args(server.url, report_dir, "-p",
                                                         "no:xdist"))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    document = load_results(report_dir)
    assert document["interrupted"] is True
    assert len(document["samples"]) == 2
    assert "This run was interrupted" in (report_dir / "report.md").read_text(encoding="utf-8")
    assert "This run was interrupted" in (report_dir / "report.html").read_text(encoding="utf-8")


def test_threshold_on_misspelled_target_lists_valid_ones(pytester: pytest.Pytester) -> None:
    write_benchmark(pytester)
    report_dir = pytester.path / "report"
    with ScriptedServer(capital_reply) as server:
        result = pytester.runpytest(*run_args(server.url, report_dir,
                                              "--threshold", "capitals/OVERAL>=0.5"))
    assert result.ret == 1
    result.stdout.fnmatch_lines(["threshold failed: capitals/OVERAL>=0.5 (capitals/OVERAL not "
                                 "measured: capitals has no subset or roll-up 'OVERAL'; valid: "
                                 "Africa, Asia, Europe, OVERALL)*"])
