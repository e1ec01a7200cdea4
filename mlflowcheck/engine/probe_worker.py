"""The exporter's process for one target (``python -m mlflowcheck.engine.probe_worker``): it
imports MLflow once, holds that target's credentials in its own environment (MLflow's client
reads them from there), and runs a cycle for each request line on stdin, one JSON line back.

A process per target keeps one target's credentials away from another's requests, lets a hung
cycle be ended by killing the process, and spares each scrape MLflow's import.
"""

from __future__ import annotations

import json
import os
import sys

READY = "ready"


def main() -> None:
    # The answers go to a private copy of stdout; whatever a library prints goes to stderr.
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    from mlflowcheck.engine.monitor import probe_target
    from mlflowcheck.probes.monitor import configure, cycle

    target = probe_target(os.environ["MLFLOW_TRACKING_URI"])
    configure()
    answers.write(READY + "\n")
    answers.flush()
    for line in sys.stdin:
        request = json.loads(line)
        result = cycle(target, request["label"], request["experiment"], request["timeout"])
        answers.write(json.dumps(result.as_dict(), ensure_ascii=False) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
