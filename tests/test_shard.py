"""--shard I/N slices the benchmark items; merging every shard's results equals one run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_modeleval.__main__ import main as modeleval_main
from tests.bfcl_oracle import build_full_oracle
from tests.plugin_helpers import add_bfcl_module, load_results, run_args
from tests.scripted_server import ScriptedServer

SELECTION = ["--limit", "4"]


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """What must match between a merged and a single run: everything but timing and paths."""
    totals = {k: v for k, v in document["totals"].items()
              if k not in ("wall_s", "mean_latency_s")}
    samples = sorted(((s["benchmark"], s["subset"], s["sample_id"], s["outcome"], s["score"])
                      for s in document["samples"]))
    return {"subsets": document["subsets"], "rollups": document["rollups"], "totals": totals,
            "samples": samples, "model": document["model"],
            "thresholds": [(t["expression"], t["value"], t["passed"])
                           for t in document["thresholds"]]}


def test_merged_shards_equal_one_run(pytester: pytest.Pytester) -> None:
    oracle, _ = build_full_oracle("fc", limit=4)
    add_bfcl_module(pytester)
    gate = ["--threshold", "bfcl_v3/OVERALL>=0.5"]
    with ScriptedServer(oracle.script) as server:
        whole = pytester.runpytest(*run_args(server.url, pytester.path / "whole", *SELECTION,
                                             *gate))
        shards = [pytester.runpytest(*run_args(server.url, pytester.path / f"s{i}", *SELECTION,
                                               *gate, "--shard", f"{i}/3"))
                  for i in (1, 2, 3)]

    counts = [load_results(pytester.path / f"s{i}")["totals"]["samples"] for i in (1, 2, 3)]
    assert sum(counts) == 17 * 4
    assert max(counts) - min(counts) <= 1
    assert whole.ret == 0
    assert all(shard.ret in (0, 1) for shard in shards)  # a shard may miss a subset
    merged_dir = pytester.path / "merged"
    status = modeleval_main(["merge", *(str(pytester.path / f"s{i}" / "results.json")
                                        for i in (1, 2, 3)), "--report-dir", str(merged_dir)])

    assert status == 0
    merged = load_results(merged_dir)
    assert comparable(merged) == comparable(load_results(pytester.path / "whole"))
    assert merged["config"]["shard"] is None
    assert (merged_dir / "report.html").stat().st_size > 0


def test_merge_rejects_mixed_runs(tmp_path: Path) -> None:
    base = {"config": {"model": "a", "shard": "1/2"}, "versions": {}, "samples": [],
            "totals": {}}
    other = {**base, "config": {"model": "b", "shard": "2/2"}}
    paths = []
    for name, document in (("one.json", base), ("two.json", other)):
        paths.append(tmp_path / name)
        paths[-1].write_text(json.dumps(document), encoding="utf-8")

    result = subprocess.run([sys.executable, "-m", "pytest_modeleval", "merge", *map(str, paths),
                             "--report-dir", str(tmp_path / "out")],
                            capture_output=True, text=True)

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {paths[1]} and {paths[0]} differ in model ('b' vs 'a'); "
        "merge only shards of one run"]


@pytest.mark.parametrize("value", ["0/3", "4/3", "x", "1/0", "2"])
def test_bad_shard_is_usage_error(pytester: pytest.Pytester, value: str) -> None:
    result = pytester.runpytest("-p", "no:cacheprovider", "--model", "m", "--shard", value)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--shard*invalid value '{value}': expected I/N*"])
