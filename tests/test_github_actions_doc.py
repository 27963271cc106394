"""Every `run:` command of the workflow in docs/github-actions.md works in this repository.

The commands run in a temporary folder against the scripted server on 127.0.0.1. The
`${{ ... }}` expressions get test values, and the artifact actions are replaced by copying.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.bfcl_oracle import build_full_oracle
from tests.scripted_server import ScriptedServer

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "github-actions.md"
API_KEY = "sk-modeleval-doc-test-5b1e9c"
SHARDS = 4
EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")
PIP_INSTALL = "pip install"
# Checks the install line without changing the installed packages or using the network.
PIP_DRY_RUN = "pip install --dry-run --no-index --no-build-isolation"


def _workflow() -> dict[str, Any]:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1, "docs/github-actions.md should contain one yaml block"
    return yaml.safe_load(blocks[0])


def _steps(workflow: dict[str, Any], job: str) -> dict[str, str]:
    """Return the `run:` commands of one job by step name."""
    return {step["name"]: step["run"] for step in workflow["jobs"][job]["steps"]
            if "run" in step}


def _substitute(text: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        assert expression in values, f"no test value for ${{{{ {expression} }}}}"
        return values[expression]

    return EXPRESSION.sub(value, text)


class Runner:
    """Runs workflow commands with bash in one folder, as a job's steps would."""

    def __init__(self, workdir: Path, workflow: dict[str, Any], values: dict[str, str]) -> None:
        self.workdir = workdir
        self.values = values
        self.env = dict(os.environ)
        self.env.pop("GITHUB_STEP_SUMMARY", None)
        # The interpreter running these tests provides pytest, pip and python, and this
        # checkout's plugin comes first on the import path.
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env['PATH']}"
        self.env["PYTHONPATH"] = str(ROOT)
        for name, expression in workflow["env"].items():
            self.env[name] = _substitute(str(expression), values)

    def run(self, command: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        command = _substitute(command, self.values).replace(PIP_INSTALL, PIP_DRY_RUN)
        return subprocess.run(["bash", "-c", command], cwd=self.workdir,
                              env={**self.env, **extra_env}, capture_output=True, text=True,
                              timeout=600)


def _copy_checkout(target: Path) -> None:
    """Copy the files the workflow's commands read from a checkout of this repository."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, target / name)
    shutil.copytree(ROOT / "benchmarks", target / "benchmarks",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (target / "pytest_modeleval").symlink_to(ROOT / "pytest_modeleval")


def _files_containing(folder: Path, text: str) -> list[Path]:
    return [path for path in folder.rglob("*")
            if path.is_file() and text.encode() in path.read_bytes()]


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return _workflow()


@pytest.fixture(scope="module")
def gate_folder(workflow: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[Path, Runner]]:
    """Run the shard jobs and the merge step; yield the gate job's folder and runner."""
    oracle, _ = build_full_oracle("fc", limit=20)
    base = tmp_path_factory.mktemp("actions")
    with ScriptedServer(oracle.script) as server:
        values = {"vars.MODELEVAL_BASE_URL": server.url, "vars.MODELEVAL_MODEL": "scripted",
                  "secrets.MODELEVAL_API_KEY": API_KEY}
        gate_dir = base / "gate"
        _copy_checkout(gate_dir)
        for shard in range(1, SHARDS + 1):
            shard_dir = base / f"shard-{shard}"
            _copy_checkout(shard_dir)
            runner = Runner(shard_dir, workflow, {**values, "matrix.shard": str(shard)})
            result = runner.run(_steps(workflow, "evaluate")["Evaluate one shard"])
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
            # upload-artifact, then download-artifact with a pattern: one folder per artifact.
            shutil.copytree(shard_dir / "modeleval-report",
                            gate_dir / "shards" / f"modeleval-shard-{shard}")

        runner = Runner(gate_dir, workflow, values)
        summary = gate_dir / "summary.md"
        summary.touch()
        result = runner.run(_steps(workflow, "gate")["Merge the shards"],
                            GITHUB_STEP_SUMMARY=str(summary))
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        yield gate_dir, runner


def test_workflow_steps_are_tested(workflow: dict[str, Any]) -> None:
    assert set(workflow["jobs"]) == {"evaluate", "gate"}
    assert workflow["jobs"]["evaluate"]["strategy"]["matrix"]["shard"] == [1, 2, 3, 4]
    assert list(_steps(workflow, "evaluate")) == ["Install", "Evaluate one shard"]
    assert list(_steps(workflow, "gate")) == ["Install", "Merge the shards",
                                             "Gate against the baseline"]
    assert _steps(workflow, "gate")["Install"] == _steps(workflow, "evaluate")["Install"]


def test_install_step_resolves(workflow: dict[str, Any], tmp_path: Path) -> None:
    # Offline, pip builds this package's metadata with the setuptools installed here.
    setuptools = pytest.importorskip("setuptools")
    major = int(setuptools.__version__.split(".")[0])
    if major < 77:
        pytest.skip(f"the dry run of the install line needs setuptools>=77 installed "
                    f"(found {setuptools.__version__}), as pyproject.toml's build-system states")
    checkout = tmp_path / "checkout"
    _copy_checkout(checkout)
    runner = Runner(checkout, workflow, {"vars.MODELEVAL_BASE_URL": "http://127.0.0.1:9/v1",
                                         "vars.MODELEVAL_MODEL": "scripted",
                                         "secrets.MODELEVAL_API_KEY": API_KEY})
    result = runner.run(_steps(workflow, "evaluate")["Install"])

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Would install pytest-modeleval-0.1.0" in result.stdout


def test_shards_merge_into_one_run(gate_folder: tuple[Path, Runner]) -> None:
    gate_dir, _ = gate_folder
    shard_counts = [json.loads((gate_dir / "shards" / f"modeleval-shard-{shard}" /
                                "results.json").read_text(encoding="utf-8"))["totals"]["samples"]
                    for shard in range(1, SHARDS + 1)]
    merged = json.loads((gate_dir / "merged" / "results.json").read_text(encoding="utf-8"))

    # 17 subsets with --limit 20, where the smallest subsets have fewer than 20 samples.
    assert merged["totals"]["samples"] == 332
    assert sum(shard_counts) == 332
    assert max(shard_counts) - min(shard_counts) <= 1
    assert [row["expression"] for row in merged["thresholds"]] == ["bfcl_v3/simple>=0.8"]
    assert (gate_dir / "summary.md").read_text(encoding="utf-8") == ""
    for shard in range(1, SHARDS + 1):
        assert (gate_dir / "shards" / f"modeleval-shard-{shard}" / "junit.xml").is_file()


def test_api_key_not_written(gate_folder: tuple[Path, Runner]) -> None:
    gate_dir, _ = gate_folder

    assert _files_containing(gate_dir / "shards", API_KEY) == []
    assert _files_containing(gate_dir / "merged", API_KEY) == []


def test_gate_step_writes_summary(workflow: dict[str, Any],
                                  gate_folder: tuple[Path, Runner]) -> None:
    gate_dir, runner = gate_folder
    # The baseline committed in a user's repository; here the merged run compares with
    # itself, so every gate on the baseline passes.
    (gate_dir / ".modeleval").mkdir(exist_ok=True)
    shutil.copyfile(gate_dir / "merged" / "results.json",
                    gate_dir / ".modeleval" / "baseline.json")
    summary = gate_dir / "summary.md"
    result = runner.run(_steps(workflow, "gate")["Gate against the baseline"],
                        GITHUB_STEP_SUMMARY=str(summary))

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "## Baseline comparison" in summary.read_text(encoding="utf-8")
    assert (gate_dir / "modeleval-report" / "report.html").is_file()
    assert _files_containing(gate_dir / "modeleval-report", API_KEY) == []
