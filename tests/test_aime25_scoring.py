"""AIME grading with math-verify and the repeat metrics, checked against hand-computed values."""

from __future__ import annotations

import signal
import threading
from fractions import Fraction

import pytest

from pytest_modeleval.suites.aime25.metrics import (
    metric_names,
    pass_at_k,
    subset_metrics,
)
from pytest_modeleval.suites.aime25.scoring import (
    MAX_REPLY_TAIL,
    PROMPT,
    build_prompt,
    gold_answer,
    grade_answer,
    last_boxed,
)

# --- prompt and gold answers ---------------------------------------------------------------


def test_prompt_follows_problem() -> None:
    prompt = build_prompt("Find $x$.")
    assert prompt.startswith("Find $x$.\n\n")
    assert prompt.endswith(PROMPT)
    assert "\\boxed{}" in PROMPT


@pytest.mark.parametrize("value", [70, "70", " 70 ", "070", "70\n", "$70$"])
def test_gold_answer_forms_of_70(value: int | str) -> None:
    assert gold_answer(value) == "70"


@pytest.mark.parametrize("value", ["336^\\circ", "336^{\\circ}", "336°", " 336 ^\\circ "])
def test_gold_answer_strips_degrees(value: str) -> None:
    assert gold_answer(value) == "336"


def test_gold_answer_zero() -> None:
    assert gold_answer("000") == "0"
    assert gold_answer(0) == "0"


@pytest.mark.parametrize("value", ["", "   ", "$$", True])
def test_gold_answer_rejects_invalid(value: object) -> None:
    with pytest.raises(ValueError, match="invalid gold answer"):
        gold_answer(value)  # type: ignore[arg-type]


# --- grading -------------------------------------------------------------------------------


@pytest.mark.parametrize("reply", [
    "\\boxed{70}",
    "\\boxed{070}",
    "the answer is $\\boxed{70}$.",
    "\\boxed{70.0}",
    "\\boxed{ 070 }",
    "Adding the cases gives 30 + 40.\n\n**Final answer:** $\\boxed{\\dfrac{140}{2}}$",
    "\\boxed{71} is what I had first, but the final answer is \\boxed{70}.",
    "The answer is 70",
])
def test_grade_correct_forms(reply: str) -> None:
    grade = grade_answer(reply, gold_answer(70))
    assert grade.correct
    assert grade.extracted == "70"
    assert grade.explanation == "expected 70, got 70"


@pytest.mark.parametrize("gold", [70, " 70 ", "070"])
def test_grade_gold_types_agree(gold: int | str) -> None:
    assert grade_answer("so $\\boxed{070}$", gold_answer(gold)).correct


@pytest.mark.parametrize(("reply", "extracted"), [
    ("\\boxed{7}", "7"),
    ("\\boxed{71}", "71"),
    ("\\boxed{700}", "700"),
    ("\\boxed{-70}", "-70"),
    ("\\boxed{70} at first, then \\boxed{71}", "71"),
])
def test_grade_wrong_answers(reply: str, extracted: str) -> None:
    grade = grade_answer(reply, gold_answer(70))
    assert not grade.correct
    assert grade.extracted == extracted
    assert grade.explanation == f"expected 70, got {extracted}"


def test_grade_degree_gold_matches_plain_reply() -> None:
    assert grade_answer("\\boxed{336}", gold_answer("336^\\circ")).correct
    assert grade_answer("\\boxed{336^\\circ}", gold_answer("336")).correct


def test_grade_zero_answer() -> None:
    grade = grade_answer("\\boxed{000}", gold_answer(0))
    assert grade.correct
    assert grade.extracted == "0"


@pytest.mark.parametrize("reply", [None, "", "   \n"])
def test_grade_empty_reply(reply: str | None) -> None:
    grade = grade_answer(reply, "70")
    assert not grade.correct
    assert grade.extracted is None
    assert grade.explanation.startswith("no answer found in the reply")


def test_grade_reply_without_answer() -> None:
    grade = grade_answer("I could not solve this one.", "70")
    assert not grade.correct
    assert grade.extracted is None
    assert grade.explanation == "no answer found in the reply"


def test_grade_reads_only_reply_tail() -> None:
    reply = "\\boxed{70}" + "x" * MAX_REPLY_TAIL
    grade = grade_answer(reply, "70")
    assert not grade.correct
    assert grade.extracted is None


def test_grade_answer_before_long_reasoning_tail() -> None:
    reply = "y " * 50_000 + "\\boxed{70}" + " checked." * 10
    assert grade_answer(reply, "70").correct


def test_grade_rejects_worker_thread() -> None:
    errors: list[BaseException] = []

    def grade_in_thread() -> None:
        try:
            grade_answer("\\boxed{70}", "70")
        except RuntimeError as error:
            errors.append(error)

    thread = threading.Thread(target=grade_in_thread)
    thread.start()
    thread.join()
    assert len(errors) == 1
    assert "main thread" in str(errors[0])


# --- hostile replies -----------------------------------------------------------------------
# Each of these must return, because a hang would stall the test run.


def test_grade_100kb_nested_braces() -> None:
    reply = "\\boxed{" + "{" * 50_000 + "1" + "}" * 50_000 + "}"
    grade = grade_answer(reply, "70")
    assert not grade.correct


def test_grade_deep_nesting_within_tail() -> None:
    reply = "\\boxed{" + "{" * 3000 + "1" + "}" * 3000 + "}"
    grade = grade_answer(reply, "70")
    assert not grade.correct
    assert grade.extracted is None
    assert "timed out" in grade.explanation


@pytest.mark.parametrize("reply", [
    "\\boxed{10^{10^{10}}}",
    "\\boxed{9^{9^{9^{9}}}}",
    "\\boxed{(10^{10^{6}})!}",
    "The answer is 10**10**10",
])
def test_grade_power_towers(reply: str) -> None:
    grade = grade_answer(reply, "70")
    assert not grade.correct
    assert grade.extracted is not None
    assert len(grade.extracted) <= 200


def test_grade_100kb_of_digits() -> None:
    grade = grade_answer("\\boxed{" + "9" * 100_000 + "}", "70")
    assert not grade.correct
    assert grade.extracted is None
    assert "failed to parse" in grade.explanation


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_grade_keeps_caller_timer() -> None:
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    try:
        signal.setitimer(signal.ITIMER_REAL, 60.0)
        grade_answer("\\boxed{70}", "70")
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert 0 < remaining <= 60.0
    assert fired == []


# --- last_boxed ----------------------------------------------------------------------------


def test_last_boxed_nested_braces() -> None:
    assert last_boxed("so \\boxed{\\frac{1}{2}} done") == "\\frac{1}{2}"


def test_last_boxed_skips_unbalanced_box() -> None:
    assert last_boxed("\\boxed{70} and then \\boxed{71") == "70"


def test_last_boxed_skips_empty_box() -> None:
    assert last_boxed("\\boxed{70} \\boxed{ }") == "70"


def test_last_boxed_escaped_braces() -> None:
    assert last_boxed("\\boxed{\\{1, 2\\}}") == "\\{1, 2\\}"


def test_last_boxed_none() -> None:
    assert last_boxed("no box here") is None


# --- pass@k --------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "c", "k", "expected"), [
    (4, 1, 2, Fraction(1, 2)),
    (4, 2, 2, Fraction(5, 6)),
    (4, 1, 1, Fraction(1, 4)),
    (4, 0, 1, Fraction(0)),
    (4, 0, 2, Fraction(0)),
    (4, 0, 4, Fraction(0)),
    (4, 4, 1, Fraction(1)),
    (4, 4, 2, Fraction(1)),
    (4, 1, 4, Fraction(1)),
    (8, 3, 4, 1 - Fraction(5, 70)),
    (1, 1, 1, Fraction(1)),
])
def test_pass_at_k_values(n: int, c: int, k: int, expected: Fraction) -> None:
    assert pass_at_k(n, c, k) == float(expected)


def test_pass_at_k_large_n() -> None:
    # 1 - C(197, 100) / C(200, 100) = 1 - (100 * 99 * 98) / (200 * 199 * 198)
    expected = 1 - Fraction(100 * 99 * 98, 200 * 199 * 198)
    assert pass_at_k(200, 3, 100) == float(expected)


@pytest.mark.parametrize(("n", "c", "k"), [(4, 5, 2), (4, -1, 2), (4, 1, 0), (4, 1, 5)])
def test_pass_at_k_rejects_invalid(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError, match="invalid"):
        pass_at_k(n, c, k)


# --- metric names --------------------------------------------------------------------------


@pytest.mark.parametrize(("repeats", "names"), [
    (1, ["AveragePass@1"]),
    (2, ["AveragePass@1", "pass@2", "maj@2"]),
    (4, ["AveragePass@1", "pass@2", "pass@4", "maj@4"]),
    (6, ["AveragePass@1", "pass@2", "pass@4", "pass@6", "maj@6"]),
    (8, ["AveragePass@1", "pass@2", "pass@4", "pass@8", "maj@8"]),
    (16, ["AveragePass@1", "pass@2", "pass@4", "pass@8", "pass@16", "maj@16"]),
])
def test_metric_names(repeats: int, names: list[str]) -> None:
    assert metric_names(repeats) == names


def test_metric_names_rejects_zero() -> None:
    with pytest.raises(ValueError, match="invalid repeats 0"):
        metric_names(0)


# --- subset metrics ------------------------------------------------------------------------


def record(sample_id: str, repeat: int, outcome: str, extracted: str | None = None
           ) -> dict[str, object]:
    score = {"correct": 1.0, "wrong": 0.0}.get(outcome)
    details = None if outcome == "error" else {"extracted": extracted}
    return {"sample_id": sample_id, "repeat": repeat, "outcome": outcome, "score": score,
            "details": details}


def four_repeat_records() -> list[dict[str, object]]:
    """Build six scored problems and one with no scored repeat, with c and maj noted."""
    return [
        # p1: c=4, majority 70 correct.
        *(record("p1", repeat, "correct", "70") for repeat in range(4)),
        # p2: c=1, majority 5 (two votes) wrong.
        record("p2", 0, "correct", "12"),
        record("p2", 1, "wrong", "5"),
        record("p2", 2, "wrong", "5"),
        record("p2", 3, "wrong", "7"),
        # p3: c=2, tie 3 vs 9 goes to 3, given first in repeat 0, which is wrong.
        record("p3", 1, "correct", "9"),
        record("p3", 0, "wrong", "3"),
        record("p3", 2, "correct", "9"),
        record("p3", 3, "wrong", "3"),
        # p4: n=3 after the error, c=0, so it is left out of pass@4.
        record("p4", 0, "wrong", "1"),
        record("p4", 1, "error"),
        record("p4", 2, "wrong", None),
        record("p4", 3, "wrong", "1"),
        # p5: nothing scored, so it counts in no metric.
        record("p5", 0, "error"),
        record("p5", 1, "unscored"),
        # p6: c=1, three None answers lose to the one answer 8, which is correct.
        record("p6", 0, "wrong", None),
        record("p6", 1, "wrong", None),
        record("p6", 2, "wrong", None),
        record("p6", 3, "correct", "8"),
        # p7: c=0, tie 2 vs 3 goes to 2, which is wrong.
        record("p7", 0, "wrong", "2"),
        record("p7", 1, "wrong", "3"),
        record("p7", 2, "wrong", "3"),
        record("p7", 3, "wrong", "2"),
    ]


def test_subset_metrics_four_repeats() -> None:
    metrics = dict(subset_metrics(four_repeat_records(), repeats=4))
    assert list(metrics) == metric_names(4)

    # c/n per problem: 1, 1/4, 2/4, 0/3, 1/4, 0/4.
    assert metrics["AveragePass@1"] == pytest.approx(2 / 6)
    # pass@2 per problem: 1, 1/2, 5/6, 0, 1/2, 0.
    assert metrics["pass@2"] == pytest.approx((1 + 1 / 2 + 5 / 6 + 0 + 1 / 2 + 0) / 6)
    # pass@4 over p1, p2, p3, p6, p7 (p4 has n=3): 1, 1, 1, 1, 0.
    assert metrics["pass@4"] == pytest.approx(4 / 5)
    # Majority correct for p1 and p6 only.
    assert metrics["maj@4"] == pytest.approx(2 / 6)


def test_subset_metrics_excludes_errors() -> None:
    records = [record("p1", 0, "correct", "70"), record("p1", 1, "error"),
               record("p1", 2, "unscored"), record("p1", 3, "wrong", "71")]
    metrics = dict(subset_metrics(records, repeats=4))
    assert metrics["AveragePass@1"] == 0.5
    assert metrics["pass@2"] == 1.0
    assert metrics["pass@4"] is None
    assert metrics["maj@4"] == 1.0


def test_subset_metrics_all_none_answers() -> None:
    records = [record("p1", repeat, "wrong", None) for repeat in range(2)]
    metrics = dict(subset_metrics(records, repeats=2))
    assert metrics["maj@2"] == 0.0


def test_subset_metrics_single_repeat() -> None:
    records = [record("p1", 0, "correct", "70"), record("p2", 0, "wrong", "5"),
               record("p3", 0, "correct", "1"), record("p4", 0, "error")]
    assert subset_metrics(records, repeats=1) == [("AveragePass@1", pytest.approx(2 / 3))]


def test_subset_metrics_no_scored_problem() -> None:
    records = [record("p1", 0, "error"), record("p1", 1, "unscored")]
    assert subset_metrics(records, repeats=2) == [
        ("AveragePass@1", None), ("pass@2", None), ("maj@2", None)]


def test_subset_metrics_later_duplicate_wins() -> None:
    records = [record("p1", 0, "wrong", "5"), record("p1", 0, "correct", "70")]
    assert subset_metrics(records, repeats=1) == [("AveragePass@1", 1.0)]
