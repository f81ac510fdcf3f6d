"""``o2v embed``: sentences -> Object2Vec embeddings, via the local server or a SageMaker endpoint."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from o2v_core import bulk_transform

from training.bulk import DEFAULT_BATCH_SIZE as CORPUS_BATCH_SIZE
from training.bulk import DEFAULT_PART_RECORDS
from training.cli import CommandError
from training.commands import Subparsers, add_parser

if TYPE_CHECKING:
    from training.serving.client import Invoker
    from training.serving.endpoint_assets import EndpointAssets

REQUEST_BATCH_SIZE = 100

DESCRIPTION = """\
Embed sentences: tokenize them with the training vocabulary and tokenizer, send
{"instances": [{"in0": [ids]}, ...]} to the inference contract, and print one JSON line per
sentence: {"sentence": ..., "embedding": [enc_dim floats]}.

The vocabulary and tokenizer come from the model artifact (--model model.tar.gz), or from
--vocab (vocab.json of `o2v prepare`) and --tokenizer for a model without them (for example
one trained by SageMaker's built-in Object2Vec). With --endpoint alone they are found from the
endpoint name: the served model's training job and its auxiliary channel (vocab.json,
tokenizer.json), in a real account and in local mode alike.

A whole corpus (--corpus, with --out): a .txt file (one sentence per line), a .jsonl file (the
sentence in --text-field, default "text"; an --id-field to carry), either .gz-compressed, or every
object under an s3://bucket/prefix/ in key order. With --model the corpus is embedded here, in
process, in batches of --batch-size; the output is one JSON line per input line, in input order:
{"id": ...} (with --id-field) or {"text": ...}, and "embedding": [enc_dim floats]. A sentence
with no known token gets "embedding": null, "error": "no known token" (counted at the end). The
output (a path or s3://bucket/key) appears complete or not at all; an interrupted run resumes
where it stopped (finished parts are kept in <out>.parts/); an existing output is refused unless
--overwrite. Bad input (an empty line, text that is not UTF-8, a JSON line without the text
field) stops the run naming file and line, exit 2.

With --endpoint NAME (its served model) or --training-job NAME (that job's model) and
--deployment, the corpus runs as a SageMaker Batch Transform job instead: tokenized here into
{"in0": [ids]} request lines under the dataset bucket's bulk-embeddings/input/<job>/, the job
started with the documented Object2Vec embedding settings (--instance-type, --instance-count:
SageMaker deals the input objects to the instances), its progress shown until it ends, and its
output joined back into the same --out. A job that fails writes nothing and names the input
parts without output, the corpus lines they hold and the job's log group. The caller needs the
serving stack's BulkEmbeddingPolicyArn policy.

Examples:
  o2v embed "A man is playing a flute." "A man plays the flute." --model runs/stsb/model.tar.gz
  o2v embed --corpus sentences.txt --out embeddings.jsonl --model runs/stsb/model.tar.gz
  o2v embed --corpus s3://my-bucket/corpus/ --text-field body --id-field doc_id \\
      --out s3://my-bucket/embeddings/corpus.jsonl --model runs/stsb/model.tar.gz
  o2v embed --corpus s3://my-bucket/corpus/ --out s3://my-bucket/embeddings/corpus.jsonl \\
      --endpoint o2v-dev-embeddings --deployment o2v-dev --instance-count 4 --region us-east-1
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
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"sentences per request (default: {REQUEST_BATCH_SIZE}), or per forward pass with "
                             f"--corpus (default: {CORPUS_BATCH_SIZE})")
    bulk = parser.add_argument_group("a whole corpus (--corpus)")
    bulk.add_argument("--corpus", help="a .txt or .jsonl file (optionally .gz), or s3://bucket/prefix/")
    bulk.add_argument("--out", help="the output JSON Lines: a path or s3://bucket/key.jsonl")
    bulk.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    bulk.add_argument("--text-field", default="text", help="the sentence's field in a .jsonl corpus (default: text)")
    bulk.add_argument("--id-field", help="a .jsonl field to write instead of the sentence (a string or integer)")
    bulk.add_argument("--part-size", type=int, default=DEFAULT_PART_RECORDS,
                      help=f"sentences per resumable part (default: {DEFAULT_PART_RECORDS})")
    bulk.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: $O2V_THREADS or 1)")
    cloud = parser.add_argument_group(
        "a whole corpus with SageMaker Batch Transform (--corpus with --endpoint or --training-job)")
    cloud.add_argument("--training-job", help="embed with this training job's model (a new SageMaker model) instead "
                                              "of the endpoint's")
    cloud.add_argument("--deployment",
                       help="deployment (e.g. o2v-dev) whose stacks name the bucket, key and model role")
    cloud.add_argument("--instance-type", default=bulk_transform.DEFAULT_INSTANCE_TYPE,
                       help=f"transform instance type (default: {bulk_transform.DEFAULT_INSTANCE_TYPE})")
    cloud.add_argument("--instance-count", type=int, default=bulk_transform.DEFAULT_INSTANCE_COUNT,
                       help="transform instances; SageMaker deals the input objects "
                            f"({bulk_transform.RECORDS_PER_OBJECT:,} sentences each) to them "
                            f"(default: {bulk_transform.DEFAULT_INSTANCE_COUNT})")
    parser.set_defaults(func=run)


def _corpus(args: argparse.Namespace) -> int:
    """``--corpus``: embed a whole corpus into ``--out`` in process, with ``--model``."""
    from training.atomic import terminate_as_exception
    from training.bulk.corpus import Corpus, corpus_encoder
    from training.bulk.local_run import embed_corpus, model_fingerprint
    from training.data.tokenizer import Tokenizer
    from training.data.vocab import Vocab
    from training.model.artifact import load
    from training.progress import Progress
    from training.trainer.threads import configure_threads

    if args.sentences or args.file is not None:
        raise CommandError("--corpus embeds a corpus; give no sentences or --file with it")
    if not args.out:
        raise CommandError("--corpus needs --out (a path or s3://bucket/key.jsonl)")
    if args.endpoint or args.training_job:
        return _corpus_transform(args)
    if args.model is None:
        raise CommandError("--corpus needs --model model.tar.gz (the model is run here, in process)")
    corpus = Corpus.open(args.corpus, text_field=args.text_field, id_field=args.id_field)
    terminate_as_exception()  # SIGTERM removes the part being written, as Ctrl-C does; finished parts stay
    configure_threads(args.threads)
    loaded = load(args.model)
    assets = loaded.assets
    vocab = Vocab.load(args.vocab) if args.vocab else assets.vocab
    if vocab is None:
        raise CommandError(f"{args.model}: no vocabulary in the model; pass --vocab (vocab.json of `o2v prepare`)")
    encoder_settings = assets.config.enc0 if args.input == "in0" else assets.config.enc1
    encoder = corpus_encoder(vocab, Tokenizer.load(args.tokenizer) if args.tokenizer else assets.tokenizer,
                             encoder_settings.vocab_size, encoder_settings.max_seq_len, model_vocab=assets.vocab,
                             where=str(args.model))
    result = embed_corpus(corpus, loaded, encoder, args.out, model_id=model_fingerprint(args.model),
                          side=args.input, batch_size=args.batch_size or CORPUS_BATCH_SIZE,
                          part_records=args.part_size, overwrite=args.overwrite, progress=Progress("embed"))
    reused = f"; {result.reused_parts} of {result.parts} parts reused from the interrupted run" \
        if result.reused_parts else ""
    print(f"embed: {result.records:,} sentences -> {args.out} ({assets.config.enc_dim} values each) in "
          f"{result.seconds:.1f} s, {result.embedded / max(result.seconds, 1e-9):,.0f} sentences/s{reused}",
          file=sys.stderr)
    if result.no_known_token:
        print(f"embed: {result.no_known_token:,} sentences have no known token (first at "
              f"{result.first_no_known_token}): written with \"embedding\": null", file=sys.stderr)
    return 0


def _corpus_transform(args: argparse.Namespace) -> int:
    """``--corpus`` with ``--endpoint`` or ``--training-job``: a SageMaker Batch Transform job
    (training/bulk/transform.py), its output joined back and written as with ``--model``."""
    from training.bulk.corpus import Corpus
    from training.bulk.output import PartedOutput, PartsKey
    from training.bulk.transform import (
        TransformError,
        TransformOptions,
        run_transform,
        target_from_stacks,
        write_parts,
    )
    from training.launcher.stack import aws_session

    if args.model is not None:
        raise CommandError("--corpus runs --model here, or a transform job with --endpoint/--training-job: not both")
    if not args.deployment:
        raise CommandError("--corpus with --endpoint or --training-job needs --deployment (its stacks name the "
                           "bucket, the data key and the model role)")
    if args.instance_count < 1:
        raise CommandError("--instance-count must be at least 1")
    session = aws_session(args.region)
    s3 = session.client("s3")
    corpus = Corpus.open(args.corpus, text_field=args.text_field, id_field=args.id_field, s3=s3)
    source = f"endpoint:{args.endpoint}" if args.endpoint else f"training-job:{args.training_job}"
    # Refuses an existing --out now, before a job is paid for.
    output = PartedOutput(args.out, PartsKey(corpus.fingerprint(), source, args.input, args.part_size),
                          overwrite=args.overwrite, s3=s3)
    written: list[int] = []
    try:
        job = run_transform(
            session.client("sagemaker"), s3, corpus, target_from_stacks(session.client("cloudformation"),
                                                                        args.deployment),
            endpoint=args.endpoint, training_job=args.training_job,
            options=TransformOptions(instance_type=args.instance_type, instance_count=args.instance_count,
                                     side=args.input),
            write=lambda lines: written.append(write_parts(output, lines, args.part_size)))
    except TransformError as error:
        raise CommandError(str(error)) from None
    print(f"embed: {sum(written):,} sentences -> {args.out} (transform job {job})", file=sys.stderr)
    return 0


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

    if args.batch_size is not None and args.batch_size < 1:
        raise CommandError("--batch-size must be at least 1")
    if args.corpus:
        return _corpus(args)
    if args.out or args.overwrite:
        raise CommandError("--out and --overwrite go with --corpus")
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
        embeddings = encoder_client.embed(invoker, sentences, side=args.input,
                                               batch_size=args.batch_size or REQUEST_BATCH_SIZE)
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
