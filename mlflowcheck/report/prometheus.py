"""The monitoring probe's cycles in Prometheus' text format (prometheus-client renders them):
for --serve-probe's answers and --prom-textfile's file (node_exporter's textfile collector).

One family per fact, the overall verdict and each check's in the same family (the overall one
without a ``check`` label), as blackbox_exporter's ``probe_success`` is alerted on:
``mlflowcheck_probe_success{check=""} == 0``. Credentials are never in a label: the target
is its configured name or its URL without user info.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest, write_to_textfile
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from mlflowcheck.core.monitoring import Cycle

SUCCESS = "mlflowcheck_probe_success"
DURATION = "mlflowcheck_probe_duration_seconds"
LAST_SUCCESS = "mlflowcheck_probe_last_success_timestamp_seconds"
REQUESTS = "mlflowcheck_probe_requests"
SERVER = "mlflowcheck_server"


class CycleCollector:
    """prometheus-client's collector for one cycle and its target's last success (None: none known)."""

    def __init__(self, cycle: Cycle, last_success: float | None):
        self.cycle = cycle
        self.last_success = last_success

    def collect(self):
        c = self.cycle
        success = GaugeMetricFamily(SUCCESS, "1 if the probe's check passed (no check label: the whole cycle), else 0")
        duration = GaugeMetricFamily(DURATION, "How long the probe's check took (no check label: the whole cycle)")
        success.samples.append(Sample(SUCCESS, {"target": c.target}, float(c.ok)))
        duration.samples.append(Sample(DURATION, {"target": c.target}, c.seconds))
        for step in c.steps:
            if step.ok is None:  # not supported by this server: neither a success nor a failure
                continue
            labels = {"target": c.target, "check": step.name}
            success.samples.append(Sample(SUCCESS, labels, float(step.ok)))
            duration.samples.append(Sample(DURATION, labels, round(step.seconds, 4)))
        yield success
        yield duration
        requests = GaugeMetricFamily(REQUESTS, "HTTP requests the cycle sent to the server", labels=["target"])
        requests.add_metric([c.target], c.requests)
        yield requests
        if self.last_success is not None:
            last = GaugeMetricFamily(LAST_SUCCESS, "When the last passing cycle ended, Unix time", labels=["target"])
            last.add_metric([c.target], self.last_success)
            yield last
        if c.version:
            server = InfoMetricFamily(SERVER, "Which server answers at the target, and its version", labels=["target"])
            server.add_metric([c.target], {"product": c.product, "version": c.version})
            yield server


def last_success_of(cycle: Cycle, before: float | None) -> float | None:
    """The last success after this cycle: its end if it passed, else what was known before."""
    return round(cycle.started + cycle.seconds, 3) if cycle.ok else before


def exposition(cycle: Cycle, last_success: float | None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CycleCollector(cycle, last_success))
    return generate_latest(registry)


def previous_last_success(path: Path, target: str) -> float | None:
    """The last success an earlier run wrote to the textfile, for the same target (cron runs
    keep no memory of their own)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    with contextlib.suppress(ValueError):  # a file that is not the textfile format: start afresh
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS and sample.labels.get("target") == target:
                    return sample.value
    return None


def write_textfile(path: Path, cycle: Cycle) -> None:
    """Write the cycle for node_exporter's textfile collector: to a temporary file beside it,
    then renamed over it (prometheus-client's write_to_textfile), so the collector never reads
    half a file."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CycleCollector(cycle, last_success_of(cycle, previous_last_success(path, cycle.target))))
    write_to_textfile(str(path), registry)
