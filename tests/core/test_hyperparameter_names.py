"""File-name hyperparameters accept the names AWS's notebooks use, and never a path.

The hyperparameter page's pattern for ``enc0_pretrained_embedding_file`` is ``[A-Za-z0-9\\.\\_]``
(reference 1a), but AWS's sentence-similarity notebook has trained with ``glove.840B-trim.txt`` since
2018 (reference 11g): the service accepts '-', and so do we. The notebook itself runs end to end in
test_notebook_sentence_similarity.py.
"""

from __future__ import annotations

import pytest
from o2v_core.hyperparameters import HyperparameterError, validate_partial

FILE_NAMES = ("enc0_pretrained_embedding_file", "enc1_pretrained_embedding_file", "enc0_vocab_file",
              "enc1_vocab_file")


@pytest.mark.parametrize("name", ["glove.840B-trim.txt", "wiki-news-300d-1M.vec", "glove.840B.300d.txt",
                                  "all_vocab.json", "snli-vocab.json", ""])
def test_the_names_of_aws_notebooks_and_common_vector_files_are_accepted(name: str) -> None:
    for field in FILE_NAMES:
        assert validate_partial({field: name}) == {field: name}


@pytest.mark.parametrize("name", ["../glove.txt", "aux/glove.txt", "/etc/passwd", "..\\glove.txt", ".", "..",
                                  "glove .txt", "glove\x00.txt", "glöve.txt", "glove;rm.txt"])
def test_paths_and_unsafe_characters_are_refused_naming_what_is_allowed(name: str) -> None:
    with pytest.raises(HyperparameterError, match=r"letters, digits, '\.', '_' and '-'"):
        validate_partial({"enc0_pretrained_embedding_file": name}, where="cdk.json")
