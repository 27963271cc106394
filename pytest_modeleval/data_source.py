"""Where benchmark rows come from: a hub id through `datasets`, or the user's local copy."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# `datasets` builder for each local file type it can read.
LOCAL_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
_REVISION = re.compile(r"@([0-9a-f]{40})")


class DatasetError(ValueError):
    """The rows cannot be loaded; the message names the source and the fix."""


@dataclass(frozen=True)
class HubDataset:
    """A dataset on the Hugging Face hub, as `datasets.load_dataset` takes it."""

    path: str
    split: str
    name: str | None = None


@dataclass(frozen=True)
class Rows:
    """Loaded rows and where they came from: hub id and revision, or file name and hash."""

    rows: list[dict[str, Any]]
    version: str
    # The file or hub id, for messages about a row.
    source: str = ""


def load_rows(benchmark: str, hub: HubDataset, local_path: str | None,
              origin: str | None = None) -> Rows:
    """Load a benchmark's rows from `local_path` when given, else from the hub.

    `origin` names where the path was set, for messages; by default the
    --dataset option.
    """
    if local_path is not None:
        path = Path(local_path).expanduser()
        return _load_local(origin or f"--dataset {benchmark}={path}", path)
    return _load_hub(benchmark, hub)


def require(row: dict[str, Any], name: str, sample_id: str, source: str) -> Any:
    """Return a row's field, or raise ValueError naming the file, the row and the field."""
    value = row.get(name)
    if value is None:
        raise ValueError(f"{source}, id {sample_id}: missing field {name!r}; fields: "
                         f"{', '.join(map(str, row))}; give data in the benchmark's format")
    return value


def _load_local(origin: str, path: Path) -> Rows:
    files = _data_files(origin, path)
    builder = LOCAL_BUILDERS[files[0].suffix.lower()]
    try:
        with _quiet_datasets() as datasets:
            options = _csv_as_text(datasets, files[0]) if builder == "csv" else {}
            table = datasets.load_dataset(builder, data_files=[str(f) for f in files],
                                          split="train", **options)
            rows = table.to_list()
    except Exception as error:  # noqa: BLE001 - any parse failure becomes one line
        raise DatasetError(f"{origin}: cannot read it as {builder} "
                           f"({_first_line(error)}); give a jsonl, json, csv or parquet file "
                           "in the benchmark's format") from None
    return Rows(rows, f"{path.name} sha256:{_sha256(files)}", str(path))


def _csv_as_text(datasets: Any, first: Path) -> dict[str, Any]:
    """Options that read every CSV cell as text.

    Otherwise pandas turns answers such as "None" or "NA" into missing values
    and "1995" into a number.
    """
    # utf-8-sig drops the byte order mark that Excel writes before the first name.
    with first.open(encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle), [])
    features = datasets.Features({name: datasets.Value("string") for name in header})
    return {"keep_default_na": False, "na_filter": False, "features": features}


def _data_files(origin: str, path: Path) -> list[Path]:
    if path.is_file():
        if path.suffix.lower() not in LOCAL_BUILDERS:
            raise DatasetError(f"{origin}: unknown file type "
                               f"{path.suffix or '(none)'}; expected one of "
                               f"{', '.join(LOCAL_BUILDERS)}")
        return [path]
    if not path.is_dir():
        raise DatasetError(f"{origin}: no such file or folder; give an existing path")
    by_type: dict[str, list[Path]] = {}
    for child in sorted(path.rglob("*")):
        if child.is_file() and child.suffix.lower() in LOCAL_BUILDERS:
            by_type.setdefault(LOCAL_BUILDERS[child.suffix.lower()], []).append(child)
    if len(by_type) != 1:
        found = "no data file" if not by_type else "files of several types"
        raise DatasetError(f"{origin}: {found} in the folder; give a "
                           "folder with files of one type (jsonl, json, csv or parquet) or "
                           "name one file")
    return next(iter(by_type.values()))


def _load_hub(benchmark: str, hub: HubDataset) -> Rows:
    try:
        with _quiet_datasets() as datasets:
            table = datasets.load_dataset(hub.path, hub.name, split=hub.split)
            rows = table.to_list()
    except ImportError:
        raise
    except Exception as error:  # noqa: BLE001 - network, auth and format errors alike
        raise DatasetError(f"cannot load {benchmark} from the hub id {hub.path} "
                           f"({_first_line(error)}); on a machine without access to the hub, "
                           f"pass --dataset {benchmark}=PATH with a local copy") from None
    return Rows(rows, f"{hub.path}@{_hub_revision(table)}", hub.path)


def _hub_revision(table: Any) -> str:
    """Return the commit the hub files came from, found in their cached URLs."""
    # NOTE: read from the download URLs that datasets 3 to 5 record; not yet run
    # against the hub from here, so "unknown" is possible with other versions.
    sources = [str(getattr(table.info, "download_checksums", None) or ""),
               str(getattr(table, "cache_files", None) or "")]
    for text in sources:
        match = _REVISION.search(text)
        if match:
            return match.group(1)
    return "unknown"


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[Any]:
    """Import `datasets` with its progress bars off, restoring them afterwards."""
    try:
        import datasets
    except ImportError as error:
        raise DatasetError(f"cannot import the datasets package ({error}); install it with "
                           "pip install 'datasets>=3'") from None
    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield datasets
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def _sha256(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line[:300]
