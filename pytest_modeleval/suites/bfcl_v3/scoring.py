"""Grade a single-turn BFCL reply with bfcl-eval's AST checker and relevance rule."""

from __future__ import annotations

import json
from typing import Any

from ...client import ChatReply
from .. import Grade
from ._bfcl import CHECKER_MODEL_NAME, load_bfcl
from .data import FILE_STEMS, RELEVANCE_SUBSETS, BfclCase
from .decode import DecodeError, decode_prompt_reply, decode_tool_calls
from .requests import BfclRequest

MAX_EXPLANATION = 600


def grade_reply(subset: str, case: BfclCase, request: BfclRequest, reply: ChatReply,
                mode: str) -> Grade:
    """Grade one reply: relevance subsets by whether a call decodes, others by the checker."""
    try:
        calls = _decode(subset, request, reply, mode)
    except DecodeError as error:
        calls, decode_error = None, str(error)
    else:
        decode_error = ""
    if subset in RELEVANCE_SUBSETS:
        return _grade_relevance(subset, calls, decode_error)
    if calls is None:
        return _wrong(f"Invalid syntax. Failed to decode AST. {decode_error}", reply)
    return _grade_ast(subset, case, calls, reply)


def _decode(subset: str, request: BfclRequest, reply: ChatReply, mode: str
            ) -> list[dict[str, Any]]:
    bfcl = load_bfcl()
    if mode == "fc":
        calls = decode_tool_calls([(call.name, call.arguments) for call in reply.tool_calls])
    elif subset in RELEVANCE_SUBSETS:
        # bfcl-eval decodes relevance replies as Python whatever the language.
        calls = decode_prompt_reply(reply.content, bfcl.ReturnFormat.PYTHON)
    else:
        calls = decode_prompt_reply(reply.content, _return_format(subset))
    return [_restore_names(call, request) for call in calls]


def _restore_names(call: Any, request: BfclRequest) -> Any:
    if not isinstance(call, dict):
        return call
    return {request.original_name(name): params for name, params in call.items()}


def _grade_relevance(subset: str, calls: list[dict[str, Any]] | None, decode_error: str
                     ) -> Grade:
    bfcl = load_bfcl()
    has_call = calls is not None and not bfcl.is_empty_output(calls)
    if subset == "live_relevance":
        if has_call:
            return Grade("correct", 1.0, "")
        return Grade("wrong", 0.0,
                     clip_explanation(f"expected a function call, got none. {decode_error}"))
    if not has_call:
        return Grade("correct", 1.0, "")
    return Grade("wrong", 0.0,
                 clip_explanation(f"expected no function call, got {_format_calls(calls)}"))


def _grade_ast(subset: str, case: BfclCase, calls: list[dict[str, Any]], reply: ChatReply
               ) -> Grade:
    bfcl = load_bfcl()
    if not bfcl.is_function_calling_format_output(calls):
        return _wrong("Did not output in the specified format.", reply)
    result = bfcl.ast_checker(
        case.entry["function"], calls, case.possible_answer, _language(subset),
        FILE_STEMS[subset], CHECKER_MODEL_NAME,
    )
    if result["valid"]:
        return Grade("correct", 1.0, "")
    errors = result.get("error") or []
    message = "; ".join(str(error) for error in errors) or result.get("error_type", "invalid")
    return Grade("wrong", 0.0, clip_explanation(f"{message} | calls: {_format_calls(calls)}"))


def _wrong(message: str, reply: ChatReply) -> Grade:
    got = (f"calls: {_format_calls([{c.name: c.arguments} for c in reply.tool_calls])}"
           if reply.tool_calls else f"text: {reply.content!r}")
    return Grade("wrong", 0.0, clip_explanation(f"{message} | {got}"))


def _format_calls(calls: Any) -> str:
    try:
        return json.dumps(calls, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(calls)


def _language(subset: str) -> Any:
    languages = load_bfcl().Language
    return {"java": languages.JAVA, "javascript": languages.JAVASCRIPT}.get(subset,
                                                                            languages.PYTHON)


def _return_format(subset: str) -> Any:
    formats = load_bfcl().ReturnFormat
    return {"java": formats.JAVA, "javascript": formats.JAVASCRIPT}.get(subset, formats.PYTHON)


def clip_explanation(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_EXPLANATION else text[: MAX_EXPLANATION - 3] + "..."
