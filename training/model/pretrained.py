"""Pretrained token embeddings from the auxiliary channel.

``enc*_pretrained_embedding_file`` is a GloVe/word2vec text file: one ``token v1 v2 ... vD``
per line (a leading ``count D`` header line is allowed), with ``D`` equal to
``enc*_token_embedding_dim``. ``enc*_vocab_file`` is the JSON object ``{token: id}`` that
places each vector in the embedding matrix. The file is streamed line by line.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from training.data.errors import DataError
from training.data.readers import open_text


def load_vocab_file(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, None, "vocabulary file not found in the auxiliary channel") from None
    except json.JSONDecodeError as error:
        raise DataError(path, error.lineno, f"not valid JSON ({error.msg})") from None
    if not isinstance(data, dict) or not all(
        isinstance(value, int) and not isinstance(value, bool) and value >= 0 for value in data.values()
    ):
        raise DataError(path, None, "expected one JSON object mapping each token to a non-negative integer id")
    return data


def load_pretrained(embedding: nn.Embedding, vectors: Path, vocab_file: Path, *, freeze: bool) -> int:
    """Copy the vectors of known tokens into ``embedding``; return how many rows were set."""
    vocab = load_vocab_file(vocab_file)
    rows, dim = embedding.weight.shape
    found = 0
    with torch.no_grad(), open_text(vectors) as handle:
        for number, text in enumerate(handle, start=1):
            parts = text.rstrip("\r\n").split(" ")
            if number == 1 and len(parts) == 2 and all(part.isdigit() for part in parts):
                continue  # word2vec header
            if len(parts) < 2:
                continue
            token, values = parts[0], parts[1:]
            if len(values) != dim:
                raise DataError(vectors, number, f"vector has {len(values)} values; token_embedding_dim is {dim}")
            index = vocab.get(token)
            if index is None:
                continue
            if index >= rows:
                raise DataError(vocab_file, None, f"token {token!r} has id {index}, outside vocab_size {rows}")
            try:
                embedding.weight[index] = torch.tensor([float(value) for value in values])
            except ValueError:
                raise DataError(vectors, number, "vector values must be numbers") from None
            found += 1
    if found == 0:
        raise DataError(vectors, None, f"no token of {vocab_file.name} has a vector in this file")
    embedding.weight.requires_grad_(not freeze)
    return found
