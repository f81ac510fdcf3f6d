"""``o2v train --data DIR`` on Object2Vec-format channels (the notebooks' layout, no manifest.json).

The notebooks' own channels train in every test_notebook_*.py module (their ``model`` fixtures run
``o2v train --data``); these are the errors a user meets on the way.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.cli import main

RECORD = '{"label": 1, "in0": [774, 14, 21, 206], "in1": [21, 366, 125]}\n'  # the developer guide's


def test_channels_without_the_required_hyperparameters_say_which_to_give(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data" / "train").mkdir(parents=True)
    (tmp_path / "data" / "train" / "train.jsonl").write_text(RECORD)
    assert main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert "'enc0_max_seq_len': is required" in error
    assert "Object2Vec-format channels and no manifest.json" in error and "--config and --hp" in error
    assert not (tmp_path / "run").exists()


def test_a_directory_that_is_neither_layout_names_both(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").mkdir()
    assert main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert "manifest.json not found" in error and "no train/ directory" in error


def test_channels_with_hyperparameters_train(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for channel in ("train", "validation"):
        (tmp_path / "data" / channel).mkdir(parents=True)
        (tmp_path / "data" / channel / f"{channel}.jsonl").write_text(RECORD * 4)
    assert main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--quiet",
                 "--hp", "enc0_max_seq_len=8", "enc0_vocab_size=1000", "enc0_network=pooled_embedding",
                 "enc0_token_embedding_dim=4", "enc_dim=4", "mlp_dim=4", "epochs=1", "num_classes=2"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.index("\n{\n") + 1:])  # after the metric lines
    assert Path(summary["model"]).is_file() and summary["best_epoch"] == 0


def test_the_readme_command_for_notebook_channels_runs_as_written(repo_root: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (repo_root / "training" / "README.md").read_text(encoding="utf-8")
    command = next(line for line in readme.splitlines() if line.startswith(".venv/bin/o2v train --data channels"))
    for channel in ("train", "validation"):
        (tmp_path / "channels" / channel).mkdir(parents=True)
        (tmp_path / "channels" / channel / f"{channel}.jsonl").write_text(RECORD * 4)
    (tmp_path / "notebook_hyperparameters.json").write_text(json.dumps({
        "enc0_max_seq_len": 8, "enc0_vocab_size": 1000, "enc0_network": "pooled_embedding",
        "enc0_token_embedding_dim": 4, "enc_dim": 4, "mlp_dim": 4, "epochs": 1, "num_classes": 2}))
    monkeypatch.chdir(tmp_path)
    assert main([*command.split()[1:], "--quiet"]) == 0
    assert (tmp_path / "runs" / "notebook" / "model.tar.gz").is_file()
