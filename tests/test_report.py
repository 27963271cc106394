"""Tests for the terminal table, Markdown and HTML renderers and write_reports."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pytest_modeleval.report import (
    display_width,
    format_table,
    render_html,
    render_markdown,
    write_reports,
)

SCRIPT_CONTENT = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep write_reports from appending to the step summary of a CI job running these tests."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def _sample(subset: str, sample_id: str, outcome: str, **overrides: Any) -> dict[str, Any]:
    sample = {
        "benchmark": "bfcl_v3",
        "subset": subset,
        "sample_id": sample_id,
        "repeat": 0,
        "outcome": outcome,
        "score": 1.0 if outcome == "correct" else 0.0,
        "category": "AST_NON_LIVE",
        "latency_s": 0.41,
        "prompt_tokens": 120,
        "completion_tokens": 12,
        "explanation": "",
        "reply": {
            "content": None,
            "reasoning_content": None,
            "tool_calls": [{"name": "math.factorial", "arguments": "{\"number\": 5}"}],
        },
    }
    sample.update(overrides)
    return sample


@pytest.fixture
def document() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "created_at": "2026-12-04T20:30:00+00:00",
        "model": "通义千问-plus",
        "config": {
            "model": "通义千问-plus",
            "base_url": "http://user:pw@127.0.0.1:8000/v1?api-version=preview",
            "api_key_env": "OPENAI_API_KEY",
            "concurrency": 32,
            "limit": None,
            "gen": {"temperature": 0.0},
            "stream": False,
            "bfcl_mode": "fc",
            "bfcl_underscore_to_dot": True,
            "thresholds": ["bfcl_v3/simple>=0.9", "bfcl_v3/OVERALL>=0.8"],
            "report_dir": "modeleval-report",
        },
        "versions": {"pytest_modeleval": "0.1.0", "bfcl_eval": "2026.3.23", "python": "3.11.7"},
        "subsets": [
            {"benchmark": "bfcl_v3", "subset": "simple", "metric": "accuracy", "num": 400,
             "score": 0.9325, "category": "AST_NON_LIVE", "correct": 373, "wrong": 25,
             "errors": 2, "unscored": 0},
            {"benchmark": "bfcl_v3", "subset": "中华文化", "metric": "accuracy", "num": 3,
             "score": 2 / 3, "category": "文化", "correct": 2, "wrong": 1, "errors": 0,
             "unscored": 0},
            {"benchmark": "bfcl_v3", "subset": "irrelevance", "metric": "accuracy", "num": None,
             "score": None, "category": "RELEVANCE", "correct": 0, "wrong": 0, "errors": 0,
             "unscored": 0},
        ],
        "rollups": [
            {"benchmark": "bfcl_v3", "name": "AST_NON_LIVE", "metric": "accuracy", "num": 403,
             "score": 0.93, "partial": False, "missing": []},
            {"benchmark": "bfcl_v3", "name": "OVERALL", "metric": "accuracy", "num": 403,
             "score": 0.5123, "partial": True,
             "missing": ["multi_turn_base", "live_simple"]},
            {"benchmark": "bfcl_v3", "name": "MULTI_TURN", "metric": "accuracy", "num": 0,
             "score": None, "partial": True, "missing": ["multi_turn_base"]},
        ],
        "thresholds": [
            {"expression": "bfcl_v3/simple>=0.9", "benchmark": "bfcl_v3", "target": "simple",
             "op": ">=", "bound": 0.9, "value": 0.9325, "passed": True},
            {"expression": "bfcl_v3/OVERALL>=0.8", "benchmark": "bfcl_v3", "target": "OVERALL",
             "op": ">=", "bound": 0.8, "value": 0.5123, "passed": False},
        ],
        "totals": {"samples": 406, "correct": 375, "wrong": 26, "errors": 2, "unscored": 0,
                   "prompt_tokens": 48720, "completion_tokens": 4872,
                   "mean_latency_s": 0.42, "wall_s": 95.3},
        "samples": [
            _sample("simple", "simple_python_0", "correct",
                    explanation="ok: math.factorial(number=5)"),
            _sample("simple", "simple_python_1", "wrong",
                    explanation="wrong value for 'number': 4 < 5",
                    reply={"content": SCRIPT_CONTENT,
                           "reasoning_content": "think <b>hard</b>",
                           "tool_calls": [{"name": "<img src=x>",
                                           "arguments": "{\"q\": \"</pre><script>\"}"}]}),
            _sample("中华文化", "文化_0", "error", score=None, latency_s=None,
                    prompt_tokens=None, completion_tokens=None,
                    explanation="server returned HTTP 500", reply=None),
        ],
        "unknown_extra_key": {"ignored": True},
    }


def _step(calls: list[str], results: list[str], content: str | None = None,
          decode_error: str = "") -> dict[str, Any]:
    """Build a transcript step shaped like the one BFCL multi-turn samples record."""
    return {
        "reply": {"content": content, "reasoning_content": None,
                  "tool_calls": [{"id": f"call_{index}", "name": call.split("(")[0],
                                  "arguments": "{}"} for index, call in enumerate(calls)],
                  "finish_reason": "tool_calls" if calls else "stop"},
        "calls": calls,
        "results": results,
        "decode_error": decode_error,
        "latency_s": 0.5,
        "prompt_tokens": 300,
        "completion_tokens": 20,
    }


def _multi_turn_sample(transcript: Any) -> dict[str, Any]:
    return _sample("multi_turn_base", "multi_turn_base_0", "wrong",
                   explanation="turn 1: wrong state", transcript=transcript,
                   reply={"content": "final reply", "reasoning_content": None, "tool_calls": []})


TWO_TURN_TRANSCRIPT = [
    {"query": [{"role": "user", "content": "Go to the document folder and list it."}],
     "steps": [_step(["cd(folder='document')", "ls()"],
                     ['{"current_working_directory": "document"}',
                      '{"current_directory_content": ["notes.txt"]}']),
               _step([], [], content="It contains notes.txt.",
                     decode_error="the reply has no tool call")]},
    {"query": [{"role": "user", "content": "Show notes.txt."}],
     "steps": [_step(["cat(file_name='notes.txt')"], [SCRIPT_CONTENT]),
               _step([], [], content="Done.", decode_error="the reply has no tool call")]},
]


class _ElementTexts(HTMLParser):
    """Collect, in document order, the text of the report elements that show a transcript.

    Each entry is (kind, text). A <pre> inside a calls table is a "call" or a "result" by its
    column. The other kinds are "summary", "turn" (the turn heading), "step", "label" and "pre".
    """

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[tuple[str, str]] = []
        self.start_tags: list[str] = []
        self._kind: str | None = None
        self._text: list[str] = []
        self._in_calls = False
        self._column = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.start_tags.append(tag)
        css_class = dict(attrs).get("class")
        if tag == "table" and css_class == "calls":
            self._in_calls = True
        elif tag == "tr":
            self._column = 0
        elif tag == "td":
            self._column += 1
        elif tag == "pre" and self._in_calls:
            self._start("call" if self._column == 1 else "result")
        elif tag == "pre":
            self._start("pre")
        elif tag == "summary":
            self._start("summary")
        elif tag == "h4" and css_class == "turn":
            self._start("turn")
        elif tag == "div" and css_class in ("label", "step"):
            self._start(css_class)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_calls = False
        elif tag in ("pre", "summary", "h4", "div") and self._kind is not None:
            self.entries.append((self._kind, "".join(self._text)))
            self._kind = None

    def handle_data(self, data: str) -> None:
        if self._kind is not None:
            self._text.append(data)

    def _start(self, kind: str) -> None:
        self._kind = kind
        self._text = []


def _transcript_entries(document: dict[str, Any], *kinds: str) -> list[tuple[str, str]]:
    parser = _ElementTexts()
    parser.feed(render_html(document))
    parser.close()
    return [entry for entry in parser.entries if not kinds or entry[0] in kinds]


def _table_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith(("+", "|"))]


def _separator_columns(line: str) -> list[int]:
    """Return the display columns at which ``|`` or ``+`` separators sit in a table line."""
    columns = []
    position = 0
    for char in line:
        if char in "|+":
            columns.append(position)
        position += display_width(char)
    return columns


def _cells_by_subset(lines: list[str]) -> dict[str, list[str]]:
    """Map the Subset cell of each table row to that row's stripped cells."""
    rows = {}
    for line in lines:
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        rows[cells[3]] = cells
    return rows


def _markdown_cells(line: str) -> list[str]:
    """Split a Markdown table row on pipes that are not backslash-escaped."""
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


def test_display_width_cases() -> None:
    assert display_width("中华文化") == 8
    assert display_width("abc") == 3
    assert display_width("e\u0301") == 1
    assert display_width("") == 0
    assert display_width("ＡＢ") == 4


def test_table_lines_have_equal_width(document: dict[str, Any]) -> None:
    lines = _table_lines(format_table(document))
    widths = {display_width(line) for line in lines}

    assert len(lines) == 11
    assert len(widths) == 1


def test_table_separators_align_with_cjk(document: dict[str, Any]) -> None:
    lines = _table_lines(format_table(document))
    expected = _separator_columns(lines[0])
    cjk_rows = [line for line in lines if "中华文化" in line]

    assert len(expected) == 8
    assert len(cjk_rows) == 1
    for line in lines:
        assert _separator_columns(line) == expected, line


def test_table_header_and_border_style(document: dict[str, Any]) -> None:
    lines = format_table(document)
    header = [cell.strip() for cell in lines[1].strip("|").split("|")]

    assert header == ["Model", "Dataset", "Metric", "Subset", "Num", "Score", "Cat.0"]
    assert set(lines[0]) == {"+", "-"}
    assert set(lines[2]) == {"+", "="}


def test_table_subset_rows(document: dict[str, Any]) -> None:
    cells = _cells_by_subset(format_table(document))

    assert cells["simple"] == ["通义千问-plus", "bfcl_v3", "accuracy", "simple", "400", "0.9325",
                               "AST_NON_LIVE"]
    assert cells["中华文化"][5] == "0.6667"
    assert cells["中华文化"][6] == "文化"
    assert cells["irrelevance"][4] == "-"
    assert cells["irrelevance"][5] == "-"


def test_table_numbers_right_aligned(document: dict[str, Any]) -> None:
    lines = format_table(document)
    simple_row = next(line for line in lines if "| simple " in line)
    cjk_row = next(line for line in lines if "中华文化" in line)

    assert cjk_row.split("|")[5] == "   3 "
    assert cjk_row.split("|")[6] == "           0.6667 "
    assert simple_row.split("|")[5] == " 400 "
    assert lines[1].split("|")[6] == "            Score "


def test_table_rollup_rows(document: dict[str, Any]) -> None:
    cells = _cells_by_subset(format_table(document))

    assert cells["AST_NON_LIVE"][4:] == ["403", "0.9300", "-"]
    assert cells["OVERALL"][5] == "0.5123 (partial)"
    assert cells["MULTI_TURN"][5] == "-"


def test_table_partial_notes(document: dict[str, Any]) -> None:
    lines = format_table(document)
    notes = [line for line in lines if not line.startswith(("+", "|"))]

    assert notes == [
        "bfcl_v3 OVERALL is partial: missing multi_turn_base, live_simple",
        "bfcl_v3 MULTI_TURN is partial: missing multi_turn_base",
    ]
    assert not lines[-1].endswith("\n")


def test_table_replaces_control_characters(document: dict[str, Any]) -> None:
    document["model"] = "evil\x1b[31m\nmodel"
    lines = _table_lines(format_table(document))

    assert all("\x1b" not in line and "\n" not in line for line in lines)
    assert len({display_width(line) for line in lines}) == 1


def test_table_empty_document() -> None:
    lines = format_table({})

    assert len(lines) == 4
    assert "| Model " in lines[1]


def test_markdown_header_and_rows(document: dict[str, Any]) -> None:
    markdown = render_markdown(document)
    lines = markdown.splitlines()

    assert lines[0] == "# modeleval report: 通义千问-plus"
    assert "| Model | Dataset | Metric | Subset | Num | Score | Cat.0 |" in lines
    assert "| --- | --- | --- | --- | ---: | ---: | --- |" in lines
    assert "| 通义千问-plus | bfcl_v3 | accuracy | 中华文化 | 3 | 0.6667 | 文化 |" in lines
    assert "| 通义千问-plus | bfcl_v3 | accuracy | OVERALL | 403 | 0.5123 (partial) | - |" in lines


def test_markdown_run_line_host_only(document: dict[str, Any]) -> None:
    markdown = render_markdown(document)
    run_line = markdown.splitlines()[2]

    assert run_line == ("Run 2026-12-04T20:30:00+00:00 against 127.0.0.1:8000:"
                        " 406 samples, 2 errors, wall time 95.3 s.")
    assert "api-version" not in markdown
    assert "pw@" not in markdown
    assert "/v1" not in markdown


def test_markdown_thresholds(document: dict[str, Any]) -> None:
    lines = render_markdown(document).splitlines()

    assert "## Thresholds" in lines
    assert "| bfcl_v3/simple>=0.9 | 0.9325 | >= 0.9 | PASS |" in lines
    assert "| bfcl_v3/OVERALL>=0.8 | 0.5123 | >= 0.8 | FAIL |" in lines


def test_markdown_partial_and_counts(document: dict[str, Any]) -> None:
    lines = render_markdown(document).splitlines()

    assert "### Partial roll-ups" in lines
    assert "- bfcl_v3 OVERALL is partial: missing multi_turn_base, live_simple" in lines
    assert "- Errors: 2" in lines
    assert "- Unscored: 0" in lines


def test_markdown_escapes_pipe_and_newline(document: dict[str, Any]) -> None:
    document["subsets"][0]["category"] = "AST|NON\nLIVE"
    lines = render_markdown(document).splitlines()
    row = next(line for line in lines if "| simple |" in line)

    assert "AST\\|NON<br>LIVE" in row
    assert len(_markdown_cells(row)) == 7


def test_markdown_escapes_html(document: dict[str, Any]) -> None:
    document["model"] = SCRIPT_CONTENT
    markdown = render_markdown(document)

    assert "\\<script>alert(1)\\</script>" in markdown
    assert re.search(r"(?<!\\)<(?!br>)", markdown) is None


def test_markdown_without_optional_sections() -> None:
    markdown = render_markdown({"model": "m"})

    assert "## Thresholds" not in markdown
    assert "Partial roll-ups" not in markdown
    assert "against -: - samples, - errors, wall time -." in markdown


def _own_script_only(html: str) -> bool:
    """Tell whether the page's only script element is the report's own sample filter."""
    return html.count("<script") == 1 and html.count("<script>\n(function () {") == 1


def test_html_escapes_model_strings(document: dict[str, Any]) -> None:
    html = render_html(document)

    assert _own_script_only(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x&gt;" in html
    assert "<img" not in html
    assert "think &lt;b&gt;hard&lt;/b&gt;" in html
    assert "&lt;/pre&gt;&lt;script&gt;" in html


def test_html_header_and_config(document: dict[str, Any]) -> None:
    html = render_html(document)

    assert '<meta charset="utf-8">' in html
    assert "<title>modeleval report: 通义千问-plus</title>" in html
    assert "Server http://127.0.0.1:8000/v1 &middot; run at 2026-12-04T20:30:00+00:00" in html
    assert "pw@" not in html
    assert "api-version" not in html
    assert "<tr><th>concurrency</th><td>32</td></tr>" in html
    assert "<tr><th>gen</th><td>{&#34;temperature&#34;: 0.0}</td></tr>" in html
    assert "<tr><th>limit</th><td>-</td></tr>" in html
    assert "<tr><td>bfcl_eval</td><td>2026.3.23</td></tr>" in html


def test_html_is_self_contained(document: dict[str, Any]) -> None:
    html = render_html(document)

    assert "<link" not in html
    assert _own_script_only(html)
    assert "<script src" not in html
    assert re.search(r"<[a-z]+[^>]*\s(src|href)=", html) is None
    assert "url(" not in html
    assert "@import" not in html


def test_html_summary_and_thresholds(document: dict[str, Any]) -> None:
    html = render_html(document)

    assert "<th>Cat.0</th>" in html
    assert '<td class="num">0.9325</td>' in html
    assert '<td class="num">0.5123 (partial)</td>' in html
    assert "<li>bfcl_v3 OVERALL is partial: missing multi_turn_base, live_simple</li>" in html
    assert '<td class="pass">PASS</td>' in html
    assert '<td class="fail">FAIL</td>' in html


def test_html_threshold_without_verdict(document: dict[str, Any]) -> None:
    document["thresholds"] = [{"expression": "bfcl_v3/live>=0.5", "op": ">=", "bound": 0.5,
                               "value": None, "passed": None}]
    html = render_html(document)

    assert '<td class="num">-</td><td>&gt;= 0.5</td><td class="">-</td>' in html


def test_html_samples_table(document: dict[str, Any]) -> None:
    html = render_html(document)

    assert html.count("<details>") == 2
    assert "<h2>Samples (3)</h2>" in html
    assert '<td class="outcome-error">error</td>' in html
    assert '<td class="num">- / -</td>' in html
    assert "server returned HTTP 500" in html
    assert "Tool call 1: math.factorial</div><pre>{\n  &#34;number&#34;: 5\n}</pre>" in html


def test_html_handles_many_samples(document: dict[str, Any]) -> None:
    template = document["samples"][1]
    document["samples"] = [dict(template, sample_id=f"s{index}") for index in range(4000)]
    html = render_html(document)

    assert html.count("<details>") == 4000
    assert html.count("&lt;script&gt;alert(1)") == 4000


def test_html_transcript_turns_in_order() -> None:
    document = {"samples": [_multi_turn_sample(TWO_TURN_TRANSCRIPT)]}
    entries = _transcript_entries(document, "summary", "turn", "pre", "call", "result")

    assert entries == [
        ("summary", "transcript (2 turns)"),
        ("turn", "Turn 0"),
        ("pre", "Go to the document folder and list it."),
        ("call", "cd(folder='document')"),
        ("result", '{"current_working_directory": "document"}'),
        ("call", "ls()"),
        ("result", '{"current_directory_content": ["notes.txt"]}'),
        ("pre", "It contains notes.txt."),
        ("pre", "the reply has no tool call"),
        ("turn", "Turn 1"),
        ("pre", "Show notes.txt."),
        ("call", "cat(file_name='notes.txt')"),
        ("result", SCRIPT_CONTENT),
        ("pre", "Done."),
        ("pre", "the reply has no tool call"),
    ]


def test_html_transcript_step_labels() -> None:
    document = {"samples": [_multi_turn_sample(TWO_TURN_TRANSCRIPT)]}
    labels = _transcript_entries(document, "label", "step")

    assert labels[:5] == [
        ("label", "Query (user)"),
        ("step", "Step 1 · 0.50 s · tokens 300 / 20 · finish tool_calls"),
        ("step", "Step 2 · 0.50 s · tokens 300 / 20 · finish stop"),
        ("label", "Content"),
        ("label", "Decode error"),
    ]
    # Decoded calls restate the tool calls, so no raw tool call is listed.
    assert not any(text.startswith("Tool call") for _, text in labels)


def test_html_transcript_escapes_script() -> None:
    transcript = copy.deepcopy(TWO_TURN_TRANSCRIPT)
    transcript[0]["steps"][0]["calls"][0] = "cd(folder='<script>')"
    transcript[1]["query"][0]["content"] = "<b>Show</b> notes.txt."
    parser = _ElementTexts()
    html = render_html({"samples": [_multi_turn_sample(transcript)]})
    parser.feed(html)

    assert _own_script_only(html)
    assert "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "cd(folder=&#39;&lt;script&gt;&#39;)" in html
    assert "&lt;b&gt;Show&lt;/b&gt; notes.txt." in html
    assert parser.start_tags.count("script") == 1
    assert ("result", SCRIPT_CONTENT) in parser.entries


def test_html_transcript_results_shorter_than_calls() -> None:
    transcript = [{"query": [{"role": "user", "content": "q"}],
                   "steps": [_step(["a()", "b()", "c()"], ["ra"])]}]
    document = {"samples": [_multi_turn_sample(transcript)]}
    entries = _transcript_entries(document, "call", "result")

    assert entries == [("call", "a()"), ("result", "ra"), ("call", "b()"), ("result", "-"),
                       ("call", "c()"), ("result", "-")]


def test_html_transcript_more_results_than_calls() -> None:
    transcript = [{"query": [], "steps": [_step(["a()"], ["ra", "extra"])]}]
    document = {"samples": [_multi_turn_sample(transcript)]}
    entries = _transcript_entries(document, "call", "result")

    assert entries == [("call", "a()"), ("result", "ra"), ("call", "-"), ("result", "extra")]


@pytest.mark.parametrize("transcript", [None, "not a list", {"query": []}, [], [None, 3, "x"]])
def test_html_unreadable_transcript_shows_reply(transcript: Any) -> None:
    document = {"samples": [_multi_turn_sample(transcript)]}
    entries = _transcript_entries(document, "summary", "turn", "pre")

    assert entries == [("summary", "reply"), ("pre", "final reply")]


def test_html_transcript_missing_steps() -> None:
    transcript = [{"query": [{"role": "user", "content": "first"}]},
                  {"query": "not a list", "steps": "not a list"}]
    document = {"samples": [_multi_turn_sample(transcript)]}
    entries = _transcript_entries(document, "turn", "label", "pre")

    assert entries == [
        ("turn", "Turn 0"),
        ("label", "Query (user)"),
        ("pre", "first"),
        ("label", "No steps recorded"),
        ("turn", "Turn 1"),
        ("label", "No steps recorded"),
    ]


def test_html_transcript_wrong_types() -> None:
    step = {"reply": "not a dict", "calls": ["a()", 7, None, {"k": "v"}], "results": "oops",
            "decode_error": ["bad"], "latency_s": "fast", "prompt_tokens": None}
    transcript = [{"query": [None, {"content": ["part"]}, {"role": "user"}],
                   "steps": [step, None, {}]}]
    document = {"samples": [_multi_turn_sample(transcript)]}
    entries = _transcript_entries(document, "step", "label", "pre", "call", "result")

    assert entries == [
        ("label", "Query (-)"),
        ("pre", '["part"]'),
        ("label", "Query (user)"),
        ("pre", "-"),
        ("step", "Step 1 · - s · tokens - / - · finish -"),
        ("call", "a()"),
        ("result", "-"),
        ("call", "7"),
        ("result", "-"),
        ("call", "-"),
        ("result", "-"),
        ("call", '{"k": "v"}'),
        ("result", "-"),
        ("label", "Decode error"),
        ("pre", '["bad"]'),
        ("step", "Step 2 · - s · tokens - / - · finish -"),
        ("label", "Empty reply"),
    ]


def test_html_transcript_undecoded_tool_calls() -> None:
    step = _step([], [], decode_error="ValueError: bad arguments")
    step["reply"]["tool_calls"] = [{"id": "c0", "name": "cd", "arguments": "{\"folder\": 1"}]
    document = {"samples": [_multi_turn_sample([{"query": [], "steps": [step]}])]}
    entries = _transcript_entries(document, "label", "pre", "call")

    assert entries == [
        ("label", "Tool call 1: cd"),
        ("pre", '{"folder": 1'),
        ("label", "Decode error"),
        ("pre", "ValueError: bad arguments"),
    ]


def test_renderers_ignore_malformed_parts() -> None:
    document = {
        "model": None,
        "config": "not a dict",
        "subsets": [None, {"subset": "x"}],
        "rollups": "oops",
        "thresholds": [{"passed": None}],
        "samples": [{"reply": {"tool_calls": [{"function": {"name": "f", "arguments": "{"}}]}}],
    }

    assert len(_table_lines(format_table(document))) == 5
    assert "| - | - | - | x | - | - | - |" in render_markdown(document)
    assert "Tool call 1: f</div><pre>{</pre>" in render_html(document)


def test_write_reports_files(document: dict[str, Any], tmp_path: Path) -> None:
    report_dir = tmp_path / "nested" / "report"
    original = copy.deepcopy(document)
    paths = write_reports(document, report_dir)

    assert paths == [report_dir / "results.json", report_dir / "report.md",
                     report_dir / "report.html"]
    assert sorted(path.name for path in report_dir.iterdir()) == [
        "report.html", "report.md", "results.json"]
    with paths[0].open(encoding="utf-8") as stream:
        assert json.load(stream) == original
    assert "通义千问" in paths[0].read_bytes().decode("utf-8")
    assert "中华文化" in paths[1].read_bytes().decode("utf-8")
    assert "中华文化" in paths[2].read_bytes().decode("utf-8")
    assert paths[0].read_text(encoding="utf-8") == json.dumps(
        original, ensure_ascii=False, indent=2) + "\n"


def test_write_reports_replaces_existing(document: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "report.md").write_text("old report", encoding="utf-8")
    write_reports(document, tmp_path)
    document["model"] = "second-model"
    write_reports(document, tmp_path)

    assert "second-model" in (tmp_path / "report.md").read_text(encoding="utf-8")
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "report.html", "report.md", "results.json"]


def test_write_reports_render_failure(
    document: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_reports(document, tmp_path)
    previous_html = (tmp_path / "report.html").read_text(encoding="utf-8")

    def fail_render(document: dict[str, Any]) -> Iterator[str]:
        yield "<html>"  # part of the page is written before the failure
        raise RuntimeError("render failed")

    monkeypatch.setattr("pytest_modeleval.report.render_html_chunks", fail_render)
    document["model"] = "second-model"
    with pytest.raises(RuntimeError, match="render failed"):
        write_reports(document, tmp_path)

    assert (tmp_path / "report.html").read_text(encoding="utf-8") == previous_html
    assert "second-model" in (tmp_path / "results.json").read_text(encoding="utf-8")
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "report.html", "report.md", "results.json"]


def test_write_reports_encode_failure(
    document: dict[str, Any], tmp_path: Path
) -> None:
    document["bad"] = "\udc80"  # a lone surrogate cannot be encoded as UTF-8

    with pytest.raises(UnicodeEncodeError):
        write_reports(document, tmp_path)

    assert list(tmp_path.iterdir()) == []


def _with_statistics(document: dict[str, Any]) -> dict[str, Any]:
    """Add the interval, gate and baseline fields of a gated run with a baseline."""
    document["subsets"][0].update(stderr=0.0125, ci=[0.908, 0.957], primary=True)
    document["subsets"][1].update(stderr=0.27, ci=[0.1333, 1.0], primary=True)
    document["rollups"][0].update(stderr=0.0124, ci=[0.9057, 0.9543])
    document["gates"] = [
        {"kind": "threshold", "name": "bfcl_v3/simple>=0.9", "passed": True, "value": 0.9325,
         "bound": 0.9, "noise": False, "message": "0.9325 >= 0.9"},
        {"kind": "regression", "name": "bfcl_v3/simple", "passed": True, "value": -0.01,
         "bound": -0.02, "noise": True, "message": "drop within noise (p=0.41)"},
        {"kind": "error_rate", "name": "errors", "passed": False, "value": 0.05, "bound": 0.01,
         "noise": False, "message": "2 of 406 samples | errored"},
    ]
    document["baseline"] = {
        "path": "main/results.json", "model": "通义千问-plus",
        "created_at": "2026-12-01T08:00:00+00:00",
        "warnings": ["baseline used temperature 0.7 <b>"],
        "subsets": [
            {"benchmark": "bfcl_v3", "subset": "simple", "metric": "accuracy", "pairs": 400,
             "baseline": 0.9425, "current": 0.9325, "delta": -0.01, "ci": [-0.031, 0.011],
             "p_value": 0.4142, "test": "mcnemar", "to_wrong": 9, "to_correct": 5},
            {"benchmark": "bfcl_v3", "subset": "中华文化", "metric": "accuracy", "pairs": 3,
             "baseline": 0.3333, "current": 0.6667, "delta": 0.3333, "ci": None,
             "p_value": 0.0004, "test": "bootstrap", "to_wrong": 0, "to_correct": 1},
        ],
        "flips": [
            {"benchmark": "bfcl_v3", "subset": "simple", "sample_id": "simple_python_1",
             "repeat": 0, "from": "correct", "to": "wrong",
             "baseline_reply": "math.factorial(number=5)", "current_reply": SCRIPT_CONTENT},
        ],
    }
    return document


def test_markdown_scores_with_intervals(document: dict[str, Any]) -> None:
    lines = render_markdown(_with_statistics(document)).splitlines()

    assert "| Model | Dataset | Metric | Subset | Num | Score | 95 % CI | Cat.0 |" in lines
    assert ("| 通义千问-plus | bfcl_v3 | accuracy | simple | 400 | 0.9325 | [0.9080, 0.9570]"
            " | AST_NON_LIVE |") in lines
    assert "| 通义千问-plus | bfcl_v3 | accuracy | irrelevance | - | - | - | RELEVANCE |" in lines
    assert ("| 通义千问-plus | bfcl_v3 | accuracy | AST_NON_LIVE | 403 | 0.9300 |"
            " [0.9057, 0.9543] | - |") in lines


def test_markdown_gates_replace_thresholds(document: dict[str, Any]) -> None:
    lines = render_markdown(_with_statistics(document)).splitlines()

    assert "## Thresholds" not in lines
    assert "## Gates" in lines
    assert "1 of 3 gates failed." in lines
    assert ("| bfcl_v3/simple | regression | -0.0100 | -0.0200 | PASS (within noise) |"
            " drop within noise (p=0.41) |") in lines
    assert ("| errors | error_rate | 0.0500 | 0.0100 | FAIL |"
            " 2 of 406 samples \\| errored |") in lines


def test_markdown_baseline_comparison(document: dict[str, Any]) -> None:
    lines = render_markdown(_with_statistics(document)).splitlines()

    assert "## Baseline comparison" in lines
    assert ("Compared with main/results.json (model 通义千问-plus,"
            " run at 2026-12-01T08:00:00+00:00).") in lines
    assert "> Warning: baseline used temperature 0.7 \\<b>" in lines
    assert ("| bfcl_v3 | simple | accuracy | 400 | 0.9425 | 0.9325 | -0.0100 |"
            " [-0.0310, 0.0110] | 0.414 | mcnemar | 9 | 5 |") in lines
    assert ("| bfcl_v3 | 中华文化 | accuracy | 3 | 0.3333 | 0.6667 | +0.3333 | - | <0.001"
            " | bootstrap | 0 | 1 |").replace("<", "\\<") in lines
    assert "### Flips (1)" in lines
    assert ("| bfcl_v3 | simple | simple_python_1 | 0 | correct | wrong | "
            "math.factorial(number=5) | \\<script>alert(1)\\</script> |") in lines


def test_markdown_caps_flips(document: dict[str, Any]) -> None:
    document = _with_statistics(document)
    flip = document["baseline"]["flips"][0]
    document["baseline"]["flips"] = [dict(flip, sample_id=f"s{index}") for index in range(70)]
    lines = render_markdown(document).splitlines()

    assert "### Flips (70)" in lines
    assert any(line.startswith("| bfcl_v3 | simple | s49 | 0 | correct | wrong |")
               for line in lines)
    assert not any("| s50 |" in line for line in lines)
    assert "20 more flips are listed in report.html and results.json." in lines


def test_markdown_baseline_without_flips(document: dict[str, Any]) -> None:
    document["baseline"] = {"path": "old.json", "subsets": [], "flips": []}
    lines = render_markdown(document).splitlines()

    assert "Compared with old.json (model -, run at -)." in lines
    assert "No sample changed between correct and wrong." in lines


def test_step_summary_appended(
    document: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    write_reports(document, tmp_path / "report")

    markdown = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert summary.read_text(encoding="utf-8") == "earlier step\n\n" + markdown


def test_step_summary_empty_variable(
    document: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", "")
    monkeypatch.chdir(tmp_path)
    write_reports(document, tmp_path / "report")

    assert sorted(path.name for path in tmp_path.iterdir()) == ["report"]


def test_step_summary_write_failure_warns(
    document: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "missing" / "summary.md"))

    with pytest.warns(RuntimeWarning, match="could not append report.md"):
        paths = write_reports(document, tmp_path / "report")

    assert all(path.stat().st_size > 0 for path in paths)


def test_html_scores_with_intervals(document: dict[str, Any]) -> None:
    html = render_html(_with_statistics(document))

    assert "<th>95 % CI</th>" in html
    assert '<td class="num">0.9325</td><td>[0.9080, 0.9570]</td>' in html
    assert '<td class="num">0.9300</td><td>[0.9057, 0.9543]</td>' in html


def test_html_chart_draws_primary_rows(document: dict[str, Any]) -> None:
    document = _with_statistics(document)
    document["subsets"].append(dict(document["subsets"][0], metric="f1", primary=False))
    html = render_html(document)

    assert html.count('<g class="subset-bar">') == 2
    assert "<title>bfcl_v3/simple: 0.9325 [0.9080, 0.9570]</title>" in html
    assert "<title>bfcl_v3/中华文化: 0.6667 [0.1333, 1.0000]</title>" in html
    assert 'width="391.6" height="14"' in html
    assert html.count('class="interval"') == 6


def test_html_chart_without_primary_field(document: dict[str, Any]) -> None:
    html = render_html(document)

    assert html.count('<g class="subset-bar">') == 2
    assert 'class="interval"' not in html


def test_html_gates_and_baseline(document: dict[str, Any]) -> None:
    html = render_html(_with_statistics(document))

    assert "<h2>Thresholds</h2>" not in html
    assert '<td class="pass">PASS (within noise)</td>' in html
    assert '<td class="fail">FAIL</td><td>2 of 406 samples | errored</td>' in html
    assert "<h3>Flips (1)</h3>" in html
    assert "Warning: baseline used temperature 0.7 &lt;b&gt;" in html
    assert "<td>-0.0100</td>" not in html
    assert '<td class="num">-0.0100</td><td>[-0.0310, 0.0110]</td>' in html
    assert "<pre>&lt;script&gt;alert(1)&lt;/script&gt;</pre>" in html
    assert _own_script_only(html)


def test_html_sample_filters(document: dict[str, Any]) -> None:
    document["samples"][0]["subset"] = 'a"><b>'
    html = render_html(document)

    assert '<option value="bfcl_v3">bfcl_v3</option>' in html
    assert '<option value="中华文化" data-benchmark="bfcl_v3">中华文化</option>' in html
    assert '<option value="error">error</option>' in html
    assert 'data-subset="a&#34;&gt;&lt;b&gt;"' in html
    assert "<b>" not in html


def test_html_sample_request(document: dict[str, Any]) -> None:
    document["samples"][0]["request"] = {
        "messages": [{"role": "user", "content": "What is 5! <i>exactly</i>?"}],
        "tools": ["math.factorial", "math.gcd"]}
    entries = _transcript_entries(document, "summary", "label", "pre")

    assert entries[:5] == [
        ("summary", "prompt"),
        ("label", "Message (user)"),
        ("pre", "What is 5! <i>exactly</i>?"),
        ("label", "Tools"),
        ("pre", "math.factorial, math.gcd"),
    ]


def test_chart_cuts_long_labels_and_keeps_tooltip() -> None:
    from pytest_modeleval.report.chart import MAX_LABEL_COLUMNS, build_chart
    from pytest_modeleval.report.table import display_width

    subset = "工程、技术与应用科学" * 3
    chart = build_chart({"subsets": [{"benchmark": "chinese_simpleqa", "subset": subset,
                                      "metric": "is_correct", "score": 0.5, "primary": True}]})
    assert chart is not None
    bar = chart.bars[0]
    assert bar.label == f"chinese_simpleqa/{subset}"
    assert bar.short_label.endswith("\u2026")
    assert display_width(bar.short_label) <= MAX_LABEL_COLUMNS
