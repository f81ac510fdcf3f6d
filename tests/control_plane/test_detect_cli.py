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
LOG = FIXTURES / "synthetic-object2vec-stsb-regression.log"  # hand-written, see fixtures/README.md
REAL_FORMAT = FIXTURES / "real-format-object2vec-early-stopped.log"  # reconstructed from reference 10b


def test_a_log_in_the_real_object2vec_format_is_read(repo_root: Path) -> None:
    """Issue 10 defect 5: real lines start with '[MM/DD/YYYY ...', which was taken for JSON.

    The fixture is reconstructed line by line from reference section 10b's description of a real log
    (patience 2: best epoch 3, stopped after epoch 6); accuracy (a score) and test lines are ignored.
    """
    assert REAL_FORMAT.read_text().startswith("[06/17/2021 ")
    result = subprocess.run(
        [sys.executable, "-m", "training.commands.detect", "--metrics", str(REAL_FORMAT), "--json"],
        cwd=repo_root, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    decision = json.loads(result.stdout)
    assert decision["metric"] == "validation:cross_entropy" and decision["epochs_seen"] == 7
    assert (decision["best_epoch"], decision["best_value"]) == (3, 0.1813)
    assert (decision["last_epoch"], decision["last_value"]) == (6, 0.1977)
    series = read_metrics_file(REAL_FORMAT)
    assert series.train[0] == (0, 0.3009) and series.skipped == ()


def test_a_synthetic_sagemaker_log_through_the_command_line(repo_root: Path) -> None:
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
        ("empty.log", "Training seconds: 580\n", "no per-epoch '#quality_metric' validation loss lines"),
        ("missing.log", None, "missing.log: no such file"),
        ("binary.log", b"\xff\xfe\x00garbage", "binary.log:1: invalid UTF-8 (byte 0xff at column 1)"),
        ("utf8.log", b"#quality_metric: host=algo-1, epoch=0, validation cross_entropy <loss>=0.5\nok\nbad \xc3(\n",
         "utf8.log:3: invalid UTF-8 (byte 0xc3 at column 5)"),
        ("deep.json", "[" * 100_000 + "]" * 100_000, "deep.json: JSON nested too deeply"),
        ("digits.json", '[{"epoch": ' + "9" * 5000 + ', "validation": 0.5}]', "digits.json: not valid JSON"),
        ("underscore.csv", "0,0.5\n1,1_1.8\n", "underscore.csv:2: column 'validation' is '1_1.8', not a number"),
        ("underscore-epoch.csv", "0,0.5\n1_0,0.4\n", "underscore-epoch.csv:2: column 'epoch' is '1_0', not an integer"),
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


@pytest.mark.parametrize(
    ("garbled", "why"),
    [
        ("#quality_metric: host=algo-1, epoch=2, validation cross_entropy <loss>=", "metric value is missing"),
        ("#quality_metric: host=algo-1, epoch=2, validation cross_entropy <loss>=1_1.8", "'1_1.8' is not a number"),
        ("#quality_metric: host=algo-1, epoch=-1, validation cross_entropy <loss>=0.4", "epoch '-1' is not a whole"),
        ("#quality_metric: host=algo-1, epoch=2, validation cross_entropy <loss>=0.4O", "'0.4O' is not a number"),
    ],
)
def test_a_garbled_metric_line_is_reported_and_the_rest_still_decides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], garbled: str, why: str
) -> None:
    """Issue 14: a line cut after '<loss>=' or with a negative epoch was dropped without a word, and
    '1_1.8' was read as 11.8. Each is now named (file:line) and left out of the curve."""
    good = [f"[06/17/2021 22:4{epoch}:36 INFO 1] #quality_metric: host=algo-1, epoch={epoch}, "
            f"validation cross_entropy <loss>={value}" for epoch, value in enumerate([0.7, 0.6, 0.55, 0.5])]
    path = tmp_path / "job.log"
    path.write_text("\n".join([*good[:2], f"[06/17/2021 22:42:36 INFO 1] {garbled}", *good[2:]]) + "\n")
    assert detect.main(["--metrics", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    assert f"o2v detect: warning: skipped {path}:3: " in captured.err and why in captured.err, captured.err
    decision = json.loads(captured.out)
    assert decision["epochs_seen"] == 4 and decision["last_value"] == 0.5  # 11.8 never enters the curve
    assert "skipped 1 garbled #quality_metric line(s)" in decision["explanation"]


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
