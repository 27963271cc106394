"""Benchmark suites: the protocol each benchmark implements and the registry."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from ..client import Chat, ChatReply
    from ..options import RunConfig

Outcome = Literal["correct", "wrong", "error", "unscored"]
# Sample ids that are row numbers or hex digests.
HEX_IDS = "0123456789abcdef"
_THINK_BLOCK = re.compile(r"\s*<think>.*?</think>\s*", re.DOTALL)

# Registry of built-in benchmarks: name -> module that defines `SUITE`.
# Modules are imported on first use so `pytest --help` stays fast.
SUITE_MODULES = {
    "bfcl_v3": "pytest_modeleval.suites.bfcl_v3",
    "simple_qa": "pytest_modeleval.suites.simple_qa",
    "chinese_simpleqa": "pytest_modeleval.suites.simple_qa.chinese",
    "aime25": "pytest_modeleval.suites.aime25",
}


@dataclass(frozen=True)
class Sample:
    """One benchmark sample; `data` is the suite's own parsed record."""

    benchmark: str
    subset: str
    sample_id: str
    category: str
    data: Any
    # The subset as written in item ids, when it differs: pytest escapes
    # non-ASCII ids, which -k cannot match as typed.
    id_subset: str | None = None


@dataclass(frozen=True)
class SampleSet:
    """A benchmark's loaded samples, with the versions of its data and scorer."""

    samples: list[Sample]
    versions: dict[str, str]


@dataclass(frozen=True)
class Clients:
    """Who a sample talks to: the model under test and, for graded answers, the judge."""

    model: Chat
    judge: Chat | None = None


@dataclass(frozen=True)
class Grade:
    """The verdict on one reply. `score` is None when the reply could not be scored.

    `details` contains what the suite's metrics need besides the score, such as
    the judge's verdict or the extracted answer. It must be JSON builtins.
    """

    outcome: Outcome
    score: float | None
    explanation: str = ""
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class SubsetScore:
    """Accuracy inputs of one subset: scored samples and their summed score."""

    num: int
    total: float

    @property
    def mean(self) -> float | None:
        return self.total / self.num if self.num else None


@dataclass(frozen=True)
class Rollup:
    """A benchmark-level score built from subset scores, such as BFCL's OVERALL."""

    name: str
    score: float | None
    num: int
    missing: tuple[str, ...] = ()
    metric: str = "accuracy"

    @property
    def partial(self) -> bool:
        return bool(self.missing)


class Suite(Protocol):
    """Interface between a benchmark and the plugin."""

    name: str
    subsets: tuple[str, ...]
    rollup_names: tuple[str, ...]
    # A suite that needs a judge is skipped, with the option to set, when none is configured.
    needs_judge: bool
    # Characters the dataset's sample ids are made of, when known: then -k can
    # rule out the suite before its data is loaded (see selection.py). None
    # for data that is cheap to load.
    sample_id_chars: str | None
    # ASCII names of the subsets in item ids, when their names are not ASCII.
    subset_ids: tuple[str, ...]

    def load(self, config: RunConfig) -> SampleSet:
        """Return the samples to run, in dataset order, honouring `config.limit`."""

    def run(self, sample: Sample, clients: Clients, config: RunConfig) -> Any:
        """Do the sample's network work (model and judge calls); runs in a background thread."""

    def grade(self, sample: Sample, result: Any, config: RunConfig) -> Grade:
        """Score the result of `run`; runs in the main thread."""

    def reply_of(self, result: Any) -> ChatReply:
        """Return the model's final reply in a result of `run`."""

    def transcript_of(self, result: Any) -> list[dict[str, Any]] | None:
        """Return the turns of a multi-step result for the report, or None."""

    def request_of(self, result: Any) -> dict[str, Any] | None:
        """Return the prompt messages and tool names sent, for the report (see `request_view`)."""

    def metrics(self, records: list[dict[str, Any]], config: dict[str, Any]
                ) -> list[tuple[str, float | None]]:
        """Return the metrics of one subset's records (all repeats); the first is its score.

        `config` is the run's public settings, as stored in results.json.
        """

    def rollups(self, subsets: dict[str, SubsetScore], records: list[dict[str, Any]],
                config: dict[str, Any]) -> list[Rollup]:
        """Combine subset scores (or all `records`) into the benchmark's published roll-ups."""



class SubsetLimit:
    """Count samples per subset to keep at most `limit` of each (--limit); None keeps all."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.taken: dict[str, int] = {}

    def take(self, subset: str) -> bool:
        """Return whether one more sample of `subset` fits, counting it when it does."""
        count = self.taken.get(subset, 0)
        if self.limit is not None and count >= self.limit:
            return False
        self.taken[subset] = count + 1
        return True


def overall_rollups(metrics: list[tuple[str, float | None]], num: int, expected: tuple[str, ...],
                    present: dict[str, SubsetScore]) -> list[Rollup]:
    """Return one OVERALL roll-up per metric, without a score when a subset is missing.

    Over only some subsets the score would not compare with published ones.
    """
    missing = tuple(subset for subset in expected if subset not in present)
    return [Rollup("OVERALL", None if missing else value, num, missing, metric)
            for metric, value in metrics]


def accuracy(records: list[dict[str, Any]]) -> list[tuple[str, float | None]]:
    """Mean score of the scored records, the metric of a suite without its own."""
    scores = [r["score"] for r in records
              if r["outcome"] in ("correct", "wrong") and r["score"] is not None]
    return [("accuracy", sum(scores) / len(scores) if scores else None)]


def strip_thinking(text: str | None) -> str | None:
    """Drop a leading <think>...</think> block that some servers leave in the answer text.

    vLLM and SGLang without a reasoning parser return a reasoning model's
    thoughts inside the content; only what follows them is the answer.
    """
    if text is None:
        return None
    match = _THINK_BLOCK.match(text)
    return text[match.end():] if match else text


# Characters kept of each message in a record's request, as in transcripts.
MAX_REQUEST_TEXT = 2000


def request_view(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
                 ) -> dict[str, Any]:
    """Return what a record keeps of a request: each message's role and text, tool names."""
    kept = [{"role": str(message.get("role")),
             "content": str(message.get("content") or "")[:MAX_REQUEST_TEXT]}
            for message in messages]
    names = [str((tool.get("function") or {}).get("name") or tool.get("name") or "")
             for tool in tools or [] if isinstance(tool, dict)]
    return {"messages": kept, "tools": names}


def get_suite(name: str) -> Suite:
    module_name = SUITE_MODULES.get(name)
    if module_name is None:
        raise KeyError(f"unknown benchmark {name!r}; valid: {', '.join(SUITE_MODULES)}")
    return importlib.import_module(module_name).SUITE


def combined_reply(replies: list[ChatReply]) -> ChatReply:
    """Return the last reply of a conversation, with the time and tokens of all its replies."""
    if not replies:
        from ..client import ChatReply

        return ChatReply(content=None)
    return replace(
        replies[-1],
        latency_s=sum(reply.latency_s for reply in replies),
        attempts=sum(reply.attempts for reply in replies),
        prompt_tokens=_total_count(reply.prompt_tokens for reply in replies),
        completion_tokens=_total_count(reply.completion_tokens for reply in replies),
    )


def _total_count(counts: Any) -> int | None:
    known = [count for count in counts if count is not None]
    return sum(known) if known else None
