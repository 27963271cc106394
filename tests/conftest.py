from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scripted_server import ScriptedServer


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    """Provide a started ScriptedServer that replies "OK" until the test sets `script`."""
    with ScriptedServer() as server:
        yield server
