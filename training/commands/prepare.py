"""``o2v prepare``: sentence pairs -> Object2Vec JSON Lines channels, vocab.json and a manifest."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from training.atomic import terminate_as_exception
from training.cli import CommandError
from training.commands import Subparsers, add_parser
from training.data import readers, stsb
from training.data.labels import LabelSpec
from training.data.prepare import PrepareConfig, Source, prepare
from training.data.tokenizer import Tokenizer

DESCRIPTION = """\
Turn sentence-pair files into Object2Vec's training channels (train/validation/test JSON Lines
of {"label", "in0", "in1"} token ids), the auxiliary channel (vocab.json, tokenizer.json) and
manifest.json (counts, vocab size, max lengths, label kind, and the enc0_max_seq_len /
enc0_vocab_size values to train with). Output is written atomically to --out.

Formats:
  stsb   STS Benchmark (score 0-5, regression). --stsb-dir DIR, or --download (official
         release, SHA-256 checked), or explicit --train/--validation/--test files.
  nli    SNLI/MultiNLI TSV with a header (3 classes: entailment=0, neutral=1,
         contradiction=2; rows with gold_label '-' are skipped and counted).
  tsv, csv, jsonl
         Any pairs file; --columns in0=NAME,in1=NAME,label=NAME (0-based indices with
         --no-header) and --label-kind.

Examples:
  o2v prepare --format stsb --stsb-dir ../shared/data/stsbenchmark --out data/stsb
  o2v prepare --format nli --train snli_1.0_dev.tsv.gz --validation-fraction 0.1 \\
      --test snli_1.0_test.tsv.gz --out data/snli
  o2v prepare --format jsonl --columns in0=q,in1=a,label=y --label-kind classification \\
      --train pairs.jsonl --validation-fraction 0.1 --out data/qa --upload --deployment o2v-dev
"""


def register(subparsers: Subparsers) -> None:
    parser = add_parser(subparsers, "prepare", "prepare sentence pairs as Object2Vec channels", DESCRIPTION)
    source = parser.add_argument_group("input")
    source.add_argument("--format", choices=("stsb", "nli", "tsv", "csv", "jsonl"), default="stsb",
                        help="input format (default: stsb)")
    source.add_argument("--stsb-dir", type=Path, help="directory holding sts-train.csv, sts-dev.csv, sts-test.csv")
    source.add_argument("--download", action="store_true",
                        help="download STS-B from its official source (checksummed) into --cache-dir")
    source.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "o2v",
                        help="where --download keeps the release (default: ~/.cache/o2v)")
    source.add_argument("--train", type=Path, nargs="+", help="training file(s)")
    source.add_argument("--validation", type=Path, nargs="+", help="validation file(s)")
    source.add_argument("--test", type=Path, nargs="+", help="test file(s)")
    source.add_argument("--columns", help="tsv/csv/jsonl: in0=COL,in1=COL,label=COL")
    source.add_argument("--no-header", action="store_true", help="tsv/csv: the file has no header; columns are indices")
    source.add_argument("--label-kind", choices=("regression", "classification"),
                        help="tsv/csv/jsonl: numeric score (regression) or class label (classification)")
    source.add_argument("--labels", help="classification: class names in id order, comma-separated "
                        "(default: the training split's distinct labels, sorted)")
    text = parser.add_argument_group("tokens")
    text.add_argument("--max-seq-len", type=int, default=40, help="truncate each sentence to this many tokens "
                      "(default: 40)")
    text.add_argument("--vocab-size", type=int, default=50_000,
                      help="vocabulary size cap, <pad> and <unk> included (default: 50000)")
    text.add_argument("--min-count", type=int, default=1,
                      help="leave out tokens seen fewer times in train (default: 1)")
    text.add_argument("--no-lowercase", action="store_true", help="keep letter case")
    split = parser.add_argument_group("splits and rows")
    split.add_argument("--validation-fraction", type=float, default=0.0,
                       help="without --validation: hold out this fraction of train (content-hashed, deterministic)")
    split.add_argument("--split-seed", type=int, default=0, help="seed of the hold-out hash (default: 0)")
    split.add_argument("--skip-bad-rows", action="store_true",
                       help="skip and count bad rows instead of stopping at the first one")
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, required=True, help="output directory (written atomically)")
    output.add_argument("--force", action="store_true", help="replace --out if it exists")
    output.add_argument("--upload", action="store_true",
                        help="upload to s3://<dataset-bucket>/datasets/<name>/ after writing")
    output.add_argument("--name", help="dataset name in S3 (default: the --out directory name)")
    output.add_argument("--bucket", help="dataset bucket (default: the <deployment>-data stack's output)")
    output.add_argument("--deployment", help="deployment (e.g. o2v-dev) whose data stack names the dataset bucket")
    output.add_argument("--region", help="AWS region for --upload")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(func=run)


def _source(args: argparse.Namespace) -> Source:
    given = {split: getattr(args, split) for split in ("train", "validation", "test") if getattr(args, split)}
    if args.format == "stsb":
        if args.download:
            directory = stsb.download(args.cache_dir)
            splits = stsb.split_files(directory)
        elif args.stsb_dir:
            splits = stsb.split_files(args.stsb_dir)
        else:
            splits = {}
        splits.update(given)
        if not splits:
            raise CommandError("stsb needs --stsb-dir, --download or --train")
        return Source("STS Benchmark", readers.read_stsb, splits, LabelSpec("regression"))
    if args.format == "nli":
        return Source("NLI pairs", readers.read_nli, given, LabelSpec("classification", readers.NLI_LABELS))
    if not args.columns or not args.label_kind:
        raise CommandError(f"--format {args.format} needs --columns and --label-kind")
    columns = readers.ColumnMap.parse(args.columns, header=not args.no_header)
    classes = tuple(name.strip() for name in args.labels.split(",")) if args.labels else ()
    if classes and args.label_kind != "classification":
        raise CommandError("--labels applies to --label-kind classification only")
    fmt = args.format
    header = not args.no_header

    def reader(path: Path) -> Iterator[readers.Row]:
        return readers.read_table(path, fmt, columns, header=header)

    return Source(f"{fmt} pairs ({args.columns})", reader, given, LabelSpec(args.label_kind, classes))


def run(args: argparse.Namespace) -> int:
    terminate_as_exception()  # a SIGTERM removes the half-written temporary directory
    if args.upload and not (args.bucket or args.deployment):
        raise CommandError("--upload needs --bucket or --deployment")
    config = PrepareConfig(
        max_seq_len=args.max_seq_len,
        vocab_max_size=args.vocab_size,
        min_count=args.min_count,
        tokenizer=Tokenizer(lowercase=not args.no_lowercase),
        skip_bad_rows=args.skip_bad_rows,
        validation_fraction=args.validation_fraction,
        split_seed=args.split_seed,
    )
    manifest = prepare(_source(args), args.out, config, overwrite=args.force, log=None if args.quiet else sys.stderr)
    summary = {
        "out": str(args.out),
        "records": {name: split["records"] for name, split in manifest["splits"].items()},
        "skipped_bad_rows": sum(split["skipped_bad_rows"] for split in manifest["splits"].values()),
        "vocab_size": manifest["vocab_size"],
        "hyperparameters": manifest["hyperparameters"],
    }
    if args.upload:
        from training.data.upload import upload_dataset
        from training.launcher.stack import aws_session, dataset_bucket

        session = aws_session(args.region)
        bucket = args.bucket or dataset_bucket(session, args.deployment)
        name = args.name or args.out.resolve().name
        summary["uploaded"] = upload_dataset(session.client("s3"), args.out, bucket, name)
    print(json.dumps(summary, indent=2))
    return 0
