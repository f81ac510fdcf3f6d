"""The whole Object2Vec network: ``enc0(in0)`` and ``enc1(in1)`` -> comparator -> MLP -> output.

The comparator joins the two encodings with the operators of ``comparator_list``, in order:
``hadamard`` (element-wise product), ``concat`` (both vectors) and ``abs_diff`` (element-wise
absolute difference). The MLP has ``mlp_layers`` layers of ``mlp_dim`` units with
``mlp_activation`` (``linear`` = none) and dropout; the output layer gives ``num_classes``
logits (``softmax``) or one score (``mean_squared_error``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from training.model.config import ModelConfig
from training.model.encoders import Encoder, build_encoder

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "linear": nn.Identity}


def compare(left: Tensor, right: Tensor, comparators: tuple[str, ...]) -> Tensor:
    parts: list[Tensor] = []
    for name in comparators:
        if name == "hadamard":
            parts.append(left * right)
        elif name == "concat":
            parts.extend((left, right))
        elif name == "abs_diff":
            parts.append((left - right).abs())
        else:
            raise ValueError(f"unknown comparator {name!r}")
    return torch.cat(parts, dim=1)


def comparator_width(enc_dim: int, comparators: tuple[str, ...]) -> int:
    return enc_dim * sum(2 if name == "concat" else 1 for name in comparators)


class Object2Vec(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        embedding0 = nn.Embedding(config.enc0.vocab_size, config.enc0.token_embedding_dim)
        embedding1 = (
            embedding0 if config.tied_token_embedding
            else nn.Embedding(config.enc1.vocab_size, config.enc1.token_embedding_dim)
        )
        self.enc0: Encoder = build_encoder(config.enc0, config.enc_dim, config.dropout, embedding0)
        self.enc1: Encoder = build_encoder(config.enc1, config.enc_dim, config.dropout, embedding1)
        layers: list[nn.Module] = []
        width = comparator_width(config.enc_dim, config.comparators)
        for _ in range(config.mlp_layers):
            layers += [nn.Linear(width, config.mlp_dim), ACTIVATIONS[config.mlp_activation](),
                       nn.Dropout(config.dropout)]
            width = config.mlp_dim
        layers.append(nn.Linear(width, config.output_size))
        self.head = nn.Sequential(*layers)

    @property
    def output_layer(self) -> nn.Linear:
        layer = self.head[-1]
        assert isinstance(layer, nn.Linear)
        return layer

    def encode(self, which: int, ids: Tensor, lengths: Tensor) -> Tensor:
        """``enc_dim`` embeddings of ``in0`` (``which=0``) or ``in1`` (``which=1``)."""
        encoder = self.enc0 if which == 0 else self.enc1
        result: Tensor = encoder(ids, lengths)
        return result

    def forward(self, in0: Tensor, len0: Tensor, in1: Tensor, len1: Tensor) -> Tensor:
        """Logits ``[B, num_classes]`` (softmax) or scores ``[B]`` (mean_squared_error)."""
        features = compare(self.encode(0, in0, len0), self.encode(1, in1, len1), self.config.comparators)
        output: Tensor = self.head(features)
        return output.squeeze(1) if self.config.output_layer == "mean_squared_error" else output

    def scores(self, in0: Tensor, len0: Tensor, in1: Tensor, len1: Tensor) -> Tensor:
        """What the inference server returns: class probabilities, or ``[B, 1]`` regression scores."""
        output = self.forward(in0, len0, in1, len1)
        if self.config.output_layer == "softmax":
            return torch.softmax(output, dim=1)
        return output[:, None]
