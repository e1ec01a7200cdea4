"""What the command line checks before anything starts: the files and folders it is to write
(a report that cannot be written is lost), and that --fingerprint and --compare go with no
option that writes to the server."""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlflowcheck.core.errors import CheckFailed

#: The options that name something the suite writes: files, and folders it writes into.
OUTPUT_FILES = {
    "json": "--json",
    "junitxml": "--junitxml",
    "summary_md": "--summary-md",
    "fingerprint": "--fingerprint",
    "load_html": "--load-html",
    "prom_textfile": "--prom-textfile",
}
EXAMPLES = {"junitxml": "junit.xml", "summary_md": "summary.md", "prom_textfile": "mlflow_probe.prom"}
#: Options that make the suite write to the server: not with --fingerprint or --compare.
WRITING = {"cleanup": "--cleanup", "restart": "--restart", "load": "--load", "security_write": "--security-write"}


def read_only_problem(args) -> CheckFailed | None:
    """--fingerprint and --compare read only: no option that writes with them, and a manifest to compare."""
    if not (args.fingerprint or args.compare):
        if args.scope or args.experiments or args.artifacts or args.match_by != "id":
            return CheckFailed(
                "--scope, --experiment, --artifacts and --match-by go with --fingerprint or --compare.",
                "add --fingerprint FILE (before a change) or --compare FILE (after it).",
                fatal=True,
            )
        return None
    writing = [flag for attr, flag in WRITING.items() if getattr(args, attr)]
    if writing:
        return CheckFailed(
            f"--fingerprint and --compare only read, and {', '.join(writing)} writes to the server.",
            "run them separately: the fingerprint first, then the suite with the other options.",
            fatal=True,
        )
    if args.compare:
        from mlflowcheck.core.manifest import read_header

        try:
            read_header(Path(args.compare))
        except CheckFailed as exc:
            return CheckFailed(exc.message, exc.tip, fatal=True)
    return None


OUTPUT_FOLDERS = {"screenshots": "--screenshots", "server_dir": "--server-dir"}


def output_paths_problem(args) -> CheckFailed | None:
    """Why an output path the user gave cannot be written, checked before the first check runs.

    A file's folder must exist (a typo in it is caught, not papered over by creating a tree);
    a folder option may name a new folder in an existing one. Writability is tried for real:
    as root os.access() says yes where the kernel says no (/sys, a read-only mount).
    """
    for attr, option in OUTPUT_FILES.items():
        value = getattr(args, attr)
        if value:
            why = file_unwritable(Path(value))
            if why:
                example = EXAMPLES.get(attr, "result.json")
                tip = f"give {option} a file in a folder that exists and that you can write, e.g. {option} {example}"
                return CheckFailed(f"{option} {value}: {why}.", tip, fatal=True)
    if getattr(args, "load_csv", None):  # a prefix: Locust writes PREFIX_stats.csv and others beside it
        why = file_unwritable(Path(f"{args.load_csv}_stats.csv"))
        if why:
            tip = (
                "give --load-csv a prefix in a folder that exists and that you can write, e.g. --load-csv reports/load"
            )
            return CheckFailed(f"--load-csv {args.load_csv}: {why}.", tip, fatal=True)
    for attr, option in OUTPUT_FOLDERS.items():
        value = getattr(args, attr)
        if value:
            why = folder_unwritable(Path(value))
            if why:
                tip = f"give {option} a folder you can write (a new one is made, inside a folder that exists)."
                return CheckFailed(f"{option} {value}: {why}.", tip, fatal=True)
    return None


def file_unwritable(path: Path) -> str:
    if path.is_dir():
        return "this is a folder, not a file"
    if not path.parent.is_dir():
        return f"no such folder: {path.parent}" if not path.parent.exists() else f"{path.parent} is not a folder"
    existed = path.exists()
    try:
        with open(path, "ab"):  # appends nothing: an existing file is left as it is
            pass
    except OSError as exc:
        return f"cannot be written ({exc.strerror or exc})"
    if not existed:
        path.unlink()
    return ""


def folder_unwritable(path: Path) -> str:
    if path.exists() and not path.is_dir():
        return "this is a file, not a folder"
    if not path.exists():
        if not path.parent.is_dir():
            return f"no such folder: {path.parent}"
        probe_in = path.parent
    else:
        probe_in = path
    try:
        with tempfile.TemporaryFile(dir=probe_in):
            pass
    except OSError as exc:
        return f"{probe_in} cannot be written ({exc.strerror or exc})"
    return ""
