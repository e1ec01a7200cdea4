"""The command line: the options, the output paths checked before anything runs, and the exit.

Exit codes: 0 every required check passed; 1 a check of a required group failed or is not
supported by the server; 2 the suite could not run (no server, not an MLflow server, bad
option). The run itself is the engine's (engine.run)."""

from __future__ import annotations

import argparse
import gc
import signal
import sys
from pathlib import Path

from mlflowcheck.arguments import (
    ArgumentParser,
    VersionAction,
    checks_help,
    group_list,
    load_options,
    monitoring_options,
    positive_float,
    read_only_options,
    size_argument,
)
from mlflowcheck.core.errors import EXIT_NO_RUN, CheckFailed
from mlflowcheck.core.monitoring import DEFAULT_PROBE_TIMEOUT
from mlflowcheck.core.options import Options
from mlflowcheck.core.target import DEFAULT_TRACKING_URI
from mlflowcheck.engine.registry import SEED_GROUPS, opt_in_flags
from mlflowcheck.engine.run import run
from mlflowcheck.preflight import output_paths_problem, read_only_problem
from mlflowcheck.report.console import error

#: Without --timeout the whole run is still bounded: no wait of the suite's can hang it.
DEFAULT_TIMEOUT = 900.0


def build_parser(prog: str = "test_mlflow_local.py") -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=prog,
        description="Prove an MLflow tracking deployment works end to end: log the seed's run "
        "through the server and read every item back.",
        epilog="Exit codes: 0 every required check passed, 1 a required check failed or is unsupported by the "
        "server, 2 the suite could not run.\n\n" + checks_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keeps the list of checks one per line
    )
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        help=f"the server to test (default: $MLFLOW_TRACKING_URI, else {DEFAULT_TRACKING_URI})",
    )
    p.add_argument(
        "--start-server",
        action="store_true",
        help="start a light local mlflow server at the target address (a local address) "
        "even when it is not the default",
    )
    p.add_argument(
        "--server-dir",
        metavar="DIR",
        type=Path,
        help="where a server this suite starts keeps my.db and mlartifacts/ (default: the project directory)",
    )
    p.add_argument(
        "--backend-store-uri",
        metavar="URI",
        default="sqlite:///my.db",
        help="the tracking store of a server this suite starts (default: sqlite:///my.db)",
    )
    p.add_argument(
        "--keep-serving",
        action="store_true",
        help="after the checks, keep a server this suite started running in the "
        "foreground until Ctrl+C, to browse the results",
    )
    p.add_argument(
        "--model-format",
        choices=["skops", "pickle", "cloudpickle"],
        help="how the sklearn model is serialized (default: MLflow's default, skops)",
    )
    p.add_argument(
        "--registered-model",
        metavar="NAME",
        default=Options.registered_model,
        help="the registered model that each run adds a version to (default: %(default)s)",
    )
    p.add_argument(
        "--alias",
        metavar="NAME",
        help="the registry alias the run points at its version (default: check-<run id>, the run's own)",
    )
    p.add_argument(
        "--cleanup",
        action="store_true",
        help="after the checks, delete what this run created on the server (and nothing else)",
    )
    p.add_argument(
        "--upload-size",
        metavar="SIZE",
        type=size_argument,
        default=Options.upload_size,
        help="the size of the large artifact, e.g. 4M or 512K (default: 4M, above nginx's default 1 MB body limit)",
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="after logging, restart the server this suite started (SIGTERM) and read everything back",
    )
    load_options(p)
    p.add_argument(
        "--security",
        action="store_true",
        help="also probe the server's security posture, read-only (exposure, host protection, CORS, "
        "path traversal, headers, known advisories)",
    )
    p.add_argument(
        "--security-write",
        action="store_true",
        help="with --security: also try writes without credentials, on this run's own objects only",
    )
    read_only_options(p)
    monitoring_options(p)
    p.add_argument(
        "--ui",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="check the run in a real browser (headless Chromium); default: when a Chromium is found",
    )
    p.add_argument(
        "--screenshots",
        metavar="DIR",
        type=Path,
        help="where the browser check saves its screenshots (default: reports/screenshots)",
    )
    p.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=positive_float,
        help=f"bound the whole run (default: {DEFAULT_TIMEOUT:g}s; a probe cycle: {DEFAULT_PROBE_TIMEOUT:g}s); on "
        "expiry the verdict names the check that was running",
    )
    p.add_argument("-k", metavar="EXPR", dest="select", help="run only the checks matching this pytest -k expression")
    p.add_argument("--junitxml", metavar="PATH", help="write JUnit XML results to PATH")
    p.add_argument("--json", metavar="PATH", help="write JSON results to PATH")
    p.add_argument(
        "--summary-md",
        metavar="PATH",
        help="write the support matrix as Markdown to PATH (e.g. $GITHUB_STEP_SUMMARY)",
    )
    p.add_argument(
        "--require",
        metavar="GROUPS",
        type=group_list,
        help=f"the feature groups that must pass for exit 0, comma-separated (default: {','.join(SEED_GROUPS)}, "
        "and each group an option turns on); the others are reported in the support matrix",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="add tracebacks to failures")
    p.add_argument("--version", action=VersionAction, help="show the suite's, MLflow's and Python's versions and exit")
    return p


def main(argv: list[str] | None = None, project_dir: Path | None = None, prog: str = "test_mlflow_local.py") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    for group in args.require or ():
        flags = opt_in_flags(group)
        if flags and not any(getattr(args, f.removeprefix("--").replace("-", "_"), None) for f in flags):
            parser.error(f"--require {group}: that group runs only with {' or '.join(flags)}")
    if args.load_worker:
        return load_worker(args, parser)
    monitoring = args.probe or args.serve_probe
    if args.timeout is None:
        args.timeout = DEFAULT_PROBE_TIMEOUT if monitoring else DEFAULT_TIMEOUT
    if monitoring:
        return monitor(args, parser)
    for option, mode in (("prom_textfile", "--probe"), ("probe_config", "--serve-probe")):
        if getattr(args, option):
            parser.error(f"--{option.replace('_', '-')} belongs to {mode}")
    if args.load_master and not args.load:
        parser.error("--load-master: say how many users the workers run, e.g. --load 32 --load-master")
    problem = read_only_problem(args) or output_paths_problem(args)  # before anything is logged or started
    if problem is not None:
        error(problem)
        return EXIT_NO_RUN
    # SIGTERM (a CI timeout, `kill`) and SIGHUP (the terminal closed) would end Python without
    # running `finally`, leaving a server the suite started behind; handled like Ctrl+C,
    # everything is stopped and removed first.
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    try:
        return run(args, project_dir)
    except KeyboardInterrupt:  # outside the checks, e.g. while a server starts (it was stopped)
        sys.stderr.write("Interrupted.\n")
        return EXIT_NO_RUN
    except OSError as exc:  # a path that became unwritable during the run (the checks came first)
        if args.verbose:
            raise
        error(CheckFailed(str(exc), "check the paths given to the options and their permissions."))
        return EXIT_NO_RUN


def monitor(args, parser) -> int:
    """--probe (one cycle) and --serve-probe (the exporter): the monitoring probe, not the suite."""
    if args.probe and args.serve_probe:
        parser.error("--probe runs one cycle and --serve-probe runs one per scrape: give one of them")
    if args.serve_probe and args.prom_textfile:
        parser.error("--prom-textfile belongs to --probe; --serve-probe answers the metrics itself")
    if args.probe and args.probe_config:
        parser.error("--probe-config belongs to --serve-probe; --probe probes --tracking-uri")
    problem = output_paths_problem(args)
    if problem is not None:
        error(problem)
        return EXIT_NO_RUN
    if args.probe:
        from mlflowcheck.engine.monitor import probe

        return probe(args)
    from mlflowcheck.engine.probe_service import serve

    try:
        return serve(args)
    except CheckFailed as exc:
        error(exc)
        return EXIT_NO_RUN


def load_worker(args, parser) -> int:
    """`--load-worker`: this process becomes Locust's worker; the master sends what to load and for how long."""
    import os

    from mlflowcheck.runtime.loadrun import WORKER_POOL, locust_env, worker_command

    if args.load or args.load_master:
        parser.error("--load-worker runs users for a master; give --load on the master, not here")
    command = worker_command(args.master_host, args.master_port)
    sys.stderr.write(f"Load worker for the master at {args.master_host}:{args.master_port}: {' '.join(command)}\n")
    sys.stderr.flush()
    os.execve(command[0], command, locust_env(WORKER_POOL))
    return EXIT_NO_RUN  # not reached: execv replaces this process


def console_main(prog: str = "mlflowcheck") -> None:
    """The `mlflowcheck` command (pip install .) and `python -m mlflowcheck`: the same as
    `python test_mlflow_local.py`, with the current directory as the project directory (my.db,
    mlartifacts/, reports/)."""
    code = main(sys.argv[1:], project_dir=Path.cwd(), prog=prog)
    gc.freeze()  # exit without a last full garbage collection over MLflow's objects (docs/performance.md)
    sys.exit(code)


def interrupt(signum, frame):
    raise KeyboardInterrupt
