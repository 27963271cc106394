"""AIME 2025: 30 integer-answer problems in two exams, scored with math-verify."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

from ...client import ChatReply
from ...data_source import HubDataset, load_rows, require
from ...options import RunConfig
from .. import (
    HEX_IDS,
    Clients,
    Grade,
    Rollup,
    Sample,
    SampleSet,
    SubsetLimit,
    SubsetScore,
    overall_rollups,
    request_view,
    strip_thinking,
)
from .metrics import subset_metrics
from .scoring import build_prompt, gold_answer, grade_answer

HUB = HubDataset("math-ai/aime25", split="test")
SUBSETS = ("AIME2025-I", "AIME2025-II")
PROBLEMS_PER_EXAM = 15
CATEGORY = "Math"


@dataclass(frozen=True)
class Problem:
    problem: str
    answer: str


@dataclass(frozen=True)
class Answer:
    """The request sent for one problem and the model's reply."""

    messages: list[dict[str, Any]]
    reply: ChatReply


@dataclass(frozen=True)
class Aime25Suite:
    name: str = "aime25"
    subsets: tuple[str, ...] = SUBSETS
    rollup_names: tuple[str, ...] = ("OVERALL",)
    needs_judge: bool = False
    sample_id_chars: str | None = HEX_IDS
    subset_ids: tuple[str, ...] = ()

    def load(self, config: RunConfig) -> SampleSet:
        rows = load_rows(self.name, HUB, config.dataset_path(self.name))
        samples = []
        limit = SubsetLimit(config.limit)
        for sample_id, subset, row in _problems(rows.rows):
            if not limit.take(subset):
                continue
            data = Problem(str(require(row, "problem", sample_id, rows.source)),
                           _gold(row, sample_id, rows.source))
            samples.append(Sample(self.name, subset, sample_id, CATEGORY, data))
        return SampleSet(samples, {"aime25_data": rows.version,
                                   "math_verify": metadata.version("math-verify")})

    def run(self, sample: Sample, clients: Clients, config: RunConfig) -> Answer:
        problem: Problem = sample.data
        messages = [{"role": "user", "content": build_prompt(problem.problem)}]
        return Answer(messages, clients.model.chat(messages))

    def grade(self, sample: Sample, result: Answer, config: RunConfig) -> Grade:
        problem: Problem = sample.data
        math = grade_answer(strip_thinking(result.reply.content), problem.answer)
        details = {"extracted": math.extracted, "gold": problem.answer}
        if math.correct:
            return Grade("correct", 1.0, "", details)
        return Grade("wrong", 0.0, math.explanation, details)

    def reply_of(self, result: Answer) -> ChatReply:
        return result.reply

    def transcript_of(self, result: Answer) -> list[dict[str, Any]] | None:
        return None

    def request_of(self, result: Answer) -> dict[str, Any] | None:
        return request_view(result.messages)

    def metrics(self, records: list[dict[str, Any]], config: dict[str, Any]
                ) -> list[tuple[str, float | None]]:
        return subset_metrics(records, _repeats(config))

    def rollups(self, subsets: dict[str, SubsetScore], records: list[dict[str, Any]],
                config: dict[str, Any]) -> list[Rollup]:
        num = sum(score.num for score in subsets.values())
        return overall_rollups(subset_metrics(records, _repeats(config)), num, SUBSETS, subsets)


def _problems(rows: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """Return (sample id, exam, row) in id order.

    The hub copy has no field naming the exam: its ids 0-14 are AIME 2025 I
    and 15-29 are AIME 2025 II. A row's own `exam` field (I or II, or a subset
    name) wins when present; rows with neither go by their position, the first
    half of the file being exam I.
    """
    ids = [str(row.get("id", index)).strip() for index, row in enumerate(rows)]
    order = sorted(range(len(rows)), key=lambda i: (int(ids[i]), ids[i]) if ids[i].isdigit()
                   else (len(rows), ids[i]))
    half = (len(rows) + 1) // 2
    problems = []
    for position, index in enumerate(order):
        subset = _exam(rows[index]) or _exam_of_id(ids[index]) or (
            SUBSETS[0] if position < half else SUBSETS[1])
        problems.append((ids[index], subset, rows[index]))
    return problems


def _exam_of_id(sample_id: str) -> str | None:
    if not sample_id.isdigit() or int(sample_id) >= 2 * PROBLEMS_PER_EXAM:
        return None
    return SUBSETS[0] if int(sample_id) < PROBLEMS_PER_EXAM else SUBSETS[1]


def _gold(row: dict[str, Any], sample_id: str, source: str) -> str:
    try:
        return gold_answer(require(row, "answer", sample_id, source))
    except ValueError as error:
        raise ValueError(f"{source}, id {sample_id}: {error}; fix the answer field") from None


def _exam(row: dict[str, Any]) -> str | None:
    value = str(row.get("exam") or "").strip().upper().replace("AIME2025-", "")
    return {"I": SUBSETS[0], "II": SUBSETS[1]}.get(value)


def _repeats(config: dict[str, Any]) -> int:
    repeats = config.get("repeats")
    return repeats if isinstance(repeats, int) and repeats > 0 else 1


SUITE = Aime25Suite()
