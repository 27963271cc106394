"""BFCL v3 (Berkeley Function Calling Leaderboard): 13 single-turn and 4 multi-turn
subsets, scored with bfcl-eval's own checkers and decoders."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ...client import Chat, ChatReply
from ...options import RunConfig
from .. import Grade, Rollup, Sample, SubsetScore
from ._bfcl import load_bfcl
from .conversation import Conversation, run_conversation
from .data import CATEGORIES, MULTI_TURN_SUBSETS, SUBSETS, BfclCase, load_subset
from .multi_turn_scoring import grade_conversation
from .requests import BfclRequest, build_request
from .rollups import ROLLUP_NAMES, compute_rollups
from .scoring import grade_reply


@dataclass(frozen=True)
class BfclExchange:
    """The request that was sent and the reply to it."""

    request: BfclRequest
    reply: ChatReply


@dataclass(frozen=True)
class BfclV3Suite:
    name: str = "bfcl_v3"
    subsets: tuple[str, ...] = SUBSETS
    rollup_names: tuple[str, ...] = ROLLUP_NAMES

    def load(self, config: RunConfig) -> list[Sample]:
        load_bfcl()  # fail early with the install line
        samples = []
        for subset in self.subsets:
            for case in load_subset(subset, config.limit):
                samples.append(Sample(self.name, subset, case.entry["id"], CATEGORIES[subset],
                                      case))
        return samples

    def run(self, sample: Sample, client: Chat, config: RunConfig
            ) -> BfclExchange | Conversation:
        if sample.subset in MULTI_TURN_SUBSETS:
            return run_conversation(sample.data, client, config.bfcl_mode,
                                    config.bfcl_underscore_to_dot)
        request = build_request(sample.data, config.bfcl_mode, config.bfcl_underscore_to_dot)
        return BfclExchange(request, client.chat(request.messages, request.tools))

    def grade(self, sample: Sample, result: BfclExchange | Conversation, config: RunConfig
              ) -> Grade:
        case: BfclCase = sample.data
        if isinstance(result, Conversation):
            return grade_conversation(case, result)
        return grade_reply(sample.subset, case, result.request, result.reply, config.bfcl_mode)

    def reply_of(self, result: BfclExchange | Conversation) -> ChatReply:
        if isinstance(result, BfclExchange):
            return result.reply
        return _combined_reply(result.replies())

    def transcript_of(self, result: BfclExchange | Conversation) -> list[dict[str, Any]] | None:
        return result.transcript() if isinstance(result, Conversation) else None

    def rollups(self, subsets: dict[str, SubsetScore]) -> list[Rollup]:
        return compute_rollups(subsets)

    def version(self) -> dict[str, str]:
        return {"bfcl_eval": load_bfcl().version}


def _combined_reply(replies: list[ChatReply]) -> ChatReply:
    """Return the last reply of a conversation, with the time and tokens of all its replies."""
    if not replies:
        return ChatReply(content=None)
    return replace(
        replies[-1],
        latency_s=sum(reply.latency_s for reply in replies),
        attempts=sum(reply.attempts for reply in replies),
        prompt_tokens=_total(reply.prompt_tokens for reply in replies),
        completion_tokens=_total(reply.completion_tokens for reply in replies),
    )


def _total(counts: Any) -> int | None:
    known = [count for count in counts if count is not None]
    return sum(known) if known else None


SUITE = BfclV3Suite()
