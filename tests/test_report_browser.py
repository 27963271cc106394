"""report.html in headless Chromium: filters, search, paging and expanding a sample work.

Chromium is driven through the DevTools protocol over --remote-debugging-pipe, so the test
needs no websocket package and opens no port. The browser loads only the file:// report.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_modeleval.report import write_reports

SAMPLE_COUNT = 5000
PAGE_SIZE = 50
# The file descriptors on which Chromium reads commands and writes replies with
# --remote-debugging-pipe.
BROWSER_READ_FD = 3
BROWSER_WRITE_FD = 4
TIMEOUT_S = 60.0
INJECTED = '<script>window.injected = 1</script><img src=x onerror="window.injected = 2">'
OUTCOMES = ("correct", "wrong", "error", "unscored")
SUBSETS = (
    ("bfcl_v3", "simple"),
    ("bfcl_v3", "live_multiple"),
    ("bfcl_v3", "multi_turn_base"),
    ("simple_qa", "simple_qa"),
    ("chinese_simpleqa", "中华文化"),
    ("chinese_simpleqa", "自然与自然科学"),
    ("aime25", "AIME2025-I"),
)


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _outcome(index: int) -> str:
    # Every 13th sample errors and every 11th is unscored; the rest alternate.
    if index % 13 == 0:
        return "error"
    if index % 11 == 0:
        return "unscored"
    return "correct" if index % 2 else "wrong"


def _sample(index: int) -> dict[str, Any]:
    benchmark, subset = SUBSETS[index % len(SUBSETS)]
    outcome = _outcome(index)
    sample: dict[str, Any] = {
        "benchmark": benchmark, "subset": subset, "sample_id": f"{subset}_{index}",
        "repeat": 0, "outcome": outcome, "score": {"correct": 1.0, "wrong": 0.0}.get(outcome),
        "category": "文化" if benchmark == "chinese_simpleqa" else "AST_LIVE",
        "latency_s": 0.5 + index % 5 / 10, "prompt_tokens": 200 + index % 50,
        "completion_tokens": 20 + index % 9,
        "explanation": f"expected 42, got {index}" if outcome == "wrong" else "",
        "reply": {"content": f"Answer {index}: 北京 {INJECTED}",
                  "reasoning_content": "think <b>step</b> by step",
                  "tool_calls": [{"name": "lookup", "arguments": "{\"q\": \"</pre>\"}"}],
                  "finish_reason": "stop", "cached": False},
        "details": {"judge_reply": "CORRECT", "extracted_answer": str(index)},
        "request": {"messages": [{"role": "user", "content": f"Question {index} 问题"}],
                    "tools": ["lookup"]},
    }
    if subset == "multi_turn_base":
        sample["transcript"] = [{
            "query": [{"role": "user", "content": "List the folder."}],
            "steps": [{"reply": {"content": None, "tool_calls": [], "finish_reason": "tool_calls"},
                       "calls": ["ls()"], "results": [INJECTED], "decode_error": "",
                       "latency_s": 0.2, "prompt_tokens": 100, "completion_tokens": 5}],
        }]
    return sample


def _document() -> dict[str, Any]:
    samples = [_sample(index) for index in range(SAMPLE_COUNT)]
    subsets = []
    for benchmark, subset in SUBSETS:
        scored = [s for s in samples if s["subset"] == subset and s["score"] is not None]
        score = sum(s["score"] for s in scored) / len(scored)
        subsets.append({"benchmark": benchmark, "subset": subset, "metric": "accuracy",
                        "primary": True, "num": len(scored), "score": score,
                        "ci": [max(score - 0.05, 0.0), min(score + 0.05, 1.0)],
                        "stderr": 0.025, "category": "AST_LIVE"})
    return {
        "created_at": "2026-12-04T20:30:00+00:00", "model": "通义千问-plus",
        "config": {"model": "通义千问-plus", "base_url": "http://127.0.0.1:8000/v1",
                   "api_key_env": "OPENAI_API_KEY"},
        "versions": {"pytest_modeleval": "0.1.0"},
        "subsets": subsets, "rollups": [], "thresholds": [],
        "gates": [{"kind": "threshold", "name": "bfcl_v3/simple>=0.4", "passed": True,
                   "value": 0.45, "bound": 0.4, "noise": False, "message": "0.45 >= 0.4"}],
        "totals": {"samples": SAMPLE_COUNT},
        "samples": samples,
    }


class DevTools:
    """Minimal DevTools protocol client over Chromium's --remote-debugging-pipe."""

    def __init__(self, chromium: str, user_data_dir: Path) -> None:
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def move_pipe_fds() -> None:
            # Copy both ends above fd 4 first so that moving one cannot overwrite the other.
            read_copy = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD, 10)
            write_copy = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD, 10)
            os.dup2(read_copy, BROWSER_READ_FD)
            os.dup2(write_copy, BROWSER_WRITE_FD)

        arguments = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
            "--window-size=1400,1800", f"--user-data-dir={user_data_dir}",
            "--remote-debugging-pipe", "about:blank",
        ]
        self.process = subprocess.Popen(
            arguments, pass_fds=(BROWSER_READ_FD, BROWSER_WRITE_FD), preexec_fn=move_pipe_fds,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self.events: list[dict[str, Any]] = []
        self._replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self._next_id = 0
        self.session_id: str | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._from_browser, "rb", buffering=0) as stream:
            while chunk := stream.read(1 << 16):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for message in messages:
                    self._replies.put(json.loads(message))

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command to the attached page (or the browser before attaching)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session_id is not None:
            message["sessionId"] = self.session_id
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        reply = self._wait(lambda item: item.get("id") == self._next_id)
        assert "error" not in reply, f"{method} failed: {reply['error']}"
        return reply.get("result", {})

    def wait_event(self, method: str) -> dict[str, Any]:
        return self._wait(lambda item: item.get("method") == method)

    def _wait(self, wanted: Any) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            item = self._replies.get(timeout=max(deadline - time.monotonic(), 0.01))
            if "method" in item:
                self.events.append(item)
            if wanted(item):
                return item

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def errors(self) -> list[dict[str, Any]]:
        """Return console errors, uncaught exceptions and error log entries seen so far."""
        found = []
        for event in self.events:
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                found.append(event)
            elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append(event)
            elif (event["method"] == "Log.entryAdded"
                  and params.get("entry", {}).get("level") == "error"):
                found.append(event)
        return found

    def close(self) -> None:
        os.close(self._to_browser)
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def chromium() -> str:
    path = _find_chromium()
    if path is None:
        pytest.skip("Chromium is not installed; install it with `apt-get install -y chromium` "
                    "(.ci/run does when it runs as root)")
    return path


@pytest.fixture(scope="module")
def report_page(chromium: str, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[DevTools, float]]:
    """Open report.html of a 5,000-sample run; yield the client and the load time in seconds."""
    report_dir = tmp_path_factory.mktemp("report")
    write_reports(_document(), report_dir)
    browser = DevTools(chromium, tmp_path_factory.mktemp("chromium-profile"))
    try:
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        attached = browser.send("Target.attachToTarget", targetId=target, flatten=True)
        browser.session_id = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable")
        started = time.monotonic()
        browser.send("Page.navigate", url=(report_dir / "report.html").as_uri())
        browser.wait_event("Page.loadEventFired")
        yield browser, time.monotonic() - started
    finally:
        browser.close()


VISIBLE_ROWS = "document.querySelectorAll('#samples > tbody > tr:not([hidden])').length"
STATUS = "document.getElementById('page-status').textContent"


def _choose(browser: DevTools, element_id: str, value: str) -> None:
    browser.evaluate(f"""(() => {{
        const element = document.getElementById({json.dumps(element_id)});
        element.value = {json.dumps(value)};
        element.dispatchEvent(new Event('change'));
    }})()""")


def _type(browser: DevTools, text: str) -> None:
    browser.evaluate(f"""(() => {{
        const element = document.getElementById('filter-search');
        element.value = {json.dumps(text)};
        element.dispatchEvent(new Event('input'));
    }})()""")


def _reset(browser: DevTools) -> None:
    for element_id in ("filter-benchmark", "filter-subset", "filter-outcome"):
        _choose(browser, element_id, "")
    _choose(browser, "page-size", str(PAGE_SIZE))
    _type(browser, "")


def test_page_loads_without_errors(report_page: tuple[DevTools, float]) -> None:
    browser, load_s = report_page

    assert browser.evaluate("document.characterSet") == "UTF-8"
    assert browser.evaluate("document.querySelectorAll('#samples > tbody > tr').length") == 5000
    assert browser.evaluate(VISIBLE_ROWS) == PAGE_SIZE
    assert browser.evaluate(STATUS) == ("Rows 1 to 50 of 5000 matching (5000 samples), "
                                        "page 1 of 100.")
    assert browser.evaluate("typeof window.injected") == "undefined"
    assert browser.evaluate("document.querySelectorAll('svg.chart g.subset-bar').length") == 7
    assert browser.errors() == []
    assert load_s < 20, f"report.html with 5,000 samples took {load_s:.1f} s to load"


def test_outcome_filter_and_search(report_page: tuple[DevTools, float]) -> None:
    browser, _ = report_page
    errors = sum(_outcome(index) == "error" for index in range(SAMPLE_COUNT))
    _reset(browser)
    _choose(browser, "filter-outcome", "error")

    assert browser.evaluate(STATUS).startswith(f"Rows 1 to 50 of {errors} matching")
    assert browser.evaluate(
        "[...document.querySelectorAll('#samples > tbody > tr:not([hidden])')]"
        ".every(row => row.dataset.outcome === 'error')") is True

    _type(browser, "simple_qa_7 ")  # trailing space is trimmed
    assert browser.evaluate(VISIBLE_ROWS) == 1
    assert browser.evaluate(STATUS) == "Rows 1 to 1 of 1 matching (5000 samples), page 1 of 1."

    _type(browser, "no such sample")
    assert browser.evaluate(VISIBLE_ROWS) == 0
    assert browser.evaluate(STATUS) == "No sample matches (5000 samples)."
    assert browser.errors() == []


def test_benchmark_and_cjk_subset_filter(report_page: tuple[DevTools, float]) -> None:
    browser, _ = report_page
    expected = sum(SUBSETS[index % len(SUBSETS)][1] == "中华文化" for index in range(SAMPLE_COUNT))
    _reset(browser)
    _choose(browser, "filter-benchmark", "chinese_simpleqa")
    offered = browser.evaluate(
        "[...document.getElementById('filter-subset').options]"
        ".filter(option => !option.hidden).map(option => option.value)")
    _choose(browser, "filter-subset", "中华文化")

    assert offered == ["", "中华文化", "自然与自然科学"]
    assert browser.evaluate(STATUS).startswith(f"Rows 1 to 50 of {expected} matching")
    assert browser.evaluate(
        "document.querySelector('#samples > tbody > tr:not([hidden]) td:nth-child(2)').textContent"
    ) == "中华文化"
    assert browser.errors() == []


def test_paging_and_expanding(report_page: tuple[DevTools, float]) -> None:
    browser, _ = report_page
    first_id = "document.querySelector('#samples > tbody > tr:not([hidden]) td:nth-child(3)')" \
               ".textContent"
    _reset(browser)
    browser.evaluate("document.getElementById('page-next').click()")

    assert browser.evaluate(first_id) == _sample(PAGE_SIZE)["sample_id"]
    assert browser.evaluate(STATUS).endswith("page 2 of 100.")
    _choose(browser, "page-size", "500")
    assert browser.evaluate(VISIBLE_ROWS) == 500

    started = time.monotonic()
    opened = browser.evaluate("""(() => {
        const row = document.querySelector('#samples > tbody > tr:not([hidden])');
        const details = row.querySelector('details:nth-of-type(2)');
        details.open = true;
        const pre = details.querySelector('pre');
        return {open: details.open, height: pre.offsetHeight, text: pre.textContent};
    })()""")
    assert time.monotonic() - started < 5
    assert opened["open"] is True
    assert opened["height"] > 0
    assert opened["text"] == "think <b>step</b> by step"
    assert browser.evaluate("typeof window.injected") == "undefined"
    assert browser.errors() == []


def test_filter_speed(report_page: tuple[DevTools, float]) -> None:
    browser, _ = report_page
    _reset(browser)
    elapsed_ms = browser.evaluate("""(() => {
        const search = document.getElementById('filter-search');
        const started = performance.now();
        for (const text of ['a', 'an', 'ans', 'answ', 'answer 1']) {
            search.value = text;
            search.dispatchEvent(new Event('input'));
        }
        return performance.now() - started;
    })()""")

    # Five keystrokes over 5,000 rows; 200 ms each would already feel slow.
    assert elapsed_ms < 1000, f"five searches took {elapsed_ms:.0f} ms"


def test_screenshot(report_page: tuple[DevTools, float], tmp_path: Path) -> None:
    browser, _ = report_page
    _reset(browser)
    _choose(browser, "page-size", "25")
    browser.evaluate("document.querySelectorAll('#samples > tbody > tr:not([hidden]) details')"
                     ".forEach((details, index) => { details.open = index < 3; })")
    shot = browser.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                        clip={"x": 0, "y": 0, "width": 1400, "height": 3000, "scale": 1})
    path = tmp_path / "report.png"
    path.write_bytes(base64.b64decode(shot["data"]))

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert browser.errors() == []
    target = os.environ.get("MODELEVAL_SCREENSHOT")
    if target:
        shutil.copyfile(path, target)
