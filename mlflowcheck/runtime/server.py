"""The server process layer: start, probe and stop a local ``mlflow server``.

Used three ways: the embedded default of ``test_mlflow_local.py`` (the seed's server on
127.0.0.1:3111), ``--start-server`` at another local address, and the project's own tests
and benchmarks, which start throwaway servers on free ports in temporary directories.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from mlflowcheck.core.secrets import ENV_PASSWORD, ENV_TOKEN, ENV_USER, redact_backend_uri
from mlflowcheck.net.http import http

#: Addresses the suite may start a server on or send traffic to without asking.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class ServerStartError(RuntimeError):
    """The server process died or did not answer before its deadline."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS picks it: port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def is_listening(host: str, port: int, timeout: float = 1.0) -> bool:
    """True if a TCP connection to host:port is accepted within ``timeout`` seconds."""
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=timeout):
            return True
    except OSError:
        return False


def light_server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # The client's credentials are the suite's, not the server's business.
    env = {k: v for k, v in os.environ.items() if k not in (ENV_USER, ENV_PASSWORD, ENV_TOKEN)}
    env.update(extra or {})
    # The job runner (huey consumers for GenAI jobs) costs many processes and GBs of memory
    # (docs/performance.md); nothing this suite logs needs it.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    # The server's own outbound telemetry is irrelevant here and the network is closed.
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    env.setdefault("DO_NOT_TRACK", "true")
    return env


@dataclass
class LocalServer:
    """A light ``mlflow server`` (one worker, no job runner) in its own process group.

    Its output goes to ``log_path`` (an unread pipe would fill and block the server).
    """

    workdir: Path
    host: str = "127.0.0.1"
    port: int = 0
    backend_store_uri: str = "sqlite:///my.db"
    artifacts_destination: str = "./mlartifacts"
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None  # extra environment variables for the server
    python: str = sys.executable  # another environment's Python runs another MLflow version
    log_path: Path | None = None
    scheme: str = "http"  # "https" when extra_args make it serve TLS (uvicorn's --ssl-* options)
    static_prefix: str = ""  # --static-prefix: the server answers under this path (e.g. /mlflow)
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)
    terminating: bool = field(default=False, init=False, repr=False)  # SIGTERM sent
    had_children: bool = field(default=False, init=False, repr=False)  # when it was sent
    launched_at: float = field(default=0.0, init=False, repr=False)  # time.time() of the last launch

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        if not self.port:
            self.port = free_port(self.host)
        if self.log_path is None:
            self.log_path = self.workdir / f"mlflow-server-{self.port}.log"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{self.scheme}://{host}:{self.port}{self.static_prefix}"

    def command(self) -> list[str]:
        return [
            self.python, "-m", "mlflow", "server",
            "--host", self.host,
            "--port", str(self.port),
            "--artifacts-destination", self.artifacts_destination,
            "--workers", "1",
            *(["--static-prefix", self.static_prefix] if self.static_prefix else []),
            *self.extra_args,
        ]  # fmt: skip

    def start(self, deadline: float = 90.0, append_log: bool = False) -> LocalServer:
        """Start the server and wait until it answers ``/health``, or raise ServerStartError.
        ``append_log`` keeps what an earlier process of this server wrote (a restart)."""
        self.launch(append_log)
        return self.wait_ready(deadline)

    def launch(self, append_log: bool = False) -> LocalServer:
        """Start the server process and return at once: the caller may do other work (the
        suite's own imports, the model worker, the browser) while the server boots, then
        ``wait_ready``."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.launched_at = time.time()
        log = open(self.log_path, "ab" if append_log else "wb")  # noqa: SIM115 - the child keeps writing to it
        try:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                # The backend URI goes by environment, not argv: argv is readable by every user
                # of the machine (ps), and the URI may hold the database password.
                env=light_server_env({**(self.env or {}), "MLFLOW_BACKEND_STORE_URI": self.backend_store_uri}),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: gunicorn/uvicorn workers outlive the parent, so we stop the group.
                start_new_session=True,
            )
        finally:
            log.close()
        return self

    def wait_ready(self, deadline: float = 90.0) -> LocalServer:
        """Wait until the launched server answers ``/health``; if it does not, stop it and
        raise ServerStartError."""
        try:
            wait_for_server(self.url, deadline, process=self.process, log_path=self.log_path)
        except BaseException:
            self.stop()
            raise
        return self

    def terminate(self) -> None:
        """Ask the whole process group to stop (SIGTERM) without waiting: it shuts down while the
        caller does other work; ``stop`` then waits for it."""
        if self.process is not None and not self.terminating:
            self.terminating = True
            # Before the signal: whether the CLI process had started the server proper (see stop).
            self.had_children = len(group_members(self.process.pid) or ()) > 1
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)  # start_new_session: the child leads its group

    def stop(self, deadline: float = 15.0) -> None:
        """Stop the whole process group: SIGTERM, wait until the deadline, then SIGKILL.

        ``mlflow server`` is a CLI process that starts the server proper (uvicorn or gunicorn)
        as its child and then only waits for it. Once the children have shut down, the CLI spends
        a while in its interpreter's exit (a last garbage collection over MLflow's modules)
        with nothing left to do: then it is not waited for.
        """
        proc = self.process
        if proc is None:
            return
        pgid = proc.pid
        # Once only: a second SIGTERM makes uvicorn skip its graceful shutdown.
        self.terminate()
        end = time.monotonic() + deadline
        while _group_alive(pgid) and time.monotonic() < end:
            if proc.poll() is None and self.had_children and group_members(pgid) == {pgid}:
                break  # the children are gone; the leader only exits now
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        self.process = None
        self.terminating = False

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def process_table() -> dict[int, tuple[str, int, int]] | None:
    """Every process: pid -> (state, parent pid, process group), from Linux's /proc; None where
    there is no /proc."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    table = {}
    for name in entries:
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    state, ppid, pgrp = f.read().rsplit(b")", 1)[1].split()[:3]  # after the command name
            except (OSError, ValueError):
                continue  # it exited meanwhile
            table[int(name)] = (state.decode(), int(ppid), int(pgrp))
    return table


def group_members(pgid: int) -> set[int] | None:
    """The live processes in a process group (a zombie has exited), or None where that cannot be read."""
    table = process_table()
    if table is None:
        return None
    return {pid for pid, (state, _, pgrp) in table.items() if pgrp == pgid and state != "Z"}


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: A server log line that says what went wrong: logged at ERROR, or an exception's last line.
#: (Access-log lines such as '"PUT ..." 500 Internal Server Error' are not.)
ERROR_LINE = re.compile(r"\bERROR\b|^\s*[\w.]*(Error|Exception)\b")


def log_size(path: Path | None) -> int:
    try:
        return Path(path).stat().st_size if path else 0
    except OSError:
        return 0


def log_errors(path: Path | None, limit: int = 6, since: int | None = None) -> str:
    """The error lines of a server log (not its tracebacks): what the server itself said.

    With ``since`` (a byte offset), only what was written after it, and nothing if no line
    there is an error; without it, the last lines when no line is an error.
    """
    if path is None or not Path(path).exists():
        return ""
    with open(path, "rb") as f:
        f.seek(since or 0)
        lines = f.read().decode(errors="replace").splitlines()
    picked: list[str] = []
    for line in lines:
        if ERROR_LINE.search(line) and not line.startswith((" ", "Traceback")) and line not in picked:
            picked.append(line.strip())
    if picked or since is not None:
        return "\n".join(picked[-limit:])
    return "\n".join(lines[-limit:])


#: The Python module a SQLAlchemy backend URI loads, and the pip package that provides it.
#: With SQLAlchemy 2.1 a bare postgresql:// means psycopg (3), and mysql:// means MySQLdb.
DRIVERS = {
    "postgresql": ("psycopg", "psycopg[binary]"),
    "postgresql+psycopg": ("psycopg", "psycopg[binary]"),
    "postgresql+psycopg2": ("psycopg2", "psycopg2-binary"),
    "mysql": ("MySQLdb", "mysqlclient"),
    "mysql+mysqldb": ("MySQLdb", "mysqlclient"),
    "mysql+pymysql": ("pymysql", "PyMySQL"),
    "mariadb+pymysql": ("pymysql", "PyMySQL"),
    "mssql+pyodbc": ("pyodbc", "pyodbc"),
}


INSTALLED_ALTERNATIVE = {"postgresql": "postgresql+psycopg2", "mysql": "mysql+pymysql"}


def missing_driver(backend_store_uri: str) -> str | None:
    """A message naming the driver a backend URI needs, if it cannot be imported here."""
    import importlib.util

    scheme = backend_store_uri.split(":", 1)[0].lower()
    if scheme not in DRIVERS:
        return None
    module, package = DRIVERS[scheme]
    if importlib.util.find_spec(module) is not None:
        return None
    message = (
        f"The backend store URI scheme {scheme}:// needs the Python driver {module!r}, which is not "
        f"installed.\nTip: pip install {package}"
    )
    family = scheme.split("+")[0]
    alternative = INSTALLED_ALTERNATIVE.get(family)
    if alternative and alternative != scheme and importlib.util.find_spec(DRIVERS[alternative][0]):
        shown = redact_backend_uri(f"{alternative}://{backend_store_uri.split('://', 1)[-1]}")
        message += f", or use the installed driver: {shown}"
    return message


def tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not Path(path).exists():
        return ""
    text = Path(path).read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def wait_for_server(
    url: str,
    deadline: float,
    process: subprocess.Popen | None = None,
    log_path: Path | None = None,
) -> None:
    """Poll ``url``/health until it answers 200, the process exits, or the deadline passes."""
    end = time.monotonic() + deadline
    last_error = "no answer yet"
    while time.monotonic() < end:
        if process is not None and process.poll() is not None:
            raise ServerStartError(
                f"mlflow server exited with code {process.returncode} before it was ready. "
                f"It said:\n{log_errors(log_path)}\n(full log: {log_path})"
            )
        try:
            # Readiness only: a TLS server's certificate is the test's business, not this poll's.
            resp = http("GET", f"{url}/health", timeout=2, deadline=5, verify=False)
            if resp.status_code == 200:
                return
            last_error = f"/health answered HTTP {resp.status_code}"
        except requests.RequestException as exc:
            last_error = type(exc).__name__
        time.sleep(0.05)
    raise ServerStartError(
        f"mlflow server at {url} was not ready after {deadline:.0f}s ({last_error}). "
        f"Its log ({log_path}) ends with:\n{tail(log_path, 10)}"
    )
