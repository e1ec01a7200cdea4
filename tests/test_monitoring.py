"""The monitoring probe against real servers: --probe, --prom-textfile (checked by promtool),
--serve-probe scraped by a real Prometheus whose alert rules (the README's) fire when the
server breaks, and the footprint of a probe every 2 seconds for 2 minutes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml
from mlflow import MlflowClient
from mlflow.entities import ViewType

from mlflowcheck.core.monitoring import PROBE_CHECKS, PROBE_MODEL_PREFIX
from mlflowcheck.runtime.server import free_port
from tests.support import ADMIN_PASSWORD, ENTRY, ROOT
from tests.test_diagnosis import old_python
from tests.test_support_matrix import fasttrackml  # noqa: F401 (a fixture: FastTrackML's own server)

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def probe(tmp_path: Path, *args: str, env: dict | None = None, timeout: float = 120) -> tuple[int, str, dict | None]:
    report = tmp_path / f"probe-{time.monotonic_ns()}.json"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | (env or {})
    proc = subprocess.run(
        [sys.executable, str(ENTRY), "--probe", "--json", str(report), *args],
        cwd=tmp_path, env=full_env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    doc = json.loads(report.read_text(encoding="utf-8")) if report.exists() else None
    return proc.returncode, proc.stdout + proc.stderr, doc


def steps(doc: dict) -> dict[str, bool | None]:
    return {s["name"]: s["ok"] for s in doc["steps"]}


def live_footprint(url: str, experiment: str = "mlflowcheck-probe") -> dict[str, int]:
    client = MlflowClient(url)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], run_view_type=ViewType.ACTIVE_ONLY) if found else []
    traces = client.search_traces(locations=[found.experiment_id]) if found else []
    return {
        "experiments": len(client.search_experiments(view_type=ViewType.ACTIVE_ONLY, max_results=1000)),
        "runs": len(client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=1000)),
        "probe runs": len(runs),
        "probe traces": len(traces),
        "probe models": len(client.search_registered_models(f"name LIKE '{PROBE_MODEL_PREFIX}%'")),
    }


def test_a_probe_of_a_healthy_server_passes_every_step_and_deletes_what_it_wrote(server, tmp_path):
    textfile = tmp_path / "mlflow_probe.prom"
    code, output, doc = probe(tmp_path, "--tracking-uri", server.url, "--prom-textfile", str(textfile))
    assert code == 0, output
    assert steps(doc) == dict.fromkeys(
        ["server", "experiment", "run", "param", "metric", "artifact", "trace", "registry", "cleanup"], True
    ), output
    assert f"Probe of {server.url}: PASS in " in output
    assert doc["requests"] > 10
    assert doc["version"]
    assert doc["product"] == "MLflow"
    after = live_footprint(server.url)
    assert (after["probe runs"], after["probe traces"], after["probe models"]) == (0, 0, 0), after
    # The textfile is what node_exporter's collector reads: promtool accepts it.
    lint = subprocess.run([PROMTOOL, "check", "metrics"], input=textfile.read_text(), capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    text = textfile.read_text()
    assert f'mlflowcheck_probe_success{{target="{server.url}"}} 1.0' in text
    assert f'mlflowcheck_probe_success{{check="artifact",target="{server.url}"}} 1.0' in text
    assert re.search(r'mlflowcheck_server_info\{product="MLflow",target="[^"]+",version="3\.', text), text
    assert "mlflowcheck_probe_last_success_timestamp_seconds" in text


def test_a_server_that_is_not_mlflow_passes_what_it_has_and_its_missing_registry_is_no_failure(
    fasttrackml,  # noqa: F811
    tmp_path,
):
    textfile = tmp_path / "mlflow_probe.prom"
    code, output, doc = probe(tmp_path, "--tracking-uri", fasttrackml.url, "--prom-textfile", str(textfile))
    assert code == 0, output
    assert doc["product"] == "FastTrackML"
    assert steps(doc)["registry"] is None  # FastTrackML has no model registry
    assert steps(doc)["trace"] is None
    assert steps(doc)["artifact"] is True
    assert "  MISS  registry" in output
    assert "does not implement POST /api/2.0/mlflow/registered-models/create" in output
    text = textfile.read_text()
    assert 'check="registry"' not in text
    assert 'product="FastTrackML"' in text


def test_a_probe_of_the_seeds_mlflow_3_1_4_server_passes_without_the_trace_it_predates(fresh_server, tmp_path):
    srv = fresh_server(python=old_python("3.1.4"))
    code, output, doc = probe(tmp_path, "--tracking-uri", srv.url)
    assert code == 0, output
    assert doc["version"] == "3.1.4"
    assert steps(doc) == {**dict.fromkeys(PROBE_CHECKS, True), "trace": None}, output
    assert live_footprint(srv.url)["probe runs"] == 0


def test_a_failed_probe_exits_1_names_the_cause_and_keeps_the_textfiles_last_success(server, tmp_path):
    textfile = tmp_path / "mlflow_probe.prom"
    assert probe(tmp_path, "--tracking-uri", server.url, "--prom-textfile", str(textfile))[0] == 0
    before = re.search(r"last_success_timestamp_seconds\{[^}]*\} (\S+)", textfile.read_text()).group(1)
    # The same target label, nothing listening: a cron run's textfile keeps when it last passed.
    dead = f"http://127.0.0.1:{free_port('127.0.0.1')}"
    code, output, doc = probe(tmp_path, "--tracking-uri", dead, "--prom-textfile", str(tmp_path / "dead.prom"))
    assert code == 1, output
    assert steps(doc)["server"] is False
    assert doc["ok"] is False
    assert f"Nothing answers at {dead}" in output
    assert "Tip: is the server running" in output
    assert "Traceback" not in output
    assert 'mlflowcheck_probe_success{target="' + dead + '"} 0.0' in (tmp_path / "dead.prom").read_text()
    textfile.write_text(textfile.read_text().replace(server.url, dead))
    probe(tmp_path, "--tracking-uri", dead, "--prom-textfile", str(textfile))
    assert re.search(r"last_success_timestamp_seconds\{[^}]*\} (\S+)", textfile.read_text()).group(1) == before


class Exporter:
    """`--serve-probe` as the operator runs it, in its own process group."""

    def __init__(self, tmp_path: Path, *args: str, env: dict | None = None):
        self.port = free_port("127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"exporter-{self.port}.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | (env or {})
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(ENTRY), "--serve-probe", f"127.0.0.1:{self.port}", *args],
                cwd=tmp_path, env=full_env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(self.url + "/metrics", timeout=2).raise_for_status()
                return
            except requests.RequestException:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"the exporter did not start:\n{self.output()}", pytrace=False)
                time.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def scrape(self, target: str, timeout: float = 30, **headers) -> requests.Response:
        return requests.get(self.url + "/probe", params={"target": target}, headers=headers, timeout=timeout)

    def stop(self) -> None:
        with_deadline(self.proc)


def with_deadline(proc: subprocess.Popen) -> None:
    """SIGTERM to the group, a deadline, then SIGKILL."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # what it started and left (none, if it stopped them)


@pytest.fixture
def exporter(tmp_path):
    started: list[Exporter] = []

    def start(*args: str, env: dict | None = None) -> Exporter:
        started.append(Exporter(tmp_path, *args, env=env))
        return started[-1]

    yield start
    for e in started:
        e.stop()


def value(text: str, labels: str) -> float | None:
    match = re.search(r"^mlflowcheck_probe_success\{" + re.escape(labels) + r"\} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def test_the_exporter_probes_only_its_targets_and_runs_one_cycle_at_a_time_per_target(server, exporter):
    e = exporter("--tracking-uri", server.url)
    refused = e.scrape("http://169.254.169.254/latest/meta-data")
    assert refused.status_code == 400
    assert "only its configured targets" in refused.text
    assert "169.254" not in refused.text
    answers: list[requests.Response] = []
    threads = [threading.Thread(target=lambda: answers.append(e.scrape(server.url))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all(value(a.text, f'target="{server.url}"') == 1.0 for a in answers), answers[0].text
    assert len({a.text for a in answers}) == 1  # one cycle's answer, shared
    own = requests.get(e.url + "/metrics", timeout=10).text
    assert f'mlflowcheck_exporter_cycles_total{{result="passed",target="{server.url}"}} 1.0' in own, own
    assert "process_resident_memory_bytes" in own


def test_a_hung_server_is_a_failed_cycle_within_the_scrapes_own_timeout(exporter, tmp_path):
    # A listener that accepts and never answers: the cycle must end by Prometheus' deadline.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    try:
        e = exporter("--tracking-uri", url)
        started = time.monotonic()
        answer = e.scrape(url, **{"X-Prometheus-Scrape-Timeout-Seconds": "3"})
        took = time.monotonic() - started
    finally:
        silent.close()
    assert answer.status_code == 200
    assert value(answer.text, f'target="{url}"') == 0.0
    assert value(answer.text, f'check="server",target="{url}"') == 0.0
    assert took < 5.0, took


def test_credentials_come_from_the_exporters_config_and_never_reach_the_metrics(auth_server, exporter, tmp_path):
    config = tmp_path / "probe.toml"
    config.write_text(
        f'[targets.team]\nurl = "{auth_server.url}"\nusername_env = "TEAM_USER"\npassword_env = "TEAM_PASSWORD"\n'
        f'[targets.anonymous]\nurl = "{auth_server.url}"\n'
    )
    e = exporter("--probe-config", str(config), env={"TEAM_USER": "admin", "TEAM_PASSWORD": ADMIN_PASSWORD})
    team = e.scrape("team")
    assert value(team.text, 'target="team"') == 1.0, team.text + e.output()
    anonymous = e.scrape("anonymous")
    assert value(anonymous.text, 'check="experiment",target="anonymous"') == 0.0
    everything = team.text + anonymous.text + requests.get(e.url + "/metrics", timeout=10).text + e.output()
    assert ADMIN_PASSWORD not in everything
    assert "UNAUTHENTICATED" in e.output() or "401" in e.output() or "credentials" in e.output()


def readme_block(name: str) -> dict:
    """The README's YAML block after ``<!-- NAME -->``: the tests run what the README shows."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- {name} -->\n```yaml\n(.*?)```", text, re.DOTALL)
    assert match, f"the README has no yaml block marked <!-- {name} -->"
    return yaml.safe_load(match.group(1))


class Prometheus:
    """Debian's prometheus on a free port, with its own config and data directory."""

    def __init__(self, tmp_path: Path, config: dict, rules: dict):
        if not Path(PROMETHEUS).exists():
            pytest.fail("prometheus is not installed (.ci/run installs Debian's package)", pytrace=False)
        directory = tmp_path / "prometheus"
        directory.mkdir()
        (directory / "rules.yml").write_text(yaml.safe_dump(rules))
        config = {**config, "rule_files": [str(directory / "rules.yml")]}
        (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        lint = subprocess.run([PROMTOOL, "check", "config", str(directory / "prometheus.yml")], capture_output=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr
        self.url = f"http://127.0.0.1:{free_port('127.0.0.1')}"
        self.log = directory / "prometheus.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={directory / 'prometheus.yml'}",
                 f"--storage.tsdb.path={directory / 'data'}", f"--web.listen-address={self.url[7:]}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self.wait_for(lambda: requests.get(self.url + "/-/ready", timeout=2).status_code == 200, 60, "ready")

    def wait_for(self, condition, seconds: float, what: str):
        deadline = time.monotonic() + seconds
        while True:
            try:
                got = condition()
                if got:
                    return got
            except (requests.RequestException, KeyError, IndexError, ValueError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Prometheus: not {what} within {seconds}s\n{self.log.read_text()[-3000:]}", pytrace=False)
            time.sleep(0.5)

    def query(self, expr: str) -> float | None:
        answer = requests.get(self.url + "/api/v1/query", params={"query": expr}, timeout=5).json()
        result = answer["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def firing(self) -> set[str]:
        alerts = requests.get(self.url + "/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}

    def stop(self) -> None:
        with_deadline(self.proc)


def test_prometheus_scrapes_the_probe_sees_the_broken_check_by_name_and_fires_the_readmes_alert(
    fresh_server, exporter, tmp_path
):
    srv = fresh_server()
    e = exporter("--tracking-uri", srv.url)
    config = readme_block("prometheus-scrape")
    for job in config["scrape_configs"]:  # the README's jobs, pointed at this test's exporter and server
        job["scrape_interval"], job["scrape_timeout"] = "2s", "2s"
        for static in job["static_configs"]:
            static["targets"] = [e.url[7:]] if job["job_name"].endswith("exporter") else [srv.url]
        for rule in job.get("relabel_configs", []):
            if rule.get("target_label") == "__address__":
                rule["replacement"] = e.url[7:]
    config["global"] = {"evaluation_interval": "1s"}
    rules = readme_block("prometheus-rules")
    lint = subprocess.run(
        [PROMTOOL, "check", "rules", "/dev/stdin"], input=yaml.safe_dump(rules), capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = "4s"  # the README waits minutes; the test, seconds
    prometheus = Prometheus(tmp_path, config, rules)
    try:
        prometheus.wait_for(lambda: prometheus.query('mlflowcheck_probe_success{check=""}') == 1.0, 60, "PASS")
        assert prometheus.query('mlflowcheck_probe_success{check="trace"}') == 1.0
        # The exporter's own job is scraped on its own schedule: its first sample may come later.
        prometheus.wait_for(lambda: prometheus.query('up{job=~".*exporter"}') == 1.0, 30, "scraping the exporter")
        # The artifact store breaks (its root replaced by a file: every write under it fails, as on
        # a read-only or lost volume): that check fails by name, the tracking checks stay green.
        artifacts = srv.workdir / "mlartifacts"
        shutil.rmtree(artifacts)
        artifacts.write_text("not a directory")
        prometheus.wait_for(lambda: prometheus.query('mlflowcheck_probe_success{check="artifact"}') == 0.0, 60, "red")
        assert prometheus.query('mlflowcheck_probe_success{check="metric"}') == 1.0
        assert prometheus.query('mlflowcheck_probe_success{check=""}') == 0.0
        prometheus.wait_for(lambda: "MLflowProbeCheckFailing" in prometheus.firing(), 60, "firing the check's alert")
        # Then the server stops: the whole probe fails, and the alert fires.
        srv.stop()
        prometheus.wait_for(lambda: prometheus.query('mlflowcheck_probe_success{check="server"}') == 0.0, 60, "down")
        prometheus.wait_for(lambda: "MLflowProbeFailing" in prometheus.firing(), 60, "firing the probe's alert")
    finally:
        prometheus.stop()
    assert "Traceback" not in e.output()


def test_a_probe_every_two_seconds_for_two_minutes_leaves_the_live_counts_unchanged(fresh_server, exporter):
    srv = fresh_server()
    e = exporter("--tracking-uri", srv.url)
    assert value(e.scrape(srv.url).text, f'target="{srv.url}"') == 1.0  # creates the probe's experiment
    before = live_footprint(srv.url)
    end = time.monotonic() + 120
    cycles = 0
    while time.monotonic() < end:
        started = time.monotonic()
        answer = e.scrape(srv.url)
        assert value(answer.text, f'target="{srv.url}"') == 1.0, answer.text + e.output()
        cycles += 1
        time.sleep(max(0.0, 2.0 - (time.monotonic() - started)))
    after = live_footprint(srv.url)
    assert after == before, (before, after)
    assert after["probe runs"] == after["probe traces"] == after["probe models"] == 0
    assert cycles >= 55
