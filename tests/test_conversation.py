"""Conversation details: transcript bounds, failed requests and tool-call ids."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_modeleval.client import ChatClient, ServerError
from pytest_modeleval.suites.bfcl_v3.conversation import MAX_TRANSCRIPT_TEXT, run_conversation
from tests.multi_turn_helpers import multi_turn_case, turn_index
from tests.scripted_server import Fail, Reply, ScriptedServer, ToolCall

# multi_turn_base_0 has four turns over GorillaFileSystem and TwitterAPI.
CASE_ID = "multi_turn_base_0"


def calls_then_answer(calls: tuple[ToolCall, ...]) -> Any:
    """Reply with `calls` as each turn's first step, then end the turn in text."""

    def script(body: dict[str, Any], attempt: int) -> Reply:
        if body["messages"][-1]["role"] == "tool":
            return Reply(content="Done.")
        return Reply(tool_calls=calls)

    return script


def test_transcript_clips_long_text(scripted_server: ScriptedServer,
                                    chat_client: ChatClient) -> None:
    huge = "x" * 50_000
    scripted_server.script = calls_then_answer((ToolCall("cd", json.dumps({"folder": huge})),))

    transcript = run_conversation(multi_turn_case(CASE_ID), chat_client, "fc", True).transcript()

    step = transcript[0]["steps"][0]
    texts = [step["calls"][0], step["reply"]["tool_calls"][0]["arguments"], step["results"][0]]
    assert all(len(text) < MAX_TRANSCRIPT_TEXT + 30 for text in texts)
    assert step["calls"][0].endswith("more]")


def test_server_error_names_turn(scripted_server: ScriptedServer, chat_client: ChatClient) -> None:
    def script(body: dict[str, Any], attempt: int) -> Reply | Fail:
        return Fail(400, "no such model") if turn_index(body) == 2 else Reply(content="Done.")

    scripted_server.script = script

    with pytest.raises(ServerError, match=r"^turn 2: HTTP 400"):
        run_conversation(multi_turn_case(CASE_ID), chat_client, "fc", True)


def test_missing_call_ids_unique(scripted_server: ScriptedServer, chat_client: ChatClient) -> None:
    # No id: the scripted server would make one up, so send an empty one.
    calls = (ToolCall("pwd", "{}", id=""), ToolCall("ls", "{}", id=""))
    scripted_server.script = calls_then_answer(calls)

    run_conversation(multi_turn_case(CASE_ID), chat_client, "fc", True)

    final = scripted_server.requests[-1]["messages"]
    ids = [m["tool_call_id"] for m in final if m["role"] == "tool"]
    assert len(ids) == 2 * 4
    assert len(set(ids)) == len(ids)
