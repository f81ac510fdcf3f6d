"""``o2v detect`` on a SageMaker-format Object2Vec log, CSV and JSON, and the metric readers."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from o2v_core.metric_series import MetricInputError, read_metrics_file, series_from_lines

from training.commands import detect

FIXTURES = Path(__file__).parent / "fixtures"
LOG = FIXTURES / "object2vec-stsb-regression.log"


def test_a_real_sagemaker_log_through_the_command_line(repo_root: Path) -> None:
    """As a user runs it: a subprocess, the repository as working directory."""
    result = subprocess.run(
        [sys.executable, "-m", "training.commands.detect", "--metrics", str(LOG)],
        cwd=repo_root, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 3, result.stderr
    out = result.stdout
    assert "metric:   validation:mean_squared_error (14 epochs; train loss for 14 epochs)" in out
    assert "decision: DIVERGED (validation_rise) at epoch 13" in out
    assert "best:     0.9712 at epoch 8" in out
    assert "latest:   1.1031 at epoch 13" in out
    assert result.stderr == ""


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert detect.main(["--metrics", str(LOG), "--json"]) == 3
    decision = json.loads(capsys.readouterr().out)
    assert decision["diverged"] is True and decision["reason"] == "validation_rise"
    assert (decision["best_epoch"], decision["best_value"], decision["detected_at_epoch"]) == (8, 0.9712, 13)
    assert decision["last_value"] == 1.1031 and decision["source"] == str(LOG)


def test_the_gap_rule_when_turned_on_fires_earlier(capsys: pytest.CaptureFixture[str]) -> None:
    assert detect.main(["--metrics", str(LOG), "--json", "--config", '{"use_generalization_gap": true}']) == 3
    decision = json.loads(capsys.readouterr().out)
    assert (decision["reason"], decision["detected_at_epoch"]) == ("generalization_gap", 11)


def test_the_log_without_train_lines_diverges_later_by_the_rise_rule(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    lines = [line for line in LOG.read_text().splitlines() if ", train " not in line]
    path = tmp_path / "validation-only.log"
    path.write_text("\n".join(lines))
    assert detect.main(["--metrics", str(path), "--json"]) == 3
    decision = json.loads(capsys.readouterr().out)
    assert (decision["reason"], decision["detected_at_epoch"]) == ("validation_rise", 13)


def test_config_changes_the_verdict(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lenient = '{"use_generalization_gap": false, "min_relative_rise": 0.5}'
    assert detect.main(["--metrics", str(LOG), "--config", lenient]) == 0
    assert "decision: healthy: no retrain" in capsys.readouterr().out
    config_file = tmp_path / "detector.json"
    config_file.write_text(lenient)
    assert detect.main(["--metrics", str(LOG), "--config", str(config_file)]) == 0


@pytest.mark.parametrize(
    ("name", "content", "code", "reason"),
    [
        ("healthy.csv", "epoch,validation,train\n0,0.9,0.95\n1,0.7,0.7\n2,0.6,0.58\n3,0.55,0.5\n4,0.52,0.46\n", 0,
         "healthy"),
        ("short.csv", "0,0.9\n1,1.2\n", 0, "insufficient_data"),
        ("nan.json", '[{"epoch": 0, "validation": 0.9}, {"epoch": 1, "validation": "nan"}]', 3, "non_finite"),
        ("rising.json", json.dumps({"metric": "validation:cross_entropy", "points": [
            {"epoch": epoch, "validation": value} for epoch, value in enumerate([0.7, 0.6, 0.55, 0.6, 0.66, 0.72, 0.8])
        ]}), 3, "validation_rise"),
    ],
)
def test_csv_and_json_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str, code: int,
                             reason: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    assert detect.main(["--metrics", str(path), "--json"]) == code
    assert json.loads(capsys.readouterr().out)["reason"] == reason


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", "epoch,validation\n0,0.5\n1,abc\n", "bad.csv:3: column 'validation' is 'abc', not a number"),
        ("bad-epoch.csv", "0,0.5\nx,0.4\n", "bad-epoch.csv:2: column 'epoch' is 'x', not an integer"),
        ("columns.csv", "0,0.5,0.4,0.3\n", "columns.csv:1: expected 2 or 3 columns"),
        ("header.csv", "epoch,loss\n0,0.5\n", "header.csv:1: header must be"),
        ("order.csv", "0,0.5\n2,0.4\n1,0.3\n", "epoch 1 follows 2"),
        ("empty.csv", "epoch,validation\n", "no data rows"),
        ("bad.json", '[{"epoch": 0, "validation": 0.5},\n {"epoch": 1, "validation": }]', "bad.json:2: not valid JSON"),
        ("item.json", '[{"epoch": 0, "validation": 0.5}, {"epoch": 1, "validation": [1]}]',
         "item 1: 'validation' is [1], not a number"),
        ("key.json", '[{"epoch": 0, "val": 0.5}]', "unknown key 'val'"),
        ("corrupt.log", "#quality_metric: host=algo-1, epoch=0, validation cross_entropy <loss>=0.5\n"
                        "noise\n#quality_metric: host=algo-1, epoch=1, validation cross_entropy <loss>=0.4O\n",
         "corrupt.log:3: metric value '0.4O' is not a number"),
        ("empty.log", "Training seconds: 580\n", "no per-epoch '#quality_metric' validation loss lines"),
        ("missing.log", None, "missing.log: no such file"),
        ("binary.log", b"\xff\xfe\x00garbage", "cannot read"),
    ],
)
def test_unreadable_input_exits_2_and_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str | bytes | None, message: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert detect.main(["--metrics", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("o2v detect: error: ") and message in captured.err, captured.err


def test_a_bad_config_exits_2_and_names_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert detect.main(["--metrics", str(LOG), "--config", '{"patience": 0}']) == 2
    assert "detector config field 'patience'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# The readers the monitor shares


def test_the_log_reader_takes_one_host_the_latest_value_per_epoch_and_skips_test_lines() -> None:
    lines = [
        "#quality_metric: host=algo-2, epoch=0, validation cross_entropy <loss>=9.0",
        "#quality_metric: host=algo-1, epoch=0, train cross_entropy <loss>=0.8",
        "#quality_metric: host=algo-1, epoch=0, validation cross_entropy <loss>=0.7",
        "#quality_metric: host=algo-1, epoch=1, validation cross_entropy <loss>=0.65",
        "#quality_metric: host=algo-1, epoch=1, validation accuracy <score>=0.61",
        "#quality_metric: host=algo-1, epoch=1, validation cross_entropy <loss>=0.6",  # spot restart re-logs epoch 1
        "#quality_metric: host=algo-1, test cross_entropy <loss>=0.5",
        "#quality_metric: host=algo-1, epoch=2, validation cross_entropy <loss>=nan",
    ]
    series = series_from_lines(lines)
    assert series.metric == "validation:cross_entropy"
    assert series.validation[:2] == ((0, 0.7), (1, 0.6))
    assert math.isnan(series.validation[2][1])
    assert series.train == ((0, 0.8),)


def test_the_log_reader_with_an_explicit_metric_and_ambiguous_logs() -> None:
    lines = ["#quality_metric: host=algo-1, epoch=0, validation cross_entropy <loss>=0.7",
             "#quality_metric: host=algo-1, epoch=0, validation mean_squared_error <loss>=0.2"]
    with pytest.raises(MetricInputError, match="choose one with --metric"):
        series_from_lines(lines)
    assert series_from_lines(lines, metric="validation:mean_squared_error").validation == ((0, 0.2),)
    assert series_from_lines(lines, metric="cross_entropy").validation == ((0, 0.7),)
    # The monitor names the metric; a job with no lines yet is an empty curve, not an error.
    assert series_from_lines([], metric="validation:cross_entropy").validation == ()


def test_the_fixture_reads_as_fourteen_epochs() -> None:
    series = read_metrics_file(LOG)
    assert [epoch for epoch, _ in series.validation] == list(range(14))
    assert [epoch for epoch, _ in series.train] == list(range(14))
    assert series.validation[8] == (8, 0.9712)
