"""Command line: `python -m pytest_modeleval merge SHARD/results.json ... --report-dir DIR`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .merge import MergeError, load_document, merge_documents
from .options import DEFAULT_REPORT_DIR
from .report import format_table, write_reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_modeleval")
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser("merge", help="merge the results.json files of shards and "
                                "write results.json, report.md and report.html")
    merge.add_argument("results", nargs="+", type=Path, metavar="RESULTS_JSON")
    merge.add_argument("--report-dir", default=DEFAULT_REPORT_DIR, metavar="DIR",
                       help=f"folder for the merged reports (default: ./{DEFAULT_REPORT_DIR})")
    args = parser.parse_args(argv)
    try:
        named = [(path, load_document(path)) for path in args.results]
        document = merge_documents(named, args.report_dir)
    except MergeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        paths = write_reports(document, Path(args.report_dir))
    except OSError as error:
        print(f"error: could not write reports to {args.report_dir}: {error}; pass "
              "--report-dir with a writable folder", file=sys.stderr)
        return 2
    print("\n".join(format_table(document)))
    print(f"merged {len(document['samples'])} samples from {len(named)} files; reports: "
          f"{', '.join(path.name for path in paths)} in {args.report_dir}")
    failed = any(not row["passed"] for row in document["thresholds"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
