"""Chinese SimpleQA: SimpleQA's method with Chinese questions and a Chinese judge prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...data_source import HubDataset
from . import SimpleQaSuite
from .grading import Language

# The six primary categories, largest first.
CATEGORIES = ("人文与社会科学", "生活、艺术与文化", "自然与自然科学", "工程、技术与应用科学",
              "社会", "中华文化")


@dataclass(frozen=True)
class ChineseSimpleQaSuite(SimpleQaSuite):
    name: str = "chinese_simpleqa"
    subsets: tuple[str, ...] = CATEGORIES
    hub: HubDataset = HubDataset("OpenStellarTeam/Chinese-SimpleQA", split="train")
    language: Language = "zh"
    question_field: str = "question"

    def subset_of(self, row: dict[str, Any]) -> str:
        """Return the row's subset: its primary category."""
        return str(row.get("primary_category") or "").strip() or "其他"


SUITE = ChineseSimpleQaSuite()
