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
then gives the median and the range. Ratios are of median wall times.
CPU is user plus system time of the measured processes (the bare pool's
includes this script's other threads), which a busy machine skews less.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

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


class Timing(NamedTuple):
    """Seconds of one measurement: wall clock, and CPU (user + system) of its processes."""

    wall: float
    cpu: float


def run_plugin(url: str, limit: int, extra: list[str]) -> Timing:
    with tempfile.TemporaryDirectory() as report_dir:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "--model", "scripted", "--base-url", url, "-k", "bfcl and not multi_turn",
                   "--limit", str(limit), "--no-cache", f"--report-dir={report_dir}", *extra]
        return run_timed(command, check=False)


def run_bare(url: str, bodies: list[dict], threads: int) -> Timing:
    import openai

    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)

    def send(body: dict) -> None:
        client.chat.completions.create(**body)

    started, cpu_started = time.monotonic(), time.process_time()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, bodies))
    return Timing(time.monotonic() - started, time.process_time() - cpu_started)


def run_bare_script(url: str, limit: int, threads: int) -> Timing:
    command = [sys.executable, __file__, "--bare-url", url, "--bare-limit", str(limit),
               "--threads", str(threads)]
    return run_timed(command, check=True)


def run_timed(command: list[str], check: bool) -> Timing:
    # The children's CPU time counts every finished descendant, xdist workers included.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, check=check)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Timing(wall, cpu)


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
    timings: dict[str, list[Timing]] = {"bare pool": [], "bare script": [], plugin_name: [],
                                        xdist_name: []}
    try:
        url = server.stdout.readline().strip()
        bodies = plugin_requests(limit)
        for _ in range(args.runs):
            timings[plugin_name].append(
                run_plugin(url, limit, ["--concurrency", str(args.threads), *extra]))
            timings[xdist_name].append(
                run_plugin(url, limit, ["-n", "2", "--concurrency", str(args.threads // 2),
                                        *extra]))
            timings["bare pool"].append(run_bare(url, bodies, args.threads))
            timings["bare script"].append(run_bare_script(url, limit, args.threads))
            server.stdin.write("\n")
            server.stdin.flush()
    finally:
        server.stdin.close()
        server.wait(timeout=30)

    print_results(timings, count, limit, args)
    return 0


def print_results(timings: dict[str, list[Timing]], count: int, limit: int,
                  args: argparse.Namespace) -> None:
    print(f"samples: {count} (--limit {limit}), latency {args.latency * 1000:.0f} ms, "
          f"{args.threads} requests in flight, {args.runs} run(s) each")
    wall = {name: statistics.median(t.wall for t in values) for name, values in timings.items()}

    def describe(name: str) -> str:
        walls = [t.wall for t in timings[name]]
        spread = f" ({min(walls):.1f} to {max(walls):.1f} s)" if len(walls) > 1 else ""
        cpu = statistics.median(t.cpu for t in timings[name])
        return f"{wall[name]:.1f} s{spread}, CPU {cpu:.1f} s"

    print(f"bare openai thread pool, requests prebuilt: {describe('bare pool')}, "
          f"{count / wall['bare pool']:.0f} req/s")
    print(f"bare openai script, whole subprocess: {describe('bare script')}")
    for name in list(timings)[2:]:
        print(f"{name}: {describe(name)}, {wall[name] / wall['bare pool']:.2f} x bare pool, "
              f"{wall[name] / wall['bare script']:.2f} x bare script")


if __name__ == "__main__":
    sys.exit(main())
