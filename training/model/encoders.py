"""The three Object2Vec encoders. Each maps padded token ids ``[B, T]`` and lengths ``[B]``
to one ``enc_dim`` vector per sequence. Padding never affects a result: positions past a
sequence's length are masked.

- ``hcnn``: ``layers`` stacked 1-D convolutions (``enc_dim`` channels, width
  ``cnn_filter_width``, ReLU, "same" padding) over the token embeddings, each layer seeing a
  wider window of the one below; max-pooled over time.
- ``bilstm``: a ``layers``-deep bidirectional LSTM (``enc_dim // 2`` units each way);
  its outputs are max-pooled over time and projected to ``enc_dim``.
- ``pooled_embedding``: as the real network summary shows it (reference section 10e): the token
  embeddings, a mask of token id != 0 (id 0 is padding, and so are positions past the length),
  the mean over the unmasked tokens (zero for a sequence with none), then dropout, and no
  projection layer. The service's behaviour when ``enc_dim`` differs from the token embedding
  size is unconfirmed; this trainer then adds a linear projection from the token embedding size
  to ``enc_dim`` after the dropout (so both encoders meet the comparator with ``enc_dim``
  values, as with the other networks) and says so in the training log.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from training.data.vocab import PAD_ID
from training.model.config import EncoderConfig


def length_mask(lengths: Tensor, width: int) -> Tensor:
    """``[B, T]`` booleans: True where a position holds a real token."""
    return torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]


def masked_max(values: Tensor, mask: Tensor) -> Tensor:
    """Max over time of ``[B, T, D]`` values at real positions."""
    return values.masked_fill(~mask[:, :, None], float("-inf")).amax(dim=1)


class Encoder(nn.Module):
    def __init__(self, config: EncoderConfig, enc_dim: int, dropout: float, embedding: nn.Embedding) -> None:
        super().__init__()
        self.config = config
        self.enc_dim = enc_dim
        self.embedding = embedding
        self.dropout = nn.Dropout(dropout)

    def embed_tokens(self, ids: Tensor, mask: Tensor) -> Tensor:
        embedded: Tensor = self.embedding(ids) * mask[:, :, None]
        result: Tensor = self.dropout(embedded)
        return result


class HCNNEncoder(Encoder):
    def __init__(self, config: EncoderConfig, enc_dim: int, dropout: float, embedding: nn.Embedding) -> None:
        super().__init__(config, enc_dim, dropout, embedding)
        width = config.cnn_filter_width
        self.padding = ((width - 1) // 2, width // 2)
        channels = [config.token_embedding_dim] + [enc_dim] * config.layers
        self.convs = nn.ModuleList(nn.Conv1d(channels[i], channels[i + 1], width) for i in range(config.layers))

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        mask = length_mask(lengths, ids.shape[1])
        values = self.embed_tokens(ids, mask).transpose(1, 2)  # [B, D, T]
        conv_mask = mask[:, None, :].to(values.dtype)
        for conv in self.convs:
            values = torch.relu(conv(functional.pad(values, self.padding))) * conv_mask
        return masked_max(values.transpose(1, 2), mask)


class BiLSTMEncoder(Encoder):
    def __init__(self, config: EncoderConfig, enc_dim: int, dropout: float, embedding: nn.Embedding) -> None:
        super().__init__(config, enc_dim, dropout, embedding)
        hidden = max(1, enc_dim // 2)
        self.lstm = nn.LSTM(
            config.token_embedding_dim, hidden, num_layers=config.layers, batch_first=True, bidirectional=True,
            dropout=dropout if config.layers > 1 else 0.0,
        )
        self.project = nn.Linear(2 * hidden, enc_dim)

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        mask = length_mask(lengths, ids.shape[1])
        values = self.embed_tokens(ids, mask)
        packed = pack_padded_sequence(values, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, _ = self.lstm(packed)
        unpacked, _ = pad_packed_sequence(outputs, batch_first=True, total_length=ids.shape[1])
        result: Tensor = self.project(masked_max(unpacked, mask))
        return result


class PooledEmbeddingEncoder(Encoder):
    def __init__(self, config: EncoderConfig, enc_dim: int, dropout: float, embedding: nn.Embedding) -> None:
        super().__init__(config, enc_dim, dropout, embedding)
        # No projection in the service (section 10e); ours only when the sizes differ (unconfirmed there).
        self.project: nn.Module = (
            nn.Identity() if config.token_embedding_dim == enc_dim else nn.Linear(config.token_embedding_dim, enc_dim)
        )

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        mask = length_mask(lengths, ids.shape[1]) & (ids != PAD_ID)
        summed = (self.embedding(ids) * mask[:, :, None]).sum(dim=1)
        mean = summed / mask.sum(dim=1, keepdim=True).to(summed.dtype).clamp(min=1)
        result: Tensor = self.project(self.dropout(mean))
        return result


ENCODERS: dict[str, type[Encoder]] = {
    "hcnn": HCNNEncoder,
    "bilstm": BiLSTMEncoder,
    "pooled_embedding": PooledEmbeddingEncoder,
}


def build_encoder(config: EncoderConfig, enc_dim: int, dropout: float, embedding: nn.Embedding) -> Encoder:
    return ENCODERS[config.network](config, enc_dim, dropout, embedding)
