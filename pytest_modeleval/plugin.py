"""pytest hooks of pytest-modeleval, in the order a run meets them.

configure -> generate_tests (one item per sample) -> runtestloop (start the
background pipeline in run order) -> each item: the `graded` fixture waits
for its reply and grades it -> makereport (record into user_properties) ->
logreport on the controller (collect records) -> sessionfinish (aggregate,
gates, reports) -> terminal_summary (table).
"""

from __future__ import annotations

import atexit
import dataclasses
import gc
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from . import options
from .local_server import LOCAL_MAX_TOKENS, LOCAL_MODEL, LocalServer
from .progress import Progress
from .results import RECORD_PROPERTY, SampleRecord
from .run import Graded, ModelevalRun, SampleServerError, SampleWrong
from .sharding import partition
from .suites import Sample

RUN_KEY = pytest.StashKey[ModelevalRun]()
LOCAL_SERVER_KEY = pytest.StashKey[LocalServer]()
RECORD_KEY = pytest.StashKey[SampleRecord]()
MARKER = "modeleval"
CASE_FIXTURE = "modeleval_case"
# workerinput key that carries the embedded model server's URL to xdist workers.
LOCAL_URL_KEY = "modeleval_local_base_url"
PARTITIONED_KEY = "modeleval_partitioned"


def pytest_addoption(parser: pytest.Parser) -> None:
    options.register(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(benchmark): one item per sample of the named benchmark, "
        "e.g. @pytest.mark.modeleval('bfcl_v3')")
    run_config = options.load_run_config(config)
    _check_report_dir_argument(config)
    _check_report_dir(run_config)
    if run_config.model == LOCAL_MODEL:
        run_config = _use_local_server(config, run_config)
    _check_run_config(run_config)
    run = ModelevalRun(run_config)
    config.stash[RUN_KEY] = run
    if run_config.model:
        config.pluginmanager.register(EvaluationSession(config, run), "modeleval-session")
        if config.pluginmanager.has_plugin("xdist"):
            config.pluginmanager.register(XdistHooks(run_config), "modeleval-xdist")
        _skip_garbage_collection_at_exit()


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        run.close()
        del config.stash[RUN_KEY]
    server = config.stash.get(LOCAL_SERVER_KEY, None)
    if server is not None:
        server.stop()
        del config.stash[LOCAL_SERVER_KEY]
    for name in ("modeleval-session", "modeleval-xdist"):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin, name)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(MARKER)
    run = metafunc.config.stash.get(RUN_KEY, None)
    if marker is None or run is None or not run.config.model:
        return
    benchmark = _marker_benchmark(marker)
    try:
        samples = run.samples(benchmark)
    except (ImportError, KeyError, ValueError) as error:
        pytest.fail(str(error.args[0] if error.args else error), pytrace=False)
    metafunc.parametrize(CASE_FIXTURE, samples, ids=[f"{s.subset}/{s.sample_id}" for s in samples],
                         indirect=True)


@pytest.hookimpl(trylast=True)  # after -k and -m deselection
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run = config.stash[RUN_KEY]
    if run.config.model:
        if run.config.shard:
            _keep_shard(config, items, *run.config.shard)
        return
    benchmark_items = [item for item in items if item.get_closest_marker(MARKER)]
    if benchmark_items:
        run.deselected_without_model = len(benchmark_items)
        items[:] = [item for item in items if not item.get_closest_marker(MARKER)]
        config.hook.pytest_deselected(items=benchmark_items)


def pytest_report_collectionfinish(config: pytest.Config) -> str | None:
    run = config.stash[RUN_KEY]
    if not run.deselected_without_model:
        return None
    return (f"modeleval: {run.deselected_without_model} benchmark test(s) deselected because "
            "--model is not set; run e.g. pytest --model NAME --base-url URL -k bfcl")


@pytest.fixture
def modeleval_case(request: pytest.FixtureRequest) -> Sample:
    """Return the benchmark sample of this item."""
    return request.param


@pytest.fixture
def graded(request: pytest.FixtureRequest, modeleval_case: Sample) -> Graded:
    """Wait for this item's reply and grade it. A server failure raises, so the item errors."""
    run = request.config.stash[RUN_KEY]
    record = run.grade_item(request.node.nodeid, modeleval_case)
    request.node.stash[RECORD_KEY] = record
    if record.outcome == "error":
        raise SampleServerError(record.explanation)
    return Graded(record)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Any:
    report = yield
    record = item.stash.get(RECORD_KEY, None)
    if record is None or call.when == "teardown":
        return report
    if call.when == "call" or report.failed:
        report.user_properties.append((RECORD_PROPERTY, record.to_dict()))
    if call.excinfo is not None and call.excinfo.errisinstance((SampleWrong, SampleServerError)):
        kind = "wrong" if call.excinfo.errisinstance(SampleWrong) else "server error"
        report.longrepr = f"{record.benchmark}/{record.subset} {record.sample_id}: {kind}: " \
            f"{record.explanation}"
    return report


class XdistHooks:
    """Hooks that exist only when pytest-xdist is loaded."""

    def __init__(self, run_config: options.RunConfig) -> None:
        self.run_config = run_config

    def pytest_configure_node(self, node: Any) -> None:
        # xdist resets --dist to "no" inside workers, so tell each worker whether
        # the partition scheduler below sends it its items.
        node.workerinput[PARTITIONED_KEY] = node.config.getoption("dist") == "load"
        # Workers share the controller's local model server instead of starting their own.
        if self.run_config.model == LOCAL_MODEL:
            node.workerinput[LOCAL_URL_KEY] = self.run_config.base_url

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        # The controller collects nothing itself; every worker reports the same ids.
        session = node.config.pluginmanager.get_plugin("modeleval-session")
        if session is not None:
            session.start_progress(len(ids))

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.getoption("dist") != "load":
            return None
        from .sharding import make_partition_scheduler

        return make_partition_scheduler(config, log)


class EvaluationSession:
    """Hooks active when --model is set: pipeline start, records, aggregation, reports."""

    def __init__(self, config: pytest.Config, run: ModelevalRun) -> None:
        self.config = config
        self.run = run
        self.is_worker = hasattr(config, "workerinput")
        self.report_paths: list[Path] = []
        self.report_error = ""
        self.progress: Progress | None = None

    def start_progress(self, total: int) -> None:
        interval = self.run.config.progress_interval_s
        quiet = self.config.get_verbosity() < 0
        if self.progress is None and not self.is_worker and not quiet and interval > 0:
            self.progress = Progress(total, interval)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        # Start sending requests only when items are about to run: not for
        # --collect-only, not after collection errors, not on the xdist controller.
        if (session.config.option.collectonly or session.testsfailed
                or _is_xdist_controller(self.config)):
            return
        planned = [(item.nodeid, sample) for item in _own_items(session)
                   if (sample := _sample_of(item)) is not None]
        self.start_progress(len(session.items))
        self.run.start_pipeline(planned)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == RECORD_PROPERTY:
                self.run.records[report.nodeid] = value
                if self.progress is not None:
                    self.progress.add_record(value)
        if self.progress is not None and report.when == "teardown":
            self.progress.item_done()
            line = self.progress.line()
            terminal = self.config.pluginmanager.get_plugin("terminalreporter")
            if line and terminal is not None:
                _write_own_line(terminal, line)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker or self.config.option.collectonly:
            return
        from .gates import evaluate_thresholds
        from .report import write_reports
        from .results import build_document

        samples = list(self.run.records.values())
        if not samples and not self.run.config.thresholds:
            return
        config = self.run.config
        document = build_document(samples, config.public_dict(),
                                  time.monotonic() - self.run.started)
        document["thresholds"] = evaluate_thresholds(config.thresholds, document)
        self.run.document = document
        try:
            self.report_paths = write_reports(document, Path(config.report_dir))
        except OSError as error:
            self.report_error = (f"could not write reports to {config.report_dir}: {error}; "
                                 "pass --report-dir=DIR with a writable folder")
        if config.thresholds and exitstatus in (pytest.ExitCode.OK,
                                                pytest.ExitCode.TESTS_FAILED):
            passed = all(row["passed"] for row in document["thresholds"])
            session.exitstatus = pytest.ExitCode.OK if passed else pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.run.document is None:
            return
        from .summary import write_summary

        write_summary(terminalreporter, self.run.document, self.report_paths)
        if self.report_error:
            terminalreporter.write_line(self.report_error, red=True, bold=True)


# --- helpers ---


def _skip_garbage_collection_at_exit() -> None:
    """Freeze all objects when the interpreter exits, so that its final collection skips them.

    A run leaves pytest's node tree, reports, samples and records in reference
    cycles. Collecting and freeing them took about 0.8 s after the last
    atexit handler of a 1,921-item BFCL run (scripts/bench_throughput.py).
    The process ends anyway, so the memory needs no freeing. Finalizers of
    objects in such cycles do not run then, which Python does not promise at
    exit either. Registered once, because a process may configure several
    sessions (pytester's in-process runs).
    """
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


def _write_own_line(terminal: Any, line: str) -> None:
    # Progress dots leave the cursor mid-line; xdist's dots do not update the
    # reporter's own record of that, so ask the writer where the cursor is.
    writer = getattr(terminal, "_tw", None)
    mid_line = writer is not None and getattr(writer, "width_of_current_line", 0)
    if mid_line and getattr(terminal, "currentfspath", None) is None:
        terminal.write("\n")
    terminal.write_line(line)  # starts a new line itself after pytest's own dots


def _keep_shard(config: pytest.Config, items: list[pytest.Item], index: int, count: int
                ) -> None:
    """Keep every count-th benchmark item from the index-th; other items stay in every shard."""
    benchmark = [item for item in items if item.get_closest_marker(MARKER)]
    kept = set(partition(benchmark, index - 1, count))
    dropped = [item for item in benchmark if item not in kept]
    if dropped:
        dropped_set = set(dropped)
        items[:] = [item for item in items if item not in dropped_set]
        config.hook.pytest_deselected(items=dropped)


def _use_local_server(config: pytest.Config, run_config: options.RunConfig
                      ) -> options.RunConfig:
    """Point the run at the embedded model server, starting it unless this is a worker."""
    gen = run_config.gen
    if "max_tokens" not in gen.request:
        # SmolLM2 often repeats itself until its context is full; cap each reply.
        gen = dataclasses.replace(gen, request={**gen.request, "max_tokens": LOCAL_MAX_TOKENS})
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return dataclasses.replace(run_config, base_url=workerinput[LOCAL_URL_KEY], gen=gen)
    from .local_server import LocalServerError, start_local_server

    try:
        server = start_local_server(Path(run_config.report_dir))
    except LocalServerError as error:
        raise pytest.UsageError(str(error)) from None
    except OSError as error:
        raise pytest.UsageError(f"cannot start the local model server: {error}; "
                                "pass --report-dir=DIR with a writable folder") from None
    config.stash[LOCAL_SERVER_KEY] = server
    return dataclasses.replace(run_config, base_url=server.base_url, gen=gen)


def _check_run_config(run_config: options.RunConfig) -> None:
    from .gates import validate_threshold

    for threshold in run_config.thresholds:
        problem = validate_threshold(threshold)
        if problem:
            raise pytest.UsageError(problem)
    if run_config.model and not run_config.base_url:
        raise pytest.UsageError(
            f"--model {run_config.model} needs a server: pass --base-url URL "
            f"(e.g. http://127.0.0.1:8000/v1) or set {options.BASE_URL_ENV}")
    if run_config.base_url:
        url = urllib.parse.urlsplit(run_config.base_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise pytest.UsageError(
                f"invalid base URL {run_config.base_url!r}: expected http(s)://HOST[:PORT]/v1 "
                "such as http://127.0.0.1:8000/v1")



def _check_report_dir_argument(config: pytest.Config) -> None:
    """Reject `--report-dir DIR` when DIR exists, because pytest read DIR as a test path.

    pytest picks the rootdir and ini file from the positional arguments before
    plugins register their options, so a separate value naming an existing
    folder silently changes the rootdir and drops this project's ini settings.
    """
    args = list(config.invocation_params.args)
    for flag, value in zip(args, args[1:]):
        if flag == "--report-dir" and Path(value).is_dir():
            raise pytest.UsageError(
                f"write --report-dir={value} with '=': pytest reads a separate value that "
                "names an existing folder as a test path, which changes the rootdir")


def _check_report_dir(run_config: options.RunConfig) -> None:
    report_dir = Path(run_config.report_dir)
    for folder in (report_dir, *report_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                raise pytest.UsageError(f"--report-dir {report_dir}: {folder} is a file, not "
                                        "a folder; pass --report-dir=DIR with a folder path")
            return


def _marker_benchmark(marker: pytest.Mark) -> str:
    if len(marker.args) != 1 or not isinstance(marker.args[0], str):
        raise pytest.UsageError(f"@pytest.mark.{MARKER} takes one benchmark name, "
                                f"e.g. @pytest.mark.{MARKER}('bfcl_v3')")
    return marker.args[0]


def _sample_of(item: pytest.Item) -> Sample | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    sample = callspec.params.get(CASE_FIXTURE)
    return sample if isinstance(sample, Sample) else None


def _is_xdist_controller(config: pytest.Config) -> bool:
    return config.pluginmanager.has_plugin("dsession")


def _own_items(session: pytest.Session) -> list[pytest.Item]:
    """Return the items this process will run, in order, as far as it can know."""
    workerinput = getattr(session.config, "workerinput", None)
    if workerinput is None:
        return list(session.items)
    from .sharding import partition, worker_slot

    if not workerinput.get(PARTITIONED_KEY):
        return []  # another scheduler decides; items fetch their replies on demand
    count = int(workerinput["workercount"])
    slot = worker_slot(workerinput["workerid"], count)
    return partition(session.items, slot, count) if slot is not None else []
