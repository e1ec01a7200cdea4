"""The seed's script, as people copy it around: log the run, verify nothing.

Used by bench_suite.py as the baseline the suite is compared against. It logs the same run
as the suite, with MLflow's defaults (per-point log_metric, a plain string dataset source,
requirements inferred by log_model), and reads nothing back.
"""

import sys
import time

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

mlflow.set_tracking_uri(sys.argv[1])
experiment_name = f"本地测试实验_{int(time.time())}_{time.monotonic_ns()}"
mlflow.set_experiment(experiment_name)

with mlflow.start_run(run_name="本地测试运行"):
    mlflow.log_params({"learning_rate": 0.01, "batch_size": 32, "epochs": 10, "model_type": "local_test"})
    for epoch in range(5):
        mlflow.log_metric("accuracy", 0.7 + epoch * 0.05 + np.random.normal(0, 0.01), step=epoch)
        mlflow.log_metric("loss", 1.0 - epoch * 0.15 + np.random.normal(0, 0.01), step=epoch)
    data = pd.DataFrame(
        {"feature_1": np.random.randn(100), "feature_2": np.random.randn(100), "target": np.random.randint(0, 2, 100)}
    )
    dataset = mlflow.data.from_pandas(data, source="本地生成的测试数据", targets="target")
    mlflow.log_input(dataset, context="训练数据")
    mlflow.log_text(
        f"test report\ntimestamp: {time.ctime()}\nexperiment: {experiment_name}\n", "reports/test_report.txt"
    )
    features = data[["feature_1", "feature_2"]]
    model = LogisticRegression().fit(features, data["target"])
    mlflow.sklearn.log_model(model, name="model", input_example=features.head(5))
print("done")
