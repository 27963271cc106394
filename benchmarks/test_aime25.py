"""AIME 2025: one item per problem and repeat, subsets AIME2025-I and AIME2025-II.

Run with `pytest --model NAME --base-url URL -k aime25 --repeats 4`; offline,
add `--dataset aime25=PATH` with a local copy of the data.
"""

import pytest


@pytest.mark.modeleval("aime25")
def test_aime25(graded):
    graded.assert_correct()
