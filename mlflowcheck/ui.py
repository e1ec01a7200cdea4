"""The UI layer: the web app is served (``served``) and shows the run to a user in a real
browser (``browse``)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import queue
import re
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

from mlflowcheck import seed
from mlflowcheck.diagnosis import (
    CheckFailed,
    ResponseDeadline,
    Target,
    ask_version,
    auth_from_env,
    describe_response,
    first_line,
    http,
    parse_target,
    server_certificate,
    tls_settings,
)
from mlflowcheck.secrets import credentials_allowed, origin
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
    if suite.browser is not None:
        suite.browser.open_app(suite.target)  # the browser loads it while the tracking checks run


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
ALIVE_EVERY_MS = 2_000  # while waiting for a page, ask this often whether the server still answers
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


class BrowserSession:
    """Headless Chromium, driven from a thread of its own, started before it is needed.

    Starting Chromium and loading MLflow's 4 MB web app take seconds; the command line starts
    the session while the server boots (``start_browser``), the ``ui`` check has it load the
    web app while the tracking checks run (``open_app``), and the experiment page is checked
    while the model worker works (``start_pages``). Playwright's sync API
    must be used from one thread: every call goes through ``submit``, run in order by this
    session's thread. The thread is a daemon: a run that ends early (Ctrl+C, --timeout) does
    not wait for it, and Playwright's driver closes Chromium when this process goes.
    """

    def __init__(self, suite: Suite, browser_path: str):
        self.suite = suite
        self.jobs: queue.Queue = queue.Queue()
        self.page = None
        self.pages: dict[str, Future] = {}  # the user pages asked for, by name
        self.failed = False  # a page failed: the pages after it are not opened (each waits up to WAIT_MS)
        self.stale: list[str] = []  # requests lost on connections the server had closed (STALE_CONNECTION)
        self.app_opened = False
        self.playwright = self.browser = None  # set by _launch, in the session's thread
        threading.Thread(target=self._serve, name="browser", daemon=True).start()
        self.launched = self.submit(self._launch, browser_path)

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        self.jobs.put((future, fn, args))
        return future

    def _serve(self) -> None:
        while True:
            future, fn, args = self.jobs.get()
            if fn is None:
                future.set_result(None)
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to whoever waits for it
                future.set_exception(exc)

    def _launch(self, browser_path: str) -> None:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright

        with self.suite.timeline.phase("browser: Chromium starts"):
            target = self.suite.target or target_or_none(self.suite.options.tracking_uri)
            tls = browser_tls(target)
            os.environ.update(tls.driver_env)  # read by Playwright's driver, which starts now
            self.playwright = sync_playwright().start()
            try:
                self.browser = self.playwright.chromium.launch(
                    executable_path=browser_path, args=BROWSER_ARGS + tls.args, timeout=WAIT_MS
                )
            except PlaywrightError as exc:
                raise CheckFailed(
                    f"Chromium at {browser_path} did not start: {first_line(str(exc))}", INSTALL_TIP, fatal=True
                ) from None
            auth = browser_auth(target)
            context = self.browser.new_context(viewport={"width": 1400, "height": 1000}, **auth, **tls.context_options)
            if "extra_http_headers" in auth:
                scope_headers(context, target, self.playwright.request.new_context())
            context.set_default_timeout(WAIT_MS)
            self.page = context.new_page()
            if "client_certificates" in tls.context_options:
                self.page.on(
                    "requestfailed", lambda r: STALE_CONNECTION in (r.failure or "") and self.stale.append(r.url)
                )

    def wait_launched(self) -> None:
        """Wait until Chromium has started (or failed to: the browser check reports why)."""
        with contextlib.suppress(Exception):
            self.launched.result(timeout=WAIT_MS / 1000 + 5)

    def open_app(self, target: Target) -> None:
        """Load the web app now (once), so that the pages checked later open within it: at the
        Default experiment's page (id 0, on every MLflow server), which loads the code of the
        experiment pages too."""
        if self.app_opened:
            return
        self.app_opened = True
        url = target.ui_link("/experiments/0?workflowType=machine_learning")

        def load() -> None:
            if self.page is None:
                return
            with self.suite.timeline.phase("browser: web app loads"), contextlib.suppress(Exception):
                # Errors here are the pages' to report, with their own messages.
                self.page.goto(url, wait_until="load")
                self.page.get_by_text("Default", exact=True).first.wait_for(state="visible", timeout=5000)

        self.submit(load)

    def start_pages(self, names: tuple[str, ...]) -> None:
        """Open these user pages (UserPages methods) in order, unless asked for before."""
        for name in names:
            if name not in self.pages:
                self.pages[name] = self.submit(self._user_page, name)

    def _user_page(self, name: str):
        if self.failed:
            return None  # the first failure is the one reported
        if self.page is None:
            return None  # Chromium did not start: ``launched`` holds why
        shots = self.suite.options.screenshots or self.suite.tmp / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        pages = UserPages(self.suite, self.page, shots, self.stale)
        try:
            with self.suite.timeline.phase(f"browser: {name} page"):
                return getattr(pages, name)()
        except BaseException:
            self.failed = True
            raise

    def result(self, future: Future):
        """What a job returned, or its exception, waiting at most a page's worth of waits."""
        try:
            return future.result(timeout=self.suite.remaining(4 * WAIT_MS / 1000 + 30))
        except FutureTimeout:
            raise CheckFailed(
                "The browser did not finish opening the pages in time.",
                "look at the server's log; the pages' API calls may hang.",
            ) from None

    def close(self) -> None:
        """Close Chromium (waiting a little for it), and end the thread."""

        def close() -> None:
            with contextlib.suppress(Exception):
                if self.browser is not None:
                    self.browser.close()
                if self.playwright is not None:
                    self.playwright.stop()

        done = self.submit(close)
        self.jobs.put((Future(), None, ()))
        with contextlib.suppress(Exception):
            done.result(timeout=10)


def start_browser(suite: Suite) -> BrowserSession | None:
    """Start Chromium for the browser check, if it is going to run: not with --no-ui, and only
    where a Chromium is found (otherwise the check reports why it skipped or failed)."""
    if suite.options.ui is False:
        return None
    browser_path, _ = find_browser()
    if browser_path is None:
        return None
    return BrowserSession(suite, browser_path)


#: The user page checked while the model checks run: the experiment's, with the run listed.
#: Not the run's tabs (metric charts, artifacts): MLflow's web app keeps the run it fetched for
#: one tab and shows it on the others, so a tab opened before the model was logged would leave
#: the run page showing the run without its model, still RUNNING.
PAGES_WITHOUT_MODEL = ("experiment",)


def start_pages_without_model(suite: Suite) -> None:
    if suite.browser is not None and suite.outcome("ui") == "passed":
        suite.browser.start_pages(PAGES_WITHOUT_MODEL)


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
    if suite.browser is None:  # -k selected the browser check without the checks that start it
        suite.browser = BrowserSession(suite, browser_path)
    session = suite.browser
    session.result(session.launched)
    session.start_pages(("experiment", "run", "metrics", "artifacts"))
    run_shot = None
    for name in ("experiment", "run", "metrics", "artifacts"):
        shot = session.result(session.pages[name])
        run_shot = shot if name == "run" else run_shot
    suite.client.log_artifact(suite.run_id, str(run_shot), artifact_path="screenshots")
    shots = suite.options.screenshots or suite.tmp / "screenshots"
    suite.note("browser", f"experiment, run, metrics and artifacts pages show the run; screenshots in {shots}")


def browser_auth(target: Target | None) -> dict:
    """The client's credentials (diagnosis.auth_from_env) as the Authorization header Chromium
    sends, for the target's origin only (secrets.credentials_allowed), as the suite's own
    requests send them: extra_http_headers, which Chromium sends with every request of the page,
    to any origin, so ``scope_headers`` takes it off the requests to other origins.

    Basic auth too, sent at once as requests sends it, rather than Playwright's http_credentials:
    without ``origin`` those answer any origin's 401 challenge; with it, Playwright answers a
    challenge of another origin with CDP's "Default" action, which leaves the request waiting
    for a login dialog that never comes (the page's load event never fires; see
    https://github.com/microsoft/playwright/pull/37169, where this was fixed for BiDi only)."""
    if target is None or not credentials_allowed(target.url):
        return {}
    creds = auth_from_env()
    if "auth" in creds:
        user, password = creds["auth"]
        pair = f"{user}:{password}"
        try:
            raw = pair.encode("latin-1")  # as requests encodes it
        except UnicodeEncodeError:
            raw = pair.encode("utf-8")
        return {"extra_http_headers": {"Authorization": f"Basic {base64.b64encode(raw).decode()}"}}
    if "headers" in creds:
        return {"extra_http_headers": creds["headers"]}
    return {}


def browser_origin(url: str) -> str:
    """The origin of ``url`` as the browser writes it in request URLs (no default port)."""
    at = origin(url) or ""
    for scheme, port in (("http", 80), ("https", 443)):
        if at.startswith(f"{scheme}://") and at.endswith(f":{port}"):
            return at[: -len(f":{port}")]
    return at


def scope_headers(context, target: Target, requests_without_headers) -> None:
    """Take the extra_http_headers (the credentials) off every request to another origin than
    the target's: a page, a script or an image of the web app (or of a proxy in front of it)
    naming another origin must not get them. The route matches only other origins, in
    Playwright's driver: the web app's own requests are not intercepted and cost nothing more.

    Not the other way round (a route adding the header to the target's requests): the headers
    a route adds follow a redirect to another origin (Route.continue_'s documentation), whereas
    Chromium drops the Authorization header of extra_http_headers on a cross-origin redirect."""
    from playwright.sync_api import Error as PlaywrightError

    others = re.compile(f"^(?!{re.escape(browser_origin(target.url))}/)", re.IGNORECASE)

    def strip(route) -> None:
        headers = {k: v for k, v in route.request.headers.items() if k.lower() != "authorization"}
        # Fetched by Playwright, not continued: once a route is set, Playwright answers every 401
        # challenge for which it has no credentials with CDP's "Default" action, and Chromium
        # then waits for a login dialog that never comes (the page's load event never fires;
        # https://github.com/microsoft/playwright/pull/37169 fixed this for BiDi only).
        # Playwright's own request (a request context without the extra headers: Route.fetch
        # would add them back) returns the 401. Other origins are rare: this costs nothing.
        try:
            route.fulfill(response=requests_without_headers.fetch(route.request, headers=headers, timeout=WAIT_MS))
        except PlaywrightError:
            route.abort()

    context.route(others, strip)


@dataclass
class BrowserTls:
    """The user's TLS settings in Chromium's and Playwright's terms."""

    args: list[str] = field(default_factory=list)  # Chromium's command line
    context_options: dict = field(default_factory=dict)  # Browser.new_context's
    driver_env: dict[str, str] = field(default_factory=dict)  # Playwright's driver (Node) process's


def browser_tls(target: Target | None) -> BrowserTls:
    """Make the browser trust what MLflow's client trusts (diagnosis.tls_settings), no more.

    MLFLOW_TRACKING_INSECURE_TLS=true: Playwright's ignore_https_errors. Otherwise the suite
    makes the TLS handshake itself, verifying the chain and host name against the CAs the client
    uses (MLFLOW_TRACKING_SERVER_CERT_PATH, else requests' bundle), and tells Chromium to accept
    that server's key (--ignore-certificate-errors-spki-list, the SHA-256 of the verified leaf's
    SubjectPublicKeyInfo): a certificate the client rejects gives no key, and Chromium then
    rejects it too; another certificate at that address is checked by Chromium as usual. (The
    alternative, the CA in an NSS database under a throwaway HOME, needs certutil from
    libnss3-tools on every machine; the key needs only the `cryptography` package MLflow brings.)

    MLFLOW_TRACKING_CLIENT_CERT_PATH: Playwright's client_certificates, for the target's origin.
    Playwright then connects to that origin itself (Node's TLS, through a proxy of its own
    between Chromium and the server) and verifies the server with Node's CAs: the client's
    CA bundle is added to them (NODE_EXTRA_CA_CERTS, read when the driver starts).
    """
    tls = BrowserTls()
    if target is None or not target.url.startswith("https:"):
        return tls
    settings = tls_settings()
    if not settings.verifies:
        tls.context_options["ignore_https_errors"] = True
    else:
        pin = verified_key_pin(target)
        if pin:
            tls.args.append(f"--ignore-certificate-errors-spki-list={pin}")
        if settings.client_cert:
            cafile = settings.ca_locations().get("cafile")
            if cafile:
                tls.driver_env["NODE_EXTRA_CA_CERTS"] = os.path.abspath(cafile)
    if settings.client_cert:
        parts = urlsplit(target.url)
        cert = os.path.abspath(settings.client_cert)  # one PEM with the key, as MLflow's client takes it
        tls.context_options["client_certificates"] = [
            {"origin": f"{parts.scheme}://{parts.netloc}", "certPath": cert, "keyPath": cert}
        ]
    return tls


def verified_key_pin(target: Target) -> str | None:
    """The base64 SHA-256 of the server's public key (SubjectPublicKeyInfo), when its
    certificate passes the client's verification; else None."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        der = server_certificate(target, tls_settings()).certificate
    except (OSError, ValueError):  # ssl.SSLError is an OSError: not verified, not pinned
        return None
    key = x509.load_der_x509_certificate(der).public_key()
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def target_or_none(uri: str) -> Target | None:
    try:
        return parse_target(uri)
    except CheckFailed:
        return None  # the uri check says why


#: Chromium's error for a request lost on every pooled connection it retried it on (see
#: UserPages.reload_after_stale_connection).
STALE_CONNECTION = "net::ERR_TOO_MANY_RETRIES"

#: The page Playwright's client-certificate proxy shows when its TLS connection to the server fails.
CLIENT_CERT_ERROR = "Playwright client-certificate error"


class UserPages:
    """The pages a user opens after a run, and what they look for on each."""

    def __init__(self, suite: Suite, page, shots: Path, stale: list[str] | None = None):
        self.suite, self.page, self.shots = suite, page, shots
        self.stale = stale if stale is not None else []

    def open(self, url: str, what: str) -> None:
        from playwright.sync_api import Error as PlaywrightError

        try:
            self.page.goto(url, wait_until="domcontentloaded")
        except PlaywrightError as exc:
            raise CheckFailed(
                f"The browser could not open the {what} ({url}): {first_line(str(exc))}", page_tip(str(exc))
            ) from None
        if tls_settings().client_cert:
            text = self.page.evaluate("document.body ? document.body.innerText.slice(0, 400) : ''")
            if text.startswith(CLIENT_CERT_ERROR):
                raise CheckFailed(f"The browser could not open the {what} ({url}): {first_line(text)}", TLS_TIP)

    def expect(self, text: str, what: str, exact: bool = True) -> None:
        """Wait (up to WAIT_MS) until ``text`` is visible; else fail with a screenshot. Every
        few seconds of waiting, ask the server whether it still answers: a page whose server
        died shows nothing, and that is a dead server (a connection error), not a page that
        failed to show the run."""
        from playwright.sync_api import Error as PlaywrightError

        locator = self.page.get_by_text(text, exact=exact).filter(visible=True).first
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
            f"The {what} does not show {text!r} within {WAIT_MS // 1000}s (screenshot: {shot}).", PAGE_TIP
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
        self.expect(f"{seed.DATASET_NAME} (", "run page's datasets", exact=False)
        self.expect(seed.DATASET_CONTEXT, "run page's datasets")
        if self.suite.outcome("model") == "passed":
            self.expect("Logged models", "run page", exact=False)
            self.expect("Ready", "run page's logged models")
        if self.suite.outcome("registry") == "passed":
            self.expect(self.suite.options.registered_model, "run page's registered models", exact=False)
            self.expect(f"v{self.suite.registered_version}", "run page's registered models")
        return self.shot("run", full_page=True)

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
TLS_TIP = (
    "the browser trusts what MLflow's client trusts: set MLFLOW_TRACKING_SERVER_CERT_PATH to the CA that signed "
    "the server's certificate (and MLFLOW_TRACKING_CLIENT_CERT_PATH to your client certificate and key, if the "
    "server asks for one)"
)


def page_tip(error: str) -> str:
    return TLS_TIP if "ERR_CERT" in error or "ERR_SSL" in error or "ERR_BAD_SSL" in error else PAGE_TIP
