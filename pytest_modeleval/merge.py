"""Merge the results.json files of shards into one document, as one run would have written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .gates import GateSettings, apply_gates
from .results import build_document

# Settings that may differ between shards without changing any score.
PER_SHARD_SETTINGS = frozenset({"shard", "report_dir", "cache_dir", "concurrency"})


class MergeError(ValueError):
    """The files cannot be merged; the message names the file and the fix."""


def load_document(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise MergeError(f"cannot read {path}: {error}; pass results.json files of "
                         "pytest-modeleval runs") from None
    if not isinstance(document, dict) or not isinstance(document.get("samples"), list):
        raise MergeError(f"{path} is not a pytest-modeleval results.json (no samples list)")
    return document


def merge_documents(named: list[tuple[Path, dict[str, Any]]], report_dir: str
                    ) -> dict[str, Any]:
    """Return one results document holding every shard's samples."""
    if not named:
        raise MergeError("no results.json files given")
    first_path, first = named[0]
    for path, document in named[1:]:
        _check_same_run(first_path, first, path, document)
    samples = _unique_samples(named)
    config = {**first.get("config", {}), "shard": None, "report_dir": report_dir}
    wall = max(float(d.get("totals", {}).get("wall_s") or 0.0) for _, d in named)
    document = build_document(samples, config, wall)
    # Shards were checked to share their versions; build_document records only its own.
    document["versions"] = first.get("versions", document["versions"])
    apply_gates(document, GateSettings.from_config(config))
    return document


def rebuild_document(document: dict[str, Any], report_dir: str) -> dict[str, Any]:
    """Aggregate a results.json again from its samples, as the current plugin does.

    The run's time, versions and baseline comparison are kept; scores,
    intervals and gates are computed anew.
    """
    config = {**document.get("config", {}), "report_dir": report_dir}
    wall = float(document.get("totals", {}).get("wall_s") or 0.0)
    rebuilt = build_document(document["samples"], config, wall)
    for key in ("created_at", "versions", "baseline"):
        if document.get(key) is not None:
            rebuilt[key] = document[key]
    return rebuilt


def _check_same_run(first_path: Path, first: dict[str, Any], path: Path,
                    document: dict[str, Any]) -> None:
    mine, theirs = first.get("config", {}), document.get("config", {})
    for key in sorted(set(mine) | set(theirs)):
        if key not in PER_SHARD_SETTINGS and mine.get(key) != theirs.get(key):
            raise MergeError(f"{path} and {first_path} differ in {key} ({theirs.get(key)!r} "
                             f"vs {mine.get(key)!r}); merge only shards of one run")
    if first.get("versions") != document.get("versions"):
        raise MergeError(f"{path} and {first_path} used different versions "
                         f"({document.get('versions')} vs {first.get('versions')}); rerun the "
                         "shards with one install")


def _unique_samples(named: list[tuple[Path, dict[str, Any]]]) -> list[dict[str, Any]]:
    seen: dict[tuple[Any, ...], Path] = {}
    samples = []
    for path, document in named:
        for sample in document["samples"]:
            key = (sample.get("benchmark"), sample.get("subset"), sample.get("sample_id"),
                   sample.get("repeat"))
            if key in seen:
                raise MergeError(f"sample {'/'.join(map(str, key[:3]))} is in both {seen[key]} "
                                 f"and {path}; give each shard's results.json once")
            seen[key] = path
            samples.append(sample)
    return samples
