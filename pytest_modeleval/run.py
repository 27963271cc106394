"""State of one evaluation run in one process: samples, client, pipeline, records."""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest

from .options import RunConfig
from .results import SampleRecord
from .suites import Clients, Grade, Sample, SampleSet, Suite, get_suite

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from .cache import ResponseCache
    from .client import ChatClient, ChatReply
    from .pipeline import Job, Pipeline
    from .user_benchmark import UserBenchmark


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
class Case:
    """The parameter of one benchmark item: a sample and which repeat of it this is."""

    sample: Sample
    repeat: int = 0

    @property
    def item_id(self) -> str:
        suffix = f"/r{self.repeat}" if self.repeat else ""
        subset = self.sample.id_subset or self.sample.subset
        return f"{subset}/{self.sample.sample_id}{suffix}"


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
    # Data and scorer versions of each benchmark loaded in this process (or its workers).
    versions: dict[str, dict[str, str]] = field(default_factory=dict)
    # A user's benchmarks declared with the modeleval_data marker, by name.
    user_benchmarks: dict[str, UserBenchmark] = field(default_factory=dict)
    _samples: dict[str, list[Sample]] = field(default_factory=dict)
    _client: ChatClient | None = None
    _judge: ChatClient | None = None
    _pipeline: Pipeline | None = None

    def samples(self, benchmark: str, load: Callable[[], SampleSet]) -> list[Sample]:
        """Return a benchmark's samples, calling `load` on first use in this process."""
        if benchmark not in self._samples:
            loaded = load()
            self._samples[benchmark] = loaded.samples
            self.versions[benchmark] = loaded.versions
        return self._samples[benchmark]

    def cases(self, samples: list[Sample]) -> list[Case]:
        """Return one case per (sample, repeat), repeats of a sample next to each other."""
        return [Case(sample, repeat) for sample in samples for repeat in range(self.config.repeats)]

    @property
    def client(self) -> ChatClient:
        if self._client is None:
            from .client import ChatClient, Endpoint

            assert self.config.model and self.config.base_url
            endpoint = Endpoint(self.config.model, self.config.base_url, self.config.api_key_env)
            self._client = ChatClient(endpoint, self.config.gen, self.config.stream,
                                      self.config.max_retries, _open_cache(self.config))
        return self._client

    @property
    def judge(self) -> ChatClient | None:
        """The judge's client, sharing the response cache; None when no judge is set."""
        settings = self.config.judge
        if settings is None:
            return None
        if self._judge is None:
            from .client import ChatClient, Endpoint

            base_url = settings.base_url or self.config.base_url
            assert base_url
            endpoint = Endpoint(settings.model, base_url, settings.api_key_env)
            self._judge = ChatClient(endpoint, settings.gen, False, self.config.max_retries,
                                     self.client.cache)
        return self._judge

    def start_pipeline(self, planned: list[tuple[str, Job]]) -> None:
        from .pipeline import Pipeline, PlannedJob

        # Create the clients here, not racing in the pool's threads.
        self.client  # noqa: B018
        self.judge  # noqa: B018
        self._pipeline = Pipeline(self.config.concurrency)
        self._pipeline.start([PlannedJob(key, job) for key, job in planned])

    def result(self, nodeid: str, job: Job) -> Any:
        """Wait for the item's network work, running it now if the pipeline has not."""
        if self._pipeline is None:
            self.start_pipeline([])
        assert self._pipeline is not None
        return self._pipeline.result(nodeid, job)

    def grade_item(self, nodeid: str, case: Case) -> SampleRecord:
        """Wait for the sample's network result, then grade it in this (main) thread."""
        from .client import ServerError

        sample = case.sample
        suite = get_suite(sample.benchmark)
        try:
            result = self.result(nodeid, self.job(case))
        except ServerError as error:
            return make_record(case, Grade("error", None, str(error)), None)
        grade = suite.grade(sample, result, self.config)
        return make_record(case, grade, suite.reply_of(result), suite.transcript_of(result),
                           suite.request_of(result))

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.close()
        for client in (self._judge, self._client):
            if client is not None:
                client.close()
        if self._client is not None and self._client.cache is not None:
            self._client.cache.close()

    def job(self, case: Case) -> Job:
        """Return the network work of a built-in benchmark's item."""
        sample = case.sample
        suite: Suite = get_suite(sample.benchmark)
        clients = self.clients(sample.benchmark, case.repeat,
                               f"{sample.benchmark}/{sample.subset} {sample.sample_id}")
        return lambda: suite.run(sample, clients, self.config)

    def user_job(self, case: Case) -> Job | None:
        """Return the request a user's benchmark declared up front, or None."""
        from .user_benchmark import prompt_messages

        spec = self.user_benchmarks.get(case.sample.benchmark)
        messages = prompt_messages(spec, case.sample.data) if spec is not None else None
        if messages is None:
            return None
        sample = case.sample
        clients = self.clients(sample.benchmark, case.repeat,
                               f"{sample.benchmark}/{sample.subset} {sample.sample_id}")
        return lambda: clients.model.chat(messages)

    def clients(self, benchmark: str, repeat: int, label: str) -> Clients:
        """Return the model and judge clients of one item, scoped for the response cache."""
        # The data version and repeat index shape the reply as much as the
        # request does, so they are part of every cache key of this sample.
        scope = {"benchmark": benchmark, "data": self.versions.get(benchmark, {}),
                 "repeat": repeat}
        judge = self.judge
        return Clients(self.client.scoped(scope, label),
                       judge.scoped(scope, label) if judge is not None else None)


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


# Characters kept of a reply's text and reasoning in a record. The response
# cache keeps the whole reply; reports of thousands of samples stay readable.
MAX_RECORD_REPLY_TEXT = 20_000


def _cut_reply(reply: dict[str, Any]) -> dict[str, Any]:
    for key in ("content", "reasoning_content"):
        text = reply.get(key)
        if isinstance(text, str) and len(text) > MAX_RECORD_REPLY_TEXT:
            reply[key] = text[:MAX_RECORD_REPLY_TEXT] + f" [... {len(text)} characters in all]"
    return reply


def make_record(case: Case, grade: Grade, reply: ChatReply | None,
                transcript: list[dict[str, Any]] | None = None,
                request: dict[str, Any] | None = None) -> SampleRecord:
    """Build the record of one item from its grade and the model's (combined) reply."""
    sample, repeat = case.sample, case.repeat
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
        reply=_cut_reply(reply.to_dict()) if reply is not None else None,
        transcript=transcript,
        details=grade.details,
        request=request,
    )
