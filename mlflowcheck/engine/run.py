"""One run of the suite: start the server if asked, the model worker and Chromium beside it,
run the checks through pytest, write the reports, stop everything it started.

Credentials in the tracking URI are taken out here, first thing: from then on the process
knows the URI only without them (core.secrets.split_credentials)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from mlflowcheck.core.errors import EXIT_NO_RUN, CheckFailed
from mlflowcheck.core.options import Options
from mlflowcheck.core.secrets import redact_backend_uri, scrub, split_credentials, use_credentials
from mlflowcheck.core.target import DEFAULT_TRACKING_URI, parse_target, resolve_tracking_uri
from mlflowcheck.explain.databases import explain_database_error
from mlflowcheck.report.console import error, printable, summary, verdict_line
from mlflowcheck.report.files import json_text, write_report
from mlflowcheck.runtime.server import LOCAL_HOSTS, LocalServer, ServerStartError, is_listening, missing_driver
from mlflowcheck.runtime.session import Session
from mlflowcheck.runtime.tuning import imports_without_gc

PACKAGE_DIR = Path(__file__).resolve().parent


def run(args, project_dir: Path | None) -> int:
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
        target = parse_target(uri)
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
        suite = Session(
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
                load_users_per_second=args.load_users_per_second,
                load_master=args.load_master,
                master_bind_host=args.master_bind_host,
                master_bind_port=args.master_bind_port,
                expect_workers=args.expect_workers,
                expect_workers_max_wait=args.expect_workers_max_wait,
                # Absolute: Locust runs in the run's temporary folder.
                load_csv=os.path.abspath(args.load_csv) if args.load_csv else None,
                load_html=os.path.abspath(args.load_html) if args.load_html else None,
                security=args.security or args.security_write,
                security_write=args.security_write,
                backend_store_uri=redact_backend_uri(server.backend_store_uri) if server else None,
                require=args.require,
                summary_md=Path(args.summary_md) if args.summary_md else None,
                fingerprint=Path(args.fingerprint) if args.fingerprint else None,
                compare=Path(args.compare) if args.compare else None,
                scope=args.scope,
                experiments=tuple(args.experiments or ()),
                artifacts=args.artifacts,
                match_by=args.match_by,
            ),
            started=started,
            local_server=server,
        )
        try:
            # A read-only run needs neither the model worker nor Chromium.
            with helpers(suite, every_check=not args.select and not suite.options.read_only):
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
def helpers(suite: Session, every_check: bool) -> Iterator[None]:
    """Start the model worker and Chromium now, and stop them at the end whatever happens.

    With -k they are left to the plugin, which starts what the selected checks need. Against a
    server that answers already, the worker starts first, forked before this process imports
    anything heavy: its imports are the run's longest chain. While a server this suite started
    boots (a chain of imports and migrations on one core), the helpers start one after the
    other on the other core: Chromium, the checks' imports, the worker. Started all at once
    they slow the boot by more than they gain (measured: docs/performance.md).
    """
    from mlflowcheck.engine.handles import start_chromium, start_model_worker

    try:
        if suite.local_server is not None:
            if every_check:
                suite.browser = start_chromium(suite)
                if suite.browser is not None:
                    suite.browser.wait_launched()
            preload(suite)
            if every_check:
                suite.model_worker = start_model_worker(suite)
        else:
            if every_check:
                suite.model_worker = start_model_worker(suite)
                suite.browser = start_chromium(suite)
            preload(suite)
        yield
    finally:
        if suite.model_worker is not None:
            suite.model_worker.stop()
        if suite.browser is not None:
            suite.browser.close()


def preload(suite: Session) -> None:
    """The checks' imports (pytest, MLflow's client, pandas): while the server
    this suite started boots rather than after; shown on the timeline."""
    with suite.timeline.phase("imports"), imports_without_gc():
        import pytest  # noqa: F401

        from mlflowcheck.engine import checks  # noqa: F401


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


def run_checks(suite: Session, args, out) -> int:
    import importlib.metadata

    import pytest

    from mlflowcheck.engine.plugin import SuitePlugin, support_matrix
    from mlflowcheck.engine.registry import GROUP_OF, lenient_groups, required_groups
    from mlflowcheck.report import matrix
    from mlflowcheck.runtime.mlflow_compat import configure_client

    configure_client()  # once, before any check: quick retries, error bodies kept, no IPython
    suite.client_version = importlib.metadata.version("mlflow")
    out.write(
        printable(f"MLflow deployment check: {suite.options.tracking_uri} (client MLflow {suite.client_version})\n")
    )
    out.flush()
    pytest_args = [
        str(PACKAGE_DIR / "checks.py"),
        "-c", str(PACKAGE_DIR / "suite.ini"),
        "--rootdir", str(PACKAGE_DIR),
        "-p", "no:cacheprovider",  # write nothing into the user's directory
        "--disable-plugin-autoload",  # third-party pytest plugins have no say in the suite
        # These two run gc.collect() five times at exit (slow with MLflow loaded), to report
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
    found = support_matrix(suite)
    code = suite.exit_code(required_groups(suite.options), GROUP_OF, lenient_groups(suite.options))
    if status == pytest.ExitCode.INTERRUPTED:
        out.write("Interrupted (Ctrl+C): the checks after the last line above did not run.\n")
        code = EXIT_NO_RUN
    elif status not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or not suite.results:
        error(checks_did_not_run(status))
        code = EXIT_NO_RUN
    summary(suite, code, out, matrix.text(found) if suite.results else "")
    problems = []
    if args.summary_md:
        title = f"MLflow deployment check: {suite.target.url if suite.target else suite.options.tracking_uri}"
        text = matrix.markdown(found, title, verdict_line(suite, code).removeprefix("Verdict: ").strip())
        problems.append(write_report(Path(args.summary_md), text, "Markdown summary"))
    if args.junitxml:
        text = junit.read_text(encoding="utf-8") if junit.exists() else None
        if text is None:
            problems.append(CheckFailed(f"pytest wrote no JUnit XML for {args.junitxml}.", "run again with --verbose."))
        else:
            problems.append(write_report(Path(args.junitxml), scrub(text), "JUnit XML"))
    if args.json:
        problems.append(write_report(Path(args.json), json_text(suite, code, found), "JSON report"))
    for problem in filter(None, problems):
        error(problem)
        code = EXIT_NO_RUN
    return code
