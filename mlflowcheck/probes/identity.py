"""Which server answers (layer 3, after ``layers.identify`` found an MLflow API): MLflow's own
or another product that speaks its API, the auth layer and the proxy in front, and what MLflow
3.10+ says about itself at ``server-info``. The asking is here; explain.deployment decides."""

from __future__ import annotations

import json

import requests

from mlflowcheck.core.observations import Answer, Implementation
from mlflowcheck.core.target import Target
from mlflowcheck.explain.deployment import OIDC_UI_CONFIG, implementation
from mlflowcheck.explain.support import answer_of
from mlflowcheck.net.http import RESPONSE_DEADLINE, anonymous, http

#: MLflow 3.10+ describes itself here, without credentials.
SERVER_INFO = "/api/3.0/mlflow/server-info"


def ask(target: Target, path: str, **kwargs) -> Answer | None:
    try:
        return answer_of(http("GET", target.url + path, deadline=RESPONSE_DEADLINE / 2, **kwargs))
    except requests.RequestException:
        return None


def server_info(target: Target) -> tuple[dict | None, Answer | None]:
    """MLflow 3.10+'s description of itself (None where the server has none), and its answer."""
    answer = ask(target, SERVER_INFO)
    if answer is None or answer.status != 200:
        return None, answer
    try:
        info = json.loads(answer.body)
    except ValueError:
        return None, answer
    return (info if isinstance(info, dict) else None), answer


def identify_implementation(target: Target, version: str) -> Implementation:
    """Ask ``/version`` (its headers), ``server-info``, and the API without credentials."""
    version_answer = ask(target, "/version") or Answer("GET /version", 0)
    info, _ = server_info(target)
    refused = ask(target, "/api/2.0/mlflow/experiments/search?max_results=1", **anonymous())
    protected = refused is not None and refused.status in (401, 403)
    oidc_ui = ask(target, OIDC_UI_CONFIG, **anonymous()) if protected else None
    return implementation(version, version_answer, info, refused, oidc_ui)
