"""The response cache: keys, durability across processes, and reruns that send nothing twice."""

from __future__ import annotations

import dataclasses
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_modeleval.cache import CACHE_FILE, ResponseCache, cache_key
from pytest_modeleval.client import ChatClient, Endpoint
from pytest_modeleval.options import GenerationSettings
from tests.bfcl_oracle import build_oracle
from tests.plugin_helpers import add_bfcl_module, load_results, run_args
from tests.scripted_server import Reply, ScriptedServer

MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]
TOOLS_A = [{"type": "function", "function": {"name": "add", "parameters": {}}}]
TOOLS_B = [{"type": "function", "function": {"name": "sum", "parameters": {}}}]


def stored_rows(folder: Path) -> int:
    with sqlite3.connect(folder / CACHE_FILE) as connection:
        return connection.execute("SELECT COUNT(*) FROM replies").fetchone()[0]


def make_client(server: ScriptedServer, folder: Path, **changes: Any) -> ChatClient:
    endpoint = Endpoint(changes.pop("model", "scripted"), server.url, "MODELEVAL_UNSET_KEY")
    return ChatClient(endpoint, cache=ResponseCache(folder), **changes)


def test_cache_put_get_round_trip(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    cache.put("k", {"content": "四", "tool_calls": []})

    assert cache.get("k") == {"content": "四", "tool_calls": []}
    assert cache.get("other") is None
    mode = sqlite3.connect(tmp_path / CACHE_FILE).execute("PRAGMA journal_mode").fetchone()
    assert mode == ("wal",)


def test_cache_key_separates_what_shapes_reply() -> None:
    base = {"base_url": "http://127.0.0.1:1/v1", "model": "m", "messages": MESSAGES,
            "tools": TOOLS_A, "request": {"temperature": 0.7}, "scope": {"repeat": 0}}
    variants = [
        {**base, "tools": TOOLS_B},
        {**base, "scope": {"repeat": 1}},
        {**base, "request": {"temperature": 0.0}},
        {**base, "model": "m2"},
        {**base, "base_url": "http://127.0.0.1:2/v1"},
        {**base, "messages": [{"role": "user", "content": "What is 2 + 3?"}]},
    ]

    keys = {cache_key(variant) for variant in variants}

    assert len(keys) == len(variants)
    assert cache_key(base) not in keys
    assert cache_key(dict(reversed(list(base.items())))) == cache_key(base)


def test_client_reuses_cached_reply(scripted_server: ScriptedServer, tmp_path: Path) -> None:
    scripted_server.script = lambda body, attempt: Reply(content=f"reply {len(body['tools'])}")
    client = make_client(scripted_server, tmp_path)

    first = client.chat(MESSAGES, TOOLS_A)
    again = client.chat(MESSAGES, TOOLS_A)
    other_tools = client.chat(MESSAGES, TOOLS_B)

    assert len(scripted_server.requests) == 2
    assert (first.cached, again.cached, other_tools.cached) == (False, True, False)
    assert again.content == first.content == "reply 1"
    assert again.prompt_tokens == first.prompt_tokens


def test_client_cache_separates_repeats_and_settings(scripted_server: ScriptedServer,
                                                     tmp_path: Path) -> None:
    hot = make_client(scripted_server, tmp_path, gen=GenerationSettings({"temperature": 1.0}))
    cold = make_client(scripted_server, tmp_path, gen=GenerationSettings({"temperature": 0.0}))

    hot.chat(MESSAGES, scope={"repeat": 0})
    hot.chat(MESSAGES, scope={"repeat": 1})
    cold.chat(MESSAGES, scope={"repeat": 0})
    hot.chat(MESSAGES, scope={"repeat": 1})

    assert len(scripted_server.requests) == 3
    assert stored_rows(tmp_path) == 3


def test_cache_shared_by_threads_and_processes(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    threads = [threading.Thread(target=lambda i=i: [cache.put(f"t{i}-{n}", {"n": n})
                                                     for n in range(50)]) for i in range(4)]
    for thread in threads:
        thread.start()
    script = ("import sys; from pathlib import Path; from pytest_modeleval.cache import "
              "ResponseCache; c = ResponseCache(Path(sys.argv[1]));"
              "[c.put(f'p-{n}', {'n': n}) for n in range(50)]")
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True)
    for thread in threads:
        thread.join()

    assert stored_rows(tmp_path) == 250
    assert ResponseCache(tmp_path).get("p-49") == {"n": 49}


def test_rerun_sends_no_request(pytester: pytest.Pytester) -> None:
    oracle = build_oracle("fc", subsets=("simple",), limit=6)
    add_bfcl_module(pytester)
    cache_dir = pytester.path / "cache"
    args = ["-k", "simple_python", "--limit", "6", f"--cache-dir={cache_dir}"]

    with ScriptedServer(oracle.script) as server:
        pytester.runpytest(*run_args(server.url, pytester.path / "first", *args))
        sent_first = len(server.requests)
        rerun = pytester.runpytest(*run_args(server.url, pytester.path / "second", *args))
        sent_again = len(server.requests) - sent_first
        pytester.runpytest(*run_args(server.url, pytester.path / "third", *args, "--no-cache"))
        sent_without_cache = len(server.requests) - sent_first - sent_again

    assert (sent_first, sent_again, sent_without_cache) == (6, 0, 6)
    rerun.assert_outcomes(passed=6)
    first, second = (load_results(pytester.path / name) for name in ("first", "second"))
    assert [s["outcome"] for s in second["samples"]] == [s["outcome"] for s in first["samples"]]
    assert second["config"]["cache_dir"] == str(cache_dir)


def test_multi_turn_rerun_sends_no_request(pytester: pytest.Pytester) -> None:
    from tests.bfcl_multi_turn_oracle import build_multi_turn_oracle

    oracle = build_multi_turn_oracle("fc", subsets=("multi_turn_base",), limit=2)
    add_bfcl_module(pytester)
    args = ["-k", "multi_turn_base", "--limit", "2", f"--cache-dir={pytester.path / 'c'}"]

    with ScriptedServer(oracle.script) as server:
        pytester.runpytest(*run_args(server.url, pytester.path / "first", *args))
        sent_first = len(server.requests)
        rerun = pytester.runpytest(*run_args(server.url, pytester.path / "second", *args))

    assert sent_first > 4
    assert len(server.requests) == sent_first
    rerun.assert_outcomes(passed=2)


def test_kill_9_rerun_sends_only_unfinished(pytester: pytest.Pytester) -> None:
    samples = 40
    oracle = build_oracle("fc", subsets=("simple",), limit=samples)
    add_bfcl_module(pytester)
    cache_dir = pytester.path / "cache"
    args = ["-k", "simple_python", "--limit", str(samples), "--concurrency", "4",
            f"--cache-dir={cache_dir}"]

    def slow(body: dict[str, Any], attempt: int) -> Reply:
        return dataclasses.replace(oracle.script(body, attempt), delay=0.05)

    with ScriptedServer(slow) as server:
        command = [sys.executable, "-m", "pytest",
                   *run_args(server.url, pytester.path / "killed", *args)]
        process = subprocess.Popen(command, cwd=pytester.path, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(server.requests) < samples // 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        finished = stored_rows(cache_dir)
        sent_before_kill = len(server.requests)
        rerun = pytester.runpytest_subprocess(*run_args(server.url, pytester.path / "rerun",
                                                        *args))
        sent_on_rerun = len(server.requests) - sent_before_kill
        clean = pytester.runpytest_subprocess(*run_args(server.url, pytester.path / "clean",
                                                        *args, "--no-cache"))

    assert 0 < finished < samples
    assert sent_on_rerun == samples - finished
    assert rerun.ret == clean.ret
    outcomes = {name: {s["sample_id"]: s["outcome"]
                       for s in load_results(pytester.path / name)["samples"]}
                for name in ("rerun", "clean")}
    assert len(outcomes["rerun"]) == samples
    assert outcomes["rerun"] == outcomes["clean"]


def test_call_ids_do_not_split_keys(scripted_server: ScriptedServer, tmp_path: Path) -> None:
    client = make_client(scripted_server, tmp_path)

    def history(call_id: str) -> list[dict[str, Any]]:
        call = {"id": call_id, "type": "function", "function": {"name": "add", "arguments": "{}"}}
        return [*MESSAGES, {"role": "assistant", "content": "", "tool_calls": [call]},
                {"role": "tool", "content": "4", "tool_call_id": call_id}]

    client.chat(history("call_17"), TOOLS_A)
    again = client.chat(history("chatcmpl-tool-9f2"), TOOLS_A)

    assert again.cached
    assert len(scripted_server.requests) == 1
