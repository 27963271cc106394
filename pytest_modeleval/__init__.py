"""pytest-modeleval: LLM benchmarks as pytest test suites."""

from __future__ import annotations

__version__ = "0.1.0"
