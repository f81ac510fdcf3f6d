"""The control-plane functions' code asset: ``lambdas/`` plus the pinned Powertools, bundled at synth.

No regional layer: Powertools' public layers are published per region and architecture, ca-west-1
has no arm64 layer ("CompatibleArchitectures are not supported in ca-west-1",
powertools-lambda-python#3545), and a layer version in config is not tied to the library the tests
run (reference 11e). So the asset carries the library itself, copied at synth from the environment
the tests run in (the version pinned in pyproject.toml), with no Docker and no network: each
bundled distribution's files are listed by its installed RECORD (``importlib.metadata``).

What is bundled: Powertools and its requirements (``jmespath``, ``typing-extensions``), and its
``tracer`` extra (``aws-xray-sdk``, which ``wrapt`` needs): the handlers' ``Tracer()`` imports the
X-Ray SDK when it runs in Lambda. Not bundled: boto3 and botocore, which every Python Lambda runtime
includes ("Lambda runtimes", the SDK for Python in the Python runtimes) and which aws-xray-sdk uses.

Python version and architecture: the functions run python3.13 on arm64 while the tests run
another build, so only pure-Python files travel. ``wrapt`` ships an optional C extension next to its
pure-Python implementation, which it falls back to when the extension cannot be imported (wrapt's
``wrappers`` module); compiled files are left out, and ``tests/stacks/test_lambda_asset.py`` asserts
that none is in the asset and that the bundled tree imports without them.
"""

from __future__ import annotations

import atexit
import fnmatch
import shutil
import tempfile
from functools import cache
from importlib import metadata
from pathlib import Path

LAMBDA_SOURCE = Path(__file__).resolve().parents[2] / "lambdas"
# Distribution names as installed (pyproject.toml pins aws-lambda-powertools[tracer]).
BUNDLED_DISTRIBUTIONS = ("aws-lambda-powertools", "jmespath", "typing-extensions", "aws-xray-sdk", "wrapt")
COMPILED_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")
SKIPPED_PATTERNS = ("*/__pycache__/*", "__pycache__/*", "*.pyc", "*.egg-info/*", "*/.mypy_cache/*",
                    "*/.pytest_cache/*", "*/.ruff_cache/*")  # fmt: skip


class BundlingError(RuntimeError):
    """A distribution the asset needs is not installed in the synthesizing environment."""


def _skipped(relative: str) -> bool:
    return relative.endswith(COMPILED_SUFFIXES) or any(fnmatch.fnmatch(relative, p) for p in SKIPPED_PATTERNS)


def _copy_distribution(name: str, target: Path) -> None:
    try:
        distribution = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise BundlingError(
            f"{name} is not installed: the control-plane asset bundles it (pip install -e '.[dev]', or make setup)"
        ) from None
    for file in distribution.files or ():
        relative = file.as_posix()
        if relative.startswith("..") or _skipped(relative):  # scripts outside site-packages; compiled
            continue
        source = Path(str(file.locate()))
        if source.is_file():
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)


def _copy_sources(target: Path) -> None:
    for source in sorted(LAMBDA_SOURCE.rglob("*")):
        relative = source.relative_to(LAMBDA_SOURCE).as_posix()
        if source.is_file() and not _skipped(relative):
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)


@cache
def staged_lambda_asset() -> Path:
    """A directory with ``o2v_core``, ``control_plane`` and the bundled distributions, made once per
    process (CDK copies it into the cloud assembly at synth; removed when the process ends)."""
    target = Path(tempfile.mkdtemp(prefix="o2v-lambda-asset-"))
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    _copy_sources(target)
    for name in BUNDLED_DISTRIBUTIONS:
        _copy_distribution(name, target)
    return target
