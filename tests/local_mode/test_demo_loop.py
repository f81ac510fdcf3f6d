"""End to end: ``o2v demo`` on a small slice of STS-B, through the local services.

The demo runs as a real subprocess (``python -m training.demo``, the same code as
``o2v demo``) with ``--keep-endpoint``, so that once its report is written this test can ask the
local services itself, with plain boto3 and the endpoints the demo published in ``serving.json``:
DescribeTrainingJob, ListTags, the local CloudWatch Logs, SSM and ``sagemaker-runtime``
InvokeEndpoint. Evidence of *who* did what comes from the services, not from the demo's output:
the local SageMaker API's call log (the caller's user agent carries the Lambda function's id)
and the event pump's delivery journal. Then the test presses Ctrl-C (SIGINT) and checks that
every process of the run is gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from control_plane.aws.training_logs import TrainingLogs
from o2v_core.metric_series import loss_metric_for, series_from_lines
from o2v_core.naming import TAG_ATTEMPT, TAG_PARENT

from tests.support.processes import processes_mentioning

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

READY_TIMEOUT = 300.0
# CreateTrainingJob fields the retrain launcher copies from the parent (everything but the name,
# the hyperparameters and the lineage tags).
COPIED = ("AlgorithmSpecification", "RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig",
          "StoppingCondition", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
          "EnableManagedSpotTraining")


class DemoRun:
    def __init__(self, process: subprocess.Popen[bytes], output: Path, run_dir: Path, serving: dict[str, Any]) -> None:
        self.process = process
        self.output = output
        self.run_dir = run_dir
        self.serving = serving
        env = serving["environment"]
        self._kwargs = {"region_name": env["AWS_DEFAULT_REGION"], "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
                        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]}
        self._env = env

    def client(self, service: str) -> Any:
        variable = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_")
        endpoint = self._env.get(variable, self._env["AWS_ENDPOINT_URL"])
        return boto3.client(service, endpoint_url=endpoint, **self._kwargs)  # type: ignore[call-overload]

    def log(self) -> str:
        return self.output.read_text(errors="replace")


def _wait_for_serving(process: subprocess.Popen[bytes], runs: Path, output: Path) -> tuple[Path, dict[str, Any]]:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        found = sorted(runs.glob("*/serving.json"))
        if found:
            return found[0].parent, json.loads(found[0].read_text())
        if process.poll() is not None:
            pytest.fail(f"o2v demo exited with status {process.returncode} before serving:\n"
                        + output.read_text(errors="replace")[-6000:])
        time.sleep(0.5)
    pytest.fail(f"o2v demo did not reach serving within {READY_TIMEOUT:.0f} s:\n"
                + output.read_text(errors="replace")[-6000:])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[DemoRun]:
    runs = tmp_path_factory.mktemp("runs")
    output = runs.parent / "demo-output.txt"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "training.demo", "--size", "quick", "--keep-endpoint",
             "--data", str(shared_data / "stsbenchmark"), "--runs-dir", str(runs)],
            stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    try:
        run_dir, serving = _wait_for_serving(process, runs, output)
        yield DemoRun(process, output, run_dir, serving)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _jobs(run: DemoRun) -> list[dict[str, Any]]:
    sagemaker = run.client("sagemaker")
    summaries = sagemaker.list_training_jobs(SortBy="CreationTime", SortOrder="Ascending",
                                             MaxResults=100)["TrainingJobSummaries"]
    return [sagemaker.describe_training_job(TrainingJobName=item["TrainingJobName"]) for item in summaries]


def _tags(run: DemoRun, arn: str) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in run.client("sagemaker").list_tags(ResourceArn=arn)["Tags"]}


def _journal(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_attempt_2_was_launched_by_the_divergence_rule_with_more_dropout(demo: DemoRun) -> None:
    jobs = _jobs(demo)
    assert len(jobs) >= 2, demo.log()
    first, second = jobs[0], jobs[1]
    assert _tags(demo, second["TrainingJobArn"])[TAG_ATTEMPT] == "2"
    assert _tags(demo, second["TrainingJobArn"])[TAG_PARENT] == first["TrainingJobName"]

    # The divergence rule delivered attempt 1's ValidationLossDiverged to the retrain launcher ...
    deliveries = _journal(demo.run_dir / "events.jsonl")
    launches = [item for item in deliveries
                if item["ruleId"] == "RetrainOnDivergence" and item["target"] == "retrain_launcher"
                and item["detail"]["trainingJobName"] == first["TrainingJobName"]]
    assert launches, f"no RetrainOnDivergence delivery for {first['TrainingJobName']}:\n{demo.log()}"
    assert launches[0]["ok"] and launches[0]["detailType"] == "ValidationLossDiverged"
    assert launches[0]["result"]["child"] == second["TrainingJobName"]
    # ... and the local SageMaker API saw that Lambda function (its user agent) create attempt 2, then.
    calls = [item for item in _journal(demo.run_dir / "services" / "sagemaker" / "api-calls.jsonl")
             if item["operation"] == "CreateTrainingJob" and item["resource"] == second["TrainingJobName"]
             and not item["error"]]
    assert len(calls) == 1
    assert "app/retrain_launcher" in calls[0]["userAgent"].split()
    assert launches[0]["started"] <= calls[0]["time"] <= launches[0]["finished"]

    # More dropout; every other hyperparameter and setting copied from attempt 1.
    parent_hps, child_hps = first["HyperParameters"], second["HyperParameters"]
    assert float(child_hps["dropout"]) > float(parent_hps.get("dropout", "0"))
    assert {k: v for k, v in child_hps.items() if k != "dropout"} == {
        k: v for k, v in parent_hps.items() if k != "dropout"}
    for field in COPIED:
        assert second.get(field) == first.get(field), field


def test_promotion_picked_the_attempt_with_the_best_validation_loss(demo: DemoRun) -> None:
    jobs = {job["TrainingJobName"]: job for job in _jobs(demo)}
    reader = TrainingLogs(demo.client("logs"))
    best: dict[str, float] = {}
    for name, job in jobs.items():
        metric = loss_metric_for(job["HyperParameters"]["output_layer"])
        series = series_from_lines(reader.metric_lines(name), metric=metric)
        assert series.validation, f"{name} logged no {metric}"
        best[name] = min(value for _, value in series.validation)

    # Candidates: the attempts the finished-job evaluator judged healthy and offered for promotion.
    deliveries = _journal(demo.run_dir / "events.jsonl")
    offered = {item["detail"]["trainingJobName"] for item in deliveries
               if item["ruleId"] == "PromoteOnSuccess" and item["ok"]}
    assert offered, demo.log()
    record = json.loads(demo.client("ssm").get_parameter(Name=demo.serving["serving_parameter"])["Parameter"]["Value"])
    promoted = record["trainingJobName"]
    assert promoted == min(offered, key=lambda name: best[name])
    assert record["metricValue"] == pytest.approx(best[promoted])

    # The endpoint serves that attempt's model artifact.
    sagemaker = demo.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=demo.serving["endpoint"])
    assert endpoint["EndpointStatus"] == "InService"
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert model["PrimaryContainer"]["ModelDataUrl"] == jobs[promoted]["ModelArtifacts"]["S3ModelArtifacts"]


def test_the_endpoint_returns_embeddings_of_enc_dim_values(demo: DemoRun) -> None:
    record = json.loads(demo.client("ssm").get_parameter(Name=demo.serving["serving_parameter"])["Parameter"]["Value"])
    enc_dim = int(demo.client("sagemaker").describe_training_job(
        TrainingJobName=record["trainingJobName"])["HyperParameters"]["enc_dim"])
    body = json.dumps({"instances": [{"in0": [2, 3, 4, 5]}, {"in0": [6, 7]}]})
    answer = demo.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=demo.serving["endpoint"], Body=body, ContentType="application/json", Accept="application/json")
    predictions = json.loads(answer["Body"].read())["predictions"]
    assert len(predictions) == 2
    assert all(len(item["embeddings"]) == enc_dim for item in predictions)
    assert answer["InvokedProductionVariant"] == "AllTraffic"


def test_o2v_embed_finds_the_vocabulary_from_the_endpoint_name_alone(demo: DemoRun, repo_root: Path) -> None:
    """``o2v embed --endpoint NAME`` as a user runs it (issue 10, defect 4): no --vocab, no --model;
    the vocabulary comes from the served job's auxiliary channel, and it embeds exactly as the
    served artifact's own vocabulary does."""
    record = json.loads(demo.client("ssm").get_parameter(Name=demo.serving["serving_parameter"])["Parameter"]["Value"])
    enc_dim = int(demo.client("sagemaker").describe_training_job(
        TrainingJobName=record["trainingJobName"])["HyperParameters"]["enc_dim"])
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(demo.serving["environment"])
    sentences = ["A man is playing a guitar.", "A plane is taking off."]

    def embed(*extra: str) -> tuple[list[dict[str, Any]], str]:
        result = subprocess.run(
            [sys.executable, "-m", "training.cli", "embed", *sentences,
             "--endpoint", demo.serving["endpoint"], "--region", env["AWS_DEFAULT_REGION"], *extra],
            cwd=repo_root, env=env, capture_output=True, text=True, timeout=120, check=False,
        )
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")], result.stderr

    lines, stderr = embed()
    assert [line["sentence"] for line in lines] == sentences
    assert all(len(line["embedding"]) == enc_dim for line in lines)
    assert lines[0]["embedding"] != lines[1]["embedding"]
    assert f"(training job {record['trainingJobName']})" in stderr and "/auxiliary/vocab.json" in stderr
    assert record["vocab"].endswith("/auxiliary/vocab.json")  # the promoter recorded the same vocabulary

    with_artifact, _ = embed("--model", str(demo.run_dir / "model.tar.gz"))  # the served artifact's own vocab
    assert with_artifact == lines


def test_ctrl_c_stops_every_process(demo: DemoRun) -> None:
    groups = demo.serving["process_groups"]
    assert groups and all(_group_alive(group) for group in groups)
    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(timeout=90) == 130, demo.log()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_group_alive(group) for group in groups):
        time.sleep(0.2)
    assert [group for group in groups if _group_alive(group)] == []
    assert processes_mentioning(str(demo.run_dir)) == []
    assert "every local process stopped" in demo.log()
