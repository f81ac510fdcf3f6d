"""How good the served model is, and the ``o2v embed`` example, both through the local endpoint."""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from training.demo.console import Console, short
from training.demo.data import DataChoice
from training.demo.options import EXAMPLE_SENTENCES
from training.evaluation.sts import cosine_rows, scored_pairs, spearman


def evaluate_served(run_dir: Path, data: DataChoice, endpoint: str, console: Console,
                    limit: int | None) -> tuple[float, int, int] | None:
    """Test Spearman of the served embeddings: cosine of the in0 embeddings of both sentences.

    Returns ``(rho, embedding size, pairs)``. Raw STS-B: the test sentences are tokenized by
    ``o2v embed``'s client, exactly as the training data was. A prepared dataset: its
    ``test.jsonl`` token ids, when its labels are scores (regression). None when there is
    nothing to correlate with.
    """
    from training.serving.client import SageMakerInvoker

    prepared = run_dir / "data"
    manifest = json.loads((prepared / "manifest.json").read_text(encoding="utf-8"))
    invoker = SageMakerInvoker(boto3.client("sagemaker-runtime"), endpoint)
    if data.prepared:
        test = prepared / "test" / "test.jsonl"
        if manifest.get("label", {}).get("kind") != "regression" or not test.is_file():
            return None
        rows = [json.loads(line) for line in test.read_text(encoding="utf-8").splitlines() if line.strip()]
        rows = rows[:limit] if limit is not None else rows
        first = embed_ids(invoker, [row["in0"] for row in rows])
        second = embed_ids(invoker, [row["in1"] for row in rows])
        gold = [float(row["label"]) for row in rows]
    else:
        from training.data import stsb
        from training.data.tokenizer import Tokenizer
        from training.serving.client import SentenceEncoder
        from training.serving.endpoint_assets import endpoint_assets

        pairs = scored_pairs(stsb.split_files(data.directory)["test"][0], limit)
        # What `o2v embed --endpoint NAME` does: the vocabulary from the endpoint name alone.
        served = endpoint_assets(boto3.client("sagemaker"), boto3.client("s3"), endpoint)
        console.line("endpoint", f"vocabulary of {endpoint}: {served.vocab_uri} (job {short(served.training_job)})")
        vocab_size, max_seq_len = served.encoder_limits("in0")
        encoder = SentenceEncoder(served.tokenizer or Tokenizer(), served.vocab,
                                  vocab_size=vocab_size, max_seq_len=max_seq_len)
        first = encoder.embed(invoker, [left for left, _, _ in pairs])
        second = encoder.embed(invoker, [right for _, right, _ in pairs])
        gold = [score for _, _, score in pairs]
    rho = spearman(cosine_rows(first, second), gold)
    return rho, len(first[0]) if first else 0, len(gold)


def embed_ids(invoker: Any, sequences: list[list[int]], batch_size: int = 100) -> list[list[float]]:
    """Embeddings of token-id sequences, ``batch_size`` instances per InvokeEndpoint request."""
    embeddings: list[list[float]] = []
    for start in range(0, len(sequences), batch_size):
        body = json.dumps({"instances": [{"in0": ids} for ids in sequences[start:start + batch_size]]}).encode()
        embeddings.extend(item["embeddings"] for item in json.loads(invoker.invoke(body))["predictions"])
    return embeddings


@dataclass
class EmbedExample:
    """``o2v embed`` against the local endpoint, started early (it loads torch) and shown at the end."""

    run_dir: Path
    region: str
    arguments: list[str] = field(default_factory=list)
    model: Path | None = None
    process: subprocess.Popen[str] | None = None

    def start(self, endpoint_name: str, environment: Mapping[str, str]) -> None:
        sagemaker = boto3.client("sagemaker")
        try:
            endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
            config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
            model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
        except sagemaker.exceptions.ClientError:
            return
        if endpoint["EndpointStatus"] != "InService":
            return
        self.model = self._download(model["PrimaryContainer"]["ModelDataUrl"])
        self.arguments = ["embed", *EXAMPLE_SENTENCES, "--endpoint", endpoint_name, "--region", self.region,
                          "--model", str(self.model)]
        self.process = subprocess.Popen([sys.executable, "-m", "training.cli", *self.arguments],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env=dict(environment))

    def show(self, console: Console, *, keep_endpoint: bool, runtime_url: str) -> None:
        """Show the example's answer, and how to run it yourself."""
        if self.process is None or self.model is None:
            return
        console.plain("o2v embed, through the local endpoint (sagemaker-runtime InvokeEndpoint):")
        console.plain("  $ o2v " + shlex.join(self.arguments))
        try:
            stdout, stderr = self.process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            self.stop()
            console.plain("  (no answer within 120 s)")
            return
        for line in (stdout.splitlines() if self.process.returncode == 0 else stderr.splitlines())[:4]:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                item = json.loads(line)
                values = ", ".join(f"{value:.4f}" for value in item["embedding"][:4])
                line = (f'{{"sentence": {json.dumps(item["sentence"])}, "embedding": [{values}, ...]}}  '
                        f"({len(item['embedding'])} values)")
            console.plain(f"  {line}")
        if keep_endpoint:
            console.plain("The endpoint stays up until Ctrl-C; from another shell:")
            console.plain(f"  $ AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME={runtime_url} "
                          "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \\")
            console.plain("      o2v " + shlex.join(self.arguments))
        else:
            console.plain("After the demo (it stops the endpoint; --keep-endpoint keeps it), serve the model yourself:")
            console.plain(f"  $ o2v serve --model {self.model} --port 8080 &")
            console.plain("  $ o2v " + shlex.join(["embed", *EXAMPLE_SENTENCES, "--model", str(self.model)]))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.communicate()

    def _download(self, uri: str) -> Path:
        target = self.run_dir / "model.tar.gz"
        bucket, key = uri[len("s3://"):].split("/", 1)
        boto3.client("s3").download_file(bucket, key, str(target))
        return target
