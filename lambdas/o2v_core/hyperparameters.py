"""The Object2Vec hyperparameter schema, defined once.

Names, types, ranges and defaults follow the SageMaker developer guide's Object2Vec
hyperparameter table (2023-05; see ``shared/reference/object2vec.md`` section 1a). The CDK
settings, the retrain policy, the launcher and the local trainer all validate through
:func:`validate`; nothing else in the repository lists these names or ranges.

This module is imported inside the Lambda asset, so it uses the standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from o2v_core.config_check import ConfigFieldError

Kind = Literal["int", "float", "choice", "bool", "int_or_auto", "comparators", "filename"]
Value = int | float | str | bool

COMPARATORS: tuple[str, ...] = ("hadamard", "concat", "abs_diff")
NETWORKS: tuple[str, ...] = ("hcnn", "bilstm", "pooled_embedding")
# A file name in the auxiliary channel. The hyperparameter page documents the pattern
# [A-Za-z0-9\.\_] (reference section 1a), but AWS's own sentence-similarity notebook has trained with
# enc0_pretrained_embedding_file=glove.840B-trim.txt since 2018 (reference 11g), so the service
# accepts '-'; common vector files are named like wiki-news-300d-1M.vec. We follow the service: letters,
# digits, '.', '_' and '-'. Never a path: no '/' or '\\', and not '.' or '..' (the trainer joins the
# name to the channel's directory, so a separator or a dot-only name would leave it).
DEFAULT_OUTPUT_LAYER = "softmax"  # Object2Vec's default output_layer: classification (the SCHEMA row below)

_FILENAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


class HyperparameterError(ConfigFieldError):
    """A hyperparameter is unknown, missing, of the wrong type or out of range.

    ``field`` names the hyperparameter; ``detail`` (and so the message) names the allowed values.
    """

    def __init__(self, field: str, message: str) -> None:
        ValueError.__init__(self, f"hyperparameter {field!r}: {message}")
        self.config = "hyperparameters"
        self.field = field
        self.detail = message


@dataclass(frozen=True)
class Hyperparameter:
    """One row of the documented table."""

    name: str
    kind: Kind
    default: Value | None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    description: str = ""

    def allowed(self) -> str:
        """Human-readable allowed values, used in every error message."""
        if self.kind == "float":
            return f"float in [{_fmt_float(self.minimum)}, {_fmt_float(self.maximum)}]"
        if self.kind == "int":
            return f"int in [{_fmt_int(self.minimum)}, {_fmt_int(self.maximum)}]"
        if self.kind == "int_or_auto":
            return f"'auto' or int in [{_fmt_int(self.minimum)}, {_fmt_int(self.maximum)}]"
        if self.kind == "bool":
            return "True or False"
        if self.kind == "comparators":
            return "comma-separated subset of " + ", ".join(COMPARATORS)
        if self.kind == "filename":
            return "a file name of letters, digits, '.', '_' and '-', not '.' or '..' (or empty)"
        return "one of " + ", ".join(self.choices)

    def parse(self, raw: object) -> Value:
        """Parse a value (native or SageMaker's string form) and check its range."""
        try:
            value = self._coerce(raw)
        except (TypeError, ValueError):
            raise HyperparameterError(self.name, f"{raw!r} is not valid; allowed: {self.allowed()}") from None
        self._check_range(value)
        return value

    def _coerce(self, raw: object) -> Value:
        if isinstance(raw, bool) and self.kind not in ("bool",):
            raise TypeError("bool where a value was expected")
        text = str(raw).strip()
        if self.kind == "int":
            return _to_int(raw)
        if self.kind == "float":
            number = float(text)
            if not math.isfinite(number):
                raise ValueError("not finite")
            return number
        if self.kind == "int_or_auto":
            return "auto" if text.lower() == "auto" else _to_int(raw)
        if self.kind == "bool":
            if isinstance(raw, bool):
                return raw
            if text.lower() in ("true", "1"):
                return True
            if text.lower() in ("false", "0"):
                return False
            raise ValueError(text)
        if self.kind == "comparators":
            parts = [part.strip() for part in text.split(",")]
            if not parts or any(part not in COMPARATORS for part in parts) or len(set(parts)) != len(parts):
                raise ValueError(text)
            return ", ".join(parts)
        if self.kind == "filename":
            if any(char not in _FILENAME_CHARS for char in text) or (text and not text.strip(".")):
                raise ValueError(text)
            return text
        if text not in self.choices:
            raise ValueError(text)
        return text

    def _check_range(self, value: Value) -> None:
        if isinstance(value, (bool, str)):
            return
        low = self.minimum if self.minimum is not None else -math.inf
        high = self.maximum if self.maximum is not None else math.inf
        if not low <= value <= high:
            raise HyperparameterError(self.name, f"{value!r} is out of range; allowed: {self.allowed()}")


def _to_int(raw: object) -> int:
    if isinstance(raw, float):
        if not raw.is_integer():
            raise ValueError("not an integer")
        return int(raw)
    if isinstance(raw, int):
        return raw
    return int(str(raw).strip())


def _fmt_int(number: float | None) -> str:
    return "inf" if number is None else str(int(number))


def _fmt_float(number: float | None) -> str:
    return "inf" if number is None else repr(float(number))


def _encoder_rows(index: int) -> list[Hyperparameter]:
    prefix = f"enc{index}_"
    required_or_conditional = index == 0
    network_choices = NETWORKS if index == 0 else ("enc0", *NETWORKS)
    return [
        Hyperparameter(
            prefix + "max_seq_len", "int", None, required=required_or_conditional, minimum=1, maximum=5000,
            description=f"Maximum sequence length of encoder {index}'s input (longer inputs are truncated).",
        ),
        Hyperparameter(
            prefix + "vocab_size", "int", None, required=required_or_conditional, minimum=2, maximum=3_000_000,
            description=f"Vocabulary size of encoder {index}'s tokens.",
        ),
        Hyperparameter(
            prefix + "network", "choice", "hcnn" if index == 0 else "enc0", choices=network_choices,
            description="Encoder network; 'enc0' repeats encoder 0's network and hyperparameter values.",
        ),
        Hyperparameter(prefix + "cnn_filter_width", "int", 3, minimum=1, maximum=9,
                       description="Filter width of the hcnn encoder."),
        Hyperparameter(prefix + "freeze_pretrained_embedding", "bool", True,
                       description="Whether pretrained token embeddings stay frozen."),
        Hyperparameter(prefix + "layers", "int_or_auto", "auto", minimum=1, maximum=4,
                       description="Number of encoder layers."),
        Hyperparameter(prefix + "pretrained_embedding_file", "filename", "",
                       description="Pretrained token-embedding file in the auxiliary channel."),
        Hyperparameter(prefix + "token_embedding_dim", "int", 300, minimum=2, maximum=1000,
                       description="Output dimension of the token-embedding layer."),
        Hyperparameter(prefix + "vocab_file", "filename", "",
                       description="Vocabulary file (auxiliary channel) mapping pretrained vectors to ids."),
    ]


SCHEMA: Mapping[str, Hyperparameter] = {
    row.name: row
    for row in [
        *_encoder_rows(0),
        *_encoder_rows(1),
        Hyperparameter("bucket_width", "int", 0, minimum=0, maximum=100,
                       description="Allowed sequence-length difference for bucketing; 0 disables it."),
        Hyperparameter("comparator_list", "comparators", "hadamard, concat, abs_diff",
                       description="How the two encodings are combined, in order."),
        Hyperparameter("dropout", "float", 0.0, minimum=0.0, maximum=1.0,
                       description="Dropout probability for network layers; the main regularizer."),
        Hyperparameter("early_stopping_patience", "int", 3, minimum=1, maximum=5,
                       description="Epochs without improvement before training stops."),
        Hyperparameter("early_stopping_tolerance", "float", 0.01, minimum=0.000001, maximum=0.1,
                       description="Loss reduction that counts as an improvement."),
        Hyperparameter("enc_dim", "int", 4096, minimum=4, maximum=10000,
                       description="Dimension of each encoder's output embedding."),
        Hyperparameter("epochs", "int", 30, minimum=1, maximum=100, description="Number of training epochs."),
        Hyperparameter("learning_rate", "float", 0.0004, minimum=1.0e-6, maximum=1.0,
                       description="Learning rate."),
        Hyperparameter("mini_batch_size", "int", 32, minimum=1, maximum=10000, description="Batch size."),
        Hyperparameter("mlp_activation", "choice", "linear", choices=("tanh", "relu", "linear"),
                       description="Activation of the MLP layers."),
        Hyperparameter("mlp_dim", "int", 512, minimum=2, maximum=10000, description="Width of the MLP layers."),
        Hyperparameter("mlp_layers", "int", 2, minimum=0, maximum=10, description="Number of MLP layers."),
        Hyperparameter("negative_sampling_rate", "int", 0, minimum=0, maximum=100,
                       description="Generated negative samples per positive sample; 0 turns it off."),
        Hyperparameter("num_classes", "int", 2, minimum=2, maximum=30,
                       description="Number of classes (ignored for regression)."),
        Hyperparameter("optimizer", "choice", "adam", choices=("adadelta", "adagrad", "adam", "sgd", "rmsprop"),
                       description="Optimizer."),
        Hyperparameter("output_layer", "choice", DEFAULT_OUTPUT_LAYER,
                       choices=(DEFAULT_OUTPUT_LAYER, "mean_squared_error"),
                       description="softmax: classification (cross-entropy); mean_squared_error: regression."),
        Hyperparameter("tied_token_embedding_weight", "bool", False,
                       description="Share one token-embedding layer between the encoders."),
        Hyperparameter("token_embedding_storage_type", "choice", "dense", choices=("dense", "row_sparse"),
                       description="dense or row_sparse (lazy) gradient updates of token embeddings."),
        Hyperparameter("weight_decay", "float", 0.0, minimum=0.0, maximum=10000.0,
                       description="L2 weight decay; Object2Vec has no L1."),
    ]
}

# Undocumented knobs that AWS's own notebooks pass through; accepted, never validated.
PASSTHROUGH: frozenset[str] = frozenset({"_kvstore", "_num_gpus", "_num_kv_servers"})


def validate(values: Mapping[str, object], *, where: str = "hyperparameters") -> dict[str, Value]:
    """Validate user-supplied hyperparameters and return them parsed (no defaults filled in).

    Raises :class:`HyperparameterError` naming the first bad field and its allowed values.
    ``where`` names the config or file, so the user knows where to fix it.
    """
    parsed = validate_partial(values, where=where)
    for row in SCHEMA.values():
        if row.required and row.name not in parsed:
            raise HyperparameterError(row.name, f"is required (in {where}); allowed: {row.allowed()}")
    return parsed


def validate_partial(values: Mapping[str, object], *, where: str = "hyperparameters") -> dict[str, Value]:
    """Like :func:`validate`, without the required-field check (for config fragments and overrides)."""
    parsed: dict[str, Value] = {}
    for name, raw in values.items():
        if name in PASSTHROUGH:
            parsed[name] = str(raw)
            continue
        row = SCHEMA.get(name)
        if row is None:
            raise HyperparameterError(name, f"unknown in {where}; known names: {', '.join(sorted(SCHEMA))}")
        try:
            parsed[name] = row.parse(raw)
        except HyperparameterError as error:
            raise HyperparameterError(name, f"{error.detail} (in {where})") from None
    return parsed


def with_defaults(values: Mapping[str, object], *, where: str = "hyperparameters") -> dict[str, Value]:
    """Validate, then fill in every documented default that the user left out."""
    parsed = validate(values, where=where)
    full: dict[str, Value] = {name: row.default for name, row in SCHEMA.items() if row.default is not None}
    full.update(parsed)
    return full


def to_sagemaker(values: Mapping[str, Value]) -> dict[str, str]:
    """Render parsed values as CreateTrainingJob's string map (bools as 'True'/'False')."""
    return {name: str(value) for name, value in values.items()}
