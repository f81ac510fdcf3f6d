"""A signal that arrives while atomic output creates its temporary never leaves the temporary
behind: the clean-up always knows its name (training/atomic.py)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from training.atomic import Terminated, atomic_directory, atomic_file


@pytest.fixture
def sigterm_raises() -> Iterator[None]:
    """SIGTERM raises Terminated here, as `o2v prepare` arranges (terminate_as_exception)."""
    def raise_terminated(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def signalled_after(create: Callable[..., Any]) -> Callable[..., Any]:
    """``create`` (os.mkdir or os.open), then a SIGTERM to this process the moment it returns."""
    def create_then_signal(*args: Any, **kwargs: Any) -> Any:
        created = create(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        return created

    return create_then_signal


@pytest.mark.usefixtures("sigterm_raises")
def test_sigterm_just_after_the_temporary_directory_is_created_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "mkdir", signalled_after(os.mkdir))
    with pytest.raises(Terminated), atomic_directory(tmp_path / "out") as staging:
        (staging / "part").write_text("never complete", encoding="utf-8")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("sigterm_raises")
def test_sigterm_just_after_the_temporary_file_is_created_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "open", signalled_after(os.open))
    with pytest.raises(Terminated), atomic_file(tmp_path / "report.md") as staging:
        staging.write_text("never complete", encoding="utf-8")
    assert list(tmp_path.iterdir()) == []
