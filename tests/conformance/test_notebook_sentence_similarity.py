"""AWS's sentence-similarity notebook, with transfer learning, against ``o2v train``, ``o2v serve`` and local mode.

Source: aws/amazon-sagemaker-examples @ 18fc469ba7d7f520bc7fe27d5ea2f3b13d3f1c1f,
introduction_to_amazon_algorithms/object2vec_sentence_similarity/object2vec_sentence_similarity.ipynb;
its code is vendored in :mod:`tests.conformance.notebooks.sentence_similarity`.

Data: the notebook downloads SNLI 1.0 (jsonl) and STS 2016 question-question; we use the shared SNLI
dev/test rows (as SNLI's jsonl has them) and STS Benchmark rows written in STS 2016's file layout, and
a GloVe-format vector file for the combined vocabulary instead of the 2 GB GloVe 840B (trimmed by the
notebook's own ``trim_w2v`` into ``glove.840B-trim.txt``). The model is the notebook's
transfer-learning one (cells 77-84: ``is_pretrain=True``, ``use_all_vocab``, ``is_quick_run=True``).
"""

from __future__ import annotations

import importlib
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.conftest import (
    TRANSPORTS,
    SdkV1Predictor,
    fake_vectors,
    json_deserializer,
    json_serializer,
    snli_rows,
    stsb_rows,
    train_channels,
    transport_for,
)

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]  # trains real models
nb: Any = importlib.import_module("tests.conformance.notebooks.sentence_similarity")  # AWS's code, untyped

STS_ROWS = 60


def default_hp(vocab_size: int) -> dict[str, Any]:
    """Notebook cell 30's DEFAULT_HP, as written there."""
    return {
        "enc_dim": 4096, "mlp_dim": 512, "mlp_activation": "linear", "mlp_layers": 2, "output_layer": "softmax",
        "optimizer": "adam", "learning_rate": 0.0004, "mini_batch_size": 32, "epochs": 20, "bucket_width": 0,
        "early_stopping_tolerance": 0.01, "early_stopping_patience": 3, "dropout": 0, "weight_decay": 0,
        "enc0_max_seq_len": 82, "enc1_max_seq_len": 82, "enc0_network": "hcnn", "enc1_network": "enc0",
        "enc0_token_embedding_dim": 300, "enc0_layers": "auto", "enc0_cnn_filter_width": 3,
        "enc1_token_embedding_dim": 300, "enc1_layers": "auto", "enc1_cnn_filter_width": 3,
        "enc0_vocab_file": "", "enc1_vocab_file": "", "enc0_vocab_size": vocab_size, "enc1_vocab_size": vocab_size,
        "num_classes": 3, "_num_gpus": "auto", "_num_kv_servers": "auto", "_kvstore": "device",
    }


def pretrain_hp(all_vocab_size: int) -> dict[str, Any]:
    """Cell 36's set_training_environment(is_quick_run=True, is_pretrain=True, use_all_vocab=...)."""
    hyperparameters = default_hp(all_vocab_size).copy()
    hyperparameters["enc0_vocab_file"] = "all_vocab.json"
    hyperparameters["enc1_vocab_file"] = "all_vocab.json"
    for idx in [0, 1]:
        hyperparameters[f"enc{idx}_pretrained_embedding_file"] = "glove.840B-trim.txt"
    hyperparameters["mini_batch_size"] = 8192
    hyperparameters["enc_dim"] = 16
    hyperparameters["epochs"] = 2
    return hyperparameters


@pytest.fixture(scope="module")
def workdir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The notebook's files, made by its own code (cells 21-25, 52-72) in its own layout."""
    root = tmp_path_factory.mktemp("sentence-similarity")
    snli, sts, all_vocab = root / nb.SNLI_PATH, root / nb.STS_PATH, root / "all_vocab_datasets"
    for folder in (snli, sts, all_vocab, root / "GloVe"):
        folder.mkdir()
    splits = {"train": snli_rows(shared_data, "dev", 0, 300), "dev": snli_rows(shared_data, "dev", 300, 100),
              "test": snli_rows(shared_data, "test", 0, 100)}
    for split, rows in splits.items():
        with nb.jsonlines.open(snli / f"snli_1.0_{split}.jsonl", mode="w") as writer:
            writer.write_all(rows)
        shutil.copy(snli / f"snli_1.0_{split}.jsonl", all_vocab)  # cell 70
    scored = stsb_rows(shared_data, "dev", STS_ROWS)
    (sts / "STS2016.input.question-question.txt").write_text("".join(f"{a}\t{b}\n" for _, a, b in scored))
    (sts / "STS2016.gs.question-question.txt").write_text("".join(f"{score}\n" for score, _, _ in scored))
    nb.make_snli_full_vocab(dirname=str(snli))  # cell 23
    nb.make_sts_full_vocab(dirname=str(sts))  # cell 55
    nb.combine_vocabulary([str(snli / "snli-vocab.json"), str(sts / "sts-vocab.json")],
                          str(all_vocab / "all_vocab.json"))  # cell 61
    words = list(json.loads((all_vocab / "all_vocab.json").read_text()))
    fake_vectors([*words[::2], "zzz-not-in-the-vocabulary"], root / "glove.840B.300d.txt")
    nb.trim_w2v(str(root / "glove.840B.300d.txt"), str(root / "GloVe" / "glove.840B-trim.txt"),
                json.loads((all_vocab / "all_vocab.json").read_text()))  # cell 66
    nb.make_snli_data(dirname=str(all_vocab), vocab_file="all_vocab.json", outfile_suffix="pretrain")  # cell 72
    return root


@pytest.fixture(scope="module")
def model(workdir: Path) -> Path:
    """Cell 36's channels (train/, validation/, auxiliary/ with the vectors and vocab), trained by
    ``o2v train --data`` with the notebook's hyperparameters, pretrained file name included."""
    channels = workdir / "channels"
    for split in ("train", "validation"):
        (channels / split).mkdir(parents=True)
        shutil.copy(workdir / "all_vocab_datasets" / f"snli-integer-{split}-pretrain.jsonl",
                    channels / split / f"snli-integer-{split}-pretrain.jsonl")
    (channels / "auxiliary").mkdir()
    shutil.copy(workdir / "GloVe" / "glove.840B-trim.txt", channels / "auxiliary")
    shutil.copy(workdir / "all_vocab_datasets" / "all_vocab.json", channels / "auxiliary")
    vocab_size = nb.get_vocab_size(str(workdir / "all_vocab_datasets" / "all_vocab.json"))  # cell 74
    return train_channels(channels, workdir / "run", pretrain_hp(vocab_size))


@pytest.fixture(scope="module", params=TRANSPORTS)
def predictor_2(request: pytest.FixtureRequest, model: Path) -> Iterator[SdkV1Predictor]:
    """Cell 80: ``predictor_2.serializer = json_serializer``, ``deserializer = json_deserializer`` (SDK v1)."""
    with transport_for(request.param, model, "sentence-similarity", request) as transport:
        yield SdkV1Predictor(transport, json_serializer, json_deserializer)


def test_the_pretrained_file_name_of_the_notebook_trains(model: Path, workdir: Path) -> None:
    log = (workdir / "run" / "train.log").read_text()
    assert (workdir / "run" / "hyperparameters.json").read_text().count('"glove.840B-trim.txt"') == 2
    assert model.is_file() and "validation cross_entropy" in log


def test_snli_test_accuracy_as_the_notebook_computes_it(predictor_2: SdkV1Predictor, workdir: Path) -> None:
    # cell 82, as written there (its loop, with the notebook's calc_prediction_accuracy)
    snli_test_path = str(workdir / "all_vocab_datasets" / "snli-integer-test-pretrain.jsonl")
    test_data_content = []
    test_label = []
    for line in nb.read_jsonline(snli_test_path):
        test_data_content.append({"in0": line["in0"], "in1": line["in1"]})
        test_label.append({"label": line["label"]})
    batch_size = 100
    n_test = len(test_label)
    n_batches = math.ceil(n_test / float(batch_size))
    start = 0
    agg_acc = 0.0
    for _ in range(n_batches):
        end = (start + batch_size) if (start + batch_size) <= n_test else n_test
        payload = {"instances": test_data_content[start:end]}
        acc = nb.calc_prediction_accuracy(predictor_2.predict(payload), test_label[start:end])
        agg_acc += acc * (end - start + 1)
        start = end
    assert n_test > 90 and 0.0 <= agg_acc / n_test <= 1.1  # the notebook's own (off-by-one) weighting


def test_sts_correlation_as_the_notebook_computes_it(predictor_2: SdkV1Predictor, workdir: Path) -> None:
    # cell 84: in1 embeddings of each side, cosine similarity, Pearson/Spearman against the gold scores
    eval_data_qq = nb.wrap_sts_test_data_for_eval(fpath=str(workdir / nb.STS_PATH),
                                                  vocab_path_prefix=str(workdir / "all_vocab_datasets"),
                                                  vocab_name="all_vocab.json", dataset="question-question")
    results = nb.eval_corr(predictor_2, eval_data_qq)
    assert results["nsamples"] == STS_ROWS
    assert -1.0 <= results["pearson"][0] <= 1.0 and -1.0 <= results["spearman"][0] <= 1.0
