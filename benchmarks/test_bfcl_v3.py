"""BFCL v3: one item per sample of all 17 subsets, single-turn and multi-turn.

Run with `pytest --model NAME --base-url URL -k bfcl`; select subsets with
-k, e.g. `-k "bfcl and live_simple"`.
"""

import pytest


@pytest.mark.modeleval("bfcl_v3")
def test_bfcl_v3(graded):
    graded.assert_correct()
