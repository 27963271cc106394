"""Reference replies for BFCL single-turn samples, built from bfcl-eval's own
data, request builders and checker, independently of the plugin's code.

`build_oracle` returns, per sample, the exact request bfcl-eval's OpenAI
handler would send (used as the scripted server's lookup key) and a reply:
the ground-truth calls, or for chosen ids a wrong call or no call.
`expected_accuracy` grades those same replies with bfcl-eval's checker called
directly, which is what the plugin must reproduce.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_modeleval.suites.bfcl_v3._bfcl import load_bfcl
from pytest_modeleval.suites.bfcl_v3.data import (
    FILE_STEMS,
    MULTI_TURN_SUBSETS,
    RELEVANCE_SUBSETS,
    load_subset,
)
from tests import bfcl_multi_turn_oracle as multi_turn
from tests.scripted_server import Reply, ToolCall

Mode = Literal["fc", "prompt"]
SINGLE_TURN_SUBSETS = tuple(s for s in FILE_STEMS if s not in MULTI_TURN_SUBSETS)
Tamper = Literal["wrong", "none"]


@dataclass
class Oracle:
    """Replies by request key, and what each sample's reply should score."""

    replies: dict[str, Reply] = field(default_factory=dict)
    # (subset, sample_id) -> request key; samples with identical requests share one reply.
    keys: dict[tuple[str, str], str] = field(default_factory=dict)

    def script(self, body: dict[str, Any], attempt: int) -> Reply:
        return self.replies.get(request_key(body), Reply(content="no scripted reply"))


@dataclass
class FullOracle:
    """The single-turn and multi-turn oracles behind one script: all 17 subsets."""

    single: Oracle
    multi: multi_turn.MultiTurnOracle

    def script(self, body: dict[str, Any], attempt: int) -> Reply:
        reply = self.multi.script(body, attempt)
        return reply if reply is not None else self.single.script(body, attempt)


def build_full_oracle(mode: Mode, limit: int | None = None
                      ) -> tuple[FullOracle, dict[str, float]]:
    """Oracle replies for every subset, with chosen ids wrong, and the expected accuracy."""
    single = build_oracle(mode, tamper=tamper_every(), limit=limit)
    multi = multi_turn.build_multi_turn_oracle(mode, wrong=multi_turn.wrong_every(), limit=limit)
    expected = {**expected_accuracy(single, mode, limit=limit),
                **multi_turn.expected_accuracy(multi, limit=limit)}
    return FullOracle(single, multi), expected


def request_key(body: dict[str, Any]) -> str:
    names = [tool["function"]["name"] for tool in body.get("tools") or []]
    text = json.dumps({"messages": body["messages"], "tools": names}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def official_request(entry: dict[str, Any], mode: Mode) -> dict[str, Any]:
    """Build the request as bfcl-eval's OpenAICompletionsHandler does."""
    bfcl = load_bfcl()
    entry = copy.deepcopy(entry)
    functions = bfcl.add_language_hint([entry])[0]["function"]
    messages = copy.deepcopy(entry["question"][0])
    if mode == "prompt":
        return {"messages": bfcl.system_prompt(messages, functions, entry["id"])}
    tools = bfcl.convert_to_tool(functions, bfcl.GORILLA_TO_OPENAPI,
                                 bfcl.ModelStyle.OPENAI_COMPLETIONS)
    return {"messages": messages, "tools": tools}


def build_oracle(mode: Mode, subsets: tuple[str, ...] = SINGLE_TURN_SUBSETS,
                 tamper: dict[str, Tamper] | None = None, limit: int | None = None) -> Oracle:
    tamper = tamper or {}
    oracle = Oracle()
    for subset in subsets:
        for case in load_subset(subset, limit):
            sample_id = case.entry["id"]
            calls = _reference_calls(subset, case)
            if tamper.get(sample_id) == "none":
                calls = []
            elif tamper.get(sample_id) == "wrong":
                calls = _wrong_calls(subset, case, calls)
            key = request_key(official_request(case.entry, mode))
            oracle.keys[(subset, sample_id)] = key
            oracle.replies[key] = _render(calls, mode, subset)
    return oracle


def tamper_every(step_wrong: int = 37, step_none: int = 41,
                 subsets: tuple[str, ...] = SINGLE_TURN_SUBSETS) -> dict[str, Tamper]:
    """Choose ids spread over every subset: every n-th sample gets a wrong call or none."""
    chosen: dict[str, Tamper] = {}
    for subset in subsets:
        for index, case in enumerate(load_subset(subset, None)):
            if index % step_wrong == 1:
                chosen[case.entry["id"]] = "wrong"
            elif index % step_none == 2:
                chosen[case.entry["id"]] = "none"
    return chosen


def expected_accuracy(oracle: Oracle, mode: Mode, subsets: tuple[str, ...] = SINGLE_TURN_SUBSETS,
                      limit: int | None = None) -> dict[str, float]:
    """Grade the oracle's replies with bfcl-eval's decoder and checker, per subset."""
    scores = {}
    for subset in subsets:
        cases = load_subset(subset, limit)
        correct = sum(_official_grade(subset, case, oracle.replies[oracle.keys[(subset,
                      case.entry["id"])]], mode) for case in cases)
        scores[subset] = correct / len(cases)
    return scores


def _reference_calls(subset: str, case: Any) -> list[tuple[str, dict[str, Any]]]:
    if subset in ("irrelevance", "live_irrelevance"):
        return []
    if subset == "live_relevance":
        return [(case.entry["function"][0]["name"], {})]
    calls = []
    for answer in case.possible_answer:
        for name, params in answer.items():
            calls.append((name, {key: _first_value(values) for key, values in params.items()
                                 if _first_value(values) != ""}))
    return calls


def _first_value(values: Any) -> Any:
    if isinstance(values, list) and values:
        first = values[0]
        if isinstance(first, dict):
            return {key: _first_value(inner) for key, inner in first.items()}
        return first
    return values


def _wrong_calls(subset: str, case: Any, calls: list[tuple[str, dict[str, Any]]]
                 ) -> list[tuple[str, dict[str, Any]]]:
    if subset in ("irrelevance", "live_irrelevance"):
        return [(case.entry["function"][0]["name"], {})]
    if subset == "live_relevance":
        return []
    return [_break_call(calls[0])] + calls[1:]


def _break_call(call: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    name, params = call
    if not params:
        return name + "_unknown", params
    key = next(iter(params))
    return name, {**params, key: "__definitely_wrong__"}


def _render(calls: list[tuple[str, dict[str, Any]]], mode: Mode, subset: str) -> Reply:
    if not calls:
        return Reply(content="I cannot help with that using the given functions.")
    if mode == "fc":
        return Reply(tool_calls=tuple(
            ToolCall(name.replace(".", "_"), json.dumps(params)) for name, params in calls))
    if subset in ("java", "javascript"):
        text = ", ".join(f"{name}({_c_like_args(params)})" for name, params in calls)
    else:
        text = ", ".join(f"{name}({', '.join(f'{k}={v!r}' for k, v in params.items())})"
                         for name, params in calls)
    return Reply(content=f"[{text}]")


def _c_like_args(params: dict[str, Any]) -> str:
    # Java and JavaScript ground-truth values are source text; booleans are written bare.
    parts = []
    for key, value in params.items():
        if isinstance(value, bool):
            parts.append(f"{key}={str(value).lower()}")
        elif isinstance(value, str):
            parts.append(f"{key}={json.dumps(value)}")
        else:
            parts.append(f"{key}={json.dumps(value)}")
    return ", ".join(parts)


def _official_grade(subset: str, case: Any, reply: Reply, mode: Mode) -> bool:
    bfcl = load_bfcl()
    language, return_format = {
        "java": (bfcl.Language.JAVA, bfcl.ReturnFormat.JAVA),
        "javascript": (bfcl.Language.JAVASCRIPT, bfcl.ReturnFormat.JAVASCRIPT),
    }.get(subset, (bfcl.Language.PYTHON, bfcl.ReturnFormat.PYTHON))
    if subset in RELEVANCE_SUBSETS:
        return_format = bfcl.ReturnFormat.PYTHON
    try:
        decoded = _official_decode(reply, mode, return_format)
    except Exception:  # noqa: BLE001 - bfcl-eval's runner treats any failure as "no call"
        decoded = None
    if subset in RELEVANCE_SUBSETS:
        has_call = decoded is not None and not bfcl.is_empty_output(decoded)
        return has_call if subset == "live_relevance" else not has_call
    if decoded is None or not bfcl.is_function_calling_format_output(decoded):
        return False
    # The checker compares original names, because the plugin maps tool names back.
    functions = case.entry["function"]
    names = {f["name"].replace(".", "_"): f["name"] for f in functions}
    decoded = [{names.get(n, n): p for n, p in call.items()} for call in decoded]
    result = bfcl.ast_checker(functions, decoded, case.possible_answer, language,
                              FILE_STEMS[subset], "pytest-modeleval")
    return bool(result["valid"])


def _official_decode(reply: Reply, mode: Mode, return_format: Any) -> list[dict[str, Any]]:
    bfcl = load_bfcl()
    if mode == "fc":
        if not reply.tool_calls:
            raise ValueError("no tool call")
        return [{call.name: json.loads(call.arguments)} for call in reply.tool_calls]
    return bfcl.decode_prompting(reply.content, return_format, has_tool_call_tag=False)
