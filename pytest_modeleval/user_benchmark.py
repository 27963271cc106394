"""A user's own benchmark: rows of a local data file, each run by a plain pytest test.

    @pytest.mark.modeleval_data("capitals.jsonl", subset="continent", prompt="question")
    def test_capitals(sample, model):
        assert sample["answer"] in model.chat(sample["question"]).text

The test's pass or failure is the sample's grade. Naming a `prompt` field
declares the request up front, so the background pipeline sends it ahead of
the test, as it does for built-in benchmarks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .suites import SUITE_MODULES, Sample, SampleSet, SubsetLimit, request_view

if TYPE_CHECKING:
    import pytest

    from .client import Chat, ChatReply

MARKER = "modeleval_data"
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
DEFAULT_SUBSET = "default"
MARKER_HELP = (f"{MARKER}(path, subset=FIELD, prompt=FIELD, id=FIELD, name=NAME): one item per "
               "row of a local jsonl, json, csv or parquet file (path relative to the test "
               "file); the test gets the row as `sample` and a `model` client")


@dataclass(frozen=True)
class UserBenchmark:
    """The data file and fields that a `modeleval_data` marker declares."""

    name: str
    path: Path
    subset_field: str | None = None
    id_field: str | None = None
    # Row field whose text is sent as the user message before the test runs.
    prompt_field: str | None = None


def from_marker(marker: pytest.Mark, test_file: Path) -> UserBenchmark:
    """Read a `modeleval_data` marker; raise ValueError naming what is wrong."""
    allowed = {"subset", "prompt", "id", "name"}
    if len(marker.args) != 1 or not isinstance(marker.args[0], (str, Path)) or (
            set(marker.kwargs) - allowed):
        raise ValueError(
            f"@pytest.mark.{MARKER} takes a data file and the keywords subset, prompt, id, "
            f"name, e.g. @pytest.mark.{MARKER}('capitals.jsonl', subset='continent'); got "
            f"args {marker.args!r}, keywords {sorted(marker.kwargs)}")
    path = test_file.parent / Path(marker.args[0])
    name = str(marker.kwargs.get("name") or path.stem)
    if not _NAME.fullmatch(name) or name in SUITE_MODULES:
        raise ValueError(f"@pytest.mark.{MARKER} in {test_file.name}: invalid benchmark name "
                         f"{name!r}; use letters, digits, '_', '-' or '.', and not a built-in "
                         f"benchmark's name ({', '.join(SUITE_MODULES)}); set name=...")
    return UserBenchmark(
        name=name,
        path=path,
        subset_field=marker.kwargs.get("subset"),
        id_field=marker.kwargs.get("id"),
        prompt_field=marker.kwargs.get("prompt"),
    )


def load(spec: UserBenchmark, limit: int | None) -> SampleSet:
    """Load the rows as samples, at most `limit` per subset, in file order."""
    from .data_source import HubDataset, load_rows

    rows = load_rows(spec.name, HubDataset(str(spec.path), "train"), str(spec.path),
                     origin=f"@pytest.mark.{MARKER} file {spec.path}")
    samples: list[Sample] = []
    limit_per_subset = SubsetLimit(limit)
    seen: set[tuple[str, str]] = set()
    for index, row in enumerate(rows.rows):
        subset = _field(spec, row, spec.subset_field, DEFAULT_SUBSET, index)
        _field(spec, row, spec.prompt_field, "", index)
        if not limit_per_subset.take(subset):
            continue
        sample_id = _field(spec, row, spec.id_field, str(index), index)
        if (subset, sample_id) in seen:
            raise ValueError(f"{spec.path}: row {index} repeats id {sample_id!r} of subset "
                             f"{subset!r}; give each row its own id")
        seen.add((subset, sample_id))
        samples.append(Sample(spec.name, subset, sample_id, "", row))
    return SampleSet(samples, {f"{spec.name}_data": rows.version})


def prompt_messages(spec: UserBenchmark, row: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Return the request declared up front for a row, or None when none is declared."""
    if spec.prompt_field is None:
        return None
    return [{"role": "user", "content": str(row.get(spec.prompt_field, ""))}]


def _field(spec: UserBenchmark, row: dict[str, Any], name: str | None, default: str,
           index: int) -> str:
    if name is None:
        return default
    if name not in row:
        raise ValueError(f"{spec.path}: row {index} has no field {name!r}; fields: "
                                f"{', '.join(map(str, row))}; fix the {MARKER} marker")
    return str(row[name]).strip() or default


@dataclass
class ModelHandle:
    """The `model` (or `judge`) fixture of a user's test: chat with one call per question.

    When the test sends the request that was declared up front, the reply the
    pipeline already fetched is returned instead of asking again.
    """

    client: Chat
    # The request declared up front and the pipeline's reply to it.
    planned: list[dict[str, Any]] | None = None
    planned_reply: ChatReply | None = None
    replies: list[ChatReply] = field(default_factory=list)
    # The first request the test sent, for the report.
    first_request: dict[str, Any] | None = None

    def chat(self, prompt: str | list[dict[str, Any]],
             tools: list[dict[str, Any]] | None = None) -> ChatReply:
        """Send a question (text or a list of messages) and return the model's reply."""
        from .client import ServerError
        from .run import SampleServerError

        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        if self.first_request is None:
            self.first_request = request_view(messages, tools)
        try:
            if self.planned_reply is not None and messages == self.planned and not tools:
                reply, self.planned_reply = self.planned_reply, None
            else:
                reply = self.client.chat(messages, tools)
        except ServerError as error:
            # The item errors, as a built-in benchmark's does, instead of failing as wrong.
            raise SampleServerError(str(error)) from None
        self.replies.append(reply)
        return reply
