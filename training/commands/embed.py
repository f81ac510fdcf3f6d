"""``o2v embed``: sentences -> Object2Vec embeddings, via the local server or a SageMaker endpoint."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from training.cli import CommandError
from training.commands import Subparsers, add_parser

if TYPE_CHECKING:
    from training.serving.client import Invoker
    from training.serving.endpoint_assets import EndpointAssets

DESCRIPTION = """\
Embed sentences: tokenize them with the training vocabulary and tokenizer, send
{"instances": [{"in0": [ids]}, ...]} to the inference contract, and print one JSON line per
sentence: {"sentence": ..., "embedding": [enc_dim floats]}.

The vocabulary and tokenizer come from the model artifact (--model model.tar.gz), or from
--vocab (vocab.json of `o2v prepare`) and --tokenizer for a model without them (for example
one trained by SageMaker's built-in Object2Vec). With --endpoint alone they are found from the
endpoint name: the served model's training job and its auxiliary channel (vocab.json,
tokenizer.json), in a real account and in local mode alike.

Examples:
  o2v embed "A man is playing a flute." "A man plays the flute." --model runs/stsb/model.tar.gz
  o2v embed --file sentences.txt --model runs/stsb/model.tar.gz --url http://127.0.0.1:8080
  o2v embed "A plane is taking off." --endpoint o2v-dev-embeddings --region us-east-1
  o2v embed "A plane is taking off." --endpoint o2v-dev-embeddings --region us-east-1 \\
      --vocab data/stsb/auxiliary/vocab.json --tokenizer data/stsb/auxiliary/tokenizer.json
"""


def register(subparsers: Subparsers) -> None:
    parser = add_parser(subparsers, "embed", "embed sentences with a served model", DESCRIPTION)
    parser.add_argument("sentences", nargs="*", help="sentences to embed ('-' reads one per line from stdin)")
    parser.add_argument("--file", type=Path, help="read sentences from this file, one per line")
    parser.add_argument("--model", type=Path, help="model.tar.gz or model directory (vocabulary and tokenizer)")
    parser.add_argument("--vocab", type=Path, help="vocab.json, when the model artifact has none")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer.json (default: the documented default tokenizer)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--url", default="http://127.0.0.1:8080", help="local server (default: http://127.0.0.1:8080)")
    target.add_argument("--endpoint", help="SageMaker endpoint name (sagemaker-runtime InvokeEndpoint)")
    parser.add_argument("--region", help="AWS region for --endpoint")
    parser.add_argument("--input", choices=("in0", "in1"), default="in0", help="encoder to use (default: in0)")
    parser.add_argument("--batch-size", type=int, default=100, help="sentences per request (default: 100)")
    parser.set_defaults(func=run)


def _sentences(args: argparse.Namespace) -> list[str]:
    sentences: list[str] = []
    for item in args.sentences:
        if item == "-":
            sentences.extend(line for line in sys.stdin.read().splitlines() if line.strip())
        else:
            sentences.append(item)
    if args.file is not None:
        sentences.extend(line for line in args.file.read_text(encoding="utf-8").splitlines() if line.strip())
    if not sentences:
        raise CommandError("no sentences given (arguments, '-' for stdin, or --file)")
    return sentences


def run(args: argparse.Namespace) -> int:
    from training.data.tokenizer import Tokenizer
    from training.data.vocab import Vocab
    from training.model.artifact import load_assets
    from training.serving.client import LocalInvoker, SentenceEncoder

    if args.batch_size < 1:
        raise CommandError("--batch-size must be at least 1")
    sentences = _sentences(args)
    vocab = Vocab.load(args.vocab) if args.vocab else None
    tokenizer = Tokenizer.load(args.tokenizer) if args.tokenizer else None
    vocab_size = max_seq_len = None
    if args.model is not None:
        assets = load_assets(args.model)
        vocab = vocab or assets.vocab
        tokenizer = tokenizer or assets.tokenizer
        encoder = assets.config.enc0 if args.input == "in0" else assets.config.enc1
        vocab_size, max_seq_len = encoder.vocab_size, encoder.max_seq_len
    invoker: Invoker = LocalInvoker(args.url)
    if args.endpoint:
        invoker, served = _endpoint(args, find_vocabulary=vocab is None)
        if served is not None:
            vocab, tokenizer = served.vocab, tokenizer or served.tokenizer
            vocab_size, max_seq_len = served.encoder_limits(args.input)
    if vocab is None:
        raise CommandError("no vocabulary: pass --model (a model trained by `o2v train` on prepared data), "
                           "--vocab, or --endpoint")
    encoder_client = SentenceEncoder(tokenizer or Tokenizer(), vocab, vocab_size, max_seq_len)
    from training.serving.client import InvocationError

    try:
        embeddings = encoder_client.embed(invoker, sentences, side=args.input, batch_size=args.batch_size)
    except InvocationError as error:
        raise CommandError(str(error)) from None
    for sentence, embedding in zip(sentences, embeddings, strict=True):
        print(json.dumps({"sentence": sentence, "embedding": embedding}))
    return 0


def _endpoint(args: argparse.Namespace, *, find_vocabulary: bool) -> tuple[Invoker, EndpointAssets | None]:
    """The endpoint's invoker and, when no vocabulary was given, the served model's (from the name alone)."""
    from training.launcher.stack import aws_session
    from training.serving.client import SageMakerInvoker
    from training.serving.endpoint_assets import EndpointAssetsError, endpoint_assets

    session = aws_session(args.region)
    invoker = SageMakerInvoker(session.client("sagemaker-runtime"), args.endpoint)
    if not find_vocabulary:
        return invoker, None
    try:
        served = endpoint_assets(session.client("sagemaker"), session.client("s3"), args.endpoint)
    except EndpointAssetsError as error:
        raise CommandError(str(error)) from None
    print(f"vocabulary of {args.endpoint}: {served.vocab_uri} (training job {served.training_job})", file=sys.stderr)
    return invoker, served
