"""AWS's document-embedding notebook against ``o2v train``, ``o2v serve`` and local mode.

Source: aws/amazon-sagemaker-examples @ 201332d363192f2759ee11d16c67aa15859b209c,
introduction_to_applying_machine_learning/object2vec_document_embedding/object2vec_document_embedding.ipynb;
its code is vendored in :mod:`tests.conformance.notebooks.document_embedding`.

Data: the notebook downloads StarSpace's Wikipedia articles (one article per line, sentences
separated by tabs), which are not available here. We write the same layout from STS Benchmark
sentences, four to an article. Hyperparameters are the notebook's (cell 42) with the vocabulary
size of our vocabulary and ``epochs`` 2 as in the notebook ("use 20 to get a great model").
"""

from __future__ import annotations

import functools
import importlib
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sagemaker.core.deserializers import BytesDeserializer
from sagemaker.core.serializers import JSONSerializer

from tests.conformance.conftest import TRANSPORTS, SdkPredictor, stsb_rows, train_channels, transport_for

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]  # trains real models
nb: Any = importlib.import_module("tests.conformance.notebooks.document_embedding")  # AWS's code, untyped

ARTICLES = {"train250k": 200, "dev10k": 40, "test10k": 40, "test_basedocs": 40}


def hyperparameters(vocab_size: int) -> dict[str, Any]:
    values: dict[str, Any] = {  # cell 42, as written there, but for enc0_vocab_size
        "_kvstore": "device", "_num_gpus": "auto", "_num_kv_servers": "auto", "bucket_width": 0, "dropout": 0.4,
        "early_stopping_patience": 2, "early_stopping_tolerance": 0.01, "enc0_layers": "auto", "enc0_max_seq_len": 50,
        "enc0_network": "pooled_embedding", "enc0_pretrained_embedding_file": "", "enc0_token_embedding_dim": 300,
        "enc0_vocab_size": vocab_size, "enc1_network": "enc0", "enc_dim": 300, "epochs": 2, "learning_rate": 0.01,
        "mini_batch_size": 512, "mlp_activation": "relu", "mlp_dim": 512, "mlp_layers": 2, "num_classes": 2,
        "optimizer": "adam", "output_layer": "softmax", "weight_decay": 0,
    }
    values["negative_sampling_rate"] = 3
    values["tied_token_embedding_weight"] = "true"
    values["comparator_list"] = "hadamard"
    return values


@pytest.fixture(scope="module")
def workdir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: Any) -> Path:
    root = tmp_path_factory.mktemp("document-embedding")
    datadir = root / "wiki"
    datadir.mkdir()
    sentences = [sentence for _, a, b in stsb_rows(shared_data, "train", 2000) for sentence in (a, b)]
    start = 0
    for name, count in ARTICLES.items():
        lines = ["\t".join(sentences[start + 4 * i:start + 4 * i + 4]) + "\n" for i in range(count)]
        (datadir / f"wikipedia_{name}.txt").write_text("".join(lines))
        start += 4 * count
    # the notebook's channel reader defaults to /tmp/wiki; point it at ours
    monkeypatch_module.setattr(nb, "get_article_iter_from_channel",
                               functools.partial(nb.get_article_iter_from_channel, datadir=str(datadir)))
    random.seed(0)
    np.random.seed(0)
    w_dict = nb.build_vocab("train", num_words=500000, min_count=5)  # cell 22
    (root / "w_dict.json").write_text(json.dumps(w_dict))
    for split in ("train", "validation", "test"):
        (root / "channels" / split).mkdir(parents=True)
    # cells 25-26: positive (sentence, article) pairs, shuffled
    samples = list(nb.generate_sent_article_pairs_from_single_file(str(datadir / "wikipedia_train250k.txt"), w_dict))
    random.shuffle(samples)
    with nb.jsonlines.open(root / "channels" / "train" / "train250k_tokenized_shuf.jsonl", "w") as writer:
        writer.write_all(samples)
    # cell 28: dev and test with 5 negatives per positive
    test_nsr = 5
    for data, channel in (("dev10k", "validation"), ("test10k", "test")):
        article_buffer = list(nb.get_article_iter_from_file(str(datadir / f"wikipedia_{data}.txt")))
        sample_buffer = []
        for article_idx in range(len(article_buffer)):
            sample_buffer += nb.generate_pos_neg_samples_from_single_article(
                w_dict, article_idx, article_buffer, negative_sampling_rate=test_nsr)
        with nb.jsonlines.open(root / "channels" / channel / f"{data}_tokenized-nsr{test_nsr}.jsonl", "w") as writer:
            writer.write_all(sample_buffer)
    return root


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def model(workdir: Path) -> Path:
    vocab_size = len(json.loads((workdir / "w_dict.json").read_text()))
    return train_channels(workdir / "channels", workdir / "run", hyperparameters(vocab_size))


@pytest.fixture(scope="module", params=TRANSPORTS)
def predictor(request: pytest.FixtureRequest, model: Path) -> Iterator[SdkPredictor]:
    """Cell 45: ``deploy(serializer=JSONSerializer(), deserialzier=JSONDeserializer())``: the misspelt
    keyword leaves the SDK's default deserializer (BytesDeserializer, Accept */*), which is why the
    notebook calls ``json.loads`` on every answer (cell 48)."""
    with transport_for(request.param, model, "document-embedding", request) as transport:
        yield SdkPredictor(transport, JSONSerializer(), BytesDeserializer())


def test_basedoc_and_sentence_embeddings_as_the_notebook_gets_them(predictor: SdkPredictor, workdir: Path,
                                                                   tmp_path: Path) -> None:
    w_dict = json.loads((workdir / "w_dict.json").read_text())
    # cell 51: tokenize the base documents, embed them in batches of 100, written as JSON Lines
    eval_basedocs, basedocs_emb = tmp_path / "test_basedocs_tokenized_in0.jsonl", tmp_path / "basedocs_emb.jsonl"
    with nb.jsonlines.open(eval_basedocs, "w") as writer:
        for data in nb.generate_tokenized_articles_from_single_file(
                str(workdir / "wiki" / "wikipedia_test_basedocs.txt"), w_dict):
            writer.write({"in0": data})
    nb.eval_and_write(predictor, str(eval_basedocs), str(basedocs_emb), 100)
    basedocs = [np.array(line["embeddings"]) for line in nb.read_jsonline(str(basedocs_emb))]  # cell 57
    assert len(basedocs) == ARTICLES["test_basedocs"] and {vector.shape for vector in basedocs} == {(300,)}
    # cells 51-52: sentence and ground-truth article embeddings of the test pairs
    sentences, gt_articles = [], []
    for data in nb.read_jsonline(str(workdir / "channels" / "test" / "test10k_tokenized-nsr5.jsonl")):
        if data["label"] == 1:
            sentences.append({"in0": data["in0"]})
            gt_articles.append({"in0": data["in1"]})
    sent_emb = nb.get_embeddings(predictor, sentences, 100)
    doc_emb = nb.get_embeddings(predictor, gt_articles, 100)
    assert len(sent_emb) == len(doc_emb) == ARTICLES["test10k"]
    assert all(len(item["embeddings"]) == 300 for item in sent_emb + doc_emb)
