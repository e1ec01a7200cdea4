"""The model checks' parallel process.

Importing scikit-learn, skops and MLflow's model code costs over two seconds of CPU. The
suite starts this process first thing (``ModelWorker``); it pays for those imports on the
machine's other core while the main process checks the tracking store. When the run
exists, ``worker_check`` hands it the job (a JSON line on stdin): it logs, loads and
registers the model (``models.logged_model`` and ``models.registry``) and prints one result
line with both verdicts.

This module imports nothing heavy at the top, so starting the worker costs the main process
nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from mlflowcheck.diagnosis import CheckFailed
from mlflowcheck.suite import ModelResults
from mlflowcheck.timeline import Timeline, process_start

RESULT_MARK = "MLFLOWCHECK-RESULT "
WORKER_DEADLINE = 600.0


class ModelWorker:
    def __init__(self, log_path: Path, timeline: Timeline):
        self.timeline = timeline
        self.log = open(log_path, "w")  # noqa: SIM115 - the child writes to it until it ends
        # The project may not be on the child's import path (the entry script's folder is on
        # ours only because Python put it there): hand it over.
        project = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [project, os.environ.get("PYTHONPATH")])))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflowcheck.model_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, encoding="utf-8", env=env,
        )  # fmt: skip
        self.results: ModelResults | None = None

    @staticmethod
    def job(suite) -> str:
        return json.dumps(
            {
                "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(suite.options).items()},
                "target": suite.target.url,
                "client_version": suite.client_version,
                "server_version": suite.server_version,
                "experiment_id": suite.experiment_id,
                "run_id": suite.run_id,
                "tmp": str(suite.tmp),
                "data": suite.data.to_dict(orient="list"),
            }
        )

    def run(self, suite) -> ModelResults:
        """Hand the worker its job (once) and wait for its results."""
        deadline = suite.remaining(WORKER_DEADLINE)
        if self.results is None:
            try:
                out, _ = self.proc.communicate(self.job(suite) + "\n", timeout=deadline)
            except subprocess.TimeoutExpired:
                self.stop()
                raise CheckFailed(
                    f"Logging and loading the model took longer than {deadline:.0f}s.",
                    "the server is very slow to store or serve model files; look at its log.",
                ) from None
            lines = [line for line in out.splitlines() if line.startswith(RESULT_MARK)]
            if not lines:
                self.log.flush()
                said = Path(self.log.name).read_text(errors="replace")[-600:]
                raise CheckFailed(
                    f"The model worker process ended (code {self.proc.returncode}) without a result: {said}",
                    "run again with --verbose; if it repeats, this is a bug in the suite.",
                )
            self.results = ModelResults(**json.loads(lines[-1][len(RESULT_MARK) :]))
            for name, start, end in self.results.phases:
                self.timeline.add(f"model worker: {name}", start, end)
        return self.results

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


def worker_check(suite, name: str) -> None:
    """The verdict of one of the worker's checks, as this process's check."""
    results = suite.model_worker.run(suite)
    suite.created = results
    suite.model_file = results.model_file
    result = results.checks.get(name)
    if result is None:
        raise CheckFailed(f"The model worker did not run the {name} check.", "see the model check above.")
    if result["status"] != "passed":
        raise CheckFailed(result["message"], result.get("tip"))
    if name == "registry":
        suite.registered_version = results.registered_version
    suite.note(name, result["note"])


def main() -> int:
    # First the imports: this is the work that overlaps with the main process.
    started = process_start()
    import mlflow.pyfunc  # noqa: F401
    import mlflow.sklearn  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    from mlflow.models import infer_signature  # noqa: F401

    from mlflowcheck import models

    if models.default_format() == "skops":
        import skops.io  # noqa: F401
    models.warm_up()
    imported = time.time()

    line = sys.stdin.readline()
    if not line.strip():  # the main process needed no model checks
        return 0
    job_start = time.time()
    results = models.run_worker_job(json.loads(line))
    results.phases = [("imports and warm-up", started, imported), ("model and registry", job_start, time.time())]
    sys.stdout.write(RESULT_MARK + json.dumps(asdict(results), ensure_ascii=False) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: MLflow's exit handlers (telemetry, async queues) take
    # seconds and there is nothing left to save.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
