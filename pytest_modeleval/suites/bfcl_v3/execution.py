"""Run model-written calls on BFCL's simulated APIs without evaluating model text.

bfcl-eval's executor prefixes each call string with an instance name and
passes it to `eval()`, so a reply such as
`__import__('pathlib').Path('x').write_text('x')` runs on this machine. Here a
call is parsed with `ast` and accepted only when it is one call of a public
method of the sample's simulated classes with literal arguments. Its values
are built from the parse tree, and the bound method is called directly.
Anything else becomes an execution error, as an invalid call is for bfcl-eval.
"""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# The simulated classes of the BFCL v3 multi-turn subsets. Other classes in
# bfcl-eval's mapping reach the network (web search) or disk (memory).
SIMULATED_CLASSES = {
    "GorillaFileSystem": "gorilla_file_system",
    "MathAPI": "math_api",
    "MessageAPI": "message_api",
    "TwitterAPI": "posting_api",
    "TicketAPI": "ticket_api",
    "TradingBot": "trading_bot",
    "TravelAPI": "travel_booking",
    "VehicleControlAPI": "vehicle_control",
}
SOURCE_PACKAGE = "bfcl_eval.eval_checker.multi_turn_eval.func_source_code"
STATELESS_CLASSES = frozenset({"MathAPI"})

# bfcl-eval rejects these names before eval, so error results match its executor.
BLOCKED_NAMES = frozenset({"kill", "exit", "quit", "remove", "unlink", "popen", "Popen", "run"})
ERROR_PREFIX = "Error during execution: "

# Bounds on what one call may ask of this process.
MAX_CALL_CHARS = 100_000
MAX_INT_DIGITS = 30
MAX_NESTING = 20
# Arguments that the simulators turn into work proportional to their value.
MAX_WORK_ARGUMENT = 10_000
WORK_ARGUMENTS = frozenset({"precision", "exponent", "decimal_places"})

# MathAPI sets mpmath's process-wide precision, and VehicleControlAPI writes a
# module-level dict, before reading them back. One lock keeps each call's write
# and read together when conversations and gradings run at once.
_EXECUTION_LOCK = threading.Lock()


class CallRejected(ValueError):
    """The call text is not a plain call of an offered method with literal arguments."""


@dataclass(frozen=True)
class ParsedCall:
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def parse_call(text: str, methods: dict[str, Callable[..., Any]]) -> ParsedCall:
    """Parse `name(arg, key=value)`; raise CallRejected for anything else."""
    if len(text) > MAX_CALL_CHARS:
        raise CallRejected(f"the call is longer than {MAX_CALL_CHARS} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise CallRejected(f"not a function call ({type(error).__name__})") from None
    node = tree.body
    if not isinstance(node, ast.Call):
        raise CallRejected("not a function call")
    if not isinstance(node.func, ast.Name):
        raise CallRejected("only a bare method name may be called")
    name = node.func.id
    if name in BLOCKED_NAMES:
        raise CallRejected(f"Function call {name} is not allowed.")
    if name not in methods:
        raise CallRejected(f"{name} is not a method of this sample's simulated classes")
    args = tuple(_literal(arg, 0) for arg in node.args)
    kwargs = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            raise CallRejected("** arguments are not allowed")
        kwargs[keyword.arg] = _literal(keyword.value, 0)
    _check_work(methods[name], args, kwargs)
    return ParsedCall(name, args, kwargs)


def _literal(node: ast.AST, depth: int) -> Any:
    if depth > MAX_NESTING:
        raise CallRejected(f"arguments nest deeper than {MAX_NESTING} levels")
    if isinstance(node, ast.Constant) and type(node.value) in (str, int, float, bool,
                                                                type(None)):
        if type(node.value) is int and len(str(abs(node.value))) > MAX_INT_DIGITS:
            raise CallRejected(f"integer literal longer than {MAX_INT_DIGITS} digits")
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand, depth + 1)
        if type(value) not in (int, float):
            raise CallRejected("a sign applies only to a number")
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.List):
        return [_literal(item, depth + 1) for item in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_literal(item, depth + 1) for item in node.elts)
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise CallRejected("** in a dict is not allowed")
        return {_hashable(_literal(key, depth + 1)): _literal(value, depth + 1)
                for key, value in zip(node.keys, node.values)}
    raise CallRejected(f"argument is not a literal: {_shorten(ast.unparse(node))}")


def _hashable(key: Any) -> Any:
    try:
        hash(key)
    except TypeError:
        raise CallRejected("a dict key must be a string, number or tuple") from None
    return key


def _check_work(method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
                ) -> None:
    try:
        bound = inspect.signature(method).bind_partial(*args, **kwargs)
    except TypeError:
        return  # the call itself fails with the method's own message
    for name, value in bound.arguments.items():
        if (name in WORK_ARGUMENTS and type(value) in (int, float)
                and abs(value) > MAX_WORK_ARGUMENT):
            raise CallRejected(f"{name}={value} is larger than {MAX_WORK_ARGUMENT}")


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SimulatedWorld:
    """One sample's instances of the simulated classes, started from its initial_config."""

    def __init__(self, involved_classes: list[str], initial_config: dict[str, Any],
                 long_context: bool) -> None:
        self.instances: dict[str, Any] = {}
        self.methods: dict[str, Callable[..., Any]] = {}
        for class_name in involved_classes:
            instance = _new_instance(class_name)
            if class_name not in STATELESS_CLASSES:
                config = copy.deepcopy(initial_config.get(class_name, {}))
                instance._load_scenario(config, long_context=long_context)
            self.instances[class_name] = instance
            # Later classes win a name clash, as in bfcl-eval's method mapping.
            for name, method in inspect.getmembers(instance, predicate=inspect.ismethod):
                if not name.startswith("_"):
                    self.methods[name] = method

    def execute(self, calls: list[str]) -> list[str]:
        """Run each call in order and return one result string per call."""
        return [self.execute_one(call) for call in calls]

    def execute_one(self, call: str) -> str:
        try:
            parsed = parse_call(call, self.methods)
        except CallRejected as error:
            return f"{ERROR_PREFIX}{error}"
        try:
            # Formatting inside the lock too: a result may point at shared
            # state (mpmath's precision), and a huge int may refuse to print.
            with _EXECUTION_LOCK:
                result = self.methods[parsed.name](*parsed.args, **parsed.kwargs)
                return format_result(result)
        except Exception as error:  # noqa: BLE001 - a failed call is a result for the model
            return f"{ERROR_PREFIX}{error}"


def format_result(result: Any) -> str:
    """Turn a method's return value into text the way bfcl-eval's executor does."""
    if type(result) is str:
        return result
    if type(result) is dict:
        try:
            return json.dumps(result)
        except (TypeError, ValueError):
            return str(result)
    return str(result)


def _new_instance(class_name: str) -> Any:
    module_name = SIMULATED_CLASSES.get(class_name)
    if module_name is None:
        raise ValueError(f"BFCL sample uses unsupported class {class_name!r}; "
                         f"supported: {', '.join(SIMULATED_CLASSES)}")
    module = importlib.import_module(f"{SOURCE_PACKAGE}.{module_name}")
    return getattr(module, class_name)()
