"""Throughput of the plugin against a bare openai thread pool, on one scripted server.

    python scripts/bench_throughput.py [--latency 0.1] [--samples 1920] [--threads 64]

Starts the scripted server (tests/scripted_server.py) in its own process on
127.0.0.1 with the given reply latency, replying with bfcl-eval's
ground-truth calls. Then, against that server:

1. the plugin: `pytest --model scripted -k "bfcl and not multi_turn" --limit L`
   with `--concurrency THREADS`, and again with `-n 2 --concurrency THREADS/2`;
2. a bare `openai` client in a pool of THREADS threads sending the same
   requests, built with the plugin's own request builder, timed in this
   process with the requests already built;
3. the same bare pool as a whole subprocess (start Python, import openai,
   load the samples, build the requests, send them), timed from outside as
   the pytest runs are.

L is the per-subset limit that gives the number of single-turn samples
closest to --samples. Prints one line per measurement and the ratios of
the plugin's times to both bare times.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_modeleval.suites.bfcl_v3.data import (  # noqa: E402
    MULTI_TURN_SUBSETS,
    SUBSETS,
    load_subset,
)
from pytest_modeleval.suites.bfcl_v3.requests import build_request  # noqa: E402

SINGLE_TURN = [subset for subset in SUBSETS if subset not in MULTI_TURN_SUBSETS]


def limit_for(samples: int) -> tuple[int, int]:
    sizes = [len(load_subset(subset, None)) for subset in SINGLE_TURN]
    best = min(range(1, max(sizes) + 1),
               key=lambda limit: abs(sum(min(size, limit) for size in sizes) - samples))
    return best, sum(min(size, best) for size in sizes)


def run_plugin(url: str, limit: int, extra: list[str]) -> float:
    with tempfile.TemporaryDirectory() as report_dir:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "--model", "scripted", "--base-url", url, "-k", "bfcl and not multi_turn",
                   "--limit", str(limit), "--no-cache", f"--report-dir={report_dir}", *extra]
        started = time.monotonic()
        subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, check=False)
        return time.monotonic() - started


def run_bare(url: str, bodies: list[dict], threads: int) -> float:
    import openai

    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)

    def send(body: dict) -> None:
        client.chat.completions.create(**body)

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, bodies))
    return time.monotonic() - started


def run_bare_script(url: str, limit: int, threads: int) -> float:
    command = [sys.executable, __file__, "--bare-url", url, "--bare-limit", str(limit),
               "--threads", str(threads)]
    started = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True)
    return time.monotonic() - started


def plugin_requests(limit: int) -> list[dict]:
    bodies = []
    for subset in SINGLE_TURN:
        for case in load_subset(subset, limit):
            request = build_request(case, "fc", True)
            body = {"model": "scripted", "messages": request.messages}
            if request.tools:
                body["tools"] = request.tools
            bodies.append(body)
    return bodies


def serve(limit: int, latency: float) -> None:
    """Run the scripted server until stdin closes; print its URL first."""
    # Imported here so that the bare script's subprocess does not import them.
    from tests.bfcl_oracle import build_oracle
    from tests.scripted_server import ScriptedServer

    oracle = build_oracle("fc", limit=limit)

    def script(body: dict, attempt: int):
        return dataclasses.replace(oracle.script(body, attempt), delay=latency)

    with ScriptedServer(script) as server:
        print(server.url, flush=True)
        sys.stdin.read()


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--samples", type=int, default=1920)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--pytest-args", default="",
                        help="extra pytest arguments for both plugin runs, e.g. '--capture=sys'")
    parser.add_argument("--serve-limit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bare-url", help=argparse.SUPPRESS)
    parser.add_argument("--bare-limit", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = parse_arguments()
    if args.serve_limit:
        serve(args.serve_limit, args.latency)
        return 0
    if args.bare_url:
        run_bare(args.bare_url, plugin_requests(args.bare_limit), args.threads)
        return 0

    limit, count = limit_for(args.samples)
    os.environ.pop("OPENAI_BASE_URL", None)
    server = subprocess.Popen([sys.executable, __file__, "--serve-limit", str(limit),
                               "--latency", str(args.latency)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        extra = args.pytest_args.split()
        plugin = run_plugin(url, limit, ["--concurrency", str(args.threads), *extra])
        xdist = run_plugin(url, limit, ["-n", "2", "--concurrency", str(args.threads // 2),
                                        *extra])
        bare = run_bare(url, plugin_requests(limit), args.threads)
        bare_script = run_bare_script(url, limit, args.threads)
    finally:
        server.stdin.close()
        server.wait(timeout=30)

    print(f"samples: {count} (--limit {limit}), latency {args.latency * 1000:.0f} ms, "
          f"{args.threads} requests in flight")
    print(f"bare openai thread pool, requests prebuilt: {bare:.1f} s ({count / bare:.0f} req/s)")
    print(f"bare openai script, whole subprocess: {bare_script:.1f} s")
    runs = [(f"--concurrency {args.threads}", plugin),
            (f"-n 2 --concurrency {args.threads // 2}", xdist)]
    for name, wall in runs:
        print(f"plugin {name}: {wall:.1f} s, {wall / bare:.2f} x bare pool, "
              f"{wall / bare_script:.2f} x bare script")
    return 0


if __name__ == "__main__":
    sys.exit(main())
