"""Crash-safe store of model replies in SQLite, keyed by everything that shapes a reply.

Each reply is committed as soon as it arrives, so a run killed half way loses
only the requests still in flight: the rerun finds every finished one here. The database
uses write-ahead logging, so xdist workers and concurrent runs share it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

CACHE_FILE = "responses.sqlite3"
# Bump when the key or the stored reply changes meaning; old rows are then ignored.
KEY_VERSION = 1
# Seconds a writer waits for another process's write to finish.
BUSY_TIMEOUT_S = 30.0


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/pytest-modeleval`, else `~/.cache/pytest-modeleval`."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pytest-modeleval"


def cache_key(request: dict[str, Any]) -> str:
    """Hash a request description; equal descriptions, and only those, share a key."""
    text = json.dumps({"version": KEY_VERSION, "request": request}, sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class ResponseCache:
    """Replies by key in one SQLite file; safe to share between threads and processes."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / CACHE_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        connection = self._connection()
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS replies "
            "(key TEXT PRIMARY KEY, reply TEXT NOT NULL, created REAL NOT NULL)")

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._connection().execute(
            "SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, reply: dict[str, Any]) -> None:
        # Autocommit: once this returns, the row survives a crash of this process.
        self._connection().execute(
            "INSERT OR REPLACE INTO replies (key, reply, created) VALUES (?, ?, ?)",
            (key, json.dumps(reply, ensure_ascii=False), time.time()))

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            # One connection per thread: sqlite3 objects must stay in the thread
            # that made them unless shared under a lock.
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S,
                                         isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection
