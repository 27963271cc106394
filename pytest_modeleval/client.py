"""Chat client for OpenAI-compatible servers: plain and streamed replies, tool
calls, reasoning content, usage, latency and retries."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

# NOTE: httpx2 must be the HTTP library of the installed openai SDK (3.63 here), because
# _post catches its exceptions. pyproject.toml still allows openai>=1.40, whose
# releases were built on httpx.
import httpx2
import openai

from .cache import ResponseCache, cache_key
from .options import GenerationSettings
from .retry import is_retryable, retry_delay

logger = logging.getLogger(__name__)

# Sent when the key variable is unset: local servers (vLLM, SGLang, llama.cpp)
# accept any key, and the SDK refuses to start without one.
PLACEHOLDER_API_KEY = "EMPTY"


@dataclass(frozen=True)
class ToolCall:
    """One function call from the model; `arguments` is the JSON text as sent."""

    name: str
    arguments: str
    id: str | None = None


@dataclass(frozen=True)
class ChatReply:
    """The assistant message of one completion, with its cost and timing."""

    content: str | None
    reasoning_content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float = 0.0
    attempts: int = 1
    # True when the reply came from the response cache instead of the server.
    cached: bool = False

    @property
    def text(self) -> str:
        """The reply's text, "" when it has none (a reply with only tool calls)."""
        return self.content or ""

    def to_cache(self) -> dict[str, Any]:
        return {**self.to_dict(), "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "latency_s": self.latency_s}

    @classmethod
    def from_cache(cls, stored: dict[str, Any]) -> ChatReply:
        calls = tuple(ToolCall(c["name"], c["arguments"], c.get("id"))
                      for c in stored.get("tool_calls") or [])
        return cls(content=stored.get("content"),
                   reasoning_content=stored.get("reasoning_content"), tool_calls=calls,
                   finish_reason=stored.get("finish_reason"),
                   prompt_tokens=stored.get("prompt_tokens"),
                   completion_tokens=stored.get("completion_tokens"),
                   latency_s=stored.get("latency_s") or 0.0, attempts=0, cached=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "reasoning_content": self.reasoning_content,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments}
                           for c in self.tool_calls],
            "finish_reason": self.finish_reason,
            "cached": self.cached,
        }


class Chat(Protocol):
    """A sender of chat requests: a ChatClient or a ScopedClient."""

    def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
             ) -> ChatReply: ...


class ServerError(Exception):
    """A request that failed for good: a non-retryable error or retries used up."""


@dataclass(frozen=True)
class Endpoint:
    """Server address and model; the key is read from `api_key_env` when the client starts."""

    model: str
    base_url: str
    api_key_env: str

    def __repr__(self) -> str:
        # Shown in failed assertions of users' tests; a URL may carry a password.
        from .options import public_url

        return (f"Endpoint(model={self.model!r}, base_url={public_url(self.base_url)!r}, "
                f"api_key_env={self.api_key_env!r})")


@dataclass
class ChatClient:
    """Sends chat completions with one retry policy; safe to share between threads."""

    endpoint: Endpoint
    gen: GenerationSettings = field(default_factory=GenerationSettings)
    stream: bool = False
    max_retries: int = 5
    cache: ResponseCache | None = None

    def __post_init__(self) -> None:
        api_key = os.environ.get(self.endpoint.api_key_env) or PLACEHOLDER_API_KEY
        self._api_key = api_key
        self._closed = False
        self._timeout = self.gen.timeout if self.gen.timeout is not None else 600.0
        # One connection pool for both paths: the SDK sends streamed requests
        # through it, and _post sends plain ones.
        self._http = openai.DefaultHttpxClient()
        self._openai = openai.OpenAI(
            base_url=self.endpoint.base_url,
            api_key=api_key,
            max_retries=0,  # retries are ours, so every one is logged with its wait
            timeout=self._timeout,
            http_client=self._http,
        )
        self._url = self._openai.base_url.join("chat/completions")
        # The SDK's own headers (key, user agent, platform), minus the unset ones.
        headers = {**self._openai.default_headers, **self._openai.auth_headers}
        self._headers = {name: value for name, value in headers.items()
                         if isinstance(value, str)}

    def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
             scope: dict[str, Any] | None = None, label: str = "") -> ChatReply:
        """Return the cached reply, or send the request and cache the reply.

        `scope` adds what else shapes the reply to the cache key, such as the
        benchmark data version and the repeat index. `label` names the sample
        in log lines.
        """
        key = self._cache_key(messages, tools, scope) if self.cache else None
        stored = self._cache_get(key)
        if stored is not None:
            return ChatReply.from_cache(stored)
        reply = self._send_with_retries(messages, tools, label)
        self._cache_put(key, reply)
        return reply

    def scoped(self, scope: dict[str, Any], label: str = "") -> ScopedClient:
        return ScopedClient(self, scope, label)

    def _send_with_retries(self, messages: list[dict[str, Any]],
                           tools: list[dict[str, Any]] | None, label: str = "") -> ChatReply:
        """Send one completion request, retrying what `is_retryable` allows."""
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            if self._closed:
                raise ServerError("the session ended before this request was sent")
            try:
                reply = self._send(messages, tools)
            except RuntimeError as error:
                if not self._closed:
                    raise
                raise ServerError(f"the session ended during this request: {error}") from None
            except (openai.OpenAIError, ValueError) as error:
                if not is_retryable(error) or attempt > self.max_retries or self._closed:
                    raise ServerError(self._redact(_describe(error, attempt))) from None
                wait = retry_delay(error, attempt)
                logger.warning(
                    "retrying request%s to model %s after %s (retry %d of %d, waiting %.1f s)",
                    f" of {label}" if label else "", self.endpoint.model,
                    self._redact(_describe(error)), attempt, self.max_retries, wait)
                time.sleep(wait)
                continue
            latency = time.monotonic() - started
            return self._clean(replace(reply, latency_s=latency, attempts=attempt))

    def close(self) -> None:
        # Requests still in flight fail at once instead of retrying after the
        # session ended (for example after Ctrl-C).
        self._closed = True
        self._openai.close()
        self._http.close()

    def _cache_key(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                   scope: dict[str, Any] | None) -> str:
        # Streaming and the timeout change how a reply arrives, not the reply.
        return cache_key({
            "base_url": self.endpoint.base_url, "model": self.endpoint.model,
            "messages": _numbered_call_ids(messages), "tools": tools or None,
            "request": self.gen.request, "extra_body": self.gen.extra_body,
            "scope": scope or {},
        })

    def _cache_get(self, key: str | None) -> dict[str, Any] | None:
        if key is None or self.cache is None:
            return None
        try:
            return self.cache.get(key)
        except (sqlite3.Error, ValueError) as error:
            logger.warning("response cache %s unreadable, asking the server: %s",
                           self.cache.path, error)
            return None

    def _cache_put(self, key: str | None, reply: ChatReply) -> None:
        if key is None or self.cache is None:
            return
        try:
            self.cache.put(key, reply.to_cache())
        except sqlite3.Error as error:
            # The run goes on: a reply that cannot be cached is still graded.
            logger.warning("response cache %s not written: %s", self.cache.path, error)


    def _clean(self, reply: ChatReply) -> ChatReply:
        """Make reply text safe to store: key redacted, lone surrogates replaced.

        A JSON body may carry escapes such as \\udcff that decode to unpaired
        surrogates, which UTF-8 files and xdist's channel cannot encode.
        """
        def text(value: str | None) -> str | None:
            if value is None:
                return None
            return self._redact(value.encode("utf-8", "replace").decode("utf-8"))

        calls = tuple(ToolCall(text(c.name) or "", text(c.arguments) or "", c.id)
                      for c in reply.tool_calls)
        return replace(reply, content=text(reply.content),
                     reasoning_content=text(reply.reasoning_content), tool_calls=calls)

    def _redact(self, text: str) -> str:
        # Some servers echo the key in a 401 message; it must not reach logs or reports.
        if self._api_key and self._api_key != PLACEHOLDER_API_KEY:
            text = text.replace(self._api_key, "***")
        return text

    def _send(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
              ) -> ChatReply:
        kwargs: dict[str, Any] = {"model": self.endpoint.model, "messages": messages,
                                  **self.gen.request}
        if tools:
            kwargs["tools"] = tools
        if self.stream:
            if self.gen.extra_body:
                kwargs["extra_body"] = dict(self.gen.extra_body)
            stream = self._openai.chat.completions.create(
                stream=True, stream_options={"include_usage": True}, **kwargs)
            return assemble_stream(stream)
        return parse_completion_body(self._post({**kwargs, **self.gen.extra_body}))

    def _post(self, body: dict[str, Any]) -> Any:
        """Send one plain completion request and return its decoded JSON body.

        This skips the SDK's request and response models. They cost about
        1.2 ms more CPU per request than this path (BFCL requests, openai
        3.63, 2 cores), and with tens of requests in flight that CPU, not the
        server, bounds the run. Failures raise the SDK's exception types with
        the SDK's messages, so the retry policy and error texts stay the same.
        """
        request = self._http.build_request("POST", self._url, content=json.dumps(body),
                                           headers=self._headers, timeout=self._timeout)
        try:
            response = self._http.send(request)
        except httpx2.TimeoutException:
            raise openai.APITimeoutError(request=request) from None
        except httpx2.RequestError:
            raise openai.APIConnectionError(request=request) from None
        if response.status_code >= 400:
            raise _status_error(response)
        try:
            return json.loads(response.content)
        except ValueError:
            raise openai.APIResponseValidationError(
                response, response.text, message="the reply body is not valid JSON") from None


@dataclass(frozen=True)
class ScopedClient:
    """A client whose cache keys also carry one sample's scope."""

    client: ChatClient
    scope: dict[str, Any]
    label: str = ""

    def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
             ) -> ChatReply:
        return self.client.chat(messages, tools, scope=self.scope, label=self.label)


def _numbered_call_ids(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replace tool-call ids by their order of appearance, for the cache key.

    Servers make ids up at random. Two samples that start alike get replies
    with different ids; numbering keeps their later requests on one key.
    """
    numbers: dict[str, str] = {}

    def number(call_id: Any) -> Any:
        if not isinstance(call_id, str):
            return call_id
        return numbers.setdefault(call_id, f"call#{len(numbers)}")

    numbered = []
    for message in messages:
        if message.get("tool_calls"):
            calls = [{**call, "id": number(call.get("id"))} if isinstance(call, dict) else call
                     for call in message["tool_calls"]]
            message = {**message, "tool_calls": calls}
        if "tool_call_id" in message:
            message = {**message, "tool_call_id": number(message["tool_call_id"])}
        numbered.append(message)
    return numbered


def parse_completion(completion: Any) -> ChatReply:
    if not completion.choices:
        raise ServerError("the server returned a completion without choices")
    choice = completion.choices[0]
    message = choice.message
    calls = tuple(
        ToolCall(call.function.name, call.function.arguments or "", call.id)
        for call in (message.tool_calls or [])
    )
    usage = completion.usage
    return ChatReply(
        content=message.content,
        reasoning_content=_reasoning(message),
        tool_calls=calls,
        finish_reason=choice.finish_reason,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
    )


def parse_completion_body(body: Any) -> ChatReply:
    """Read a chat completion from its decoded JSON body, as `parse_completion` does.

    A body that is valid JSON but no completion raises ServerError, which is
    not retried, as the SDK's path did not retry it either.
    """
    if not isinstance(body, dict):
        raise ServerError(f"the server returned {type(body).__name__} instead of a completion")
    choices = body.get("choices")
    if not choices or not isinstance(choices, list):
        raise ServerError("the server returned a completion without choices")
    try:
        choice = choices[0]
        message = choice["message"]
        calls = tuple(
            ToolCall(_text(call["function"].get("name")) or "",
                     _text(call["function"].get("arguments")) or "", call.get("id"))
            for call in (message.get("tool_calls") or [])
        )
        usage = body.get("usage") or {}
        return ChatReply(
            content=_text(message.get("content")),
            reasoning_content=_reasoning_field(message),
            tool_calls=calls,
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
        )
    except (AttributeError, KeyError, TypeError) as error:
        raise ServerError(f"the server returned a malformed completion ({error!r})") from None


def assemble_stream(stream: Any) -> ChatReply:
    """Join streamed deltas: text pieces, reasoning pieces and tool-call fragments by index."""
    content: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish_reason = None
    usage = None
    for chunk in stream:
        if getattr(chunk, "usage", None):
            usage = chunk.usage
        for choice in chunk.choices or []:
            delta = choice.delta
            if delta.content:
                content.append(delta.content)
            piece = _reasoning(delta)
            if piece:
                reasoning.append(piece)
            for fragment in delta.tool_calls or []:
                _merge_tool_call_fragment(calls, fragment)
            if choice.finish_reason:
                finish_reason = choice.finish_reason
    return ChatReply(
        content="".join(content) if content else None,
        reasoning_content="".join(reasoning) if reasoning else None,
        tool_calls=tuple(ToolCall(c["name"], c["arguments"], c["id"])
                         for _, c in sorted(calls.items())),
        finish_reason=finish_reason,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
    )


def _merge_tool_call_fragment(calls: dict[int, dict[str, Any]], fragment: Any) -> None:
    # The first fragment of a call carries its id and name; later ones carry
    # only pieces of the arguments under the same index.
    index = fragment.index if fragment.index is not None else len(calls)
    call = calls.setdefault(index, {"id": None, "name": "", "arguments": ""})
    if fragment.id:
        call["id"] = fragment.id
    function = fragment.function
    if function is not None:
        if function.name:
            call["name"] += function.name
        if function.arguments:
            call["arguments"] += function.arguments


def _reasoning(message: Any) -> str | None:
    # DeepSeek, Qwen (DashScope) and SGLang send `reasoning_content`; newer
    # vLLM releases send `reasoning`. Neither is in the SDK's typed model.
    for name in ("reasoning_content", "reasoning"):
        value = getattr(message, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def _text(value: Any) -> str | None:
    # Later steps (redaction, JSON decoding of arguments) need text or None.
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"expected text, got {type(value).__name__}")


def _reasoning_field(message: dict[str, Any]) -> str | None:
    for name in ("reasoning_content", "reasoning"):
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _status_error(response: httpx2.Response) -> openai.APIStatusError:
    """Build the exception for an HTTP error status, with the server's own message."""
    message = f"Error code: {response.status_code}"
    body: Any = response.text.strip()
    try:
        body = json.loads(body)
    except ValueError:
        pass
    error = body.get("error", body) if isinstance(body, dict) else None
    detail = error.get("message") if isinstance(error, dict) else None
    if isinstance(detail, str) and detail:
        message += f" - {detail}"
    return openai.APIStatusError(message, response=response, body=body)


def _describe(error: BaseException, attempts: int | None = None) -> str:
    status = getattr(error, "status_code", None)
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if len(text) > 300:
        text = text[:300] + "..."
    described = f"HTTP {status}: {text}" if status else f"{type(error).__name__}: {text}"
    if attempts is not None and attempts > 1:
        described += f" (after {attempts} attempts)"
    return described
