"""BFCL v3 (Berkeley Function Calling Leaderboard), the 13 single-turn subsets,
scored with bfcl-eval's own checker and decoders."""

from __future__ import annotations

from dataclasses import dataclass

from ...client import ChatClient, ChatReply
from ...options import RunConfig
from .. import Grade, Rollup, Sample, SubsetScore
from ._bfcl import load_bfcl
from .data import CATEGORIES, SUBSETS, BfclCase, load_subset
from .requests import BfclRequest, build_request
from .rollups import MULTI_TURN_SUBSETS, ROLLUP_NAMES, compute_rollups
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
    # Subsets that roll-ups expect but this version cannot run yet.
    planned_subsets: tuple[str, ...] = MULTI_TURN_SUBSETS

    def load(self, config: RunConfig) -> list[Sample]:
        load_bfcl()  # fail early with the install line
        samples = []
        for subset in self.subsets:
            for case in load_subset(subset, config.limit):
                samples.append(Sample(self.name, subset, case.entry["id"], CATEGORIES[subset],
                                      case))
        return samples

    def run(self, sample: Sample, client: ChatClient, config: RunConfig) -> BfclExchange:
        request = build_request(sample.data, config.bfcl_mode, config.bfcl_underscore_to_dot)
        return BfclExchange(request, client.chat(request.messages, request.tools))

    def grade(self, sample: Sample, result: BfclExchange, config: RunConfig) -> Grade:
        case: BfclCase = sample.data
        return grade_reply(sample.subset, case, result.request, result.reply, config.bfcl_mode)

    def reply_of(self, result: BfclExchange) -> ChatReply:
        return result.reply

    def rollups(self, subsets: dict[str, SubsetScore]) -> list[Rollup]:
        return compute_rollups(subsets)

    def version(self) -> dict[str, str]:
        return {"bfcl_eval": load_bfcl().version}


SUITE = BfclV3Suite()
