"""The docs that are made from the code say what the code does: a page that drifted from the
registry or the parser fails here, with the command that brings it back."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import fields

import pytest

from mlflowcheck import docs
from mlflowcheck.cli import build_parser
from mlflowcheck.core.options import Options
from mlflowcheck.engine import checks
from mlflowcheck.engine.registry import BY_NAME, CHECKS, DEFAULT, GROUPS

FIX = "run `python -m mlflowcheck.docs` and commit what it writes"


@pytest.mark.parametrize("path", sorted(docs.pages()), ids=lambda p: p.name)
def test_a_generated_page_is_what_the_code_makes_now(path):
    assert path.exists(), f"{path} is missing: {FIX}"
    assert path.read_text(encoding="utf-8") == docs.pages()[path], f"{path.name} drifted from the code: {FIX}"


def test_every_check_in_the_registry_has_code_and_every_check_function_is_registered():
    functions = {name.removeprefix("check_") for name in vars(checks) if name.startswith("check_")}
    assert set(BY_NAME) - functions == set(), "registered without code (engine/checks.py)"
    assert functions - set(BY_NAME) == set(), "code without a registry entry (engine/registry.py)"


def test_the_registry_is_consistent_needs_point_backwards_and_groups_and_options_exist():
    seen: set[str] = set()
    for check in CHECKS:
        assert check.group in GROUPS, check
        assert set(check.needs) <= seen, f"{check.name} needs a check that runs after it: {check.needs}"
        if check.opt_in:
            assert check.flag in build_parser()._option_string_actions, check
            assert check.option in {field.name for field in fields(Options)}, check
        seen.add(check.name)
    assert len(seen) == len(CHECKS), "two checks share a name"
    assert DEFAULT[:5] == ("uri", "network", "server", "access", "versions")


def test_help_lists_every_check_in_the_order_it_runs():
    text = build_parser().format_help()
    listed = re.findall(r"^  (\w+) +(?:\[--[\w-]+\] )?\S", text.split("Checks, in the order they run")[1], re.M)
    assert listed == [check.name for check in CHECKS]


def test_every_option_the_readme_names_exists_in_the_parser():
    readme = (docs.ROOT / "README.md").read_text(encoding="utf-8")
    known = set(build_parser()._option_string_actions)
    named = set(re.findall(r"`(--[a-z][\w-]*)", readme))
    assert named, "the README names no option"
    assert named <= known, f"the README names options the parser lacks: {sorted(named - known)}"


def test_every_relative_link_in_the_readme_and_docs_points_at_a_file():
    broken = []
    for page in [docs.ROOT / "README.md", *sorted((docs.ROOT / "docs").glob("*.md"))]:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.name}: {target}")
    assert not broken, broken


def test_the_docs_command_with_check_writes_nothing_and_fails_on_a_drifted_page(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mlflowcheck.docs", "--check"], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert (proc.returncode, proc.stdout) == (0, ""), proc.stdout + proc.stderr
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# x\n<!-- checks:begin -->\nold\n<!-- checks:end -->\n", encoding="utf-8")
    (tmp_path / "docs" / "development.md").write_text("<!-- layout:begin -->\n<!-- layout:end -->\n", encoding="utf-8")
    (tmp_path / "docs" / "monitoring.md").write_text("<!-- probe-checks:begin -->\n<!-- probe-checks:end -->\n")
    assert docs.main(["--check"], root=tmp_path) == 1
    assert not (tmp_path / "docs" / "checks.md").exists()
    assert "old" in (tmp_path / "README.md").read_text(encoding="utf-8")
