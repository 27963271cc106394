"""One retry policy for every request: what is retryable and how long to wait."""

from __future__ import annotations

import email.utils
import json
import random
import time

import openai

# Backoff for errors without a Retry-After header: 0.5 s, 1 s, 2 s, ... up to
# MAX_BACKOFF_S, with full jitter so that many samples do not retry in step.
BASE_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
# A server may ask for a long pause; longer waits than this are cut to it.
MAX_RETRY_AFTER_S = 120.0


def is_retryable(error: BaseException) -> bool:
    """Tell whether a failed request may succeed when sent again.

    Rate limits (429), server errors (5xx), client-side timeouts, dropped
    connections and unreadable bodies are retried. Any other 4xx means the
    request itself is wrong, so sending it again cannot help.
    """
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        return status == 429 or status >= 500
    return isinstance(error, (openai.APIConnectionError, openai.APIResponseValidationError,
                              json.JSONDecodeError))


def retry_delay(error: BaseException, attempt: int) -> float:
    """Return the seconds to wait before retry number `attempt` (1-based)."""
    requested = _retry_after_seconds(error)
    if requested is not None:
        return min(requested, MAX_RETRY_AFTER_S)
    ceiling = min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def _retry_after_seconds(error: BaseException) -> float | None:
    response = getattr(error, "response", None)
    if response is None:
        return None
    header = response.headers.get("retry-after-ms")
    if header:
        try:
            return max(0.0, float(header) / 1000)
        except ValueError:
            pass
    header = response.headers.get("retry-after")
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
