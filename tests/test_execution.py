"""Tests that model-written BFCL multi-turn calls never run as code.

Every hostile call tries to write a sentinel file under tmp_path (or to leave
a mark in this process). It goes to SimulatedWorld directly and through whole
conversations against the scripted server, and must end as a failed
execution with the world unchanged. bfcl-eval's own executor runs a few of
the same payloads to show that the sentinel check can fail.
"""

from __future__ import annotations

import builtins
import json
import os
import shlex
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_modeleval.client import ChatClient
from pytest_modeleval.suites.bfcl_v3._bfcl import load_bfcl
from pytest_modeleval.suites.bfcl_v3.conversation import run_conversation
from pytest_modeleval.suites.bfcl_v3.data import BfclCase
from pytest_modeleval.suites.bfcl_v3.execution import (
    ERROR_PREFIX,
    MAX_CALL_CHARS,
    SimulatedWorld,
)
from pytest_modeleval.suites.bfcl_v3.multi_turn_scoring import grade_conversation
from tests.multi_turn_helpers import is_after_results, multi_turn_case, turn_index
from tests.scripted_server import Reply, ScriptedServer, ToolCall

# Marks that a payload would leave in this process if it ran.
MARK_NAME = "MODELEVAL_HOSTILE_MARK"
UNUSED_MODULE = "tabnanny"  # a standard module with no import side effects

NOT_A_METHOD = "is not a method of this sample's simulated classes"
NOT_BARE = "only a bare method name may be called"
NOT_LITERAL = "argument is not a literal"
NOT_A_CALL = "not a function call"

# kind -> (template, expected message fragment). In a template, {write} is an
# expression that writes the sentinel, {path} the sentinel path as a literal,
# {touch} a shell command that creates the sentinel, {mark} MARK_NAME as a literal.
HOSTILE_TEMPLATES: dict[str, tuple[str, str]] = {
    "import_builtin": ("{write}", NOT_BARE),
    "import_statement": ("import pathlib; pathlib.Path({path}).write_text('x')", NOT_A_CALL),
    "open_builtin": ("open({path}, 'w')", f"open {NOT_A_METHOD}"),
    "exec_builtin": ("exec({write!r})", f"exec {NOT_A_METHOD}"),
    "eval_builtin": ("eval({write!r})", f"eval {NOT_A_METHOD}"),
    "compile_builtin": ("compile({write!r}, 'payload', 'exec')", f"compile {NOT_A_METHOD}"),
    "called_lambda": ("(lambda: {write})()", NOT_BARE),
    "list_comprehension": ("[{write} for _ in range(1)]", NOT_A_CALL),
    "generator_argument": ("ls(a=any({write} for _ in [0]))", NOT_LITERAL),
    "f_string_argument": ('cd(folder=f"{{{write}}}")', NOT_LITERAL),
    "getattr_builtin": ("getattr(getattr(__import__('pathlib'), 'Path')({path}), "
                        "'write_text')('x')", NOT_BARE),
    "subclasses_walk": ("[c for c in ().__class__.__base__.__subclasses__() "
                        "if c.__name__ == 'FileIO'][0]({path}, 'w')", NOT_BARE),
    "method_globals": ("cd.__func__.__globals__['__builtins__']['open']({path}, 'w')",
                       NOT_BARE),
    "os_system_argument": ("cd(folder=__import__('os').system({touch!r}))", NOT_LITERAL),
    "double_star_kwargs": ("cd(**{{'folder': {write}}})", "** arguments are not allowed"),
    "open_argument": ("cd(folder=open({path}, 'w').name)", NOT_LITERAL),
    "lambda_argument": ("ls(a=(lambda: {write})())", NOT_LITERAL),
    "importlib_call": ("importlib.import_module('pathlib').Path({path}).write_text('x')",
                       NOT_BARE),
    "os_module_call": ("os.system({touch!r})", NOT_BARE),
    "globals_builtin": ("globals()['__builtins__']['open']({path}, 'w')", NOT_BARE),
    "vars_builtin": ("vars(__import__('builtins'))['open']({path}, 'w')", NOT_BARE),
    "bound_method_chain": ("cd.__self__._load_scenario({{}})", NOT_BARE),
    "class_method_chain": ("GorillaFileSystem.cd(folder='document')", NOT_BARE),
    "dunder_call": ("cd.__call__(folder='document')", NOT_BARE),
    "private_method": ("_load_scenario({{}})", f"_load_scenario {NOT_A_METHOD}"),
    "dunder_method": ("__init__()", f"__init__ {NOT_A_METHOD}"),
    "refused_name": ("remove({path})", "Function call remove is not allowed."),
    "oversized_int": ("tail(file_name='final_report.pdf', lines=" + "9" * 200 + ")",
                      "integer literal longer than 30 digits"),
    "oversized_string": ("echo(content='" + "x" * 200_000 + "', file_name='big.txt')",
                         f"longer than {MAX_CALL_CHARS} characters"),
    "deep_nesting": ("mkdir(dir_name=" + "[" * 50 + "'x'" + "]" * 50 + ")",
                     "arguments nest deeper than 20 levels"),
    "exponent_tower": ("tail(file_name='final_report.pdf', lines=9**9**9)", NOT_LITERAL),
    "string_repeat": ("echo(content='x' * 10**9, file_name='big.txt')", NOT_LITERAL),
    "two_statements": ("cd(folder='document'); open({path}, 'w')", NOT_A_CALL),
    "second_line": ("cd(folder='document')\n{write}", NOT_A_CALL),
    "walrus_argument": ("cd(folder=(p := {write}))", NOT_LITERAL),
    "starred_argument": ("cd(*[{write}])", NOT_LITERAL),
    "concatenation_argument": ("cd(folder='a' + {write})", NOT_LITERAL),
    "conditional_argument": ("cd(folder='document' if {write} else 'x')", NOT_LITERAL),
    "call_as_dict_key": ("ls(a={{{write}: 1}})", NOT_LITERAL),
    "dict_unpacking": ("ls(a={{**{{'k': {write}}}}})", "** in a dict is not allowed"),
    "environment_write": ("__import__('os').environ.__setitem__({mark}, '1')", NOT_BARE),
    "builtins_write": ("setattr(__import__('builtins'), {mark}, 1)",
                       f"setattr {NOT_A_METHOD}"),
    "module_import": (f"__import__('{UNUSED_MODULE}')", f"__import__ {NOT_A_METHOD}"),
    # The parser folds full-width letters to ASCII (NFKC), so this names open.
    "fullwidth_name": ("\uff4f\uff50\uff45\uff4e({path}, 'w')", f"open {NOT_A_METHOD}"),
}


def hostile_call(kind: str, sentinel: Path) -> str:
    template = HOSTILE_TEMPLATES[kind][0]
    return template.format(write=write_expression(sentinel), path=repr(str(sentinel)),
                           touch=f"touch {shlex.quote(str(sentinel))}", mark=repr(MARK_NAME))


def write_expression(sentinel: Path) -> str:
    return f"__import__('pathlib').Path({str(sentinel)!r}).write_text('x')"


# multi_turn_base_0 runs on GorillaFileSystem and TwitterAPI.
FILE_SYSTEM_CASE_ID = "multi_turn_base_0"


def new_world(case: BfclCase) -> SimulatedWorld:
    entry = case.entry
    return SimulatedWorld(entry["involved_classes"], entry["initial_config"], False)


def world_state(instances: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return all attributes of each instance, private ones included (the current directory)."""
    return {name: dict(vars(instance)) for name, instance in instances.items()}


def assert_no_trace(sentinel: Path) -> None:
    assert not sentinel.exists()
    assert MARK_NAME not in os.environ
    assert not hasattr(builtins, MARK_NAME)
    assert UNUSED_MODULE not in sys.modules


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[Path]:
    """Yield a path that only a payload that ran would create, once no trace exists yet."""
    assert_no_trace(tmp_path / "sentinel")
    yield tmp_path / "sentinel"
    # Remove any process mark so one failure does not spill into later tests.
    os.environ.pop(MARK_NAME, None)
    if hasattr(builtins, MARK_NAME):
        delattr(builtins, MARK_NAME)


BfclExecutor = Callable[[list[str], BfclCase], tuple[list[str], dict[str, Any]]]


@pytest.fixture
def bfcl_executor() -> Iterator[BfclExecutor]:
    """Yield bfcl-eval's executor under a fresh model name per call, then drop its cache."""
    load_bfcl()  # sets bfcl-eval up before anything is imported from it directly
    from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils

    before = set(vars(multi_turn_utils))

    def execute(calls: list[str], case: BfclCase) -> tuple[list[str], dict[str, Any]]:
        entry = case.entry
        return multi_turn_utils.execute_multi_turn_func_call(
            calls, entry["initial_config"], entry["involved_classes"],
            f"modeleval-test-{uuid.uuid4().hex}", entry["id"])

    yield execute
    for name in set(vars(multi_turn_utils)) - before:
        delattr(multi_turn_utils, name)


@pytest.fixture
def restore_mpmath_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    # MathAPI.logarithm sets mpmath's process-wide precision.
    import mpmath

    monkeypatch.setattr(mpmath.mp, "dps", mpmath.mp.dps)


# Hostile call text on SimulatedWorld


@pytest.mark.parametrize("kind", HOSTILE_TEMPLATES)
def test_hostile_call_is_failed_execution(kind: str, sentinel: Path) -> None:
    case = multi_turn_case(FILE_SYSTEM_CASE_ID)
    world = new_world(case)
    fresh_state = world_state(new_world(case).instances)

    results = world.execute([hostile_call(kind, sentinel)])

    assert len(results) == 1
    assert results[0].startswith(ERROR_PREFIX)
    assert HOSTILE_TEMPLATES[kind][1] in results[0]
    assert_no_trace(sentinel)
    assert world_state(world.instances) == fresh_state


def test_hostile_calls_in_one_step(sentinel: Path) -> None:
    case = multi_turn_case(FILE_SYSTEM_CASE_ID)
    world = new_world(case)
    fresh_state = world_state(new_world(case).instances)
    calls = [hostile_call(kind, sentinel) for kind in HOSTILE_TEMPLATES]

    results = world.execute(calls)

    assert len(results) == len(calls)
    assert [result for result in results if not result.startswith(ERROR_PREFIX)] == []
    assert_no_trace(sentinel)
    assert world_state(world.instances) == fresh_state


def test_fresh_worlds_have_equal_state() -> None:
    # The state comparison above is only meaningful if two fresh worlds compare equal.
    case = multi_turn_case(FILE_SYSTEM_CASE_ID)
    first, second = new_world(case), new_world(case)

    assert world_state(first.instances) == world_state(second.instances)

    first.execute(["cd(folder='document')"])
    assert world_state(first.instances) != world_state(second.instances)


@pytest.mark.parametrize("kind", ["import_builtin", "f_string_argument", "lambda_argument"])
def test_bfcl_executor_runs_payload(kind: str, sentinel: Path,
                                    bfcl_executor: BfclExecutor) -> None:
    # Proves the sentinel check can fail: bfcl-eval evals the same text.
    bfcl_executor([hostile_call(kind, sentinel)], multi_turn_case(FILE_SYSTEM_CASE_ID))

    assert sentinel.read_text() == "x"


# Valid calls: same results and state as bfcl-eval's executor

FILE_SYSTEM_CALLS = [
    "cd(folder='document')",
    "cd('..')",
    "cd(folder='document')",
    "mkdir(dir_name='temp')",
    "ls(a=True)",
    "du(human_readable=False)",
    "find(path='.', name=None)",
    "tail('final_report.pdf', -1)",
    "tail(file_name='final_report.pdf', lines=-2)",
    "touch(file_name='notes.txt')",
    "echo(content='a, b\\nc', file_name='notes.txt')",
    "touch(file_name='nested.txt')",
    "echo(content={'k': [1, -2.5, {'n': None}], 'flag': True}, file_name='nested.txt')",
    "cat('notes.txt')",
    "cat(file_name='nested.txt')",
    "cd(directory='x')",
    "authenticate_twitter(username='analyst_pro', password='Kj8#mP9$vL2')",
    "post_tweet(content='Report ready', tags=['#report', '#budget'], "
    "mentions=['@analyst_pro'])",
    "mention(tweet_id=3, mentioned_usernames=['a', 'b'])",
    "comment(3, 'Looks good')",
    "get_tweet(tweet_id=-1)",
    "get_tweet(tweet_id=+3)",
]
MATH_CALLS = [
    "mean(numbers=[1, -2.5, 300.0])",
    "round_number(number=-2.675, decimal_places=2)",
    "power(base=2, exponent=-2)",
    "absolute_value(-7)",
    "logarithm(value=980.0, base=20, precision=10)",
    "square_root(number=2, precision=30)",
    "max_value(numbers=[])",
]


def test_valid_calls_match_bfcl_executor(bfcl_executor: BfclExecutor) -> None:
    case = multi_turn_case(FILE_SYSTEM_CASE_ID)
    world = new_world(case)

    results = world.execute(FILE_SYSTEM_CALLS)
    expected_results, expected_instances = bfcl_executor(FILE_SYSTEM_CALLS, case)

    assert results == expected_results
    assert world_state(world.instances) == world_state(expected_instances)
    # Guards against both executors failing every call alike.
    assert [r for r in results if r.startswith(ERROR_PREFIX)] == [
        "Error during execution: GorillaFileSystem.cd() got an unexpected keyword argument "
        "'directory'"]


def test_math_calls_match_bfcl_executor(bfcl_executor: BfclExecutor,
                                        restore_mpmath_precision: None) -> None:
    case = BfclCase({"id": "math_0", "involved_classes": ["MathAPI"], "initial_config": {}},
                    None)
    world = new_world(case)

    results = world.execute(MATH_CALLS)
    expected_results, _ = bfcl_executor(MATH_CALLS, case)

    assert results == expected_results
    assert results[0] == json.dumps({"result": (1 - 2.5 + 300.0) / 3})


# Hostile replies through a whole conversation and its grading

def script_per_turn(replies: list[Reply]) -> Callable[[dict[str, Any], int], Reply]:
    """Send replies[turn] as each turn's first step and end the turn after its results."""

    def script(body: dict[str, Any], attempt: int) -> Reply:
        if is_after_results(body):
            return Reply(content="Done.")
        return replies[turn_index(body) % len(replies)]

    return script


def hostile_tool_calls(sentinel: Path) -> tuple[ToolCall, ...]:
    write = write_expression(sentinel)
    return (
        ToolCall("__import__", json.dumps({"name": "pathlib"})),
        ToolCall("eval", json.dumps({"source": write})),
        ToolCall("exec", json.dumps({"source": write})),
        ToolCall("open", json.dumps({"file": str(sentinel), "mode": "w"})),
        # bfcl-eval pastes tool and argument names into the call text unquoted.
        ToolCall(write.removesuffix("('x')"), json.dumps({"data": "x"})),
        ToolCall("cd", json.dumps({f"folder={write},x": "a"})),
        # An argument value is data: cd gets the payload text as a folder name.
        ToolCall("cd", json.dumps({"folder": write})),
    )


# One reply per turn of multi_turn_base_0. The first two decode without eval in
# bfcl-eval's prompting decoder. The last two hold arithmetic and a lambda, which
# the plugin rejects before they reach that decoder.
PROMPT_TEMPLATES = [
    "[cd(folder=__import__('os').system({touch!r})), open({path}, 'w'), eval({write!r}), "
    "{write}]",
    # The key closes its quote once bfcl-eval's decoder pastes it into call text.
    "[ls(a={{\"k': {write}, 'j\": 1}})]",
    "[cd(folder='a' + str({write}))]",
    "[cd(folder=lambda: {write})]",
]


def hostile_prompt_text(template: str, sentinel: Path) -> str:
    return template.format(write=write_expression(sentinel), path=repr(str(sentinel)),
                           touch=f"touch {shlex.quote(str(sentinel))}")


def test_hostile_tool_calls_grade_wrong(scripted_server: ScriptedServer, chat_client: ChatClient,
                                        sentinel: Path) -> None:
    case = multi_turn_case(FILE_SYSTEM_CASE_ID)
    scripted_server.script = script_per_turn([Reply(tool_calls=hostile_tool_calls(sentinel))])

    conversation = run_conversation(case, chat_client, "fc", False)
    grade = grade_conversation(case, conversation)

    assert grade.outcome == "wrong"
    assert grade.score == 0.0
    assert_no_trace(sentinel)
    first = conversation.turns[0].steps[0]
    assert len(first.results) == 7
    assert [result[:len(ERROR_PREFIX)] for result in first.results[:6]] == [ERROR_PREFIX] * 6
    assert first.calls[6] == f"cd(folder={write_expression(sentinel)!r})"
    assert json.loads(first.results[6]) == {
        "error": f"cd: {write_expression(sentinel)}: Unsupported path. Only one folder level "
                 "at a time is supported."}


@pytest.mark.parametrize("index", [4, 5], ids=["tool_name", "argument_name"])
def test_bfcl_runs_tool_call_payload(index: int, sentinel: Path,
                                     bfcl_executor: BfclExecutor) -> None:
    # Proves the names above are hostile: bfcl-eval's executor evals the call text
    # that its FC converter builds from them.
    call = hostile_tool_calls(sentinel)[index]

    calls = load_bfcl().convert_to_function_call([{call.name: call.arguments}])
    bfcl_executor(calls, multi_turn_case(FILE_SYSTEM_CASE_ID))

    assert sentinel.read_text() == "x"


def test_hostile_prompt_replies_grade_wrong(scripted_server: ScriptedServer,
                                            chat_client: ChatClient, sentinel: Path) -> None:
    case = multi_turn_case(FILE_SYSTEM_CASE_ID)
    texts = [hostile_prompt_text(template, sentinel) for template in PROMPT_TEMPLATES]
    scripted_server.script = script_per_turn([Reply(content=text) for text in texts])

    conversation = run_conversation(case, chat_client, "prompt", True)
    grade = grade_conversation(case, conversation)

    assert grade.outcome == "wrong"
    assert grade.score == 0.0
    assert_no_trace(sentinel)
    first, dict_key, arithmetic, lambda_value = (turn.steps[0] for turn in conversation.turns)
    assert first.calls[1:] == ("open()", "eval()", "write_text()")
    assert [result[:len(ERROR_PREFIX)] for result in first.results[1:]] == [ERROR_PREFIX] * 3
    assert dict_key.calls[0].startswith("ls(a={'k': __import__('pathlib')")
    assert dict_key.results[0].startswith(f"{ERROR_PREFIX}{NOT_LITERAL}: ")
    assert arithmetic.calls == ()
    assert arithmetic.decode_error.startswith("expression not allowed as an argument value")
    assert lambda_value.calls == ()
    assert lambda_value.decode_error == "a lambda is not allowed as an argument value"


@pytest.mark.parametrize("turn", [1, 2], ids=["executor", "decoder"])
def test_bfcl_runs_prompt_payload(turn: int, sentinel: Path,
                                  bfcl_executor: BfclExecutor) -> None:
    # Proves the prompt replies above are hostile: bfcl-eval's decoder evals the
    # arithmetic one, and its executor evals the call text decoded from the dict key.
    text = hostile_prompt_text(PROMPT_TEMPLATES[turn], sentinel)

    calls = load_bfcl().decode_execute_prompting(text)
    bfcl_executor(calls, multi_turn_case(FILE_SYSTEM_CASE_ID))

    assert sentinel.read_text() == "x"


# Results that are hard to print or to compute, and shared state between samples.

MATH_CASE = BfclCase({"id": "math_0", "involved_classes": ["MathAPI"], "initial_config": {}},
                     None)
# multi_turn_base_15 runs on GorillaFileSystem and MathAPI.
MATH_SAMPLE_ID = "multi_turn_base_15"
LONG_RESULT_CALL = "power(base=10, exponent=5000)"  # 5001 digits; Python prints at most 4300


def test_unprintable_result_is_failed_execution(bfcl_executor: BfclExecutor) -> None:
    expected, _ = bfcl_executor([LONG_RESULT_CALL], MATH_CASE)

    results = new_world(MATH_CASE).execute([LONG_RESULT_CALL])

    assert results == expected
    assert results[0].startswith(f"{ERROR_PREFIX}Exceeds the limit (4300 digits)")


def test_unprintable_result_grades_wrong(scripted_server: ScriptedServer,
                                         chat_client: ChatClient) -> None:
    case = multi_turn_case(MATH_SAMPLE_ID)
    power = ToolCall("power", json.dumps({"base": 10, "exponent": 5000}))
    scripted_server.script = script_per_turn([Reply(tool_calls=(power,))])

    grade = grade_conversation(case, run_conversation(case, chat_client, "fc", False))

    assert grade.outcome == "wrong"


def test_power_exponent_is_bounded() -> None:
    result = new_world(MATH_CASE).execute_one("power(base=10, exponent=100000)")

    assert result == f"{ERROR_PREFIX}exponent=100000 is larger than 10000"


def test_round_number_places_are_bounded() -> None:
    # The same work as power(base=10, exponent=100000), which is rejected above.
    result = new_world(MATH_CASE).execute_one("round_number(number=5, decimal_places=-100000)")

    assert result.startswith(ERROR_PREFIX)
