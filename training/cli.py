"""``o2v``: one command-line entry point; each sub-command lives in ``training/commands/``.

To add a command, write ``training/commands/<name>.py`` with ``register(subparsers)`` (which
adds its parser and sets ``func``) and add its module path to ``COMMAND_MODULES``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

COMMAND_MODULES: tuple[str, ...] = (
    "training.commands.prepare",
    "training.commands.train",
    "training.commands.serve",
    "training.commands.embed",
    "training.commands.launch",
    "training.commands.detect",
    "training.commands.demo",
    "training.commands.preflight",
    "training.commands.verify",
)


class CommandError(Exception):
    """A user-facing failure: printed as ``o2v <command>: error: <message>``, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="o2v",
        description="Train and serve Amazon SageMaker Object2Vec sentence embeddings, locally or on AWS.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("o2v: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `o2v embed ... | head -1`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (CommandError, ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"o2v {args.command}: error: {error}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
