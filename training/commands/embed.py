from training.commands import Subparsers


def register(subparsers: Subparsers) -> None:
    pass
