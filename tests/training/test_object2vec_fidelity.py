"""The local trainer behaves as the real Object2Vec container (reference section 10)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from o2v_core.early_stopping import EarlyStopping, stopping_epoch
from o2v_core.hyperparameters import HyperparameterError, with_defaults
from o2v_core.metric_series import series_from_lines

from tests.training.conftest import TINY, TrainFn, manifest_hyperparameters
from training.model.config import resolve
from training.model.encoders import PooledEmbeddingEncoder
from training.model.network import Object2Vec

PREFIX = re.compile(r"^\[\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2} INFO \d+\] ")


def test_early_stopping_window_is_the_previous_patience_epochs() -> None:
    # An old best leaves the window: 0.50 at epoch 0 is forgotten by epoch 3 with patience 2, so
    # 0.55 < min(0.60, 0.58) - 0.01 is a good epoch although it is worse than the best so far.
    rule = EarlyStopping(patience=2, tolerance=0.01)
    steps = [rule.observe(loss) for loss in (0.50, 0.60, 0.58, 0.55)]
    assert [step.bad for step in steps] == [False, True, True, False]
    assert steps[3].window == (0.60, 0.58) and steps[3].bad_count == 0
    assert rule.best_epoch == 0  # the saved model is still the best epoch overall


def test_early_stopping_stops_when_bad_count_exceeds_patience() -> None:
    # The real run (section 10b): patience 2, best epoch 3, stopped after epoch 6.
    losses = [0.30, 0.25, 0.20, 0.1813, 0.19, 0.185, 0.1977, 0.17]
    assert stopping_epoch(losses, patience=2, tolerance=0.001) == 6
    # The tolerance is absolute: an improvement smaller than it is a bad epoch.
    assert stopping_epoch([1.0, 0.995, 0.99, 0.985], patience=1, tolerance=0.01) == 2
    assert stopping_epoch([1.0, 0.9, 0.8], patience=1, tolerance=0.01) is None


@pytest.mark.slow
def test_log_matches_the_real_container(stsb_dataset: Path, run_training: TrainFn) -> None:
    run = run_training(stsb_dataset, {"epochs": 30, "early_stopping_patience": 1, "early_stopping_tolerance": 0.1,
                                      "learning_rate": 0.01})
    lines = run.stdout.splitlines()
    assert lines and all(PREFIX.match(line) for line in lines), lines[:3]
    text = [PREFIX.sub("", line) for line in lines]
    ran = len(run.result.epochs)
    assert text[0].startswith("Epoch 0 Training metrics:   mean_squared_error: ")
    assert text[1].startswith("#quality_metric: host=algo-1, epoch=0, train mean_squared_error <loss>=")
    assert text[2].startswith("Epoch 0 Validation metrics: mean_squared_error: ")
    assert text[3].startswith("#quality_metric: host=algo-1, epoch=0, validation mean_squared_error <loss>=")
    assert "patience losses: [" not in "\n".join(text[:5])  # the trace starts with the second epoch
    for marker in ("patience losses: [", "min patience losses: ", "current loss: ", "absolute loss difference: ",
                   "Bad epoch: loss has not improved (enough). Bad count:2"):
        assert any(line.startswith(marker) for line in text), marker
    tail = text[-6:]
    assert tail[0] == "Bad epochs exceeded patience. Stopping training early!"
    assert tail[1] == f"Early stopping criterion met! Stopping training at epoch: {ran - 1}"
    best = run.result.best_epoch
    assert tail[2] == f"Best model based on epoch {best}. Best loss: {run.result.best_loss:.3f}"
    assert tail[3].startswith("Serializing model to ")
    assert tail[4].startswith("Test Metrics:mean_squared_error: ")
    assert tail[5].startswith("#quality_metric: host=algo-1, test mean_squared_error <loss>=")
    series = series_from_lines(lines)
    assert [epoch for epoch, _ in series.validation] == list(range(ran))


@pytest.mark.slow
def test_test_channel_scored_once_on_the_best_model(stsb_dataset: Path, run_training: TrainFn) -> None:
    run = run_training(stsb_dataset, {"epochs": 6, "learning_rate": 0.02, "early_stopping_patience": 5,
                                      "early_stopping_tolerance": 0.000001})
    text = [PREFIX.sub("", line) for line in run.stdout.splitlines()]
    test_lines = [line for line in text if line.startswith("#quality_metric: host=algo-1, test ")]
    assert len(test_lines) == 1 and "epoch=" not in test_lines[0]
    assert run.result.best_epoch == int(np.argmin(run.losses("validation")))


def _pooled(token_dim: int, enc_dim: int, dropout: float = 0.0) -> PooledEmbeddingEncoder:
    values = {**TINY, "enc0_vocab_size": 20, "enc0_max_seq_len": 8, "enc_dim": enc_dim,
              "enc0_token_embedding_dim": token_dim, "dropout": dropout}
    model = Object2Vec(resolve(with_defaults(values)))
    assert isinstance(model.enc0, PooledEmbeddingEncoder)
    return model.enc0


def test_pooled_embedding_is_the_masked_mean_without_projection() -> None:
    encoder = _pooled(16, 16).eval()
    assert isinstance(encoder.project, torch.nn.Identity)
    assert not any(name.startswith("project") for name, _ in encoder.named_parameters())
    ids, lengths = torch.tensor([[5, 0, 6, 0]]), torch.tensor([4])
    expected = encoder.embedding(torch.tensor([5, 6])).mean(dim=0)
    assert torch.allclose(encoder(ids, lengths)[0], expected, atol=1e-6)  # id 0 is padding
    assert torch.allclose(encoder(torch.tensor([[0, 0]]), torch.tensor([2])), torch.zeros(1, 16))


def test_pooled_embedding_dropout_follows_the_mean() -> None:
    encoder = _pooled(16, 16, dropout=0.5).train()
    ids, lengths = torch.tensor([[5, 6, 7]]), torch.tensor([3])
    mean = encoder.embedding(ids[0]).mean(dim=0)
    torch.manual_seed(0)
    output = encoder(ids, lengths)[0]
    kept = output != 0
    assert 0 < int(kept.sum()) < 16
    assert torch.allclose(output[kept], mean[kept] * 2, atol=1e-6)  # inverted dropout on the mean itself


def test_pooled_embedding_projects_when_enc_dim_differs() -> None:
    encoder = _pooled(8, 12).eval()
    assert isinstance(encoder.project, torch.nn.Linear) and encoder.project.in_features == 8
    assert encoder(torch.tensor([[5, 6]]), torch.tensor([2])).shape == (1, 12)


def test_enc1_enc0_inherits_vocab_size_and_max_len(stsb_dataset: Path) -> None:
    base = {**manifest_hyperparameters(stsb_dataset), **TINY}
    config = resolve(with_defaults({**base, "enc1_network": "enc0", "enc0_max_seq_len": 10, "enc1_max_seq_len": 20}))
    assert (config.enc1.vocab_size, config.enc1.max_seq_len) == (config.enc0.vocab_size, 10)
    wanted = config.enc0.vocab_size + 5
    with pytest.raises(HyperparameterError, match=rf"enc1_vocab_size.*{wanted} is more than enc0_vocab_size"):
        resolve(with_defaults({**base, "enc1_network": "enc0", "enc1_vocab_size": wanted}))
