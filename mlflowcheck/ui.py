"""The UI layer: the web app is served (``served``) and shows the run to a user in a real
browser (``browse``)."""

from __future__ import annotations

import re
from pathlib import Path

from mlflowcheck import seed
from mlflowcheck.diagnosis import CheckFailed, auth_from_env, describe_response, first_line, http
from mlflowcheck.suite import Suite


def served(suite: Suite) -> None:
    root = suite.target.ui_link()
    resp = http("GET", root)
    if resp.status_code != 200 or "<title>MLflow</title>" not in resp.text:
        raise CheckFailed(
            f"The MLflow web app is not served at {root}: {describe_response(resp)}.",
            "the server was started without its UI (--artifacts-only?) or a proxy in front "
            "of it rewrites the root path; open the address in a browser to see what answers.",
        )
    scripts = re.findall(r'<script[^>]+src="([^"]+\.js)"', resp.text)
    if not scripts:
        raise CheckFailed(
            "The UI page names no script to load.", "reinstall mlflow on the server: its static files are incomplete."
        )
    script = scripts[0].lstrip("./")
    js = http("GET", f"{suite.target.url}/{script}")
    if js.status_code != 200 or len(js.content) < 1000:
        raise CheckFailed(
            f"The UI's script {script} did not load: {describe_response(js)}.",
            "reinstall mlflow on the server, or check the --static-prefix / proxy path.",
        )
    suite.note("ui", f"{root} serves the web app ({len(js.content) // 1024} KiB script)")


# --- the browser check -----------------------------------------------------------------------
#
# Headless Chromium, driven by Playwright's Python package, opens the pages a user opens and
# looks for what a user looks for. The system's Chromium is used (Debian: apt-get install
# chromium): Playwright's own browser download cannot work on locked-down machines.

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: The flags a root, offline, headless Chromium needs to start quietly and quickly.
BROWSER_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
    "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage",
]  # fmt: skip
WAIT_MS = 20_000  # every wait in the browser has this deadline
INSTALL_TIP = "install it (Debian/Ubuntu: apt-get install chromium fonts-noto-cjk), or set MLFLOWCHECK_CHROMIUM"


def find_browser() -> tuple[str | None, str]:
    """The Chromium to use, or None and why not."""
    import importlib.util
    import os
    import shutil

    if importlib.util.find_spec("playwright") is None:
        return None, "the playwright package is not installed (pip install -r requirements.txt)"
    explicit = os.environ.get("MLFLOWCHECK_CHROMIUM")
    if explicit:
        return (
            (explicit, "")
            if os.access(explicit, os.X_OK)
            else (None, f"MLFLOWCHECK_CHROMIUM={explicit} is not runnable")
        )
    for name in BROWSER_NAMES:
        path = shutil.which(name)
        if path:
            return path, ""
    return None, "no Chromium found on this machine"


def browse(suite: Suite) -> None:
    """Open the experiment and run pages like a user; check what they show; take screenshots."""
    import pytest

    if suite.options.ui is False:
        pytest.skip("--no-ui")
    browser_path, why = find_browser()
    if browser_path is None:
        if suite.options.ui:
            raise CheckFailed(f"--ui was given but {why}.", INSTALL_TIP, fatal=True)
        pytest.skip(f"{why}; {INSTALL_TIP} to check the UI in a browser")
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    shots = suite.options.screenshots or suite.tmp / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=browser_path, args=BROWSER_ARGS, timeout=WAIT_MS)
        except PlaywrightError as exc:
            raise CheckFailed(
                f"Chromium at {browser_path} did not start: {first_line(str(exc))}", INSTALL_TIP, fatal=True
            ) from None
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000}, **browser_auth())
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()
            pages = UserPages(suite, page, shots)
            pages.experiment()
            pages.run()
            pages.metrics()
            pages.artifacts()
        finally:
            browser.close()
    suite.client.log_artifact(suite.run_id, str(pages.run_shot), artifact_path="screenshots")
    suite.note("browser", f"experiment, run, metrics and artifacts pages show the run; screenshots in {shots}")


def browser_auth() -> dict:
    """The client's credentials (diagnosis.auth_from_env), in Playwright's terms."""
    creds = auth_from_env()
    if "auth" in creds:
        user, password = creds["auth"]
        return {"http_credentials": {"username": user, "password": password}}
    if "headers" in creds:
        return {"extra_http_headers": creds["headers"]}
    return {}


class UserPages:
    """The pages a user opens after a run, and what they look for on each."""

    def __init__(self, suite: Suite, page, shots: Path):
        self.suite, self.page, self.shots = suite, page, shots
        self.run_shot: Path | None = None

    def open(self, url: str, what: str) -> None:
        from playwright.sync_api import Error as PlaywrightError

        try:
            self.page.goto(url, wait_until="domcontentloaded")
        except PlaywrightError as exc:
            raise CheckFailed(
                f"The browser could not open the {what} ({url}): {first_line(str(exc))}", PAGE_TIP
            ) from None

    def expect(self, text: str, what: str, exact: bool = True) -> None:
        """Wait (up to WAIT_MS) until ``text`` is visible; else fail with a screenshot."""
        from playwright.sync_api import Error as PlaywrightError

        try:
            self.page.get_by_text(text, exact=exact).filter(visible=True).first.wait_for(state="visible")
        except PlaywrightError:
            shot = self.shot(f"failed-{what.replace(' ', '-')}")
            raise CheckFailed(
                f"The {what} does not show {text!r} within {WAIT_MS // 1000}s (screenshot: {shot}).", PAGE_TIP
            ) from None

    def shot(self, name: str, full_page: bool = False) -> Path:
        path = self.shots / f"{self.suite.run_id}-{name}.png"
        self.close_side_panel()
        self.page.screenshot(path=str(path), full_page=full_page)
        self.suite.screenshots.append(str(path))
        return path

    def close_side_panel(self) -> None:
        # MLflow 3.x opens an "Assistant" panel beside the page; it hides half of the run.
        close = self.page.locator("[aria-label='Close']").or_(self.page.get_by_role("button", name="Close"))
        if close.count():
            close.first.click(timeout=2000, no_wait_after=True)

    def experiment(self) -> None:
        self.open(self.suite.experiment_url, "experiment page")
        self.expect(self.suite.experiment_name, "experiment page")
        self.expect(seed.RUN_NAME, "experiment page's run list")
        self.shot("experiment")

    def run(self) -> None:
        self.open(self.suite.run_url, "run page")
        self.expect(seed.RUN_NAME, "run page")
        self.expect(str(seed.PARAMS["model_type"]), "run page's parameters")
        for metric in ("accuracy", "loss"):
            self.expect(metric, "run page's metrics")
        self.expect(f"{seed.DATASET_NAME} (", "run page's datasets", exact=False)
        self.expect(seed.DATASET_CONTEXT, "run page's datasets")
        if self.suite.outcome("model") == "passed":
            self.expect("Logged models", "run page", exact=False)
            self.expect("Ready", "run page's logged models")
        if self.suite.outcome("registry") == "passed":
            self.expect(self.suite.options.registered_model, "run page's registered models", exact=False)
            self.expect(f"v{self.suite.registered_version}", "run page's registered models")
        self.run_shot = self.shot("run", full_page=True)

    def metrics(self) -> None:
        self.open(self.suite.run_page_url("model-metrics"), "metric charts")
        for metric in ("accuracy", "loss"):
            self.expect(metric, "metric charts")
        self.page.locator("canvas, svg.main-svg, .js-plotly-plot").first.wait_for(state="visible")
        self.shot("metrics")

    def artifacts(self) -> None:
        folder, name = seed.REPORT_PATH.split("/")
        self.open(self.suite.run_page_url("artifacts"), "artifacts tab")
        self.expect(folder, "artifacts tab")
        self.page.get_by_text(folder, exact=True).first.click()
        self.expect(name, "artifacts tab")
        self.page.get_by_text(name, exact=True).first.click()
        self.expect("MLflow deployment check report", "preview of the report", exact=False)
        self.shot("artifacts")


PAGE_TIP = (
    "open the address in a browser and look: the UI's script may fail (the browser console says "
    "why), a proxy may rewrite paths, or the page may need a newer browser"
)
