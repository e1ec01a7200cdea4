"""The helpers' process management (runtime): process groups, the model worker's start method,
the imports without the garbage collector, and the package map handed to the worker. The last
three run in a fresh interpreter: this one runs pytest's threads and has MLflow's state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from mlflowcheck.runtime.server import group_members


def test_group_members_are_the_processes_of_one_process_group():
    leader = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time;"
                               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
                               "time.sleep(60)"], start_new_session=True)  # fmt: skip
    try:
        for _ in range(100):
            members = group_members(leader.pid)
            if len(members) == 2:
                break
            time.sleep(0.05)
        assert leader.pid in members
        assert len(members) == 2
        assert os.getpid() not in members
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()
    # The grandchild dies a moment after the signal (it is not this process's child to wait for).
    deadline = time.monotonic() + 5
    while group_members(leader.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_members(leader.pid) == set()


def run_python(code: str, *args: str) -> str:
    """``code`` in a fresh interpreter (this one runs pytest's threads and has MLflow's state)."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_model_worker_is_forked_only_while_the_process_has_a_single_thread():
    out = run_python(
        "import threading, time\n"
        "from mlflowcheck.runtime.worker import start_method\n"
        "before = start_method()\n"
        "threading.Thread(target=time.sleep, args=(2,), daemon=True).start()\n"
        "print(before, start_method())\n"
    )
    assert out == "fork spawn"


def test_imports_run_without_the_garbage_collector_and_their_objects_are_frozen_after():
    out = run_python(
        "import gc\n"
        "from mlflowcheck.runtime.tuning import imports_without_gc\n"
        "with imports_without_gc():\n"
        "    during = gc.isenabled()\n"
        "    import json.decoder, email.parser\n"
        "print(during, gc.isenabled(), gc.get_freeze_count() > 0)\n"
        "gc.disable()\n"
        "with imports_without_gc():\n"
        "    pass\n"
        "print(gc.isenabled())\n"
    )
    assert out.splitlines() == ["False True True", "False"]  # a collector that was off stays off


def test_without_requirement_warnings_a_model_is_saved_and_loaded_without_mlflow_mapping_every_package(tmp_path):
    # The map costs half a second of CPU per process; this fails if MLflow makes it elsewhere too.
    out = run_python(
        "import sys, sklearn.linear_model, mlflow.sklearn, mlflow.pyfunc\n"
        "from mlflow.utils import requirements_utils as r\n"
        "from mlflowcheck.runtime import mlflow_compat\n"
        "mlflow_compat.without_requirement_warnings()\n"
        "model = sklearn.linear_model.LogisticRegression().fit([[0.0], [1.0]], [0, 1])\n"
        "mlflow.sklearn.save_model(model, sys.argv[1], pip_requirements=['scikit-learn==0.1'])\n"
        "mlflow.pyfunc.load_model(sys.argv[1])\n"
        "print(r._MODULES_TO_PACKAGES is None)\n",
        str(tmp_path / "model"),
    )
    assert out == "True"
