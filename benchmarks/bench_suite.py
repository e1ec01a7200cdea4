"""Benchmark: the suite against the seed's workflow, from cold and warm, with peak memory.

    python benchmarks/bench_suite.py [--runs 5] [--warm-backends sqlite,postgresql,mariadb]

Cold (issue 12's first goal: ratio <= 0.5), paired runs, alternating which goes first, each in
a fresh temporary directory, nothing listening:
  suite      the default command as a user runs it when nothing listens at the address: it
             starts its own light server (`--start-server` at a free port, `--server-dir` a
             temporary directory: the same path as the default 127.0.0.1:3111 and the project
             directory), runs every check with the browser check, and stops the server;
  seed       the seed's workflow: start the default `mlflow server --port P --backend-store-uri
             sqlite:///my.db`, wait until /health answers, run benchmarks/seed_style.py (the
             seed's script: the same run logged with MLflow's defaults, nothing read back),
             stop the server's process group.
Both are timed from their first process's start until everything they started has exited.

Warm (second goal: ratio <= 0.45): one light server already running per backend; the suite
with `--no-ui` against seed_style.py, fresh processes, alternating.

Memory: in separate cold runs (sampling takes CPU, so it stays out of the timed runs), every
0.1 s the proportional set size (PSS: shared pages counted once, split between the processes
that share them) of the whole process tree is summed: the suite, its model worker, its server,
Playwright's driver and Chromium's processes (Linux /proc). The peak is printed.

Timeline: the suite's own phases (its --json report's "timeline"), medians over the cold runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlflowcheck.report.console import timeline_table  # noqa: E402
from mlflowcheck.runtime.browser import find_browser  # noqa: E402
from mlflowcheck.runtime.processes import stop_group  # noqa: E402
from mlflowcheck.runtime.server import LocalServer, free_port, process_table, wait_for_server  # noqa: E402
from tests.databases import throwaway_database  # noqa: E402

ENTRY = ROOT / "test_mlflow_local.py"
SEED = ROOT / "benchmarks" / "seed_style.py"
COLD_TARGET, WARM_TARGET = 0.5, 0.45


# --- peak memory of a process tree ---------------------------------------------------------


def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in (process_table() or {}).items():
        kids.setdefault(ppid, []).append(pid)
    return kids


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class TreeMemory:
    """Samples the summed PSS of a process and all its descendants until stopped."""

    def __init__(self, root_pids: list[int], every: float = 0.1):
        self.roots, self.every = root_pids, every
        self.peak_kib, self.peak_processes = 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def add_root(self, pid: int) -> None:
        self.roots = [*self.roots, pid]

    def _run(self) -> None:
        while not self._stop.is_set():
            kids = children_map()
            seen, todo = set(), list(self.roots)
            while todo:
                pid = todo.pop()
                if pid not in seen:
                    seen.add(pid)
                    todo += kids.get(pid, [])
            total = sum(pss_kib(pid) for pid in seen)
            if total > self.peak_kib:
                self.peak_kib, self.peak_processes = total, len(seen)
            self._stop.wait(self.every)

    def stop(self) -> float:
        """Stop sampling; the peak in MiB."""
        self._stop.set()
        self._thread.join()
        return self.peak_kib / 1024


# --- the two cold workflows ------------------------------------------------------------------


def cold_suite(work: Path, sample: bool) -> dict:
    port = free_port()
    report = work / "report.json"
    command = [
        sys.executable, str(ENTRY), "--tracking-uri", f"http://127.0.0.1:{port}", "--start-server",
        "--server-dir", str(work / "server"), "--screenshots", str(work / "shots"), "--json", str(report),
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, env=clean_env())  # fmt: skip
    memory = TreeMemory([proc.pid]) if sample else None
    out, _ = proc.communicate(timeout=600)
    seconds = time.perf_counter() - started
    peak = memory.stop() if memory else None
    if proc.returncode != 0:
        raise SystemExit(f"the suite failed ({proc.returncode}):\n{out}")
    doc = json.loads(report.read_text(encoding="utf-8"))
    if any(c["name"] == "browser" and c["status"] != "passed" for c in doc["checks"]):
        raise SystemExit(f"the browser check did not pass; the cold benchmark includes it:\n{out}")
    return {"seconds": seconds, "peak_mib": peak, "timeline": doc["timeline"]}


def cold_seed(work: Path, sample: bool) -> dict:
    port = free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    server_dir = work / "server"
    server_dir.mkdir()
    started = time.perf_counter()
    with open(server_dir / "server.log", "wb") as log:
        server = subprocess.Popen(
            [str(mlflow_cli), "server", "--port", str(port), "--backend-store-uri", "sqlite:///my.db"],
            cwd=server_dir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=clean_env(),
        )  # fmt: skip
    memory = TreeMemory([server.pid]) if sample else None
    try:
        wait_for_server(f"http://127.0.0.1:{port}", 120, process=server, log_path=server_dir / "server.log")
        ready = time.perf_counter() - started
        script = subprocess.Popen([sys.executable, str(SEED), f"http://127.0.0.1:{port}"], cwd=work,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  text=True, env=clean_env())  # fmt: skip
        if memory:
            memory.add_root(script.pid)
        out, _ = script.communicate(timeout=600)
        if script.returncode != 0:
            raise SystemExit(f"seed_style.py failed ({script.returncode}):\n{out}")
        logged = time.perf_counter() - started
    finally:
        stop_group(server)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mib": memory.stop() if memory else None, "ready": ready, "logged": logged}


def clean_env() -> dict[str, str]:
    """The caller's environment without MLflow settings that would redirect either side."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def cold(runs: int, sample: bool = False) -> dict:
    suite, seed = [], []
    for i in range(runs):
        order = [("suite", cold_suite), ("seed", cold_seed)]
        if i % 2:
            order.reverse()
        for name, fn in order:
            with tempfile.TemporaryDirectory(prefix=f"bench-cold-{name}-") as tmp:
                (suite if name == "suite" else seed).append(fn(Path(tmp), sample))
        s, b = suite[-1], seed[-1]
        if sample:
            print(f"  memory run {i + 1}: suite peak {s['peak_mib']:.0f} MiB, seed workflow {b['peak_mib']:.0f} MiB")
        else:
            print(
                f"  cold run {i + 1}: suite {s['seconds']:.2f}s  seed workflow {b['seconds']:.2f}s (server ready "
                f"{b['ready']:.2f}s, logged {b['logged']:.2f}s)  ratio {s['seconds'] / b['seconds']:.2f}",
                flush=True,
            )
    return {"suite": suite, "seed": seed}


# --- warm --------------------------------------------------------------------------------------


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL, env=clean_env())  # fmt: skip
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return seconds


def warm(backend: str, runs: int, with_seed: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-warm-{backend}-") as tmp:
        work = Path(tmp)
        with (
            throwaway_database(backend, work) as db,
            LocalServer(workdir=work / "server", backend_store_uri=db.uri) as srv,
        ):
            suite_cmd = [sys.executable, str(ENTRY), "--no-ui", "--tracking-uri", srv.url]
            timed(suite_cmd, work)  # warm-up: first-request costs on the server side
            suite, seed = [], []
            for i in range(runs):
                if with_seed and i % 2:
                    seed.append(timed([sys.executable, str(SEED), srv.url], work))
                suite.append(timed(suite_cmd, work))
                if with_seed and not i % 2:
                    seed.append(timed([sys.executable, str(SEED), srv.url], work))
                line = f"  warm {backend:10} run {i + 1}: suite --no-ui {suite[-1]:.2f}s"
                if seed:
                    line += f"  seed-style {seed[-1]:.2f}s  ratio {suite[-1] / seed[-1]:.2f}"
                print(line, flush=True)
    return {"suite": suite, "seed": seed}


# --- report ------------------------------------------------------------------------------------


def median_timeline(timelines: list[list[dict]]) -> list[tuple[str, float, float]]:
    """Each phase's median start and end over the runs that have it, in order of start."""
    phases: dict[str, list[tuple[float, float]]] = {}
    for timeline in timelines:
        for p in timeline:
            phases.setdefault(p["phase"], []).append((p["start"], p["end"]))
    rows = [
        (name, statistics.median(s for s, _ in spans), statistics.median(e for _, e in spans))
        for name, spans in phases.items()
    ]
    return sorted(rows, key=lambda row: row[1])


def print_timeline(rows: list[tuple[str, float, float]], total: float) -> None:
    print(f"\nTimeline of the cold suite (median seconds since its process started; total {total:.2f}s):")
    print("\n".join(timeline_table([{"phase": n, "start": s, "end": e} for n, s, e in rows], total)))
    last_end = max(end for _, _, end in rows)
    print(f"  {last_end:6.2f} {total:6.2f}  {'':50}  (after the last check: reports, stopping the server, exit)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="paired runs of each kind (default: 5)")
    parser.add_argument("--warm-backends", default="sqlite", help="comma-separated; seed-style runs on the first")
    parser.add_argument("--memory-runs", type=int, default=2, help="cold runs of each side that sample memory")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold runs")
    parser.add_argument("--no-warm", action="store_true", help="skip the warm runs")
    args = parser.parse_args()
    if find_browser()[0] is None:
        raise SystemExit("the cold benchmark includes the browser check: install Chromium (see the README)")
    if shutil.which("mlflow", path=str(Path(sys.executable).parent)) is None:
        raise SystemExit(f"no mlflow command beside {sys.executable}")
    print(f"{os.cpu_count()} CPUs; {args.runs} paired runs each", flush=True)
    lines = []
    if not args.no_cold:
        c = cold(args.runs)
        suite_s = [r["seconds"] for r in c["suite"]]
        seed_s = [r["seconds"] for r in c["seed"]]
        ratio = statistics.median(a / b for a, b in zip(suite_s, seed_s, strict=True))
        lines.append(
            f"cold  suite (default command, browser check on) median {statistics.median(suite_s):.2f}s "
            f"(min {min(suite_s):.2f}, max {max(suite_s):.2f}); seed workflow median {statistics.median(seed_s):.2f}s "
            f"(min {min(seed_s):.2f}, max {max(seed_s):.2f}); median ratio {ratio:.2f} "
            f"(target <= {COLD_TARGET}: {'met' if ratio <= COLD_TARGET else 'NOT met'})"
        )
        print_timeline(median_timeline([r["timeline"] for r in c["suite"]]), statistics.median(suite_s))
    if not args.no_cold and args.memory_runs > 0:
        m = cold(args.memory_runs, sample=True)
        peak_suite, peak_seed = (max(r["peak_mib"] for r in m[side]) for side in ("suite", "seed"))
        lines.append(
            f"peak memory (PSS of the whole process tree, {args.memory_runs} separate runs): suite max "
            f"{peak_suite:.0f} MiB; seed workflow max {peak_seed:.0f} MiB"
        )
    for i, backend in enumerate([] if args.no_warm else args.warm_backends.split(",")):
        w = warm(backend, args.runs, with_seed=i == 0)
        text = f"warm  {backend:10} suite --no-ui median {statistics.median(w['suite']):.2f}s"
        if w["seed"]:
            ratio = statistics.median(a / b for a, b in zip(w["suite"], w["seed"], strict=True))
            text += (
                f"; seed-style median {statistics.median(w['seed']):.2f}s; median ratio {ratio:.2f} "
                f"(target <= {WARM_TARGET}: {'met' if ratio <= WARM_TARGET else 'NOT met'})"
            )
        lines.append(text)
    print("\nResults:\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
