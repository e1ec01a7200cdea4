"""The errors a check raises (a cause and a Tip; a feature the server lacks), and the exit codes."""

from __future__ import annotations

#: The exit codes: every check passed; a check failed; the suite could not run.
EXIT_OK, EXIT_FAILED, EXIT_NO_RUN = 0, 1, 2


class CheckFailed(Exception):
    """A check found the deployment broken.

    ``fatal`` means the suite could not run at all (exit code 2): there is no MLflow server
    to test at the target.
    """

    def __init__(self, message: str, tip: str | None = None, *, fatal: bool = False):
        super().__init__(message)
        self.message = message
        self.tip = tip
        self.fatal = fatal

    def __str__(self) -> str:
        return f"{self.message}\nTip: {self.tip}" if self.tip else self.message


class Unsupported(CheckFailed):
    """The server says it has no such endpoint (or its version predates the API): the feature
    is missing, not broken. Kept apart from failures in the verdict and the support matrix."""

    def __init__(self, message: str, tip: str | None = None, *, endpoint: str = ""):
        super().__init__(message, tip)
        self.endpoint = endpoint  # "POST /api/2.0/mlflow/runs/log-inputs", when one was asked
