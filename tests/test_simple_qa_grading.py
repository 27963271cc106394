"""SimpleQA judge prompts, verdict parsing and metrics, checked against hand-written values."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_modeleval.suites.simple_qa.grading import (
    load_template,
    parse_verdict,
    render_grader_prompt,
)
from pytest_modeleval.suites.simple_qa.metrics import METRIC_NAMES, verdict_metrics

PARSE_CASES = [
    # Plain grade words, any case.
    ("CORRECT", "CORRECT"),
    ("INCORRECT", "INCORRECT"),
    ("NOT_ATTEMPTED", "NOT_ATTEMPTED"),
    ("correct", "CORRECT"),
    ("Correct", "CORRECT"),
    ("incorrect.", "INCORRECT"),
    ("not attempted", "NOT_ATTEMPTED"),
    ("NOT-ATTEMPTED", "NOT_ATTEMPTED"),
    ("Not Attempted.", "NOT_ATTEMPTED"),
    ("**INCORRECT**", "INCORRECT"),
    ("  CORRECT  \n", "CORRECT"),
    # A sentence whose first capital letter is C is still CORRECT.
    ("The response is CORRECT.", "CORRECT"),
    ("The predicted answer is INCORRECT.", "INCORRECT"),
    # Format characters and full-width letters.
    ("COR\u200bRECT", "CORRECT"),
    ("\ufeffINCOR\u200dRECT\u2060", "INCORRECT"),
    ("NOT\u00ad_ATTEMPTED", "NOT_ATTEMPTED"),
    ("ＣＯＲＲＥＣＴ", "CORRECT"),
    ("ｉｎｃｏｒｒｅｃｔ", "INCORRECT"),
    # simple-evals' letter grades, only as the whole reply.
    ("A", "CORRECT"),
    ("B", "INCORRECT"),
    ("C", "NOT_ATTEMPTED"),
    ("c", "NOT_ATTEMPTED"),
    ("(C)", "NOT_ATTEMPTED"),
    ("**B**", "INCORRECT"),
    ("[A].", "CORRECT"),
    ("Ｃ", "NOT_ATTEMPTED"),
    # Labelled lines win over other grade words.
    ("CORRECT would need the year.\nGrade: INCORRECT", "INCORRECT"),
    ("It is not INCORRECT, it is CORRECT? No.\nVerdict: NOT_ATTEMPTED", "NOT_ATTEMPTED"),
    ("**Final grade:** CORRECT\nThe gold answer says INCORRECT things are wrong.", "CORRECT"),
    ("Grade: INCORRECT\nGrade: CORRECT", "CORRECT"),
    ("- Verdict: not attempted", "NOT_ATTEMPTED"),
    # The last line decides when it states one grade.
    ("The answer could be read as CORRECT.\nINCORRECT", "INCORRECT"),
    ("Reasoning about INCORRECT options.\n\nCORRECT\n\n", "CORRECT"),
    # One grade word anywhere, when the last line states none.
    ("The predicted answer is CORRECT.\nIt matches the gold answer.", "CORRECT"),
    # Negated grades are not statements of that grade.
    ("The answer is correct, not incorrect.", "CORRECT"),
    ("It is not CORRECT. INCORRECT", "INCORRECT"),
    ("It would not be considered INCORRECT, so: CORRECT", "CORRECT"),
    ("No INCORRECT claims, so CORRECT", "CORRECT"),
    ("Does it match the gold answer? No\nINCORRECT", "INCORRECT"),
    # An adjective use is skipped and the stated grade still counts.
    ("The correct answer is 1987 and the model said 1988.\nINCORRECT", "INCORRECT"),
    ("The correct answer is 1987, which the model gives. CORRECT", "CORRECT"),
    ("A\nCORRECT", "CORRECT"),
    # Chinese grade words as the whole reply or a labelled verdict.
    ("正确", "CORRECT"),
    ("错误。", "INCORRECT"),
    ("未尝试", "NOT_ATTEMPTED"),
    ("「正确」", "CORRECT"),
    ("结论：正确", "CORRECT"),
    ("预测答案与标准答案一致。\n评分：正确", "CORRECT"),
    ("理由略。\n最终结论：错误", "INCORRECT"),
    ("评分：NOT_ATTEMPTED", "NOT_ATTEMPTED"),
    ("评分：ＣＯＲＲＥＣＴ", "CORRECT"),
    ("预测答案给出了关键信息，评为CORRECT", "CORRECT"),
    ("预测答案与标准答案矛盾。\nINCORRECT", "INCORRECT"),
    ("预测答案没有给出年份。\n未尝试", "NOT_ATTEMPTED"),
]

UNSCORED_CASES = [
    None,
    "",
    "   \n ",
    "I cannot decide.",
    "The answer is 42.",
    "D",
    "Grade: C",
    "CORRECT ... INCORRECT",
    "Either CORRECT or NOT_ATTEMPTED, hard to say.",
    "Maybe CORRECT.\nMaybe INCORRECT, the year differs.\nHard to say.",
    "The answer is not correct.",
    "It is not CORRECT, so CORRECT.",
    "ATTEMPTED",
    "NOTATTEMPTEDLY",
    "CORRECTLY",
    "The model tends to overcorrect.",
    # 不正确 contains 正确 but means "not correct".
    "不正确",
    "结论：不正确",
    "答案正确",
    "Verdict: unclear",
    "Grade: CORRECT or INCORRECT",
    # Grade words used as adjectives grade nothing.
    "The correct answer is 1987, the model said 1988.",
    "The model differs from the correct one.",
    "It gives an incorrect year.",
]


@pytest.mark.parametrize(("reply", "expected"), PARSE_CASES)
def test_parse_verdict_reads_grade(reply: str, expected: str) -> None:
    assert parse_verdict(reply) == expected


@pytest.mark.parametrize("reply", UNSCORED_CASES)
def test_parse_verdict_unreadable_is_none(reply: str | None) -> None:
    assert parse_verdict(reply) is None


def test_incorrect_never_reads_as_correct() -> None:
    for reply in ("INCORRECT", "incorrect", "The answer is INCORRECT.", "IN\u200bCORRECT"):
        assert parse_verdict(reply) == "INCORRECT"


def test_word_correct_is_not_letter_c() -> None:
    assert parse_verdict("C") == "NOT_ATTEMPTED"
    assert parse_verdict("Correct") == "CORRECT"
    assert parse_verdict("C.") == "NOT_ATTEMPTED"
    assert parse_verdict("Certainly CORRECT") == "CORRECT"


@pytest.mark.parametrize("language", ["en", "zh"])
def test_shipped_template_renders_cjk(language: str) -> None:
    template = load_template(language)  # type: ignore[arg-type]
    prompt = render_grader_prompt(template, "中国的首都是哪座城市？", "北京",
                                  "我认为是北京市。")
    assert "中国的首都是哪座城市？" in prompt
    assert "<gold_answer>\n北京\n</gold_answer>" in prompt
    assert "<predicted_answer>\n我认为是北京市。\n</predicted_answer>" in prompt
    assert prompt.rstrip().endswith("NOT_ATTEMPTED。" if language == "zh" else "NOT_ATTEMPTED.")
    for grade in ("CORRECT", "INCORRECT", "NOT_ATTEMPTED"):
        assert grade in prompt
    assert "{{" not in prompt
    assert "{#" not in prompt


@pytest.mark.parametrize("language", ["en", "zh"])
def test_shipped_template_keeps_jinja_literal(language: str) -> None:
    template = load_template(language)  # type: ignore[arg-type]
    predicted = "{{ 7*7 }} {% raw %}x{% endraw %} {# note #} AT&T <b>"
    prompt = render_grader_prompt(template, "Q {{ question }}", "A & B", predicted)
    assert f"<predicted_answer>\n{predicted}\n</predicted_answer>" in prompt
    assert "Q {{ question }}" in prompt
    assert "A & B" in prompt
    assert "49" not in prompt
    assert "&amp;" not in prompt


def test_english_template_states_criteria() -> None:
    prompt = render_grader_prompt(load_template("en"), "q", "g", "p")
    assert "significant figure" in prompt
    assert "contradicts" in prompt
    assert "I don't know" in prompt


def test_chinese_template_shows_meanings() -> None:
    prompt = render_grader_prompt(load_template("zh"), "q", "g", "p")
    assert "CORRECT（正确）" in prompt
    assert "INCORRECT（错误）" in prompt
    assert "NOT_ATTEMPTED（未尝试）" in prompt
    assert "有效数字" in prompt


def test_user_template_file(tmp_path: Path) -> None:
    path = tmp_path / "grader.j2"
    path.write_text("Q={{ question }}|G={{ gold_answer }}|P={{ predicted_answer }}|"
                    "{% if predicted_answer %}ok{% endif %}", encoding="utf-8")
    template = load_template("en", str(path))
    prompt = render_grader_prompt(template, "问题", "{{ x }}", "{% raw %}")
    assert prompt == "Q=问题|G={{ x }}|P={% raw %}|ok"


def test_user_template_ignores_language(tmp_path: Path) -> None:
    path = tmp_path / "grader.j2"
    path.write_text("only {{ predicted_answer }}", encoding="utf-8")
    prompt = render_grader_prompt(load_template("zh", str(path)), "q", "g", "p")
    assert prompt == "only p"


def test_user_template_may_use_builtins(tmp_path: Path) -> None:
    path = tmp_path / "grader.j2"
    path.write_text("{% for i in range(2) %}{{ question | upper }}{% endfor %}", encoding="utf-8")
    assert render_grader_prompt(load_template("en", str(path)), "q", "g", "p") == "QQ"


def test_missing_user_template_names_path(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "grader.j2"
    with pytest.raises(ValueError, match="not found") as info:
        load_template("en", str(path))
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_directory_as_user_template(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found") as info:
        load_template("en", str(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_invalid_user_template_names_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.j2"
    path.write_text("line one\n{% if question %}unclosed", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid Jinja2") as info:
        load_template("en", str(path))
    assert str(path) in str(info.value)
    assert "line 2" in str(info.value)
    assert "\n" not in str(info.value)


def test_non_utf8_user_template(tmp_path: Path) -> None:
    path = tmp_path / "latin1.j2"
    path.write_bytes("Frage: {{ question }} \xe4".encode("latin-1"))
    with pytest.raises(ValueError, match="UTF-8") as info:
        load_template("en", str(path))
    assert str(path) in str(info.value)


def test_unknown_variable_in_user_template(tmp_path: Path) -> None:
    path = tmp_path / "typo.j2"
    path.write_text("{{ question }} {{ gold }} {{ answer }}", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown variables answer, gold") as info:
        load_template("en", str(path))
    assert str(path) in str(info.value)


def test_user_template_render_error(tmp_path: Path) -> None:
    path = tmp_path / "attr.j2"
    path.write_text("{{ question.missing_attribute }}", encoding="utf-8")
    # The trial render at load time finds the error before any request is sent.
    with pytest.raises(ValueError, match="failed to render") as info:
        load_template("en", str(path))
    assert str(path) in str(info.value)


@pytest.mark.parametrize("source", ["{{ (question | length) / 0 }}", "{% include 'x.j2' %}",
                                    "   ", "{{ ''.__class__.__mro__ }}"])
def test_user_template_broken_at_load(tmp_path: Path, source: str) -> None:
    path = tmp_path / "broken.j2"
    path.write_text(source, encoding="utf-8")
    with pytest.raises(ValueError, match=str(path)):
        load_template("en", str(path))


def test_invalid_language_rejected() -> None:
    with pytest.raises(ValueError, match="'fr'"):
        load_template("fr")  # type: ignore[arg-type]


def metric_values(verdicts: list) -> dict[str, float | None]:
    result = verdict_metrics(verdicts)
    assert [name for name, _ in result] == list(METRIC_NAMES)
    return dict(result)


def test_metrics_mixed_verdicts() -> None:
    verdicts = ["CORRECT"] * 6 + ["INCORRECT"] * 2 + ["NOT_ATTEMPTED"] * 2
    values = metric_values(verdicts)
    assert values["is_correct"] == pytest.approx(0.6)
    assert values["is_incorrect"] == pytest.approx(0.2)
    assert values["is_not_attempted"] == pytest.approx(0.2)
    assert values["accuracy_given_attempted"] == pytest.approx(0.75)
    # 2 * 0.6 * 0.75 / (0.6 + 0.75) = 0.9 / 1.35
    assert values["f1"] == pytest.approx(2 / 3)


def test_metrics_uneven_counts() -> None:
    verdicts = ["CORRECT", "INCORRECT", "INCORRECT", "NOT_ATTEMPTED"]
    values = metric_values(verdicts)
    assert values["is_correct"] == pytest.approx(0.25)
    assert values["is_incorrect"] == pytest.approx(0.5)
    assert values["is_not_attempted"] == pytest.approx(0.25)
    assert values["accuracy_given_attempted"] == pytest.approx(1 / 3)
    # 2 * (1/4) * (1/3) / (1/4 + 1/3) = (1/6) / (7/12) = 2/7
    assert values["f1"] == pytest.approx(2 / 7)


def test_metrics_all_correct() -> None:
    values = metric_values(["CORRECT"] * 3)
    assert values == {"is_correct": 1.0, "is_incorrect": 0.0, "is_not_attempted": 0.0,
                      "accuracy_given_attempted": 1.0, "f1": 1.0}


def test_metrics_all_incorrect_f1_zero() -> None:
    values = metric_values(["INCORRECT", "INCORRECT"])
    assert values == {"is_correct": 0.0, "is_incorrect": 1.0, "is_not_attempted": 0.0,
                      "accuracy_given_attempted": 0.0, "f1": 0.0}


def test_metrics_nothing_attempted() -> None:
    values = metric_values(["NOT_ATTEMPTED"] * 4)
    assert values == {"is_correct": 0.0, "is_incorrect": 0.0, "is_not_attempted": 1.0,
                      "accuracy_given_attempted": None, "f1": None}


def test_metrics_empty_list() -> None:
    values = metric_values([])
    assert values == dict.fromkeys(METRIC_NAMES)


def test_metrics_reject_unknown_verdict() -> None:
    with pytest.raises(ValueError, match="'unscored'"):
        verdict_metrics(["CORRECT", "unscored"])  # type: ignore[list-item]
