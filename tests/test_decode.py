"""Prompting-mode decoding: hostile reply text never reaches eval()."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_modeleval.suites.bfcl_v3._bfcl import load_bfcl
from pytest_modeleval.suites.bfcl_v3.decode import (
    DecodeError,
    decode_prompt_reply,
    decode_tool_calls,
    make_python_reply_safe,
)
from tests.plugin_helpers import add_bfcl_module, load_results, run_args
from tests.scripted_server import Reply, ScriptedServer

SENTINEL = "modeleval-sentinel.txt"


def hostile_payloads(sentinel: Path) -> list[str]:
    """Calls whose arguments bfcl-eval's decoder would eval() (BinOp or lambda)."""
    path = str(sentinel)
    write = f"__import__('pathlib').Path({path!r}).write_text('x')"
    return [
        f"[f(a={write} + 'x')]",
        f"[f(a='x' + {write})]",
        f"f(a={write} * 1)",
        f"[f(a=lambda: {write})]",
        f"[f(a=(lambda: {write})())]",
        f"[f(a=open({path!r}, 'w').write('x') + 1)]",
        f"[f(a=exec(\"open({path!r},'w').write('x')\") or 1 + 1)]",
        f"[f(a=eval(\"open({path!r},'w')\") + 1)]",
        "[f(a=globals()['__builtins__'] + 1)]",
        f"[f(a=getattr(__import__('os'), 'system')('touch {path}') + 1)]",
        f"[f(a=().__class__.__base__.__subclasses__() + [{write}])]",
        f"[f(a=[x for x in [{write}]] + [])]",
        f"[f(a=f'{{{write}}}' + '')]",
        f"[f(a={{**{{'k': 1}}}} | {{'w': {write}}})]",
        "[f(a=__import__('os').getcwd() + '/x')]",
        f"[f(a=__import__('subprocess').call(['touch', {path!r}]) + 0)]",
        f"[f(a=1 if {write} else 2 + 3)]",
        f"[f(a=({write}, 1) + (2,))]",
        f"[f(a={write} and 1 + 1)]",
        f"[f(a=-{write} + 1)]",
        "[f(a=9**9**9)]",
        "[f(a=2**100000)]",
        f"```\n[f(a={write} + 'x')]\n```",
        f"'[f(a={write} + 1)]'",
    ]


def test_hostile_payloads_never_run(tmp_path: Path) -> None:
    sentinel = tmp_path / SENTINEL
    python = load_bfcl().ReturnFormat.PYTHON
    payloads = hostile_payloads(sentinel)
    assert len(payloads) >= 20
    for payload in payloads:
        with pytest.raises(DecodeError):
            decode_prompt_reply(payload, python)
        assert not sentinel.exists(), payload


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[f(a=1, b='x')]", [{"f": {"a": 1, "b": "x"}}]),
        ("f(a=2*3, b=-1+0.5)", [{"f": {"a": 6, "b": -0.5}}]),
        ("[f(a=10**2, b=7//2, c=7%4, d=1/4)]", [{"f": {"a": 100, "b": 3, "c": 3, "d": 0.25}}]),
        ("[f(s='ab' + 'cd')]", [{"f": {"s": "abcd"}}]),
        ("[m.f(x=[1, -2], y={'k': None})]", [{"m.f": {"x": [1, -2], "y": {"k": None}}}]),
    ],
)
def test_literal_arithmetic_folds(text: str, expected: list) -> None:
    assert decode_prompt_reply(text, load_bfcl().ReturnFormat.PYTHON) == expected


def test_plain_reply_untouched() -> None:
    text = "[get_weather(city='Paris', days=3)]"
    assert make_python_reply_safe(text) == text


def test_division_by_zero_rejected() -> None:
    with pytest.raises(DecodeError, match="cannot compute"):
        decode_prompt_reply("[f(a=1/0)]", load_bfcl().ReturnFormat.PYTHON)


def test_tool_arguments_not_json() -> None:
    with pytest.raises(DecodeError, match="not valid JSON"):
        decode_tool_calls([("f", "{'a': 1}")])
    assert decode_tool_calls([("f", "")]) == [{"f": {}}]


def test_hostile_reply_through_plugin(pytester: pytest.Pytester, tmp_path: Path) -> None:
    sentinel = tmp_path / SENTINEL
    payloads = hostile_payloads(sentinel)

    def reply(body: dict, attempt: int) -> Reply:
        return Reply(content=payloads[len(body["messages"][-1]["content"]) % len(payloads)])

    add_bfcl_module(pytester)
    report_dir = pytester.path / "r"
    with ScriptedServer(reply) as server:
        result = pytester.runpytest(*run_args(server.url, report_dir, "--bfcl-mode", "prompt",
                                              "--limit", "8"))
    assert not sentinel.exists()
    totals = load_results(report_dir)["totals"]
    assert totals["errors"] == 0
    assert totals["samples"] == result.parseoutcomes().get("passed", 0) + \
        result.parseoutcomes().get("failed", 0)


@pytest.mark.parametrize("text", [
    "[ls(a=(((10**100)**100)**100)**100)]",
    "[f(base=(10**100)**100, height=1)]",
    "[f(x=" + "*".join(["(2**60)"] * 80) + ")]",
])
def test_growing_arithmetic_rejected(text: str) -> None:
    # Each step is within the exponent bound, yet the value would grow past
    # what fits in memory or prints; decoding must stop early and cleanly.
    with pytest.raises(DecodeError, match="bits|too large"):
        decode_prompt_reply(text, load_bfcl().ReturnFormat.PYTHON)
