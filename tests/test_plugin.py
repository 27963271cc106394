"""The plugin end to end through pytester: outcomes, exit status, thresholds,
options, secrecy and escaping, against the scripted server."""

from __future__ import annotations

import atexit
import gc
import threading
import time
from pathlib import Path

import pytest

from tests.bfcl_oracle import build_oracle
from tests.plugin_helpers import add_bfcl_module, load_results, run_args, subset_scores
from tests.scripted_server import Fail, Reply, ScriptedServer, ToolCall

SIMPLE_3 = ("-k", "simple_python", "--limit", "3")
XDIST_MODES = pytest.mark.parametrize("xdist", [[], ["-n", "0"], ["-n", "2"]],
                                      ids=["plain", "n0", "n2"])


@pytest.fixture
def simple_oracle_server() -> ScriptedServer:
    """Return a server replying correctly to simple_python_0..2 except _1 (wrong value)."""
    oracle = build_oracle("fc", subsets=("simple",), tamper={"simple_python_1": "wrong"},
                          limit=3)
    with ScriptedServer(oracle.script) as server:
        yield server


def test_no_model_deselects_with_hint(pytester: pytest.Pytester) -> None:
    add_bfcl_module(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines([
        "modeleval: 1 benchmark test(s) deselected because --model is not set; "
        "run e.g. pytest --model NAME --base-url URL -k bfcl",
        "*1 deselected*",
    ])


def test_model_without_base_url(pytester: pytest.Pytester,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    add_bfcl_module(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider", "--model", "m")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --model m needs a server: pass --base-url URL*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--concurrency", "0"], "*argument --concurrency: invalid value '0': expected a "
         "positive integer*"),
        (["--limit", "x"], "*argument --limit: invalid value 'x'*"),
        (["--bfcl-mode", "native"], "*argument --bfcl-mode: invalid value 'native': expected "
         "'fc'*"),
        (["--gen", "temperature"], "*argument --gen: invalid value 'temperature': expected "
         "KEY=VALUE*"),
        (["--threshold", "bfcl_v3/simple=>0.9"], "*invalid threshold 'bfcl_v3/simple=>0.9'*"),
        (["--threshold", "bfcl_v3/nosuch>=0.9"], "*unknown subset or roll-up 'nosuch' of "
         "bfcl_v3; valid: simple, multiple,*OVERALL*"),
        (["--dataset", "mmlu=x.jsonl"], "*unknown benchmark 'mmlu'; valid: bfcl_v3*"),
        (["--api-key", "sk-x"], "*unrecognized arguments: --api-key*"),
        (["--model", " "], "*argument --model: invalid value ' ': expected a model name*"),
    ],
)
def test_bad_option_usage_error(pytester: pytest.Pytester, args: list[str], message: str
                                ) -> None:
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_bad_ini_value_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nmodeleval_concurrency = "-3"\n')
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: modeleval_concurrency in the ini file: invalid value "
                                 "'-3'*"])


def test_help_lists_every_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines([
        "LLM benchmarks (pytest-modeleval):",
        "  --model=NAME *",
        "  --base-url=URL *",
        "  --api-key-env=VAR *",
        "  --concurrency=N *",
        "  --max-retries=N *",
        "  --limit=N *",
        "  --gen=KEY=VALUE *",
        "  --stream *",
        "  --bfcl-mode=fc|prompt",
        "  --bfcl-underscore-to-dot, --no-bfcl-underscore-to-dot",
        "  --threshold=EXPR *",
        "  --report-dir=DIR *",
        "  --cache-dir=DIR *",
        "  --no-cache *",
        "  --progress-interval=SECONDS*",
        "  --shard=I/N *",
    ])
    for ini in ("modeleval_model", "modeleval_base_url", "modeleval_gen", "modeleval_threshold",
                "modeleval_bfcl_underscore_to_dot", "modeleval_report_dir",
                "modeleval_cache_dir", "modeleval_no_cache"):
        assert ini in result.stdout.str()


@XDIST_MODES
def test_wrong_sample_fails_session(pytester: pytest.Pytester,
                                    simple_oracle_server: ScriptedServer, xdist: list[str]
                                    ) -> None:
    add_bfcl_module(pytester)
    report_dir = pytester.path / "report"
    result = pytester.runpytest(*run_args(simple_oracle_server.url, report_dir, *SIMPLE_3,
                                          *xdist))
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    record = next(s for s in load_results(report_dir)["samples"]
                  if s["sample_id"] == "simple_python_1")
    assert record["outcome"] == "wrong"
    assert record["score"] == 0.0
    assert record["benchmark"] == "bfcl_v3"
    assert record["subset"] == "simple"
    assert record["repeat"] == 0
    assert record["latency_s"] > 0
    assert record["prompt_tokens"] == 10
    assert record["completion_tokens"] == 5
    assert record["reply"]["tool_calls"][0]["name"] == "math_factorial"


@XDIST_MODES
def test_threshold_pass_overrides_failures(pytester: pytest.Pytester,
                                           simple_oracle_server: ScriptedServer,
                                           xdist: list[str]) -> None:
    add_bfcl_module(pytester)
    result = pytester.runpytest(*run_args(simple_oracle_server.url, pytester.path / "r",
                                          *SIMPLE_3, *xdist, "--threshold",
                                          "bfcl_v3/simple>=0.6"))
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["threshold passed: bfcl_v3/simple>=0.6 (measured 0.6667)*"])


@XDIST_MODES
def test_threshold_fail_exit_one(pytester: pytest.Pytester,
                                 simple_oracle_server: ScriptedServer, xdist: list[str]) -> None:
    add_bfcl_module(pytester)
    report_dir = pytester.path / "r"
    result = pytester.runpytest(*run_args(
        simple_oracle_server.url, report_dir, *SIMPLE_3, *xdist,
        "--threshold", "bfcl_v3/simple>=0.6",
        "--threshold", "bfcl_v3/simple>0.7", "--threshold", "bfcl_v3/OVERALL>=0.1"))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "threshold passed: bfcl_v3/simple>=0.6 (measured 0.6667)*",
        "threshold failed: bfcl_v3/simple>0.7 (measured 0.6667, bound > 0.7); short by 0.0333*",
        "threshold failed: bfcl_v3/OVERALL>=0.1 (bfcl_v3/OVERALL not measured: partial: "
        "missing java, javascript, *",
    ])
    rows = load_results(report_dir)["thresholds"]
    assert [row["passed"] for row in rows] == [True, False, False]


def test_ini_settings_apply(pytester: pytest.Pytester,
                            simple_oracle_server: ScriptedServer) -> None:
    report_dir = pytester.path / "ini-report"
    pytester.makepyprojecttoml(f"""
[tool.pytest.ini_options]
modeleval_model = "ini-model"
modeleval_base_url = "{simple_oracle_server.url}"
modeleval_limit = "3"
modeleval_concurrency = "2"
modeleval_report_dir = "{report_dir.as_posix()}"
modeleval_gen = ["temperature=0.5", "top_k=20"]
modeleval_threshold = ["bfcl_v3/simple>=0.9"]
""")
    add_bfcl_module(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "simple_python")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # 2 of 3 is below 0.9
    config = load_results(report_dir)["config"]
    assert config["model"] == "ini-model"
    assert config["limit"] == 3
    assert config["concurrency"] == 2
    assert config["gen"] == {"temperature": 0.5, "top_k": 20}
    assert config["thresholds"] == ["bfcl_v3/simple>=0.9"]
    body = simple_oracle_server.requests[0]
    assert body["model"] == "ini-model"
    assert body["temperature"] == 0.5
    assert body["top_k"] == 20


def test_dotted_name_round_trip(pytester: pytest.Pytester,
                                simple_oracle_server: ScriptedServer) -> None:
    add_bfcl_module(pytester)
    result = pytester.runpytest(*run_args(simple_oracle_server.url, pytester.path / "r",
                                          "-k", "simple_python_1", "--limit", "3"))
    sent = simple_oracle_server.requests[0]["tools"][0]["function"]["name"]
    assert sent == "math_factorial"
    # _1 is tampered wrong; the checker saw the call under its dotted name.
    result.stdout.fnmatch_lines(["*wrong: *math.factorial*"])


@XDIST_MODES
def test_dots_rejected_is_error(pytester: pytest.Pytester,
                                simple_oracle_server: ScriptedServer, xdist: list[str]) -> None:
    add_bfcl_module(pytester)
    report_dir = pytester.path / "r"
    result = pytester.runpytest(*run_args(simple_oracle_server.url, report_dir, "-k",
                                          "simple_python_1", "--limit", "3", *xdist,
                                          "--no-bfcl-underscore-to-dot"))
    result.assert_outcomes(errors=1)
    assert simple_oracle_server.requests[0]["tools"][0]["function"]["name"] == "math.factorial"
    assert len(simple_oracle_server.requests) == 1  # a 400 is not retried
    result.stdout.fnmatch_lines(["*simple_python_1: server error: HTTP 400:*"])
    document = load_results(report_dir)
    assert document["totals"]["errors"] == 1
    assert document["subsets"][0]["errors"] == 1
    assert document["subsets"][0]["num"] == 0


def test_streamed_equals_plain(pytester: pytest.Pytester) -> None:
    oracle = build_oracle("fc", subsets=("parallel", "live_multiple"), limit=6,
                          tamper={"parallel_2": "wrong"})
    add_bfcl_module(pytester)
    scores = {}
    for name, extra in (("plain", []), ("stream", ["--stream"])):
        with ScriptedServer(oracle.script) as server:
            pytester.runpytest(*run_args(server.url, pytester.path / name, "--limit", "6",
                                         "-k", "parallel or live_multiple", *extra))
            assert all(bool(body.get("stream")) == (name == "stream") for body in server.requests)
        scores[name] = subset_scores(load_results(pytester.path / name))
    assert scores["plain"] == scores["stream"]
    assert scores["plain"]["parallel"] == pytest.approx(5 / 6)


def test_retries_end_scored(pytester: pytest.Pytester, caplog: pytest.LogCaptureFixture
                            ) -> None:
    oracle = build_oracle("fc", subsets=("simple",), limit=4)

    def flaky(body: dict, attempt: int) -> Reply | Fail:
        if attempt == 0 and body["messages"][0]["content"].startswith("Find the area"):
            return Fail(429, retry_after="1")
        if attempt < 2 and "factorial" in body["messages"][0]["content"]:
            return Fail(500)
        return oracle.script(body, attempt)

    add_bfcl_module(pytester)
    report_dir = pytester.path / "r"
    with ScriptedServer(flaky) as server:
        result = pytester.runpytest(*run_args(server.url, report_dir, "-k", "simple_python",
                                              "--limit", "4"))
        assert len(server.requests) == 4 + 1 + 2
    result.assert_outcomes(passed=4)
    assert load_results(report_dir)["totals"]["errors"] == 0
    # Each retry line names its sample, wherever pytest's capture files it.
    retried = [r.getMessage() for r in caplog.records if "retrying request" in r.getMessage()]
    assert len(retried) == 3
    assert all(" of bfcl_v3/simple simple_python_" in line for line in retried)


@XDIST_MODES
def test_api_key_never_leaks(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                             xdist: list[str]) -> None:
    secret = "sk-modeleval-test-0123456789"
    monkeypatch.setenv("MODELEVAL_TEST_KEY", secret)

    def echo_key(body: dict, attempt: int) -> Reply | Fail:
        if "factorial" in body["messages"][0]["content"]:
            return Fail(401, message=f"Incorrect API key provided: {secret}")
        return Reply(content=f"no call; key {secret[:6]}")

    add_bfcl_module(pytester)
    report_dir = pytester.path / "r"
    with ScriptedServer(echo_key) as server:
        result = pytester.runpytest(*run_args(server.url, report_dir, "-k", "simple_python",
                                              "--limit", "3", "--api-key-env",
                                              "MODELEVAL_TEST_KEY", "-rA", *xdist))
        assert server.headers[0]["authorization"] == f"Bearer {secret}"
    result.assert_outcomes(failed=2, errors=1)
    assert secret not in result.stdout.str() + result.stderr.str()
    for path in report_dir.iterdir():
        assert secret not in path.read_text(encoding="utf-8"), path.name
    assert load_results(report_dir)["config"]["api_key_env"] == "MODELEVAL_TEST_KEY"


def test_model_text_escaped_in_html(pytester: pytest.Pytester) -> None:
    payload = "<script>alert('x')</script>"

    def reply(body: dict, attempt: int) -> Reply:
        return Reply(content=payload, tool_calls=(ToolCall("f<b>", "{}"),))

    add_bfcl_module(pytester)
    report_dir = pytester.path / "r"
    with ScriptedServer(reply) as server:
        pytester.runpytest(*run_args(server.url, report_dir, "-k", "irrelevance_0",
                                     "--limit", "1"))
    html = (report_dir / "report.html").read_text(encoding="utf-8")
    assert payload not in html
    assert "&lt;script&gt;alert(" in html
    assert "f&lt;b&gt;" in html


def test_reports_written(pytester: pytest.Pytester,
                         simple_oracle_server: ScriptedServer) -> None:
    add_bfcl_module(pytester)
    report_dir = pytester.path / "out"
    result = pytester.runpytest(*run_args(simple_oracle_server.url, report_dir, *SIMPLE_3))
    assert sorted(p.name for p in report_dir.iterdir()) == ["report.html", "report.md",
                                                            "results.json"]
    document = load_results(report_dir)
    assert document["versions"]["bfcl_eval"] == "2026.3.23"
    assert document["subsets"] == [{
        "benchmark": "bfcl_v3", "subset": "simple", "metric": "accuracy", "num": 3,
        "score": pytest.approx(2 / 3), "category": "AST_NON_LIVE", "correct": 2, "wrong": 1,
        "errors": 0, "unscored": 0, "primary": True,
        # 2 of 3 correct: the Wilson interval, and SE = sd(1, 1, 0) / sqrt(3).
        "stderr": pytest.approx(1 / 3), "ci": pytest.approx([0.2077, 0.9385], abs=1e-4)}]
    markdown = (report_dir / "report.md").read_text(encoding="utf-8")
    assert "| Model | Dataset | Metric | Subset | Num | Score | 95 % CI | Cat.0 |" in markdown
    assert "0.6667" in markdown
    result.stdout.fnmatch_lines([f"reports: results.json, report.md, report.html in {report_dir}"])


def test_missing_bfcl_eval_names_install(pytester: pytest.Pytester,
                                         simple_oracle_server: ScriptedServer) -> None:
    # Hide bfcl_eval in the child process only, as if it were not installed.
    pytester.makeconftest("import sys\nsys.modules['bfcl_eval'] = None\n")
    add_bfcl_module(pytester)
    result = pytester.runpytest_subprocess(*run_args(simple_oracle_server.url,
                                                     pytester.path / "r"))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "*BFCL needs bfcl-eval 2026.3.23*install it with: pip install --no-deps "
        "bfcl-eval==2026.3.23",
    ])
    assert "Traceback" not in result.stdout.str()


def test_collect_only_sends_nothing(pytester: pytest.Pytester,
                                    simple_oracle_server: ScriptedServer) -> None:
    add_bfcl_module(pytester)
    result = pytester.runpytest(*run_args(simple_oracle_server.url, pytester.path / "r",
                                          *SIMPLE_3, "--collect-only", "-q"))
    result.stdout.fnmatch_lines(["test_bfcl_v3.py::test_bfcl_v3[[]simple/simple_python_0[]]",
                                 "3/* tests collected*"])
    assert simple_oracle_server.requests == []


def test_model_run_freezes_gc_at_exit(pytester: pytest.Pytester,
                                      monkeypatch: pytest.MonkeyPatch,
                                      simple_oracle_server: ScriptedServer) -> None:
    handlers: list[object] = []

    def unregister(func: object) -> None:
        while func in handlers:
            handlers.remove(func)

    monkeypatch.setattr(atexit, "register", handlers.append)
    monkeypatch.setattr(atexit, "unregister", unregister)
    add_bfcl_module(pytester)
    pytester.runpytest("-p", "no:cacheprovider", "--collect-only")
    assert gc.freeze not in handlers  # without --model the plugin stays out of the way

    for _ in range(2):
        pytester.runpytest(*run_args(simple_oracle_server.url, pytester.path / "r", *SIMPLE_3,
                                     "--collect-only"))

    assert handlers.count(gc.freeze) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gen", "stream=true"], "*invalid value 'stream=true': stream is set by --stream*"),
        (["--gen", "model=other"], "*invalid value 'model=other': model is set by --model*"),
        (["--threshold", "bfcl_v3/simple>=nan"], "*invalid threshold 'bfcl_v3/simple>=nan'*"),
        (["--model", "m", "--base-url", "not a url"],
         "ERROR: invalid base URL 'not a url': expected http(s)://HOST*"),
        (["--model", "m", "--base-url", "ftp://127.0.0.1/v1"], "ERROR: invalid base URL*"),
    ],
)
def test_bad_run_setting_usage_error(pytester: pytest.Pytester, args: list[str], message: str
                                     ) -> None:
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_report_dir_is_file(pytester: pytest.Pytester,
                            simple_oracle_server: ScriptedServer) -> None:
    blocker = pytester.path / "afile"
    blocker.write_text("x")
    add_bfcl_module(pytester)
    result = pytester.runpytest(*run_args(simple_oracle_server.url, blocker / "sub", *SIMPLE_3))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --report-dir {blocker / 'sub'}: {blocker} is a file,*"])
    assert simple_oracle_server.requests == []


def test_unwritable_report_dir_keeps_table(pytester: pytest.Pytester,
                                           simple_oracle_server: ScriptedServer) -> None:
    add_bfcl_module(pytester)
    result = pytester.runpytest(*run_args(simple_oracle_server.url, Path("/proc/modeleval-nope"),
                                          *SIMPLE_3))
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*| simple *|   3 | 0.6667 | AST_NON_LIVE |",
        "could not write reports to /proc/modeleval-nope: *pass --report-dir=DIR with a "
        "writable folder",
    ])
    assert "Traceback" not in result.stdout.str()


@XDIST_MODES
def test_unencodable_reply_text_kept(pytester: pytest.Pytester, xdist: list[str]) -> None:
    secret = "sk-echoed-secret-42"

    def reply(body: dict, attempt: int) -> Reply:
        return Reply(content=f"bad \udcff text and key {secret}")

    add_bfcl_module(pytester)
    report_dir = pytester.path / "r"
    with ScriptedServer(reply) as server:
        result = pytester.runpytest(*run_args(server.url, report_dir, "-k",
                                              "irrelevance_ and not live", "--limit", "2",
                                              "--api-key-env", "ECHO_KEY", *xdist))
    result.assert_outcomes(passed=2)
    contents = [s["reply"]["content"] for s in load_results(report_dir)["samples"]]
    assert contents == ["bad ? text and key ***"] * 2


@pytest.fixture
def echo_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECHO_KEY", "sk-echoed-secret-42")


test_unencodable_reply_text_kept = pytest.mark.usefixtures("echo_key")(
    test_unencodable_reply_text_kept)


def test_collect_only_keeps_reports(pytester: pytest.Pytester,
                                    simple_oracle_server: ScriptedServer) -> None:
    add_bfcl_module(pytester)
    report_dir = pytester.path / "r"
    pytester.runpytest(*run_args(simple_oracle_server.url, report_dir, *SIMPLE_3))
    before = (report_dir / "results.json").read_text(encoding="utf-8")
    result = pytester.runpytest(*run_args(simple_oracle_server.url, report_dir, *SIMPLE_3,
                                          "--collect-only", "--threshold",
                                          "bfcl_v3/simple>=0.9"))
    assert result.ret == pytest.ExitCode.OK
    assert (report_dir / "results.json").read_text(encoding="utf-8") == before


def test_xdist_workers_send_ahead(pytester: pytest.Pytester) -> None:
    lock = threading.Lock()
    in_flight = [0, 0]  # current, peak

    def slow(body: dict, attempt: int) -> Reply:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        time.sleep(0.3)
        with lock:
            in_flight[0] -= 1
        return Reply(content="no call")

    add_bfcl_module(pytester)
    with ScriptedServer(slow) as server:
        result = pytester.runpytest(*run_args(server.url, pytester.path / "r", "-k",
                                              "irrelevance", "--limit", "12", "-n", "2",
                                              "--concurrency", "3"))
    result.assert_outcomes(passed=24)
    assert in_flight[1] == 6  # 2 workers x 3 requests each


@pytest.mark.parametrize("flag", ["--report-dir", "--cache-dir", "--baseline"])
def test_path_option_separate_value(pytester: pytest.Pytester,
                                    simple_oracle_server: ScriptedServer, flag: str) -> None:
    existing = pytester.mkdir("old-folder")
    add_bfcl_module(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider", "--model", "m", "--base-url",
                                simple_oracle_server.url, flag, str(existing))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: write {flag}={existing} with '=': *"])
    assert simple_oracle_server.requests == []
