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
from typing import TYPE_CHECKING, Any

import pytest

from . import options, user_benchmark
from .local_server import LOCAL_MAX_TOKENS, LOCAL_MODEL, LocalServer
from .progress import Progress
from .results import RECORD_PROPERTY, SampleRecord
from .run import Case, Graded, ModelevalRun, SampleServerError, SampleWrong, make_record
from .sharding import partition
from .suites import Grade, combined_reply, get_suite

if TYPE_CHECKING:
    from .gates import GateSettings

RUN_KEY = pytest.StashKey[ModelevalRun]()
LOCAL_SERVER_KEY = pytest.StashKey[LocalServer]()
RECORD_KEY = pytest.StashKey[SampleRecord]()
HANDLES_KEY = pytest.StashKey[list[user_benchmark.ModelHandle]]()
MARKER = "modeleval"
USER_MARKER = user_benchmark.MARKER
CASE_FIXTURE = "modeleval_case"
# workerinput key that carries the embedded model server's URL to xdist workers.
LOCAL_URL_KEY = "modeleval_local_base_url"
PARTITIONED_KEY = "modeleval_partitioned"
# workeroutput key that carries a worker's data and scorer versions to the controller.
VERSIONS_KEY = "modeleval_versions"


def pytest_addoption(parser: pytest.Parser) -> None:
    options.register(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(benchmark): one item per sample of the named benchmark, "
        "e.g. @pytest.mark.modeleval('bfcl_v3')")
    config.addinivalue_line("markers", user_benchmark.MARKER_HELP)
    run_config = options.load_run_config(config)
    _check_path_arguments(config)
    _check_report_dir(run_config)
    if run_config.model == LOCAL_MODEL:
        run_config = _use_local_server(config, run_config)
    _check_run_config(run_config)
    if config.getoption("modeleval_max_regression") is not None and not run_config.baseline:
        # From the ini file, --max-regression waits for a run that passes --baseline.
        raise pytest.UsageError(
            f"--max-regression {config.getoption('modeleval_max_regression'):g} compares "
            "with a baseline: pass --baseline FILE with the results.json of an earlier run")
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
    run = metafunc.config.stash.get(RUN_KEY, None)
    if run is None or not run.config.model:
        return
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is not None:
        _parametrize_benchmark(metafunc, run, _marker_benchmark(marker))
        return
    marker = metafunc.definition.get_closest_marker(USER_MARKER)
    if marker is not None:
        try:
            spec = user_benchmark.from_marker(marker, metafunc.definition.path)
        except ValueError as error:
            problem = str(error)
        else:
            run.user_benchmarks[spec.name] = spec
            _parametrize_cases(metafunc, run, lambda: user_benchmark.load(spec, run.config.limit),
                               spec.name)
            return
        # Outside the except block, so pytest shows the message once, not chained.
        pytest.fail(problem, pytrace=False)


def _parametrize_benchmark(metafunc: pytest.Metafunc, run: ModelevalRun, benchmark: str
                           ) -> None:
    try:
        suite = get_suite(benchmark)
    except KeyError as error:
        raise pytest.UsageError(str(error.args[0])) from None
    if suite.needs_judge and run.config.judge is None:
        reason = (f"{benchmark} is graded by a judge model: pass --judge-model NAME "
                  "(and --judge-base-url URL when it is not served at --base-url)")
        metafunc.parametrize(CASE_FIXTURE, [pytest.param(None, marks=pytest.mark.skip(
            reason=reason))], ids=[benchmark], indirect=True)
        return
    if suite.sample_id_chars is not None:
        from .selection import may_select

        if not may_select(metafunc, suite.subsets + suite.subset_ids,
                          suite.sample_id_chars):
            # -k leaves none of these items; an empty parameter set loads no data.
            metafunc.parametrize(CASE_FIXTURE, [], indirect=True)
            return
    _parametrize_cases(metafunc, run, lambda: suite.load(run.config), benchmark)


def _parametrize_cases(metafunc: pytest.Metafunc, run: ModelevalRun, load: Any,
                       benchmark: str) -> None:
    try:
        samples = run.samples(benchmark, load)
    except (ImportError, KeyError, ValueError) as error:
        problem = str(error.args[0] if error.args else error)
    else:
        cases = run.cases(samples)
        metafunc.parametrize(CASE_FIXTURE, cases, ids=[case.item_id for case in cases],
                             indirect=True)
        return
    # Outside the except block, so pytest shows the message once, not chained.
    pytest.fail(problem, pytrace=False)


@pytest.hookimpl(trylast=True)  # after -k and -m deselection
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run = config.stash[RUN_KEY]
    if run.config.model:
        if run.config.shard:
            _keep_shard(config, items, *run.config.shard)
        return
    benchmark_items = [item for item in items if _is_benchmark_item(item)]
    if benchmark_items:
        run.deselected_without_model = len(benchmark_items)
        items[:] = [item for item in items if not _is_benchmark_item(item)]
        config.hook.pytest_deselected(items=benchmark_items)


def pytest_report_collectionfinish(config: pytest.Config) -> str | None:
    run = config.stash[RUN_KEY]
    if not run.deselected_without_model:
        return None
    return (f"modeleval: {run.deselected_without_model} benchmark test(s) deselected because "
            "--model is not set; run e.g. pytest --model NAME --base-url URL -k bfcl")


@pytest.fixture
def modeleval_case(request: pytest.FixtureRequest) -> Case:
    """Return the benchmark sample of this item and its repeat index."""
    return request.param


@pytest.fixture
def graded(request: pytest.FixtureRequest, modeleval_case: Case) -> Graded:
    """Wait for this item's reply and grade it. A server failure raises, so the item errors."""
    run = request.config.stash[RUN_KEY]
    record = run.grade_item(request.node.nodeid, modeleval_case)
    request.node.stash[RECORD_KEY] = record
    if record.outcome == "error":
        raise SampleServerError(record.explanation)
    return Graded(record)


@pytest.fixture
def sample(modeleval_case: Case) -> Any:
    """Return the row of a benchmark declared with @pytest.mark.modeleval_data, as a dict."""
    return modeleval_case.sample.data


@pytest.fixture
def model(request: pytest.FixtureRequest, modeleval_case: Case) -> user_benchmark.ModelHandle:
    """Return a client of the model under test for a user's benchmark: model.chat(text).text."""
    run = request.config.stash[RUN_KEY]
    spec = run.user_benchmarks.get(modeleval_case.sample.benchmark)
    clients = run.clients(modeleval_case.sample.benchmark, modeleval_case.repeat,
                          request.node.nodeid)
    handle = user_benchmark.ModelHandle(clients.model)
    request.node.stash.setdefault(HANDLES_KEY, []).append(handle)
    job = run.user_job(modeleval_case)
    if spec is not None and job is not None:
        from .client import ServerError

        # Wait here, in setup, so that a server failure errors the item as it
        # does for a built-in benchmark.
        handle.planned = user_benchmark.prompt_messages(spec, modeleval_case.sample.data)
        try:
            handle.planned_reply = run.result(request.node.nodeid, job)
        except ServerError as error:
            raise SampleServerError(str(error)) from None
    return handle


@pytest.fixture
def judge(request: pytest.FixtureRequest, modeleval_case: Case) -> user_benchmark.ModelHandle:
    """Return a client of the judge model (--judge-model) for a user's benchmark."""
    run = request.config.stash[RUN_KEY]
    clients = run.clients(modeleval_case.sample.benchmark, modeleval_case.repeat,
                          request.node.nodeid)
    if clients.judge is None:
        pytest.skip("this test uses the judge model: pass --judge-model NAME")
    return user_benchmark.ModelHandle(clients.judge)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Any:
    report = yield
    if call.when == "teardown":
        return report
    record = item.stash.get(RECORD_KEY, None)
    if record is None and item.get_closest_marker(USER_MARKER):
        record = _user_record(item, call, report)
    if record is None:
        return report
    if call.when == "call" or report.failed:
        report.user_properties.append((RECORD_PROPERTY, record.to_dict()))
        # --junitxml writes the teardown report's properties, which are the item's.
        # The record above is on this report alone, so it stays out of the XML.
        properties = [("benchmark", record.benchmark), ("subset", record.subset)]
        if record.score is not None:  # an error or unscored sample has no score
            properties.append(("score", record.score))
        item.user_properties.extend(properties)
    if call.excinfo is not None and call.excinfo.errisinstance((SampleWrong, SampleServerError)):
        kind = "wrong" if call.excinfo.errisinstance(SampleWrong) else "server error"
        report.longrepr = f"{record.benchmark}/{record.subset} {record.sample_id}: {kind}: " \
            f"{record.explanation}"
    return report


def _user_record(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport
                 ) -> SampleRecord | None:
    """Grade a user's benchmark item by its test outcome: passed is correct, failed is wrong."""
    case = _case_of(item)
    if case is None or report.skipped or (call.when == "setup" and report.passed):
        return None
    if report.passed:
        grade = Grade("correct", 1.0)
    elif call.when == "call" and call.excinfo.errisinstance(
            (AssertionError, pytest.fail.Exception)) and not call.excinfo.errisinstance(
            SampleServerError):
        # A failed assertion grades the reply; any other exception is a broken test.
        grade = Grade("wrong", 0.0, _first_line(call.excinfo.exconly()))
    else:
        error = call.excinfo.exconly() if call.excinfo else "failed"
        grade = Grade("error", None, _first_line(error))
    handles = item.stash.get(HANDLES_KEY, [])
    replies = [reply for handle in handles for reply in handle.replies]
    request = next((h.first_request for h in handles if h.first_request is not None), None)
    return make_record(case, grade, combined_reply(replies) if replies else None,
                       request=request)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:500]


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

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        # Workers load the data, so the controller learns its versions from them.
        output = getattr(node, "workeroutput", None) or {}
        run = node.config.stash[RUN_KEY]
        for benchmark, versions in output.get(VERSIONS_KEY, {}).items():
            run.versions.setdefault(benchmark, versions)

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
        # The earlier run's results.json, read up front so a bad path fails before any request.
        self.baseline: dict[str, Any] | None = None
        if run.config.baseline and not self.is_worker:
            from .baseline import BaselineError, load_baseline

            try:
                self.baseline = load_baseline(run.config.baseline)
            except BaselineError as error:
                raise pytest.UsageError(str(error)) from None

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
        planned = [(item.nodeid, job) for item in _own_items(session)
                   if (job := _planned_job(self.run, item)) is not None]
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
        if self.is_worker:
            self.config.workeroutput[VERSIONS_KEY] = self.run.versions  # type: ignore[attr-defined]
            return
        if self.config.option.collectonly:
            return
        from .gates import apply_gates
        from .report import write_reports
        from .results import build_document

        samples = list(self.run.records.values())
        settings = _gate_settings(self.run.config)
        if not samples and not settings.thresholds:
            return
        config = self.run.config
        document = build_document(samples, config.public_dict(),
                                  time.monotonic() - self.run.started, self.run.versions)
        apply_gates(document, settings, self.baseline, config.baseline or "")
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            # Ctrl-C: the reports cover only the samples that finished.
            document["interrupted"] = True
        self.run.document = document
        try:
            self.report_paths = write_reports(document, Path(config.report_dir))
        except OSError as error:
            self.report_error = (f"could not write reports to {config.report_dir}: {error}; "
                                 "pass --report-dir=DIR with a writable folder")
        # With any gate configured, the gates alone decide, whatever single samples did.
        if document["gates"] and exitstatus in (pytest.ExitCode.OK,
                                                pytest.ExitCode.TESTS_FAILED):
            passed = all(row["passed"] for row in document["gates"])
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
    benchmark = [item for item in items if _is_benchmark_item(item)]
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


def _gate_settings(run_config: options.RunConfig) -> GateSettings:
    from .gates import GateSettings

    return GateSettings(run_config.thresholds, run_config.max_regression, run_config.alpha,
                        run_config.max_error_rate)


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



# Options whose value is a path that may exist; see _check_path_arguments.
PATH_OPTIONS = ("--report-dir", "--cache-dir", "--baseline")


def _check_path_arguments(config: pytest.Config) -> None:
    """Reject `--report-dir DIR` (and the other path options) when the path exists.

    pytest picks the rootdir and ini file from the positional arguments before
    plugins register their options, so a separate value naming an existing
    path silently changes the rootdir and drops this project's ini settings.
    """
    args = list(config.invocation_params.args)
    for flag, value in zip(args, args[1:]):
        if flag in PATH_OPTIONS and Path(value).exists():
            raise pytest.UsageError(
                f"write {flag}={value} with '=': pytest reads a separate value that "
                "names an existing path as a test path, which changes the rootdir")


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


def _case_of(item: pytest.Item) -> Case | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    case = callspec.params.get(CASE_FIXTURE)
    return case if isinstance(case, Case) else None


def _is_benchmark_item(item: pytest.Item) -> bool:
    return bool(item.get_closest_marker(MARKER) or item.get_closest_marker(USER_MARKER))


def _planned_job(run: ModelevalRun, item: pytest.Item) -> Any:
    """Return the network work the pipeline can start ahead of the item, or None."""
    case = _case_of(item)
    if case is None:
        return None
    if item.get_closest_marker(MARKER):
        return run.job(case)
    return run.user_job(case)


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
