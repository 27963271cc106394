"""Grade a BFCL multi-turn conversation with bfcl-eval's multi_turn_checker.

The checker replays the model's calls and the ground truth turn by turn and
compares instance state and call results. It reaches its executor through a
module-level name; bfcl-eval's executor evals call strings and keeps instances
in module globals. Here the checker's own code runs with that one name bound
to a SimulatedWorld executor whose instances live only for one grading, so
model text never reaches eval and no state is shared between gradings.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Callable
from typing import Any

from .. import Grade
from ._bfcl import CHECKER_MODEL_NAME, load_bfcl
from .conversation import Conversation
from .data import BfclCase
from .execution import SimulatedWorld
from .scoring import clip_explanation

Executor = Callable[..., tuple[list[str], dict[str, Any]]]
# bfcl-eval's response and empty-turn messages end with "for turn N".
_TURN_IN_MESSAGE = re.compile(r"\bfor turn (\d+)")


def grade_conversation(case: BfclCase, conversation: Conversation) -> Grade:
    ground_truth: list[list[str]] = case.possible_answer or []
    if len(conversation.turns) != len(ground_truth):
        limit = load_bfcl().maximum_step_limit
        return Grade("wrong", 0.0, clip_explanation(
            f"turn {len(conversation.turns) - 1}: the model was stopped after {limit} steps, "
            f"so {len(ground_truth) - len(conversation.turns)} of {len(ground_truth)} turns "
            "never ran"))
    checker = _checker_with(_isolated_executor())
    result = checker(conversation.decoded_calls(), ground_truth, case.entry,
                     case.entry["id"].rsplit("_", 1)[0], CHECKER_MODEL_NAME)
    if result.get("valid"):
        return Grade("correct", 1.0, "")
    return Grade("wrong", 0.0, clip_explanation(explain(result)))


def explain(result: dict[str, Any]) -> str:
    """Describe a failed check, starting with the first turn that failed."""
    error_type = result.get("error_type", "")
    message = result.get("error_message", "the check failed")
    details = result.get("details") or {}
    if error_type == "multi_turn:instance_state_mismatch":
        # The checker stops at the first failing turn, after adding its results.
        turn = len(result.get("execution_result", [])) - 1
        differences = _json(details.get("differences"))
        return f"turn {turn}: {message} Differences: {differences}"
    named = _TURN_IN_MESSAGE.search(message)
    prefix = f"turn {named.group(1)}: " if named else ""
    if error_type == "multi_turn:execution_response_mismatch":
        return f"{prefix}{message} Missing results: {_json(details.get('missing_items'))}"
    return f"{prefix}{message}"


def _checker_with(executor: Executor) -> Callable[..., dict[str, Any]]:
    """Return bfcl-eval's multi_turn_checker with its executor name bound to `executor`."""
    module = load_bfcl().multi_turn_checker_module
    original = module.multi_turn_checker
    namespace = dict(vars(module))
    namespace["execute_multi_turn_func_call"] = executor
    return types.FunctionType(original.__code__, namespace, original.__name__,
                              original.__defaults__, original.__closure__)


def _isolated_executor() -> Executor:
    """Return an executor with bfcl-eval's signature whose instances live for one grading."""
    worlds: dict[tuple[str, str], SimulatedWorld] = {}

    def execute(func_call_list: list[str], initial_config: dict[str, Any],
                involved_classes: list[str], model_name: str, test_entry_id: str,
                long_context: bool = False, is_evaL_run: bool = False
                ) -> tuple[list[str], dict[str, Any]]:
        # The checker keeps the model's and the ground truth's instances apart by name.
        key = (model_name, test_entry_id)
        world = worlds.get(key)
        if world is None:
            world = worlds[key] = SimulatedWorld(involved_classes, initial_config, long_context)
        return world.execute(func_call_list), dict(world.instances)

    return execute


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(value)
