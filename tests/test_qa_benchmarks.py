"""SimpleQA, Chinese SimpleQA and AIME 2025 end to end, on the real data files,
against a scripted model and judge."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from pytest_modeleval.options import GenerationSettings, RunConfig
from pytest_modeleval.suites import get_suite
from tests.plugin_helpers import load_results, run_args
from tests.qa_oracle import DATA_DIR, JUDGE_MODEL, QaOracle, data_path, dataset_args
from tests.scripted_server import ScriptedServer

pytestmark = pytest.mark.skipif(not DATA_DIR.is_dir(),
                                reason=f"benchmark data folder {DATA_DIR} is absent")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
QA_BENCHMARKS = ("simple_qa", "chinese_simpleqa", "aime25")
CHINESE_CATEGORIES = {"人文与社会科学": 609, "生活、艺术与文化": 601, "自然与自然科学": 530,
                      "工程、技术与应用科学": 481, "社会": 453, "中华文化": 326}
SIMPLE_QA_TOPICS = {"Science and technology": 858, "Politics": 709, "Art": 550, "Other": 475,
                    "Geography": 424, "Sports": 368, "Music": 341, "TV shows": 293,
                    "History": 173, "Video games": 135}


def add_modules(pytester: pytest.Pytester, *names: str) -> None:
    for name in names:
        source = (BENCHMARKS / f"test_{name}.py").read_text(encoding="utf-8")
        pytester.makepyfile(**{f"test_{name}": source})


def qa_args(url: str, report_dir: Path, *extra: str) -> list[str]:
    return run_args(url, report_dir, "--judge-model", JUDGE_MODEL, *dataset_args(),
                    "--concurrency", "16", *extra)


def config(**changes: object) -> RunConfig:
    base = RunConfig(model="m", base_url="http://127.0.0.1:9/v1", api_key_env="UNSET",
                     concurrency=1, max_retries=0, limit=None, gen=GenerationSettings(),
                     stream=False, bfcl_mode="fc", bfcl_underscore_to_dot=True,
                     thresholds=(), report_dir="r",
                     datasets=tuple((name, str(data_path(name))) for name in QA_BENCHMARKS))
    return RunConfig(**{**base.__dict__, **changes})


def rows(document: dict, benchmark: str, metric: str) -> dict[str, float]:
    return {row["subset"]: row["score"] for row in document["subsets"]
            if row["benchmark"] == benchmark and row["metric"] == metric}


def test_whole_data_loads_with_subset_counts() -> None:
    counts = {}
    for name in QA_BENCHMARKS:
        loaded = get_suite(name).load(config())
        counts[name] = Counter(sample.subset for sample in loaded.samples)
        assert loaded.versions[f"{name}_data"].startswith(f"{data_path(name).name} sha256:")
    assert counts["simple_qa"] == SIMPLE_QA_TOPICS
    assert counts["chinese_simpleqa"] == CHINESE_CATEGORIES
    assert counts["aime25"] == {"AIME2025-I": 15, "AIME2025-II": 15}
    aime = get_suite("aime25").load(config()).samples
    assert [s.sample_id for s in aime[:15]] == [str(i) for i in range(15)]
    assert aime[0].data.answer == "70"
    simple = get_suite("simple_qa").load(config()).samples
    assert all(s.data.answer == s.data.answer.strip() for s in simple)


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["no-xdist", "n2"])
def test_gold_answers_and_correct_judge_score_one(pytester: pytest.Pytester,
                                                   xdist: list[str]) -> None:
    add_modules(pytester, *QA_BENCHMARKS)
    report_dir = pytester.path / "report"
    with ScriptedServer(QaOracle().script) as server:
        result = pytester.runpytest(*qa_args(server.url, report_dir, "--limit", "4", *xdist))
    document = load_results(report_dir)
    for name in ("simple_qa", "chinese_simpleqa"):
        scores = rows(document, name, "is_correct")
        assert set(scores.values()) == {1.0}
        assert len(scores) == len(get_suite(name).subsets)
        assert set(rows(document, name, "f1").values()) == {1.0}
    assert rows(document, "aime25", "AveragePass@1") == {"AIME2025-I": 1.0, "AIME2025-II": 1.0}
    total = 4 * (10 + 6 + 2)
    result.assert_outcomes(passed=total)
    aime_first = next(s for s in document["samples"]
                      if s["benchmark"] == "aime25" and s["sample_id"] == "0")
    prompt = aime_first["request"]["messages"][0]["content"]
    assert prompt.startswith("Find the sum of all integer bases")
    assert "\\boxed{}" in prompt
    versions = document["versions"]
    assert versions["aime25_data"].startswith("aime25.jsonl sha256:b4e273c0")
    assert versions["simple_qa_data"].startswith("simple_qa.csv sha256:feee3f7e")
    assert "math_verify" in versions
    result.stdout.fnmatch_lines(["*| chinese_simpleqa | is_correct *| 工程、技术与应用科学 *|*"])
    _assert_table_aligned(result.stdout.lines)


def _assert_table_aligned(lines: list[str]) -> None:
    from pytest_modeleval.report.table import display_width

    table = [line for line in lines if line.startswith(("|", "+"))]
    assert table
    assert len({display_width(line) for line in table}) == 1


def test_not_attempted_judge(pytester: pytest.Pytester) -> None:
    add_modules(pytester, "simple_qa", "chinese_simpleqa")
    report_dir = pytester.path / "report"
    oracle = QaOracle(judge_text="The model did not answer.\nNOT_ATTEMPTED")
    with ScriptedServer(oracle.script) as server:
        result = pytester.runpytest(*qa_args(server.url, report_dir, "--limit", "2"))
    document = load_results(report_dir)
    for name in ("simple_qa", "chinese_simpleqa"):
        assert set(rows(document, name, "is_not_attempted").values()) == {1.0}
        assert set(rows(document, name, "is_correct").values()) == {0.0}
        assert set(rows(document, name, "accuracy_given_attempted").values()) == {None}
    result.assert_outcomes(failed=2 * 16)


def test_unreadable_judge_is_unscored_not_wrong(pytester: pytest.Pytester) -> None:
    add_modules(pytester, "simple_qa")
    report_dir = pytester.path / "report"
    oracle = QaOracle(judge_text="Hmm, hard to say; maybe.")
    with ScriptedServer(oracle.script) as server:
        result = pytester.runpytest(*qa_args(server.url, report_dir, "--limit", "1", "-rs"))
    document = load_results(report_dir)
    totals = document["totals"]
    assert (totals["unscored"], totals["wrong"], totals["correct"]) == (10, 0, 0)
    assert all(s["details"]["judge"] == "Hmm, hard to say; maybe." for s in document["samples"])
    assert set(rows(document, "simple_qa", "is_correct").values()) == {None}
    assert {row["unscored"] for row in document["subsets"]} == {1}
    result.assert_outcomes(skipped=10)
    result.stdout.fnmatch_lines(["*unscored: the judge's reply has no readable grade*"])
    assert "Hmm, hard to say; maybe." in (report_dir / "report.html").read_text(encoding="utf-8")


def test_judge_template_and_dataset_from_ini(pytester: pytest.Pytester) -> None:
    add_modules(pytester, "chinese_simpleqa")
    template = pytester.path / "judge.j2"
    template.write_text("Q={{ question }}|G={{ gold_answer }}|P={{ predicted_answer }}",
                        encoding="utf-8")
    pytester.makeini(f"""
        [pytest]
        modeleval_dataset = chinese_simpleqa={data_path("chinese_simpleqa")}
        modeleval_judge_template = chinese_simpleqa={template}
        modeleval_judge_model = {JUDGE_MODEL}
    """)
    report_dir = pytester.path / "report"
    with ScriptedServer(QaOracle().script) as server:
        result = pytester.runpytest(*run_args(server.url, report_dir, "--limit", "1",
                                              "-k", "chinese_culture"))
        judge = [body for body in server.requests if body["model"] == JUDGE_MODEL]
    result.assert_outcomes(passed=1)
    prompt = judge[0]["messages"][-1]["content"]
    assert prompt == "Q=伏兔穴所属的经脉是什么？|G=足阳明胃经|P=足阳明胃经"
    assert judge[0].get("temperature") == 0


def test_judge_needed_skips_with_option_named(pytester: pytest.Pytester) -> None:
    add_modules(pytester, "simple_qa")
    with ScriptedServer(QaOracle().script) as server:
        result = pytester.runpytest(*run_args(server.url, pytester.path / "r", "-rs"))
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*simple_qa is graded by a judge model: pass --judge-model*"])


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["no-xdist", "n2"])
def test_aime_repeats_give_exact_pass_at_k(pytester: pytest.Pytester, xdist: list[str]) -> None:
    # Problem 0 right in 1 of 4 repeats, problem 1 in 3 of 4, problem 2 in 0 of 4.
    gold = QaOracle().gold
    problems = [p for p in gold if p.startswith(("Find the sum of all integer bases",
                                                 "In $\\triangle ABC$ points $D$",
                                                 "The $9$ members"))]
    assert len(problems) == 3
    correct = dict(zip(sorted(problems, key=lambda p: p[:20]), (0, 1, 3)))
    oracle = QaOracle(correct_repeats={p[:40]: c for p, c in correct.items()})
    expected = sorted(correct.values())
    add_modules(pytester, "aime25")
    report_dir = pytester.path / "report"
    with ScriptedServer(oracle.script) as server:
        result = pytester.runpytest(*qa_args(server.url, report_dir, "-k", "AIME2025-I/",
                                             "--limit", "3", "--repeats", "4", *xdist))
    document = load_results(report_dir)
    metrics = {r["metric"]: r["score"] for r in document["subsets"]
               if r["subset"] == "AIME2025-I"}
    counts = [c for c in expected]
    assert metrics["AveragePass@1"] == pytest.approx(sum(c / 4 for c in counts) / 3)
    pass2 = [1 - (0 if 4 - c < 2 else _comb(4 - c, 2)) / _comb(4, 2) for c in counts]
    assert metrics["pass@2"] == pytest.approx(sum(pass2) / 3)
    assert metrics["pass@4"] == pytest.approx(2 / 3)
    assert metrics["maj@4"] == pytest.approx(1 / 3)
    result.assert_outcomes(passed=sum(counts), failed=12 - sum(counts))


def _comb(n: int, k: int) -> int:
    from math import comb

    return comb(n, k)


@pytest.mark.parametrize("reply", [r"\boxed{70}", r"\boxed{070}",
                                   r"the answer is $\boxed{70}$.", r"<think>69?</think>\boxed{70}"])
def test_aime_answer_forms(pytester: pytest.Pytester, reply: str) -> None:
    oracle = QaOracle(answer=lambda question, gold, attempt: reply if gold == "70" else "0")
    add_modules(pytester, "aime25")
    report_dir = pytester.path / "report"
    with ScriptedServer(oracle.script) as server:
        result = pytester.runpytest(*qa_args(server.url, report_dir, "--limit", "2"))
    result.assert_outcomes(passed=1, failed=3)
    document = load_results(report_dir)
    first = next(s for s in document["samples"] if s["sample_id"] == "0")
    assert (first["outcome"], first["details"]["extracted"]) == ("correct", "70")


def test_dataset_missing_file_is_one_line(pytester: pytest.Pytester) -> None:
    add_modules(pytester, "aime25")
    with ScriptedServer(QaOracle().script) as server:
        result = pytester.runpytest(*run_args(server.url, pytester.path / "r",
                                              "--dataset", "aime25=nowhere.jsonl"))
    result.stdout.fnmatch_lines(["*--dataset aime25=nowhere.jsonl: no such file or folder; "
                                 "give an existing path*"])
    assert "Traceback" not in result.stdout.str()
    assert "During handling" not in result.stdout.str()


def test_hub_unreachable_names_dataset_option(pytester: pytest.Pytester) -> None:
    add_modules(pytester, "aime25")
    with ScriptedServer(QaOracle().script) as server:
        result = pytester.runpytest(*run_args(server.url, pytester.path / "r"))
    result.stdout.fnmatch_lines(["*cannot load aime25 from the hub id math-ai/aime25 *"
                                 "pass --dataset aime25=PATH*"])


def test_k_on_another_benchmark_loads_no_data(pytester: pytest.Pytester) -> None:
    # With the hub offline, loading AIME would fail; -k bfcl must not try.
    add_modules(pytester, "aime25", "simple_qa")
    pytester.makepyfile(test_other="def test_bfcl_like():\n    pass\n")
    with ScriptedServer(QaOracle().script) as server:
        result = pytester.runpytest(*run_args(server.url, pytester.path / "r", "-k", "bfcl",
                                              "--judge-model", JUDGE_MODEL))
    result.assert_outcomes(passed=1)


def test_unknown_dataset_benchmark_is_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--model", "m", "--base-url", "http://127.0.0.1:9/v1",
                                "--dataset", "aime24=x.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown benchmark 'aime24'; valid: bfcl_v3, simple_qa,*"])


def test_aime_exam_follows_id_not_position(tmp_path: Path) -> None:
    lines = data_path("aime25").read_text(encoding="utf-8").splitlines()
    second_exam = tmp_path / "aime_II.jsonl"
    second_exam.write_text("\n".join(lines[15:]) + "\n", encoding="utf-8")
    loaded = get_suite("aime25").load(config(datasets=(("aime25", str(second_exam)),)))
    assert {sample.subset for sample in loaded.samples} == {"AIME2025-II"}


def test_csv_with_byte_order_mark_loads(tmp_path: Path) -> None:
    text = data_path("simple_qa").read_text(encoding="utf-8")
    with_bom = tmp_path / "simple_qa.csv"
    with_bom.write_text("\ufeff" + text[:20_000].rsplit("\n", 1)[0] + "\n", encoding="utf-8")
    loaded = get_suite("simple_qa").load(config(datasets=(("simple_qa", str(with_bom)),)))
    assert loaded.samples[0].data.answer == "Michio Sugeno"


def test_missing_answer_field_names_row(tmp_path: Path) -> None:
    broken = tmp_path / "aime.jsonl"
    broken.write_text('{"id": "0", "problem": "1+1?"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"aime.jsonl, id 0: missing field 'answer'"):
        get_suite("aime25").load(config(datasets=(("aime25", str(broken)),)))


def test_thinking_judge_is_read(pytester: pytest.Pytester) -> None:
    add_modules(pytester, "simple_qa")
    report_dir = pytester.path / "report"
    oracle = QaOracle(judge_text="<think>INCORRECT? no, it matches.</think>\nCORRECT")
    with ScriptedServer(oracle.script) as server:
        result = pytester.runpytest(*qa_args(server.url, report_dir, "--limit", "1"))
    result.assert_outcomes(passed=10)


def test_judge_failure_is_error_and_keeps_reply(pytester: pytest.Pytester) -> None:
    from tests.scripted_server import Fail

    add_modules(pytester, "simple_qa")
    report_dir = pytester.path / "report"
    oracle = QaOracle()

    def script(body: dict, attempt: int):
        if body["model"] == JUDGE_MODEL:
            return Fail(400, "judge is down")
        return oracle.script(body, attempt)

    with ScriptedServer(script) as server:
        result = pytester.runpytest(*qa_args(server.url, report_dir, "--limit", "1",
                                             "-k", "History"))
    result.assert_outcomes(errors=1)
    record = load_results(report_dir)["samples"][0]
    assert record["outcome"] == "error"
    assert record["explanation"].startswith("judge failed: HTTP 400")
    assert record["reply"]["content"]


def test_partial_overall_has_no_score(pytester: pytest.Pytester) -> None:
    add_modules(pytester, "simple_qa")
    report_dir = pytester.path / "report"
    with ScriptedServer(QaOracle().script) as server:
        result = pytester.runpytest(*qa_args(server.url, report_dir, "--limit", "1",
                                             "-k", "History", "--threshold",
                                             "simple_qa/OVERALL>=0.5"))
    assert result.ret == 1
    overall = [row for row in load_results(report_dir)["rollups"] if row["name"] == "OVERALL"]
    assert {row["score"] for row in overall} == {None}
    assert result.stdout.str().count("simple_qa OVERALL is partial") == 1


def test_threshold_on_named_metric(pytester: pytest.Pytester) -> None:
    add_modules(pytester, "simple_qa")
    report_dir = pytester.path / "report"
    oracle = QaOracle(judge_text="NOT_ATTEMPTED")
    with ScriptedServer(oracle.script) as server:
        result = pytester.runpytest(*qa_args(
            server.url, report_dir, "--limit", "1",
            "--threshold", "simple_qa/OVERALL[is_not_attempted]>=0.99",
            "--threshold", "simple_qa/OVERALL<=0.01",
            "--threshold", "simple_qa/Art[f2]>=0"))
    assert result.ret == 1
    gates = {row["expression"]: row for row in load_results(report_dir)["thresholds"]}
    assert gates["simple_qa/OVERALL[is_not_attempted]>=0.99"]["value"] == 1.0
    assert gates["simple_qa/OVERALL<=0.01"]["value"] == 0.0  # is_correct, the first metric
    assert [row["passed"] for row in gates.values()] == [True, True, False]
    result.stdout.fnmatch_lines(["*simple_qa/Art has no metric 'f2'; valid: is_correct, "
                                 "is_incorrect, is_not_attempted, accuracy_given_attempted, f1*"])
