"""The UI layer: the server's web app answers at its root and its script loads."""

from __future__ import annotations

import re

from mlflowcheck.diagnosis import CheckFailed, describe_response, http
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
