"""Decode a model reply into BFCL calls without evaluating model text.

bfcl-eval's prompting decoder calls `eval()` on two kinds of argument
expressions: arithmetic (`ast.BinOp`) and lambdas, so a reply such as
`[f(x=__import__('os').getcwd() + 'x')]` would run on this machine. Before a
reply reaches that decoder it is parsed here with `ast`, exactly as the
decoder will parse it. Arithmetic on plain numbers is folded into a literal
with the value eval would produce. Any other BinOp and every lambda is
rejected as a decoding failure.
"""

from __future__ import annotations

import ast
import json
import operator
from typing import Any, Callable

from ._bfcl import load_bfcl

# Bounds that keep folded arithmetic cheap: 10**100 is fine, 9**9**9 is not,
# and neither is (10**100)**100**... built up one bounded step at a time.
MAX_POWER_EXPONENT = 100
MAX_FOLDED_BITS = 4_096
MAX_FOLDED_STRING = 10_000

_FOLDABLE: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}


class DecodeError(Exception):
    """The reply contains no call in the expected format."""


def decode_tool_calls(calls: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Decode native tool calls as bfcl-eval's OpenAI handler does: JSON arguments."""
    if not calls:
        raise DecodeError("the reply has no tool call")
    decoded = []
    for name, arguments in calls:
        try:
            params = json.loads(arguments) if arguments.strip() else {}
        except ValueError as error:
            raise DecodeError(f"arguments of {name} are not valid JSON: {error}") from None
        decoded.append({name: params})
    return decoded


def decode_prompt_reply(text: str | None, return_format: Any) -> list[dict[str, Any]]:
    """Decode calls written in text with bfcl-eval's decoder, after the safety pass."""
    if not text or not text.strip():
        raise DecodeError("the reply is empty")
    bfcl = load_bfcl()
    try:
        if return_format == bfcl.ReturnFormat.PYTHON:
            text = make_python_reply_safe(text)
        return bfcl.decode_prompting(text, return_format, has_tool_call_tag=False)
    except DecodeError:
        raise
    except Exception as error:  # noqa: BLE001 - any decoder failure means "no valid call"
        raise DecodeError(f"{type(error).__name__}: {error}") from None


def make_python_reply_safe(text: str) -> str:
    """Return text whose parse tree has no node bfcl-eval would pass to eval()."""
    cleaned = _normalise_like_bfcl(text)
    try:
        tree = ast.parse(cleaned, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return text  # bfcl-eval's decoder fails on the same string without eval
    if not any(isinstance(node, (ast.BinOp, ast.Lambda)) for node in ast.walk(tree)):
        return text
    try:
        return ast.unparse(_ArithmeticFolder().visit(tree))
    except (ValueError, RecursionError, MemoryError) as error:
        raise DecodeError(f"cannot rewrite the reply: {type(error).__name__}") from None


def _normalise_like_bfcl(text: str) -> str:
    # Mirrors default_decode_ast_prompting and ast_parse in bfcl-eval 2026.3.23.
    text = text.strip("`\n ")
    if not text.startswith("["):
        text = "[" + text
    if not text.endswith("]"):
        text = text + "]"
    return text.strip().strip("'")


class _ArithmeticFolder(ast.NodeTransformer):
    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        raise DecodeError("a lambda is not allowed as an argument value")

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        left = _number_or_text(self.visit(node.left))
        right = _number_or_text(self.visit(node.right))
        fold = _FOLDABLE.get(type(node.op))
        if fold is None or left is None or right is None:
            raise DecodeError(f"expression not allowed as an argument value: {ast.unparse(node)}")
        _check_operands(node.op, left, right)
        try:
            value = fold(left, right)
        except (ArithmeticError, TypeError, ValueError) as error:
            raise DecodeError(f"cannot compute {ast.unparse(node)}: {error}") from None
        if isinstance(value, str) and len(value) > MAX_FOLDED_STRING:
            raise DecodeError("folded string argument is too long")
        if isinstance(value, int) and value.bit_length() > MAX_FOLDED_BITS:
            raise DecodeError(f"folded number {ast.unparse(node)} has more than "
                              f"{MAX_FOLDED_BITS} bits")
        return ast.copy_location(ast.Constant(value), node)


def _number_or_text(node: ast.AST) -> Any:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _number_or_text(node.operand)
        if isinstance(inner, (int, float)) and not isinstance(inner, bool):
            return -inner if isinstance(node.op, ast.USub) else inner
        return None
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, str):
        return node.value
    return None


def _check_operands(op: ast.operator, left: Any, right: Any) -> None:
    if isinstance(left, str) or isinstance(right, str):
        if not (isinstance(op, ast.Add) and isinstance(left, str) and isinstance(right, str)):
            raise DecodeError("only + joins text in an argument value")
    elif isinstance(op, ast.Pow) and abs(right) > MAX_POWER_EXPONENT:
        raise DecodeError(f"exponent {right} is larger than {MAX_POWER_EXPONENT}")
    elif (isinstance(op, ast.Pow) and isinstance(left, int)
          and left.bit_length() * abs(right) > MAX_FOLDED_BITS):
        raise DecodeError(f"{left.bit_length()}-bit number to the power {right} is too large")
