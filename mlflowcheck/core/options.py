"""The run's options, fixed once the command line is read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Options:
    tracking_uri: str
    model_format: str | None = None  # None: MLflow's default (skops on 3.17)
    registered_model: str = "mlflow-local-test-model"
    alias: str | None = None  # None: an alias of this run's own, check-<run id>
    verbose: bool = False
    server_log: Path | None = None  # the log of a server this suite started, for messages
    ui: bool | None = None  # the browser check: True required, False off, None when a browser is found
    screenshots: Path | None = None  # where the browser check saves its screenshots
    timeout: float | None = None  # --timeout: bounds the whole run, in seconds
    server_started_by_suite: bool = False  # the verdict is about a server this suite started
    cleanup: bool = False  # --cleanup: delete what this run created, after the checks
    restart: bool = False  # --restart: restart the server this suite started, then read everything back
    upload_size: int = 4 * 2**20  # --upload-size: the large artifact (above nginx's default 1 MB body limit)
    load_clients: int | None = None  # --load: the load probe's users (Locust's), each a training job
    load_seconds: float = 20.0  # --load-seconds: how long each user logs
    load_p95_ms: float | None = None  # --load-p95-ms: the p95 latency the load probe must stay under
    load_users_per_second: float | None = None  # --load-users-per-second: the ramp-up; None: all at once
    load_master: bool = False  # --load-master: the users run on workers that connect to this process
    master_bind_host: str = "*"  # --master-bind-host (Locust's): where the master listens for workers
    master_bind_port: int = 5557  # --master-bind-port (Locust's)
    expect_workers: int = 1  # --expect-workers (Locust's): the master starts once this many are connected
    expect_workers_max_wait: float = 120.0  # --expect-workers-max-wait (Locust's), in seconds
    load_csv: str | None = None  # --load-csv: Locust's CSV reports, PREFIX_stats.csv and the others
    load_html: str | None = None  # --load-html: Locust's HTML report
    security: bool = False  # --security: the read-only security probes
    security_write: bool = False  # --security-write: also the write probes, on this run's own objects
    backend_store_uri: str | None = None  # of a server this suite started, password hidden (for `mlflow gc`)
    require: tuple[str, ...] | None = None  # --require: the feature groups that must pass; None: the default set
    summary_md: Path | None = None  # --summary-md: the support matrix as Markdown
    fingerprint: Path | None = None  # --fingerprint: write what the server holds to this manifest
    compare: Path | None = None  # --compare: fingerprint again and compare with this manifest
    scope: str | None = None  # --scope: "suite" or "all"; None: the suite's (or the compared manifest's)
    experiments: tuple[str, ...] = ()  # --experiment, repeatable: the scope is these experiments
    artifacts: str | None = None  # --artifacts: "sample", "all" or "none"; None: sample (or the manifest's)
    match_by: str = "id"  # --match-by: "id" (ids kept: upgrade, restore) or "name" (a copy to another server)

    @property
    def read_only(self) -> bool:
        """--fingerprint or --compare: only the layer checks and these run; nothing is written."""
        return bool(self.fingerprint or self.compare)
