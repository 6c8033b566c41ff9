"""Argument checks shared by the public entry points: each returns the
value in its plain Python type or raises ValueError naming the argument."""

from __future__ import annotations

import os

import numpy as np

__all__ = ["audio_items", "available_memory", "check_duration", "check_float", "check_int", "check_memory"]


def check_int(name, value, minimum=1) -> int:
    """``value`` as an int, if it is an integer (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(name, value, low=None, high=None, low_open=False) -> float:
    """``value`` as a finite float within [low, high] (or (low, high] with
    ``low_open``; either bound None for none)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or (low is not None and (v <= low if low_open else v < low)) or (
            high is not None and v > high):
        bounds = f"{'(' if low_open else '['}{low}, " + (f"{high}]" if high is not None else "inf)")
        raise ValueError(f"{name} must be in {bounds}, got {value!r}")
    return v


def audio_items(audio) -> list:
    """The signals and/or paths an ``audio`` argument holds (one, or a list
    or tuple of them); ValueError when it holds none."""
    items = list(audio) if isinstance(audio, (list, tuple)) else [audio]
    if not items:
        raise ValueError("audio must hold at least one signal or file")
    return items


def check_duration(name, value) -> float:
    """``value`` as a float > 0 that is finite (an infinite duration is named
    as such, not as a value out of range)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return check_float(name, value, 0.0, low_open=True)


def available_memory():
    """Bytes of memory a new allocation can get: MemAvailable of
    /proc/meminfo (Linux), else the physical memory (os.sysconf), else None
    when neither can be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def _human_bytes(nbytes) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if nbytes < 1000:
            return f"{nbytes:.1f} {unit}"
        nbytes /= 1000.0
    return f"{nbytes:.1f} PB"


def check_memory(what, nbytes):
    """ValueError naming ``what`` when ``nbytes`` is more memory than is
    available (nothing is checked where the available memory is unknown)."""
    available = available_memory()
    if available is not None and nbytes > available:
        raise ValueError(f"{what} would need about {_human_bytes(nbytes)} of memory; "
                         f"{_human_bytes(available)} is available")
