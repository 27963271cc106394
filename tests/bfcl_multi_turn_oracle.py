"""Reference replies for BFCL multi-turn samples, and what bfcl-eval makes of them.

The scripted model replays each turn's ground-truth calls, two per step, then
replies in plain text to end the turn. A request is matched to its plan by the
turn queries it carries and the tools it offers; samples whose requests look
alike (base and long-context twins) share the first such plan, so `received`
records the calls each sample really gets. `expected_accuracy` grades those
calls with bfcl-eval's multi_turn_checker called directly, with its own
executor: the calls are ground-truth literals, so its eval runs nothing else.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import itertools
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_modeleval.suites.bfcl_v3._bfcl import load_bfcl
from pytest_modeleval.suites.bfcl_v3.data import MULTI_TURN_SUBSETS, BfclCase, load_subset
from pytest_modeleval.suites.bfcl_v3.execution import SIMULATED_CLASSES, SOURCE_PACKAGE
from tests.multi_turn_helpers import RESULTS_PREFIX
from tests.scripted_server import Reply, ToolCall

Mode = Literal["fc", "prompt"]
CALLS_PER_STEP = 2
END_OF_TURN = "All done for this request."
Call = tuple[str, dict[str, Any]]


@dataclass
class MultiTurnOracle:
    mode: Mode
    # plan key -> the calls of that turn, chunked per step
    plans: dict[str, list[list[Call]]] = field(default_factory=dict)
    # sample id -> per turn, the plan it receives
    received: dict[str, list[list[list[Call]]]] = field(default_factory=dict)
    # sample id -> bfcl-eval's verdict, filled by expected_accuracy
    verdicts: dict[str, bool] = field(default_factory=dict)

    def script(self, body: dict[str, Any], attempt: int) -> Reply | None:
        """The reply for a multi-turn request, or None when it is not one."""
        queries, steps_in_turn = _position(body["messages"], self.mode)
        plan = self.plans.get(_plan_key(queries, _tool_names(body)))
        if plan is None:
            return None
        if steps_in_turn < len(plan):
            return render(plan[steps_in_turn], self.mode)
        return Reply(content=END_OF_TURN)


def build_multi_turn_oracle(mode: Mode, subsets: tuple[str, ...] = MULTI_TURN_SUBSETS,
                            wrong: frozenset[str] = frozenset(), limit: int | None = None
                            ) -> MultiTurnOracle:
    """Plan every sample's replies; ids in `wrong` get one altered argument."""
    oracle = MultiTurnOracle(mode)
    for subset in subsets:
        for case in load_subset(subset, limit):
            turns = [[_as_keywords(call, case) for call in turn] for turn in case.possible_answer]
            if case.entry["id"] in wrong:
                turns = _alter_one_call(turns)
            received = []
            for index, key in enumerate(_turn_keys(case, mode)):
                chunks = [turns[index][i:i + CALLS_PER_STEP]
                          for i in range(0, len(turns[index]), CALLS_PER_STEP)]
                received.append(oracle.plans.setdefault(key, chunks))
            oracle.received[case.entry["id"]] = received
    return oracle


def wrong_every(step: int = 23, subsets: tuple[str, ...] = MULTI_TURN_SUBSETS) -> frozenset[str]:
    """Every step-th sample of each subset, starting with the second."""
    return frozenset(case.entry["id"] for subset in subsets
                     for index, case in enumerate(load_subset(subset, None))
                     if index % step == 1)


_checker_runs = itertools.count()


def expected_accuracy(oracle: MultiTurnOracle, subsets: tuple[str, ...] = MULTI_TURN_SUBSETS,
                      limit: int | None = None) -> dict[str, float]:
    """Per subset, the share of samples bfcl-eval's checker accepts for the received calls."""
    accuracy = {}
    for subset in subsets:
        cases = load_subset(subset, limit)
        for case in cases:
            oracle.verdicts[case.entry["id"]] = official_verdict(oracle, case)
        accuracy[subset] = sum(oracle.verdicts[c.entry["id"]] for c in cases) / len(cases)
    return accuracy


def official_verdict(oracle: MultiTurnOracle, case: BfclCase) -> bool:
    from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker

    decoded = [[_official_decode(render(chunk, oracle.mode), oracle.mode) for chunk in turn]
               for turn in oracle.received[case.entry["id"]]]
    # bfcl-eval caches instances by model name and id; a fresh name per call keeps runs apart.
    name = f"oracle{next(_checker_runs)}"
    entry_id = case.entry["id"]
    result = multi_turn_checker(decoded, case.possible_answer, case.entry,
                                entry_id.rsplit("_", 1)[0], name)
    cache = vars(multi_turn_utils)
    for key in [key for key in cache if key.startswith(f"{name}_")]:
        del cache[key]
    return bool(result["valid"])


def render(calls: list[Call], mode: Mode) -> Reply:
    if mode == "fc":
        return Reply(tool_calls=tuple(ToolCall(name, json.dumps(args)) for name, args in calls))
    text = ", ".join(f"{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})"
                     for name, args in calls)
    return Reply(content=f"[{text}]")


def _official_decode(reply: Reply, mode: Mode) -> list[str]:
    bfcl = load_bfcl()
    if mode == "fc":
        return bfcl.convert_to_function_call([{c.name: c.arguments} for c in reply.tool_calls])
    return bfcl.decode_execute_prompting(reply.content)


def _as_keywords(call: str, case: BfclCase) -> Call:
    """Parse a ground-truth call, naming its positional arguments from the method signature."""
    node = ast.parse(call, mode="eval").body
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name), call
    name = node.func.id
    parameters = [p for p in inspect.signature(_method(case, name)).parameters if p != "self"]
    args = {parameters[i]: ast.literal_eval(arg) for i, arg in enumerate(node.args)}
    args.update({kw.arg: ast.literal_eval(kw.value) for kw in node.keywords})
    return name, args


def _method(case: BfclCase, name: str) -> Any:
    import importlib

    found = None
    for class_name in case.entry["involved_classes"]:
        module = importlib.import_module(f"{SOURCE_PACKAGE}.{SIMULATED_CLASSES[class_name]}")
        found = getattr(getattr(module, class_name), name, found)
    assert found is not None, name
    return found


def _alter_one_call(turns: list[list[Call]]) -> list[list[Call]]:
    """Change the first argument of the first call with arguments in the last such turn."""
    for t in range(len(turns) - 1, -1, -1):
        for i, (name, args) in enumerate(turns[t]):
            if args:
                key = next(iter(args))
                altered = -7919 if isinstance(args[key], (int, float)) else "__oracle_wrong__"
                turn = [*turns[t][:i], (name, {**args, key: altered}), *turns[t][i + 1:]]
                return [*turns[:t], turn, *turns[t + 1:]]
    return turns


def _turn_keys(case: BfclCase, mode: Mode) -> list[str]:
    """The plan key of each turn: the queries sent so far and the tools then offered."""
    bfcl = load_bfcl()
    entry = case.entry
    tools = [f["name"] for f in entry["function"]]
    queries: list[str] = []
    keys = []
    for index, turn in enumerate(entry["question"]):
        held_out = entry["missed_function"].get(str(index))
        if held_out is not None:
            if mode == "fc":
                tools = tools + [f["name"] for f in held_out]
                queries.append(bfcl.additional_function_prompt_fc)
            else:
                queries.append(bfcl.additional_function_prompt_prompting.format(
                    functions=held_out))
        else:
            queries.append(turn[0]["content"])
        keys.append(_plan_key(queries, sorted(tools) if mode == "fc" else []))
    return keys


def _position(messages: list[dict[str, Any]], mode: Mode) -> tuple[list[str], int]:
    """The turn queries in a request, and the replies the model gave since the last one."""
    queries: list[str] = []
    steps = 0
    for message in messages:
        content = message.get("content")
        if message["role"] == "user" and not (mode == "prompt" and isinstance(content, str)
                                              and content.startswith(RESULTS_PREFIX)):
            queries.append(content)
            steps = 0
        elif message["role"] == "assistant":
            steps += 1
    return queries, steps


def _tool_names(body: dict[str, Any]) -> list[str]:
    return sorted(tool["function"]["name"] for tool in body.get("tools") or [])


def _plan_key(queries: list[str], tools: list[str]) -> str:
    text = json.dumps({"queries": queries, "tools": tools}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
