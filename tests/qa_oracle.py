"""A scripted model and judge for SimpleQA, Chinese SimpleQA and AIME 2025.

The model answers each question with its gold answer, read from the real
data files in the folder MODELEVAL_TEST_DATA names (by default the data
folder next to the checkout); the judge replies with a fixed text chosen by the test.
Requests to the judge are told apart by their model name.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.scripted_server import Outcome, Reply

DATA_DIR = Path(os.environ.get("MODELEVAL_TEST_DATA")
                or Path(__file__).resolve().parents[2] / "shared" / "data")
DATA_FILES = {"simple_qa": "simple_qa.csv", "chinese_simpleqa": "chinese_simpleqa.jsonl",
              "aime25": "aime25.jsonl"}
JUDGE_MODEL = "scripted-judge"


def data_path(benchmark: str) -> Path:
    return DATA_DIR / DATA_FILES[benchmark]


def dataset_args() -> list[str]:
    """The --dataset options that point every QA benchmark at its local copy."""
    return [f"--dataset={name}={data_path(name)}" for name in DATA_FILES]


def gold_answers() -> dict[str, str]:
    """Map each question's text (stripped) to its gold answer, from the raw files."""
    gold: dict[str, str] = {}
    with data_path("simple_qa").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            gold[row["problem"].strip()] = row["answer"].strip()
    for name, question in (("chinese_simpleqa", "question"), ("aime25", "problem")):
        for line in data_path(name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            gold[str(row[question]).strip()] = str(row["answer"]).strip()
    return gold


def boxed(answer: str, attempt: int) -> str:
    """An AIME gold answer in one of several written forms, chosen by the attempt number."""
    forms = [f"So the result is \\boxed{{{answer}}}", f"\\boxed{{{int(answer):03d}}}",
             f"the answer is $\\boxed{{{answer}}}$."]
    return forms[attempt % len(forms)]


@dataclass
class QaOracle:
    """Script for ScriptedServer: gold answers from the model, `judge_text` from the judge.

    `correct_repeats` caps how many identical AIME requests get the right
    answer; later ones get a wrong number, so repeats have known counts.
    """

    judge_text: str = "The response is CORRECT."
    correct_repeats: dict[str, int] = field(default_factory=dict)
    gold: dict[str, str] = field(default_factory=gold_answers)
    answer: Callable[[str, str, int], str] | None = None

    def handles(self, body: dict) -> bool:
        """Return whether the request is for the judge or contains one of the known questions."""
        if body.get("model") == JUDGE_MODEL:
            return True
        messages = body.get("messages") or [{}]
        return self._question(str(messages[-1].get("content")))[1] is not None

    def script(self, body: dict, attempt: int) -> Outcome:
        content = str(body["messages"][-1]["content"])
        if body["model"] == JUDGE_MODEL:
            return Reply(content=self.judge_text)
        question, gold = self._question(content)
        if gold is None:
            return Reply(content="I do not know.")
        if self.answer is not None:
            return Reply(content=self.answer(question, gold, attempt))
        if content != question:  # AIME: the prompt adds the answer instruction
            limit = self.correct_repeats.get(question[:40], 10**6)
            return Reply(content=boxed(gold, attempt) if attempt < limit
                         else f"\\boxed{{{int(gold) + 1}}}")
        return Reply(content=gold)

    def _question(self, content: str) -> tuple[str, str | None]:
        stripped = content.strip()
        if stripped in self.gold:
            return stripped, self.gold[stripped]
        head = stripped.split("\n\n")[0]
        for question, gold in self.gold.items():
            if stripped.startswith(question) and question.startswith(head):
                return question, gold
        return stripped, None
