"""CPU threads for torch.

The default is one thread: results are then identical on every machine for a given seed, and
small Object2Vec models lose little. More threads (``--threads`` / ``$O2V_THREADS``) help on an
idle multi-core machine but slow down sharply (10x measured) when other processes compete for
the cores, because OpenMP workers spin while waiting for each other.
"""

from __future__ import annotations

import os

import torch

THREADS_ENV = "O2V_THREADS"
DEFAULT_THREADS = 1


def configure_threads(requested: int | None = None) -> int:
    """Set torch's intra-op threads: ``requested``, else ``$O2V_THREADS``, else 1."""
    if requested is None and os.environ.get(THREADS_ENV):
        requested = int(os.environ[THREADS_ENV])
    count = requested if requested is not None else DEFAULT_THREADS
    if count < 1:
        raise ValueError(f"threads {count}: must be at least 1")
    torch.set_num_threads(count)
    return count
