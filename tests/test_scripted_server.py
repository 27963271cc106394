"""Tests of the scripted chat server, through the real openai SDK as client."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import openai
import pytest
from openai import DefaultHttpxClient, OpenAI

from tests.scripted_server import Drop, Fail, Reply, ScriptedServer, ToolCall

MESSAGES = [{"role": "user", "content": "What is 5 factorial?"}]
FACTORIAL_TOOL = {
    "type": "function",
    "function": {
        "name": "math_factorial",
        "description": "Compute the factorial of n.",
        "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}},
    },
}


def make_client(url: str) -> OpenAI:
    # trust_env=False keeps an inherited HTTP(S)_PROXY from routing loopback traffic.
    http_client = DefaultHttpxClient(trust_env=False)
    return OpenAI(base_url=url, api_key="test-key", max_retries=0, http_client=http_client)


@pytest.fixture
def client(scripted_server: ScriptedServer) -> Iterator[OpenAI]:
    with make_client(scripted_server.url) as sdk_client:
        yield sdk_client


@pytest.fixture
def raw_client(scripted_server: ScriptedServer) -> Iterator[httpx2.Client]:
    """Plain HTTP client for requests the SDK cannot send, such as invalid JSON."""
    base_url = scripted_server.url.removesuffix("/v1")
    with httpx2.Client(base_url=base_url, trust_env=False, timeout=10) as http:
        yield http


def create(client: OpenAI, **params: Any) -> Any:
    params.setdefault("model", "scripted")
    params.setdefault("messages", MESSAGES)
    return client.chat.completions.create(**params)


def assemble_tool_calls(chunks: Iterable) -> tuple[list[dict], dict[int, int]]:
    """Assemble streamed tool-call deltas the way a client must.

    Return the calls and, per call index, the number of non-empty argument pieces.
    """
    calls: dict[int, dict] = {}
    pieces: dict[int, int] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
                if delta.id is not None:
                    call["id"] = delta.id
                if delta.function is None:
                    continue
                if delta.function.name is not None:
                    call["name"] = delta.function.name
                if delta.function.arguments:
                    call["arguments"] += delta.function.arguments
                    pieces[delta.index] = pieces.get(delta.index, 0) + 1
    return [calls[index] for index in sorted(calls)], pieces


def plain_tool_calls(completion: Any) -> list[dict]:
    calls = completion.choices[0].message.tool_calls or []
    return [
        {"id": call.id, "name": call.function.name, "arguments": call.function.arguments}
        for call in calls
    ]


# Plain replies


def test_default_script_replies_ok(client: OpenAI) -> None:
    completion = create(client, model="my-model")

    assert completion.object == "chat.completion"
    assert completion.model == "my-model"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "OK"
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == "stop"


def test_plain_reply_content_and_usage(scripted_server: ScriptedServer, client: OpenAI) -> None:
    scripted_server.script = lambda body, attempt: Reply(
        content="120", prompt_tokens=42, completion_tokens=7, finish_reason="length"
    )

    completion = create(client)

    assert completion.choices[0].message.content == "120"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 42
    assert completion.usage.completion_tokens == 7
    assert completion.usage.total_tokens == 49


def test_tool_calls_round_trip(scripted_server: ScriptedServer, client: OpenAI) -> None:
    calls = (
        ToolCall("math_factorial", '{"n": 5}', id="call_abc"),
        ToolCall("math_factorial", '{"n": 6', id="call_broken"),  # invalid JSON on purpose
    )
    scripted_server.script = lambda body, attempt: Reply(tool_calls=calls)

    completion = create(client, tools=[FACTORIAL_TOOL])

    message = completion.choices[0].message
    assert message.content is None
    assert completion.choices[0].finish_reason == "tool_calls"
    assert plain_tool_calls(completion) == [
        {"id": "call_abc", "name": "math_factorial", "arguments": '{"n": 5}'},
        {"id": "call_broken", "name": "math_factorial", "arguments": '{"n": 6'},
    ]
    assert [call.type for call in message.tool_calls or []] == ["function", "function"]


def test_generated_tool_call_ids_are_unique(
    scripted_server: ScriptedServer, client: OpenAI
) -> None:
    calls = (ToolCall("first", "{}"), ToolCall("second", "{}"))
    scripted_server.script = lambda body, attempt: Reply(tool_calls=calls)

    ids = [call["id"] for _ in range(2) for call in plain_tool_calls(create(client))]

    assert all(re.fullmatch(r"call_\d+", call_id) for call_id in ids), ids
    assert len(set(ids)) == 4


# Streamed replies


def test_streamed_content_equals_plain(scripted_server: ScriptedServer, client: OpenAI) -> None:
    text = "The factorial of 5 is 120."
    scripted_server.script = lambda body, attempt: Reply(content=text)

    plain = create(client).choices[0].message.content
    chunks = list(create(client, stream=True))

    pieces = [chunk.choices[0].delta.content for chunk in chunks if chunk.choices]
    content_pieces = [piece for piece in pieces if piece]
    assert plain == text
    assert "".join(content_pieces) == plain
    assert len(content_pieces) >= 2
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)


def test_streamed_tool_calls_equal_plain(scripted_server: ScriptedServer, client: OpenAI) -> None:
    calls = (
        ToolCall("math_factorial", '{"n": 5}', id="call_1"),
        ToolCall("get_weather", '{"city": "Paris", "unit": "celsius"}', id="call_2"),
    )
    scripted_server.script = lambda body, attempt: Reply(tool_calls=calls)

    plain = plain_tool_calls(create(client, tools=[FACTORIAL_TOOL]))
    chunks = list(create(client, tools=[FACTORIAL_TOOL], stream=True))
    streamed, pieces = assemble_tool_calls(chunks)

    assert streamed == plain
    assert pieces[0] >= 2
    assert pieces[1] >= 2
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_streamed_tool_call_chunks_follow_openai_layout(
    scripted_server: ScriptedServer, client: OpenAI
) -> None:
    scripted_server.script = lambda body, attempt: Reply(
        tool_calls=(ToolCall("math_factorial", '{"n": 5}', id="call_x"),)
    )

    deltas = [
        delta
        for chunk in create(client, stream=True)
        for delta in (chunk.choices[0].delta.tool_calls or [] if chunk.choices else [])
    ]

    head, *rest = deltas
    assert (head.index, head.id, head.type) == (0, "call_x", "function")
    assert head.function is not None
    assert (head.function.name, head.function.arguments) == ("math_factorial", "")
    assert rest
    for delta in rest:
        assert (delta.index, delta.id, delta.type) == (0, None, None)
        assert delta.function is not None
        assert delta.function.name is None


def test_stream_usage_only_when_requested(
    scripted_server: ScriptedServer, client: OpenAI
) -> None:
    scripted_server.script = lambda body, attempt: Reply(
        content="hi there", prompt_tokens=3, completion_tokens=2
    )

    without_usage = list(create(client, stream=True))
    with_usage = list(create(client, stream=True, stream_options={"include_usage": True}))

    assert all(chunk.usage is None for chunk in without_usage)
    assert all(chunk.choices for chunk in without_usage)
    last = with_usage[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (3, 2)
    assert last.usage.total_tokens == 5
    assert all(chunk.usage is None for chunk in with_usage[:-1])


# reasoning_content


def test_reasoning_content_in_plain_reply(scripted_server: ScriptedServer, client: OpenAI) -> None:
    scripted_server.script = lambda body, attempt: Reply(
        content="120", reasoning_content="5*4*3*2*1 = 120"
    )

    message = create(client).choices[0].message

    assert message.model_extra == {"reasoning_content": "5*4*3*2*1 = 120"}
    assert message.content == "120"


def test_reasoning_content_absent_by_default(client: OpenAI) -> None:
    message = create(client).choices[0].message

    assert "reasoning_content" not in (message.model_extra or {})


def test_reasoning_content_in_stream_deltas(
    scripted_server: ScriptedServer, client: OpenAI
) -> None:
    scripted_server.script = lambda body, attempt: Reply(
        content="120", reasoning_content="5*4*3*2*1 = 120"
    )

    chunks = list(create(client, stream=True))

    extras = [(chunk.choices[0].delta.model_extra or {}) for chunk in chunks]
    pieces = [extra["reasoning_content"] for extra in extras if "reasoning_content" in extra]
    assert "".join(pieces) == "5*4*3*2*1 = 120"
    assert len(pieces) >= 2


# Request validation


@pytest.mark.parametrize(
    "name",
    ["math.factorial", "a" * 65, "", "math_factorial\n", "fakultät", "get weather"],
)
def test_invalid_tool_name_rejected(
    scripted_server: ScriptedServer, client: OpenAI, name: str
) -> None:
    called: list[int] = []
    scripted_server.script = lambda body, attempt: called.append(attempt) or Reply(content="no")
    bad_tool = {"type": "function", "function": {"name": name, "parameters": {}}}

    with pytest.raises(openai.BadRequestError) as excinfo:
        create(client, tools=[FACTORIAL_TOOL, bad_tool])

    error = excinfo.value
    assert error.status_code == 400
    assert "Invalid 'tools[1].function.name': string does not match pattern." in error.message
    assert "'^[a-zA-Z0-9_-]{1,64}$'" in error.message
    assert error.body == {
        "message": (
            "Invalid 'tools[1].function.name': string does not match pattern. "
            "Expected a string that matches the pattern '^[a-zA-Z0-9_-]{1,64}$'."
        ),
        "type": "invalid_request_error",
        "param": "tools[1].function.name",
        "code": "invalid_value",
    }
    assert called == []
    assert scripted_server.requests[-1]["tools"][1]["function"]["name"] == name


def test_tool_name_of_64_characters_accepted(client: OpenAI) -> None:
    tool = {"type": "function", "function": {"name": "A-b_9" + "x" * 59}}

    completion = create(client, tools=[tool])

    assert completion.choices[0].message.content == "OK"


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"messages": MESSAGES}, None, None),
        ({"model": 7, "messages": MESSAGES}, "model", "invalid_type"),
        ({"model": "m"}, "messages", "missing_required_parameter"),
        ({"model": "m", "messages": []}, "messages", "empty_array"),
        ({"model": "m", "messages": "hi"}, "messages", "invalid_type"),
        ({"model": "m", "messages": MESSAGES, "tools": [{}]}, "tools[0].function", None),
        ([1, 2], "body", "invalid_type"),
    ],
)
def test_invalid_request_rejected(
    scripted_server: ScriptedServer,
    raw_client: httpx2.Client,
    body: object,
    param: str | None,
    code: str | None,
) -> None:
    response = raw_client.post("/v1/chat/completions", json=body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert len(scripted_server.requests) == 1
    assert scripted_server.script_errors == []


def test_invalid_json_rejected_and_logged(
    scripted_server: ScriptedServer, raw_client: httpx2.Client
) -> None:
    response = raw_client.post(
        "/v1/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert "could not parse the JSON body" in response.json()["error"]["message"]
    assert scripted_server.requests == [{"_raw_body": "{not json"}]


# Scripted failures


def test_rate_limit_with_retry_after(scripted_server: ScriptedServer, client: OpenAI) -> None:
    scripted_server.script = lambda body, attempt: Fail(429, "slow down", retry_after="1")

    with pytest.raises(openai.RateLimitError) as excinfo:
        create(client)

    error = excinfo.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "1"
    assert error.body == {"message": "slow down", "type": "scripted_error", "code": 429}


def test_failure_without_retry_after_has_no_header(
    scripted_server: ScriptedServer, client: OpenAI
) -> None:
    scripted_server.script = lambda body, attempt: Fail(503)

    with pytest.raises(openai.InternalServerError) as excinfo:
        create(client)

    assert excinfo.value.status_code == 503
    assert "retry-after" not in excinfo.value.response.headers


def test_server_error(scripted_server: ScriptedServer, client: OpenAI) -> None:
    scripted_server.script = lambda body, attempt: Fail(500, "boom")

    with pytest.raises(openai.InternalServerError) as excinfo:
        create(client)

    assert excinfo.value.status_code == 500
    assert excinfo.value.message == "Error code: 500 - boom"


def test_scripted_bad_request(scripted_server: ScriptedServer, client: OpenAI) -> None:
    scripted_server.script = lambda body, attempt: Fail(400, "context too long")

    with pytest.raises(openai.BadRequestError) as excinfo:
        create(client)

    assert excinfo.value.status_code == 400


def test_drop_gives_connection_error(scripted_server: ScriptedServer, client: OpenAI) -> None:
    create(client)  # leaves a pooled keep-alive connection for the dropped request
    scripted_server.script = lambda body, attempt: Drop()

    with pytest.raises(openai.APIConnectionError) as excinfo:
        create(client)

    assert not isinstance(excinfo.value, openai.APITimeoutError)
    scripted_server.script = lambda body, attempt: Reply(content="back")
    assert create(client).choices[0].message.content == "back"


def test_script_exception_gives_500(scripted_server: ScriptedServer, client: OpenAI) -> None:
    def broken_script(body: dict, attempt: int) -> Reply:
        raise KeyError("missing_key")

    scripted_server.script = broken_script

    with pytest.raises(openai.InternalServerError) as excinfo:
        create(client)

    assert "script raised KeyError: 'missing_key'" in excinfo.value.message
    assert scripted_server.script_errors == ["script raised KeyError: 'missing_key'"]
    scripted_server.script = lambda body, attempt: Reply(content="still serving")
    assert create(client).choices[0].message.content == "still serving"


def test_script_wrong_return_type_gives_500(
    scripted_server: ScriptedServer, client: OpenAI
) -> None:
    scripted_server.script = lambda body, attempt: "OK"  # type: ignore[assignment,return-value]

    with pytest.raises(openai.InternalServerError) as excinfo:
        create(client)

    assert "script returned 'OK', but it must return a Reply" in excinfo.value.message


# Attempts and request log


def test_attempts_count_per_request_body(
    scripted_server: ScriptedServer, client: OpenAI
) -> None:
    scripted_server.script = lambda body, attempt: Reply(content=str(attempt))
    other_messages = [{"role": "user", "content": "What is 6 factorial?"}]

    first = create(client).choices[0].message.content
    second = create(client).choices[0].message.content
    other = create(client, messages=other_messages).choices[0].message.content
    third = create(client).choices[0].message.content

    assert (first, second, other, third) == ("0", "1", "0", "2")


def test_attempts_ignore_key_order(
    scripted_server: ScriptedServer, raw_client: httpx2.Client
) -> None:
    scripted_server.script = lambda body, attempt: Reply(content=str(attempt))
    bodies = [{"model": "m", "messages": MESSAGES}, {"messages": MESSAGES, "model": "m"}]

    responses = [raw_client.post("/v1/chat/completions", json=body) for body in bodies]

    contents = [response.json()["choices"][0]["message"]["content"] for response in responses]

    assert contents == ["0", "1"]


def test_requests_and_headers_logged(scripted_server: ScriptedServer, client: OpenAI) -> None:
    create(client, model="first", temperature=0.0)
    create(client, model="second", tools=[FACTORIAL_TOOL])

    assert [request["model"] for request in scripted_server.requests] == ["first", "second"]
    assert scripted_server.requests[0] == {
        "model": "first",
        "messages": MESSAGES,
        "temperature": 0.0,
    }
    assert scripted_server.requests[1]["tools"] == [FACTORIAL_TOOL]
    assert len(scripted_server.headers) == 2
    assert scripted_server.headers[0]["authorization"] == "Bearer test-key"
    assert scripted_server.headers[0]["content-type"] == "application/json"


def test_script_receives_parsed_body(scripted_server: ScriptedServer, client: OpenAI) -> None:
    seen: list[tuple[dict, int]] = []

    def echo_script(body: dict, attempt: int) -> Reply:
        seen.append((body, attempt))
        return Reply(content=body["messages"][-1]["content"])

    scripted_server.script = echo_script

    completion = create(client)

    assert completion.choices[0].message.content == "What is 5 factorial?"
    assert seen == [({"model": "scripted", "messages": MESSAGES}, 0)]


# Connections, timing and endpoints


def test_concurrent_delays_overlap(scripted_server: ScriptedServer, client: OpenAI) -> None:
    scripted_server.script = lambda body, attempt: Reply(content="late", delay=0.2)

    def request(index: int) -> str | None:
        messages = [{"role": "user", "content": f"request {index}"}]
        return create(client, messages=messages).choices[0].message.content

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        contents = list(pool.map(request, range(8)))
    elapsed = time.monotonic() - start

    assert contents == ["late"] * 8
    assert elapsed >= 0.2
    # Serial handling would take 8 * 0.2 s = 1.6 s.
    assert elapsed < 1.0, f"8 requests with a 0.2 s delay took {elapsed:.2f} s"


def test_plain_replies_reuse_connection(
    scripted_server: ScriptedServer, client: OpenAI
) -> None:
    for _ in range(3):
        create(client)
    scripted_server.script = lambda body, attempt: Fail(429, retry_after="0")
    with pytest.raises(openai.RateLimitError):
        create(client)
    scripted_server.script = lambda body, attempt: Reply(content="after")
    completion = create(client)

    assert completion.choices[0].message.content == "after"
    assert len(scripted_server.requests) == 5
    assert scripted_server.connection_count == 1


def test_request_after_stream_succeeds(scripted_server: ScriptedServer, client: OpenAI) -> None:
    streamed = list(create(client, stream=True))
    completion = create(client)

    assert streamed[-1].choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == "OK"
    # openai 3.60 closes a stream's response at `data: [DONE]` without reading the
    # body's last (empty) HTTP chunk, so httpcore2 closes that connection instead of
    # returning it to the pool.
    assert scripted_server.connection_count == 2


def test_models_endpoint(client: OpenAI) -> None:
    models = client.models.list()

    assert [(model.id, model.object, model.owned_by) for model in models.data] == [
        ("scripted", "model", "tests")
    ]


def test_models_endpoint_body(raw_client: httpx2.Client) -> None:
    response = raw_client.get("/v1/models")

    assert response.status_code == 200
    assert response.json() == {
        "object": "list",
        "data": [{"id": "scripted", "object": "model", "owned_by": "tests"}],
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("POST", "/v1/models"),
        ("DELETE", "/v1/models"),
        ("GET", "/"),
    ],
)
def test_unknown_route_gives_404(
    scripted_server: ScriptedServer, raw_client: httpx2.Client, method: str, path: str
) -> None:
    response = raw_client.request(method, path, json={"model": "m"})

    assert response.status_code == 404
    assert response.json()["error"]["message"] == f"Invalid URL ({method} {path})"
    assert scripted_server.requests == []
    # The connection stays usable, so the request body was read in full.
    assert raw_client.get("/v1/models").status_code == 200
    assert scripted_server.connection_count == 1


def test_chunked_request_body_accepted(
    scripted_server: ScriptedServer, raw_client: httpx2.Client
) -> None:
    payload = json.dumps({"model": "m", "messages": MESSAGES}).encode()

    def body_parts() -> Iterator[bytes]:
        yield payload[:10]
        yield payload[10:]

    response = raw_client.post("/v1/chat/completions", content=body_parts())

    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "OK"
    assert scripted_server.requests == [{"model": "m", "messages": MESSAGES}]


@pytest.mark.parametrize(
    "framing",
    ["Content-Length: banana", "Content-Length: -1", "Transfer-Encoding: chunked"],
)
def test_invalid_body_framing_rejected(scripted_server: ScriptedServer, framing: str) -> None:
    port = int(scripted_server.url.split(":")[2].split("/")[0])
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n{framing}\r\n\r\nzz\r\n"
    )

    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(request.encode())
        response = connection.makefile("rb").read()

    status_line = response.split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 400 Bad Request"
    assert b"Invalid request body framing" in response
    assert scripted_server.requests == []


# Lifecycle


def test_url_before_start_raises() -> None:
    server = ScriptedServer()

    with pytest.raises(RuntimeError, match="not started"):
        _ = server.url


def test_start_twice_raises() -> None:
    with ScriptedServer() as server:
        with pytest.raises(RuntimeError, match="already started"):
            server.start()


def test_url_is_loopback_with_os_port() -> None:
    with ScriptedServer() as first, ScriptedServer() as second:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", first.url)
        assert first.url != second.url


def test_stop_interrupts_delay_and_closes_port() -> None:
    server = ScriptedServer(lambda body, attempt: Reply(content="never", delay=30)).start()
    url = server.url
    errors: list[BaseException] = []
    sdk_client = make_client(url)

    def request() -> None:
        try:
            create(sdk_client)
        except openai.APIError as exc:
            errors.append(exc)

    thread = threading.Thread(target=request)
    thread.start()
    while not server.requests:
        time.sleep(0.01)
    start = time.monotonic()
    server.stop()
    stop_seconds = time.monotonic() - start
    thread.join(10)

    assert stop_seconds < 2.0
    assert not thread.is_alive()
    assert [type(error) for error in errors] == [openai.APIConnectionError]
    with make_client(url) as late_client, pytest.raises(openai.APIConnectionError):
        late_client.models.list()
    sdk_client.close()


def test_restart_after_stop() -> None:
    server = ScriptedServer(lambda body, attempt: Reply(content="again", delay=0.01))
    server.start()
    server.stop()

    with server, make_client(server.url) as sdk_client:
        completion = create(sdk_client)

    assert completion.choices[0].message.content == "again"


def test_stop_is_idempotent() -> None:
    server = ScriptedServer().start()

    server.stop()
    server.stop()
    ScriptedServer().stop()
