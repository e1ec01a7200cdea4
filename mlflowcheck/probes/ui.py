"""The UI layer: the web app is served (``served``) and shows the run to a user in a real
browser (``browse``, with the pages in ``UserPages``; the browser itself is runtime.browser)."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from urllib.parse import urljoin

import requests

from mlflowcheck.core import seed
from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.observations import AUTH_NAMES
from mlflowcheck.explain.errors import unauthenticated
from mlflowcheck.explain.support import answer_of
from mlflowcheck.explain.text import describe_response, first_lines
from mlflowcheck.net.http import ResponseDeadline, http
from mlflowcheck.net.liveness import ask_version
from mlflowcheck.net.tls import tls_settings
from mlflowcheck.runtime.browser import ALIVE_EVERY_MS, INSTALL_TIP, WAIT_MS, BrowserSession, find_browser
from mlflowcheck.runtime.session import Session


def served(suite: Session) -> None:
    found = suite.implementation
    root = suite.target.url + (found.ui_path if found else "/")
    resp = http("GET", root)
    signed_out = sign_in_wall(resp, suite.implementation)
    if signed_out is not None:
        raise signed_out
    title = re.search(r"<title>([^<]*)</title>", resp.text)
    # MLflow's web app, or another server's copy of it under its own name ("FastTrackML (classic)").
    expected = ("MLflow",) if found is None or found.is_mlflow else ("MLflow", found.product)
    if resp.status_code != 200 or not title or not any(title.group(1).startswith(e) for e in expected):
        if found is not None and not found.is_mlflow:
            raise CheckFailed(
                f"{found.name} does not serve MLflow's web app at {root}: {describe_response(resp)}.",
                f"{found.product} may have a UI of its own; the browser checks are written for MLflow's web app.",
            )
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
    script = scripts[0]
    # Its first 64 KiB and its size: streaming all of it (4 MB) costs the server about 0.15 s of CPU
    # on every run (docs/performance.md); the browser check loads the whole of it.
    js = http("GET", urljoin(root, script), headers={"Range": f"bytes=0-{SCRIPT_PART - 1}"})
    if js.status_code not in (200, 206) or len(js.content) < 1000:
        raise CheckFailed(
            f"The UI's script {script} did not load: {describe_response(js)}.",
            "reinstall mlflow on the server, or check the --static-prefix / proxy path.",
        )
    suite.note("ui", f"{root} serves the web app ({script_size(js) // 1024} KiB script)")
    if suite.browser is not None:
        suite.browser.open_app(suite.target)  # the browser loads it while the tracking checks run


#: How much of the web app's script the ui check reads.
SCRIPT_PART = 64 * 1024


def script_size(resp) -> int:
    """The whole script's size: from a partial answer's Content-Range (``bytes 0-65535/4443475``), or
    the body a server that ignores ranges sent in full."""
    total = resp.headers.get("content-range", "").rpartition("/")[2]
    return int(total) if resp.status_code == 206 and total.isdigit() else len(resp.content)


def sign_in_wall(resp, server) -> CheckFailed | None:
    """The web app is behind authentication (a 401, or a redirect to a sign-in page): an
    access verdict, never a UI problem."""
    if resp.status_code == 401:
        return unauthenticated(answer_of(resp), server)
    location = resp.headers.get("location", "").split("?", 1)[0]  # a query may carry a token
    if resp.status_code in (301, 302, 303, 307, 308) and re.search(r"log[-_]?in|sign[-_]?in|oidc|auth", location, re.I):
        layer = AUTH_NAMES.get(server.auth, "an auth layer") if server is not None and server.auth else "an auth layer"
        return CheckFailed(
            f"The web app at {resp.url} redirects to a sign-in page ({location}): {layer} protects it, and this "
            "suite cannot sign in through a web form.",
            "that is how the UI should look to a client without a session; the API checks show whether the "
            "credentials this client has work (set them, then run again).",
        )
    return None


#: The user page checked while the model checks run: the experiment's, with the run listed.
#: Not the run's tabs (metric charts, artifacts): MLflow's web app keeps the run it fetched for
#: one tab and shows it on the others, so a tab opened before the model was logged would leave
#: the run page showing the run without its model, still RUNNING.
PAGES_WITHOUT_MODEL = ("experiment",)


def start_pages_without_model(suite: Session) -> None:
    if suite.browser is not None and suite.outcome("ui") == "passed":
        suite.browser.start_pages(PAGES_WITHOUT_MODEL)


def start_pages_with_model(suite: Session) -> None:
    """The run's pages, as soon as the model worker has registered the model (the run page
    shows its version), while this process goes on with its checks: called before each check
    (engine.plugin). Not with --load: the metrics page is to show the load probe's figures."""
    if suite.browser is None or suite.outcome("ui") != "passed" or suite.options.load_clients:
        return
    if suite.model_worker is None or "run" in suite.browser.pages:
        return
    verdicts = suite.model_worker.verdicts()
    if any(verdicts.get(name, {}).get("status") != "passed" for name in ("model", "registry")):
        return  # not yet, or one failed: the browser check opens the pages after the registry check
    suite.created.take(suite.model_worker.results.created)  # the version the run page shows
    suite.browser.start_pages(run_pages(suite))


def run_pages(suite: Session) -> tuple[str, ...]:
    # What the artifact store holds is the artifacts group's verdict: without it, the UI check
    # looks at the pages that do not show artifacts.
    return ("run", "metrics", "artifacts") if suite.outcome("artifact") == "passed" else ("run", "metrics")


def passed(suite: Session, name: str) -> bool:
    """The check passed, or (a model worker's check whose turn has not come) the verdict the
    worker handed back says so. Called from the browser's thread: it only reads what the main
    thread received."""
    worker = suite.model_worker
    if suite.outcome(name) is not None or worker is None or worker.results is None:
        return suite.outcome(name) == "passed"
    return worker.results.checks.get(name, {}).get("status") == "passed"


def browse(suite: Session) -> None:
    """Open the experiment and run pages like a user; check what they show; take screenshots."""
    import pytest

    if suite.options.ui is False:
        pytest.skip("--no-ui")
    if suite.implementation is not None and not suite.implementation.is_mlflow:
        pytest.skip(f"the pages are MLflow's web app's, and {suite.implementation.name} is not MLflow's own server")
    browser_path, why = find_browser()
    if browser_path is None:
        if suite.options.ui:
            raise CheckFailed(f"--ui was given but {why}.", INSTALL_TIP, fatal=True)
        pytest.skip(f"{why}; {INSTALL_TIP} to check the UI in a browser")
    if suite.browser is None:  # -k selected the browser check without the checks that start it
        suite.browser = BrowserSession(suite, browser_path, UserPages)
    session = suite.browser
    session.result(session.launched)
    pages = ("experiment", *run_pages(suite))
    session.start_pages(pages)
    run_shot = None
    for name in pages:
        shot = session.result(session.pages[name])
        run_shot = shot if name == "run" else run_shot
    if "artifacts" in pages:
        suite.client.log_artifact(suite.run_id, str(run_shot), artifact_path="screenshots")
    shots = suite.options.screenshots or suite.tmp / "screenshots"
    suite.note("browser", f"{', '.join(pages[:-1])} and {pages[-1]} pages show the run; screenshots in {shots}")


#: The page Playwright's client-certificate proxy shows when its TLS connection to the server fails.
CLIENT_CERT_ERROR = "Playwright client-certificate error"


class UserPages:
    """The pages a user opens after a run, and what they look for on each."""

    def __init__(self, suite: Session, page, shots: Path, stale: list[str] | None = None):
        self.suite, self.page, self.shots = suite, page, shots
        self.stale = stale if stale is not None else []

    def open(self, url: str, what: str) -> None:
        from playwright.sync_api import Error as PlaywrightError

        try:
            self.page.goto(url, wait_until="domcontentloaded")
        except PlaywrightError as exc:
            raise CheckFailed(
                f"The browser could not open the {what} ({url}): {first_lines(str(exc))}", page_tip(str(exc))
            ) from None
        if tls_settings().client_cert:
            text = self.page.evaluate("document.body ? document.body.innerText.slice(0, 400) : ''")
            if text.startswith(CLIENT_CERT_ERROR):
                raise CheckFailed(f"The browser could not open the {what} ({url}): {first_lines(text)}", TLS_TIP)

    def expect(self, text: str, what: str, exact: bool = True) -> None:
        """Wait (up to WAIT_MS) until ``text`` is visible; else fail with a screenshot. Every
        few seconds of waiting, ask the server whether it still answers: a page whose server
        died shows nothing, and that is a dead server (a connection error), not a page that
        failed to show the run."""
        self.wait_visible(self.page.get_by_text(text, exact=exact).filter(visible=True).first, repr(text), what)

    def wait_visible(self, locator, shown: str, what: str) -> None:
        """``expect``'s wait, for any locator; ``shown`` names it in the failure."""
        from playwright.sync_api import Error as PlaywrightError

        end = time.monotonic() + WAIT_MS / 1000
        while True:
            try:
                left_ms = (end - time.monotonic()) * 1000
                locator.wait_for(state="visible", timeout=max(100, min(ALIVE_EVERY_MS, left_ms)))
                return
            except PlaywrightError:
                if time.monotonic() >= end:
                    break
                if self.stale:
                    self.reload_after_stale_connection()
                    continue
                # It took the request and is slow to answer (ReadTimeout, ResponseDeadline): busy, not
                # dead (a basic-auth server hashes the password of every request the page makes); the
                # page's deadline decides. Nothing answers: requests.ConnectionError, the plugin says
                # the server died.
                with contextlib.suppress(requests.ReadTimeout, ResponseDeadline):
                    ask_version(self.suite.target)
        shot = self.shot(f"failed-{what.replace(' ', '-')}")
        raise CheckFailed(
            f"The {what} does not show {shown} within {WAIT_MS // 1000}s (screenshot: {shot}).", PAGE_TIP
        ) from None

    def reload_after_stale_connection(self) -> None:
        """Reload the page after a request was lost (the page's deadline still bounds it): a script
        or style sheet of the web app lost on a connection the server had closed leaves MLflow's
        "Something went wrong" (a ChunkLoadError).

        With client certificates, Chromium's connections go through Playwright's proxy, which keeps
        Chromium's side open after the server closes its idle keep-alive connection (uvicorn's
        --timeout-keep-alive, 5 s by default): Chromium's next requests are sent on those and, retried
        on the next pooled ones, fail with ERR_TOO_MANY_RETRIES. The reload opens new connections."""
        self.stale.clear()
        with self.suite.timeline.phase("browser: reload after a request lost on a closed connection"):
            self.page.reload(wait_until="domcontentloaded")

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

    def run(self) -> Path:
        self.open(self.suite.run_url, "run page")
        self.expect(seed.RUN_NAME, "run page")
        self.expect(str(seed.PARAMS["model_type"]), "run page's parameters")
        for metric in ("accuracy", "loss"):
            self.expect(metric, "run page's metrics")
        if self.suite.outcome("dataset") == "passed":
            self.expect(f"{seed.DATASET_NAME} (", "run page's datasets", exact=False)
            self.expect(seed.DATASET_CONTEXT, "run page's datasets")
        if passed(self.suite, "model"):
            self.expect("Logged models", "run page", exact=False)
            self.expect("Ready", "run page's logged models")
        if passed(self.suite, "registry"):
            self.expect(self.suite.options.registered_model, "run page's registered models", exact=False)
            self.expect(f"v{self.suite.created.registered_version}", "run page's registered models")
        return self.shot("run", full_page=True)

    def metrics(self) -> None:
        self.open(self.suite.run_page_url("model-metrics"), "metric charts")
        for metric in ("accuracy", "loss"):
            self.expect(metric, "metric charts")
        self.wait_visible(self.page.locator("canvas, svg.main-svg, .js-plotly-plot").first, "a chart", "metric charts")
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


TLS_TIP = (
    "the browser trusts what MLflow's client trusts: set MLFLOW_TRACKING_SERVER_CERT_PATH to the CA that signed "
    "the server's certificate (and MLFLOW_TRACKING_CLIENT_CERT_PATH to your client certificate and key, if the "
    "server asks for one)"
)


def page_tip(error: str) -> str:
    return TLS_TIP if "ERR_CERT" in error or "ERR_SSL" in error or "ERR_BAD_SSL" in error else PAGE_TIP
