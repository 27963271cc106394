"""Build the AIME prompt and grade a reply's final answer with math-verify."""

from __future__ import annotations

import math
import re
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

PROMPT = ("Reason through the problem step by step. Write the final answer alone "
          "inside \\boxed{}.")

# Only the end of a reply is graded, because the final answer closes it. This bounds
# the text that math-verify's regexes and LaTeX parser see, and the size of the
# warning math-verify logs with the whole input when its parser times out.
MAX_REPLY_TAIL = 8000
# \boxed{...} candidates tried from the end when the later ones have unbalanced braces.
MAX_BOXED_CANDIDATES = 20
# Seconds math-verify may spend parsing the reply's answer, and comparing it with the
# gold answer. Both are SIGALRM alarms, so whole seconds. An AIME answer parses and
# compares in milliseconds.
PARSE_TIMEOUT = 3
VERIFY_TIMEOUT = 3
# Characters kept of an extracted answer that is not an integer.
MAX_ANSWER_TEXT = 200
# Integers above this many bits are reported by math-verify's text, not in digits,
# so that str() stays below Python's 4300-digit int-to-str limit.
MAX_INTEGER_BITS = 3000

_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°")
_INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class MathGrade:
    """The verdict on one reply.

    `extracted` is the reply's answer as normalised text ("70" for \\boxed{070} or
    \\boxed{70.0}), used for majority voting, or None when no answer was found.
    """

    correct: bool
    extracted: str | None
    explanation: str


def build_prompt(problem: str) -> str:
    """Return the user message for one problem: the problem, then the answer instruction."""
    return f"{problem}\n\n{PROMPT}"


def gold_answer(value: int | str) -> str:
    """Normalise a dataset answer to the text math-verify parses as the gold answer.

    Integers and integer strings become plain digits without leading zeros ("070" -> "70").
    Surrounding whitespace and `$` and a degree mark ("336^\\circ", "336°") are removed,
    because some published copies store answers that way. Other text is returned stripped.
    Raises ValueError for a bool or an empty answer.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"invalid gold answer {value!r}: expected an int or a str")
    if isinstance(value, int):
        return str(value)

    text = _DEGREES.sub("", value.strip().strip("$")).strip()
    if not text:
        raise ValueError(f"invalid gold answer {value!r}: it is empty")
    if _INTEGER.fullmatch(text):
        return str(int(text))
    return text


def grade_answer(reply_text: str | None, gold: str) -> MathGrade:
    """Grade the final answer of a reply against `gold`, the text from gold_answer().

    The answer is the content of the last \\boxed{} with balanced braces in the last
    MAX_REPLY_TAIL characters. A reply without one is handed to math-verify's own
    extraction, which takes the last LaTeX expression or number it can parse.

    Contract: call this from the main thread. math-verify bounds its parse and its
    comparison with SIGALRM alarms (PARSE_TIMEOUT and VERIFY_TIMEOUT seconds), and Python
    handles signals only in the main thread, so a call from another thread raises
    RuntimeError. A timer the caller armed with setitimer(ITIMER_REAL) or alarm() keeps
    running: math-verify cancels it, and this function arms it again with the time left.
    A reply whose answer math-verify fails to parse, or parses past PARSE_TIMEOUT, is
    graded as having no answer, with the reason in the explanation. Raises ValueError
    when `gold` is not parseable.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("grade_answer must run in the main thread: math-verify's "
                           "timeouts use SIGALRM, which Python handles only there")
    if not reply_text or not reply_text.strip():
        return MathGrade(False, None, "no answer found in the reply (empty reply)")

    from math_verify import parse, verify
    from math_verify.errors import TimeoutException

    tail = reply_text[-MAX_REPLY_TAIL:]
    boxed = last_boxed(tail)
    answer_source = tail if boxed is None else f"$\\boxed{{{boxed}}}$"

    with _keep_caller_timer():
        gold_parsed = parse(f"${gold}$", parsing_timeout=PARSE_TIMEOUT)
        if not gold_parsed:
            raise ValueError(f"invalid gold answer {gold!r}: math-verify failed to parse it")
        try:
            parsed = parse(answer_source, parsing_timeout=PARSE_TIMEOUT, raise_on_error=True)
        except TimeoutException:
            return MathGrade(False, None, f"no answer found in the reply: parsing the "
                                          f"answer timed out after {PARSE_TIMEOUT} s")
        except Exception as error:
            # The reply, not the scorer, is at fault here: math-verify raises for input
            # such as an integer over Python's 4300-digit limit. Its default
            # (raise_on_error=False) also treats this as no answer, but without the reason.
            return MathGrade(False, None, f"no answer found in the reply: math-verify "
                                          f"failed to parse it ({type(error).__name__})")
        extracted = answer_text(parsed)
        if extracted is None:
            return MathGrade(False, None, "no answer found in the reply")
        # verify() returns False when a comparison times out, and logs a warning.
        correct = verify(gold_parsed, parsed, timeout_seconds=VERIFY_TIMEOUT)

    return MathGrade(correct, extracted, f"expected {gold}, got {extracted}")


def last_boxed(text: str) -> str | None:
    """Return the content of the last \\boxed{...} in `text` whose braces balance.

    Returns None when there is none, or when the last MAX_BOXED_CANDIDATES boxes are
    unbalanced or empty. Escaped braces (\\{ and \\}) do not count as braces.
    """
    end = len(text)
    for _ in range(MAX_BOXED_CANDIDATES):
        start = text.rfind("\\boxed", 0, end)
        if start < 0:
            return None
        content = _braced_argument(text, start + len("\\boxed"))
        if content is not None and content.strip():
            return content
        end = start
    return None


def _braced_argument(text: str, position: int) -> str | None:
    while position < len(text) and text[position] == " ":
        position += 1
    if position >= len(text) or text[position] != "{":
        return None

    depth = 0
    index = position
    while index < len(text):
        character = text[index]
        if character == "\\":
            index += 2
            continue
        if character == "{":
            depth += 1
        elif character == "}":
            depth -= 1
            if depth == 0:
                return text[position + 1:index]
        index += 1
    return None


def answer_text(parsed: list[Any]) -> str | None:
    """Return the normalised text of a math-verify parse result, or None when it is empty.

    An integer, or a float with an integer value, becomes plain digits, so that \\boxed{070},
    \\boxed{70} and \\boxed{70.0} vote for the same answer. Anything else is the LaTeX text
    math-verify extracted, clipped to MAX_ANSWER_TEXT characters. No sympy object is
    turned into a string, because printing a hostile expression can take unbounded time.
    """
    value = next((item for item in parsed if not isinstance(item, str)), None)
    digits = _integer_digits(value)
    if digits is not None:
        return digits

    text = next((item.strip() for item in parsed if isinstance(item, str)), "")
    return text[:MAX_ANSWER_TEXT] or None


def _integer_digits(value: Any) -> str | None:
    import sympy

    if isinstance(value, sympy.Integer):
        number = int(value)
        return str(number) if number.bit_length() <= MAX_INTEGER_BITS else None
    if isinstance(value, sympy.Float):
        number = float(value)
        # Above 2**53, neighbouring integers share one float value.
        if math.isfinite(number) and number.is_integer() and abs(number) <= 2**53:
            return str(int(number))
    return None


@contextmanager
def _keep_caller_timer() -> Iterator[None]:
    """Re-arm the caller's ITIMER_REAL timer, which math-verify's alarm(0) cancels.

    pytest-timeout's signal method, for one, uses that timer. If it would have expired
    while math-verify held the timer, it is re-armed to fire at once.
    """
    if not hasattr(signal, "setitimer"):
        yield
        return

    remaining, interval = signal.getitimer(signal.ITIMER_REAL)
    started = time.monotonic()
    try:
        yield
    finally:
        if remaining > 0:
            left = remaining - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), interval)
