"""Command-line options and ini settings, parsed into one frozen RunConfig."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import pytest

DEFAULT_REPORT_DIR = "modeleval-report"
DEFAULT_PROGRESS_INTERVAL_S = 10.0
DEFAULT_CONCURRENCY = 8
DEFAULT_MAX_RETRIES = 5
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_ALPHA = 0.05
BASE_URL_ENV = "OPENAI_BASE_URL"

# Generation settings the Chat Completions API accepts as top-level arguments.
# Any other --gen key (top_k, repetition_penalty, enable_thinking, ...) goes in
# `extra_body`, which vLLM, SGLang and DashScope read.
OPENAI_GEN_KEYS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "parallel_tool_calls",
        "seed",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "n",
        "reasoning_effort",
        "response_format",
        "tool_choice",
        "user",
    }
)
# Client-side settings given with --gen but not sent in the request body.
CLIENT_GEN_KEYS = frozenset({"timeout"})
# Request fields the plugin sets itself; --gen must not override them.
RESERVED_GEN_KEYS = {
    "model": "--model", "messages": "the benchmark", "tools": "the benchmark",
    "stream": "--stream", "stream_options": "--stream", "extra_body": "--gen KEY=VALUE",
    "extra_headers": "nothing", "extra_query": "nothing",
}

BfclMode = Literal["fc", "prompt"]
_THRESHOLD_RE = re.compile(
    r"^\s*(?P<benchmark>[A-Za-z0-9_.-]+)/(?P<target>[^<>=!\s\[]|[^<>=!\s\[][^<>=!\[]*[^<>=!\s\[])"
    r"(?:\[(?P<metric>[^\]\s]+)\])?\s*(?P<op>>=|<=|==|>|<)\s*(?P<bound>\S+)\s*$"
)


@dataclass(frozen=True)
class Threshold:
    """A pass/fail bound on one subset or roll-up score, such as ``bfcl_v3/simple>=0.9``."""

    expression: str
    benchmark: str
    target: str
    op: str
    bound: float
    # A metric other than the target's first, such as f1 in simple_qa/OVERALL[f1]>=0.3.
    metric: str | None = None


@dataclass(frozen=True)
class GenerationSettings:
    """Sampling settings: `request` goes into each request, `extra_body` beside it."""

    request: dict[str, Any] = field(default_factory=dict)
    extra_body: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None

    def as_dict(self) -> dict[str, Any]:
        merged = {**self.request, **self.extra_body}
        if self.timeout is not None:
            merged["timeout"] = self.timeout
        return merged


@dataclass(frozen=True)
class JudgeSettings:
    """The judge model that grades free-form answers; its key is read from `api_key_env`."""

    model: str
    base_url: str | None
    api_key_env: str
    gen: GenerationSettings = field(default_factory=GenerationSettings)

    def public_dict(self) -> dict[str, Any]:
        return {"model": self.model, "base_url": public_url(self.base_url),
                "api_key_env": self.api_key_env, "gen": self.gen.as_dict()}


@dataclass(frozen=True)
class RunConfig:
    """Settings of one run. The API key itself is never stored here, only its variable name."""

    model: str | None
    base_url: str | None
    api_key_env: str
    concurrency: int
    max_retries: int
    limit: int | None
    gen: GenerationSettings
    stream: bool
    bfcl_mode: BfclMode
    bfcl_underscore_to_dot: bool
    thresholds: tuple[Threshold, ...]
    report_dir: str
    # Folder of the response cache, or None when --no-cache is given.
    cache_dir: str | None = None
    # (I, N): run only shard I of N (1-based), for a matrix of machines.
    shard: tuple[int, int] | None = None
    # Seconds between progress lines; 0 turns them off.
    progress_interval_s: float = DEFAULT_PROGRESS_INTERVAL_S
    # Items per sample; each repeat is sampled and scored on its own.
    repeats: int = 1
    judge: JudgeSettings | None = None
    # (benchmark, local file or folder) pairs that replace the dataset's hub id.
    datasets: tuple[tuple[str, str], ...] = ()
    # (benchmark, Jinja2 file) pairs that replace the shipped judge prompt.
    judge_templates: tuple[tuple[str, str], ...] = ()
    # results.json of an earlier run to compare with, sample by sample.
    baseline: str | None = None
    # Largest allowed drop of a subset score below the baseline (score units, 0-1);
    # None: no regression gate.
    max_regression: float | None = None
    # Significance level of the paired test that a regression must pass to fail the gate.
    alpha: float = DEFAULT_ALPHA
    # Largest allowed share of samples that end in a server error in a gated run;
    # None when not given, which gates at 0 once another gate is configured.
    max_error_rate: float | None = None

    def dataset_path(self, benchmark: str) -> str | None:
        return dict(self.datasets).get(benchmark)

    def judge_template(self, benchmark: str) -> str | None:
        return dict(self.judge_templates).get(benchmark)

    def public_dict(self) -> dict[str, Any]:
        """Return the settings for results.json: names of secrets, never their values."""
        return {
            "model": self.model,
            "base_url": public_url(self.base_url),
            "api_key_env": self.api_key_env,
            "concurrency": self.concurrency,
            "max_retries": self.max_retries,
            "limit": self.limit,
            "gen": self.gen.as_dict(),
            "stream": self.stream,
            "bfcl_mode": self.bfcl_mode,
            "bfcl_underscore_to_dot": self.bfcl_underscore_to_dot,
            "thresholds": [threshold.expression for threshold in self.thresholds],
            "report_dir": self.report_dir,
            "cache_dir": self.cache_dir,
            "shard": f"{self.shard[0]}/{self.shard[1]}" if self.shard else None,
            "repeats": self.repeats,
            "judge": ({**self.judge.public_dict(),
                       "base_url": public_url(self.judge.base_url or self.base_url)}
                      if self.judge else None),
            "datasets": dict(self.datasets),
            "judge_templates": dict(self.judge_templates),
            "baseline": self.baseline,
            "max_regression": self.max_regression,
            "alpha": self.alpha,
            "max_error_rate": self.max_error_rate,
        }


def public_url(url: str | None) -> str | None:
    """Return a URL without user info, query and fragment, which may hold credentials."""
    if not url:
        return url
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# --- value parsers: each raises ValueError with a message naming the value and the fix ---


def parse_positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"invalid value {text!r}: expected a positive integer such as 8")
    return value


def parse_non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"invalid value {text!r}: expected an integer >= 0 such as 5")
    return value


def parse_model_name(text: str) -> str:
    if not text.strip():
        raise ValueError(f"invalid value {text!r}: expected a model name such as "
                         "qwen3-coder-plus, or local for the embedded model")
    return text.strip()


def parse_shard(text: str) -> tuple[int, int]:
    index, sep, count = text.partition("/")
    if sep and index.strip().isdigit() and count.strip().isdigit():
        shard = int(index), int(count)
        if 1 <= shard[0] <= shard[1]:
            return shard
    raise ValueError(f"invalid value {text!r}: expected I/N with 1 <= I <= N, such as 2/3")


def parse_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"invalid value {text!r}: expected seconds >= 0 such as 10 "
                         "(0 turns progress lines off)")
    return value


def parse_max_regression(text: str) -> float:
    return _parse_unit_range(text, "a score drop between 0 and 1 such as 0.02")


def parse_alpha(text: str) -> float:
    value = _float_or_nan(text)
    if not 0 < value < 1:
        raise ValueError(f"invalid value {text!r}: expected a significance level between 0 "
                         "and 1 (exclusive) such as 0.05")
    return value


def parse_error_rate(text: str) -> float:
    return _parse_unit_range(text, "a share of samples between 0 and 1 such as 0.01")


def _parse_unit_range(text: str, expected: str) -> float:
    value = _float_or_nan(text)
    if not 0 <= value <= 1:
        raise ValueError(f"invalid value {text!r}: expected {expected}")
    return value


def _float_or_nan(text: str) -> float:
    # NaN fails every range check, so an unparsable value is rejected with the range's message.
    try:
        return float(text)
    except ValueError:
        return math.nan


def parse_benchmark_path(text: str) -> tuple[str, str]:
    """Parse ``BENCHMARK=PATH`` for a built-in benchmark, such as ``aime25=data/aime25.jsonl``."""
    from .suites import SUITE_MODULES

    name, sep, path = text.partition("=")
    name, path = name.strip(), path.strip()
    if not sep or not name or not path:
        raise ValueError(f"invalid value {text!r}: expected BENCHMARK=PATH such as "
                         "aime25=data/aime25.jsonl")
    if name not in SUITE_MODULES:
        raise ValueError(f"invalid value {text!r}: unknown benchmark {name!r}; valid: "
                         f"{', '.join(SUITE_MODULES)}")
    return name, path


def parse_bfcl_mode(text: str) -> BfclMode:
    if text not in ("fc", "prompt"):
        raise ValueError(f"invalid value {text!r}: expected 'fc' (native tools) or 'prompt'")
    return text  # type: ignore[return-value]


def parse_gen_item(text: str) -> tuple[str, Any]:
    """Parse ``KEY=VALUE``; VALUE is read as JSON (0.7, true, [1]) and else kept as text."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise ValueError(f"invalid value {text!r}: expected KEY=VALUE such as temperature=0.7")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    if key in RESERVED_GEN_KEYS:
        raise ValueError(f"invalid value {text!r}: {key} is set by "
                         f"{RESERVED_GEN_KEYS[key]}, not by --gen")
    if key == "timeout" and (not isinstance(value, (int, float)) or value <= 0):
        raise ValueError(f"invalid value {text!r}: timeout is a number of seconds > 0")
    return key, value


def parse_threshold(text: str) -> Threshold:
    match = _THRESHOLD_RE.match(text)
    bound: float | None = None
    if match:
        try:
            bound = float(match["bound"])
        except ValueError:
            bound = None
        if bound is not None and not math.isfinite(bound):
            bound = None
    if match is None or bound is None:
        raise ValueError(
            f"invalid threshold {text!r}: expected BENCHMARK/SUBSET OP NUMBER "
            "such as bfcl_v3/simple>=0.9 or simple_qa/OVERALL[f1]>=0.3 (OP is one of "
            ">=, >, <=, <, ==)"
        )
    return Threshold(text.strip(), match["benchmark"], match["target"], match["op"], bound,
                     match["metric"])


def build_generation_settings(items: list[tuple[str, Any]]) -> GenerationSettings:
    request: dict[str, Any] = {}
    extra_body: dict[str, Any] = {}
    timeout: float | None = None
    for key, value in items:
        if key in CLIENT_GEN_KEYS:
            timeout = float(value)
        elif key in OPENAI_GEN_KEYS:
            request[key] = value
        else:
            extra_body[key] = value
    return GenerationSettings(request, extra_body, timeout)


def _argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Wrap a parser so argparse prints its message as a one-line usage error."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = parse.__name__
    return convert


# --- registration ---


def register(parser: pytest.Parser) -> None:
    group = parser.getgroup("modeleval", "LLM benchmarks (pytest-modeleval)")

    def add(name: str, ini_type: str | None, help_text: str, **kwargs: Any) -> None:
        group.addoption(name, dest=_dest(name), help=help_text, **kwargs)
        if ini_type is not None:
            # default=None separates "not set" from an explicit false for bools.
            parser.addini(_ini(name), f"default for {name}", type=ini_type,  # type: ignore[arg-type]
                          default=None if ini_type == "bool" else _INI_DEFAULTS[ini_type])

    add("--model", "string", "model name sent to the server; without it benchmarks collect nothing",
        metavar="NAME", type=_argparse_type(parse_model_name))
    add("--base-url", "string", f"OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 "
        f"(default: ${BASE_URL_ENV})", metavar="URL")
    add("--api-key-env", "string", "name of the environment variable that holds the API key "
        f"(default: {DEFAULT_API_KEY_ENV}); the key itself is never read from the command line",
        metavar="VAR")
    add("--concurrency", "string", "requests in flight per process (EvalScope eval_batch_size; "
        f"default: {DEFAULT_CONCURRENCY})", metavar="N", type=_argparse_type(parse_positive_int))
    add("--max-retries", "string", "retries of a request after 429, 5xx or a connection error "
        f"(default: {DEFAULT_MAX_RETRIES})", metavar="N",
        type=_argparse_type(parse_non_negative_int))
    add("--limit", "string", "run only the first N samples of each subset (default: all)",
        metavar="N", type=_argparse_type(parse_positive_int))
    add("--gen", "linelist", "generation setting, repeatable: temperature, top_p, max_tokens, "
        "parallel_tool_calls, seed, timeout (seconds); other keys such as top_k go in extra_body",
        metavar="KEY=VALUE", action="append", type=_argparse_type(parse_gen_item))
    add("--stream", "bool", "request streamed replies (default: off)", action="store_true",
        default=None)
    add("--bfcl-mode", "string", "BFCL: 'fc' sends native tools, 'prompt' asks for calls in text "
        "with bfcl-eval's system prompt (EvalScope is_fc_model; default: fc)",
        metavar="fc|prompt", type=_argparse_type(parse_bfcl_mode))
    group.addoption("--bfcl-underscore-to-dot", dest="modeleval_bfcl_underscore_to_dot",
                    action=argparse.BooleanOptionalAction, default=None,
                    help="BFCL: send dotted function names such as math.factorial as "
                    "math_factorial and map calls back (default: on)")
    parser.addini("modeleval_bfcl_underscore_to_dot", "default for --bfcl-underscore-to-dot",
                  type="bool", default=None)
    add("--threshold", "linelist", "gate, repeatable: BENCHMARK/SUBSET[METRIC] OP NUMBER such "
        "as bfcl_v3/simple>=0.9, bfcl_v3/OVERALL>=0.7 or simple_qa/OVERALL[f1]>=0.3; any "
        "threshold makes the exit status 0 when all pass and 1 otherwise", metavar="EXPR",
        action="append", type=_argparse_type(parse_threshold))
    add("--baseline", "string", "results.json of an earlier run: pair samples by benchmark, "
        "subset and sample id, report deltas and flips per subset", metavar="FILE")
    add("--max-regression", "string", "gate: fail when a subset's score drops below the "
        "--baseline by more than DELTA (score units, 0-1) and the paired test is significant "
        "at --alpha (default: no regression gate)", metavar="DELTA",
        type=_argparse_type(parse_max_regression))
    add("--alpha", "string", "significance level of the paired test behind --max-regression "
        f"(default: {DEFAULT_ALPHA:g})", metavar="P", type=_argparse_type(parse_alpha))
    add("--max-error-rate", "string", "gate: largest share of samples (0-1) that may end in a "
        "server error when any gate is configured; giving it configures a gate (default: 0)",
        metavar="RATE", type=_argparse_type(parse_error_rate))
    add("--report-dir", "string", "folder for results.json, report.md and report.html "
        f"(default: ./{DEFAULT_REPORT_DIR})", metavar="DIR")
    add("--cache-dir", "string", "folder of the response cache, where every reply is kept as "
        "it arrives so reruns send only what is missing (default: "
        "$XDG_CACHE_HOME/pytest-modeleval or ~/.cache/pytest-modeleval)", metavar="DIR")
    add("--no-cache", "bool", "neither read nor write the response cache", action="store_true",
        default=None)
    add("--progress-interval", "string", "seconds between progress lines with items done, "
        f"request and token rates and time left; 0 turns them off, as -q does (default: "
        f"{DEFAULT_PROGRESS_INTERVAL_S:g})", metavar="SECONDS",
        type=_argparse_type(parse_interval))
    add("--repeats", "string", "items per sample, each sampled and scored on its own; aime25 "
        "reports AveragePass@1, pass@k and majority vote over them (default: 1)", metavar="N",
        type=_argparse_type(parse_positive_int))
    add("--judge-model", "string", "model that grades free-form answers (simple_qa, "
        "chinese_simpleqa); benchmarks that need it are skipped without it", metavar="NAME",
        type=_argparse_type(parse_model_name))
    add("--judge-base-url", "string", "endpoint of the judge model (default: --base-url)",
        metavar="URL")
    add("--judge-api-key-env", "string", "environment variable that holds the judge's API key "
        "(default: --api-key-env)", metavar="VAR")
    add("--judge-gen", "linelist", "generation setting of the judge, repeatable, as --gen "
        "(default: temperature=0)", metavar="KEY=VALUE", action="append",
        type=_argparse_type(parse_gen_item))
    add("--judge-template", "linelist", "Jinja2 file that replaces a benchmark's judge prompt, "
        "repeatable: BENCHMARK=FILE; it receives question, gold_answer and predicted_answer",
        metavar="BENCHMARK=FILE", action="append", type=_argparse_type(parse_benchmark_path))
    add("--dataset", "linelist", "local file or folder (jsonl, json, csv, parquet) to load a "
        "benchmark's data from instead of its hub id, repeatable: BENCHMARK=PATH",
        metavar="BENCHMARK=PATH", action="append", type=_argparse_type(parse_benchmark_path))
    add("--shard", None, "run only the I-th of N equal slices of the benchmark items, for a "
        "matrix of machines; merge the results with python -m pytest_modeleval merge",
        metavar="I/N", type=_argparse_type(parse_shard))


_INI_DEFAULTS: dict[str, Any] = {"string": "", "linelist": []}


def _dest(name: str) -> str:
    return "modeleval_" + name.lstrip("-").replace("-", "_")


def _ini(name: str) -> str:
    return _dest(name)


# --- parsing ---


def load_run_config(config: pytest.Config) -> RunConfig:
    """Merge command line over ini over defaults; raise pytest.UsageError on a bad ini value."""
    gen_items = _lines(config, "--gen", parse_gen_item)
    thresholds = _lines(config, "--threshold", parse_threshold)
    return RunConfig(
        model=_setting(config, "--model") or None,
        base_url=_setting(config, "--base-url") or os.environ.get(BASE_URL_ENV) or None,
        api_key_env=_setting(config, "--api-key-env") or DEFAULT_API_KEY_ENV,
        concurrency=_setting(config, "--concurrency", parse_positive_int) or DEFAULT_CONCURRENCY,
        max_retries=_max_retries(config),
        limit=_setting(config, "--limit", parse_positive_int),
        gen=build_generation_settings(gen_items),
        stream=_flag(config, "--stream", default=False),
        bfcl_mode=_setting(config, "--bfcl-mode", parse_bfcl_mode) or "fc",
        bfcl_underscore_to_dot=_flag(config, "--bfcl-underscore-to-dot", default=True),
        thresholds=tuple(thresholds),
        report_dir=_setting(config, "--report-dir") or DEFAULT_REPORT_DIR,
        cache_dir=_cache_dir(config),
        shard=config.getoption("modeleval_shard"),
        progress_interval_s=_progress_interval(config),
        repeats=_setting(config, "--repeats", parse_positive_int) or 1,
        judge=_judge(config),
        datasets=tuple(_pairs(config, "--dataset")),
        judge_templates=tuple(_pairs(config, "--judge-template")),
        baseline=_setting(config, "--baseline") or None,
        max_regression=_setting(config, "--max-regression", parse_max_regression),
        alpha=_alpha(config),
        max_error_rate=_setting(config, "--max-error-rate", parse_error_rate),
    )


def _alpha(config: pytest.Config) -> float:
    value = _setting(config, "--alpha", parse_alpha)
    return DEFAULT_ALPHA if value is None else value


DEFAULT_JUDGE_GEN = ("temperature", 0)


def _judge(config: pytest.Config) -> JudgeSettings | None:
    model = _setting(config, "--judge-model", parse_model_name)
    if not model:
        return None
    gen_items = _lines(config, "--judge-gen", parse_gen_item) or [DEFAULT_JUDGE_GEN]
    return JudgeSettings(
        model=model,
        # None means "the model's base URL"; the plugin fills it in once that is known.
        base_url=_setting(config, "--judge-base-url") or None,
        api_key_env=(_setting(config, "--judge-api-key-env")
                     or _setting(config, "--api-key-env") or DEFAULT_API_KEY_ENV),
        gen=build_generation_settings(gen_items),
    )


def _pairs(config: pytest.Config, name: str) -> list[tuple[str, str]]:
    return _lines(config, name, parse_benchmark_path)


def _lines(config: pytest.Config, name: str, parse: Callable[[str], Any]) -> list[Any]:
    """Return a repeatable option's values: the command line's, else the ini lines'."""
    return config.getoption(_dest(name)) or [
        _from_ini(name, line, parse) for line in config.getini(_ini(name))]


def _progress_interval(config: pytest.Config) -> float:
    value = _setting(config, "--progress-interval", parse_interval)
    return DEFAULT_PROGRESS_INTERVAL_S if value is None else value


def _cache_dir(config: pytest.Config) -> str | None:
    if _flag(config, "--no-cache", default=False):
        return None
    from .cache import default_cache_dir

    return _setting(config, "--cache-dir") or str(default_cache_dir())


def _setting(config: pytest.Config, name: str, parse: Callable[[str], Any] | None = None) -> Any:
    value = config.getoption(_dest(name))
    if value is not None:
        return value
    raw = config.getini(_ini(name))
    if not raw:
        return None
    return _from_ini(name, raw, parse) if parse else raw


def _max_retries(config: pytest.Config) -> int:
    value = _setting(config, "--max-retries", parse_non_negative_int)
    return DEFAULT_MAX_RETRIES if value is None else value


def _flag(config: pytest.Config, name: str, default: bool) -> bool:
    value = config.getoption(_dest(name))
    if value is not None:
        return bool(value)
    try:
        value = config.getini(_ini(name))
    except ValueError as error:
        raise pytest.UsageError(f"{_ini(name)} in the ini file: {error}; expected true or "
                                "false") from None
    return default if value is None else bool(value)


def _from_ini(name: str, raw: str, parse: Callable[[str], Any]) -> Any:
    try:
        return parse(raw)
    except ValueError as error:
        raise pytest.UsageError(f"{_ini(name)} in the ini file: {error}") from None
