"""Section 3: trainer and inference-server throughput, against all-MiniLM-L6-v2 on the same sentences.

Trainer: each encoder network at the app's default sizes (cdk.json's ``dev`` hyperparameters,
with ``enc0_network`` swapped), trained by the repository's trainer on the first ``pairs`` STS-B
training pairs for two epochs with 2 torch threads; pairs per second of the second (warm) epoch.

Server: ``python -m training.serving`` (2 torch threads) over HTTP with a keep-alive connection;
the client tokenizes, sends ``{"instances": [{"in0": ids}, ...]}`` and parses the embeddings.
MiniLM encodes the very same batches in process (no HTTP, which favours MiniLM). Each timed
request's latency is recorded; sentences per second = sentences / total time. A few untimed
warm-up requests come first.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from o2v_core.settings import settings_from_cdk_json

from bench.record import manifest_hyperparameters
from bench.serving import MiniLM, ServerClient
from training.data.tokenizer import TOKENIZER_FILE, Tokenizer
from training.data.vocab import VOCAB_FILE, Vocab

NETWORKS = ("hcnn", "bilstm", "pooled_embedding")
WARMUP = 3


def app_default_hyperparameters(repo: Path) -> dict[str, Any]:
    return dict(settings_from_cdk_json(repo / "cdk.json").hyperparameters)


def trainer_throughput(
    repo: Path, dataset: Path, work: Path, *, pairs: dict[str, int], threads: int = 2,
) -> dict[str, Any]:
    """Pairs per second of the local trainer per network; the trained models stay in ``work``."""
    import torch
    from o2v_core.hyperparameters import with_defaults

    from training.trainer.loop import Channels, train

    defaults = app_default_hyperparameters(repo)
    data_hps = manifest_hyperparameters(dataset)
    rows: dict[str, Any] = {}
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for network in NETWORKS:
            count = pairs[network]
            subset = _train_subset(dataset, work / "throughput-data" / f"{network}-{count}", count)
            hps = {**defaults, **data_hps, "enc0_network": network, "epochs": 2}
            hps = with_defaults(hps, where=f"throughput {network}")
            model_dir = work / "throughput-models" / network
            shutil.rmtree(model_dir, ignore_errors=True)
            with open(os.devnull, "w", encoding="utf-8") as devnull:
                result = train(hps, Channels.from_directory(subset), model_dir=model_dir, archive=None, seed=0,
                               log=devnull, quiet=True)
            warm = result.epochs[-1].seconds
            rows[network] = {
                "pairs": count,
                "epoch_seconds": [round(item.seconds, 3) for item in result.epochs],
                "pairs_per_second": count / warm,
                "sizes": {name: hps[name] for name in ("enc0_token_embedding_dim", "enc_dim", "mlp_layers",
                                                       "mlp_dim", "enc0_layers", "mini_batch_size")},
                "model": str(model_dir.relative_to(work)),
            }
    finally:
        torch.set_num_threads(previous)
    return {"threads": threads, "networks": rows}


def _train_subset(dataset: Path, out: Path, count: int) -> Path:
    if (out / "train" / "train.jsonl").is_file():
        return out
    (out / "train").mkdir(parents=True, exist_ok=True)
    with (dataset / "train" / "train.jsonl").open(encoding="utf-8") as handle:
        lines = [line for _, line in zip(range(count), handle, strict=False)]
    (out / "train" / "train.jsonl").write_text("".join(lines), encoding="utf-8")
    shutil.copytree(dataset / "auxiliary", out / "auxiliary", dirs_exist_ok=True)
    return out


def _timed(embed: Callable[[Sequence[str]], Any], batches: Sequence[Sequence[str]]) -> dict[str, Any]:
    for batch in batches[:WARMUP]:
        embed(batch)
    latencies: list[float] = []
    started = time.perf_counter()
    for batch in batches:
        tick = time.perf_counter()
        embed(batch)
        latencies.append(time.perf_counter() - tick)
    total = time.perf_counter() - started
    sentences = sum(len(batch) for batch in batches)
    return {
        "requests": len(batches),
        "sentences": sentences,
        "seconds": total,
        "sentences_per_second": sentences / total,
        "p50_ms": 1000 * float(np.percentile(latencies, 50)),
        "p99_ms": 1000 * float(np.percentile(latencies, 99)),
        "mean_ms": 1000 * statistics.fmean(latencies),
    }


def batches_of(sentences: Sequence[str], size: int, count: int) -> list[list[str]]:
    result = []
    for index in range(count):
        start = (index * size) % max(1, len(sentences) - size)
        result.append(list(sentences[start:start + size]))
    return result


class InProcess:
    """The server's own Predictor in this process (no HTTP): where the server's time goes."""

    def __init__(self, model: Path, threads: int = 2) -> None:
        import torch

        from training.model.artifact import load
        from training.serving.predictor import JSON, Predictor

        torch.set_num_threads(threads)
        self.predictor = Predictor(load(model))
        self.content_type = JSON
        self.tokenizer = Tokenizer.load(model / TOKENIZER_FILE) if (model / TOKENIZER_FILE).is_file() else Tokenizer()
        self.vocab = Vocab.load(model / VOCAB_FILE)

    def embed(self, sentences: Sequence[str]) -> list[dict[str, list[float]]]:
        body = json.dumps({"instances": [{"in0": self.vocab.encode(self.tokenizer.tokenize(s)) or [1]}
                                         for s in sentences]}).encode()
        parsed = self.predictor.parse(body, self.content_type)
        return self.predictor.predict(parsed.instances, parsed.limits)


def server_throughput(
    models: dict[str, Path], sentences: Sequence[str], *, requests: dict[int, int], minilm: MiniLM | None,
    in_process: Sequence[str] = (),
) -> dict[str, Any]:
    """Sentences/s and latency at each batch size for each served model, and for MiniLM.

    Models named in ``in_process`` are also timed through the server's Predictor in this process,
    without HTTP (the same conditions as MiniLM)."""
    result: dict[str, Any] = {"batch_sizes": sorted(requests), "models": {}, "in_process": {}, "minilm": None}
    workload = {size: batches_of(sentences, size, count) for size, count in requests.items()}
    for name, path in models.items():
        with ServerClient(path) as client:
            result["models"][name] = {str(size): _timed(client.embed, workload[size]) for size in sorted(workload)}
        if name in in_process:
            local = InProcess(path)
            result["in_process"][name] = {str(size): _timed(local.embed, workload[size]) for size in sorted(workload)}
    if minilm is not None:
        result["minilm"] = {str(size): _timed(minilm.embed, workload[size]) for size in sorted(workload)}
        for rows in [*result["models"].values(), *result["in_process"].values(),
                     *result.get("nodelay", {}).values()]:
            for size, row in rows.items():
                row["x_minilm"] = row["sentences_per_second"] / result["minilm"][size]["sentences_per_second"]
    return result
