"""Object2Vec hyperparameters (validated by ``o2v_core.hyperparameters``) -> network settings.

Resolution rules that the hyperparameter table leaves open, made explicit here:

- ``enc*_layers = auto`` means 2 for ``hcnn`` and 1 for ``bilstm`` (and 1, unused, for
  ``pooled_embedding``, as the real network summary shows; reference section 10e).
  ``pooled_embedding`` has no layers (nor a filter width): see ``training.model.encoders``.
- ``enc1_network = enc0`` gives encoder 1 encoder 0's network and hyperparameter values (its own
  weights), *including* encoder 0's vocabulary size and maximum sequence length, as the service
  does (section 10e): an ``enc1_vocab_size`` larger than ``enc0_vocab_size`` is refused with a
  clear message (the service fails on such data, sagemaker-python-sdk#834), a smaller or equal one
  and any ``enc1_max_seq_len`` are ignored (``in1`` is truncated to ``enc0_max_seq_len``). With
  another ``enc1_network``, missing ``enc1_max_seq_len`` / ``enc1_vocab_size`` default to encoder 0's.
- ``negative_sampling_rate > 0`` needs a binary ``softmax`` task (label 1 = related pair).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from o2v_core.hyperparameters import HyperparameterError, Value

AUTO_LAYERS = {"hcnn": 2, "bilstm": 1, "pooled_embedding": 1}


@dataclass(frozen=True)
class EncoderConfig:
    network: str
    vocab_size: int
    max_seq_len: int
    token_embedding_dim: int
    layers: int
    cnn_filter_width: int
    pretrained_embedding_file: str
    vocab_file: str
    freeze_pretrained_embedding: bool


@dataclass(frozen=True)
class ModelConfig:
    enc0: EncoderConfig
    enc1: EncoderConfig
    enc_dim: int
    comparators: tuple[str, ...]
    mlp_layers: int
    mlp_dim: int
    mlp_activation: str
    output_layer: str
    num_classes: int
    dropout: float
    tied_token_embedding: bool

    @property
    def output_size(self) -> int:
        return self.num_classes if self.output_layer == "softmax" else 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelConfig:
        values = dict(data)
        values["enc0"] = EncoderConfig(**values["enc0"])
        values["enc1"] = EncoderConfig(**values["enc1"])
        values["comparators"] = tuple(values["comparators"])
        return cls(**values)


def _int(hp: Mapping[str, Value], name: str) -> int:
    value = hp[name]
    assert isinstance(value, int) and not isinstance(value, bool), name
    return value


def _encoder(hp: Mapping[str, Value], index: int, network: str) -> EncoderConfig:
    prefix = f"enc{index}_"
    layers = hp[prefix + "layers"]
    return EncoderConfig(
        network=network,
        vocab_size=_int(hp, prefix + "vocab_size"),
        max_seq_len=_int(hp, prefix + "max_seq_len"),
        token_embedding_dim=_int(hp, prefix + "token_embedding_dim"),
        layers=AUTO_LAYERS[network] if layers == "auto" else int(layers),
        cnn_filter_width=_int(hp, prefix + "cnn_filter_width"),
        pretrained_embedding_file=str(hp[prefix + "pretrained_embedding_file"]),
        vocab_file=str(hp[prefix + "vocab_file"]),
        freeze_pretrained_embedding=bool(hp[prefix + "freeze_pretrained_embedding"]),
    )


def resolve(hp: Mapping[str, Value]) -> ModelConfig:
    """Network settings from a full hyperparameter map (``o2v_core.hyperparameters.with_defaults``)."""
    enc0 = _encoder(hp, 0, str(hp["enc0_network"]))
    data_shape = {
        "max_seq_len": hp.get("enc1_max_seq_len", enc0.max_seq_len),
        "vocab_size": hp.get("enc1_vocab_size", enc0.vocab_size),
    }
    if hp["enc1_network"] == "enc0":
        wanted = hp.get("enc1_vocab_size")
        if isinstance(wanted, int) and wanted > enc0.vocab_size:
            raise HyperparameterError(
                "enc1_vocab_size",
                f"{wanted} is more than enc0_vocab_size ({enc0.vocab_size}), but enc1_network=enc0 makes encoder 1 "
                "inherit encoder 0's vocabulary size (the service ignores enc1_vocab_size then and fails on token ids "
                f">= {enc0.vocab_size}); set enc0_vocab_size to {wanted}, or choose an enc1_network of its own",
            )
        enc1 = enc0
    else:
        enc1 = _encoder({**hp, **{f"enc1_{key}": value for key, value in data_shape.items()}}, 1,
                        str(hp["enc1_network"]))
    for encoder, index in ((enc0, 0), (enc1, 1)):
        if encoder.pretrained_embedding_file and not encoder.vocab_file:
            raise HyperparameterError(
                f"enc{index}_pretrained_embedding_file",
                f"needs enc{index}_vocab_file too (the vocabulary that maps the pretrained vectors to token ids)",
            )
    tied = bool(hp["tied_token_embedding_weight"])
    if tied and (enc0.vocab_size, enc0.token_embedding_dim) != (enc1.vocab_size, enc1.token_embedding_dim):
        raise HyperparameterError(
            "tied_token_embedding_weight",
            "True needs equal vocab_size and token_embedding_dim for both encoders; got "
            f"enc0 ({enc0.vocab_size}, {enc0.token_embedding_dim}) and enc1 ({enc1.vocab_size}, "
            f"{enc1.token_embedding_dim})",
        )
    output_layer = str(hp["output_layer"])
    num_classes = _int(hp, "num_classes")
    if _int(hp, "negative_sampling_rate") > 0 and (output_layer != "softmax" or num_classes != 2):
        raise HyperparameterError(
            "negative_sampling_rate",
            "> 0 needs output_layer=softmax with num_classes=2 (label 1 marks a related pair, sampled negatives "
            f"get label 0); got output_layer={output_layer}, num_classes={num_classes}",
        )
    return ModelConfig(
        enc0=enc0,
        enc1=enc1,
        enc_dim=_int(hp, "enc_dim"),
        comparators=tuple(part.strip() for part in str(hp["comparator_list"]).split(",")),
        mlp_layers=_int(hp, "mlp_layers"),
        mlp_dim=_int(hp, "mlp_dim"),
        mlp_activation=str(hp["mlp_activation"]),
        output_layer=output_layer,
        num_classes=num_classes,
        dropout=float(hp["dropout"]),
        tied_token_embedding=tied,
    )
