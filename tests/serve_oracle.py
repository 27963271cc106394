"""Run a command against a scripted server that replies to every BFCL v3 sample
with bfcl-eval's ground-truth calls, a few chosen ids getting wrong ones. In
multi-turn samples it replays each turn's calls, then ends the turn in text.
When the SimpleQA, Chinese SimpleQA and AIME 2025 data files are beside the
checkout, it answers their questions with the gold answers too, and requests
for the model `scripted-judge` get "The response is CORRECT.".

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
from tests.qa_oracle import DATA_DIR, QaOracle
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
    qa = QaOracle() if DATA_DIR.is_dir() else None

    def script(body: dict, attempt: int) -> Reply:
        reply = qa.script(body, attempt) if qa is not None and qa.handles(body) else None
        return dataclasses.replace(reply or oracle.script(body, attempt), delay=latency)

    with ScriptedServer(script) as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.url}
        print(f"scripted server ({args.mode} replies) at {server.url}", file=sys.stderr)
        return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main())
