"""The local trainer: real PyTorch training on STS-B / SNLI slices."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from o2v_core.detector import DetectorConfig, detect
from o2v_core.early_stopping import stopping_epoch
from o2v_core.hyperparameters import HyperparameterError, with_defaults
from o2v_core.metric_lines import parse_line
from o2v_core.metric_series import read_metrics_file

from tests.training.conftest import TINY, TrainFn, manifest_hyperparameters
from training.cli import main
from training.commands import detect as detect_command
from training.data.errors import DataError
from training.model import artifact
from training.model.config import resolve
from training.model.encoders import BiLSTMEncoder, HCNNEncoder
from training.model.network import Object2Vec, compare
from training.trainer import __main__ as trainer_main
from training.trainer.data import epoch_batches, load_channel
from training.trainer.loop import Channels, evaluate


@pytest.mark.slow
@pytest.mark.parametrize("network", ["hcnn", "bilstm", "pooled_embedding"])
def test_every_network_trains(stsb_dataset: Path, run_training: TrainFn, network: str) -> None:
    run = run_training(stsb_dataset, {"enc0_network": network, "enc_dim": 24, "epochs": 3})
    train = run.losses("train")
    assert len(train) == len(run.losses("validation")) == 3
    assert train[-1] < train[0] * 0.9, train


@pytest.mark.slow
@pytest.mark.parametrize("comparators", ["hadamard", "concat", "abs_diff", "abs_diff, hadamard"])
def test_every_comparator_trains(stsb_dataset: Path, run_training: TrainFn, comparators: str) -> None:
    # No projection after pooled_embedding (section 10e): hadamard alone needs a faster start.
    run = run_training(stsb_dataset, {"comparator_list": comparators, "epochs": 3, "learning_rate": 0.02})
    train = run.losses("train")
    assert train[-1] < train[0] * 0.9, train


def test_comparators_in_the_given_order() -> None:
    left, right = torch.tensor([[1.0, -2.0]]), torch.tensor([[3.0, 4.0]])
    assert compare(left, right, ("hadamard", "concat", "abs_diff")).tolist() == \
        [[3.0, -8.0, 1.0, -2.0, 3.0, 4.0, 2.0, 6.0]]
    assert compare(left, right, ("abs_diff", "hadamard")).tolist() == [[2.0, 6.0, 3.0, -8.0]]


def test_network_shapes_follow_the_hyperparameters(stsb_dataset: Path) -> None:
    values = {**manifest_hyperparameters(stsb_dataset), "enc0_network": "hcnn", "enc1_network": "bilstm",
              "enc_dim": 12, "enc0_layers": 3, "enc0_cnn_filter_width": 4, "enc0_token_embedding_dim": 8,
              "enc1_token_embedding_dim": 6, "mlp_layers": 0, "comparator_list": "concat"}
    model = Object2Vec(resolve(with_defaults(values)))
    assert isinstance(model.enc0, HCNNEncoder) and isinstance(model.enc1, BiLSTMEncoder)
    convs = list(model.enc0.convs)
    assert len(convs) == 3 and all(isinstance(conv, torch.nn.Conv1d) and conv.kernel_size == (4,) for conv in convs)
    assert model.enc1.lstm.num_layers == 1  # "auto" layers
    assert model.enc0.embedding.embedding_dim == 8 and model.enc1.embedding.embedding_dim == 6
    assert [type(layer).__name__ for layer in model.head] == ["Linear"]
    assert model.head[0].in_features == 24  # concat of two enc_dim vectors
    ids = torch.tensor([[5, 6, 7, 0], [5, 6, 0, 0]])
    lengths = torch.tensor([3, 2])
    assert model.encode(0, ids, lengths).shape == (2, 12)
    # Padding never changes an encoding: the same sequence padded further gives the same vector.
    model.eval()
    padded = torch.cat([ids, torch.full((2, 5), 9)], dim=1)
    assert torch.allclose(model.encode(0, ids, lengths), model.encode(0, padded, lengths), atol=1e-6)
    assert torch.allclose(model.encode(1, ids, lengths), model.encode(1, padded, lengths), atol=1e-6)


def test_enc1_equals_enc0_and_tied_embeddings(stsb_dataset: Path) -> None:
    base = {**manifest_hyperparameters(stsb_dataset), **TINY, "enc0_network": "hcnn"}
    config = resolve(with_defaults(base))
    assert config.enc1.network == "hcnn" and config.enc1.token_embedding_dim == config.enc0.token_embedding_dim
    separate = Object2Vec(config)
    assert separate.enc0.embedding is not separate.enc1.embedding
    tied = Object2Vec(resolve(with_defaults({**base, "tied_token_embedding_weight": "True"})))
    assert tied.enc0.embedding is tied.enc1.embedding
    with pytest.raises(HyperparameterError, match=r"tied_token_embedding_weight.*equal vocab_size and "
                                                  r"token_embedding_dim"):
        resolve(with_defaults({**base, "tied_token_embedding_weight": True, "enc1_network": "bilstm",
                               "enc1_token_embedding_dim": 8}))


@pytest.mark.slow
def test_overfitting_shows_in_the_log_and_the_detector_flags_it(stsb_dataset: Path, tmp_path: Path,
                                                                 run_training: TrainFn) -> None:
    """Dropout 0 and high capacity on 51 training pairs: validation loss rises while train loss falls."""
    tiny_train = tmp_path / "train.jsonl"
    tiny_train.write_text("".join((stsb_dataset / "train" / "train.jsonl").read_text().splitlines(True)[::8]))
    channels = Channels(tiny_train, stsb_dataset / "validation")
    run = run_training(stsb_dataset, {"dropout": 0.0, "enc_dim": 128, "enc0_token_embedding_dim": 64,
                                      "mlp_dim": 128, "mlp_layers": 2, "mini_batch_size": 16,
                                      "learning_rate": 0.0005, "epochs": 14, "early_stopping_patience": 5,
                                      "early_stopping_tolerance": 0.000001}, channels=channels)
    train, validation = run.losses("train"), run.losses("validation")
    best = int(np.argmin(validation))
    assert 0 < best < len(validation) - 3, validation  # it first improves, then gets worse
    assert validation[-1] > validation[best] * 1.05, validation
    assert train[-1] < train[best] * 0.7, train  # train keeps falling after the validation minimum
    log = tmp_path / "overfit.log"  # what the trainer printed, progress included, as a job log shows it
    log.write_text(run.stdout + run.log)
    series = read_metrics_file(log)
    assert [value for _, value in series.validation] == validation
    # The job's own early stopping (patience 5) ends it while the rise is still young, so the rule
    # that sees this overfit is the widening train/validation gap (off by default, see docs/detector.md).
    gap_rule = DetectorConfig(use_generalization_gap=True)
    decision = detect(series.validation, series.train, gap_rule)
    assert decision.diverged, decision
    config = '{"use_generalization_gap": true}'
    assert detect_command.main(["--metrics", str(log), "--config", config]) == detect_command.EXIT_DIVERGED


@pytest.mark.slow
def test_early_stopping_stops(stsb_dataset: Path, run_training: TrainFn) -> None:
    run = run_training(stsb_dataset, {"epochs": 30, "early_stopping_patience": 1,
                                      "early_stopping_tolerance": 0.1, "learning_rate": 0.01})
    result = run.result
    assert result.stopped_early
    ran = len(result.epochs)
    assert ran < 30 and ran == len(run.losses("validation"))
    # Object2Vec stops when the bad count exceeds the patience (section 10c): patience 1 -> 2 bad epochs.
    assert ran - 1 - result.best_epoch >= 2
    assert f"Early stopping criterion met! Stopping training at epoch: {ran - 1}" in run.stdout


@pytest.mark.slow
def test_a_run_with_early_stopping_is_the_first_epochs_of_the_same_run_without(stsb_dataset: Path,
                                                                               run_training: TrainFn) -> None:
    """What bench/record.py relies on to record each curve once: training is seeded and early stopping
    only decides when to stop, so the run with it on is the prefix of the full run, ending at the epoch
    o2v_core.early_stopping.stopping_epoch finds on the longer curve's printed losses."""
    overrides = {"epochs": 12, "learning_rate": 0.02, "early_stopping_tolerance": 0.01}
    stopped = run_training(stsb_dataset, {**overrides, "early_stopping_patience": 1}, seed=3)
    # The schema caps the patience at 5 (bench/record.py sets epochs + 1 past the check to switch it off).
    full = run_training(stsb_dataset, {**overrides, "early_stopping_patience": 5}, seed=3)
    short, whole = stopped.losses("validation"), full.losses("validation")
    assert stopped.result.stopped_early and len(short) < len(whole), (short, whole)
    assert short == whole[: len(short)]
    assert stopping_epoch(whole, 1, 0.01) == len(short) - 1


@pytest.mark.slow
def test_best_epoch_weights_are_kept(stsb_dataset: Path, run_training: TrainFn) -> None:
    run = run_training(stsb_dataset, {"epochs": 6, "learning_rate": 0.02, "early_stopping_patience": 5,
                                      "early_stopping_tolerance": 0.000001},
                       archive=True)
    validation = run.losses("validation")
    assert run.result.best_epoch == int(np.argmin(validation))
    assert run.archive is not None
    loaded = artifact.load(run.archive)
    data = load_channel(stsb_dataset / "validation", loaded.config)
    assert evaluate(loaded.model, data)["mean_squared_error"] == pytest.approx(min(validation), rel=1e-5)
    test_lines = [line for line in run.lines if line.channel == "test"]
    assert len(test_lines) == 1 and test_lines[0].epoch is None


@pytest.mark.slow
def test_seeds_reproduce(stsb_dataset: Path, run_training: TrainFn) -> None:
    overrides = {"enc0_network": "hcnn", "dropout": 0.2, "epochs": 2}
    first, again = run_training(stsb_dataset, overrides, seed=7), run_training(stsb_dataset, overrides, seed=7)
    other = run_training(stsb_dataset, overrides, seed=8)
    assert first.lines == again.lines
    state, state_again = (torch.load(run.model_dir / "model.pt", weights_only=True) for run in (first, again))
    assert all(torch.equal(state[key], state_again[key]) for key in state)
    assert first.lines != other.lines


@pytest.mark.slow
def test_softmax_prints_cross_entropy_and_accuracy(snli_dataset: Path, run_training: TrainFn) -> None:
    run = run_training(snli_dataset, {"epochs": 2, "mlp_activation": "relu"})
    names = {(line.channel, line.metric) for line in run.lines}
    assert names == {("train", "cross_entropy"), ("train", "accuracy"), ("validation", "cross_entropy"),
                     ("validation", "accuracy")}
    assert all(0.0 <= line.value <= 1.0 for line in run.lines if line.metric == "accuracy")


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "adagrad", "adadelta", "rmsprop"])
def test_every_optimizer_updates_the_weights(stsb_dataset: Path, run_training: TrainFn, optimizer: str) -> None:
    run = run_training(stsb_dataset, {"optimizer": optimizer, "epochs": 1, "weight_decay": 0.01,
                                      "mlp_activation": "tanh"})
    torch.manual_seed(0)  # the trainer's initial weights for seed 0
    initial = Object2Vec(run_training_config(stsb_dataset, optimizer))
    trained = torch.load(run.model_dir / "model.pt", weights_only=True)
    assert not torch.equal(initial.state_dict()["head.0.weight"], trained["head.0.weight"])
    assert all(np.isfinite(line.value) for line in run.lines)


def run_training_config(dataset: Path, optimizer: str) -> Any:
    return resolve(with_defaults({**manifest_hyperparameters(dataset), **TINY, "optimizer": optimizer}))


@pytest.mark.slow
def test_bucketing_batches_similar_lengths_and_trains(stsb_dataset: Path, run_training: TrainFn) -> None:
    config = run_training_config(stsb_dataset, "adam")
    data = load_channel(stsb_dataset / "train", config)
    batches = list(epoch_batches(data, 16, np.random.default_rng(0), bucket_width=4))
    assert sum(len(batch.labels) for batch in batches) == len(data)
    for batch in batches:
        longest = torch.maximum(batch.len0, batch.len1)
        assert int(longest.max()) // 4 == int(longest.min()) // 4
    run = run_training(stsb_dataset, {"bucket_width": 4, "epochs": 3})
    train = run.losses("train")
    assert train[-1] < train[0] * 0.9


def test_negative_sampling(stsb_dataset: Path, tmp_path: Path, run_training: TrainFn) -> None:
    # A binary task from STS-B: label 1 when the score is at least 3.
    binary = tmp_path / "binary"
    for split in ("train", "validation"):
        (binary / split).mkdir(parents=True)
        rows = [json.loads(line) for line in (stsb_dataset / split / f"{split}.jsonl").read_text().splitlines()]
        (binary / split / "data.jsonl").write_text("".join(
            json.dumps({**row, "label": int(row["label"] >= 3.0)}) + "\n" for row in rows))
    hyperparameters = {**manifest_hyperparameters(stsb_dataset), "output_layer": "softmax", "num_classes": 2}
    config = resolve(with_defaults({**hyperparameters, "negative_sampling_rate": 2}))
    data = load_channel(binary / "train", config)
    positives = int((data.labels == 1).sum())
    batches = list(epoch_batches(data, 64, np.random.default_rng(0), negative_sampling_rate=2))
    assert sum(len(batch.labels) for batch in batches) == len(data) + 2 * positives
    assert sum(int((batch.labels == 0).sum()) for batch in batches) == int((data.labels == 0).sum()) + 2 * positives
    (binary / "manifest.json").write_text(json.dumps({"hyperparameters": hyperparameters}))
    run = run_training(binary, {"negative_sampling_rate": 2, "epochs": 2})
    assert len(run.losses("validation")) == 2
    with pytest.raises(HyperparameterError, match=r"negative_sampling_rate.*output_layer=softmax with num_classes=2"):
        resolve(with_defaults({**manifest_hyperparameters(stsb_dataset), "negative_sampling_rate": 1}))


def test_pretrained_embeddings_from_the_auxiliary_channel(stsb_dataset: Path, tmp_path: Path,
                                                          run_training: TrainFn) -> None:
    aux = tmp_path / "aux"
    aux.mkdir()
    vocab = json.loads((stsb_dataset / "auxiliary" / "vocab.json").read_text())
    chosen = ["a", "man", "is", "woman", "playing"]
    vectors = {token: [round(0.01 * (i + 1) * (j + 1), 4) for j in range(16)] for i, token in enumerate(chosen)}
    (aux / "vectors.txt").write_text("".join(f"{token} {' '.join(map(str, values))}\n"
                                             for token, values in vectors.items()) + "unseenword " + "0.5 " * 15 +
                                     "0.5\n")
    (aux / "vocab.json").write_text(json.dumps(vocab))
    channels = Channels(stsb_dataset / "train", stsb_dataset / "validation", None, aux)
    pretrained = {"enc0_pretrained_embedding_file": "vectors.txt", "enc0_vocab_file": "vocab.json", "epochs": 1}
    frozen = run_training(stsb_dataset, pretrained, channels=channels)
    weights = torch.load(frozen.model_dir / "model.pt", weights_only=True)["enc0.embedding.weight"]
    for token, values in vectors.items():
        assert torch.allclose(weights[vocab[token]], torch.tensor(values))
    assert "5 pretrained vectors from vectors.txt (frozen)" in frozen.log
    unfrozen = run_training(stsb_dataset, {**pretrained, "enc0_freeze_pretrained_embedding": "False"},
                            channels=channels)
    weights = torch.load(unfrozen.model_dir / "model.pt", weights_only=True)["enc0.embedding.weight"]
    assert not torch.allclose(weights[vocab["a"]], torch.tensor(vectors["a"]))
    (aux / "short.txt").write_text("a 0.1 0.2\n")
    with pytest.raises(DataError, match=r"short\.txt:1: vector has 2 values; token_embedding_dim is 16"):
        run_training(stsb_dataset, {**pretrained, "enc0_pretrained_embedding_file": "short.txt"}, channels=channels)
    with pytest.raises(HyperparameterError, match="enc0_vocab_file"):
        resolve(with_defaults({**manifest_hyperparameters(stsb_dataset),
                               "enc0_pretrained_embedding_file": "vectors.txt"}))


def test_bad_records_name_file_and_line(stsb_dataset: Path, tmp_path: Path) -> None:
    config = run_training_config(stsb_dataset, "adam")
    good = (stsb_dataset / "train" / "train.jsonl").read_text().splitlines(True)
    cases = {
        '{"label": 1.0, "in0": [1, 99999], "in1": [2]}\n':
            f"'in0' token id 99999 is outside [0, {config.enc0.vocab_size - 1}]",
        '{"label": 1.0, "in0": [], "in1": [2]}\n': "'in0' must be a non-empty list of token ids",
        '{"label": 1.0, "in0": [1], "in1": ["x"]}\n': "'in1' must hold integer token ids",
        '{"in0": [1], "in1": [2]}\n': "record lacks label",
        '{"label": 1.0, "in0": [1]\n': "not valid JSON",
    }
    for bad, problem in cases.items():
        path = tmp_path / "train.jsonl"
        path.write_text("".join(good[:4]) + bad)
        with pytest.raises(DataError) as raised:
            load_channel(path, config)
        assert str(raised.value).startswith(f"{path}:5: ") and problem in str(raised.value)


@pytest.mark.parametrize(("name", "value", "allowed"), [
    ("dropout", "1.5", "float in [0.0, 1.0]"),
    ("mini_batch_size", "0", "int in [1, 10000]"),
    ("enc0_network", "transformer", "one of hcnn, bilstm, pooled_embedding"),
    ("epochs", "101", "int in [1, 100]"),
])
def test_out_of_range_hyperparameters_are_rejected_with_the_range(
    stsb_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, value: str, allowed: str
) -> None:
    code = main(["train", "--data", str(stsb_dataset), "--out", str(tmp_path / "run"), "--hp", f"{name}={value}"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"hyperparameter '{name}'" in err and allowed in err
    assert not (tmp_path / "run").exists()


def _container(base: Path, dataset: Path, hyperparameters: dict[str, Any]) -> None:
    (base / "input" / "config").mkdir(parents=True)
    (base / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps({key: str(value) for key, value in hyperparameters.items()}))
    (base / "input" / "data").mkdir()
    for channel in ("train", "validation", "auxiliary"):
        (base / "input" / "data" / channel).symlink_to(dataset / channel)


def test_container_contract_failure_file(stsb_dataset: Path, tmp_path: Path) -> None:
    base = tmp_path / "opt-ml"
    _container(base, stsb_dataset, {**manifest_hyperparameters(stsb_dataset), **TINY, "dropout": "2"})
    assert trainer_main.main(["--opt-ml", str(base), "--quiet"]) == 1
    failure = (base / "output" / "failure").read_text()
    assert failure.startswith(
        "ClientError: hyperparameter 'dropout': 2.0 is out of range; allowed: float in [0.0, 1.0]")
    assert not (base / "model").exists()


@pytest.mark.slow
def test_container_contract_as_a_subprocess(stsb_dataset: Path, tmp_path: Path, repo_root: Path) -> None:
    base = tmp_path / "job"
    _container(base, stsb_dataset, {**manifest_hyperparameters(stsb_dataset), **TINY, "epochs": 2})
    env = {**os.environ, "SM_BASE_DIR": str(base), "O2V_SEED": "3"}
    done = subprocess.run([sys.executable, "-m", "training.trainer"], cwd=repo_root, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = [parse_line(text) for text in done.stdout.splitlines()]
    # stdout is the job's log: the container's lines, each with its prefix (reference section 10b)
    assert all(re.match(r"\[\d\d/\d\d/\d{4} \d\d:\d\d:\d\d INFO \d+\] ", text)
               for text in done.stdout.splitlines()), done.stdout
    assert [(line.epoch, line.channel) for line in lines if line is not None] == \
        [(0, "train"), (0, "validation"), (1, "train"), (1, "validation")]
    assert "train: epoch 1/1" in done.stderr
    files = {"model.pt", "model_config.json", "hyperparameters.json", "training.json", "vocab.json", "tokenizer.json"}
    assert {path.name for path in (base / "model").iterdir()} == files
    with tarfile.open(base / "output" / "model.tar.gz") as tar:
        assert set(tar.getnames()) == files
    assert json.loads((base / "model" / "training.json").read_text())["seed"] == 3
    assert not (base / "output" / "failure").exists()


@pytest.mark.slow
def test_cli_train_writes_the_run_directory(stsb_dataset: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "hp.json"
    config.write_text(json.dumps({"hyperparameters": {**TINY, "epochs": 2}}))
    out = tmp_path / "run"
    assert main(["train", "--data", str(stsb_dataset), "--out", str(out), "--config", str(config),
                 "--hp", "dropout=0.1", "--quiet"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out[captured.out.index("{"):])
    assert summary["model"] == str(out / "model.tar.gz") and (out / "model.tar.gz").is_file()
    log_lines = (out / "train.log").read_text().splitlines()
    assert [parse_line(line) for line in log_lines if line.startswith("#quality_metric")] == \
        [parse_line(line) for line in captured.out.splitlines() if line.startswith("#quality_metric")]
    assert json.loads((out / "hyperparameters.json").read_text())["dropout"] == "0.1"
    series = read_metrics_file(out / "train.log")
    assert len(series.validation) == 2
    assert main(["train", "--data", str(stsb_dataset), "--out", str(out)]) == 2  # exists: needs --force
