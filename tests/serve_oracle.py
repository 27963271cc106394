"""Run a command against a scripted server that replies to every BFCL v3 sample
with bfcl-eval's ground-truth calls, a few chosen ids getting wrong ones. In
multi-turn samples it replays each turn's calls, then ends the turn in text.

    python -m tests.serve_oracle [--mode fc|prompt] [--latency SECONDS] -- COMMAND...

The server listens on 127.0.0.1 and a free port; COMMAND runs with
OPENAI_BASE_URL set to it, so `pytest --model scripted -k bfcl` needs no
--base-url. The exit status is COMMAND's.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys

from tests.bfcl_multi_turn_oracle import build_multi_turn_oracle, wrong_every
from tests.bfcl_oracle import FullOracle, build_oracle, tamper_every
from tests.scripted_server import Reply, ScriptedServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.serve_oracle")
    parser.add_argument("--mode", choices=("fc", "prompt"), default="fc",
                        help="reply with native tool calls (fc) or calls in text (prompt)")
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds the server waits before each reply (default: 0)")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="command to run, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("missing command, e.g. -- pytest --model scripted -k bfcl")

    oracle = FullOracle(build_oracle(args.mode, tamper=tamper_every()),
                        build_multi_turn_oracle(args.mode, wrong=wrong_every()))
    latency = args.latency

    def script(body: dict, attempt: int) -> Reply:
        return dataclasses.replace(oracle.script(body, attempt), delay=latency)

    with ScriptedServer(script) as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.url}
        print(f"scripted server ({args.mode} replies) at {server.url}", file=sys.stderr)
        return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main())
