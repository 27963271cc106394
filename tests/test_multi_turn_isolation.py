"""Tests that BFCL multi-turn conversations and gradings share no state.

bfcl-eval's executor caches instances in its module globals by model name and
sample id. The plugin's executor builds fresh worlds for each conversation and
each grading, so repeats, reruns and concurrent samples must grade alike, and
no world may outlive its grading.
"""

from __future__ import annotations

import ast
import gc
import inspect
import json
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from pytest_modeleval.client import ChatClient
from pytest_modeleval.suites import Grade
from pytest_modeleval.suites.bfcl_v3 import conversation as conversation_module
from pytest_modeleval.suites.bfcl_v3 import execution, multi_turn_scoring
from pytest_modeleval.suites.bfcl_v3._bfcl import CHECKER_MODEL_NAME, load_bfcl
from pytest_modeleval.suites.bfcl_v3.conversation import Conversation, run_conversation
from pytest_modeleval.suites.bfcl_v3.data import BfclCase
from pytest_modeleval.suites.bfcl_v3.execution import SimulatedWorld
from pytest_modeleval.suites.bfcl_v3.multi_turn_scoring import grade_conversation
from tests.multi_turn_helpers import multi_turn_case
from tests.scripted_server import Reply, ScriptedServer, ToolCall

SAMPLE_A = "multi_turn_base_0"  # TwitterAPI and GorillaFileSystem, 4 turns
SAMPLE_B = "multi_turn_base_2"  # TicketAPI and GorillaFileSystem, 5 turns

Script = Callable[[dict[str, Any], int], Reply]


def bfcl_executor_globals() -> dict[str, Any]:
    """Return the globals in which bfcl-eval's executor, as the checker calls it, caches instances.

    Taken from the checker that load_bfcl imported, because an in-process
    pytester run can leave a second copy of the module in sys.modules.
    """
    return load_bfcl().multi_turn_checker_module.execute_multi_turn_func_call.__globals__


def bfcl_instance_names() -> set[str]:
    return {name for name in bfcl_executor_globals() if name.endswith("_instance")}


# A scripted model that replays each sample's ground truth as FC tool calls


def as_tool_calls(case: BfclCase, calls: list[str]) -> tuple[ToolCall, ...]:
    """Turn ground-truth call text into tool calls, naming positional arguments."""
    entry = case.entry
    methods = SimulatedWorld(entry["involved_classes"], entry["initial_config"], False).methods
    tool_calls = []
    for text in calls:
        node = ast.parse(text, mode="eval").body
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        names = list(inspect.signature(methods[node.func.id]).parameters)
        arguments = {name: ast.literal_eval(arg) for name, arg in zip(names, node.args)}
        arguments.update({kw.arg: ast.literal_eval(kw.value) for kw in node.keywords})
        tool_calls.append(ToolCall(node.func.id, json.dumps(arguments)))
    return tuple(tool_calls)


def first_question(body: dict[str, Any]) -> str:
    return next(message["content"] for message in body["messages"] if message["role"] == "user")


def replay_script(cases: list[BfclCase], skip_last_call_of_turn_0: bool = False) -> Script:
    """Reply with the ground truth of the sample and turn the request belongs to."""
    by_question = {case.entry["question"][0][-1]["content"]: case for case in cases}

    def script(body: dict[str, Any], attempt: int) -> Reply:
        if body["messages"][-1]["role"] == "tool":
            return Reply(content="Done.")
        case = by_question[first_question(body)]
        turn = sum(message["role"] == "user" for message in body["messages"]) - 1
        calls = list(case.possible_answer[turn])
        if skip_last_call_of_turn_0 and turn == 0:
            calls = calls[:-1]
        return Reply(tool_calls=as_tool_calls(case, calls))

    return script


def converse(case: BfclCase, chat_client: ChatClient) -> Conversation:
    return run_conversation(case, chat_client, "fc", False)


def results_of(conversation: Conversation) -> list[list[tuple[str, ...]]]:
    return [[step.results for step in turn.steps] for turn in conversation.turns]


CORRECT = Grade("correct", 1.0, "")


def test_replayed_ground_truth_grades_correct(scripted_server: ScriptedServer,
                                              chat_client: ChatClient) -> None:
    # The isolation tests below rely on this replay being correct.
    scripted_server.script = replay_script([multi_turn_case(SAMPLE_A)])

    grade = grade_conversation(multi_turn_case(SAMPLE_A), converse(multi_turn_case(SAMPLE_A),
                                                                   chat_client))

    assert grade == CORRECT


def test_sample_run_twice_scores_identically(scripted_server: ScriptedServer,
                                             chat_client: ChatClient) -> None:
    case = multi_turn_case(SAMPLE_A)
    scripted_server.script = replay_script([case], skip_last_call_of_turn_0=True)

    first = converse(case, chat_client)
    first_grade = grade_conversation(case, first)
    second = converse(case, chat_client)
    second_grade = grade_conversation(case, second)

    assert first_grade.outcome == "wrong"
    assert first_grade.explanation.startswith("turn 0: Model instance for GorillaFileSystem")
    assert second_grade == first_grade
    assert results_of(second) == results_of(first)


def test_same_conversation_grades_identically(scripted_server: ScriptedServer,
                                              chat_client: ChatClient) -> None:
    case = multi_turn_case(SAMPLE_A)
    scripted_server.script = replay_script([case])
    conversation = converse(case, chat_client)

    grades = [grade_conversation(case, conversation) for _ in range(3)]

    assert grades == [CORRECT] * 3


def test_concurrent_samples_grade_correct(scripted_server: ScriptedServer,
                                          chat_client: ChatClient) -> None:
    cases = [multi_turn_case(SAMPLE_A), multi_turn_case(SAMPLE_B)] * 2
    scripted_server.script = replay_script(cases[:2])

    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        conversations = list(pool.map(converse, cases, [chat_client] * len(cases)))
        grades = list(pool.map(grade_conversation, cases, conversations))

    assert grades == [CORRECT] * len(cases)
    assert results_of(conversations[2]) == results_of(conversations[0])
    assert results_of(conversations[3]) == results_of(conversations[1])


def test_interleaved_gradings_agree(scripted_server: ScriptedServer,
                                    chat_client: ChatClient) -> None:
    case_a, case_b = multi_turn_case(SAMPLE_A), multi_turn_case(SAMPLE_B)
    scripted_server.script = replay_script([case_a, case_b], skip_last_call_of_turn_0=True)
    conversation_a, conversation_b = converse(case_a, chat_client), converse(case_b, chat_client)

    grades = [grade_conversation(case_a, conversation_a),
              grade_conversation(case_b, conversation_b),
              grade_conversation(case_a, conversation_a)]

    assert grades[0].outcome == "wrong"
    assert grades[1].outcome == "wrong"
    assert grades[2] == grades[0]


def test_grading_leaves_bfcl_cache_alone(scripted_server: ScriptedServer,
                                         chat_client: ChatClient) -> None:
    case = multi_turn_case(SAMPLE_A)
    scripted_server.script = replay_script([case])
    before = bfcl_instance_names()

    grade = grade_conversation(case, converse(case, chat_client))

    assert grade == CORRECT
    assert bfcl_instance_names() - before == set()


def test_bfcl_checker_fills_its_cache() -> None:
    # Proves the check above can fail: bfcl-eval's own checker caches instances.
    case = multi_turn_case(SAMPLE_A)
    checker = load_bfcl().multi_turn_checker_module.multi_turn_checker
    before = bfcl_instance_names()
    ground_truth = [[turn] for turn in case.possible_answer]
    try:
        result = checker(ground_truth, case.possible_answer, case.entry, "multi_turn_base",
                         f"{CHECKER_MODEL_NAME}-cache-probe")
        added = bfcl_instance_names() - before
    finally:
        for name in bfcl_instance_names() - before:
            del bfcl_executor_globals()[name]

    assert result == {"valid": True}
    assert len(added) == 4  # two classes, for the model and for the ground truth


def test_worlds_are_freed_after_grading(scripted_server: ScriptedServer, chat_client: ChatClient,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    references: list[weakref.ref[Any]] = []

    class RecordedWorld(SimulatedWorld):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            references.append(weakref.ref(self))
            references.extend(weakref.ref(instance) for instance in self.instances.values())

    monkeypatch.setattr(conversation_module, "SimulatedWorld", RecordedWorld)
    monkeypatch.setattr(multi_turn_scoring, "SimulatedWorld", RecordedWorld)
    case = multi_turn_case(SAMPLE_A)
    scripted_server.script = replay_script([case])

    grades = [grade_conversation(case, converse(case, chat_client)) for _ in range(2)]
    gc.collect()

    assert grades == [CORRECT] * 2
    # Each run builds three worlds (the conversation's, and the grading's model and
    # ground-truth worlds) of two instances each.
    assert len(references) == 2 * 3 * 3
    assert [ref for ref in references if ref() is not None] == []


# Process-wide state that a simulated call writes and its result still reads


class InterleavingLock:
    """A stand-in for the execution lock that runs another sample's call after each release.

    Right after a release is when another thread could take the real lock.
    """

    def __init__(self, other_call: Callable[[], object]) -> None:
        self._lock = threading.Lock()
        self._other_call = other_call

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()
        self._other_call()


def math_world() -> SimulatedWorld:
    return SimulatedWorld(["MathAPI"], {}, False)


def vehicle_world() -> SimulatedWorld:
    # long_context makes get_outside_temperature_from_google return a module-level dict.
    return SimulatedWorld(["VehicleControlAPI"], {}, True)


def logarithm_race() -> tuple[Callable[[], SimulatedWorld], str, Callable[[], object]]:
    other = math_world()
    # mpmath prints a result with the process-wide precision, not the one it was computed at.
    return (math_world, "logarithm(value=980.0, base=20, precision=10)",
            lambda: other.methods["logarithm"](value=20, base=10, precision=2))


def weather_race() -> tuple[Callable[[], SimulatedWorld], str, Callable[[], object]]:
    other = vehicle_world()
    temperature = other.methods["get_outside_temperature_from_google"]
    temperature()  # both worlds start from the same seed; move this one ahead
    return vehicle_world, "get_outside_temperature_from_google()", temperature


@pytest.fixture
def restore_process_state(monkeypatch: pytest.MonkeyPatch) -> None:
    import mpmath

    load_bfcl()  # sets bfcl-eval up before anything is imported from it directly
    from bfcl_eval.eval_checker.multi_turn_eval.func_source_code import long_context

    monkeypatch.setattr(mpmath.mp, "dps", mpmath.mp.dps)
    # Undoing the deletion puts back the value this test started with, if any.
    monkeypatch.delitem(long_context.LONG_WEATHER_EXTENSION, "outsideTemperature",
                        raising=False)


@pytest.mark.parametrize("race", [logarithm_race, weather_race], ids=["mpmath", "weather"])
def test_result_text_ignores_concurrent_call(
        race: Callable[[], tuple[Callable[[], SimulatedWorld], str, Callable[[], object]]],
        monkeypatch: pytest.MonkeyPatch, restore_process_state: None) -> None:
    new_world, call, other_call = race()
    alone = new_world().execute_one(call)
    world = new_world()
    monkeypatch.setattr(execution, "_EXECUTION_LOCK", InterleavingLock(other_call))

    interleaved = world.execute_one(call)

    assert interleaved == alone
