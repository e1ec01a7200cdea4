"""The prompt registry (in the main process, while the model worker logs the model) and GenAI
evaluation (in the model worker, while the main process runs the browser check).

prompts: a prompt with a long Chinese template, a second version, an alias; loaded by version
and by alias, text equal. evaluation: an evaluation dataset's records read back, then
mlflow.genai.evaluate with a deterministic scorer (no LLM): its metric and each row's feedback
read back through the server."""

from __future__ import annotations

import copy
import time

import mlflow

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.seed import PROMPT_PREFIX
from mlflowcheck.runtime.mlflow_compat import without_databricks_sdk

TEMPLATES = (
    "你是本地测试的助手。请用中文回答关于 {{ 实验 }} 的问题：{{ 问题 }}\n" + "请简洁、准确地回答。" * 300,
    "你是本地测试的助手（第二版）。请回答关于 {{ 实验 }} 的问题：{{ 问题 }}\n" + "请给出依据。" * 300,
)
ALIAS_NAME = "mlflowcheck"  # aliases follow the registry's alias rules: ASCII
PROMPT_TIP = "the server's prompt registry (registered models tagged mlflow.prompt.*) failed; look in its log."
RECORDS = [
    {"inputs": {"问题": "本地测试的准确率？"}, "expectations": {"答案": "答案：本地测试的准确率？"}},
    {"inputs": {"问题": "模型是什么？"}, "expectations": {"答案": "答案：模型是什么？"}},
]
SCORER = "完全一致"


def prompts(run) -> None:
    name = f"{PROMPT_PREFIX}-{run.run_id or 'none'}-{int(time.time())}"
    first = mlflow.genai.register_prompt(name=name, template=TEMPLATES[0], commit_message="本地测试：第一版")
    run.created.prompt = name  # every version is this run's: --cleanup deletes the prompt
    second = mlflow.genai.register_prompt(name=name, template=TEMPLATES[1], commit_message="本地测试：第二版")
    mlflow.genai.set_prompt_alias(name, alias=ALIAS_NAME, version=first.version)
    loaded = {
        f"version {second.version}": (mlflow.genai.load_prompt(f"prompts:/{name}/{second.version}"), TEMPLATES[1]),
        f"alias @{ALIAS_NAME}": (mlflow.genai.load_prompt(f"prompts:/{name}@{ALIAS_NAME}"), TEMPLATES[0]),
    }
    for how, (got, want) in loaded.items():
        if got.template != want:
            raise CheckFailed(
                f"Prompt {name} loaded by {how} has a template of {len(got.template)} characters that differs "
                f"from the {len(want)} written (first difference at {first_difference(got.template, want)}).",
                PROMPT_TIP,
            )
    if str(loaded[f"alias @{ALIAS_NAME}"][0].version) != str(first.version):
        raise CheckFailed(
            f"The alias @{ALIAS_NAME} of prompt {name} resolves to version "
            f"{loaded[f'alias @{ALIAS_NAME}'][0].version}, not {first.version}.",
            PROMPT_TIP,
        )
    run.note("prompts", f"{name}: 2 versions, loaded by version and by alias @{ALIAS_NAME}, templates equal")


def first_difference(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def evaluation(run) -> None:
    from mlflow.genai.datasets import create_dataset, get_dataset
    from mlflow.genai.scorers import scorer

    dataset = create_dataset(name=f"本地测试评估集_{run.run_id or 'none'}", experiment_id=[run.experiment_id])
    run.created.dataset_id = dataset.dataset_id
    dataset.merge_records(copy.deepcopy(RECORDS))  # MLflow adds a source and tags to what it is given
    got = get_dataset(dataset_id=dataset.dataset_id)
    records = sorted(
        ({"inputs": r["inputs"], "expectations": r["expectations"]} for r in got.to_df().to_dict(orient="records")),
        key=str,
    )
    if records != sorted(RECORDS, key=str):
        raise CheckFailed(
            f"The evaluation dataset {dataset.dataset_id} read back {records!r}, wrote {RECORDS!r}.",
            "the server's evaluation dataset store lost or altered records; look in its log.",
        )

    @scorer(name=SCORER)
    def exact(outputs, expectations) -> bool:
        return outputs == expectations["答案"]

    with without_databricks_sdk():
        result = mlflow.genai.evaluate(data=got, predict_fn=predict, scorers=[exact])
    run.created.evaluation_run_id = result.run_id
    metric = f"{SCORER}/mean"
    stored = run.client.get_run(result.run_id).data.metrics.get(metric)
    if stored != 1.0:
        raise CheckFailed(f"The evaluation run {result.run_id} has {metric} = {stored!r}, not 1.0.",
                          "the server lost the evaluation's metrics; look in its log.")  # fmt: skip
    traces = run.client.search_traces(locations=[run.experiment_id], run_id=result.run_id, max_results=50)
    verdicts = sorted(
        a.feedback.value for t in traces for a in t.info.assessments if a.name == SCORER and a.feedback is not None
    )
    if verdicts != [True] * len(RECORDS):
        raise CheckFailed(
            f"The evaluation's {len(RECORDS)} rows should each carry the feedback {SCORER} = True; the server has "
            f"{verdicts} on {len(traces)} traces of run {result.run_id}.",
            "the server lost the evaluation's per-row feedback; look in its log.",
        )
    run.note(
        "evaluation",
        f"dataset {dataset.dataset_id}: {len(RECORDS)} records read back; mlflow.genai.evaluate run {result.run_id}: "
        f"{metric} 1.0 and each row's feedback read back",
    )


def predict(问题: str) -> str:  # noqa: PLC2401 (the dataset's inputs are the seed's Chinese names)
    return "答案：" + 问题
