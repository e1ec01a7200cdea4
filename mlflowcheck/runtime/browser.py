"""Headless Chromium for the browser check, driven by Playwright from a thread of its own.

The system's Chromium is used (Debian: apt-get install chromium): Playwright's own browser
download cannot work on locked-down machines. What the pages must show is the probe's
(probes.ui); this module starts the browser, gives it the user's TLS settings and
credentials (for the tracking URI's origin only), and runs the page jobs in order."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.state import RunState
from mlflowcheck.core.target import Target
from mlflowcheck.explain.text import first_lines
from mlflowcheck.runtime.browser_access import WAIT_MS, browser_auth, browser_tls, scope_headers, target_or_none

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


#: The flags a root, offline, headless Chromium needs to start quietly and quickly.
BROWSER_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
    "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage",
]  # fmt: skip


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

    Starting Chromium and loading MLflow's web app take seconds; the command line starts
    the session while the server boots (``start_browser``), the ``ui`` check has it load the
    web app while the tracking checks run (``open_app``), and the experiment page is checked
    while the model worker works (``start_pages``). Playwright's sync API
    must be used from one thread: every call goes through ``submit``, run in order by this
    session's thread. The thread is a daemon: a run that ends early (Ctrl+C, --timeout) does
    not wait for it, and Playwright's driver closes Chromium when this process goes.
    """

    #: ``user_pages(state, page, screenshots_dir, stale)``: an object whose methods open and
    #: check one user page each (probes.ui.UserPages), run by name in this session's thread.
    def __init__(self, state: RunState, browser_path: str, user_pages: Callable):
        self.state = state
        self.user_pages = user_pages
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

        with self.state.timeline.phase("browser: Chromium starts"):
            target = self.state.target or target_or_none(self.state.options.tracking_uri)
            tls = browser_tls(target)
            os.environ.update(tls.driver_env)  # read by Playwright's driver, which starts now
            self.playwright = sync_playwright().start()
            try:
                self.browser = self.playwright.chromium.launch(
                    executable_path=browser_path, args=BROWSER_ARGS + tls.args, timeout=WAIT_MS
                )
            except PlaywrightError as exc:
                raise CheckFailed(
                    f"Chromium at {browser_path} did not start: {first_lines(str(exc))}", INSTALL_TIP, fatal=True
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
            with self.state.timeline.phase("browser: web app loads"), contextlib.suppress(Exception):
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
        shots = self.state.options.screenshots or self.state.tmp / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        pages = self.user_pages(self.state, self.page, shots, self.stale)
        try:
            with self.state.timeline.phase(f"browser: {name} page"):
                return getattr(pages, name)()
        except BaseException:
            self.failed = True
            raise

    def result(self, future: Future):
        """What a job returned, or its exception, waiting at most a page's worth of waits."""
        try:
            return future.result(timeout=self.state.remaining(4 * WAIT_MS / 1000 + 30))
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


def start_browser(state: RunState, user_pages: Callable) -> BrowserSession | None:
    """Start Chromium for the browser check, if it is going to run: not with --no-ui, and only
    where a Chromium is found (otherwise the check reports why it skipped or failed)."""
    if state.options.ui is False:
        return None
    browser_path, _ = find_browser()
    if browser_path is None:
        return None
    return BrowserSession(state, browser_path, user_pages)


#: Chromium's error for a request lost on every pooled connection it retried it on (see
#: UserPages.reload_after_stale_connection).
STALE_CONNECTION = "net::ERR_TOO_MANY_RETRIES"
