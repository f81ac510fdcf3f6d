"""``o2v serve``: the SageMaker inference contract (``/ping``, ``/invocations``) for a local model."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from o2v_core.aws_quotas import INVOKE_ENDPOINT_MAX_BODY_BYTES

from training.cli import CommandError
from training.commands import Subparsers, add_parser
from training.serving.limits import DEFAULT_MAX_OUTPUT_VALUES

DESCRIPTION = """\
Serve a model written by `o2v train` (model.tar.gz or its model directory) over HTTP with
SageMaker's inference contract:

  GET  /ping          200 when the model is loaded
  POST /invocations   {"instances": [{"in0": [ids]}]}            -> {"predictions": [{"embeddings": [...]}]}
                      {"instances": [{"in0": [ids], "in1": [ids]}]} -> {"predictions": [{"scores": [...]}]}

Content-Type application/json or application/jsonlines (one instance per line); none, or
application/octet-stream, is read as JSON. Accept application/json or application/jsonlines
(default: the request's format). Keys other than in0/in1 in an instance are ignored. No count of
instances is imposed: a request is bounded by --max-body-bytes and --max-output-values. An
infer_max_seqlens above the model's maximum is lowered to it and reported (log line and the
X-O2V-Infer-Max-Seqlens response header). Bad requests get a 4xx with
{"error": "..."} and the server keeps serving: JSON nested over 16 levels or an integer over 18
digits get 400, a malformed Content-Length 400, a body over --max-body-bytes 413, a request whose
headers or body stop arriving 408 after --read-timeout. Served by waitress: --workers request
threads, at most --max-connections open connections (more wait in the listen backlog).
Use `o2v embed` to send sentences instead of ids.

Example:
  o2v serve --model runs/stsb/model.tar.gz --port 8080
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")),
                        help="model.tar.gz or model directory (default: $SM_MODEL_DIR or /opt/ml/model)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")),
                        help="port (default: $SAGEMAKER_BIND_TO_PORT or 8080)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1; 0.0.0.0 inside a container)")
    parser.add_argument("--max-body-bytes", type=int, default=INVOKE_ENDPOINT_MAX_BODY_BYTES,
                        help="largest request body accepted, else 413 (default: 6 MiB, InvokeEndpoint's limit)")
    parser.add_argument("--max-output-values", type=int, default=DEFAULT_MAX_OUTPUT_VALUES,
                        help="most numbers one response may hold (instances x prediction width), else 413: a "
                             f"memory bound; no count of instances is imposed (default: {DEFAULT_MAX_OUTPUT_VALUES})")
    parser.add_argument("--batch-size", type=int, default=256, help="instances per inference batch (default: 256)")
    parser.add_argument("--max-connections", type=int, default=4096,
                        help="most connections open at once; more wait in the backlog (default: 4096)")
    parser.add_argument("--read-timeout", type=int, default=10,
                        help="seconds for a request's headers and body to arrive, else 408 (default: 10)")
    parser.add_argument("--idle-timeout", type=int, default=60,
                        help="seconds an idle keep-alive connection stays open (default: 60)")
    parser.add_argument("--workers", type=int, default=4,
                        help="request threads; inference itself runs one batch at a time (default: 4)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: $O2V_THREADS or 1)")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")


def register(subparsers: Subparsers) -> None:
    parser = add_parser(subparsers, "serve", "serve a model with the SageMaker inference contract", DESCRIPTION)
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from training.model.artifact import load
    from training.serving.predictor import Predictor
    from training.serving.server import InferenceServer
    from training.trainer.threads import configure_threads

    for name in ("port", "max_body_bytes", "max_output_values", "batch_size", "max_connections", "read_timeout",
                 "idle_timeout", "workers"):
        if getattr(args, name) < 1 or (name == "port" and args.port > 65535):
            raise ValueError(f"--{name.replace('_', '-')} {getattr(args, name)} is out of range")
    configure_threads(args.threads)
    loaded = load(args.model)
    predictor = Predictor(loaded, max_output_values=args.max_output_values, batch_size=args.batch_size)
    try:
        server = InferenceServer(predictor, args.host, args.port, max_body_bytes=args.max_body_bytes,
                                 quiet=args.quiet, max_connections=args.max_connections,
                                 read_timeout=args.read_timeout, idle_timeout=args.idle_timeout,
                                 workers=args.workers)
    except OSError as error:
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}") from None
    config = loaded.config
    print(f"serve: {args.model} ({config.enc0.network}, enc_dim {config.enc_dim}, output {config.output_layer}) "
          f"on {server.url}  [GET /ping, POST /invocations]", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.serving", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except (CommandError, ValueError, FileNotFoundError) as error:
        print(f"python -m training.serving: error: {error}", file=sys.stderr)
        return 2
