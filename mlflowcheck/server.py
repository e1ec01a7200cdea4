"""The server process layer: start, probe and stop a local ``mlflow server``.

Used three ways: the embedded default of ``test_mlflow_local.py`` (the seed's server on
127.0.0.1:3111), ``--start-server`` at another local address, and the project's own tests
and benchmarks, which start throwaway servers on free ports in temporary directories.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

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


def light_server_env(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    # The job runner (huey consumers for GenAI jobs) costs ~10 extra processes and ~2.5 GB;
    # nothing this suite logs needs it.
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
    env: dict[str, str] | None = None
    log_path: Path | None = None
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        if not self.port:
            self.port = free_port(self.host)
        if self.log_path is None:
            self.log_path = self.workdir / f"mlflow-server-{self.port}.log"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"http://{host}:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "mlflow", "server",
            "--host", self.host,
            "--port", str(self.port),
            "--backend-store-uri", self.backend_store_uri,
            "--artifacts-destination", self.artifacts_destination,
            "--workers", "1",
            *self.extra_args,
        ]  # fmt: skip

    def start(self, deadline: float = 90.0) -> LocalServer:
        """Start the server and wait until it answers ``/health``, or raise ServerStartError."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps writing to it
        try:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                env=light_server_env(self.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: gunicorn/uvicorn workers outlive the parent, so we stop the group.
                start_new_session=True,
            )
        finally:
            log.close()
        try:
            wait_until_ready(self.url, deadline, process=self.process, log_path=self.log_path)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, deadline: float = 15.0) -> None:
        """Stop the whole process group: SIGTERM, wait until the deadline, then SIGKILL."""
        proc = self.process
        if proc is None:
            return
        pgid = proc.pid  # start_new_session=True makes the child its own group leader
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            pass
        # Workers may still be alive after the parent exits; make sure the group is gone.
        end = time.monotonic() + deadline
        while _group_alive(pgid) and time.monotonic() < end:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        return tail(self.log_path, lines)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not Path(path).exists():
        return ""
    text = Path(path).read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def wait_until_ready(
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
                f"mlflow server exited with code {process.returncode} before it was ready.\n"
                f"Its log ({log_path}) ends with:\n{tail(log_path)}"
            )
        try:
            resp = requests.get(f"{url}/health", timeout=2)
            if resp.status_code == 200:
                return
            last_error = f"/health answered HTTP {resp.status_code}"
        except requests.RequestException as exc:
            last_error = type(exc).__name__
        time.sleep(0.2)
    raise ServerStartError(
        f"mlflow server at {url} was not ready after {deadline:.0f}s ({last_error}).\n"
        f"Its log ({log_path}) ends with:\n{tail(log_path)}"
    )
