"""Benchmark suites: the protocol each benchmark implements and the registry."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from ..client import Chat, ChatReply
    from ..options import RunConfig

Outcome = Literal["correct", "wrong", "error", "unscored"]

# Registry of built-in benchmarks: name -> module that defines `SUITE`.
# Modules are imported on first use so `pytest --help` stays fast.
SUITE_MODULES = {
    "bfcl_v3": "pytest_modeleval.suites.bfcl_v3",
}


@dataclass(frozen=True)
class Sample:
    """One benchmark sample; `data` is the suite's own parsed record."""

    benchmark: str
    subset: str
    sample_id: str
    category: str
    data: Any


@dataclass(frozen=True)
class Grade:
    """The verdict on one reply. `score` is None when the reply could not be scored."""

    outcome: Outcome
    score: float | None
    explanation: str = ""


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

    @property
    def partial(self) -> bool:
        return bool(self.missing)


class Suite(Protocol):
    """Interface between a benchmark and the plugin."""

    name: str
    subsets: tuple[str, ...]
    rollup_names: tuple[str, ...]

    def load(self, config: RunConfig) -> list[Sample]:
        """Return the samples to run, in dataset order, honouring `config.limit`."""

    def run(self, sample: Sample, client: Chat, config: RunConfig) -> Any:
        """Do the sample's network work; runs in a background thread."""

    def grade(self, sample: Sample, result: Any, config: RunConfig) -> Grade:
        """Score the result of `run`; runs in the main thread."""

    def reply_of(self, result: Any) -> ChatReply:
        """Return the model's final reply in a result of `run`."""

    def transcript_of(self, result: Any) -> list[dict[str, Any]] | None:
        """Return the turns of a multi-step result for the report, or None."""

    def rollups(self, subsets: dict[str, SubsetScore]) -> list[Rollup]:
        """Combine subset scores into the benchmark's published roll-ups."""

    def version(self) -> dict[str, str]:
        """Return the versions of the data and scorer, for results.json."""


def get_suite(name: str) -> Suite:
    module_name = SUITE_MODULES.get(name)
    if module_name is None:
        raise KeyError(f"unknown benchmark {name!r}; valid: {', '.join(SUITE_MODULES)}")
    return importlib.import_module(module_name).SUITE
