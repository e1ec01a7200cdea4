"""What the probes saw, as plain data: which server answers (``Implementation``), what a
request got back (``Answer``: also a refusal the MLflow client met), and what the security
probes saw; the probes fill it in, the explanations judge it."""

from __future__ import annotations

from dataclasses import dataclass, field

#: A host and an origin that belong to nobody: the probes send them, the verdicts look for them.
FOREIGN_HOST = "mlflowcheck-rebinding.invalid"
FOREIGN_ORIGIN = "https://mlflowcheck-attacker.invalid"


@dataclass
class Answer:
    """What one probe request got back (status 0: no answer)."""

    request: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


@dataclass
class Exposure:
    answer: Answer  # the API asked without credentials
    addresses: list[str]  # what the target's host resolves to
    loopback: bool  # every one of them a loopback address


@dataclass
class CrossOrigin:
    preflight: Answer  # OPTIONS, asking to POST JSON
    simple: Answer  # the POST itself, JSON
    plain: Answer  # a "simple" request a page may send without preflight (text/plain): CSRF


@dataclass
class Implementation:
    """Which server answers at the target: MLflow's own, or another that speaks its REST API,
    and what stands in front of it (probes.identity)."""

    product: str = "MLflow"  # "MLflow", "FastTrackML", or what the server calls itself
    version: str = ""  # the product's own version ("" when it hides it before sign-in)
    auth: str = ""  # the auth layer: "basic-auth" (MLflow's), "oidc-auth" (mlflow-oidc-auth), "a gateway", ""
    proxy: str = ""  # the reverse proxy in front, by its Server header ("nginx"), else ""
    server_info: dict | None = None  # MLflow 3.10+'s GET /api/3.0/mlflow/server-info, when it answers
    evidence: str = ""  # how it was told ("Server: FastTrackML/0.6.0")

    @property
    def is_mlflow(self) -> bool:
        """MLflow's own server (its versions compare with the client's, and with ``since``)."""
        return self.product == "MLflow"

    @property
    def ui_path(self) -> str:
        """Where the server serves MLflow's web app (FastTrackML: its copy of the classic UI)."""
        return UI_PATHS.get(self.product, "/")

    @property
    def name(self) -> str:
        """ "MLflow 3.17.2", "FastTrackML 0.6.0": for messages."""
        return f"{self.product} {self.version}".strip()

    def describe(self) -> str:
        """The server line's note: the product, then what stands in front of it."""
        text = self.name if self.is_mlflow else f"{self.name}, not MLflow's own server (it speaks MLflow's REST API)"
        if self.auth:
            text += f", behind {AUTH_NAMES.get(self.auth, self.auth)}"
        return text + (f", via {self.proxy}" if self.proxy else "")

    def as_dict(self) -> dict:
        return {
            "product": self.product,
            "version": self.version,
            "mlflow": self.is_mlflow,
            "auth": self.auth or None,
            "proxy": self.proxy or None,
            "server_info": self.server_info,
            "evidence": self.evidence,
        }


#: Where servers that are not MLflow serve MLflow's web app, when not at the root.
UI_PATHS = {"FastTrackML": "/mlflow/"}

#: The auth layers by the names messages use.
AUTH_NAMES = {"basic-auth": "MLflow's basic-auth app", "oidc-auth": "mlflow-oidc-auth"}


#: What a file outside the artifact store would look like if one came back.
PASSWD_LINE = "root:x:0:0:"
