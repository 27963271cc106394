"""Chinese SimpleQA: SimpleQA's method with Chinese questions and a Chinese judge prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...data_source import HubDataset
from . import SimpleQaSuite
from .grading import Language

# The six primary categories, largest first, and their names in item ids,
# where pytest would escape Chinese text to \uXXXX that -k cannot match as typed.
CATEGORY_IDS = {
    "人文与社会科学": "humanities_and_social_sciences",
    "生活、艺术与文化": "life_art_and_culture",
    "自然与自然科学": "natural_sciences",
    "工程、技术与应用科学": "engineering_and_technology",
    "社会": "society",
    "中华文化": "chinese_culture",
}
CATEGORIES = tuple(CATEGORY_IDS)


@dataclass(frozen=True)
class ChineseSimpleQaSuite(SimpleQaSuite):
    name: str = "chinese_simpleqa"
    subsets: tuple[str, ...] = CATEGORIES
    hub: HubDataset = HubDataset("OpenStellarTeam/Chinese-SimpleQA", split="train")
    language: Language = "zh"
    question_field: str = "question"
    subset_ids: tuple[str, ...] = tuple(CATEGORY_IDS.values())

    def id_subset(self, subset: str) -> str | None:
        return CATEGORY_IDS.get(subset)

    def subset_of(self, row: dict[str, Any]) -> str:
        """Return the row's subset: its primary category."""
        return str(row.get("primary_category") or "").strip() or "其他"


SUITE = ChineseSimpleQaSuite()
