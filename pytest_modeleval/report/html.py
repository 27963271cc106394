"""Self-contained HTML report with run details, scores, gates, baseline and every sample."""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_modeleval.report.chart import build_chart
from pytest_modeleval.report.comparison import (
    BASELINE_COLUMNS,
    BASELINE_RIGHT_ALIGNED,
    FLIP_COLUMNS,
    GATE_COLUMNS,
    baseline_line,
    baseline_of,
    baseline_rows,
    baseline_warnings,
    flip_reply,
    flip_row,
    flips,
    gate_rows,
    score_table,
)
from pytest_modeleval.report.markdown import (
        format_bound,
    redact_url,
    threshold_result,
    url_host,
)
from pytest_modeleval.report.table import (
    INTERRUPTED_NOTE,
    MISSING,
    RIGHT_ALIGNED_COLUMNS,
    as_dict,
    dict_items,
    format_count,
    format_score,
    format_text,
    is_number,
    model_name,
    partial_rollup_notes,
)

if TYPE_CHECKING:
    import jinja2

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "report.html.j2"
# Outcomes the stylesheet has a class for. Other values are shown but not styled.
KNOWN_OUTCOMES = frozenset({"correct", "wrong", "error", "unscored"})
TOTALS_FIELDS = (
    ("Samples", "samples"),
    ("Correct", "correct"),
    ("Wrong", "wrong"),
    ("Errors", "errors"),
    ("Unscored", "unscored"),
    ("Prompt tokens", "prompt_tokens"),
    ("Completion tokens", "completion_tokens"),
)


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    # Imported here so that importing the report package does not load Jinja2.
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(document: dict[str, Any]) -> str:
    """Render the results document as one HTML page with no external resources.

    Every string from the document is autoescaped by Jinja2.
    """
    return "".join(render_html_chunks(document))


def render_html_chunks(document: dict[str, Any]) -> Iterator[str]:
    """Render the page as a stream of pieces, for writing without holding it all."""
    template = _environment().get_template(TEMPLATE_NAME)
    return template.generate(_context(document))


def _context(document: dict[str, Any]) -> dict[str, Any]:
    config = as_dict(document.get("config"))
    samples = [_sample(item) for item in dict_items(document.get("samples"))]
    return {
        "model": model_name(document),
        "interrupted": INTERRUPTED_NOTE if document.get("interrupted") else "",
        "base_url": _config_value(config.get("base_url")),
        "host": format_text(url_host(config.get("base_url"))),
        "created_at": format_text(document.get("created_at")),
        "config": [(str(key), _config_value(value)) for key, value in config.items()],
        "versions": [(str(name), format_text(version))
                     for name, version in as_dict(document.get("versions")).items()],
        "totals": _totals(as_dict(document.get("totals"))),
        **_scores(document),
        "chart": build_chart(document),
        "partial_notes": partial_rollup_notes(document),
        "thresholds": [_threshold(item) for item in dict_items(document.get("thresholds"))],
        "gate_columns": GATE_COLUMNS,
        "gates": gate_rows(document),
        "baseline": _baseline(document),
        "samples": samples,
        "filters": _filters(samples),
    }


def _scores(document: dict[str, Any]) -> dict[str, Any]:
    columns, subsets, rollups = score_table(document)
    return {
        "columns": columns,
        "right_aligned": [column in RIGHT_ALIGNED_COLUMNS for column in columns],
        "subset_rows": subsets,
        "rollup_rows": rollups,
    }


def _baseline(document: dict[str, Any]) -> dict[str, Any] | None:
    baseline = baseline_of(document)
    if baseline is None:
        return None
    return {
        "line": baseline_line(baseline),
        "warnings": baseline_warnings(baseline),
        "columns": BASELINE_COLUMNS,
        "right_aligned": [column in BASELINE_RIGHT_ALIGNED for column in BASELINE_COLUMNS],
        "rows": baseline_rows(baseline),
        "flip_columns": FLIP_COLUMNS,
        "flips": [{"cells": flip_row(flip),
                   "baseline_reply": flip_reply(flip.get("baseline_reply")),
                   "current_reply": flip_reply(flip.get("current_reply"))}
                  for flip in flips(baseline)],
    }


def _filters(samples: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """List the distinct benchmarks, (benchmark, subset) pairs and outcomes, in sample order."""
    return {
        "benchmarks": list(dict.fromkeys(sample["benchmark"] for sample in samples)),
        "subsets": list(dict.fromkeys((sample["benchmark"], sample["subset"])
                                      for sample in samples)),
        "outcomes": list(dict.fromkeys(sample["outcome"] for sample in samples)),
    }


def _config_value(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, str):
        return redact_url(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _seconds(value: Any, digits: int) -> str:
    return f"{value:.{digits}f}" if is_number(value) else MISSING


def _totals(totals: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [(label, format_count(totals.get(key))) for label, key in TOTALS_FIELDS]
    rows.append(("Mean latency (s)", _seconds(totals.get("mean_latency_s"), 3)))
    rows.append(("Wall time (s)", _seconds(totals.get("wall_s"), 1)))
    return rows


def _threshold(threshold: dict[str, Any]) -> dict[str, str]:
    result = threshold_result(threshold)
    return {
        "expression": format_text(threshold.get("expression")),
        "value": format_score(threshold.get("value")),
        "bound": format_bound(threshold.get("op"), threshold.get("bound")),
        "result": result,
        "result_class": {"PASS": "pass", "FAIL": "fail"}.get(result, ""),
    }


def _sample(sample: dict[str, Any]) -> dict[str, Any]:
    outcome = format_text(sample.get("outcome"))
    prompt_tokens = format_count(sample.get("prompt_tokens"))
    completion_tokens = format_count(sample.get("completion_tokens"))
    return {
        "benchmark": format_text(sample.get("benchmark")),
        "subset": format_text(sample.get("subset")),
        "sample_id": format_text(sample.get("sample_id")),
        "repeat": format_count(sample.get("repeat")),
        "outcome": outcome,
        "outcome_class": outcome if outcome in KNOWN_OUTCOMES else "other",
        "score": format_score(sample.get("score")),
        "latency": _seconds(sample.get("latency_s"), 2),
        "tokens": f"{prompt_tokens} / {completion_tokens}",
        "explanation": format_text(sample.get("explanation")),
        "reply": _reply(sample.get("reply")),
        "transcript": _transcript(sample.get("transcript")),
        "request": _request(sample.get("request")),
        "details": [(str(key), _text(value)) for key, value in as_dict(sample.get("details"))
                    .items()],
    }


def _reply(reply: Any) -> dict[str, Any] | None:
    if not isinstance(reply, dict):
        return None
    content = reply.get("content")
    reasoning = reply.get("reasoning_content")
    return {
        "content": content if isinstance(content, str) and content else None,
        "reasoning": reasoning if isinstance(reasoning, str) and reasoning else None,
        "tool_calls": [_tool_call(call) for call in dict_items(reply.get("tool_calls"))],
    }


def _request(request: Any) -> dict[str, Any] | None:
    """Prepare the prompt messages and tool names a sample sent, or None when not recorded."""
    if not isinstance(request, dict):
        return None
    tools = request.get("tools")
    return {
        "messages": [_message(message) for message in dict_items(request.get("messages"))],
        "tools": [_text(tool) for tool in tools] if isinstance(tools, list) else [],
    }


def _tool_call(call: dict[str, Any]) -> dict[str, str]:
    # Accept the OpenAI wire shape {"function": {"name", "arguments"}} as well as the flat one.
    function = call.get("function")
    if isinstance(function, dict):
        call = function
    return {"name": format_text(call.get("name")), "arguments": _arguments(call.get("arguments"))}


def _arguments(arguments: Any) -> str:
    """Pretty-print tool-call arguments, keeping strings that are not valid JSON as they are."""
    if arguments is None:
        return MISSING
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return arguments
    return json.dumps(arguments, ensure_ascii=False, indent=2, default=str)


def _transcript(transcript: Any) -> list[dict[str, Any]] | None:
    """Prepare the turns of a multi-turn sample, or None when no turn is readable."""
    turns = [_turn(turn) for turn in dict_items(transcript)]
    return turns or None


def _turn(turn: dict[str, Any]) -> dict[str, Any]:
    return {
        "query": [_message(message) for message in dict_items(turn.get("query"))],
        "steps": [_step(step) for step in dict_items(turn.get("steps"))],
    }


def _message(message: dict[str, Any]) -> dict[str, str]:
    return {"role": format_text(message.get("role")), "content": _text(message.get("content"))}


def _step(step: dict[str, Any]) -> dict[str, Any]:
    reply = _reply(step.get("reply")) or {"content": None, "reasoning": None, "tool_calls": []}
    calls = _texts(step.get("calls"))
    results = _texts(step.get("results"))
    decode_error = step.get("decode_error")
    prompt_tokens = format_count(step.get("prompt_tokens"))
    completion_tokens = format_count(step.get("completion_tokens"))
    # Decoded calls restate the tool calls they came from, so the raw tool calls are shown
    # only when decoding produced no call.
    tool_calls = [] if calls else reply["tool_calls"]
    return {
        "reasoning": reply["reasoning"],
        "content": reply["content"],
        "tool_calls": tool_calls,
        "calls": list(itertools.zip_longest(calls, results, fillvalue=MISSING)),
        "decode_error": _text(decode_error) if decode_error else None,
        "latency": _seconds(step.get("latency_s"), 2),
        "tokens": f"{prompt_tokens} / {completion_tokens}",
        "finish_reason": format_text(as_dict(step.get("reply")).get("finish_reason")),
    }


def _texts(values: Any) -> list[str]:
    if not isinstance(values, list):
        return []
    return [_text(value) for value in values]


def _text(value: Any) -> str:
    """Format a transcript value: a string as it is, None as "-", any other value as JSON."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)
