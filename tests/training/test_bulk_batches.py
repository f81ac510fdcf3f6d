"""The bulk path's inner loop (training/bulk/batches.py, tokenizing.py): the numbers it writes give back
every float32 exactly, the pooled path's regrouped batches give the general path's (the server's) values
bit for bit, on their own and through ``embed_corpus``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from o2v_core.hyperparameters import with_defaults

from tests.training.conftest import TINY, manifest_hyperparameters
from tests.training.test_bulk_local import SENTENCES, UNKNOWN
from training.bulk.batches import VALUE_WIDTH, PartEmbedder, format_embeddings
from training.bulk.corpus import Corpus
from training.bulk.local_run import embed_corpus
from training.model.artifact import LoadedModel, load
from training.serving.client import SentenceEncoder
from training.serving.predictor import Instance, Predictor
from training.trainer.loop import Channels, train


@pytest.fixture(scope="module")
def pooled(stsb_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    """The demo's kind of model: pooled_embedding encoders with enc_dim = token embedding size (no projection)."""
    out = tmp_path_factory.mktemp("pooled")
    values = {**TINY, "enc1_network": "pooled_embedding", "enc1_token_embedding_dim": 16, "epochs": 1,
              "enc0_max_seq_len": 6}
    result = train(with_defaults({**manifest_hyperparameters(stsb_dataset), **values}),
                   Channels.from_directory(stsb_dataset), model_dir=out / "model", archive=out / "model.tar.gz",
                   metric_streams=[], log=io.StringIO())
    assert result.archive is not None
    return load(result.archive)


def bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)


def parsed(lines: list[str]) -> np.ndarray:
    return np.array([json.loads(f"[{line}]") for line in lines], dtype=np.float32)


def test_the_written_numbers_give_back_every_float32_exactly() -> None:
    generator = np.random.default_rng(0)
    patterns = generator.integers(0, 2**32, size=64 * 1000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    finite = patterns[np.isfinite(patterns)]
    edges = np.array([0.0, -0.0, np.finfo(np.float32).max, -np.finfo(np.float32).max, np.finfo(np.float32).tiny,
                      np.float32(1e-45), np.float32(-1e-45), 1.0, 10.0, 9.99999994e-2, 1e-38, 999999999.0, 0.5,
                      *[np.nextafter(np.float32(10.0) ** k, np.float32(np.inf), dtype=np.float32)
                        for k in range(-37, 38)],
                      *[np.nextafter(np.float32(10.0) ** k, np.float32(0), dtype=np.float32) for k in range(-37, 38)]],
                     dtype=np.float32)
    values = np.concatenate([finite[: (len(finite) // 64) * 64], np.resize(edges, 64 * 3)]).reshape(-1, 64)
    lines = format_embeddings(values)
    assert all(len(line) == 64 * VALUE_WIDTH - 1 for line in lines)  # fixed width, no leading separator
    assert np.array_equal(bits(parsed(lines)), bits(values))  # the sign of zero included


def test_a_non_finite_value_is_written_as_before_and_the_other_rows_are_untouched() -> None:
    values = np.array([[0.25, -1.5], [np.nan, 2.0]], dtype=np.float32)
    lines = format_embeddings(values)
    assert lines[1] == "nan, 2"
    assert json.loads(f"[{lines[0]}]") == [0.25, -1.5]


def test_the_pooled_path_gives_the_general_paths_and_one_at_a_time_values_bit_for_bit(pooled: LoadedModel) -> None:
    encoder = SentenceEncoder.of_model(pooled.assets)
    texts = [*SENTENCES, UNKNOWN, "A man is playing a flute while two dogs run on the grass near the park.",
             *reversed(SENTENCES)] * 7
    ids = [encoder.known_token_ids(text) for text in texts] + [list(range(2, 14))]  # longer than enc0_max_seq_len
    assert None in ids and pooled.config.enc0.max_seq_len < 12
    embedder = PartEmbedder(pooled, "in0", batch_size=8)
    assert embedder.pooled
    fast, general = embedder.embed(ids), embedder.embed(ids, pooled=False)
    assert np.array_equal(bits(fast), bits(general))
    predictor = Predictor(pooled)
    one_at_a_time = [predictor.predict([Instance(found, None)], predictor.max_lens)[0]["embeddings"]
                     for found in ids if found is not None]
    known = [index for index, found in enumerate(ids) if found is not None]
    assert np.array_equal(bits(fast[known]), bits(np.array(one_at_a_time)))
    assert not fast[[index for index, found in enumerate(ids) if found is None]].any()


def test_the_general_path_gives_the_servers_values_for_the_same_batches(served_model: Path) -> None:
    loaded = load(served_model)  # hcnn and bilstm: the general path
    encoder = SentenceEncoder.of_model(loaded.assets)
    ids = [encoder.known_token_ids(text) for text in [*SENTENCES, UNKNOWN, *SENTENCES[:3]]]
    embedder = PartEmbedder(loaded, "in0", batch_size=4)
    assert not embedder.pooled
    ours = embedder.embed(ids)
    predictor = Predictor(loaded, batch_size=4)
    for start in range(0, len(ids), 4):  # what embed_corpus asked the Predictor for, a batch at a time
        batch = [(index, found) for index, found in enumerate(ids[start:start + 4], start) if found is not None]
        served = predictor.predict([Instance(found, None) for _, found in batch], predictor.max_lens)
        assert np.array_equal(bits(ours[[index for index, _ in batch]]),
                              bits(np.array([row["embeddings"] for row in served])))


def test_a_pooled_corpus_gets_the_servers_embeddings(pooled: LoadedModel, tmp_path: Path) -> None:
    corpus = tmp_path / "s.txt"
    texts = [*SENTENCES, UNKNOWN, *SENTENCES[::-1]] * 3
    corpus.write_text("\n".join(texts) + "\n")
    encoder = SentenceEncoder.of_model(pooled.assets)
    out = tmp_path / "out.jsonl"
    result = embed_corpus(Corpus.open(str(corpus)), pooled, encoder, str(out), model_id="m", batch_size=4,
                          part_records=7)
    assert result.no_known_token == 3 and result.parts == 9
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["text"] for line in lines] == texts
    predictor = Predictor(pooled)  # o2v serve answering one request with every sentence
    ids = [encoder.known_token_ids(text) for text in texts]
    served = predictor.predict([Instance(found, None) for found in ids if found is not None], predictor.max_lens)
    assert np.array_equal(bits(np.array([line["embedding"] for line in lines if line["embedding"] is not None])),
                          bits(np.array([row["embeddings"] for row in served])))
