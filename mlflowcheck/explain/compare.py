"""A comparison of two fingerprints (core.compare) as the user reads it: the counts per kind,
the first differences, and the cause a pattern of differences points to, with its fix."""

from __future__ import annotations

import os

from mlflowcheck.core.compare import Comparison

METADATA = ("experiment", "run", "metric")
WRITERS_TIP = (
    "stop every writer before an upgrade, a migration or a backup (every server on that database, "
    "every training job), then fingerprint again"
)


def table(comparison: Comparison) -> list[str]:
    lines = []
    for kind, c in comparison.kinds.items():
        if c.compared or c.extra:
            lines.append(
                f"  {kind.replace('_', ' ') + 's':17} {c.compared:6} compared, {c.equal:6} equal, {c.missing} missing, "
                f"{c.altered} altered, {c.extra} new"
            )
    return lines


#: The first differences shown in all (per kind: core.compare.EXAMPLES).
SHOWN = 8


def causes(comparison: Comparison, before: dict, after: dict) -> list[tuple[str, str | None]]:
    """What the differences point to, most telling first: (one line, its Tip; None: a fact, no fix)."""
    found: list[tuple[str, str | None]] = []
    kinds = comparison.kinds
    compared = sum(c.compared for c in kinds.values())
    if compared and not any(c.equal or c.altered for c in kinds.values()):
        found.append((
            f"The server holds none of the {compared} objects fingerprinted: this is another, or an empty, store "
            "(a migration that failed and was rolled back, a server started on a new database).",
            "start the server on the database the data is in (--backend-store-uri); if a migration failed, its "
            "output names the step, and the backup taken before is the way back.",
        ))  # fmt: skip
    files = kinds["artifact"]
    gone = files.missing + comparison.altered_fields.get("artifact", {}).get("sha256", 0)
    metadata_kept = all(kinds[k].missing == 0 and kinds[k].altered == 0 for k in METADATA)
    if gone and metadata_kept and kinds["run"].compared:
        roots = [str(r.get("root", "")) for r in comparison.missing_records.get("artifact", [])]
        prefix = os.path.commonprefix(roots) if roots else ""
        share = "all" if gone == files.compared else f"{gone} of {files.compared}"
        found.append((
            f"The metadata is all there ({kinds['run'].equal} runs and {kinds['metric'].equal} metric histories "
            f"equal), "
            f"but {share} artifact files are gone or unreadable: the database was restored or migrated without its "
            f"artifact store" + (f" (the missing files' URIs begin {prefix})" if prefix else "") + ".",
            "restore the artifact store from the same backup as the database (the server's --artifacts-destination "
            "or --default-artifact-root), or start the server with the option pointing where the files are now; "
            "if the runs' artifact URIs name the old location, the database still points there.",
        ))  # fmt: skip
    moved = comparison.altered_fields.get("run", {}).get("artifact_uri", 0)
    if moved:
        found.append((
            f"{moved} runs' artifact URIs changed: the server now points them at another location.",
            "if the files did not move with them, the runs' artifacts are lost to the UI and the clients; "
            "compare the server's --artifacts-destination with the one before.",
        ))  # fmt: skip
    store_before = (before.get("server") or {}).get("store")
    store_after = (after.get("server") or {}).get("store")
    if store_before and store_after and store_before != store_after:
        found.append((f"The server's store changed from {store_before} to {store_after}.", None))
    late = [r for rs in comparison.extra_records.values() for r in rs if created_after(r, before.get("created_ms"))]
    if late:
        found.append((
            f"{len(late)} objects were created after the first fingerprint: something still writes to this server.",
            WRITERS_TIP,
        ))  # fmt: skip
    return found


def created_after(record: dict, since_ms: int | None) -> bool:
    if since_ms is None:
        return False
    when = record.get("start_time") or record.get("request_time") or record.get("creation_time")
    if when is None and record.get("points"):  # a metric history: its last point's time
        when = max(point[1] for point in record["points"])
    return isinstance(when, int) and when > since_ms


def verdict(comparison: Comparison, before: dict, after: dict) -> tuple[bool, str, str | None]:
    """(nothing lost or altered, the report's text, the Tip when something was)."""
    lines = table(comparison)
    examples = [f"  {text}" for texts in comparison.examples.values() for text in texts][:SHOWN]
    if comparison.lost_or_altered > len(examples):
        examples.append(f"  … and {comparison.lost_or_altered - len(examples)} more (the counts above)")
    reasons = causes(comparison, before, after)
    extra = sum(c.extra for c in comparison.kinds.values())
    if comparison.lost_or_altered == 0:
        equal = sum(c.equal for c in comparison.kinds.values())
        text = f"{equal} objects equal, nothing lost or altered" + (f", {extra} new" if extra else "")
        text += f" (matched by {comparison.match_by})"
        notes = [line for line, _ in reasons]
        return True, "\n".join([text, *lines, *notes]), None
    lost = sum(c.missing for c in comparison.kinds.values())
    altered = sum(c.altered for c in comparison.kinds.values())
    head = f"Since the fingerprint of {before.get('created', 'before')}: {lost} objects missing, {altered} altered"
    head += f", {extra} new (matched by {comparison.match_by}):"
    body = [head, *lines]
    body += [line for line, _ in reasons]
    body += ["First differences:", *examples]
    tips = [tip for _, tip in reasons if tip]
    moved = (before.get("server") or {}).get("store") != (after.get("server") or {}).get("store")
    tip = tips[0] if tips else (
        "the copy left out what is listed: copy it with the tool's other commands (mlflow-export-import's "
        "export-experiment copies runs; logged models, registered models and traces need export-model, "
        "export-models or export-all), or take the loss knowingly."
        if comparison.match_by == "name" else
        "what is listed did not survive the move to the new store: set it again from the old store (still in "
        "place after `mlflow migrate-filestore`), and report the loss to MLflow."
        if moved and (before.get("server") or {}).get("store") else
        "the server lost or changed data between the two fingerprints: restore from the backup taken before, "
        "and look in the server's log and the migration's output for the step that failed."
    )  # fmt: skip
    return False, "\n".join(body), tip
