"""The monitoring probe's data: one cycle's steps and verdict (what --probe and --serve-probe
report), and the exporter's targets (the operator's list; a caller can name only these)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.secrets import Credentials, split_credentials

#: The probe's checks, in the order a cycle runs them, each with what its success proves.
#: The docs (docs/monitoring.md) and --help list them from here.
PROBE_CHECKS = {
    "server": "`GET /version` answers with an MLflow version",
    "experiment": "the probe's experiment is found, or created, and is active",
    "run": "a run is created in it and read back, RUNNING, with its name",
    "param": "a param is logged and read back equal",
    "metric": "a metric history of 5 steps is logged and read back equal (step, value, timestamp)",
    "artifact": "a small UTF-8 file is uploaded through the server and downloaded byte for byte",
    "trace": "a trace is exported and read back with its span (servers with the v3 trace API, MLflow 3.3+)",
    "registry": "a registered model and a version of it are created and read back",
    "cleanup": "everything the cycle created is deleted (the run soft-deleted, as MLflow does)",
}

#: The probe's experiment, found by this name (or --probe-experiment's) and reused by every cycle.
PROBE_EXPERIMENT = "mlflowcheck-probe"
#: The tag on everything the probe creates: a later cycle deletes what an interrupted one left,
#: and only what carries it.
PROBE_TAG = "mlflowcheck.probe"
#: The name prefix of the probe's registered models (one per cycle, deleted by it).
PROBE_MODEL_PREFIX = "mlflowcheck-probe-"
DEFAULT_PROBE_TIMEOUT = 20.0


@dataclass
class Step:
    name: str
    ok: bool | None  # None: not supported by this server (not a failure, not reported as a success)
    seconds: float = 0.0
    message: str = ""  # the note of a success, or what failed
    tip: str = ""


@dataclass
class Cycle:
    """One probe cycle against one target."""

    target: str  # the target's name in the metrics: the URL without credentials, or its configured name
    started: float  # time.time() at its start
    seconds: float = 0.0
    steps: list[Step] = field(default_factory=list)
    version: str = ""  # the server's MLflow version, from GET /version
    product: str = ""  # which server answers (MLflow, FastTrackML, …)
    requests: int = 0  # HTTP requests the cycle sent

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok is not False for s in self.steps)

    def first_failure(self) -> Step | None:
        return next((s for s in self.steps if s.ok is False), None)

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    @classmethod
    def from_dict(cls, data: dict) -> Cycle:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["steps"] = [Step(**s) for s in data.get("steps", [])]
        return cls(**known)


@dataclass(frozen=True)
class ProbeTarget:
    """A server the exporter may probe: its label, its URL and where its credentials come from."""

    name: str
    url: str
    credentials: Credentials | str | None = field(default=None, repr=False)  # basic auth, or a bearer token
    experiment: str = PROBE_EXPERIMENT

    def environment(self) -> dict[str, str]:
        """MLflow's own variables for this target's credentials, for the process that probes it."""
        env = {"MLFLOW_TRACKING_URI": self.url}
        if isinstance(self.credentials, Credentials):
            env |= {"MLFLOW_TRACKING_USERNAME": self.credentials.username}
            env |= {"MLFLOW_TRACKING_PASSWORD": self.credentials.password}
        elif self.credentials:
            env["MLFLOW_TRACKING_TOKEN"] = self.credentials
        return env


def config_problem(path: Path, text: str) -> CheckFailed:
    return CheckFailed(
        f"The probe configuration {path}: {text}.",
        "see docs/monitoring.md for its format: one [targets.NAME] table per server, with url and, for "
        "credentials, username_env and password_env (or token_env) naming environment variables.",
    )


def read_targets(path: Path, experiment: str = PROBE_EXPERIMENT) -> list[ProbeTarget]:
    """The operator's targets from a TOML file. Credentials are named by environment variable
    (``username_env``, ``password_env``, ``token_env``) or written in the file (``username``,
    ``password``, ``token``; then the file should be readable by the exporter only); never in a URL."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise config_problem(path, f"cannot be read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise config_problem(path, f"is not valid TOML ({exc})") from None
    tables = data.get("targets")
    if not isinstance(tables, dict) or not tables:
        raise config_problem(path, "has no [targets.NAME] table")
    targets = []
    for name, table in tables.items():
        if not isinstance(table, dict) or not isinstance(table.get("url"), str):
            raise config_problem(path, f"[targets.{name}] has no url")
        url, in_url = split_credentials(table["url"])
        if in_url is not None:
            raise config_problem(path, f"[targets.{name}]'s url holds credentials; name them with username_env")
        targets.append(
            ProbeTarget(
                name=name,
                url=url.rstrip("/"),
                credentials=table_credentials(path, name, table),
                experiment=str(table.get("experiment", experiment)),
            )
        )
    return targets


def table_credentials(path: Path, name: str, table: dict) -> Credentials | str | None:
    def value(key: str) -> str | None:
        if key in table:
            return str(table[key])
        variable = table.get(f"{key}_env")
        if variable is None:
            return None
        if variable not in os.environ:
            raise config_problem(path, f"[targets.{name}].{key}_env names {variable}, which is not set")
        return os.environ[variable]

    username, password, token = value("username"), value("password"), value("token")
    if username and password:
        return Credentials(username, password)
    if username or password:
        raise config_problem(path, f"[targets.{name}] has a username or a password without the other")
    return token or None
