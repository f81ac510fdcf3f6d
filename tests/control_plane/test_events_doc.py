"""docs/events.md's examples and rule table are generated here from o2v_core.events, so the doc
cannot drift: this test fails when a generated block differs from what the code produces.

Regenerate after changing events.py:  O2V_UPDATE_DOCS=1 .venv/bin/pytest tests/control_plane/test_events_doc.py
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from control_plane.logic.sagemaker_event import parse_training_job_state_change
from o2v_core.detector import detect
from o2v_core.events import (
    DETAIL_TYPES,
    FINISHED_STATUSES,
    SAGEMAKER_SOURCE,
    TRAINING_JOB_STATE_CHANGE,
    Detail,
    DivergenceDecisionDetail,
    ModelPromoted,
    ModelRolledBack,
    PromotionSkipped,
    RetrainingExhausted,
    TrainingFailed,
    TrainingSucceeded,
    ValidationLossDiverged,
    parse_event,
    rules,
)
from o2v_core.metric_series import read_metrics_file

from tests.support.cloud import as_delivered

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
FIXTURE_LOG = Path(__file__).parent / "fixtures" / "synthetic-object2vec-stsb-regression.log"
DEPLOYMENT = "dev"
JOB = "dev--stsb-baseline-a1"
BLOCK = re.compile(r"(<!-- generated:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /generated:(?P=name) -->)", re.S)


def _decision() -> DivergenceDecisionDetail:
    series = read_metrics_file(FIXTURE_LOG)  # the committed SageMaker log: a real detector verdict
    return detect(series.validation, series.train, metric=series.metric).to_detail()


def examples() -> dict[str, Detail]:
    return {
        "ValidationLossDiverged": ValidationLossDiverged(
            deployment=DEPLOYMENT, trainingJobName=JOB, lineage="stsb-baseline", attempt=1,
            metricName="validation:mean_squared_error", stoppedJob=True, decision=_decision(), epochsSaved=6,
        ),
        "TrainingSucceeded": TrainingSucceeded(
            deployment=DEPLOYMENT, trainingJobName="dev--stsb-baseline-a2", lineage="stsb-baseline", attempt=2,
            metricName="validation:mean_squared_error", bestValue=0.9318, bestEpoch=13, finalValue=0.9344,
            modelArtifact="s3://o2v-dev-artifacts/models/dev-stsb-baseline-a2/output/model.tar.gz",
            trainingJobStatus="Completed",
        ),
        "TrainingFailed": TrainingFailed(
            deployment=DEPLOYMENT, trainingJobName="dev--snli-a1",
            failureReason="CapacityError: Unable to provision requested ML compute capacity. Please retry using a "
                          "different ML instance type.",
            category="capacity",
        ),
        "RetrainingExhausted": RetrainingExhausted(
            deployment=DEPLOYMENT, lineage="stsb-baseline", lastTrainingJobName="dev--stsb-baseline-a3", attempts=3,
            reason="attempt 3 (best 1.38906) did not beat the lineage's best 1.30249 (dev--stsb-baseline-a2): raising "
                   "regularization stopped helping, so no attempt 4 is started and the lineage keeps its best "
                   "(on_no_improvement='stop')",
            stoppedBecause="no_improvement", bestTrainingJobName="dev--stsb-baseline-a2", bestValue=1.30249,
        ),
        "ModelPromoted": ModelPromoted(
            deployment=DEPLOYMENT, trainingJobName="dev--stsb-baseline-a2", endpointName="o2v-dev-embeddings",
            modelName="dev--stsb-baseline-a2", candidateValue=0.9318, previousValue=0.9912,
            metricName="validation:mean_squared_error",
        ),
        "PromotionSkipped": PromotionSkipped(
            deployment=DEPLOYMENT, trainingJobName="dev--stsb-baseline-a3", endpointName="o2v-dev-embeddings",
            candidateValue=0.9402, servingValue=0.9318, metricName="validation:mean_squared_error",
            reason="candidate 0.9402 does not beat the served 0.9318 by the margin 0",
        ),
        "ModelRolledBack": ModelRolledBack(
            deployment=DEPLOYMENT, endpointName="o2v-dev-embeddings", rejectedTrainingJobName="dev-stsb-baseline-a3",
            servingEndpointConfigName="dev-c-stsb-baseline-a2", servingTrainingJobName="dev-stsb-baseline-a2",
            reason="the record named 'dev-c-stsb-baseline-a3', but the endpoint is InService on the older "
                   "'dev-c-stsb-baseline-a2': the blue/green deployment was rolled back or failed",
        ),
    }


def sagemaker_example() -> dict[str, Any]:
    return {
        "version": "0", "id": "844e2571-85d4-695f-b930-0153b71dcb42", "detail-type": TRAINING_JOB_STATE_CHANGE,
        "source": SAGEMAKER_SOURCE, "account": "123456789012", "time": "2026-11-26T09:50:52Z", "region": "us-east-1",
        "resources": [f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{JOB}"],
        "detail": {
            "TrainingJobName": JOB,
            "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{JOB}",
            "TrainingJobStatus": "Stopped", "SecondaryStatus": "Stopped",
            "HyperParameters": {"dropout": "0.2", "output_layer": "mean_squared_error", "...": "..."},
            "ModelArtifacts": {"S3ModelArtifacts": f"s3://o2v-dev-artifacts/models/{JOB}/output/model.tar.gz"},
            "Tags": {"o2v:deployment": "dev", "o2v:lineage": "stsb-baseline", "o2v:attempt": "1"},
        },
    }


def _json(data: Any) -> str:
    return "```json\n" + json.dumps(data, indent=2) + "\n```\n"


def generated_blocks() -> dict[str, str]:
    blocks = {name: _json(as_delivered(detail)) for name, detail in examples().items()}
    blocks["SageMakerTrainingJobStateChange"] = _json(sagemaker_example())
    lines = ["| Rule | Bus | Target | Matches |", "| --- | --- | --- | --- |"]
    for spec in rules(DEPLOYMENT):
        lines.append(f"| `{spec.rule_id}` | {spec.bus} | `{spec.target}` | {spec.description} |")
    blocks["rules"] = "\n".join(lines) + "\n"
    blocks["patterns"] = "".join(
        f"`{spec.rule_id}`:\n\n" + _json(spec.pattern) + "\n" for spec in rules(DEPLOYMENT)
    )
    return blocks


def test_docs_events_md_is_generated_from_the_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    wanted = generated_blocks()
    found = {match.group("name") for match in BLOCK.finditer(text)}
    assert found == set(wanted), f"blocks missing from or unknown to docs/events.md: {found ^ set(wanted)}"
    updated = BLOCK.sub(lambda match: match.group(1) + wanted[match.group("name")] + match.group(4), text)
    if os.environ.get("O2V_UPDATE_DOCS") == "1":
        DOC.write_text(updated, encoding="utf-8")
        return
    assert updated == text, f"docs/events.md is stale: run O2V_UPDATE_DOCS=1 pytest {Path(__file__).name}"


def test_every_event_has_an_example_and_each_example_parses() -> None:
    assert set(examples()) == set(DETAIL_TYPES)
    for name, detail in examples().items():
        event = json.loads(json.dumps(as_delivered(detail)))  # what a target receives
        assert parse_event(event, type(detail)) == detail, name
    parsed = parse_training_job_state_change(sagemaker_example(), DEPLOYMENT)
    assert parsed.status in FINISHED_STATUSES


@pytest.mark.parametrize("name", ["ValidationLossDiverged", "TrainingSucceeded"])
def test_the_examples_in_the_doc_parse(name: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    match = next(match for match in BLOCK.finditer(text) if match.group("name") == name)
    event = json.loads(match.group("body").removeprefix("```json\n").removesuffix("```\n"))
    cls = type(examples()[name])
    assert parse_event(event, cls) == examples()[name]
