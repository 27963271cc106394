from __future__ import annotations

from collections.abc import Iterator

import datasets  # noqa: F401
import httpcore2  # noqa: F401
import math_verify  # noqa: F401
import pytest

from pytest_modeleval.client import ChatClient, Endpoint
from tests.scripted_server import ScriptedServer

# httpx2 imports httpcore2 on its first request and caches its exception
# classes. An in-process pytester run restores sys.modules afterwards, which
# would drop httpcore2 and leave that cache pointing at stale classes, so a
# dropped connection would escape as a raw httpcore2 error. Importing it here
# keeps one copy for the whole test session. The same holds for datasets and
# math_verify, whose compiled dependencies (pyarrow, antlr) cannot be imported
# a second time in one process.


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    """Provide a started ScriptedServer that replies "OK" until the test sets `script`."""
    with ScriptedServer() as server:
        yield server


@pytest.fixture(autouse=True)
def private_response_cache(tmp_path_factory: pytest.TempPathFactory,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the default response cache at a new folder for each test.

    Runs inside one test share the cache, as a user's reruns do; no test
    reads another's replies or writes to the real ~/.cache.
    """
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture(autouse=True)
def offline_datasets(tmp_path_factory: pytest.TempPathFactory,
                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep `datasets` off the network and out of the real ~/.cache.

    Tests load data from local files only; a hub id must fail at once, not
    reach for another host. The folder is shared by the tests of one process
    so that each data file is converted once.
    """
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path_factory.getbasetemp() / "hf-home"))


PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                   "all_proxy")
UNSET_KEY_ENV = "MODELEVAL_TEST_UNSET_KEY"


@pytest.fixture
def chat_client(scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
                ) -> Iterator[ChatClient]:
    """Provide a ChatClient for the scripted server, with no retries and no API key."""
    # Proxy variables would route loopback traffic away from the scripted server.
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(UNSET_KEY_ENV, raising=False)
    client = ChatClient(Endpoint("scripted", scripted_server.url, UNSET_KEY_ENV), max_retries=0)
    yield client
    client.close()
