"""Benchmark: the load probe (recording and all) against a bare loop of log_batch calls.

    python benchmarks/bench_load.py [--clients 4] [--seconds 10] [--rounds 3] [--backends sqlite,postgresql,mariadb]

For each backend, one warm light server in a temporary directory (throwaway databases on the
local PostgreSQL and MariaDB); then, alternating, the suite's load probe (`--load CLIENTS`,
through the suite as a user runs it: CLIENTS Locust users in one Locust process per core) and
a bare loop: CLIENTS processes that create a run each
and call log_batch (five metrics a call, as the probe's batches) for the same seconds,
recording nothing. Both are HTTP requests to the same server from the same number of
processes, so requests per second are compared (the probe also sends one-point log_metric
calls, params, tags and artifacts: its points per request are fewer by design). Prints each
round, the medians and the ratio probe/bare. Target: >= 0.9.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlflowcheck.runtime.server import LocalServer  # noqa: E402
from tests.databases import throwaway_database  # noqa: E402

SELECT = "uri or network or server or access or versions or experiment or params or run or load"


def bare_worker(url: str, experiment_id: str, seconds: float, go, ready, counts, index: int) -> None:
    import mlflow
    from mlflow.entities import Metric

    client = mlflow.MlflowClient(tracking_uri=url)
    run = client.create_run(experiment_id)
    ready.put(index)
    go.wait(120)
    end, step, requests = time.time() + seconds, 0, 0
    while time.time() < end:
        ts = int(time.time() * 1000)
        client.log_batch(run.info.run_id, metrics=[Metric(k, 0.5, ts, step) for k in ("a", "b", "c", "d", "e")])
        requests += 1
        step += 1
    counts[index] = requests


def bare_loop(url: str, clients: int, seconds: float) -> float:
    """Requests per second of CLIENTS processes calling log_batch as fast as they can."""
    import mlflow

    experiment_id = mlflow.MlflowClient(tracking_uri=url).create_experiment(f"bare-loop-{time.time_ns()}")
    ctx = multiprocessing.get_context("spawn")
    go, ready, counts = ctx.Event(), ctx.Queue(), ctx.Array("q", clients, lock=False)
    procs = [
        ctx.Process(target=bare_worker, args=(url, experiment_id, seconds, go, ready, counts, i))
        for i in range(clients)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    go.set()
    for p in procs:
        p.join(timeout=seconds + 120)
    return sum(counts) / seconds


def probe(url: str, clients: int, seconds: float, workdir: Path) -> dict:
    report = workdir / f"load-{time.time_ns()}.json"
    cmd = [sys.executable, str(ROOT / "test_mlflow_local.py"), "--tracking-uri", url, "--no-ui", "-k", SELECT,
           "--load", str(clients), "--load-seconds", str(seconds), "--json", str(report)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(f"the load probe failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(report.read_text())["load"]


def bench_backend(backend: str, args, tmp: Path) -> dict:
    with throwaway_database(backend, tmp) as db, LocalServer(workdir=tmp / "server", backend_store_uri=db.uri) as srv:
        rows = []
        for round_ in range(1, args.rounds + 1):
            load = probe(srv.url, args.clients, args.seconds, tmp)
            bare = bare_loop(srv.url, args.clients, args.seconds)
            worst = max(v["p95"] for v in load["latency_ms"].values())
            rows.append((load["requests_per_s"], bare, load["points_per_s"], worst, load["lost"]))
            print(
                f"  {backend:<10} round {round_}: probe {load['requests_per_s']:7.1f} req/s "
                f"({load['points_per_s']:,.0f} points/s, worst endpoint p95 {worst:.0f} ms, lost {load['lost']}), "
                f"bare log_batch loop {bare:7.1f} req/s, ratio {load['requests_per_s'] / bare:.2f}",
                flush=True,
            )
        probe_rps = statistics.median(r[0] for r in rows)
        bare_rps = statistics.median(r[1] for r in rows)
        return {
            "backend": backend, "probe_requests_per_s": probe_rps, "bare_requests_per_s": bare_rps,
            "ratio": probe_rps / bare_rps, "points_per_s": statistics.median(r[2] for r in rows),
            "worst_p95_ms": statistics.median(r[3] for r in rows), "lost": sum(r[4] for r in rows),
        }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql,mariadb")
    args = parser.parse_args()
    print(f"load probe vs bare log_batch loop: {args.clients} processes, {args.seconds:g}s, {args.rounds} rounds")
    results = []
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix=f"bench-load-{backend}-") as tmp:
            results.append(bench_backend(backend, args, Path(tmp)))
    print("\nbackend     probe req/s  bare req/s  ratio  points/s  worst p95 ms  lost")
    for r in results:
        print(f"{r['backend']:<10} {r['probe_requests_per_s']:11.1f} {r['bare_requests_per_s']:11.1f} "
              f"{r['ratio']:6.2f} {r['points_per_s']:9,.0f} {r['worst_p95_ms']:13.0f} {r['lost']:5d}")  # fmt: skip


if __name__ == "__main__":
    main()
