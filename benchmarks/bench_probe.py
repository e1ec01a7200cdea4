"""Benchmark: what one monitoring probe cycle costs, as cron runs it and as the exporter runs it.

    python benchmarks/bench_probe.py [--cycles 20] [--backend sqlite|postgresql]

One light server (`mlflow server --workers 1`) in a temporary directory (a throwaway database on
the local PostgreSQL with --backend postgresql). Then --cycles runs of `--probe` as separate
processes (a cron job: each pays MLflow's import), and --cycles scrapes of one `--serve-probe`
exporter (its target's process imports MLflow once). Prints, for each, the cycle's time (median,
p95, max, from the probe's own JSON or metrics), the requests per cycle (the probe's count; the
server's access log counts the same) and the wall time and peak memory of a cron run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from mlflowcheck.runtime.processes import stop_group  # noqa: E402
from mlflowcheck.runtime.server import LocalServer, free_port  # noqa: E402
from tests.databases import throwaway_database  # noqa: E402

ENTRY = ROOT / "test_mlflow_local.py"


def cron_runs(url: str, cycles: int, tmp: Path) -> dict:
    seconds, requests_, walls, peaks = [], [], [], []
    for i in range(cycles):
        report = tmp / f"cycle-{i}.json"
        started = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", sys.executable, str(ENTRY), "--probe", "--tracking-uri", url,
             "--json", str(report)],
            capture_output=True, text=True, timeout=120, cwd=tmp,
        )  # fmt: skip
        walls.append(time.perf_counter() - started)
        if proc.returncode != 0:
            raise SystemExit(f"--probe failed:\n{proc.stdout}{proc.stderr}")
        peaks.append(int(proc.stderr.strip().splitlines()[-1]) / 1024)
        doc = json.loads(report.read_text())
        seconds.append(doc["seconds"])
        requests_.append(doc["requests"])
    return {"cycle_s": seconds, "requests": requests_, "wall_s": walls, "peak_mib": peaks}


def exporter_scrapes(url: str, cycles: int, tmp: Path) -> dict:
    port = free_port()
    with open(tmp / "exporter.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(ENTRY), "--serve-probe", f"127.0.0.1:{port}", "--tracking-uri", url],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp,
        )  # fmt: skip
    seconds, requests_ = [], []
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(base + "/metrics", timeout=2).ok:
                    break
            if time.monotonic() > deadline:
                raise SystemExit((tmp / "exporter.log").read_text())
            time.sleep(0.1)
        requests.get(base + "/probe", params={"target": url}, timeout=60)  # the first waits for the import
        for _ in range(cycles):
            text = requests.get(base + "/probe", params={"target": url}, timeout=60).text
            if not re.search(r'^mlflowcheck_probe_success\{target="[^"]+"\} 1\.0$', text, re.MULTILINE):
                raise SystemExit(f"a cycle failed:\n{text}")
            seconds.append(float(re.search(r'^mlflowcheck_probe_duration_seconds\{target="[^"]+"\} (\S+)$', text,
                                           re.MULTILINE).group(1)))  # fmt: skip
            requests_.append(float(re.search(r"^mlflowcheck_probe_requests\{[^}]*\} (\S+)$", text, re.M).group(1)))
    finally:
        stop_group(proc)
    return {"cycle_s": seconds, "requests": requests_}


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):.2f}, p95 {p95:.2f}, max {ordered[-1]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp_name:
        tmp = Path(tmp_name)
        with contextlib.ExitStack() as stack:
            uri = "sqlite:///my.db"
            if args.backend == "postgresql":
                uri = stack.enter_context(throwaway_database("postgresql", tmp)).uri
            server = LocalServer(workdir=tmp / "server", backend_store_uri=uri).start()
            stack.callback(server.stop)
            cron = cron_runs(server.url, args.cycles, tmp)
            scraped = exporter_scrapes(server.url, args.cycles, tmp)
    print(f"{args.cycles} cycles each against a light server on {args.backend}")
    print(f"cron (--probe, a process per cycle): cycle s {summary(cron['cycle_s'])}; wall s {summary(cron['wall_s'])}; "
          f"peak {max(cron['peak_mib']):.0f} MiB; requests {summary(cron['requests'])}")  # fmt: skip
    print(f"exporter (--serve-probe, warm):       cycle s {summary(scraped['cycle_s'])}; "
          f"requests {summary(scraped['requests'])}")  # fmt: skip


if __name__ == "__main__":
    main()
