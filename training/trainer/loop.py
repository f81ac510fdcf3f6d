"""The training loop: Object2Vec's hyperparameters, log lines, early stopping, best weights.

Per epoch it prints, to the metric streams (stdout: the job's log), the lines SageMaker's
Object2Vec prints (reference section 10b, see :mod:`training.trainer.container_log`), among them::

    [12/01/2026 22:40:07 INFO 1402] #quality_metric: host=algo-1, epoch=0, train mean_squared_error <loss>=1.93
    [12/01/2026 22:40:07 INFO 1402] #quality_metric: host=algo-1, epoch=0, validation mean_squared_error <loss>=1.71

(``cross_entropy`` and ``accuracy`` for ``output_layer=softmax``), the early-stopping trace, and
once at the end the ``test`` lines (no ``epoch=``) of the best epoch's model. Epochs count from 0.
Train metrics are the running mean over the epoch's mini-batches (dropout active), as the
built-in algorithm reports them.

Early stopping is Object2Vec's rule (:mod:`o2v_core.early_stopping`, section 10c): a sliding window
of the previous ``early_stopping_patience`` losses, an absolute ``early_stopping_tolerance``, and a
stop when the bad count exceeds the patience. The weights of the best epoch (lowest watched loss)
are saved, and the test channel is scored once, on them (section 10d).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from o2v_core.early_stopping import EarlyStopping
from o2v_core.hyperparameters import Value
from o2v_core.metric_lines import LOSS_METRIC
from torch import nn

from training.data.tokenizer import TOKENIZER_FILE, Tokenizer
from training.data.vocab import VOCAB_FILE, Vocab
from training.model import artifact
from training.model.config import ModelConfig, resolve
from training.model.network import Object2Vec
from training.model.pretrained import load_pretrained
from training.progress import Progress
from training.trainer.container_log import ContainerLog
from training.trainer.data import PairData, count_batches, epoch_batches, eval_batches, load_channel

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta,
    "rmsprop": torch.optim.RMSprop,
}
EVAL_BATCH = 1024


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class Channels:
    train: Path
    validation: Path | None = None
    test: Path | None = None
    auxiliary: Path | None = None

    @classmethod
    def from_directory(cls, root: Path) -> Channels:
        """Channels laid out as ``root/<channel>`` (a prepared dataset or ``/opt/ml/input/data``)."""
        def optional(name: str) -> Path | None:
            return root / name if (root / name).exists() else None

        if not (root / "train").exists():
            raise FileNotFoundError(f"{root / 'train'}: the train channel is required")
        return cls(root / "train", optional("validation"), optional("test"), optional("auxiliary"))


@dataclass
class EpochResult:
    epoch: int
    train: dict[str, float]
    validation: dict[str, float] | None
    seconds: float


@dataclass
class TrainResult:
    best_epoch: int
    best_loss: float
    stopped_early: bool
    epochs: list[EpochResult] = field(default_factory=list)
    test: dict[str, float] | None = None
    model_dir: Path | None = None
    archive: Path | None = None


def _metric_names(config: ModelConfig) -> tuple[str, ...]:
    loss = LOSS_METRIC[config.output_layer]
    return (loss, "accuracy") if config.output_layer == "softmax" else (loss,)


class _Meter:
    def __init__(self, config: ModelConfig) -> None:
        self.classification = config.output_layer == "softmax"
        self.loss_name = LOSS_METRIC[config.output_layer]
        self.loss_sum = 0.0
        self.correct = 0
        self.count = 0

    def add(self, loss: torch.Tensor, output: torch.Tensor, labels: torch.Tensor) -> None:
        size = len(labels)
        self.loss_sum += float(loss) * size
        self.count += size
        if self.classification:
            self.correct += int((output.argmax(dim=1) == labels).sum())

    def result(self) -> dict[str, float]:
        values = {self.loss_name: self.loss_sum / max(self.count, 1)}
        if self.classification:
            values["accuracy"] = self.correct / max(self.count, 1)
        return values


def _loss_function(config: ModelConfig) -> nn.Module:
    return nn.CrossEntropyLoss() if config.output_layer == "softmax" else nn.MSELoss()


def _targets(labels: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    return labels.long() if config.output_layer == "softmax" else labels.float()


def evaluate(model: Object2Vec, data: PairData) -> dict[str, float]:
    config = model.config
    criterion = _loss_function(config)
    meter = _Meter(config)
    model.eval()
    with torch.inference_mode():
        for batch in eval_batches(data, EVAL_BATCH):
            output = model(batch.in0, batch.len0, batch.in1, batch.len1)
            targets = _targets(batch.labels, config)
            meter.add(criterion(output, targets), output, targets)
    return meter.result()


def _auxiliary_file(channels: Channels, name: str) -> Path | None:
    if channels.auxiliary is None or not name:
        return None
    path = channels.auxiliary / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: named by the hyperparameters but not in the auxiliary channel")
    return path


def _serving_vocab(channels: Channels, config: ModelConfig, log: TextIO) -> tuple[Path | None, Path | None]:
    """The vocabulary and tokenizer settings to ship with the model, when the auxiliary channel has them."""
    explicit = _auxiliary_file(channels, config.enc0.vocab_file)
    implicit = channels.auxiliary / VOCAB_FILE if channels.auxiliary is not None else None
    vocab_path = explicit or (implicit if implicit is not None and implicit.is_file() else None)
    tokenizer_path = channels.auxiliary / TOKENIZER_FILE if channels.auxiliary is not None else None
    if tokenizer_path is not None and tokenizer_path.is_file():
        Tokenizer.load(tokenizer_path)
    else:
        tokenizer_path = None
    if vocab_path is None:
        return None, tokenizer_path
    try:
        vocab = Vocab.load(vocab_path)
    except ValueError as error:
        print(f"train: note: {vocab_path.name} is not shipped with the model ({error}); "
              "o2v embed will need --vocab", file=log, flush=True)
        return None, tokenizer_path
    if len(vocab) > config.enc0.vocab_size:
        message = (f"{vocab_path}: {len(vocab)} tokens, but enc0_vocab_size is {config.enc0.vocab_size}; "
                   "set enc0_vocab_size to the vocabulary size in the dataset's manifest.json")
        if explicit is not None:
            raise ValueError(message)
        print(f"train: note: vocabulary not shipped with the model: {message}", file=log, flush=True)
        return None, tokenizer_path
    return vocab_path, tokenizer_path


def _note_resolution(hp: Mapping[str, Value], config: ModelConfig, log: TextIO) -> None:
    """Say where this trainer chose for the service (training.model.config, .encoders)."""
    for index, encoder in enumerate((config.enc0, config.enc1)):
        if encoder.network == "pooled_embedding" and encoder.token_embedding_dim != config.enc_dim:
            print(f"train: note: enc{index} pooled_embedding: enc{index}_token_embedding_dim "
                  f"{encoder.token_embedding_dim} != enc_dim {config.enc_dim}; a linear projection to enc_dim is "
                  "added (the service's behaviour there is unconfirmed; equal sizes need none)", file=log, flush=True)
    wanted = hp.get("enc1_max_seq_len")
    if hp.get("enc1_network") == "enc0" and isinstance(wanted, int) and wanted > config.enc0.max_seq_len:
        print(f"train: note: enc1_network=enc0 inherits enc0_max_seq_len {config.enc0.max_seq_len}; "
              f"enc1_max_seq_len {wanted} is ignored and in1 is truncated, as the service does", file=log, flush=True)


def build_model(config: ModelConfig, channels: Channels, seed: int, log: TextIO) -> Object2Vec:
    torch.manual_seed(seed)
    model = Object2Vec(config)
    embeddings = [(model.enc0.embedding, config.enc0, 0)]
    if not config.tied_token_embedding:
        embeddings.append((model.enc1.embedding, config.enc1, 1))
    for embedding, encoder, index in embeddings:
        vectors = _auxiliary_file(channels, encoder.pretrained_embedding_file)
        if vectors is None:
            continue
        vocab_file = _auxiliary_file(channels, encoder.vocab_file)
        assert vocab_file is not None  # resolve() requires the vocab file with a pretrained file
        found = load_pretrained(embedding, vectors, vocab_file, freeze=encoder.freeze_pretrained_embedding)
        print(f"train: enc{index}: {found} pretrained vectors from {vectors.name}"
              f"{' (frozen)' if encoder.freeze_pretrained_embedding else ''}", file=log, flush=True)
    return model


def train(
    hyperparameters: Mapping[str, Value],
    channels: Channels,
    *,
    model_dir: Path,
    archive: Path | None,
    seed: int = 0,
    metric_streams: Iterable[TextIO] = (),
    log: TextIO,
    quiet: bool = False,
    after_epoch: Callable[[Object2Vec, int], None] | None = None,
) -> TrainResult:
    """Train on ``channels`` with full (defaults filled in) ``hyperparameters``; save the best model.

    ``after_epoch(model, epoch)``, if given, sees each epoch's weights after validation (the bench scores
    them on the test split); it must not train the model."""
    config = resolve(hyperparameters)
    hp = dict(hyperparameters)
    if hp.get("token_embedding_storage_type") == "row_sparse":
        print("train: note: token_embedding_storage_type=row_sparse is computed with dense updates here",
              file=log, flush=True)
    _note_resolution(hp, config, log)
    vocab_path, tokenizer_path = _serving_vocab(channels, config, log)
    started = time.monotonic()
    train_data = load_channel(channels.train, config)
    validation = load_channel(channels.validation, config) if channels.validation else None
    test = load_channel(channels.test, config) if channels.test else None
    sizes = ", ".join(f"{name} {len(data)}" for name, data in
                      (("train", train_data), ("validation", validation), ("test", test)) if data is not None)
    print(f"train: loaded {sizes} records in {time.monotonic() - started:.1f}s", file=log, flush=True)

    model = build_model(config, channels, seed, log)
    if config.output_layer == "mean_squared_error":
        # Start regression at the mean training label, so early epochs fit the signal, not the offset.
        with torch.no_grad():
            model.output_layer.bias.fill_(float(train_data.labels.mean()))
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = OPTIMIZERS[str(hp["optimizer"])](
        trainable, lr=float(hp["learning_rate"]), weight_decay=float(hp["weight_decay"])
    )
    criterion = _loss_function(config)
    container = ContainerLog(metric_streams)
    rng = np.random.default_rng(seed)
    epochs, batch_size = int(hp["epochs"]), int(hp["mini_batch_size"])
    rule = EarlyStopping(int(hp["early_stopping_patience"]), float(hp["early_stopping_tolerance"]))
    bucket_width, negatives = int(hp["bucket_width"]), int(hp["negative_sampling_rate"])
    loss_name = LOSS_METRIC[config.output_layer]
    total_batches = count_batches(train_data, batch_size, negatives)
    result = TrainResult(best_epoch=-1, best_loss=math.inf, stopped_early=False)
    best_state: dict[str, torch.Tensor] | None = None
    for epoch in range(epochs):
        tick = time.monotonic()
        progress = Progress(f"train: epoch {epoch}/{epochs - 1}", interval=5.0, stream=log, quiet=quiet)
        meter = _Meter(config)
        model.train()
        for step, batch in enumerate(epoch_batches(train_data, batch_size, rng, bucket_width=bucket_width,
                                                   negative_sampling_rate=negatives), start=1):
            optimizer.zero_grad(set_to_none=True)
            output = model(batch.in0, batch.len0, batch.in1, batch.len1)
            targets = _targets(batch.labels, config)
            loss = criterion(output, targets)
            loss.backward()
            optimizer.step()
            meter.add(loss.detach(), output.detach(), targets)
            progress.update(f"batch {step}/~{total_batches}, running {loss_name} {meter.result()[loss_name]:.4f}")
        train_metrics = meter.result()
        validation_metrics = evaluate(model, validation) if validation is not None else None
        container.epoch(epoch, epochs, train_metrics, validation_metrics)
        if after_epoch is not None:
            after_epoch(model, epoch)
        watched = (validation_metrics or train_metrics)[loss_name]
        result.epochs.append(EpochResult(epoch, train_metrics, validation_metrics, time.monotonic() - tick))
        if not math.isfinite(watched) or not math.isfinite(train_metrics[loss_name]):
            raise TrainingDiverged(f"epoch {epoch}: {loss_name} is not finite; lower learning_rate "
                                   f"(now {hp['learning_rate']}) or use another optimizer")
        check = rule.observe(watched)
        container.early_stopping(check)
        if rule.best_epoch == epoch:
            result.best_epoch, result.best_loss = epoch, watched
            best_state = copy.deepcopy(model.state_dict())
        if not quiet:
            shown = ", ".join(f"{channel} {loss_name} {metrics[loss_name]:.4f}" for channel, metrics in
                              (("train", train_metrics), ("validation", validation_metrics)) if metrics)
            mark = " (best)" if rule.best_epoch == epoch else f" (bad epochs in a row: {check.bad_count})"
            print(f"train: epoch {epoch}/{epochs - 1}: {shown}{mark} [{time.monotonic() - tick:.1f}s]",
                  file=log, flush=True)
        if check.stop:
            result.stopped_early = epoch < epochs - 1
            container.stopped_early(epoch)
            break
    assert best_state is not None
    model.load_state_dict(best_state)
    container.best_model(result.best_epoch, result.best_loss, str(model_dir))
    if test is not None:
        result.test = evaluate(model, test)
        container.test(result.test)
    training_info: dict[str, Any] = {
        "best_epoch": result.best_epoch,
        "best_loss": result.best_loss,
        "loss_metric": loss_name,
        "watched_channel": "validation" if validation is not None else "train",
        "stopped_early": result.stopped_early,
        "early_stopping": {"rule": "object2vec-sliding-window", "patience": rule.patience,
                           "tolerance": rule.tolerance},
        "seed": seed,
        "epochs": [vars(item) for item in result.epochs],
        "test": result.test,
        "data": {"train": list(train_data.files)},
        "torch": torch.__version__,
    }
    artifact.save_model_dir(model_dir, model, hp, training_info, vocab_file=vocab_path,
                            tokenizer_file=tokenizer_path)
    result.model_dir = model_dir
    if archive is not None:
        result.archive = artifact.pack(model_dir, archive)
    print(f"train: best epoch {result.best_epoch} ({loss_name} {result.best_loss:.4f}); model in "
          f"{archive or model_dir} [{time.monotonic() - started:.1f}s]", file=log, flush=True)
    return result
