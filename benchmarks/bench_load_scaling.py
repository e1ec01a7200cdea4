"""Benchmark: the load probe's cost as work grows, distributed as in production.

    python benchmarks/bench_load_scaling.py [--users 1,4,16,64] [--workers 1,2] [--seconds 10]
        [--backends sqlite,postgresql] [--chart docs/load-scaling.png]

For each backend, one light server (`mlflow server --workers 1`, MLflow's default database
pool) in a temporary directory (a throwaway database on the local PostgreSQL); for each
number of users and of workers, the probe's Locust master and that many `--load-worker`
processes, the users logging for --seconds, then every acknowledged value read back as the
suite does. Prints requests/s, points/s, the worst logging endpoint's p95 (a user's start, its
run's creation, apart), errors, loss and the workers' peak memory for each, and draws the
curves per backend and workers to --chart (PNG, matplotlib), the figures beside it (.json).
`--replot` draws the chart again from that JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlflowcheck.core.loadstats import Loss, Sent, figures  # noqa: E402
from mlflowcheck.probes.load import SETUP, histories, read_back_user  # noqa: E402
from mlflowcheck.runtime import loadrun  # noqa: E402
from mlflowcheck.runtime.processes import stop_group  # noqa: E402
from mlflowcheck.runtime.server import LocalServer, free_port  # noqa: E402
from tests.databases import throwaway_database  # noqa: E402


def point(url: str, experiment_id: str, users: int, workers: int, seconds: float, tmp: Path) -> dict:
    """One master and WORKERS worker processes on loopback; the figures, loss included."""
    port = free_port()
    plan = loadrun.Plan(url=url, experiment_id=experiment_id, users=users, seconds=seconds, master=True,
                        master_bind_host="127.0.0.1", master_bind_port=port, expect_workers=workers,
                        workdir=tmp)  # fmt: skip
    procs = [
        subprocess.Popen(
            loadrun.worker_command("127.0.0.1", port),
            env=loadrun.locust_env(loadrun.WORKER_POOL),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        for _ in range(workers)
    ]
    peak = {"rss": 0}
    try:
        ledger = loadrun.run(plan, progress=lambda _: peak.update(rss=max(peak["rss"], rss_mib(procs))))
    finally:
        for p in procs:
            stop_group(p)
    sent = [Sent.from_ledger(u) for u in ledger["users"]]
    import mlflow

    suite = SimpleNamespace(client=mlflow.MlflowClient(tracking_uri=url), tmp=tmp)
    total, held = Loss(), histories(suite.client, sent)
    for s in sent:
        total.add(read_back_user(suite, s, held))
    timed = [r for s in sent for r in s.requests if r[0] not in SETUP]
    started = min(r[1] for r in timed)
    result = figures(sent, started, min(max(r[2] for r in timed) - started, plan.ramp + seconds), total)
    # The logging endpoints' worst p95: a user's start (its run's creation, the first connection) apart.
    worst = max((v["p95"] for k, v in result.latency_ms.items() if k not in SETUP), default=0.0)
    return {
        "users": users, "workers": workers, "requests_per_s": result.requests_per_s,
        "points_per_s": result.points_per_s, "worst_p95_ms": worst, "errors": sum(result.errors.values()),
        "lost": total.total, "worker_rss_mib": peak["rss"],
    }  # fmt: skip


def rss_mib(procs: list[subprocess.Popen]) -> float:
    """The workers' resident memory now, summed over each one's process group (Linux's /proc)."""
    total = 0
    groups = {p.pid for p in procs}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if os.getpgid(int(entry.name)) in groups:
                    fields = (entry / "statm").read_text().split()
                    total += int(fields[1]) * os.sysconf("SC_PAGE_SIZE")
    return total / 2**20


def chart(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for backend in sorted({r["backend"] for r in rows}):
        for workers in sorted({r["workers"] for r in rows}):
            mine = sorted((r for r in rows if r["backend"] == backend and r["workers"] == workers),
                          key=lambda r: r["users"])  # fmt: skip
            label = f"{backend}, {workers} worker{'s' if workers > 1 else ''}"
            users = [r["users"] for r in mine]
            line = axes[0].plot(users, [r["requests_per_s"] for r in mine], marker="o", label=label)[0]
            axes[1].plot(users, [r["worst_p95_ms"] for r in mine], marker="o", label=label)
            for r in mine:
                if r["errors"]:  # where it stops holding: requests failed
                    axes[0].annotate(f"{r['errors']} errors", (r["users"], r["requests_per_s"]), fontsize=7,
                                     color=line.get_color(), xytext=(4, -10), textcoords="offset points")  # fmt: skip
    for ax, title in zip(axes, ("requests/s", "worst endpoint p95 (ms)"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("load users")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylim(bottom=0)
    axes[1].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Load probe on one light mlflow server ({os.cpu_count()} cores, server and users on one machine)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", default="1,4,16,64")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--chart", type=Path, default=ROOT / "docs" / "load-scaling.png")
    parser.add_argument("--replot", action="store_true", help="only draw --chart again from its .json")
    args = parser.parse_args()
    figures_path = args.chart.with_suffix(".json")
    if args.replot:
        chart(json.loads(figures_path.read_text()), args.chart)
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the servers and workers on the way out
    rows = []
    print(f"{'backend':<11}{'users':>6}{'workers':>8}{'req/s':>9}{'points/s':>10}{'worst p95 ms':>13}"
          f"{'errors':>8}{'lost':>6}{'worker MiB':>11}", flush=True)  # fmt: skip
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix=f"bench-scaling-{backend}-") as tmp:
            tmp = Path(tmp)
            with throwaway_database(backend, tmp) as db, LocalServer(tmp / "server", backend_store_uri=db.uri) as srv:
                import mlflow

                experiment_id = mlflow.MlflowClient(srv.url).create_experiment(f"scaling-{time.time_ns()}")
                for workers in map(int, args.workers.split(",")):
                    for users in map(int, args.users.split(",")):
                        if users < workers:
                            continue
                        row = {"backend": backend, **point(srv.url, experiment_id, users, workers, args.seconds, tmp)}
                        rows.append(row)
                        print(f"{backend:<11}{users:>6}{workers:>8}{row['requests_per_s']:>9.1f}"
                              f"{row['points_per_s']:>10,.0f}{row['worst_p95_ms']:>13,.0f}{row['errors']:>8}"
                              f"{row['lost']:>6}{row['worker_rss_mib']:>11.0f}", flush=True)  # fmt: skip
    figures_path.write_text(json.dumps(rows, indent=1) + "\n")
    chart(rows, args.chart)
    print(f"chart: {args.chart}, figures: {figures_path}")


if __name__ == "__main__":
    main()
