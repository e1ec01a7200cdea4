"""The check registry, the checks' code, pytest as the runner, and one run from start to stop."""
