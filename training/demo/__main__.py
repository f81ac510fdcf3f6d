"""``python -m training.demo [options]``: the same as ``o2v demo [options]``."""

from __future__ import annotations

import argparse
import sys

from training.commands import demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.demo")
    subparsers = parser.add_subparsers(dest="command", required=True)
    demo.register(subparsers)
    args = parser.parse_args(["demo", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args))
    except ValueError as error:
        print(f"o2v demo: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
