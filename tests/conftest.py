"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Real public data sits beside the repo (see ../shared/data/README.md); it is never copied in.
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "stsbenchmark" / "sts-train.csv").exists():
        pytest.fail(f"shared data not found at {SHARED_DATA}; the suite needs ../shared/data beside the repo")
    return SHARED_DATA
