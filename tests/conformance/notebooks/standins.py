"""Stand-ins for the two packages AWS's Object2Vec notebooks install that this project does not.

* ``jsonlines`` (the notebooks ``pip install jsonlines``): :data:`jsonlines` has the one call they
  use, ``jsonlines.open(path, mode)`` returning a reader (iterate for objects) or a writer
  (``write``, ``write_all``), one JSON document per line as that package writes them
  (``ensure_ascii=False``).
* ``nltk`` (``TreebankWordTokenizer``, ``sent_tokenize``, the ``punkt`` and ``stopwords``
  downloads): a regular-expression word tokenizer (words and single punctuation marks) and a
  sentence splitter on ``.!?``. The token ids in the generated files therefore differ from the
  notebooks' own runs; the shape of every file and request is the notebooks'.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

_WORD = re.compile(r"\w+|[^\w\s]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class _Lines:
    def __init__(self, path: str | Path, mode: str = "r") -> None:
        self._handle = open(path, mode, encoding="utf-8")  # noqa: SIM115 (closed by __exit__)

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def __iter__(self) -> Iterator[Any]:
        return (json.loads(line) for line in self._handle if line.strip())

    def write(self, value: Any) -> None:
        self._handle.write(json.dumps(value, ensure_ascii=False) + "\n")

    def write_all(self, values: Iterable[Any]) -> None:
        for value in values:
            self.write(value)


jsonlines = SimpleNamespace(open=_Lines)


class TreebankWordTokenizer:
    def tokenize(self, text: str) -> list[str]:
        return _WORD.findall(text)


def sent_tokenize(text: str) -> list[str]:
    return [part for part in _SENTENCE_END.split(text) if part]
