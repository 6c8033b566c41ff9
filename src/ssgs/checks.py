"""Argument checks shared by the public entry points: each returns the
value in its plain Python type or raises ValueError naming the argument."""

from __future__ import annotations

import numpy as np

__all__ = ["audio_items", "check_float", "check_int"]


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
        bounds = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}]"
        raise ValueError(f"{name} must be in {bounds}, got {value!r}")
    return v


def audio_items(audio) -> list:
    """The signals and/or paths an ``audio`` argument holds (one, or a list
    or tuple of them); ValueError when it holds none."""
    items = list(audio) if isinstance(audio, (list, tuple)) else [audio]
    if not items:
        raise ValueError("audio must hold at least one signal or file")
    return items
