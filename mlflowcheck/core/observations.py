"""What the security probes saw, as plain data: the probes (probes.security) fill it in, the
verdicts (explain.posture) judge it."""

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


#: What a file outside the artifact store would look like if one came back.
PASSWD_LINE = "root:x:0:0:"
