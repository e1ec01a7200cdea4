"""The cost of --fingerprint on a big server: RUNS runs of POINTS metric points each (default
10,000 × 100), loaded in bulk by MLflow's own SQL store into a fresh SQLite database, served by
a light `mlflow server`; then `test_mlflow_local.py --fingerprint --scope all --artifacts none`
and `--compare` of the same server. Prints the time, the requests made, the manifest's size and
the suite process's peak memory (PSS, sampled every 0.1 s), for each.

    python benchmarks/bench_fingerprint.py [--runs 10000] [--points 100]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlflowcheck.runtime.server import LocalServer  # noqa: E402

ENTRY = ROOT / "test_mlflow_local.py"


def load(db: Path, runs: int, points: int) -> float:
    """Write the runs straight into the database with MLflow's SQL store (the server is not up yet)."""
    from mlflow.entities import Metric, Param, RunStatus
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    started = time.monotonic()
    store = SqlAlchemyStore(f"sqlite:///{db}", str(db.parent / "mlartifacts"))
    experiment = store.create_experiment("本地测试实验_bulk")
    now = int(time.time() * 1000)
    for i in range(runs):
        run = store.create_run(experiment, "bench", now + i, [], f"run-{i}")
        metrics = [Metric("loss", 1.0 / (step + 1), now + step, step) for step in range(points)]
        store.log_batch(run.info.run_id, metrics=metrics, params=[Param("i", str(i))], tags=[])
        store.update_run_info(run.info.run_id, RunStatus.FINISHED, now + i + 1, None)
        if i and i % 1000 == 0:
            print(f"  loaded {i} runs", flush=True)
    return time.monotonic() - started


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def timed_suite(args: list[str], cwd: Path, report: Path) -> dict:
    peak = [0]
    started = time.monotonic()
    command = [sys.executable, str(ENTRY), "--json", str(report), *args]
    proc = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
    )

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], pss_kib(proc.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate(timeout=3600)
    sampler.join()
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"the suite failed ({proc.returncode}):\n{out}")
    return {"seconds": seconds, "peak_mib": peak[0] / 1024, "report": json.loads(report.read_text())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fingerprint-") as tmp:
        work = Path(tmp)
        (work / "server").mkdir()
        db = work / "server" / "my.db"
        print(f"loading {args.runs} runs x {args.points} points ...", flush=True)
        loaded = load(db, args.runs, args.points)
        print(f"  loaded in {loaded:.1f}s ({db.stat().st_size / 2**20:.0f} MiB of SQLite)")
        with LocalServer(workdir=work / "server", backend_store_uri=f"sqlite:///{db}") as srv:
            manifest = work / "manifest.jsonl"
            made = timed_suite(["--tracking-uri", srv.url, "--fingerprint", str(manifest), "--scope", "all",
                                "--artifacts", "none"], work, work / "f.json")  # fmt: skip
            trailer = json.loads(manifest.read_text(encoding="utf-8").rstrip("\n").rsplit("\n", 1)[-1])
            again = timed_suite(["--tracking-uri", srv.url, "--compare", str(manifest)], work, work / "c.json")
        print("\nResults:")
        print(
            f"fingerprint: {args.runs} runs x {args.points} points in {made['seconds']:.1f}s (the check "
            f"{trailer['seconds']:.1f}s), {trailer['requests']} requests, manifest "
            f"{manifest.stat().st_size / 2**20:.1f} MiB, peak memory {made['peak_mib']:.0f} MiB"
        )
        kinds = again["report"]["compare"]["kinds"]
        equal = sum(c["equal"] for c in kinds.values())
        print(f"compare:     {again['seconds']:.1f}s, {equal} objects equal, peak memory {again['peak_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
