"""What the seed's run logs: names, params, metrics, the dataset and the model's training data.

Kept apart from the code that logs and checks it, so the benchmark's seed-style script and
the suite log exactly the same run.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


EXPERIMENT_PREFIX = "本地测试实验_"
#: The prompts the suite registers: <prefix>-<run id>-<time> (prompt names allow ASCII letters,
#: digits, "-", "_" and "." only: MLflow's validate_prompt_name).
PROMPT_PREFIX = "mlflowcheck-prompt"


RUN_NAME = "本地测试运行"


PARAMS = {"learning_rate": 0.01, "batch_size": 32, "epochs": 10, "model_type": "local_test"}


EPOCHS = 5


DATASET_NAME = "local_test_data"


DATASET_SOURCE = "本地生成的测试数据"  # "locally generated test data"


DATASET_CONTEXT = "训练数据"  # "training data"


TARGET = "target"


FEATURES = ["feature_1", "feature_2"]


ROWS = 100


REPORT_PATH = "reports/test_report.txt"


MODEL_NAME = "model"


def experiment_name(now: float | None = None) -> str:
    return f"{EXPERIMENT_PREFIX}{int(time.time() if now is None else now)}"


def metric_history(rng: np.random.Generator) -> dict[str, list[tuple[int, float]]]:
    """accuracy = 0.7 + 0.05·epoch and loss = 1.0 − 0.15·epoch, each plus small noise."""
    history: dict[str, list[tuple[int, float]]] = {"accuracy": [], "loss": []}
    for epoch in range(EPOCHS):
        history["accuracy"].append((epoch, 0.7 + epoch * 0.05 + float(rng.normal(0, 0.01))))
        history["loss"].append((epoch, 1.0 - epoch * 0.15 + float(rng.normal(0, 0.01))))
    return history


def sample_data(rng: np.random.Generator) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        {
            "feature_1": rng.standard_normal(ROWS),
            "feature_2": rng.standard_normal(ROWS),
            TARGET: rng.integers(0, 2, ROWS),
        }
    )


def train_model(data: pd.DataFrame):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(data[FEATURES], data[TARGET])
