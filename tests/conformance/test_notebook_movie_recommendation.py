"""AWS's movie-recommendation notebook against ``o2v train``, ``o2v serve`` and local mode.

Source: aws/amazon-sagemaker-examples @ 18fc469ba7d7f520bc7fe27d5ea2f3b13d3f1c1f,
introduction_to_amazon_algorithms/object2vec_movie_recommendation/object2vec_movie_recommendation.ipynb;
its code is vendored in :mod:`tests.conformance.notebooks.movie_recommendation`.

Data: the notebook downloads MovieLens 100k, which is not available here. We write files in its
``ua.base``/``ua.test`` layout (user, movie, rating, timestamp; tab-separated) from the STS Benchmark:
each row's score (0-5) becomes a rating (at least 1), users and movies take ml-100k's id ranges
(943 users, 1,682 movies) in turn, and ``ua.test`` has 10 ratings per user as ml-100k's does, so the
notebook's validation request has its 9,430 instances (reference 11g). Hyperparameters are the
notebook's (cells 46 and 61) with ``epochs``, ``enc_dim`` and ``mlp_dim`` lowered to keep the suite
fast (sizes, not formats); the training
ratings cover 400 of the movies, so the notebook's one request for every training movie's
embedding (cell 69) stays small.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sagemaker.core.deserializers import JSONDeserializer
from sagemaker.core.serializers import JSONSerializer

from tests.conformance.conftest import TRANSPORTS, SdkPredictor, stsb_rows, train_channels, transport_for

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]  # trains real models
nb: Any = importlib.import_module("tests.conformance.notebooks.movie_recommendation")  # AWS's code, untyped

USERS, MOVIES, BASE_RATINGS, BASE_MOVIES = 943, 1682, 3000, 400

REGRESSION_HP: dict[str, Any] = {  # cell 46; epochs 20 -> 1, enc_dim 1024 -> 64, mlp_dim 256 -> 64
    "_kvstore": "device", "_num_gpus": "auto", "_num_kv_servers": "auto", "bucket_width": 0,
    "early_stopping_patience": 3, "early_stopping_tolerance": 0.01, "enc0_cnn_filter_width": 3, "enc0_layers": "auto",
    "enc0_max_seq_len": 1, "enc0_network": "pooled_embedding", "enc0_token_embedding_dim": 300,
    "enc0_vocab_size": 944, "enc1_layers": "auto", "enc1_max_seq_len": 1, "enc1_network": "pooled_embedding",
    "enc1_token_embedding_dim": 300, "enc1_vocab_size": 1684, "enc_dim": 64, "epochs": 1, "learning_rate": 0.001,
    "mini_batch_size": 64, "mlp_activation": "tanh", "mlp_dim": 64, "mlp_layers": 1, "num_classes": 2,
    "optimizer": "adam", "output_layer": "mean_squared_error",
}
CLASSIFICATION_HP: dict[str, Any] = {  # cell 61; epochs 20 -> 1, enc_dim 2048 -> 64, mlp_dim 1024 -> 64
    "_kvstore": "device", "_num_gpus": "auto", "_num_kv_servers": "auto", "bucket_width": 0,
    "early_stopping_patience": 3, "early_stopping_tolerance": 0.01, "enc0_cnn_filter_width": 3, "enc0_layers": "auto",
    "enc0_max_seq_len": 1, "enc0_network": "pooled_embedding", "enc0_token_embedding_dim": 300,
    "enc0_vocab_size": 944, "enc1_cnn_filter_width": 3, "enc1_layers": "auto", "enc1_max_seq_len": 1,
    "enc1_network": "pooled_embedding", "enc1_token_embedding_dim": 300, "enc1_vocab_size": 1684, "enc_dim": 64,
    "epochs": 1, "learning_rate": 0.001, "mini_batch_size": 2048, "mlp_activation": "relu", "mlp_dim": 64,
    "mlp_layers": 1, "num_classes": 2, "optimizer": "adam", "output_layer": "softmax",
}


@pytest.fixture(scope="module")
def workdir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("movie-recommendation")
    (root / "ml-100k").mkdir()
    scores = [score for score, _, _ in stsb_rows(shared_data, "train", 5749)]

    def rating(i: int) -> int:
        return max(1, round(scores[i % len(scores)]))

    base = [(1 + i % USERS, 1 + (i * 7) % BASE_MOVIES, rating(i)) for i in range(BASE_RATINGS)]
    test = [(user, 1 + (user * 13 + k * 101) % MOVIES, rating(user * 10 + k))
            for user in range(1, USERS + 1) for k in range(10)]
    for name, rows in (("ua.base", base), ("ua.test", test)):
        (root / "ml-100k" / name).write_text("".join(f"{u}\t{m}\t{r}\t881250949\n" for u, m, r in rows))
    # cells 17, 22, 23: load, then write the regression and (binarized) classification channels
    train_data_list = nb.load_csv_data(str(root / "ml-100k" / "ua.base"), "\t", verbose=False)
    validation_data_list = nb.load_csv_data(str(root / "ml-100k" / "ua.test"), "\t", verbose=False)
    for task in ("r", "c"):
        for split in ("train", "validation"):
            (root / task / split).mkdir(parents=True)
    nb.write_data_list_to_jsonl(copy.deepcopy(train_data_list), str(root / "r" / "train" / "train_r.jsonl"))
    nb.write_data_list_to_jsonl(copy.deepcopy(validation_data_list),
                                str(root / "r" / "validation" / "validation_r.jsonl"))
    train_c = nb.get_binarized_label(copy.deepcopy(train_data_list), 3.0)
    valid_c = nb.get_binarized_label(copy.deepcopy(validation_data_list), 3.0)
    nb.write_data_list_to_jsonl(train_c, str(root / "c" / "train" / "train_c.jsonl"))
    nb.write_data_list_to_jsonl(valid_c, str(root / "c" / "validation" / "validation_c.jsonl"))
    return root


@pytest.fixture(scope="module")
def models(workdir: Path) -> dict[str, Path]:
    return {"r": train_channels(workdir / "r", workdir / "run-r", REGRESSION_HP),
            "c": train_channels(workdir / "c", workdir / "run-c", CLASSIFICATION_HP)}


@pytest.fixture(scope="module", params=TRANSPORTS)
def predictors(request: pytest.FixtureRequest, models: dict[str, Path]) -> Iterator[dict[str, SdkPredictor]]:
    """Cells 52 and 64: ``deploy(serializer=JSONSerializer(), deserializer=JSONDeserializer(), ...)``."""
    with (transport_for(request.param, models["r"], "movie-rating", request) as rating,
          transport_for(request.param, models["c"], "movie-recommendation", request) as recommendation):
        yield {"r": SdkPredictor(rating, JSONSerializer(), JSONDeserializer()),
               "c": SdkPredictor(recommendation, JSONSerializer(), JSONDeserializer())}


def test_the_9430_instance_validation_request_gets_a_rating_each(predictors: dict[str, SdkPredictor],
                                                                   workdir: Path) -> None:
    validation_data_list = nb.load_csv_data(str(workdir / "ml-100k" / "ua.test"), "\t", verbose=False)
    valid_r_data, valid_r_label = nb.data_list_to_inference_format(copy.deepcopy(validation_data_list),
                                                                   binarize=False)  # cell 28
    assert len(valid_r_data["instances"]) == 9430
    prediction = predictors["r"].predict(valid_r_data)  # cell 54
    assert 0 <= nb.get_mse_loss(prediction, valid_r_label) < 25


def test_recommendation_accuracy_and_movie_embeddings(predictors: dict[str, SdkPredictor], workdir: Path) -> None:
    validation_data_list = nb.load_csv_data(str(workdir / "ml-100k" / "ua.test"), "\t", verbose=False)
    valid_c_data, valid_c_label = nb.data_list_to_inference_format(copy.deepcopy(validation_data_list),
                                                                   label_thres=3, binarize=True)  # cell 65
    predictions = predictors["c"].predict(valid_c_data)
    assert 0.0 <= nb.get_class_accuracy(predictions, valid_c_label, 0.5) <= 1.0  # cell 66
    # cells 69-73: every training movie's in1 embedding in one request, then a nearest neighbour
    train_data_list = nb.load_csv_data(str(workdir / "ml-100k" / "ua.base"), "\t", verbose=False)
    unique_movie_ids = nb.get_unique_movie_ids(train_data_list)
    embedding_dict = nb.get_movie_embedding_dict(unique_movie_ids, predictors["c"])
    assert len(embedding_dict) == len(unique_movie_ids) and all(
        isinstance(vector, np.ndarray) and vector.shape == (64,) for vector in embedding_dict.values())
    candidates = [movie for movie in unique_movie_ids if movie != unique_movie_ids[0]]
    best_id, min_dist = nb.get_nn_of_movie(unique_movie_ids[0], candidates, embedding_dict)
    assert best_id in candidates and min_dist >= 0
