"""BFCL v3 subsets: names, categories, and loading from the bfcl-eval package."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ._bfcl import INSTALL_LINE, BfclMissingError

# v3 subset name -> file stem in bfcl-eval's data folder (BFCL_v4_<stem>.json).
FILE_STEMS = {
    "simple": "simple_python",
    "multiple": "multiple",
    "parallel": "parallel",
    "parallel_multiple": "parallel_multiple",
    "java": "simple_java",
    "javascript": "simple_javascript",
    "live_simple": "live_simple",
    "live_multiple": "live_multiple",
    "live_parallel": "live_parallel",
    "live_parallel_multiple": "live_parallel_multiple",
    "irrelevance": "irrelevance",
    "live_relevance": "live_relevance",
    "live_irrelevance": "live_irrelevance",
    "multi_turn_base": "multi_turn_base",
    "multi_turn_miss_func": "multi_turn_miss_func",
    "multi_turn_miss_param": "multi_turn_miss_param",
    "multi_turn_long_context": "multi_turn_long_context",
}
SUBSETS = tuple(FILE_STEMS)
MULTI_TURN_SUBSETS = ("multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param",
                      "multi_turn_long_context")

# Function docs of each simulated class, in bfcl-eval's multi_turn_func_doc folder.
FUNC_DOC_FILES = {
    "GorillaFileSystem": "gorilla_file_system.json",
    "MathAPI": "math_api.json",
    "MessageAPI": "message_api.json",
    "TwitterAPI": "posting_api.json",
    "TicketAPI": "ticket_api.json",
    "TradingBot": "trading_bot.json",
    "TravelAPI": "travel_booking.json",
    "VehicleControlAPI": "vehicle_control.json",
}

CATEGORIES = {
    **dict.fromkeys(("simple", "multiple", "parallel", "parallel_multiple", "java",
                     "javascript"), "AST_NON_LIVE"),
    **dict.fromkeys(("live_simple", "live_multiple", "live_parallel",
                     "live_parallel_multiple"), "AST_LIVE"),
    **dict.fromkeys(("irrelevance", "live_relevance", "live_irrelevance"), "RELEVANCE"),
    **dict.fromkeys(MULTI_TURN_SUBSETS, "MULTI_TURN"),
}
RELEVANCE_SUBSETS = frozenset(("irrelevance", "live_relevance", "live_irrelevance"))


@dataclass(frozen=True)
class BfclCase:
    """One BFCL entry: the prompt record and, for AST subsets, its possible answers.

    For multi-turn subsets `possible_answer` is the ground truth: one list of
    call strings per turn.
    """

    entry: dict[str, Any]
    possible_answer: list[Any] | None


def load_subset(subset: str, limit: int | None) -> list[BfclCase]:
    """Read a subset's entries (and possible answers), in file order."""
    stem = FILE_STEMS[subset]
    entries = _read_jsonl(f"BFCL_v4_{stem}.json", limit)
    if subset in RELEVANCE_SUBSETS:
        return [BfclCase(entry, None) for entry in entries]
    if subset in MULTI_TURN_SUBSETS:
        entries = [_with_function_docs(entry) for entry in entries]
    answers = _read_jsonl(f"possible_answer/BFCL_v4_{stem}.json", limit)
    if len(answers) != len(entries):
        raise ValueError(f"bfcl-eval data for {subset}: {len(entries)} entries but "
                         f"{len(answers)} possible answers; reinstall with: {INSTALL_LINE}")
    # bfcl-eval pairs entries with answers by position, as its own runner does.
    return [BfclCase(entry, answer["ground_truth"]) for entry, answer in zip(entries, answers)]


def _with_function_docs(entry: dict[str, Any]) -> dict[str, Any]:
    """Add the docs of the entry's classes, holding back those `missed_function` names.

    Mirrors bfcl-eval's populate_test_cases_with_predefined_functions: `function`
    gets the docs offered from the start and `missed_function` maps each turn
    index to the docs offered from that turn on. bfcl-eval's runner ignores the
    `excluded_function` field, so this does too.
    """
    functions = []
    for class_name in entry["involved_classes"]:
        file_name = FUNC_DOC_FILES.get(class_name)
        if file_name is None:
            raise ValueError(f"BFCL entry {entry['id']} uses unsupported class {class_name!r}; "
                             f"install the supported data with: {INSTALL_LINE}")
        functions.extend(_function_docs(file_name))
    missed = {}
    for turn, names in entry.get("missed_function", {}).items():
        missed[turn] = []
        for name in names:
            for index, doc in enumerate(functions):
                if doc["name"] == name:
                    missed[turn].append(functions.pop(index))
                    break
    return {**entry, "function": functions, "missed_function": missed}


@functools.cache
def _function_docs(file_name: str) -> tuple[dict[str, Any], ...]:
    # Shared by every entry of a class; entries are copied before anything edits them.
    return tuple(_read_jsonl(f"multi_turn_func_doc/{file_name}", None))


def _read_jsonl(relative_path: str, limit: int | None) -> list[dict[str, Any]]:
    try:
        path = resources.files("bfcl_eval").joinpath("data", *relative_path.split("/"))
        text = path.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as error:
        raise BfclMissingError(
            f"BFCL data not found ({error}); install it with: {INSTALL_LINE}") from None
    records = []
    for line in text.splitlines():
        if not line.strip():
            continue
        records.append(json.loads(line))
        if limit is not None and len(records) >= limit:
            break
    return records
