"""Known MLflow server advisories, matched against the server's version (pure, no network).

Source: the GitHub Advisory Database (github.com/advisories) and the PyPA advisory database
(PYSEC ids, for the older ones), each row looked up again on 2026-11-30: identifier, the
affected range exactly as the advisory states it, the first fixed release. Rows whose
advisory lists no fixed release are left out (see the README's security section): a
version check cannot tell anything about them.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from mlflowcheck.explain.support import OLDEST_SUPPORTED

SOURCE = "GitHub Advisory Database and PyPA advisory database, rows checked 2026-11-30"


@dataclass(frozen=True)
class Advisory:
    id: str  # the CVE
    advisory: str  # GHSA or PYSEC id
    affected: str  # the affected range, as the advisory gives it (PEP 440 specifiers, "||" between ranges)
    fixed: str  # the first release not affected
    summary: str

    def affects(self, version: str) -> bool:
        """In one of the ranges, compared as the advisory databases compare (GHSA's ecosystem
        order): ``<3.0.0`` includes 3.0.0's release candidates, which PEP 440 specifiers leave out."""
        v = Version(version)
        return any(all(holds(v, clause) for clause in spec.split(",")) for spec in self.affected.split("||"))


COMPARISONS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}


def holds(version: Version, clause: str) -> bool:
    op, bound = re.fullmatch(r"\s*(<=|>=|==|<|>)\s*(\S+)\s*", clause).groups()
    return COMPARISONS[op](version, Version(bound))


#: Newest first.
ADVISORIES = [
    Advisory(
        "CVE-2026-33865", "GHSA-fh64-r2vc-xvhr", "<3.11.1", "3.11.1", "stored XSS through a malicious MLmodel file"
    ),
    Advisory(
        "CVE-2026-2651",
        "GHSA-8c7q-86fq-vvmh",
        "<3.11.0rc1",
        "3.11.0",
        "multipart upload endpoints unauthorized with --serve-artifacts",
    ),
    Advisory(
        "CVE-2026-3198",
        "GHSA-r5m9-wm49-959f",
        "<3.11.0rc0",
        "3.11.0",
        "basic-auth: any user can list gateway secrets and endpoints",
    ),
    Advisory(
        "CVE-2026-4035",
        "GHSA-g35p-px32-whv6",
        "<3.11.0",
        "3.11.0",
        "AI Gateway secrets can exfiltrate server environment variables",
    ),
    Advisory(
        "CVE-2026-2652",
        "GHSA-75cm-x2w3-8mgf",
        "<3.11.0",
        "3.11.0",
        "basic-auth: FastAPI routes reachable without authentication",
    ),
    Advisory(
        "CVE-2026-2614",
        "GHSA-42h5-h8qh-vv9v",
        "<3.10.0",
        "3.10.0",
        "unauthenticated arbitrary file read through model version creation",
    ),
    Advisory(
        "CVE-2026-2734",
        "GHSA-w5xq-c4pf-ghq7",
        "<3.10.0",
        "3.10.0",
        "basic-auth: model versions searchable without per-model permission",
    ),
    Advisory(
        "CVE-2026-2611",
        "GHSA-67c5-x5mf-rppq",
        ">=3.9.0,<3.10.0",
        "3.10.0",
        "cross-origin requests reach the MLflow Assistant",
    ),
    Advisory("CVE-2026-2393", "GHSA-65h7-c7c4-mghx", "<3.9.0", "3.9.0", "server-side request forgery through webhooks"),
    Advisory(
        "CVE-2026-2033",
        "GHSA-q2r8-vmq7-fpx2",
        "<3.8.0rc0",
        "3.8.0",
        "artifact handler directory traversal, remote code execution",
    ),
    Advisory(
        "CVE-2026-2635",
        "GHSA-gq3w-7jj3-x7gr",
        "<3.8.0rc0",
        "3.8.0",
        "basic-auth: default admin password lets attackers in",
    ),
    Advisory(
        "CVE-2025-11201",
        "GHSA-5cvj-7rg6-jggj",
        "<2.22.4||>=3.0.0rc0,<3.0.0",
        "2.22.4",
        "model creation directory traversal, remote code execution",
    ),  # fmt: skip
    Advisory("CVE-2024-2928", "GHSA-j46q-5pxx-8vmw", "<2.11.3", "2.11.3", "local file inclusion through URI fragments"),
    Advisory("CVE-2023-6909", "PYSEC-2023-252", "<2.9.2", "2.9.2", "path traversal"),
    Advisory("CVE-2023-6831", "PYSEC-2023-253", "<2.9.2", "2.9.2", "path traversal"),
    Advisory("CVE-2023-2356", "PYSEC-2023-68", "<2.3.1", "2.3.1", "relative path traversal"),
    Advisory("CVE-2023-1176", "PYSEC-2023-28", "<2.2.2", "2.2.2", "absolute path traversal"),
    Advisory("CVE-2023-1177", "PYSEC-2023-29", "<2.2.1", "2.2.1", "path traversal, local file inclusion"),
    Advisory("CVE-2023-30172", "PYSEC-2023-70", "<2.0.1", "2.0.1", "/get-artifact directory traversal"),
]


def parses(version: str) -> bool:
    try:
        Version(version)
    except InvalidVersion:
        return False
    return True


def affecting(version: str) -> list[Advisory]:
    """The advisories that affect a server of ``version`` (none for a version that does not parse)."""
    return [a for a in ADVISORIES if a.affects(version)] if parses(version) else []


def upgrade_to(found: list[Advisory]) -> str:
    """The oldest release that fixes every one of ``found``, and never one older than the oldest
    server this suite supports (OLDEST_SUPPORTED)."""
    return str(max([Version(a.fixed) for a in found] + [Version(OLDEST_SUPPORTED)]))
