"""The load probe's training job as a Locust user (a locustfile): run by `--load`, by
`--load-worker`, or by Locust itself:

    locust -f <this file> --worker --master-host HOST --master-port PORT

Each user creates a run in the suite's experiment and logs, as a training job does, through
MLflow's client with no retries: metrics in batches (several keys a step), single metrics,
params, tags, a small artifact now and then and, on a server with the v3 trace API, a traced
call. Every request goes to Locust's statistics under its endpoint's name, and every
acknowledged value into the user's ledger, which is sent to the master (Locust's custom
messages) every half second and when the user is done: the read-back after the run covers
what every worker had acknowledged, a worker's that died too. The master (or the local
runner) ends the test when every user is done, or its worker is gone, and writes the merged
ledger for the suite (--mlflow-ledger).
"""

from __future__ import annotations

import os

# Before MLflow is imported. No client retries: the probe counts every failed request, and a
# retried write could hide a duplicate; a dead server stops the users at once, not after minutes
# of backoff. A trace is exported before its call returns, so the ledger knows what was sent.
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"

import hashlib  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import mlflow  # noqa: E402  (here, before Locust forks its worker processes: imported once, shared)
from locust import User, constant, events, task  # noqa: E402
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner  # noqa: E402
from mlflow.entities import Metric  # noqa: E402

from mlflowcheck.explain.load import error_kind  # noqa: E402
from mlflowcheck.runtime.loadrun import LAST_REQUESTS  # noqa: E402
from mlflowcheck.runtime.mlflow_compat import keep_server_error_bodies  # noqa: E402

BATCH_KEYS = ("loss", "accuracy", "learning_rate", "grad_norm", "throughput")
TRACE_EVERY = 20  # steps between a user's traced calls
FLUSH_EVERY = 0.5  # seconds between a user's ledger messages
MAX_CONSECUTIVE_ERRORS = 20  # a user stops hammering a server that keeps failing
LEDGER = "mlflowcheck_ledger"
#: A ledger's lists: what a user had acknowledged, and how its requests went.
LISTS = ("metrics", "params", "tags", "artifacts", "traces", "requests", "errors", "messages")


def worker_name() -> str:
    """This process, as the report names it (after Locust's fork: each worker its own pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@events.init_command_line_parser.add_listener
def _options(parser, **_):
    # Sent to the workers by the master with each spawn message (Locust forwards custom options).
    parser.add_argument("--mlflow-url", default="", help="the tracking server (no credentials: workers use their own)")
    parser.add_argument("--mlflow-experiment-id", default="", help="the experiment the users' runs go to")
    parser.add_argument("--mlflow-seconds", type=float, default=20.0, help="how long each user logs")
    parser.add_argument("--mlflow-traced", default="", help="'1': users also make traced calls")
    parser.add_argument("--mlflow-ledger", default="", help="the master writes the merged ledger here (JSON)")


class TrainingJob(User):
    """One training job logging to its own run."""

    wait_time = constant(0)

    def on_start(self) -> None:
        keep_server_error_bodies()
        opts = self.environment.parsed_options
        self.id = uuid.uuid4().hex[:12]
        self.client = mlflow.MlflowClient(tracking_uri=opts.mlflow_url)
        self.rng = random.Random(self.id)
        self.step = self.failures = 0
        self.done = False
        self.ledger = new_ledger(self.id)
        self.flushed = time.time()
        self.traced = opts.mlflow_traced == "1"
        holder = {}
        ok = self.call(
            "runs/create",
            lambda: holder.update(
                run=self.client.create_run(opts.mlflow_experiment_id, run_name=f"load-{worker_name()}-{self.id[:6]}")
            ),
        )
        self.ledger["run_id"] = holder["run"].info.run_id if ok else ""
        if self.traced and ok:
            mlflow.set_tracking_uri(opts.mlflow_url)
            self.traced = self.call(
                "experiments/get", lambda: mlflow.set_experiment(experiment_id=opts.mlflow_experiment_id)
            )
        self.end = time.time() + opts.mlflow_seconds
        self.flush(done=not ok)
        self.done = not ok

    def call(self, endpoint: str, action, points: int = 0) -> bool:
        start = time.time()
        exception = None
        try:
            action()
        except Exception as exc:  # recorded and counted, never raised: the probe reports them
            exception = exc
            self.ledger["errors"].append((endpoint, error_kind(exc), time.time()))
            if len(self.ledger["messages"]) < 5:
                self.ledger["messages"].append(str(getattr(exc, "message", exc))[:500])
        else:
            self.ledger["requests"].append((endpoint, start, time.time(), points))
        self.environment.events.request.fire(
            request_type="MLflow",
            name=endpoint,
            response_time=(time.time() - start) * 1000,
            response_length=0,
            exception=exception,
            context={},
        )
        return exception is None

    @task
    def train_step(self) -> None:
        if self.done:
            gevent.sleep(0.5)  # until the master ends the test
            return
        if time.time() >= self.end or self.failures >= MAX_CONSECUTIVE_ERRORS:
            self.call("runs/update", lambda: self.client.set_terminated(self.ledger["run_id"]))
            self.done = True
            self.flush(done=True)
            return
        self.log_step(self.step, self.ledger, self.ledger["run_id"])
        self.step += 1
        if time.time() - self.flushed >= FLUSH_EVERY:
            self.flush()

    def log_step(self, step: int, led: dict, run_id: str) -> None:
        ts = int(time.time() * 1000)
        batch = [Metric(key, self.rng.random(), ts, step) for key in BATCH_KEYS]
        ok = self.call("runs/log-batch", lambda: self.client.log_batch(run_id, metrics=batch), len(batch))
        if ok:
            led["metrics"].extend((m.key, m.step, m.value, m.timestamp) for m in batch)
        value = self.rng.random()
        if self.call("runs/log-metric", lambda: self.client.log_metric(run_id, "step_time", value, ts, step), 1):
            led["metrics"].append(("step_time", step, value, ts))
        else:
            ok = False
        if step % 10 == 0:
            key, val, tag = f"param_{step // 10}", f"{self.rng.random():.6f}", f"tag_{step // 10}"
            if self.call("runs/log-parameter", lambda: self.client.log_param(run_id, key, val)):
                led["params"].append((key, val))
            if self.call("runs/set-tag", lambda: self.client.set_tag(run_id, tag, val)):
                led["tags"].append((tag, val))
        if step % 40 == 0:
            text = f"load user {self.id}, step {step}, {self.rng.random()}\n"
            path = f"load/artifact-{step // 40}.txt"
            if self.call("artifacts/upload", lambda: self.client.log_text(run_id, text, path)):
                led["artifacts"].append((path, hashlib.sha256(text.encode()).hexdigest()))
        if self.traced and step % TRACE_EVERY == TRACE_EVERY // 2:
            holder = {}
            if self.call("traces (export)", lambda: holder.update(trace=traced_call(self.id, step))):
                led["traces"].append(holder["trace"])
        self.failures = 0 if ok else self.failures + 1

    def flush(self, done: bool = False) -> None:
        """What was acknowledged since the last message, to the master (to itself, run locally)."""
        message, self.ledger = self.ledger, new_ledger(self.id, self.ledger["run_id"])
        message["done"] = done
        self.environment.runner.send_message(LEDGER, message)
        self.flushed = time.time()


def new_ledger(user: str, run_id: str = "") -> dict:
    return {"worker": worker_name(), "user": user, "run_id": run_id, **{k: [] for k in LISTS}}


def traced_call(user: str, step: int) -> tuple[str, list[str]]:
    """A traced call of an application (two spans): its trace id and its spans' names. The export's
    failures are not raised (MLflow logs them): the read-back finds them."""
    name = f"load-{user}-call-{step}"
    held = {}

    @mlflow.trace(name=name, span_type="CHAIN")
    def answer(question: str) -> str:
        # This call's own trace: the process's "last active trace" may be another user's.
        held["id"] = mlflow.get_active_trace_id()
        with mlflow.start_span(name="retrieve", span_type="RETRIEVER") as span:
            span.set_outputs({"documents": [question] * 4})
        return question

    answer(f"step {step}")
    return held["id"], [name, "retrieve"]


# --- the master's (or the local runner's) side ---------------------------------------------


class Merged:
    """Every user's ledger, merged from their messages, by the Locust node that sent them."""

    def __init__(self) -> None:
        self.users: dict[str, dict] = {}
        self.nodes: dict[str, str] = {}  # Locust's node id -> the worker's host:pid
        self.started = time.time()

    def add(self, node: str, message: dict) -> None:
        self.nodes[node] = message["worker"]
        user = self.users.setdefault(message["user"], {**new_ledger(message["user"]), "node": node, "done": False})
        user["worker"], user["run_id"] = message["worker"], message["run_id"] or user["run_id"]
        for key in LISTS:
            user[key].extend(message[key])
        user["done"] = message["done"]

    def gone(self, runner) -> set[str]:
        """The nodes the master no longer hears (killed, or the machine lost)."""
        if not isinstance(runner, MasterRunner):
            return set()
        return {node for node in self.nodes if (c := runner.clients.get(node)) is None or c.state == STATE_MISSING}

    def finished(self, runner) -> bool:
        gone = self.gone(runner)
        return bool(self.users) and all(u["done"] or u["node"] in gone for u in self.users.values())

    def progress(self, runner) -> dict:
        points = sum(len(u["metrics"]) for u in self.users.values())
        errors = sum(len(u["errors"]) for u in self.users.values())
        workers = (
            len(runner.clients.ready + runner.clients.running + runner.clients.spawning)
            if isinstance(runner, MasterRunner)
            else 1
        )
        return {"elapsed": time.time() - self.started, "users": len(self.users), "points": points,
                "errors": errors, "workers": workers}  # fmt: skip

    def write(self, path: Path, runner) -> None:
        gone = self.gone(runner)
        document = {
            "workers": {node: {"name": name, "gone": node in gone} for node, name in self.nodes.items()},
            "users": [{**u, "complete": u["done"] and u["node"] not in gone} for u in self.users.values()],
        }
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(document), encoding="utf-8")
        partial.replace(path)


@events.init.add_listener
def _init(environment, **_):
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return  # a worker's users send their ledgers; the master merges them
    merged = Merged()
    runner.register_message(LEDGER, lambda environment, msg, **kw: merged.add(msg.node_id, msg.data))

    @events.test_start.add_listener
    def _start(environment, **_):
        merged.started = time.time()
        gevent.spawn(supervise, environment, merged)


def supervise(environment, merged: Merged) -> None:
    """End the test when every user is done (or its worker is gone); then write the ledger."""
    opts, runner = environment.parsed_options, environment.runner
    ramp = (opts.num_users or 1) / (opts.spawn_rate or opts.num_users or 1)
    deadline = merged.started + ramp + opts.mlflow_seconds + LAST_REQUESTS
    ledger = Path(opts.mlflow_ledger) if opts.mlflow_ledger else None
    while time.time() < deadline:
        if ledger is not None:
            progress = ledger.with_name(ledger.name + ".progress")
            progress.write_text(json.dumps(merged.progress(runner)), encoding="utf-8")
        # Each user ends itself --mlflow-seconds after its start: done once all have started and ended.
        if len(merged.users) >= (opts.num_users or 0) and merged.finished(runner):
            break
        gevent.sleep(0.2)
    if ledger is not None:
        merged.write(ledger, runner)
    runner.quit()
