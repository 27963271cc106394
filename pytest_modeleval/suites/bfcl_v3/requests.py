"""Build the chat request of a single-turn BFCL sample, in FC or prompting mode."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from ._bfcl import load_bfcl
from .data import BfclCase

# The Chat Completions API accepts only these tool names.
OPENAI_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True)
class BfclRequest:
    """Messages and tools to send, and how to map tool names in the reply back."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    sent_to_original: dict[str, str]

    def original_name(self, name: str) -> str:
        return self.sent_to_original.get(name, name)


def build_request(case: BfclCase, mode: str, underscore_to_dot: bool) -> BfclRequest:
    """Return the request for one sample; replies are mapped back to original names."""
    bfcl = load_bfcl()
    entry = copy.deepcopy(case.entry)
    # bfcl-eval adds a language hint ("Note that the provided function is in
    # Java 8 SDK syntax.") to function docs at generation time only.
    functions = bfcl.add_language_hint([entry])[0]["function"]
    messages = copy.deepcopy(entry["question"][0])
    if mode == "prompt":
        messages = bfcl.system_prompt(messages, functions, entry["id"])
        return BfclRequest(messages, None, underscore_aliases(functions, underscore_to_dot))
    return BfclRequest(messages, build_tools(functions, underscore_to_dot),
                       underscore_aliases(functions, underscore_to_dot))


def build_tools(functions: list[dict[str, Any]], underscore_to_dot: bool
                ) -> list[dict[str, Any]]:
    """Return Chat Completions tools for BFCL function docs."""
    bfcl = load_bfcl()
    tools = bfcl.convert_to_tool(copy.deepcopy(functions), bfcl.GORILLA_TO_OPENAPI,
                                 bfcl.ModelStyle.OPENAI_COMPLETIONS)
    if not underscore_to_dot:
        # convert_to_tool always replaces dots; send the dataset's names instead.
        for tool, function in zip(tools, functions):
            tool["function"]["name"] = function["name"]
    return tools


def underscore_aliases(functions: list[dict[str, Any]], enabled: bool) -> dict[str, str]:
    """Map `math_factorial` to `math.factorial` for each dotted function name."""
    if not enabled:
        return {}
    originals = {function["name"] for function in functions}
    aliases = {}
    for name in originals:
        alias = name.replace(".", "_")
        if alias != name and alias not in originals:
            aliases[alias] = name
    return aliases
