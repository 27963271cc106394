"""The embedded default model (`--model local`): a real SmolLM2 server on
loopback evaluated on real BFCL data."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_modeleval.local_server import LocalServer, LocalServerError, _wait_until_ready
from tests.plugin_helpers import add_bfcl_module, load_results

HAS_LOCAL_EXTRA = all(importlib.util.find_spec(m) for m in ("llama_cpp", "uvicorn"))
needs_local_extra = pytest.mark.skipif(
    not HAS_LOCAL_EXTRA, reason='needs the local extra: pip install -e ".[local]"')


@needs_local_extra
# Multi-turn samples send some 30 tool definitions per request, which this
# small CPU model takes about half a minute per sample to work through. The
# plain run adds one multi-turn subset; the xdist run keeps to single-turn ones.
@pytest.mark.parametrize(("xdist", "selection", "samples"),
                         [([], "bfcl and not (miss_func or miss_param or long_context)", 14),
                          (["-n", "2"], "bfcl and not multi_turn", 13)],
                         ids=["plain", "n2"])
def test_local_model_end_to_end(pytester: pytest.Pytester, xdist: list[str], selection: str,
                                samples: int) -> None:
    add_bfcl_module(pytester)
    report_dir = pytester.path / "report"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--model", "local",
                                           "-k", selection, "--limit", "1",
                                           f"--report-dir={report_dir}", *xdist, timeout=600)
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    document = load_results(report_dir)
    totals = document["totals"]
    assert totals["errors"] == 0
    assert totals["samples"] == samples  # one per selected BFCL v3 subset
    multi_turn = [s for s in document["samples"] if s["category"] == "MULTI_TURN"]
    assert len(multi_turn) == samples - 13
    assert all(s["transcript"] and s["transcript"][0]["steps"] for s in multi_turn)
    assert totals["completion_tokens"] > 0
    for row in document["subsets"]:
        assert 0.0 <= row["score"] <= 1.0, row
    assert document["config"]["base_url"].startswith("http://127.0.0.1:")
    assert document["config"]["gen"]["max_tokens"] == 96
    log = (report_dir / "local-server.log").read_text(encoding="utf-8", errors="replace")
    assert "llama" in log.lower()


def test_missing_local_extra_one_line(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("import sys\nsys.modules['llama_cpp'] = None\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--model", "local")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        'ERROR: --model local needs the llama_cpp module; install the local extra with: '
        'pip install -e ".[local]"'])
    assert "Traceback" not in result.stderr.str()


def test_failed_start_shows_log(tmp_path: Path) -> None:
    log_path = tmp_path / "local-server.log"
    script = "import sys; print('loading model: boom'); sys.exit(3)"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-c", script], stdout=log)
    server = LocalServer(process, "http://127.0.0.1:9/v1", log_path)
    with pytest.raises(LocalServerError) as raised:
        _wait_until_ready(server)
    message = str(raised.value)
    assert "exited with code 3" in message
    assert "loading model: boom" in message
