"""Shared pieces of the BFCL multi-turn tests: samples by id and where a request stands."""

from __future__ import annotations

import functools
from typing import Any

from pytest_modeleval.suites.bfcl_v3._bfcl import load_bfcl
from pytest_modeleval.suites.bfcl_v3.data import BfclCase, load_subset

# bfcl-eval's prompting format sends execution results back as a user message
# that starts with this repr.
RESULTS_PREFIX = "[{'role': 'tool'"


@functools.cache
def multi_turn_case(sample_id: str) -> BfclCase:
    """Return the multi_turn_base sample with this id."""
    load_bfcl()
    index = int(sample_id.rsplit("_", 1)[1])
    case = load_subset("multi_turn_base", index + 1)[index]
    assert case.entry["id"] == sample_id
    return case


def is_after_results(body: dict[str, Any]) -> bool:
    """Tell whether the request's last message carries execution results."""
    last = body["messages"][-1]
    return last["role"] == "tool" or str(last.get("content")).startswith(RESULTS_PREFIX)


def turn_index(body: dict[str, Any]) -> int:
    """Return the turn a request belongs to, counting user queries but not results."""
    questions = [message for message in body["messages"] if message["role"] == "user"
                 and not str(message.get("content")).startswith(RESULTS_PREFIX)]
    return len(questions) - 1
