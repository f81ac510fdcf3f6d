"""The tokenizer: deterministic, documented, and stored with every dataset and model.

Rules, applied in this order to each sentence:

1. Unicode normalisation to NFKC (so full-width letters, ligatures and compatibility forms
   collapse to one spelling).
2. Lower-casing (``lowercase=True``, the default).
3. Splitting with the regular expression ``PATTERN``: a token is either a run of letters and
   digits (``[^\\W_]+``, Unicode-aware) or one single character that is neither a letter, digit
   nor whitespace (punctuation and symbols, e.g. ``.``, ``"``, ``'``, ``$``). Whitespace only
   separates tokens.

So ``"Don't panic -- it's 3.5°C!"`` becomes
``don ' t panic - - it ' s 3 . 5 ° c !``. The same settings travel in ``tokenizer.json`` (the
auxiliary channel and ``model.tar.gz``), and ``o2v embed`` tokenizes with exactly them.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PATTERN = r"[^\W_]+|[^\w\s]|_"
TOKENIZER_FILE = "tokenizer.json"
VERSION = 1


@dataclass(frozen=True)
class Tokenizer:
    """Settings of the tokenizer; call :meth:`tokenize` on a sentence."""

    lowercase: bool = True
    normalization: str = "NFKC"
    pattern: str = PATTERN
    version: int = VERSION

    def __post_init__(self) -> None:
        if self.normalization not in ("NFKC", "NFC", "none"):
            raise ValueError(f"tokenizer normalization {self.normalization!r}: allowed NFKC, NFC or none")
        if self.version != VERSION:
            raise ValueError(f"tokenizer version {self.version} is not supported (this code reads version {VERSION})")
        re.compile(self.pattern)

    def tokenize(self, text: str) -> list[str]:
        if self.normalization == "NFKC":
            text = unicodedata.normalize("NFKC", text)
        elif self.normalization == "NFC":
            text = unicodedata.normalize("NFC", text)
        if self.lowercase:
            text = text.lower()
        return _compiled(self.pattern).findall(text)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object, *, where: str = TOKENIZER_FILE) -> Tokenizer:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected a JSON object with tokenizer settings")
        known = {"lowercase", "normalization", "pattern", "version"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{where}: unknown tokenizer settings {sorted(unknown)}; known: {sorted(known)}")
        try:
            return cls(**data)
        except (TypeError, ValueError, re.error) as error:
            raise ValueError(f"{where}: {error}") from None

    @classmethod
    def load(cls, path: Path) -> Tokenizer:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")), where=str(path))


_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    compiled = _CACHE.get(pattern)
    if compiled is None:
        compiled = _CACHE[pattern] = re.compile(pattern)
    return compiled
