"""One module per ``o2v`` sub-command, each exposing ``register(subparsers)``."""

from __future__ import annotations

import argparse
from typing import TypeAlias

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_parser(subparsers: Subparsers, name: str, help_text: str, description: str) -> argparse.ArgumentParser:
    """A sub-command parser whose --help keeps the description's line breaks."""
    return subparsers.add_parser(
        name, help=help_text, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
