"""Hold a BFCL multi-turn conversation: model steps, simulated execution, results back.

This follows bfcl-eval's multi-turn inference loop for OpenAI-compatible
models in FC and prompting mode. In each turn the model is asked again after
every step that produced calls, until a reply decodes to no call or the step
limit is passed. Calls run on this sample's own SimulatedWorld.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ...client import Chat, ChatReply, ServerError
from ._bfcl import load_bfcl
from .data import BfclCase
from .decode import DecodeError, make_python_reply_safe
from .execution import SimulatedWorld
from .requests import build_tools, underscore_aliases

# Maximum length of each reply text, call and execution result in the transcript.
MAX_TRANSCRIPT_TEXT = 2_000


@dataclass(frozen=True)
class Step:
    """One model reply in a turn, the calls decoded from it and their results."""

    reply: ChatReply
    calls: tuple[str, ...] = ()
    results: tuple[str, ...] = ()
    decode_error: str = ""


@dataclass(frozen=True)
class Turn:
    query: tuple[dict[str, Any], ...]
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Conversation:
    """All turns that ran; fewer turns than the sample has means the step limit stopped it."""

    turns: tuple[Turn, ...]
    force_quit: bool = False
    # The tools offered at the start (later turns may add held-out ones).
    tools: tuple[dict[str, Any], ...] = ()

    def decoded_calls(self) -> list[list[list[str]]]:
        """Per turn, the call lists of the steps that decoded to calls (the checker's input)."""
        return [[list(step.calls) for step in turn.steps if step.calls] for turn in self.turns]

    def replies(self) -> list[ChatReply]:
        return [step.reply for turn in self.turns for step in turn.steps]

    def transcript(self) -> list[dict[str, Any]]:
        """Return the conversation as JSON-ready data for results.json and the HTML report."""
        return [{"query": [dict(message) for message in turn.query],
                 "steps": [_step_record(step) for step in turn.steps]}
                for turn in self.turns]


def is_long_context(entry_id: str) -> bool:
    # bfcl-eval decides from the category part of the id.
    return "long_context" in entry_id.rsplit("_", 1)[0]


def run_conversation(case: BfclCase, client: Chat, mode: str, underscore_to_dot: bool
                     ) -> Conversation:
    """Talk to the model through every turn of the sample; raises ServerError on a failed call."""
    bfcl = load_bfcl()
    entry = copy.deepcopy(case.entry)
    # Hints go on the docs offered from the start, not on held-out ones, as in bfcl-eval.
    functions = bfcl.add_language_hint([entry])[0]["function"]
    held_out: dict[str, list[dict[str, Any]]] = entry.get("missed_function") or {}
    world = SimulatedWorld(entry["involved_classes"], entry["initial_config"],
                           is_long_context(entry["id"]))
    questions = entry["question"]
    dialogue = _Dialogue(client, mode, functions, underscore_to_dot)
    opening_tools = tuple(dialogue.tools or ())
    if mode == "prompt":
        questions[0] = bfcl.system_prompt(questions[0], functions, entry["id"])
    turns = []
    for index, query in enumerate(questions):
        if str(index) in held_out:
            query = dialogue.offer(held_out[str(index)])
        try:
            steps, force_quit = dialogue.turn(query, world)
        except ServerError as error:
            raise ServerError(f"turn {index}: {error}") from None
        turns.append(Turn(tuple(query), tuple(steps)))
        if force_quit:
            return Conversation(tuple(turns), force_quit=True, tools=opening_tools)
    return Conversation(tuple(turns), tools=opening_tools)


class _Dialogue:
    """The message history and the offered tools of one conversation."""

    def __init__(self, client: Chat, mode: str, functions: list[dict[str, Any]],
                 underscore_to_dot: bool) -> None:
        self.client = client
        self.mode = mode
        self.functions = functions
        self.underscore_to_dot = underscore_to_dot
        self.messages: list[dict[str, Any]] = []
        self.replies = 0
        self._compile_tools()

    def offer(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Offer held-out functions; return the user message that announces them."""
        bfcl = load_bfcl()
        if self.mode == "prompt":
            return [{"role": "user",
                     "content": bfcl.additional_function_prompt_prompting.format(functions=docs)}]
        self.functions.extend(docs)
        self._compile_tools()
        return [{"role": "user", "content": bfcl.additional_function_prompt_fc}]

    def turn(self, query: list[dict[str, Any]], world: SimulatedWorld
             ) -> tuple[list[Step], bool]:
        """Run one turn; return its steps and whether the step limit stopped it."""
        limit = load_bfcl().maximum_step_limit
        self.messages.extend(query)
        steps: list[Step] = []
        while True:
            reply = self.client.chat(self.messages, self.tools)
            self.replies += 1
            self.messages.append(self._assistant_message(reply))
            try:
                calls = self._decode(reply)
            except DecodeError as error:
                steps.append(Step(reply, decode_error=str(error)))
                return steps, False
            if load_bfcl().is_empty_execute_response(calls):
                steps.append(Step(reply))
                return steps, False
            results = world.execute(calls)
            self.messages.extend(self._result_messages(reply, calls, results))
            steps.append(Step(reply, tuple(calls), tuple(results)))
            if len(steps) > limit:
                return steps, True

    def _compile_tools(self) -> None:
        self.tools = (None if self.mode == "prompt"
                      else build_tools(self.functions, self.underscore_to_dot))
        self.aliases = underscore_aliases(self.functions, self.underscore_to_dot)

    def _decode(self, reply: ChatReply) -> list[str]:
        bfcl = load_bfcl()
        try:
            if self.mode == "prompt":
                if reply.content is None:
                    raise DecodeError("the reply has no text")
                return bfcl.decode_execute_prompting(make_python_reply_safe(reply.content))
            if not reply.tool_calls:
                return []  # an answer in text: the turn ends, as when decoding fails
            named = [{self.aliases.get(call.name, call.name): call.arguments}
                     for call in reply.tool_calls]
            return bfcl.convert_to_function_call(named)
        except DecodeError:
            raise
        except Exception as error:  # noqa: BLE001 - any decoder failure ends the turn
            raise DecodeError(f"{type(error).__name__}: {error}") from None

    def _assistant_message(self, reply: ChatReply) -> dict[str, Any]:
        # Some servers reject a null content next to tool calls; reasoning is not sent back.
        message: dict[str, Any] = {"role": "assistant", "content": reply.content or ""}
        if self.mode == "fc" and reply.tool_calls:
            message["tool_calls"] = [
                {"id": self._call_id(call.id, index), "type": "function",
                 "function": {"name": call.name, "arguments": call.arguments}}
                for index, call in enumerate(reply.tool_calls)]
        return message

    def _result_messages(self, reply: ChatReply, calls: list[str], results: list[str]
                         ) -> list[dict[str, Any]]:
        if self.mode == "prompt":
            text = load_bfcl().format_execution_results_prompting(
                {}, results, {"model_responses_decoded": calls})
            return [{"role": "user", "content": text}]
        return [{"role": "tool", "content": result,
                 "tool_call_id": self._call_id(call.id, index)}
                for index, (result, call) in enumerate(zip(results, reply.tool_calls))]

    def _call_id(self, call_id: str | None, index: int) -> str:
        # A server that sends no id still needs each tool message matched to
        # its call, with ids unique in the conversation.
        return call_id or f"call_{self.replies}_{index}"


def _step_record(step: Step) -> dict[str, Any]:
    reply = step.reply.to_dict()
    reply["content"] = _clip(reply["content"])
    reply["reasoning_content"] = _clip(reply["reasoning_content"])
    reply["tool_calls"] = [{**call, "arguments": _clip(call["arguments"])}
                           for call in reply["tool_calls"]]
    return {
        "reply": reply,
        "calls": [_clip(call) for call in step.calls],
        "results": [_clip(result) for result in step.results],
        "decode_error": step.decode_error,
        "latency_s": round(step.reply.latency_s, 4),
        "prompt_tokens": step.reply.prompt_tokens,
        "completion_tokens": step.reply.completion_tokens,
    }


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_TRANSCRIPT_TEXT:
        return text
    return text[:MAX_TRANSCRIPT_TEXT] + f"... [{len(text) - MAX_TRANSCRIPT_TEXT} more]"
