"""The vocabulary: token -> id, with reserved padding and unknown ids.

Ids ``0`` (``<pad>``) and ``1`` (``<unk>``) are reserved. The remaining ids go to the training
split's tokens by descending count, ties broken by the token's code points, so the same data
always gives the same ids. ``max_size`` caps the total size (reserved ids included); tokens seen
fewer than ``min_count`` times are left out. ``vocab.json`` is the single JSON object
``{"<pad>": 0, "<unk>": 1, "the": 2, ...}`` that Object2Vec's ``enc0_vocab_file`` expects.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PAD = "<pad>"
UNK = "<unk>"
PAD_ID = 0
UNK_ID = 1
RESERVED = (PAD, UNK)
VOCAB_FILE = "vocab.json"


@dataclass(frozen=True)
class Vocab:
    token_to_id: Mapping[str, int]

    def __post_init__(self) -> None:
        if self.token_to_id.get(PAD) != PAD_ID or self.token_to_id.get(UNK) != UNK_ID:
            raise ValueError(f"vocabulary must map {PAD!r} to {PAD_ID} and {UNK!r} to {UNK_ID}")

    def __len__(self) -> int:
        return len(self.token_to_id)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        lookup = self.token_to_id
        return [lookup.get(token, UNK_ID) for token in tokens]

    @classmethod
    def build(cls, counts: Counter[str], *, max_size: int, min_count: int) -> Vocab:
        if max_size < len(RESERVED) + 1:
            raise ValueError(f"vocabulary size cap {max_size}: must be at least {len(RESERVED) + 1}")
        if min_count < 1:
            raise ValueError(f"minimum count {min_count}: must be at least 1")
        kept = sorted(
            (item for item in counts.items() if item[1] >= min_count and item[0] not in RESERVED),
            key=lambda item: (-item[1], item[0]),
        )
        mapping = {PAD: PAD_ID, UNK: UNK_ID}
        for token, _ in kept[: max_size - len(RESERVED)]:
            mapping[token] = len(mapping)
        return cls(mapping)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(dict(self.token_to_id), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocab:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from None
        return cls.from_json(data, where=str(path))

    @classmethod
    def from_json(cls, data: object, *, where: str = VOCAB_FILE) -> Vocab:
        if not isinstance(data, dict) or not all(
            isinstance(key, str) and isinstance(value, int) and not isinstance(value, bool)
            for key, value in data.items()
        ):
            raise ValueError(f"{where}: expected one JSON object mapping each token to an integer id")
        ids = sorted(data.values())
        if ids != list(range(len(ids))):
            raise ValueError(f"{where}: ids must be 0..{len(ids) - 1}, each used once")
        try:
            return cls(data)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
