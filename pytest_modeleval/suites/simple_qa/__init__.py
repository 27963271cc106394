"""SimpleQA: short factual questions; a judge model grades each answer against the gold one.

`SimpleQaSuite` also serves Chinese SimpleQA (see `chinese.py`): the two
differ in data source, field names, subsets and the judge prompt's language.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from typing import Any

from ...client import ChatReply, ServerError
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
from .grading import Language, load_template, parse_verdict, render_grader_prompt
from .metrics import verdict_metrics

CATEGORY = "Knowledge"
# The judge's reply is kept in the record up to this many characters.
MAX_JUDGE_TEXT = 2000
SIMPLE_QA_TOPICS = ("Science and technology", "Politics", "Art", "Other", "Geography",
                    "Sports", "Music", "TV shows", "History", "Video games")
OUTCOMES = {"CORRECT": ("correct", 1.0), "INCORRECT": ("wrong", 0.0),
            "NOT_ATTEMPTED": ("wrong", 0.0)}


@dataclass(frozen=True)
class Question:
    question: str
    answer: str


@dataclass(frozen=True)
class JudgedAnswer:
    """The model's answer and the judge's reply on it."""

    messages: list[dict[str, Any]]
    reply: ChatReply
    judge_reply: ChatReply | None
    # Why the judge gave no reply: its server failed or its prompt did not render.
    judge_error: str = ""


@dataclass(frozen=True)
class SimpleQaSuite:
    name: str = "simple_qa"
    subsets: tuple[str, ...] = SIMPLE_QA_TOPICS
    hub: HubDataset = HubDataset("basicv8vc/SimpleQA", split="test")
    language: Language = "en"
    question_field: str = "problem"
    rollup_names: tuple[str, ...] = ("OVERALL",)
    needs_judge: bool = True
    sample_id_chars: str | None = HEX_IDS
    subset_ids: tuple[str, ...] = ()

    def load(self, config: RunConfig) -> SampleSet:
        _template(self.language, config.judge_template(self.name))  # fail before any call
        rows = load_rows(self.name, self.hub, config.dataset_path(self.name))
        samples = []
        limit = SubsetLimit(config.limit)
        for index, row in enumerate(rows.rows):
            subset = self.subset_of(row)
            if not limit.take(subset):
                continue
            sample_id = str(row.get("id", index))
            data = Question(str(require(row, self.question_field, sample_id, rows.source)).strip(),
                            str(require(row, "answer", sample_id, rows.source)).strip())
            samples.append(Sample(self.name, subset, sample_id, CATEGORY, data,
                                  self.id_subset(subset)))
        return SampleSet(samples, {f"{self.name}_data": rows.version})

    def id_subset(self, subset: str) -> str | None:
        """Return the subset's name in item ids when it is not the subset itself."""
        return None

    def subset_of(self, row: dict[str, Any]) -> str:
        """Return the row's subset: SimpleQA's topic."""
        metadata = row.get("metadata")
        if isinstance(metadata, str):
            # The published CSV stores a Python literal (single quotes), not JSON.
            try:
                metadata = ast.literal_eval(metadata)
            except (ValueError, SyntaxError):
                metadata = None
        metadata = metadata if isinstance(metadata, dict) else {}
        return str(metadata.get("topic") or "Other").strip()

    def run(self, sample: Sample, clients: Clients, config: RunConfig) -> JudgedAnswer:
        question: Question = sample.data
        messages = [{"role": "user", "content": question.question}]
        reply = clients.model.chat(messages)
        if clients.judge is None:
            raise ServerError(f"{self.name} needs a judge model: pass --judge-model NAME")
        try:
            template = _template(self.language, config.judge_template(self.name))
            prompt = render_grader_prompt(template, question.question, question.answer,
                                          strip_thinking(reply.content) or "")
            judge_reply = clients.judge.chat([{"role": "user", "content": prompt}])
        except (ServerError, ValueError) as error:
            # The model's reply is kept in the record; the sample is an error.
            return JudgedAnswer(messages, reply, None, str(error))
        return JudgedAnswer(messages, reply, judge_reply)

    def grade(self, sample: Sample, result: JudgedAnswer, config: RunConfig) -> Grade:
        question: Question = sample.data
        if result.judge_reply is None:
            return Grade("error", None, f"judge failed: {result.judge_error}",
                         {"verdict": None, "judge": None})
        judge_text = (result.judge_reply.content or "")[:MAX_JUDGE_TEXT]
        # A reasoning judge served without a reasoning parser thinks aloud first.
        verdict = parse_verdict(strip_thinking(result.judge_reply.content))
        details = {"verdict": verdict, "judge": judge_text}
        if verdict is None:
            return Grade("unscored", None, "the judge's reply has no readable grade: "
                         f"{_one_line(judge_text)}", details)
        outcome, score = OUTCOMES[verdict]
        if verdict == "CORRECT":
            return Grade(outcome, score, "", details)
        answer = _one_line(strip_thinking(result.reply.content) or "")
        return Grade(outcome, score, f"{verdict}: expected {question.answer!r}, got "
                     f"{answer!r}", details)

    def reply_of(self, result: JudgedAnswer) -> ChatReply:
        return result.reply

    def transcript_of(self, result: JudgedAnswer) -> list[dict[str, Any]] | None:
        return None

    def request_of(self, result: JudgedAnswer) -> dict[str, Any] | None:
        return request_view(result.messages)

    def metrics(self, records: list[dict[str, Any]], config: dict[str, Any]
                ) -> list[tuple[str, float | None]]:
        return verdict_metrics(_verdicts(records))

    def rollups(self, subsets: dict[str, SubsetScore], records: list[dict[str, Any]],
                config: dict[str, Any]) -> list[Rollup]:
        verdicts = _verdicts(records)
        return overall_rollups(verdict_metrics(verdicts), len(verdicts), self.subsets, subsets)


@functools.lru_cache(maxsize=8)
def _template(language: Language, path: str | None) -> Any:
    """Load a judge template once per run instead of once per sample."""
    return load_template(language, path)


def _verdicts(records: list[dict[str, Any]]) -> list[Any]:
    """Return the judge's verdicts of the graded records, leaving out errors and unscored ones."""
    verdicts = []
    for record in records:
        verdict = (record.get("details") or {}).get("verdict")
        if record["outcome"] in ("correct", "wrong") and verdict in OUTCOMES:
            verdicts.append(verdict)
    return verdicts


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit] + "..."


SUITE = SimpleQaSuite()
