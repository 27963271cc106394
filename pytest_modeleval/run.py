"""State of one evaluation run in one process: samples, client, pipeline, records."""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .options import RunConfig
from .results import SampleRecord
from .suites import Grade, Sample, Suite, get_suite

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from .cache import ResponseCache
    from .client import ChatClient
    from .pipeline import Pipeline


# Both are pytest's own failure exception with pytrace off: pytest then shows
# the message alone and skips building a traceback, which cost about 11 ms for
# each failed item.


class SampleWrong(pytest.fail.Exception):
    """The model's reply was graded wrong; the message is the checker's explanation."""

    def __init__(self, message: str) -> None:
        super().__init__(message, pytrace=False)


class SampleServerError(pytest.fail.Exception):
    """The server failed for good on this sample; the message is its last error."""

    def __init__(self, message: str) -> None:
        super().__init__(message, pytrace=False)


@dataclass(frozen=True)
class Graded:
    """Value of the `graded` fixture: the sample record and an assertion on it."""

    record: SampleRecord

    @property
    def correct(self) -> bool:
        return self.record.outcome == "correct"

    def assert_correct(self) -> None:
        if self.record.outcome == "wrong":
            raise SampleWrong(self.record.explanation)
        if self.record.outcome == "unscored":
            pytest.skip(f"unscored: {self.record.explanation}")


@dataclass
class ModelevalRun:
    """Per-process run state, kept in the pytest config stash."""

    config: RunConfig
    started: float = field(default_factory=time.monotonic)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    deselected_without_model: int = 0
    document: dict[str, Any] | None = None
    _samples: dict[str, list[Sample]] = field(default_factory=dict)
    _client: ChatClient | None = None
    _pipeline: Pipeline | None = None

    def samples(self, benchmark: str) -> list[Sample]:
        if benchmark not in self._samples:
            self._samples[benchmark] = get_suite(benchmark).load(self.config)
        return self._samples[benchmark]

    @property
    def client(self) -> ChatClient:
        if self._client is None:
            from .client import ChatClient, Endpoint

            assert self.config.model and self.config.base_url
            endpoint = Endpoint(self.config.model, self.config.base_url, self.config.api_key_env)
            self._client = ChatClient(endpoint, self.config.gen, self.config.stream,
                                      self.config.max_retries, _open_cache(self.config))
        return self._client

    def start_pipeline(self, samples_in_run_order: list[tuple[str, Sample]]) -> None:
        from .pipeline import Pipeline, PlannedJob

        self.client  # noqa: B018 - create it here, not racing in the pool's threads
        self._pipeline = Pipeline(self.config.concurrency)
        plan = [PlannedJob(key, self._job(sample)) for key, sample in samples_in_run_order]
        self._pipeline.start(plan)

    def grade_item(self, nodeid: str, sample: Sample, repeat: int = 0) -> SampleRecord:
        """Wait for the sample's network result, then grade it in this (main) thread."""
        from .client import ServerError

        suite = get_suite(sample.benchmark)
        if self._pipeline is None:
            self.start_pipeline([])
        assert self._pipeline is not None
        try:
            result = self._pipeline.result(nodeid, self._job(sample))
        except ServerError as error:
            return _record(sample, repeat, Grade("error", None, str(error)), None)
        grade = suite.grade(sample, result, self.config)
        return _record(sample, repeat, grade, suite.reply_of(result), suite.transcript_of(result))

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.close()
        if self._client is not None:
            self._client.close()
            if self._client.cache is not None:
                self._client.cache.close()

    def _job(self, sample: Sample, repeat: int = 0) -> Any:
        suite: Suite = get_suite(sample.benchmark)
        # The data version and repeat index shape the reply as much as the
        # request does, so they are part of every cache key of this sample.
        scope = {"benchmark": sample.benchmark, "data": suite.version(), "repeat": repeat}
        label = f"{sample.benchmark}/{sample.subset} {sample.sample_id}"
        return lambda: suite.run(sample, self.client.scoped(scope, label), self.config)


def _open_cache(config: RunConfig) -> ResponseCache | None:
    if config.cache_dir is None:
        return None
    from .cache import ResponseCache

    try:
        return ResponseCache(Path(config.cache_dir))
    except (OSError, sqlite3.Error) as error:
        logger.warning("response cache in %s cannot be opened (%s); running without it, "
                       "fix the folder or pass --no-cache", config.cache_dir, error)
        return None


def _record(sample: Sample, repeat: int, grade: Grade, reply: Any,
            transcript: list[dict[str, Any]] | None = None) -> SampleRecord:
    return SampleRecord(
        benchmark=sample.benchmark,
        subset=sample.subset,
        sample_id=sample.sample_id,
        repeat=repeat,
        outcome=grade.outcome,
        score=grade.score,
        category=sample.category,
        latency_s=round(reply.latency_s, 4) if reply is not None else None,
        prompt_tokens=reply.prompt_tokens if reply is not None else None,
        completion_tokens=reply.completion_tokens if reply is not None else None,
        explanation=grade.explanation,
        reply=reply.to_dict() if reply is not None else None,
        transcript=transcript,
    )
