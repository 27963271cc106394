"""Tests of ChatClient and the retry policy, against the scripted server on 127.0.0.1."""

from __future__ import annotations

import email.utils
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import openai
import pytest

from pytest_modeleval import retry
from pytest_modeleval.client import (
    PLACEHOLDER_API_KEY,
    ChatClient,
    Endpoint,
    ServerError,
)
from pytest_modeleval.client import ToolCall as ClientToolCall
from pytest_modeleval.options import build_generation_settings
from tests.scripted_server import Drop, Fail, Garbled, Reply, ScriptedServer, ToolCall

MODEL = "scripted-model"
KEY_ENV = "MODELEVAL_TEST_API_KEY"
SECRET = "sk-secret-123"
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Return the current weather of a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Return the local time in a time zone.",
            "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
        },
    },
]
SCRIPTED_CALLS = (
    ToolCall("get_weather", '{"city": "Paris", "unit": "celsius"}', id="call_weather"),
    ToolCall("get_time", '{"tz": "Europe/Paris"}', id="call_time"),
)
EXPECTED_CALLS = (
    ClientToolCall("get_weather", '{"city": "Paris", "unit": "celsius"}', "call_weather"),
    ClientToolCall("get_time", '{"tz": "Europe/Paris"}', "call_time"),
)
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                   "all_proxy")

MakeClient = Callable[..., ChatClient]


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # Backoff without Retry-After then waits at most 0.02 s for each of the first two retries,
    # instead of up to 1 s.
    monkeypatch.setattr(retry, "BASE_BACKOFF_S", 0.01)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # ChatClient's HTTP client reads proxy variables, which would route loopback traffic away.
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_client(scripted_server: ScriptedServer) -> Iterator[MakeClient]:
    """Build ChatClients for the scripted server and close them after the test."""
    clients: list[ChatClient] = []

    def make(api_key_env: str = KEY_ENV, **kwargs: Any) -> ChatClient:
        endpoint = Endpoint(MODEL, scripted_server.url, api_key_env)
        client = ChatClient(endpoint, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno == logging.WARNING]


def fail_first(outcomes: list[Fail | Drop]) -> Callable[[dict, int], Any]:
    """Return a script that sends `outcomes[attempt]` while it lasts and then a reply."""

    def script(body: dict, attempt: int) -> Any:
        if attempt < len(outcomes):
            return outcomes[attempt]
        return Reply(content="recovered")

    return script


def status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(status, headers=headers or {}, request=request)
    return openai.APIStatusError(f"Error code: {status}", response=response, body=None)


# Replies


def test_client_plain_reply(scripted_server: ScriptedServer, make_client: MakeClient) -> None:
    scripted_server.script = lambda body, attempt: Reply(
        content="Sunny, 21 degrees", prompt_tokens=17, completion_tokens=4, delay=0.2)

    reply = make_client().chat(MESSAGES)

    assert reply.content == "Sunny, 21 degrees"
    assert reply.finish_reason == "stop"
    assert reply.tool_calls == ()
    assert reply.reasoning_content is None
    assert reply.prompt_tokens == 17
    assert reply.completion_tokens == 4
    assert reply.attempts == 1
    assert reply.latency_s >= 0.2
    assert reply.latency_s < 10
    assert scripted_server.requests[0]["model"] == MODEL
    assert scripted_server.requests[0]["messages"] == MESSAGES


def test_client_tool_calls_round_trip(scripted_server: ScriptedServer,
                                      make_client: MakeClient) -> None:
    scripted_server.script = lambda body, attempt: Reply(tool_calls=SCRIPTED_CALLS)

    reply = make_client().chat(MESSAGES, tools=TOOLS)

    assert reply.tool_calls == EXPECTED_CALLS
    assert reply.content is None
    assert reply.finish_reason == "tool_calls"
    assert scripted_server.requests[0]["tools"] == TOOLS


def test_client_without_tools_omits_key(scripted_server: ScriptedServer,
                                        make_client: MakeClient) -> None:
    make_client().chat(MESSAGES)

    assert "tools" not in scripted_server.requests[0]


def test_stream_matches_plain_reply(scripted_server: ScriptedServer,
                                    make_client: MakeClient) -> None:
    scripted_server.script = lambda body, attempt: Reply(
        content="Checking both.", tool_calls=SCRIPTED_CALLS, prompt_tokens=31,
        completion_tokens=12)

    plain = make_client().chat(MESSAGES, tools=TOOLS)
    streamed = make_client(stream=True).chat(MESSAGES, tools=TOOLS)

    assert streamed.tool_calls == EXPECTED_CALLS
    assert streamed.tool_calls == plain.tool_calls
    assert streamed.content == "Checking both."
    assert streamed.content == plain.content
    assert streamed.finish_reason == "tool_calls"
    assert streamed.prompt_tokens == 31
    assert streamed.completion_tokens == 12
    assert streamed.to_dict() == plain.to_dict()
    plain_body, streamed_body = scripted_server.requests
    assert "stream" not in plain_body
    assert streamed_body["stream"] is True
    assert streamed_body["stream_options"] == {"include_usage": True}
    assert streamed_body["tools"] == TOOLS


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_client_keeps_reasoning_content(scripted_server: ScriptedServer,
                                        make_client: MakeClient, stream: bool) -> None:
    scripted_server.script = lambda body, attempt: Reply(
        content="It is sunny.", reasoning_content="The user asks about Paris weather.")

    reply = make_client(stream=stream).chat(MESSAGES)

    assert reply.reasoning_content == "The user asks about Paris weather."
    assert reply.content == "It is sunny."
    assert reply.to_dict()["reasoning_content"] == "The user asks about Paris weather."


# Retries


def test_retry_honours_retry_after(scripted_server: ScriptedServer, make_client: MakeClient,
                                   caplog: pytest.LogCaptureFixture) -> None:
    scripted_server.script = fail_first([Fail(429, message="slow down", retry_after="1")])
    caplog.set_level(logging.WARNING)

    started = time.monotonic()
    reply = make_client().chat(MESSAGES)
    elapsed = time.monotonic() - started

    assert reply.content == "recovered"
    assert reply.attempts == 2
    assert len(scripted_server.requests) == 2
    # Backoff without the header would wait at most 0.01 s (see fast_backoff).
    assert elapsed >= 0.95
    assert reply.latency_s >= 0.95
    records = warnings_of(caplog)
    assert len(records) == 1
    assert MODEL in records[0].getMessage()
    assert "429" in records[0].getMessage()


@pytest.mark.parametrize("fault", [Fail(500), Drop()], ids=["500", "dropped"])
def test_retry_once_recovers(scripted_server: ScriptedServer, make_client: MakeClient,
                             fault: Fail | Drop) -> None:
    scripted_server.script = fail_first([fault])

    reply = make_client().chat(MESSAGES)

    assert reply.content == "recovered"
    assert reply.attempts == 2
    assert len(scripted_server.requests) == 2


def test_retry_twice_after_503(scripted_server: ScriptedServer, make_client: MakeClient,
                               caplog: pytest.LogCaptureFixture) -> None:
    scripted_server.script = fail_first([Fail(503), Fail(503)])
    caplog.set_level(logging.WARNING)

    reply = make_client().chat(MESSAGES)

    assert reply.content == "recovered"
    assert reply.attempts == 3
    assert len(scripted_server.requests) == 3
    records = warnings_of(caplog)
    assert len(records) == 2
    assert all("503" in record.getMessage() for record in records)


def test_stream_retry_on_server_error(scripted_server: ScriptedServer,
                                         make_client: MakeClient) -> None:
    scripted_server.script = fail_first([Fail(502)])

    reply = make_client(stream=True).chat(MESSAGES)

    assert reply.content == "recovered"
    assert reply.attempts == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_4xx_not_retried(scripted_server: ScriptedServer, make_client: MakeClient,
                                caplog: pytest.LogCaptureFixture, status: int) -> None:
    scripted_server.script = fail_first([Fail(status, message="request rejected")])
    caplog.set_level(logging.WARNING)

    with pytest.raises(ServerError) as error:
        make_client().chat(MESSAGES)

    assert len(scripted_server.requests) == 1
    assert str(status) in str(error.value)
    assert "request rejected" in str(error.value)
    assert "attempts" not in str(error.value)
    assert warnings_of(caplog) == []


def test_retries_exhausted_raise(scripted_server: ScriptedServer, make_client: MakeClient,
                                 caplog: pytest.LogCaptureFixture) -> None:
    scripted_server.script = lambda body, attempt: Fail(500, message="engine crashed")
    caplog.set_level(logging.WARNING)

    with pytest.raises(ServerError) as error:
        make_client(max_retries=2).chat(MESSAGES)

    assert len(scripted_server.requests) == 3
    assert "after 3 attempts" in str(error.value)
    assert "500" in str(error.value)
    assert "engine crashed" in str(error.value)
    assert len(warnings_of(caplog)) == 2


def test_unreadable_body_retried(scripted_server: ScriptedServer,
                                 make_client: MakeClient) -> None:
    scripted_server.script = lambda body, attempt: (
        Garbled() if attempt == 0 else Reply(content="recovered"))

    reply = make_client().chat(MESSAGES)

    assert reply.content == "recovered"
    assert reply.attempts == 2


@pytest.mark.parametrize(("body", "message"), [
    (b"[]", "list instead of a completion"),
    (b'{"id": "x", "choices": []}', "without choices"),
    (b'{"choices": [{"message": null}]}', "malformed completion"),
    (b'{"choices": [{"message": {"tool_calls": [{"id": "c"}]}}]}', "malformed completion"),
    (b'{"choices": [{"message": {"content": ["a", "b"]}}]}', "expected text, got list"),
    (b'{"choices": [{"message": {"tool_calls": [{"function": {"name": "f", "arguments": {}}}]}}]}',
     "expected text, got dict"),
], ids=["list", "no-choices", "null-message", "call-without-function", "content-list",
        "arguments-object"])
def test_json_that_is_no_completion_errors(scripted_server: ScriptedServer,
                                           make_client: MakeClient, body: bytes,
                                           message: str) -> None:
    scripted_server.script = lambda request, attempt: Garbled(body)

    with pytest.raises(ServerError, match=message):
        make_client().chat(MESSAGES)

    assert len(scripted_server.requests) == 1


def test_plain_request_sends_sdk_headers(scripted_server: ScriptedServer,
                                         make_client: MakeClient) -> None:
    make_client().chat(MESSAGES)

    headers = scripted_server.headers[0]
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("OpenAI/Python")


def test_zero_retries_sends_once(scripted_server: ScriptedServer,
                                 make_client: MakeClient) -> None:
    scripted_server.script = lambda body, attempt: Fail(503)

    with pytest.raises(ServerError, match="503"):
        make_client(max_retries=0).chat(MESSAGES)

    assert len(scripted_server.requests) == 1


# Generation settings


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_gen_settings_reach_body(scripted_server: ScriptedServer,
                                 make_client: MakeClient, stream: bool) -> None:
    gen = build_generation_settings([
        ("temperature", 0.2), ("top_p", 0.9), ("max_tokens", 64), ("seed", 7),
        ("parallel_tool_calls", False), ("top_k", 40), ("repetition_penalty", 1.05),
        ("enable_thinking", False), ("timeout", 30),
    ])

    make_client(gen=gen, stream=stream).chat(MESSAGES, tools=TOOLS)

    body = scripted_server.requests[0]
    assert body["temperature"] == 0.2
    assert body["top_p"] == 0.9
    assert body["max_tokens"] == 64
    assert body["seed"] == 7
    assert body["parallel_tool_calls"] is False
    # extra_body goes into the top level of the JSON body, as the openai SDK sends it.
    assert body["top_k"] == 40
    assert body["repetition_penalty"] == 1.05
    assert body["enable_thinking"] is False
    assert "extra_body" not in body
    assert "timeout" not in body


def test_gen_timeout_bounds_request(scripted_server: ScriptedServer,
                                    make_client: MakeClient) -> None:
    scripted_server.script = lambda body, attempt: Reply(content="late", delay=10.0)
    gen = build_generation_settings([("timeout", 0.3)])

    started = time.monotonic()
    with pytest.raises(ServerError) as error:
        make_client(gen=gen, max_retries=0).chat(MESSAGES)
    elapsed = time.monotonic() - started

    assert elapsed < 5.0
    assert "timed out" in str(error.value)
    assert len(scripted_server.requests) == 1


# API key


def test_api_key_from_named_variable(scripted_server: ScriptedServer, make_client: MakeClient,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", SECRET)

    make_client(api_key_env="MY_KEY").chat(MESSAGES)

    assert scripted_server.headers[0]["authorization"] == f"Bearer {SECRET}"


def test_unset_key_sends_placeholder(scripted_server: ScriptedServer, make_client: MakeClient,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MY_KEY", raising=False)
    # The key comes only from the named variable, never from the SDK's default one.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-default-variable")

    reply = make_client(api_key_env="MY_KEY").chat(MESSAGES)

    assert reply.content == "OK"
    assert scripted_server.headers[0]["authorization"] == f"Bearer {PLACEHOLDER_API_KEY}"


def test_error_hides_echoed_key(scripted_server: ScriptedServer, make_client: MakeClient,
                                monkeypatch: pytest.MonkeyPatch,
                                caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MY_KEY", SECRET)
    scripted_server.script = lambda body, attempt: Fail(
        401, message=f"Incorrect API key provided: {SECRET}")
    caplog.set_level(logging.DEBUG)

    with pytest.raises(ServerError) as error:
        make_client(api_key_env="MY_KEY").chat(MESSAGES)

    assert len(scripted_server.requests) == 1
    assert "401" in str(error.value)
    assert "Incorrect API key provided" in str(error.value)
    assert SECRET not in str(error.value)
    assert SECRET not in caplog.text


def test_retry_log_hides_echoed_key(scripted_server: ScriptedServer, make_client: MakeClient,
                                    monkeypatch: pytest.MonkeyPatch,
                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MY_KEY", SECRET)
    scripted_server.script = fail_first([Fail(503, message=f"upstream rejected key {SECRET}")])
    caplog.set_level(logging.DEBUG)

    reply = make_client(api_key_env="MY_KEY").chat(MESSAGES)

    assert reply.attempts == 2
    records = warnings_of(caplog)
    assert len(records) == 1
    assert "upstream rejected key" in records[0].getMessage()
    assert SECRET not in caplog.text


# Retry policy


@pytest.mark.parametrize(("status", "expected"), [
    (429, True), (500, True), (502, True), (503, True), (504, True),
    (400, False), (401, False), (403, False), (404, False), (408, False), (409, False),
    (422, False),
])
def test_is_retryable_by_status(status: int, expected: bool) -> None:
    assert retry.is_retryable(status_error(status)) is expected


def test_is_retryable_other_errors() -> None:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")

    assert retry.is_retryable(openai.APIConnectionError(request=request)) is True
    assert retry.is_retryable(openai.APITimeoutError(request=request)) is True
    assert retry.is_retryable(json.JSONDecodeError("Expecting value", "", 0)) is True
    assert retry.is_retryable(ValueError("not a network error")) is False
    assert retry.is_retryable(KeyError("choices")) is False


def test_retry_delay_seconds_header() -> None:
    assert retry.retry_delay(status_error(429, {"Retry-After": "7"}), 1) == 7.0
    assert retry.retry_delay(status_error(503, {"Retry-After": "2.5"}), 4) == 2.5
    assert retry.retry_delay(status_error(429, {"Retry-After": "0"}), 1) == 0.0
    assert retry.retry_delay(status_error(429, {"Retry-After": "-5"}), 1) == 0.0


def test_retry_delay_http_date() -> None:
    header = email.utils.formatdate(time.time() + 30, usegmt=True)

    delay = retry.retry_delay(status_error(429, {"Retry-After": header}), 1)

    # The HTTP date has whole seconds, so up to 1 s of the 30 is cut off.
    assert 28.0 <= delay <= 30.0


def test_retry_delay_past_http_date() -> None:
    header = email.utils.formatdate(time.time() - 60, usegmt=True)

    assert retry.retry_delay(status_error(429, {"Retry-After": header}), 1) == 0.0


def test_retry_delay_milliseconds_header() -> None:
    headers = {"retry-after-ms": "1500", "Retry-After": "9"}

    assert retry.retry_delay(status_error(429, headers), 1) == 1.5


def test_retry_delay_bad_ms_header() -> None:
    headers = {"retry-after-ms": "soon", "Retry-After": "4"}

    assert retry.retry_delay(status_error(429, headers), 1) == 4.0


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 0.25, 0.5), (3, 1.0, 2.0),
                                                     (10, 15.0, 30.0)])
def test_garbage_header_uses_backoff(monkeypatch: pytest.MonkeyPatch, attempt: int, low: float,
                                     high: float) -> None:
    monkeypatch.setattr(retry, "BASE_BACKOFF_S", 0.5)
    monkeypatch.setattr(retry, "MAX_BACKOFF_S", 30.0)
    error = status_error(503, {"Retry-After": "after lunch"})

    delays = [retry.retry_delay(error, attempt) for _ in range(200)]

    assert min(delays) >= low
    assert max(delays) <= high
    assert len(set(delays)) > 1  # jittered, not a fixed wait


def test_backoff_without_response(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "BASE_BACKOFF_S", 0.5)
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    error = openai.APIConnectionError(request=request)

    delays = [retry.retry_delay(error, 2) for _ in range(100)]

    assert min(delays) >= 0.5
    assert max(delays) <= 1.0


def test_retry_after_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "MAX_RETRY_AFTER_S", 120.0)

    assert retry.retry_delay(status_error(429, {"Retry-After": "3600"}), 1) == 120.0
    assert retry.retry_delay(status_error(429, {"retry-after-ms": "600000"}), 1) == 120.0
    far = email.utils.formatdate(time.time() + 86400, usegmt=True)
    assert retry.retry_delay(status_error(429, {"Retry-After": far}), 1) == 120.0


def test_closed_client_stops_retrying(scripted_server: ScriptedServer,
                                      make_client: MakeClient) -> None:
    scripted_server.script = lambda body, attempt: Fail(500, delay=0.3)
    client = make_client(max_retries=5)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.chat([{"role": "user", "content": "hi"}])
        except BaseException as error:  # noqa: BLE001 - the test inspects it
            errors.append(error)

    worker = threading.Thread(target=call)
    worker.start()
    # Close while the first request is at the server, not before it is sent.
    deadline = time.monotonic() + 5
    while not scripted_server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    client.close()
    worker.join(timeout=5)

    assert not worker.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], ServerError)
    assert len(scripted_server.requests) == 1
