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

from mlflowcheck.core.errors import EXIT_NO_RUN, CheckFailed
from mlflowcheck.core.manifest import SAMPLE_FILES, SAMPLE_MAX_BYTES
from mlflowcheck.core.options import Options
from mlflowcheck.core.target import DEFAULT_TRACKING_URI
from mlflowcheck.engine.registry import CHECKS, GROUPS, SEED_GROUPS, opt_in_flags
from mlflowcheck.engine.run import run
from mlflowcheck.preflight import output_paths_problem, read_only_problem
from mlflowcheck.report.console import error

#: Without --timeout the whole run is still bounded: no wait of the suite's can hang it.
DEFAULT_TIMEOUT = 900.0


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own exit code is 2 too; add the tip
        self.print_usage(sys.stderr)
        self.exit(EXIT_NO_RUN, f"{self.prog}: error: {message}\nTip: run `{self.prog} --help` for the options.\n")


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
    p.add_argument(
        "--load",
        metavar="USERS",
        type=positive_int,
        help="also run the load probe: USERS training jobs (Locust users) log at once, then every value is read back",
    )
    p.add_argument(
        "--load-seconds",
        metavar="S",
        type=positive_float,
        default=Options.load_seconds,
        help="how long each load user logs (default: %(default)gs)",
    )
    p.add_argument(
        "--load-p95-ms",
        metavar="MS",
        type=positive_float,
        help="fail the load probe when an endpoint's p95 latency exceeds MS milliseconds",
    )
    p.add_argument(
        "--load-users-per-second",
        metavar="RATE",
        type=positive_float,
        help="ramp the load users up at RATE a second (default: all at once)",
    )
    p.add_argument("--load-csv", metavar="PREFIX", help="write Locust's CSV reports (PREFIX_stats.csv and others)")
    p.add_argument("--load-html", metavar="PATH", help="write Locust's HTML report of the load to PATH")
    p.add_argument(
        "--load-master",
        action="store_true",
        help="distributed load: the users run on --expect-workers workers (`--load-worker`) that connect here",
    )
    p.add_argument(
        "--master-bind-host",
        metavar="HOST",
        default=Options.master_bind_host,
        help="with --load-master: the interface workers connect to (default: %(default)s, every interface)",
    )
    p.add_argument(
        "--master-bind-port",
        metavar="PORT",
        type=positive_int,
        default=Options.master_bind_port,
        help="with --load-master: the port workers connect to (default: %(default)s, Locust's)",
    )
    p.add_argument(
        "--expect-workers",
        metavar="K",
        type=positive_int,
        default=Options.expect_workers,
        help="with --load-master: start the load once K workers are connected (default: %(default)s)",
    )
    p.add_argument(
        "--expect-workers-max-wait",
        metavar="S",
        type=positive_float,
        default=Options.expect_workers_max_wait,
        help="with --load-master: how long to wait for them (default: %(default)gs)",
    )
    p.add_argument(
        "--load-worker",
        action="store_true",
        help="run only a load worker (Locust's) for the master at --master-host:--master-port; "
        "credentials from this machine's MLFLOW_TRACKING_* variables",
    )
    p.add_argument("--master-host", metavar="HOST", default="127.0.0.1", help="with --load-worker: the master's host")
    p.add_argument(
        "--master-port", metavar="PORT", type=positive_int, default=5557, help="with --load-worker: the master's port"
    )
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
    p.add_argument(
        "--fingerprint",
        metavar="FILE",
        help="read only: record what the server holds (in --scope) to FILE, a manifest to --compare later",
    )
    p.add_argument(
        "--compare",
        metavar="FILE",
        help="read only: fingerprint the server again and compare with FILE (an earlier --fingerprint): "
        "nothing lost or altered, what is new listed; with --fingerprint NEW, the new manifest is kept",
    )
    p.add_argument(
        "--scope",
        choices=["suite", "all"],
        help="what --fingerprint reads: the suite's own experiments (default) or every experiment the account can "
        "read; --compare reads what the manifest did",
    )
    p.add_argument(
        "--experiment",
        metavar="NAME",
        action="append",
        dest="experiments",
        help="--fingerprint only this experiment (repeatable)",
    )
    p.add_argument(
        "--artifacts",
        choices=["sample", "all", "none"],
        help=f"which artifact files --fingerprint hashes (sha256): sample (default; every file listed with its "
        f"size, the first {SAMPLE_FILES} of each run and model up to {SAMPLE_MAX_BYTES // 2**20} MiB hashed), "
        "all, or none (no listing)",
    )
    p.add_argument(
        "--match-by",
        choices=["id", "name"],
        default="id",
        help="how --compare pairs objects: by id (default; an upgrade, a migration, a restore keep them) or by "
        "name (a copy to another server, e.g. mlflow-export-import)",
    )
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
        default=DEFAULT_TIMEOUT,
        help="bound the whole run (default: %(default)gs); on expiry the verdict names the check that was running",
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


def checks_help() -> str:
    """The checks, one line each, from the registry (docs/checks.md has them in full)."""
    lines = ["Checks, in the order they run (-k selects by name; docs/checks.md):"]
    for check in CHECKS:
        only = f"[{check.flag}] " if check.opt_in else ""
        lines.append(f"  {check.name:<13} {only}{check.summary}")
    return "\n".join(lines)


class VersionAction(argparse.Action):
    """--version, its text made only when asked for: the MLflow version lookup is not start-up work."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        sys.stdout.write(version_text(parser.prog) + "\n")
        parser.exit()


def version_text(prog: str) -> str:
    """What --version prints: this suite's version and the MLflow client it tests with."""
    import importlib.metadata

    from mlflowcheck import __version__

    try:
        client = f"MLflow client {importlib.metadata.version('mlflow')}"
    except importlib.metadata.PackageNotFoundError:
        client = "MLflow is not installed"
    return f"{prog} {__version__} ({client}, Python {sys.version.split()[0]})"


def group_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in GROUPS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown feature group {', '.join(map(repr, unknown)) or repr(text)}; the groups: {', '.join(GROUPS)}"
        )
    return names


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):  # nan too: it compares false with every bound
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def size_argument(text: str) -> int:
    from mlflowcheck.probes.artifacts import parse_size

    try:
        return parse_size(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 4M, 512K or 1500000, got {text!r}") from None


def main(argv: list[str] | None = None, project_dir: Path | None = None, prog: str = "test_mlflow_local.py") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    for group in args.require or ():
        flags = opt_in_flags(group)
        if flags and not any(getattr(args, f.removeprefix("--").replace("-", "_"), None) for f in flags):
            parser.error(f"--require {group}: that group runs only with {' or '.join(flags)}")
    if args.load_worker:
        return load_worker(args, parser)
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
