"""Throughput of the plugin against a bare openai thread pool, on one scripted server.

    python scripts/bench_throughput.py [--latency 0.1] [--samples 1920] [--threads 64]
                                       [--runs 1]

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
closest to --samples. With --runs N the four measurements take turns N
times, so that a slow spell of a shared machine hits all of them; each line
then gives the median and the range. Ratios are of medians.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
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
        # A line on stdin ends a round. The recorded requests are dropped then,
        # so that the server's heap, and its garbage collection pauses, do not
        # grow from round to round.
        for _ in sys.stdin:
            server.requests.clear()
            server.headers.clear()


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--samples", type=int, default=1920)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--runs", type=int, default=1,
                        help="rounds of all four measurements (default 1)")
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
    extra = args.pytest_args.split()
    plugin_name = f"plugin --concurrency {args.threads}"
    xdist_name = f"plugin -n 2 --concurrency {args.threads // 2}"
    walls: dict[str, list[float]] = {"bare pool": [], "bare script": [], plugin_name: [],
                                     xdist_name: []}
    try:
        url = server.stdout.readline().strip()
        bodies = plugin_requests(limit)
        for _ in range(args.runs):
            walls[plugin_name].append(
                run_plugin(url, limit, ["--concurrency", str(args.threads), *extra]))
            walls[xdist_name].append(
                run_plugin(url, limit, ["-n", "2", "--concurrency", str(args.threads // 2),
                                        *extra]))
            walls["bare pool"].append(run_bare(url, bodies, args.threads))
            walls["bare script"].append(run_bare_script(url, limit, args.threads))
            server.stdin.write("\n")
            server.stdin.flush()
    finally:
        server.stdin.close()
        server.wait(timeout=30)

    print_results(walls, count, limit, args)
    return 0


def print_results(walls: dict[str, list[float]], count: int, limit: int,
                  args: argparse.Namespace) -> None:
    print(f"samples: {count} (--limit {limit}), latency {args.latency * 1000:.0f} ms, "
          f"{args.threads} requests in flight, {args.runs} run(s) each")
    median = {name: statistics.median(values) for name, values in walls.items()}

    def spread(name: str) -> str:
        values = walls[name]
        return f" ({min(values):.1f} to {max(values):.1f} s)" if len(values) > 1 else ""

    print(f"bare openai thread pool, requests prebuilt: {median['bare pool']:.1f} s"
          f"{spread('bare pool')}, {count / median['bare pool']:.0f} req/s")
    print(f"bare openai script, whole subprocess: {median['bare script']:.1f} s"
          f"{spread('bare script')}")
    for name in list(walls)[2:]:
        print(f"{name}: {median[name]:.1f} s{spread(name)}, "
              f"{median[name] / median['bare pool']:.2f} x bare pool, "
              f"{median[name] / median['bare script']:.2f} x bare script")


if __name__ == "__main__":
    sys.exit(main())
