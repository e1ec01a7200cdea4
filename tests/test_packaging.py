"""`pip install .` gives the `mlflowcheck` command, which does what test_mlflow_local.py does."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib

from tests.support import ROOT


def test_pip_install_gives_a_console_command_that_runs_the_suite(server, tmp_path):
    # Install a copy (the build writes into the tree) into a venv that sees this
    # environment's packages, without the network.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "tests", "docs", "benchmarks", "__pycache__"))
    venv = tmp_path / "venv"
    # No pip of its own (that would bring an old setuptools): this environment's pip and setuptools build it.
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True, timeout=120
    )
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", "--no-deps",
         "--no-build-isolation", str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    command = venv / "bin" / "mlflowcheck"
    help_text = subprocess.run([command, "--help"], capture_output=True, text=True, timeout=60).stdout
    assert help_text.startswith("usage: mlflowcheck ")
    assert "--cleanup" in help_text
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        [command, "--tracking-uri", server.url, "--no-ui"],
        capture_output=True, text=True, timeout=300, cwd=work, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Verdict: PASS: 17 passed, 0 failed, 1 skipped" in proc.stdout
    # It ran the installed copy, not this checkout.
    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import mlflowcheck; print(mlflowcheck.__file__)"],
        capture_output=True, text=True, timeout=60, cwd=work,
    )  # fmt: skip
    assert str(venv) in where.stdout


def test_runtime_dependencies_are_declared_apart_from_test_and_lint_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("=")[0].split("<")[0] for dep in project["dependencies"]}
    assert {
        "mlflow",
        "scikit-learn",
        "skops",
        "pandas",
        "numpy",
        "requests",
        "packaging",
        "pytest",
        "playwright",
    } == names
    assert not {"ruff", "hypothesis"} & names
    assert project["requires-python"] == ">=3.11"
    assert sys.version_info >= (3, 11)
