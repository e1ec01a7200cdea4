"""`--probe`: one monitoring cycle against the tracking server, its lines on the console, and
the reports asked for (--prom-textfile, --json); exit 0 when it passed, 1 when a check failed.

The cycle runs in a thread with a hard deadline (its requests have deadlines of their own, but
a server that drips its answers could outlast them): past the deadline and a grace the verdict
is written anyway, and the process exits without waiting for the thread.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from mlflowcheck.core.errors import EXIT_NO_RUN, CheckFailed
from mlflowcheck.core.monitoring import PROBE_CHECKS, Cycle, Step
from mlflowcheck.core.secrets import scrub, split_credentials, use_credentials
from mlflowcheck.core.target import Target, parse_target, resolve_tracking_uri
from mlflowcheck.report.console import cycle_text, error
from mlflowcheck.report.files import write_report
from mlflowcheck.report.prometheus import write_textfile

#: After the deadline, how long the cycle's thread gets before its verdict is "did not finish".
GRACE = 2.0
CYCLE_THREAD = "mlflowcheck-probe-cycle"


def probe_target(uri: str | None) -> Target:
    """The target of --probe, credentials from the URI's user info taken out (as the suite does)."""
    shown, credentials = split_credentials(resolve_tracking_uri(uri))
    use_credentials(credentials, shown)
    return parse_target(shown)


def bounded_cycle(target: Target, label: str, experiment: str, timeout: float) -> Cycle:
    """A cycle, or by the deadline and a grace, a failed one that says it did not finish."""
    from mlflowcheck.probes.monitor import configure, cycle

    configure()
    done: list[Cycle] = []
    worker = threading.Thread(
        target=lambda: done.append(cycle(target, label, experiment, timeout)), name=CYCLE_THREAD, daemon=True
    )
    started = time.time()
    worker.start()
    worker.join(timeout + GRACE)
    if done:
        return done[0]
    return unfinished(label, started, timeout)


def unfinished(label: str, started: float, timeout: float) -> Cycle:
    """The verdict of a cycle that did not end by its deadline (a hung server, a dripping answer)."""
    return failed_cycle(
        label,
        started,
        f"the cycle did not finish within its deadline ({timeout:g}s): a request hung",
        "is the server (or a proxy in front of it) overloaded or hung? Look at its log.",
    )


def failed_cycle(label: str, started: float, message: str, tip: str = "look at the exporter's log (stderr).") -> Cycle:
    """A cycle whose every step failed for one reason outside the steps."""
    return Cycle(
        target=label,
        started=started,
        seconds=round(time.time() - started, 3),
        steps=[Step(name, False, 0.0, message, tip) for name in PROBE_CHECKS],
    )


def probe(args) -> int:
    try:
        target = probe_target(args.tracking_uri)
    except CheckFailed as exc:
        error(exc)
        return EXIT_NO_RUN
    result = bounded_cycle(target, target.url, args.probe_experiment, args.timeout)
    sys.stdout.write(cycle_text(result))
    sys.stdout.flush()
    problem = None
    if args.prom_textfile:
        try:
            write_textfile(Path(args.prom_textfile), result)
        except OSError as exc:
            problem = CheckFailed(
                f"The textfile could not be written to {args.prom_textfile}: {exc.strerror or exc}.",
                "give --prom-textfile a path in node_exporter's --collector.textfile.directory that you can write.",
                fatal=True,
            )
    if args.json and problem is None:
        text = scrub(json.dumps(result.as_dict(), ensure_ascii=False, indent=2) + "\n")
        problem = write_report(Path(args.json), text, "JSON report")
    if problem is not None:
        error(problem)
        code = EXIT_NO_RUN
    else:
        code = 0 if result.ok else 1
    if any(t.name == CYCLE_THREAD for t in threading.enumerate()):
        # The cycle's thread still hangs in a request: exit without waiting for it (or for
        # MLflow's handlers at exit, which could wait on the same connection).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
