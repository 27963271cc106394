"""Command line: merge shard results, or re-render reports and gates from a results.json.

    python -m pytest_modeleval merge SHARD/results.json ... --report-dir DIR
    python -m pytest_modeleval report results.json [--baseline OLD.json] --report-dir DIR

Exit status: 0 when every configured gate passes (or none is configured),
1 when a gate fails, 2 when a file cannot be read or written.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from .baseline import BaselineError, load_baseline
from .gates import GateSettings, apply_gates
from .merge import MergeError, load_document, merge_documents, rebuild_document
from .options import (
    DEFAULT_REPORT_DIR,
    _argparse_type,
    parse_alpha,
    parse_error_rate,
    parse_max_regression,
)
from .report import format_table, write_reports
from .summary import baseline_lines


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "merge":
            named = [(path, load_document(path)) for path in args.results]
            for path, loaded in named:
                _check_complete(loaded, path)
            document = merge_documents(named, args.report_dir)
            done = f"merged {len(document['samples'])} samples from {len(named)} files"
        else:
            loaded = load_document(args.results)
            _check_complete(loaded, args.results)
            document = rebuild_document(loaded, args.report_dir)
            done = f"re-rendered {len(document['samples'])} samples of {args.results}"
        baseline = load_baseline(args.baseline) if args.baseline else None
    except (MergeError, BaselineError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.max_regression is not None and baseline is None and not document.get("baseline"):
        print("error: --max-regression needs a baseline: pass --baseline FILE with the "
              "results.json of an earlier run", file=sys.stderr)
        return 2
    settings = _settings(args, document["config"])
    apply_gates(document, settings, baseline, str(args.baseline or ""))
    try:
        paths = write_reports(document, Path(args.report_dir))
    except OSError as error:
        print(f"error: could not write reports to {args.report_dir}: {error}; pass "
              "--report-dir with a writable folder", file=sys.stderr)
        return 2
    print("\n".join(format_table(document)))
    for line in baseline_lines(document.get("baseline")) + [
            gate["message"] for gate in document["gates"]]:
        print(line)
    print(f"{done}; reports: {', '.join(path.name for path in paths)} in {args.report_dir}")
    return 1 if any(not gate["passed"] for gate in document["gates"]) else 0


def _check_complete(document: dict[str, Any], path: Path) -> None:
    """Refuse to gate the results of an interrupted run: their samples are a part only."""
    if document.get("interrupted"):
        raise MergeError(f"{path} is from an interrupted run; run it again to the end (the "
                         "response cache keeps the replies that arrived) before merging or "
                         "gating it")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pytest_modeleval")
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser("merge", help="merge the results.json files of shards and "
                                "write results.json, report.md and report.html")
    merge.add_argument("results", nargs="+", type=Path, metavar="RESULTS_JSON")
    report = commands.add_parser("report", help="aggregate a results.json again, compare it "
                                 "with a baseline, evaluate its gates and write the reports")
    report.add_argument("results", type=Path, metavar="RESULTS_JSON")
    for command in (merge, report):
        command.add_argument("--report-dir", default=DEFAULT_REPORT_DIR, metavar="DIR",
                             help=f"folder for the reports (default: ./{DEFAULT_REPORT_DIR})")
        command.add_argument("--baseline", type=Path, metavar="FILE",
                             help="results.json of an earlier run to compare with")
        command.add_argument("--max-regression", type=_argparse_type(parse_max_regression),
                             metavar="DELTA", help="regression gate (default: the run's setting)")
        command.add_argument("--alpha", type=_argparse_type(parse_alpha), metavar="P",
                             help="significance level of the regression gate (default: the "
                             "run's setting, else 0.05)")
        command.add_argument("--max-error-rate", type=_argparse_type(parse_error_rate),
                             metavar="RATE", help="error-rate gate (default: the run's setting)")
    return parser


def _settings(args: argparse.Namespace, config: dict[str, Any]) -> GateSettings:
    """Return the gates stored with the run, overridden by the options given here."""
    settings = GateSettings.from_config(config)
    overrides = {name: getattr(args, name) for name in ("max_regression", "alpha",
                                                        "max_error_rate")
                 if getattr(args, name) is not None}
    return replace(settings, **overrides)


if __name__ == "__main__":
    sys.exit(main())
