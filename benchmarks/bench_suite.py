"""Benchmark: the whole suite against a seed-style script (log the same run, verify nothing).

    python benchmarks/bench_suite.py [--runs 7] [--backends sqlite,postgresql,mariadb]

Starts one warm light server per backend in a temporary directory (throwaway databases on
the local PostgreSQL and MariaDB), runs both scripts as a user would (fresh processes),
alternating, and prints each run's wall time, the medians and the median ratio suite/seed.
Target: ratio <= 0.6 on SQLite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlflowcheck.server import LocalServer  # noqa: E402
from tests.databases import throwaway_database  # noqa: E402

# The seed-style script opens no browser: compare like with like (--no-ui), and time the
# browser check on its own (browser_check_seconds).
SUITE = [sys.executable, str(ROOT / "test_mlflow_local.py"), "--no-ui", "--tracking-uri"]
SEED = [sys.executable, str(ROOT / "benchmarks" / "seed_style.py")]


def timed(cmd: list[str], cwd: Path) -> float:
    """Wall seconds of one fresh process, start to exit."""
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return seconds


def browser_check_seconds(url: str, cwd: Path, runs: int) -> list[float]:
    """The browser check's own duration, from the suite's JSON report (needs Chromium)."""
    from mlflowcheck.ui import find_browser

    if find_browser()[0] is None:
        return []
    times = []
    for i in range(runs):
        report = cwd / f"browser-{i}.json"
        cmd = [sys.executable, str(ROOT / "test_mlflow_local.py"), "--ui", "--tracking-uri", url, "--json", str(report)]
        timed([*cmd, "--screenshots", str(cwd / "shots")], cwd)
        checks = json.loads(report.read_text(encoding="utf-8"))["checks"]
        times.append(next(c["duration"] for c in checks if c["name"] == "browser"))
    return times


def bench(backend: str, runs: int, with_seed: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-{backend}-") as tmp:
        work = Path(tmp)
        with (
            throwaway_database(backend, work) as db,
            LocalServer(workdir=work / "server", backend_store_uri=db.uri) as srv,
        ):
            timed([*SUITE, srv.url], work)  # warm-up: first-request costs on the server side
            suite, seed = [], []
            for i in range(runs):
                suite.append(timed([*SUITE, srv.url], work))
                if with_seed:
                    seed.append(timed([*SEED, srv.url], work))
                line = f"  {backend:10} run {i + 1}: suite {suite[-1]:.2f}s"
                print(line + (f"  seed-style {seed[-1]:.2f}s  ratio {suite[-1] / seed[-1]:.2f}" if seed else ""))
            browser = browser_check_seconds(srv.url, work, runs) if with_seed else []
    return {"suite": suite, "seed": seed, "browser": browser}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--backends", default="sqlite,postgresql,mariadb")
    args = parser.parse_args()
    summary = []
    for backend in args.backends.split(","):
        r = bench(backend, args.runs, with_seed=backend == "sqlite")
        med = statistics.median(r["suite"])
        text = f"{backend:10} suite median {med:.2f}s (min {min(r['suite']):.2f}, max {max(r['suite']):.2f})"
        if r["seed"]:
            ratios = [a / b for a, b in zip(r["suite"], r["seed"], strict=True)]
            text += (
                f"; seed-style median {statistics.median(r['seed']):.2f}s; median ratio suite/seed "
                f"{statistics.median(ratios):.2f} (target <= 0.60)"
            )
        if r["browser"]:
            text += f"\n{'':10} browser check (--ui) median {statistics.median(r['browser']):.2f}s on top"
        summary.append(text)
    print("\n".join(["", f"Results over {args.runs} runs each (one warm light server per backend):", *summary]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
