"""A periodic progress line: items done, request and token rates, and the time left."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Progress:
    """Counts finished items; `line()` returns a line once every `interval_s` seconds."""

    total: int
    interval_s: float
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    requests: int = 0
    tokens: int = 0
    _last: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._last = self.started

    def item_done(self) -> None:
        self.done += 1

    def add_record(self, record: dict[str, Any]) -> None:
        self.requests += _requests_sent(record)
        self.tokens += (record.get("prompt_tokens") or 0) + (record.get("completion_tokens") or 0)

    def line(self, now: float | None = None) -> str | None:
        now = time.monotonic() if now is None else now
        if self.interval_s <= 0 or now - self._last < self.interval_s or not self.done:
            return None
        self._last = now
        elapsed = max(now - self.started, 1e-9)
        left = (self.total - self.done) * elapsed / self.done
        return (f"modeleval: {self.done}/{self.total} items, {self.requests / elapsed:.1f} req/s, "
                f"{self.tokens / elapsed:,.0f} tok/s, ETA {_duration(left)}")


def _requests_sent(record: dict[str, Any]) -> int:
    """Requests that reached the server for this record; replies from the cache cost none."""
    transcript = record.get("transcript")
    if transcript:
        return sum(1 for turn in transcript for step in turn.get("steps", [])
                   if not step.get("reply", {}).get("cached"))
    reply = record.get("reply")
    return 1 if reply and not reply.get("cached") else 0


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
