"""Atomic output: a directory or a file appears complete, or not at all.

Everything is written under a hidden temporary name beside the target and renamed into place
at the end (a rename within one directory is atomic on POSIX). On any error the temporary
output is removed and an existing target is left untouched (a SIGTERM counts as an error where
the command turns it into an exception, see :func:`terminate_as_exception`).

A temporary directory's name carries the id of the process writing it
(``.<target>.tmp-pid<N>-<random>``). One left by a process that no longer runs (killed with
SIGKILL, or a machine that lost power) is removed the next time the same target is written.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

LEGACY_STALE_SECONDS = 3600  # a temporary directory named without a process id (older versions)


class Terminated(SystemExit):
    """Raised in the main thread on SIGTERM, so ``finally`` blocks and clean-ups run; exit 143."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def terminate_as_exception() -> None:
    """From now on SIGTERM raises :class:`Terminated` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


def _staging_path(target: Path, kind: str) -> Path:
    """A fresh hidden name beside ``target``, chosen before anything is created under it: a signal
    that interrupts the creation can then never leave something the clean-up does not know about
    (tempfile.mkdtemp/mkstemp return the name only after creating it)."""
    return target.parent / f".{target.name}.{kind}-pid{os.getpid()}-{secrets.token_hex(6)}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove ``target``'s temporary siblings whose writer is gone; return what was removed."""
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(?:tmp|old)-(?:pid(\d+)-)?")
    removed: list[Path] = []
    if not target.parent.is_dir():
        return removed
    for entry in target.parent.iterdir():
        found = pattern.match(entry.name)
        if not found or not entry.is_dir():
            continue
        pid = found.group(1)
        if pid is not None:
            stale = int(pid) != os.getpid() and not _alive(int(pid))
        else:
            stale = time.time() - entry.stat().st_mtime > LEGACY_STALE_SECONDS
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_directory(target: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces ``target``."""
    target = target.resolve()
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    staging = _staging_path(target, "tmp")
    try:
        staging.mkdir(mode=0o700)  # FileExistsError on the (2^-48) chance of a clash: nothing is lost
        staging.chmod(0o777 & ~_umask())
        yield staging
        _fsync_tree(staging)
        if target.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-pid{os.getpid()}-", dir=target.parent))
            backup.rmdir()
            target.rename(backup)
            staging.rename(target)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _staging_path(target, "tmp")
    try:
        os.close(os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        staging.chmod(0o666 & ~_umask())
        yield staging
        with staging.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(staging, target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
