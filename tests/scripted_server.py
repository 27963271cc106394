"""Scripted OpenAI-compatible chat server that tests start on 127.0.0.1.

A test sets `ScriptedServer.script`, a function of the parsed request body and the
attempt number that returns a `Reply`, `Fail` or `Drop`. The server validates each
request the way the OpenAI API does, serves `POST /v1/chat/completions` in plain or
streamed (Server-Sent Events) form, and records every request body and its headers.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

# NOTE: OpenAI's 400 for a bad tool name, as quoted in public error reports, names the
# pattern '^[a-zA-Z0-9_-]+$'. This server names the pattern below, which includes the
# 64-character limit and which the plugin's tests expect.
TOOL_NAME_PATTERN = "^[a-zA-Z0-9_-]{1,64}$"
# fullmatch, because `$` in re.match also accepts a name with a trailing newline.
_TOOL_NAME_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")

MODELS_BODY = {
    "object": "list",
    "data": [{"id": "scripted", "object": "model", "owned_by": "tests"}],
}
RAW_BODY_KEY = "_raw_body"
_STOP_TIMEOUT = 5.0  # seconds that stop() waits in total for handler threads to end


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str  # JSON text, sent as is, so tests can send invalid JSON on purpose
    id: str | None = None  # None: the server generates "call_<n>", unique per server


@dataclass(frozen=True)
class Reply:
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    # Sent as message.reasoning_content / delta.reasoning_content (DeepSeek and Qwen
    # servers do this) only when not None.
    reasoning_content: str | None = None
    prompt_tokens: int = 10
    completion_tokens: int = 5
    delay: float = 0.0  # seconds to sleep before sending the response
    finish_reason: str | None = None  # None: "tool_calls" when tool_calls else "stop"


@dataclass(frozen=True)
class Fail:
    status: int
    message: str = "scripted failure"
    retry_after: str | None = None  # value of the Retry-After header when not None
    delay: float = 0.0


@dataclass(frozen=True)
class Drop:
    """Outcome that closes the connection without any HTTP response, after `delay` seconds."""

    delay: float = 0.0


@dataclass(frozen=True)
class Garbled:
    """Outcome that replies 200 with a body that is not valid JSON, as a broken proxy might."""

    body: bytes = b'{"id": "chatcmpl-garbled", "choices": ['
    delay: float = 0.0


Outcome = Reply | Fail | Drop | Garbled
# Called with the parsed request body and the attempt number: 0 the first time this
# exact body arrives, 1 the second time, and so on.
Script = Callable[[dict, int], Outcome]


def reply_ok(body: dict, attempt: int) -> Reply:
    """Return `Reply(content="OK")` for every request (the default script)."""
    return Reply(content="OK")


def openai_error(message: str, param: str | None = None, code: str | None = None) -> dict:
    """Build the body of an OpenAI `invalid_request_error`."""
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return {"error": error}


def _json_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        int: "an integer",
        float: "a decimal",
    }
    return names.get(type(value), "null")


def _invalid_type(param: str, expected: str, value: Any) -> dict:
    actual = _json_type_name(value)
    message = f"Invalid type for '{param}': expected {expected}, but got {actual} instead."
    return openai_error(message, param, "invalid_type")


def _missing(param: str) -> dict:
    message = f"Missing required parameter: '{param}'."
    return openai_error(message, param, "missing_required_parameter")


def validate_chat_request(body: Any) -> dict | None:
    """Return the OpenAI error body for an invalid chat request, or None when it is valid."""
    if not isinstance(body, dict):
        return _invalid_type("body", "an object", body)
    if "model" not in body:
        return openai_error("you must provide a model parameter")
    if not isinstance(body["model"], str):
        return _invalid_type("model", "a string", body["model"])
    return _validate_messages(body) or _validate_tools(body.get("tools"))


def _validate_messages(body: dict) -> dict | None:
    if "messages" not in body:
        return _missing("messages")
    messages = body["messages"]
    if not isinstance(messages, list):
        return _invalid_type("messages", "an array", messages)
    if not messages:
        message = (
            "Invalid 'messages': empty array. "
            "Expected an array with minimum length 1, but got an empty array instead."
        )
        return openai_error(message, "messages", "empty_array")
    return None


def _validate_tools(tools: Any) -> dict | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        return _invalid_type("tools", "an array", tools)
    for index, tool in enumerate(tools):
        error = _validate_tool(f"tools[{index}]", tool)
        if error is not None:
            return error
    return None


def _validate_tool(param: str, tool: Any) -> dict | None:
    if not isinstance(tool, dict):
        return _invalid_type(param, "an object", tool)
    if "function" not in tool:
        return _missing(f"{param}.function")
    function = tool["function"]
    if not isinstance(function, dict):
        return _invalid_type(f"{param}.function", "an object", function)
    if "name" not in function:
        return _missing(f"{param}.function.name")
    name = function["name"]
    name_param = f"{param}.function.name"
    if not isinstance(name, str):
        return _invalid_type(name_param, "a string", name)
    if _TOOL_NAME_RE.fullmatch(name) is None:
        message = (
            f"Invalid '{name_param}': string does not match pattern. "
            f"Expected a string that matches the pattern '{TOOL_NAME_PATTERN}'."
        )
        return openai_error(message, name_param, "invalid_value")
    return None


def split_text(text: str, parts: int = 3) -> list[str]:
    """Split text into `parts` pieces or fewer, and into at least 2 when it has 2+ characters."""
    if len(text) <= 1:
        return [text]
    size = max(1, -(-len(text) // parts))
    size = min(size, len(text) - 1)
    return [text[start : start + size] for start in range(0, len(text), size)]


def _finish_reason(reply: Reply) -> str:
    if reply.finish_reason is not None:
        return reply.finish_reason
    return "tool_calls" if reply.tool_calls else "stop"


def _usage(reply: Reply) -> dict:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def build_completion(reply: Reply, model: str, completion_id: str, call_ids: list[str]) -> dict:
    """Build a `chat.completion` object for a reply."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call, call_id in zip(reply.tool_calls, call_ids)
        ]
    if reply.reasoning_content is not None:
        message["reasoning_content"] = reply.reasoning_content
    finish_reason = _finish_reason(reply)
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": _usage(reply),
    }


def _stream_deltas(reply: Reply, call_ids: list[str]) -> Iterator[dict]:
    yield {"role": "assistant"}
    if reply.reasoning_content is not None:
        for piece in split_text(reply.reasoning_content):
            yield {"reasoning_content": piece}
    if reply.content is not None:
        for piece in split_text(reply.content):
            yield {"content": piece}
    for index, (call, call_id) in enumerate(zip(reply.tool_calls, call_ids)):
        yield {"tool_calls": [_tool_call_head(index, call_id, call.name)]}
        if not call.arguments:
            continue
        for piece in split_text(call.arguments):
            yield {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}


def _tool_call_head(index: int, call_id: str, name: str) -> dict:
    # OpenAI sends id, type and name only in a call's first chunk, with empty arguments.
    function = {"name": name, "arguments": ""}
    return {"index": index, "id": call_id, "type": "function", "function": function}


def build_chunks(
    reply: Reply, request: dict, completion_id: str, call_ids: list[str]
) -> list[dict]:
    """Build the `chat.completion.chunk` objects of a streamed reply, in sending order."""
    include_usage = (request.get("stream_options") or {}).get("include_usage") is True
    base = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time())}
    base["model"] = request["model"]

    def chunk(delta: dict, finish_reason: str | None) -> dict:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        # With include_usage, every chunk but the last has "usage": null (OpenAI API
        # reference, ChatCompletionStreamOptions.include_usage).
        extra = {"usage": None} if include_usage else {}
        return {**base, "choices": [choice], **extra}

    chunks = [chunk(delta, None) for delta in _stream_deltas(reply, call_ids)]
    chunks.append(chunk({}, _finish_reason(reply)))
    if include_usage:
        chunks.append({**base, "choices": [], "usage": _usage(reply)})
    return chunks


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # The default listen backlog of 5 can drop connections when many tests or
    # threads connect at once, and the client then waits for a SYN retransmission.
    request_queue_size = 128
    owner: ScriptedServer

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn, a reverse DNS lookup that can
        # leave the machine, so bind without it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out or closed its connection is normal in these tests.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("connection from %s closed by the client: %r", client_address, error)
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps connections alive, as the SDK's pool expects
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes. Without this, Nagle's
        # algorithm delays the body until the client's delayed ACK, about 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.owner._track(self.connection)

    def finish(self) -> None:
        self.server.owner._untrack(self.connection)
        super().finish()

    def do_GET(self) -> None:
        if self.read_body() is None:
            return
        if self._route() == "/v1/models":
            self.send_json(200, MODELS_BODY)
        else:
            self.send_not_found()

    def do_POST(self) -> None:
        raw = self.read_body()
        if raw is None:
            return
        if self._route() == "/v1/chat/completions":
            self.server.owner._handle_chat(self, raw)
        else:
            self.send_not_found()

    def do_other(self) -> None:
        if self.read_body() is not None:
            self.send_not_found()

    do_PUT = do_PATCH = do_DELETE = do_other

    def _route(self) -> str:
        return self.path.split("?", 1)[0]

    def read_body(self) -> bytes | None:
        """Read the request body, or send 400 and return None when its framing is invalid."""
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunked()
            length = int(self.headers.get("Content-Length", "0"))
            if length < 0:
                raise ValueError(f"negative Content-Length {length}")
        except ValueError as exc:
            self.close_connection = True
            self.send_json(400, openai_error(f"Invalid request body framing: {exc}"))
            return None
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                break
            body += self.rfile.read(size)
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailer fields
        return bytes(body)

    def send_json(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        self.send_raw(status, json.dumps(body).encode(), headers)

    def send_raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def send_not_found(self) -> None:
        self.send_json(404, openai_error(f"Invalid URL ({self.command} {self._route()})"))

    def send_events(self, events: list[dict]) -> None:
        """Send Server-Sent Events, one HTTP chunk each, then `data: [DONE]`."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        lines = [f"data: {json.dumps(event)}\n\n".encode() for event in events]
        for line in [*lines, b"data: [DONE]\n\n"]:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def drop(self) -> None:
        # The server's shutdown_request closes the socket after the handler returns.
        self.close_connection = True


class ScriptedServer:
    """OpenAI-compatible chat server on 127.0.0.1 whose responses come from `script`.

    `requests` and `headers` have one entry per `POST /v1/chat/completions`, in
    arrival order, including requests that failed validation. A body that is not a
    JSON object is logged as `{RAW_BODY_KEY: <body text>}`. Header names are
    lowercase. `script_errors` has the text of every exception the script raised, or
    of a wrong return value. `connection_count` is the number of TCP connections
    accepted, so tests can check that a client reuses connections.
    """

    def __init__(self, script: Script | None = None) -> None:
        self.script: Script = script or reply_ok
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.script_errors: list[str] = []
        self.connection_count = 0
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._stopping = threading.Event()
        self._http: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL for the OpenAI client, "http://127.0.0.1:<port>/v1"."""
        if self._http is None:
            raise RuntimeError("ScriptedServer is not started: call start() first")
        return f"http://127.0.0.1:{self._http.server_address[1]}/v1"

    def start(self) -> ScriptedServer:
        """Bind a port chosen by the OS on 127.0.0.1 and serve in a background thread."""
        if self._http is not None:
            raise RuntimeError("ScriptedServer is already started")
        self._stopping.clear()
        self._http = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._http.owner = self
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="scripted-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections, join the threads and close the socket."""
        if self._http is None or self._thread is None:
            return
        self._stopping.set()
        self._http.shutdown()
        self._thread.join()
        self._close_connections()
        self._http.server_close()
        self._http = None
        self._thread = None

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _close_connections(self) -> None:
        with self._lock:
            connections = list(self._connections.items())
        for connection, _ in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client
        deadline = time.monotonic() + _STOP_TIMEOUT
        for _, thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _track(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections[connection] = threading.current_thread()
            self.connection_count += 1

    def _untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.pop(connection, None)

    def _log(self, body: dict, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)

    def _next_attempt(self, body: dict) -> int:
        key = json.dumps(body, sort_keys=True)
        with self._lock:
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
        return attempt

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def _handle_chat(self, handler: _Handler, raw: bytes) -> None:
        body = _parse_json(raw)
        headers = _lowercase_headers(handler)
        if isinstance(body, dict):
            self._log(body, headers)
        else:
            self._log({RAW_BODY_KEY: raw.decode("utf-8", "replace")}, headers)
        if body is _INVALID_JSON:
            message = "We could not parse the JSON body of your request."
            handler.send_json(400, openai_error(message))
            return
        error = validate_chat_request(body)
        if error is not None:
            log.debug("rejected chat request: %s", error["error"]["message"])
            handler.send_json(400, error)
            return
        outcome = self._run_script(body)
        if isinstance(outcome, str):
            error = {"message": outcome, "type": "script_error", "code": 500}
            handler.send_json(500, {"error": error})
            return
        if self._stopping.wait(outcome.delay):
            handler.drop()  # stop() was called during the delay
        else:
            self._send_outcome(handler, outcome, body)

    def _run_script(self, body: dict) -> Outcome | str:
        """Call the script and return its outcome, or the error text when it fails."""
        request_text = json.dumps(body)[:500]
        try:
            outcome = self.script(body, self._next_attempt(body))
        except Exception as exc:  # any test bug must reach the client, not kill the server
            log.exception("script raised for request %s", request_text)
            error = f"script raised {type(exc).__name__}: {exc}"
        else:
            if isinstance(outcome, (Reply, Fail, Drop, Garbled)):
                return outcome
            error = (f"script returned {outcome!r}, but it must return a Reply, Fail, Drop "
                     "or Garbled")
            log.error("%s, for request %s", error, request_text)
        with self._lock:
            self.script_errors.append(error)
        return error

    def _send_outcome(self, handler: _Handler, outcome: Outcome, body: dict) -> None:
        if isinstance(outcome, Drop):
            handler.drop()
        elif isinstance(outcome, Garbled):
            handler.send_raw(200, outcome.body)
        elif isinstance(outcome, Fail):
            error = {"message": outcome.message, "type": "scripted_error", "code": outcome.status}
            headers = {} if outcome.retry_after is None else {"Retry-After": outcome.retry_after}
            handler.send_json(outcome.status, {"error": error}, headers)
        else:
            self._send_reply(handler, outcome, body)

    def _send_reply(self, handler: _Handler, reply: Reply, body: dict) -> None:
        completion_id = f"chatcmpl-{self._next_id()}"
        call_ids = [call.id or f"call_{self._next_id()}" for call in reply.tool_calls]
        if body.get("stream") is True:
            handler.send_events(build_chunks(reply, body, completion_id, call_ids))
        else:
            handler.send_json(200, build_completion(reply, body["model"], completion_id, call_ids))


_INVALID_JSON = object()


def _lowercase_headers(handler: _Handler) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in handler.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:  # includes JSONDecodeError and UnicodeDecodeError
        return _INVALID_JSON
