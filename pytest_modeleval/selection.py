"""Whether `-k` can select any item of a benchmark function before its data is loaded.

Items get their ids from the data, so pytest applies -k only after every
benchmark's data is loaded. `pytest -k bfcl` would then download SimpleQA and
AIME from the hub for nothing. Deciding from what is known before loading
avoids that: the names of the module, function and markers, and the shape of
item ids (`SUBSET/SAMPLE_ID[/rN]`). An expression that stays false for every
value of the names that could still be part of an item id selects nothing.
"""

from __future__ import annotations

import itertools
import re

import pytest

# The characters that pytest's -k grammar reads as one name.
_NAME = re.compile(r"[\w:+\-.\[\]\\/]+")
_OPERATORS = frozenset({"and", "or", "not", "True", "False"})
# More free names than this are not enumerated; the function is then loaded.
MAX_FREE_NAMES = 8


def may_select(metafunc: pytest.Metafunc, subsets: tuple[str, ...], id_chars: str) -> bool:
    """Return False only when -k cannot select any item of this function.

    `id_chars` lists every character a sample id of the benchmark may contain.
    """
    expression = (metafunc.config.option.keyword or "").strip()
    if not expression:
        return True
    try:
        from _pytest.mark import KeywordMatcher
        from _pytest.mark.expression import Expression

        compiled = Expression.compile(expression)
        known = KeywordMatcher.from_item(metafunc.definition)
    except Exception:  # noqa: BLE001 - pytest internals moved: load, as pytest would
        return True
    names = {name for name in _NAME.findall(expression) if name not in _OPERATORS}
    free = sorted(name for name in names
                  if not known(name) and _may_be_in_id(name, subsets, id_chars))
    if len(free) > MAX_FREE_NAMES:
        return True
    for values in itertools.product((False, True), repeat=len(free)):
        chosen = {name for name, value in zip(free, values) if value}
        if compiled.evaluate(lambda name, _chosen=chosen, **_: name in _chosen or known(name)):
            return True
    return False


def _may_be_in_id(name: str, subsets: tuple[str, ...], id_chars: str) -> bool:
    lowered = name.lower()
    if "/" in lowered or any(lowered in subset.lower() for subset in subsets):
        return True
    return set(lowered) <= set(id_chars.lower() + "/r")
