"""Chinese SimpleQA: one item per question, graded by a judge model (--judge-model).

Run with `pytest --model NAME -k chinese_simpleqa --judge-model JUDGE`; offline,
add `--dataset chinese_simpleqa=PATH` with a local copy of the data.
"""

import pytest


@pytest.mark.modeleval("chinese_simpleqa")
def test_chinese_simpleqa(graded):
    graded.assert_correct()
