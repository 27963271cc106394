"""BFCL v3 (Berkeley Function Calling Leaderboard): 13 single-turn and 4 multi-turn
subsets, scored with bfcl-eval's own checkers and decoders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...client import ChatReply
from ...options import RunConfig
from .. import (
    Clients,
    Grade,
    Rollup,
    Sample,
    SampleSet,
    SubsetScore,
    accuracy,
    combined_reply,
    request_view,
)
from ._bfcl import load_bfcl
from .conversation import Conversation, run_conversation
from .data import CATEGORIES, MULTI_TURN_SUBSETS, SUBSETS, BfclCase, load_subset
from .multi_turn_scoring import grade_conversation
from .requests import BfclRequest, build_request
from .rollups import ROLLUP_NAMES, compute_rollups, rollup_weights
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
    needs_judge: bool = False
    sample_id_chars: str | None = None
    subset_ids: tuple[str, ...] = ()

    def load(self, config: RunConfig) -> SampleSet:
        bfcl = load_bfcl()  # fail early with the install line
        samples = []
        for subset in self.subsets:
            for case in load_subset(subset, config.limit):
                samples.append(Sample(self.name, subset, case.entry["id"], CATEGORIES[subset],
                                      case))
        return SampleSet(samples, {"bfcl_eval": bfcl.version})

    def run(self, sample: Sample, clients: Clients, config: RunConfig
            ) -> BfclExchange | Conversation:
        if sample.subset in MULTI_TURN_SUBSETS:
            return run_conversation(sample.data, clients.model, config.bfcl_mode,
                                    config.bfcl_underscore_to_dot)
        request = build_request(sample.data, config.bfcl_mode, config.bfcl_underscore_to_dot)
        return BfclExchange(request, clients.model.chat(request.messages, request.tools))

    def grade(self, sample: Sample, result: BfclExchange | Conversation, config: RunConfig
              ) -> Grade:
        case: BfclCase = sample.data
        if isinstance(result, Conversation):
            return grade_conversation(case, result)
        return grade_reply(sample.subset, case, result.request, result.reply, config.bfcl_mode)

    def reply_of(self, result: BfclExchange | Conversation) -> ChatReply:
        if isinstance(result, BfclExchange):
            return result.reply
        return combined_reply(result.replies())

    def transcript_of(self, result: BfclExchange | Conversation) -> list[dict[str, Any]] | None:
        return result.transcript() if isinstance(result, Conversation) else None

    def request_of(self, result: BfclExchange | Conversation) -> dict[str, Any] | None:
        if isinstance(result, Conversation):
            # The first turn's query (with the system prompt in prompting mode) and
            # the tools offered at the start; later queries are in the transcript.
            first = list(result.turns[0].query) if result.turns else []
            return request_view(first, list(result.tools))
        return request_view(result.request.messages, result.request.tools)

    def metrics(self, records: list[dict[str, Any]], config: dict[str, Any]
                ) -> list[tuple[str, float | None]]:
        return accuracy(records)

    def rollups(self, subsets: dict[str, SubsetScore], records: list[dict[str, Any]],
                config: dict[str, Any]) -> list[Rollup]:
        return compute_rollups(subsets)

    def rollup_weights(self, subsets: dict[str, SubsetScore]) -> dict[str, dict[str, float]]:
        """Return each roll-up's weight on each subset mean, for the roll-up's interval."""
        return rollup_weights(subsets)


SUITE = BfclV3Suite()
