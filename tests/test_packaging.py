"""`pip install .` gives the `mlflowcheck` command, which does what test_mlflow_local.py does;
and the lowest versions pyproject.toml allows (.ci/floors.txt) really run the suite."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from mlflowcheck.cli import build_parser
from mlflowcheck.runtime.browser import find_browser
from mlflowcheck.runtime.server import free_port
from tests.databases import database_or_skip
from tests.support import ALL_CHECKS, ENTRY, ROOT, run_suite

FLOORS = ROOT / ".ci" / "floors.txt"


def test_pip_install_gives_a_console_command_that_runs_the_suite(server, tmp_path, monkeypatch):
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
    # The command line is this checkout's, named after the command (argparse wraps at $COLUMNS).
    monkeypatch.setenv("COLUMNS", "100")
    help_text = subprocess.run([command, "--help"], capture_output=True, text=True, timeout=60).stdout
    assert help_text == build_parser("mlflowcheck").format_help()
    assert help_text.startswith("usage: mlflowcheck ")
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        [command, "--tracking-uri", server.url, "--no-ui"],
        capture_output=True, text=True, timeout=300, cwd=work, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Verdict: PASS: {len(ALL_CHECKS) - 1} passed, 0 failed, 1 skipped" in proc.stdout
    # It ran the installed copy, not this checkout.
    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import mlflowcheck; print(mlflowcheck.__file__)"],
        capture_output=True, text=True, timeout=60, cwd=work,
    )  # fmt: skip
    assert str(venv) in where.stdout


def imported_distributions() -> dict[str, set[str]]:
    """The third-party modules the package's code imports (top level, anywhere in a file), each
    with the distributions installed here that provide it."""
    provides = importlib.metadata.packages_distributions()
    modules = set()
    for path in (ROOT / "mlflowcheck").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    modules -= {*sys.stdlib_module_names, "mlflowcheck"}
    return {m: {canonicalize_name(d) for d in provides.get(m, [])} for m in modules}


def required_by(names: set[str]) -> set[str]:
    """``names`` and everything they require when installed without extras, transitively."""
    found, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        for req in map(Requirement, importlib.metadata.requires(name) or []):
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return found


def test_what_the_code_imports_is_what_pyproject_declares_and_no_test_or_lint_tool_is_among_it():
    declared = {canonicalize_name(Requirement(dep).name) for dep in tomllib.loads(
        (ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}  # fmt: skip
    imported = imported_distributions()
    assert all(imported.values()), f"imported, but installed by no distribution: {imported}"
    # Every declared dependency is used: imported by the code itself (mlflow by one of its parts).
    unused = [dep for dep in declared if not any(dep in dists for dists in imported.values())]
    assert not unused, f"declared in pyproject.toml, imported nowhere in mlflowcheck/: {unused}"
    # Every import is a declared dependency, or comes with one (urllib3 with requests, SQLAlchemy with mlflow).
    installed = required_by(declared)
    assert not {m: d for m, d in imported.items() if not d & installed}, "imported but not installed by `pip install .`"
    # The tools that only the tests and the linter need (requirements.txt's other pins) stay out of both.
    pins = {canonicalize_name(Requirement(line).name) for line in requirement_lines(ROOT / "requirements.txt")}
    tools = pins - installed - {canonicalize_name(Requirement(d).name) for d in extras()}
    assert {"ruff", "hypothesis", "pytest-httpserver"} <= tools
    assert not tools & {d for dists in imported.values() for d in dists}


def extras() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [dep for deps in project["optional-dependencies"].values() for dep in deps]


def declared_lower_bounds() -> dict[str, Version | None]:
    """Each runtime dependency and extra of pyproject.toml: its lower bound (None: it has none)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bounds = {}
    for dep in [*project["dependencies"], *extras()]:
        req = Requirement(dep)
        lows = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
        bounds[canonicalize_name(req.name)] = max(lows, default=None)
    return bounds


def read_floors() -> dict[str, Version]:
    """.ci/floors.txt: the constraints file of ``name==version`` lines that CI installs."""
    floors = {}
    for line in FLOORS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            assert [s.operator for s in req.specifier] == ["=="], f"{FLOORS.name}: {line!r} is not name==version"
            floors[canonicalize_name(req.name)] = Version(next(iter(req.specifier)).version)
    return floors


def test_the_floors_file_pins_every_dependency_at_its_lower_bound_in_pyproject():
    bounds = declared_lower_bounds()
    assert not [name for name, low in bounds.items() if low is None], "a dependency without a lower bound"
    assert read_floors() == bounds, f"pyproject.toml's lower bounds and {FLOORS} drifted apart"
    # The tested pins (requirements.txt) lie above the floors: the two ends of each range.
    pins = {canonicalize_name(r.name): r for r in map(Requirement, requirement_lines(ROOT / "requirements.txt"))}
    assert len(bounds.keys() & pins.keys()) >= 10  # all but packaging, which comes with the others
    for name in bounds.keys() & pins.keys():
        (pin,) = pins[name].specifier
        assert Version(pin.version) >= bounds[name], name


def requirement_lines(path: Path) -> list[str]:
    return [line for raw in path.read_text().splitlines() if (line := raw.split("#", 1)[0].strip())]


@pytest.fixture(scope="session")
def floors_python() -> Path:
    """The Python of the venv that .ci/run fills with the lowest allowed versions."""
    venv = os.environ.get("MLFLOWCHECK_FLOORS_VENV")
    python = Path(venv or "/nonexistent") / "bin" / "python"
    if not python.exists():
        why = (
            f"MLFLOWCHECK_FLOORS_VENV={venv} has no bin/python"
            if venv
            else "MLFLOWCHECK_FLOORS_VENV is not set (.ci/run builds the venv of .ci/floors.txt and sets it)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the suite at the lowest allowed versions, but {why}", pytrace=False)
        pytest.skip(why)
    # The venv holds exactly the floors, or the test would prove nothing about them.
    script = "import importlib.metadata as m, json, sys; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    names = sorted(read_floors())
    found = subprocess.run([python, "-c", script, *names], capture_output=True, text=True, timeout=60, check=True)
    installed = {name: Version(v) for name, v in json.loads(found.stdout).items()}
    assert installed == read_floors(), f"{venv} is not the venv of {FLOORS}: rerun .ci/run"
    return python


def test_the_lowest_allowed_versions_of_every_dependency_pass_the_suite(floors_python, server, tmp_path):
    # floors_python first: where it skips, no server is started for nothing.
    ui = find_browser()[0] is not None
    args = ("--tracking-uri", server.url, *(("--ui", "--screenshots", str(tmp_path / "shots")) if ui else ()))
    # --load: Locust at its floor runs the load probe too.
    result = run_suite(tmp_path, *args, "--load", "2", "--load-seconds", "2", ui=ui, python=floors_python)
    assert result.report["load"]["lost"] == 0, result.output
    result.assert_all_passed()
    assert f"(client MLflow {read_floors()['mlflow']})" in result.output
    # The monitoring probe at prometheus-client's floor: its textfile is what promtool accepts.
    textfile = tmp_path / "mlflow_probe.prom"
    probe = subprocess.run(
        [floors_python, str(ENTRY), "--probe", "--tracking-uri", server.url, "--prom-textfile", str(textfile)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stdout + probe.stderr
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    lint = subprocess.run([promtool, "check", "metrics"], input=textfile.read_text(), capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_the_lowest_allowed_database_drivers_serve_the_whole_suite(floors_python, backend, tmp_path):
    # The suite starts the server itself, from the floors venv: MLflow 3.17.0's server on
    # SQLAlchemy through psycopg2-binary or PyMySQL at their floors.
    with database_or_skip(backend, tmp_path) as db:
        result = run_suite(
            tmp_path, "--start-server", "--tracking-uri", f"http://127.0.0.1:{free_port()}",
            "--server-dir", str(tmp_path / "server"), "--backend-store-uri", db.uri, python=floors_python,
        )  # fmt: skip
    result.assert_all_passed()
    assert result.check("server")["message"] == f"MLflow {read_floors()['mlflow']}"
