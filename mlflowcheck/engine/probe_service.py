"""`--serve-probe HOST:PORT`: the monitoring probe as an exporter in blackbox_exporter's style.

``GET /probe?target=NAME`` runs one cycle against that target and answers its metrics;
``/metrics`` is the exporter's own health. Only the operator's targets can be probed (from
--probe-config, else the one --tracking-uri): a caller names one, it never hands in a URL
to reach. Each target has its own process (engine.probe_worker) with its credentials, and one
cycle at a time: a scrape that comes while a cycle runs gets that cycle's answer. A cycle's
deadline is --timeout, shortened to the scrape's own (``X-Prometheus-Scrape-Timeout-Seconds``,
less half a second, as blackbox_exporter does); a process that overruns it is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.monitoring import Cycle, ProbeTarget, read_targets
from mlflowcheck.core.secrets import Credentials, env_credentials, scrub, split_credentials
from mlflowcheck.core.target import parse_target, resolve_tracking_uri
from mlflowcheck.engine.monitor import GRACE, failed_cycle, unfinished
from mlflowcheck.engine.probe_worker import READY
from mlflowcheck.report.console import printable
from mlflowcheck.report.prometheus import exposition, last_success_of
from mlflowcheck.runtime.processes import child_env, stop_group

#: What the exporter takes off the scrape's timeout, for the answer's way back.
SCRAPE_MARGIN = 0.5
#: How long a target's process may take to import MLflow before its first cycle.
#: The process's own MLflow target and credentials: a target's process gets its own instead.
CREDENTIAL_VARIABLES = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
)


class StillStarting(Exception):
    """The target's process has not finished its imports by the cycle's deadline."""


class Stats:
    """The exporter's own metrics (its /metrics), beside the process's."""

    def __init__(self):
        self.registry = CollectorRegistry()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        self.cycles = Counter(
            "mlflowcheck_exporter_cycles", "Probe cycles run, by result", ["target", "result"], registry=self.registry
        )
        self.running = Gauge(
            "mlflowcheck_exporter_cycles_in_progress", "Probe cycles running now", ["target"], registry=self.registry
        )
        self.starts = Counter(
            "mlflowcheck_exporter_worker_starts", "Target processes started", ["target"], registry=self.registry
        )


class Prober:
    """One target: its process, one cycle at a time, and its last success."""

    def __init__(self, target: ProbeTarget, stats: Stats):
        self.target = target
        self.stats = stats
        self.lock = threading.Lock()
        self.current: tuple[threading.Event, list[Cycle]] | None = None
        self.proc: subprocess.Popen | None = None
        self.buffer = b""
        self.ready = False  # the process said it imported MLflow
        self.last_success: float | None = None

    def probe(self, timeout: float) -> Cycle:
        with self.lock:
            mine = self.current is None
            if mine:
                self.current = (threading.Event(), [])
            done, results = self.current
        if not mine:  # a cycle runs already: its answer is this scrape's too
            if done.wait(timeout + GRACE) and results:
                return results[0]
            return unfinished(self.target.name, time.time(), timeout)
        self.stats.running.labels(self.target.name).inc()
        try:
            result = self.run_cycle(timeout)
            self.last_success = last_success_of(result, self.last_success)
            results.append(result)
            verdict = "passed" if result.ok else "failed"
            self.stats.cycles.labels(self.target.name, verdict).inc()
            return result
        finally:
            self.stats.running.labels(self.target.name).dec()
            with self.lock:
                self.current = None
            done.set()

    def run_cycle(self, timeout: float) -> Cycle:
        started, end = time.time(), time.monotonic() + timeout
        try:
            self.ensure_worker(end)
            left = end - time.monotonic()
            request = {"label": self.target.name, "experiment": self.target.experiment, "timeout": max(1.0, left)}
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
            return Cycle.from_dict(json.loads(self.read_line(end + GRACE)))
        except StillStarting:  # still importing MLflow: left to finish, for the next scrape
            return failed_cycle(
                self.target.name, started, "the probe's process for this target is still starting (importing MLflow)"
            )
        except TimeoutError:  # a request hung past the deadline: the process goes, and a new one comes
            self.stop()
            return unfinished(self.target.name, started, timeout)
        except (OSError, ValueError) as exc:
            self.stop()
            return failed_cycle(self.target.name, started, f"the probe's process for this target ended: {exc}")

    def start_worker(self) -> None:
        env = child_env(drop=CREDENTIAL_VARIABLES) | self.target.environment()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflowcheck.engine.probe_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own group: stopped, whatever it started, by the exporter
        )
        self.buffer, self.ready = b"", False
        self.stats.starts.labels(self.target.name).inc()
        threading.Thread(target=self.relay, args=(self.proc,), daemon=True).start()

    def ensure_worker(self, end: float) -> None:
        """A running process that has imported MLflow, by ``end`` (else StillStarting)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start_worker()
        if not self.ready:
            try:
                line = self.read_line(end)
            except TimeoutError:
                raise StillStarting from None
            if line != READY:
                raise ValueError(f"it said {line[:100]!r} instead of {READY!r}")
            self.ready = True

    def read_line(self, end: float) -> str:
        """The worker's next line, by ``end`` (TimeoutError) or its exit (ValueError)."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise ValueError(f"it exited ({self.proc.poll()})")
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode("utf-8")

    def relay(self, proc: subprocess.Popen) -> None:
        """The worker's stderr, on the exporter's, with this target's secrets masked."""
        secrets = self.secrets()
        for raw in proc.stderr:
            line = scrub(raw.decode("utf-8", "replace"), secrets)
            sys.stderr.write(printable(f"[{self.target.name}] {line}"))
            sys.stderr.flush()

    def secrets(self) -> tuple[str, ...]:
        creds = self.target.credentials
        return (creds.password,) if isinstance(creds, Credentials) else (creds,) if creds else ()

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, deadline=3.0)
            self.proc = None


def targets_of(args) -> list[ProbeTarget]:
    """The operator's targets: --probe-config's, else the one --tracking-uri (or its default)."""
    if args.probe_config:
        return read_targets(Path(args.probe_config), args.probe_experiment)
    shown, credentials = split_credentials(resolve_tracking_uri(args.tracking_uri))
    target = parse_target(shown)
    return [ProbeTarget(target.url, target.url, credentials or env_credentials(), args.probe_experiment)]


def listen_address(text: str) -> tuple[str, int]:
    """HOST:PORT ([::1]:9115, 127.0.0.1:9115, :9115 for every address) as a socket address."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise CheckFailed(
            f"--serve-probe {text!r} is not HOST:PORT.", "give an address like 127.0.0.1:9115 (or [::1]:9115)."
        )
    return host.strip("[]"), int(port)


class Exporter(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], probers: dict[str, Prober], stats: Stats, timeout: float):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.probers, self.stats, self.cycle_timeout = probers, stats, timeout
        super().__init__(address, Handler)

    def find(self, name: str | None) -> Prober | None:
        if name is None:
            return next(iter(self.probers.values())) if len(self.probers) == 1 else None
        wanted = name.rstrip("/")
        return next((p for p in self.probers.values() if wanted in (p.target.name, p.target.url)), None)


class Handler(BaseHTTPRequestHandler):
    server: Exporter

    def do_GET(self):
        parts = urlsplit(self.path)
        if parts.path == "/probe":
            self.probe(parse_qs(parts.query).get("target", [None])[0])
        elif parts.path == "/metrics":
            self.answer(200, generate_latest(self.server.stats.registry), CONTENT_TYPE_LATEST)
        elif parts.path == "/":
            names = ", ".join(self.server.probers)
            self.answer(200, f"mlflowcheck probe exporter: GET /probe?target=NAME ({names}), /metrics\n".encode())
        else:
            self.answer(404, b"not found: /probe?target=NAME or /metrics\n")

    def probe(self, name: str | None) -> None:
        prober = self.server.find(name)
        if prober is None:
            names = ", ".join(self.server.probers)
            # The caller's text is not echoed: it is not the operator's, and could hold anything.
            self.answer(400, f"unknown target: this exporter probes only its configured targets ({names})\n".encode())
            return
        timeout = self.server.cycle_timeout
        with contextlib.suppress(TypeError, ValueError):
            timeout = min(timeout, float(self.headers.get("X-Prometheus-Scrape-Timeout-Seconds")) - SCRAPE_MARGIN)
        result = prober.probe(max(1.0, timeout))
        failed = result.first_failure()
        verdict = "PASS" if result.ok else f"FAIL ({failed.name}: {failed.message})"
        sys.stderr.write(printable(f"probe {prober.target.name}: {verdict} in {result.seconds:.2f}s\n"[:400]))
        self.answer(200, exposition(result, prober.last_success), CONTENT_TYPE_LATEST)

    def answer(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # the cycles' lines say what matters; no access log
        pass


def serve(args) -> int:
    try:
        address = listen_address(args.serve_probe)
        stats = Stats()
        probers = {t.name: Prober(t, stats) for t in targets_of(args)}
        exporter = Exporter(address, probers, stats, args.timeout)
    except OSError as exc:
        raise CheckFailed(
            f"--serve-probe {args.serve_probe}: cannot listen there ({exc.strerror or exc}).",
            "give a free port on an address of this machine, e.g. 127.0.0.1:9115.",
        ) from None
    for prober in probers.values():  # they import MLflow while Prometheus has not asked yet
        prober.start_worker()
    host, port = exporter.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    sys.stdout.write(f"Probe exporter at http://{shown}:{port}/probe?target=NAME for {', '.join(probers)}\n")
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=exporter.shutdown).start())
    try:
        exporter.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        exporter.server_close()
        for prober in probers.values():
            prober.stop()
    return 0
