"""The browser check: headless Chromium opens the run as a user does, and takes screenshots."""

from __future__ import annotations

import os

import pytest

from mlflowcheck.runtime.browser import find_browser
from tests.faultproxy import Fault
from tests.support import run_suite
from tests.test_broken_deployments import assert_fails, run_through_proxy

PNG = b"\x89PNG\r\n\x1a\n"
NO_BROWSER = {"PATH": "/nonexistent", "MLFLOWCHECK_CHROMIUM": ""}


@pytest.fixture(scope="module")
def browser_available():
    path, why = find_browser()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser check, but {why}", pytrace=False)
        pytest.skip(why)


@pytest.fixture(scope="module")
def browser_run(server, browser_available, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    result = run_suite(tmp, "--tracking-uri", server.url, "--ui", "--screenshots", str(tmp / "shots"), ui=True)
    return result, tmp / "shots", server


def test_browser_check_passes_and_sees_the_run(browser_run):
    result, _, _ = browser_run
    result.assert_all_passed()
    assert "experiment, run, metrics and artifacts pages show the run" in result.check("browser")["message"]


def test_screenshots_of_the_pages_are_saved_as_png(browser_run):
    result, shots, _ = browser_run
    run = result.report["run_id"]
    expected = {f"{run}-{page}.png" for page in ("experiment", "run", "metrics", "artifacts")}
    assert {p.name for p in shots.iterdir()} == expected
    for name in expected:
        data = (shots / name).read_bytes()
        assert data.startswith(PNG), name
        assert len(data) > 10_000, name
    assert sorted(result.report["screenshots"]) == sorted(str(shots / n) for n in expected)


def test_the_run_carries_a_screenshot_of_itself_as_an_artifact(browser_run):
    result, shots, server = browser_run
    exp, run = result.report["experiment_id"], result.report["run_id"]
    logged = server.workdir / "mlartifacts" / exp / run / "artifacts" / "screenshots" / f"{run}-run.png"
    assert logged.read_bytes() == (shots / f"{run}-run.png").read_bytes()


def test_browser_check_is_skipped_with_the_reason_when_no_chromium_is_found(server, tmp_path):
    result = run_suite(
        tmp_path, "--tracking-uri", server.url, "-k", "not model and not registry", env=NO_BROWSER, ui=True
    )
    assert result.code == 0, result.output
    assert result.check("browser")["status"] == "skipped"
    assert "no Chromium found on this machine; install it (Debian/Ubuntu: apt-get install chromium" in result.output


def test_ui_flag_without_a_browser_is_an_error_with_the_install_hint(server, tmp_path):
    result = run_suite(tmp_path, "--tracking-uri", server.url, "--ui", "-k", "not model and not registry",
                       env=NO_BROWSER, ui=True)  # fmt: skip
    assert_fails(result, "browser", "--ui was given but no Chromium found", "apt-get install chromium", code=2)


def test_browser_check_fails_with_a_screenshot_when_the_ui_script_is_broken(server, browser_available, tmp_path):
    # The page is served and its script downloads, but the script is garbage: only a real
    # browser notices that the user sees nothing.
    shots = tmp_path / "shots"
    result = run_through_proxy(
        server, tmp_path, Fault("GET", r"/static-files/static/js/main\.[0-9a-f]+\.js$", "corrupt"),
        args=["--ui", "--screenshots", str(shots), "-k", "not model and not registry"],
    )  # fmt: skip
    assert result.check("ui")["status"] == "passed"
    assert_fails(result, "browser", "The experiment page does not show", "open the address in a browser")
    assert any(p.name.endswith("-failed-experiment-page.png") for p in shots.iterdir())
