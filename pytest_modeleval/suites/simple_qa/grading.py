"""Render the SimpleQA judge prompt and read the grade from the judge's reply."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import jinja2

Verdict = Literal["CORRECT", "INCORRECT", "NOT_ATTEMPTED"]
Language = Literal["en", "zh"]

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE_VARIABLES = frozenset({"question", "gold_answer", "predicted_answer"})

# The letter grades that the SimpleQA grader prompt of OpenAI's simple-evals requests.
# A letter counts only as the whole reply, because single letters occur in ordinary text.
LETTER_VERDICTS: dict[str, Verdict] = {"A": "CORRECT", "B": "INCORRECT", "C": "NOT_ATTEMPTED"}
CHINESE_VERDICTS: dict[str, Verdict] = {
    "正确": "CORRECT",
    "错误": "INCORRECT",
    "未尝试": "NOT_ATTEMPTED",
}

# Grade words bounded by anything but ASCII letters and digits, so INCORRECT never reads
# as CORRECT, and a grade written right after Chinese text ("结论为CORRECT") still counts.
_GRADE_WORD = re.compile(
    r"(?<![A-Za-z0-9])(?:(?P<not_attempted>NOT[\s_-]*ATTEMPTED)|(?P<incorrect>INCORRECT)"
    r"|(?P<correct>CORRECT))(?![A-Za-z0-9])",
    re.IGNORECASE,
)
# A grade that text right before it denies: "not correct", "isn't INCORRECT", "不是 CORRECT".
# The negation must be on the same line, so "Does it match? No\nINCORRECT" is INCORRECT.
_NEGATION_BEFORE = re.compile(
    r"(?:(?<![A-Za-z])(?:NOT|NEVER|NO)|N['’]T|不是|并非|不算|不)"
    r"(?:[ \t]+(?:BE|BEEN|FULLY|ENTIRELY|COMPLETELY|QUITE|CONSIDERED))*[ \t\"'“”*-]*$",
    re.IGNORECASE,
)
# Characters before a grade word searched for its negation, enough for "would not be
# considered" and short enough that a long reply is not rescanned for every grade word.
NEGATION_WINDOW = 40
# A grade word used as an adjective ("the correct answer is 1987") grades nothing, so it
# is skipped. Reading it as a grade would mark a contradicted answer CORRECT.
_ARTICLE_BEFORE = re.compile(r"(?<![A-Za-z])(?:THE|AN?)[ \t]+$", re.IGNORECASE)
# NOTE: other prose uses still count when no line decides, so a reply such as "the year
# is correct but the month is wrong" is read as CORRECT.
_NOUN_AFTER = re.compile(r"[ \t]+(?:ANSWERS?|ONES?|RESPONSES?|REPLY|REPLIES|VALUES?)(?![A-Za-z])",
                         re.IGNORECASE)
# A verdict label at the start of a line, optionally inside Markdown emphasis or a list.
_LABELLED_LINE = re.compile(
    r"^[\s>#*_-]*(?:(?:final|overall)\s+)?(?:grade|verdict|judge?ment|rating|result|evaluation"
    r"|final\s+answer|(?:最终)?(?:评分|结论|评级|判定|评判|结果))[\s*_]*[:：]\s*(?P<value>.*)$",
    re.IGNORECASE,
)


def load_template(language: Language, path: str | None = None) -> jinja2.Template:
    """Load the shipped grader template for `language`, or the user's template file at `path`.

    `language` only chooses the shipped template, so a user file is used as given. A user
    template may leave out any of `question`, `gold_answer` and `predicted_answer` but may
    not use other variables. Raises ValueError when the file is missing, unreadable or
    not valid Jinja2.
    """
    if language not in ("en", "zh"):
        raise ValueError(f"invalid grader language {language!r}: expected 'en' or 'zh'")
    if path is None:
        return _environment(TEMPLATE_DIR).get_template(f"grader_{language}.j2")
    return _load_user_template(Path(path).expanduser())


def render_grader_prompt(template: jinja2.Template, question: str, gold_answer: str,
                         predicted_answer: str) -> str:
    """Render the judge prompt for one sample.

    The three texts are passed as values and never parsed as Jinja2, so template syntax
    inside a model's answer reaches the judge literally.
    """
    import jinja2

    try:
        return template.render(question=question, gold_answer=gold_answer,
                               predicted_answer=predicted_answer)
    except Exception as error:  # noqa: BLE001 - a user's template may raise anything
        kind = "" if isinstance(error, jinja2.TemplateError) else f"{type(error).__name__}: "
        raise ValueError(f"grader template {template.filename} failed to render: "
                         f"{kind}{_one_line(str(error))}. Fix the template.") from None


def _environment(directory: Path) -> jinja2.Environment:
    import jinja2.sandbox

    # Sandboxed: a template file may come from anyone who can edit the ini file.
    return jinja2.sandbox.SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(directory, encoding="utf-8"),
        # The prompt is plain text for a model, not HTML: escaping would turn a gold
        # answer such as "AT&T" into "AT&amp;T" and change what the judge compares.
        # Model text stays inert without escaping because it is passed as a value.
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )


def _load_user_template(path: Path) -> jinja2.Template:
    import jinja2
    import jinja2.meta

    if not path.is_file():
        raise ValueError(f"grader template not found: {path}. Give the path of an existing "
                         "Jinja2 file, or none to use the built-in grader prompt.")
    environment = _environment(path.parent)
    try:
        source = path.read_text(encoding="utf-8")
        unknown = jinja2.meta.find_undeclared_variables(environment.parse(source))
        unknown -= TEMPLATE_VARIABLES
        template = environment.get_template(path.name)
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"grader template {path} cannot be read as UTF-8 text: "
                         f"{_one_line(str(error))}") from error
    except jinja2.TemplateError as error:
        line = getattr(error, "lineno", None)
        where = f" (line {line})" if line else ""
        raise ValueError(f"grader template {path} is not valid Jinja2{where}: "
                         f"{_one_line(str(error))}. Fix the template syntax.") from error
    if unknown:
        raise ValueError(f"grader template {path} uses unknown variables "
                         f"{', '.join(sorted(unknown))}. Use only question, gold_answer "
                         "and predicted_answer.")
    # A trial render finds errors that only show at render time (a division by
    # zero, a missing include) before any request is sent.
    trial = render_grader_prompt(template, "question?", "gold", "predicted")
    if not trial.strip():
        raise ValueError(f"grader template {path} renders to empty text. Write the prompt "
                         "that the judge should receive.")
    return template


def parse_verdict(text: str | None) -> Verdict | None:
    """Read the judge's grade from its reply, or return None when the reply is unreadable.

    The checks run in this order, and the first that finds a grade decides:

    1. the whole reply is a letter A/B/C or a Chinese grade word (正确, 错误, 未尝试);
    2. the last labelled line, such as "Grade: ..." or "结论：...";
    3. the last non-empty line;
    4. the whole reply.

    Checks 2 to 4 count only when the text states exactly one grade and does not also
    deny it. A reply that names two different grades without a deciding line is unscored.
    Negated grades ("not correct") and grade words used as adjectives ("the correct
    answer") state no grade.
    """
    if not text:
        return None
    cleaned = _normalise(text)

    compact = _strip_punctuation(cleaned).upper()
    if compact in LETTER_VERDICTS:
        return LETTER_VERDICTS[compact]
    if compact in CHINESE_VERDICTS:
        return CHINESE_VERDICTS[compact]

    lines = [line for line in cleaned.splitlines() if line.strip()]
    labelled = [match for match in map(_LABELLED_LINE.match, lines) if match]
    if labelled:
        verdict = _single_verdict(labelled[-1]["value"], chinese=True)
        if verdict is not None:
            return verdict
    if lines:
        verdict = _single_verdict(lines[-1], chinese=True)
        if verdict is not None:
            return verdict
    return _single_verdict(cleaned, chinese=False)


def _normalise(text: str) -> str:
    # Format characters (zero-width spaces and joiners, BOM, soft hyphen) can split a
    # grade word. They are removed before and after NFKC, which folds full-width letters
    # and colons to ASCII.
    without_format = _drop_format_characters(text)
    return _drop_format_characters(unicodedata.normalize("NFKC", without_format))


def _drop_format_characters(text: str) -> str:
    return "".join(char for char in text if unicodedata.category(char) != "Cf")


def _strip_punctuation(text: str) -> str:
    # Drops punctuation, symbols and spaces, so "(C)", "**C**" and "正确。" reduce to the grade.
    return "".join(char for char in text
                   if not char.isspace() and unicodedata.category(char)[0] not in "PSZ")


def _single_verdict(text: str, *, chinese: bool) -> Verdict | None:
    """Return the one grade that `text` states, or None for no grade or conflicting grades.

    With `chinese`, a text that is only a Chinese grade word also counts. Matching the
    whole text keeps 不正确 ("not correct") from reading as 正确.
    """
    stated: set[Verdict] = set()
    denied: set[Verdict] = set()
    for match in _GRADE_WORD.finditer(text):
        window_start = max(0, match.start() - NEGATION_WINDOW)
        if (_ARTICLE_BEFORE.search(text, window_start, match.start())
                or _NOUN_AFTER.match(text, match.end())):
            continue
        verdict = _verdict_of(match)
        if _NEGATION_BEFORE.search(text, window_start, match.start()):
            denied.add(verdict)
        else:
            stated.add(verdict)
    if chinese and not stated:
        word = CHINESE_VERDICTS.get(_strip_punctuation(text))
        if word is not None:
            stated.add(word)
    if len(stated) == 1 and not stated & denied:
        return stated.pop()
    return None


def _verdict_of(match: re.Match[str]) -> Verdict:
    if match["not_attempted"]:
        return "NOT_ATTEMPTED"
    if match["incorrect"]:
        return "INCORRECT"
    return "CORRECT"


def _one_line(text: str) -> str:
    return " ".join(text.split())
