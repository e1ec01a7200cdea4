#!/usr/bin/env python
"""Test an MLflow tracking deployment end to end: log the seed's run, read every item back.

python test_mlflow_local.py                  # the server at http://127.0.0.1:3111
python test_mlflow_local.py --help           # options and exit codes

Installed with `pip install .`, the `mlflowcheck` command does the same.
"""

import gc
import sys
from pathlib import Path

from mlflowcheck.cli import main

if __name__ == "__main__":
    code = main(sys.argv[1:], project_dir=Path(__file__).resolve().parent)
    # Exit without a last full garbage collection over MLflow's object graph (docs/performance.md).
    gc.freeze()
    sys.exit(code)
