"""SimpleQA: one item per question, graded by a judge model (--judge-model).

Run with `pytest --model NAME -k simple_qa --judge-model JUDGE`; offline, add
`--dataset simple_qa=PATH` with a local copy of the data.
"""

import pytest


@pytest.mark.modeleval("simple_qa")
def test_simple_qa(graded):
    graded.assert_correct()
