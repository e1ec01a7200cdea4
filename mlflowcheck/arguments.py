"""The command line's options: the parser, the option groups of the probes that run only
when asked (load, fingerprint, monitoring), the values they accept, and --version.

cli.build_parser puts them together; docs/options.md is made from that parser (mlflowcheck.docs).
"""

from __future__ import annotations

import argparse
import sys

from mlflowcheck.core.errors import EXIT_NO_RUN
from mlflowcheck.core.manifest import SAMPLE_FILES, SAMPLE_MAX_BYTES
from mlflowcheck.core.monitoring import PROBE_EXPERIMENT
from mlflowcheck.core.options import Options
from mlflowcheck.engine.registry import CHECKS, GROUPS


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own exit code is 2 too; add the tip
        self.print_usage(sys.stderr)
        self.exit(EXIT_NO_RUN, f"{self.prog}: error: {message}\nTip: run `{self.prog} --help` for the options.\n")


def load_options(p: argparse.ArgumentParser) -> None:
    """--load and its distributed mode (Locust's own option names)."""
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


def read_only_options(p: argparse.ArgumentParser) -> None:
    """--fingerprint and --compare, which read and never write."""
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


def monitoring_options(p: argparse.ArgumentParser) -> None:
    """--probe, --prom-textfile, --serve-probe: the monitoring probe."""
    p.add_argument(
        "--probe",
        action="store_true",
        help="monitoring: one short write and read-back cycle (an experiment of its own, a run, a param, a metric, "
        "an artifact, a trace, a model version), deleted again; exit 0 when every step passed",
    )
    p.add_argument(
        "--prom-textfile",
        metavar="PATH",
        help="with --probe: write the cycle's metrics for node_exporter's textfile collector (atomically)",
    )
    p.add_argument(
        "--serve-probe",
        metavar="HOST:PORT",
        help="monitoring: serve GET /probe?target=NAME (a cycle against a configured target, its metrics) and "
        "/metrics, as blackbox_exporter does, for Prometheus to scrape",
    )
    p.add_argument(
        "--probe-config",
        metavar="FILE",
        help="with --serve-probe: the targets it may probe and their credentials (TOML; default: the one "
        "--tracking-uri, with the credentials of this environment)",
    )
    p.add_argument(
        "--probe-experiment",
        metavar="NAME",
        default=PROBE_EXPERIMENT,
        help="the experiment the probe creates once and reuses (default: %(default)s)",
    )


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
