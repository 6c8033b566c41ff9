"""How many threads the kernels run on, and whether they can run on more than one."""

from __future__ import annotations

import os

import numpy as np

from ssgs._core import _lpc

__all__ = ["have_openmp", "resolve_threads"]


def have_openmp() -> bool:
    """Whether the kernels were built with OpenMP (otherwise they run serially)."""
    return _lpc.have_openmp()


def resolve_threads(n_threads) -> int:
    """The thread count ``n_threads`` means: itself, or every usable core for 0.

    Parameters
    ----------
    n_threads : int
        0 or more.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        For a negative or non-integer count.
    """
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)):
        raise ValueError(f"n_threads must be an integer >= 0, got {n_threads!r}")
    if n_threads < 0:
        raise ValueError(f"n_threads must be >= 0 (0 means all cores), got {n_threads}")
    if n_threads == 0:
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not on Linux
            return os.cpu_count() or 1
    return int(n_threads)
