"""The command line: resolve the target, start a server if asked, run the checks, report.

Exit codes: 0 every check passed; 1 a check failed; 2 the suite could not run (no server,
not an MLflow server, bad option).

Credentials in the tracking URI are taken out here, first thing: from then on the process
knows the URI only without them (secrets.split_credentials).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from mlflowcheck import diagnosis, render
from mlflowcheck.dberrors import explain_database_error
from mlflowcheck.diagnosis import DEFAULT_TRACKING_URI, CheckFailed
from mlflowcheck.secrets import redact_backend_uri, split_credentials, use_credentials
from mlflowcheck.server import LOCAL_HOSTS, LocalServer, ServerStartError, is_listening, missing_driver
from mlflowcheck.suite import Options, Suite, imports_without_gc

PACKAGE_DIR = Path(__file__).resolve().parent
EXIT_OK, EXIT_FAILED, EXIT_NO_RUN = 0, 1, 2
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
        epilog="Exit codes: 0 every check passed, 1 a check failed, 2 the suite could not run.",
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
        metavar="CLIENTS",
        type=positive_int,
        help="also run the load probe: CLIENTS processes log at once, then every value is read back",
    )
    p.add_argument(
        "--load-seconds",
        metavar="S",
        type=positive_float,
        default=Options.load_seconds,
        help="how long the load probe logs (default: %(default)gs)",
    )
    p.add_argument(
        "--load-p95-ms",
        metavar="MS",
        type=positive_float,
        help="fail the load probe when an endpoint's p95 latency exceeds MS milliseconds",
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
    p.add_argument("-v", "--verbose", action="store_true", help="add tracebacks to failures")
    p.add_argument("--version", action=VersionAction, help="show the suite's, MLflow's and Python's versions and exit")
    return p


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


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
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
    from mlflowcheck.artifacts import parse_size

    try:
        return parse_size(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 4M, 512K or 1500000, got {text!r}") from None


def resolve_tracking_uri(cli_value: str | None) -> str:
    return cli_value or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def main(argv: list[str] | None = None, project_dir: Path | None = None, prog: str = "test_mlflow_local.py") -> int:
    args = build_parser(prog).parse_args(argv)
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


#: The options that name something the suite writes: files, and folders it writes into.
OUTPUT_FILES = {"json": "--json", "junitxml": "--junitxml"}
OUTPUT_FOLDERS = {"screenshots": "--screenshots", "server_dir": "--server-dir"}


def output_paths_problem(args) -> CheckFailed | None:
    """Why an output path the user gave cannot be written, checked before the first check runs.

    A file's folder must exist (a typo in it is caught, not papered over by creating a tree);
    a folder option may name a new folder in an existing one. Writability is tried for real:
    as root os.access() says yes where the kernel says no (/sys, a read-only mount).
    """
    for attr, option in OUTPUT_FILES.items():
        value = getattr(args, attr)
        if value:
            why = file_unwritable(Path(value))
            if why:
                example = "junit.xml" if attr == "junitxml" else "result.json"
                tip = f"give {option} a file in a folder that exists and that you can write, e.g. {option} {example}"
                return CheckFailed(f"{option} {value}: {why}.", tip, fatal=True)
    for attr, option in OUTPUT_FOLDERS.items():
        value = getattr(args, attr)
        if value:
            why = folder_unwritable(Path(value))
            if why:
                tip = f"give {option} a folder you can write (a new one is made, inside a folder that exists)."
                return CheckFailed(f"{option} {value}: {why}.", tip, fatal=True)
    return None


def file_unwritable(path: Path) -> str:
    if path.is_dir():
        return "this is a folder, not a file"
    if not path.parent.is_dir():
        return f"no such folder: {path.parent}" if not path.parent.exists() else f"{path.parent} is not a folder"
    existed = path.exists()
    try:
        with open(path, "ab"):  # appends nothing: an existing file is left as it is
            pass
    except OSError as exc:
        return f"cannot be written ({exc.strerror or exc})"
    if not existed:
        path.unlink()
    return ""


def folder_unwritable(path: Path) -> str:
    if path.exists() and not path.is_dir():
        return "this is a file, not a folder"
    if not path.exists():
        if not path.parent.is_dir():
            return f"no such folder: {path.parent}"
        probe_in = path.parent
    else:
        probe_in = path
    try:
        with tempfile.TemporaryFile(dir=probe_in):
            pass
    except OSError as exc:
        return f"{probe_in} cannot be written ({exc.strerror or exc})"
    return ""


def error(problem: CheckFailed) -> None:
    """An error that stops the run: on stderr (results go to stdout), with its Tip."""
    sys.stdout.flush()
    sys.stderr.write(render.printable(f"error: {problem}\n"))
    sys.stderr.flush()


def write_report(path: Path, text: str, what: str) -> CheckFailed | None:
    """Write a report the user asked for; a failure (a full disk) is an error that names the file."""
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        return CheckFailed(
            f"The {what} could not be written to {path}: {exc.strerror or exc}; the results above are not in it.",
            "free space on that disk or give another path, then run again.",
            fatal=True,
        )
    return None


def console_main(prog: str = "mlflowcheck") -> None:
    """The `mlflowcheck` command (pip install .) and `python -m mlflowcheck`: the same as
    `python test_mlflow_local.py`, with the current directory as the project directory (my.db,
    mlartifacts/, reports/)."""
    code = main(sys.argv[1:], project_dir=Path.cwd(), prog=prog)
    gc.freeze()  # exit without a last full garbage collection over MLflow's objects (~0.6 s)
    sys.exit(code)


def interrupt(signum, frame):
    raise KeyboardInterrupt


def run(args, project_dir: Path | None) -> int:
    problem = output_paths_problem(args)  # before anything is logged: a report that cannot be written is lost
    if problem is not None:
        error(problem)
        return EXIT_NO_RUN
    started = time.time()
    # MLflow's client telemetry would call out to the internet; the suite talks to the
    # tracking server only. (Inherited by the model worker.)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    project_dir = Path(project_dir or Path.cwd()).resolve()
    out = sys.stdout
    # The URI's user info becomes the credentials; only the URI without it goes further.
    uri, credentials = split_credentials(resolve_tracking_uri(args.tracking_uri))
    use_credentials(credentials, uri)
    server = None
    try:
        target = diagnosis.parse_target(uri)
    except CheckFailed:
        target = None  # the uri check reports it
    if target is not None and wants_local_server(args, target):
        try:
            server = maybe_launch_server(args, target, project_dir, out)
        except CheckFailed as exc:
            error(exc)
            return EXIT_NO_RUN
    if args.restart and server is None:
        error(
            CheckFailed(
                "--restart restarts a server this suite starts, and a server is already listening at "
                f"{target.url if target else uri} (or the address is not local).",
                "run --restart with --start-server at a free local address, e.g. --tracking-uri "
                "http://127.0.0.1:5055 --start-server.",
            )
        )
        return EXIT_NO_RUN
    try:
        suite = Suite(
            Options(
                tracking_uri=uri,
                model_format=args.model_format,
                registered_model=args.registered_model,
                alias=args.alias,
                verbose=args.verbose,
                server_log=server.log_path if server else None,
                timeout=args.timeout,
                ui=args.ui,
                screenshots=(args.screenshots or project_dir / "reports" / "screenshots").resolve(),
                server_started_by_suite=server is not None,
                cleanup=args.cleanup,
                restart=args.restart,
                upload_size=args.upload_size,
                load_clients=args.load,
                load_seconds=args.load_seconds,
                load_p95_ms=args.load_p95_ms,
                security=args.security or args.security_write,
                security_write=args.security_write,
                backend_store_uri=redact_backend_uri(server.backend_store_uri) if server else None,
            ),
            started=started,
            local_server=server,
        )
        try:
            with helpers(suite, every_check=not args.select):
                if server is not None:
                    try:
                        server.wait_ready(deadline=min(90.0, args.timeout))
                        suite.timeline.add("server starts", server.launched_at)
                    except ServerStartError as exc:
                        error(server_start_failed(exc))
                        return EXIT_NO_RUN
                    if suite.browser is not None:  # an MLflow server, ours: its web app loads meanwhile
                        suite.browser.open_app(target)
                code = run_checks(suite, args, out)
                if server is not None and not args.keep_serving:
                    server.terminate()  # it shuts down while Chromium and the worker are stopped
        finally:
            shutil.rmtree(suite.tmp, ignore_errors=True)
        if server is not None and args.keep_serving:
            out.write(f"Serving the results at {target.ui_link()} until Ctrl+C ...\n")
            out.flush()
            with contextlib.suppress(KeyboardInterrupt):
                server.process.wait()
        return code
    finally:
        if server is not None and server.process is not None:  # (a server that did not start is stopped)
            server.stop()
            if args.keep_serving:
                out.write("Stopped the server this suite started.\n")
            else:
                out.write(
                    f"Stopped the server this suite started. To browse the results, run in "
                    f"{server.workdir}:\n  {browse_command(server)}\n"
                    f"and open {target.ui_link()} (or run this suite with --keep-serving).\n"
                )


@contextlib.contextmanager
def helpers(suite: Suite, every_check: bool) -> Iterator[None]:
    """Start the model worker and Chromium now, and stop them at the end whatever happens.

    With -k they are left to the plugin, which starts what the selected checks need. Against a
    server that answers already, the worker starts first, forked before this process imports
    anything heavy: its imports are the run's longest chain. While a server this suite started
    boots (a chain of imports and migrations on one core), the helpers start one after the
    other on the other core: Chromium, the checks' imports, the worker. Started all at once
    they slow the boot by more than they gain (benchmarks/bench_suite.py; lowering their
    priority did not help).
    """
    from mlflowcheck.model_worker import ModelWorker
    from mlflowcheck.ui import start_browser

    try:
        if suite.local_server is not None:
            if every_check:
                suite.browser = start_browser(suite)
                if suite.browser is not None:
                    suite.browser.wait_launched()
            preload(suite)
            if every_check:
                suite.model_worker = ModelWorker.for_suite(suite)
        else:
            if every_check:
                suite.model_worker = ModelWorker.for_suite(suite)
                suite.browser = start_browser(suite)
            preload(suite)
        yield
    finally:
        if suite.model_worker is not None:
            suite.model_worker.stop()
        if suite.browser is not None:
            suite.browser.close()


def preload(suite: Suite) -> None:
    """The checks' imports (pytest, MLflow's client, pandas: over a second): while the server
    this suite started boots rather than after; shown on the timeline."""
    with suite.timeline.phase("imports"), imports_without_gc():
        import pytest  # noqa: F401

        from mlflowcheck import checks  # noqa: F401


def wants_local_server(args, target) -> bool:
    """The embedded default: the seed's address may be started here; others only when asked."""
    return args.start_server or target.url == DEFAULT_TRACKING_URI


def browse_command(server: LocalServer) -> str:
    return (
        f"mlflow server --host {server.host} --port {server.port} "
        f"--backend-store-uri {redact_backend_uri(server.backend_store_uri)} "
        f"--artifacts-destination {server.artifacts_destination}"
    )


def maybe_launch_server(args, target, project_dir: Path, out) -> LocalServer | None:
    """The embedded default: start the light seed server when nothing listens at the target.
    Returns once the process runs; the caller waits until it answers (``wait_ready``)."""
    if target.host not in LOCAL_HOSTS:  # checked first: no traffic to a host we may not start on
        raise CheckFailed(
            f"--start-server needs a local address; {target.host} is not one.",
            "use --tracking-uri http://127.0.0.1:PORT with --start-server, or start the server on that host.",
        )
    if is_listening(target.host, target.port, timeout=1.0):
        if args.start_server:
            out.write(f"note: a server is already listening at {target.url}; testing it instead of starting one.\n")
        return None
    driver_problem = missing_driver(args.backend_store_uri)
    if driver_problem:
        message, tip = driver_problem.split("\nTip: ", 1)
        raise CheckFailed(message, tip)
    workdir = (args.server_dir or project_dir).resolve()
    server = LocalServer(
        workdir=workdir,
        host=target.host,
        port=target.port,
        backend_store_uri=args.backend_store_uri,
        log_path=workdir / "mlflow-server.log",
    )
    server.launch()  # first: every other step of the run overlaps with its start
    out.write(
        f"Nothing listens at {target.url}: starting `{browse_command(server)}` in {workdir} "
        f"(log: {server.log_path}) ...\n"
    )
    out.flush()
    return server


def checks_did_not_run(status) -> CheckFailed:
    """pytest ran no check: why, by its exit status."""
    import pytest

    if status == pytest.ExitCode.USAGE_ERROR:
        return CheckFailed(
            f"pytest {pytest.__version__} refused the suite's arguments (exit status 4; its message is above).",
            "the suite needs pytest 8.4 or newer: pip install -U 'pytest>=8.4'.",
        )
    if status == pytest.ExitCode.INTERNAL_ERROR:
        return CheckFailed("pytest failed internally (exit status 3).", "run again with --verbose to see why.")
    return CheckFailed(
        f"the checks did not run (pytest exit status {int(status)}).",
        "check the -k expression (it must match some of the checks listed in the README), or run with --verbose.",
    )


def server_start_failed(exc: ServerStartError) -> CheckFailed:
    database = explain_database_error(str(exc))
    if database is not None:  # the usual reason: the class, the database's words, the fix, then the log
        return CheckFailed(f"The local mlflow server did not start: {database.message}\n{exc}", database.tip)
    return CheckFailed(
        f"The local mlflow server did not start: {exc}",
        "fix what the server said above; a wrong --backend-store-uri, a database that is down "
        "or a port in use are the usual causes.",
    )


def run_checks(suite: Suite, args, out) -> int:
    import importlib.metadata

    import pytest

    from mlflowcheck.plugin import SuitePlugin

    suite.client_version = importlib.metadata.version("mlflow")
    out.write(
        render.printable(
            f"MLflow deployment check: {suite.options.tracking_uri} (client MLflow {suite.client_version})\n"
        )
    )
    out.flush()
    pytest_args = [
        str(PACKAGE_DIR / "checks.py"),
        "-c", str(PACKAGE_DIR / "suite.ini"),
        "--rootdir", str(PACKAGE_DIR),
        "-p", "no:cacheprovider",  # write nothing into the user's directory
        "--disable-plugin-autoload",  # third-party pytest plugins have no say in the suite
        # These two run gc.collect() five times at exit (0.6 s with MLflow loaded), to report
        # exceptions in __del__ and threads; the suite's checks report their own failures.
        "-p", "no:unraisableexception",
        "-p", "no:threadexception",
        "-p", "no:terminal",  # the plugin prints one line per check instead
    ]  # fmt: skip
    if args.select:
        pytest_args += ["-k", args.select]
    junit = suite.tmp / "junit.xml"  # pytest writes it here; copied to the user's path with errors caught
    if args.junitxml:
        pytest_args += ["--junitxml", str(junit)]
    plugin = SuitePlugin(suite, out)
    status = pytest.main(pytest_args, plugins=[plugin])
    code = suite.exit_code()
    if status == pytest.ExitCode.INTERRUPTED:
        out.write("Interrupted (Ctrl+C): the checks after the last line above did not run.\n")
        code = EXIT_NO_RUN
    elif status not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or not suite.results:
        error(checks_did_not_run(status))
        code = EXIT_NO_RUN
    render.summary(suite, code, out)
    problems = []
    if args.junitxml:
        text = junit.read_text(encoding="utf-8") if junit.exists() else None
        if text is None:
            problems.append(CheckFailed(f"pytest wrote no JUnit XML for {args.junitxml}.", "run again with --verbose."))
        else:
            problems.append(write_report(Path(args.junitxml), text, "JUnit XML"))
    if args.json:
        problems.append(write_report(Path(args.json), render.json_text(suite, code), "JSON report"))
    for problem in filter(None, problems):
        error(problem)
        code = EXIT_NO_RUN
    return code
