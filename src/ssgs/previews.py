"""Previews: short fidelity-0 renderings of a model while it trains."""

from __future__ import annotations

import warnings
from collections import deque

import numpy as np

from ssgs.checks import check_int
from ssgs.synthesis.paths import model_path
from ssgs.synthesis.render import soft_limit
from ssgs.synthesis.voice import render_model

__all__ = ["preview_hook", "render_preview"]


def render_preview(voice, n_frames, sample_rate, state_sequence=None, seed=0):
    """``n_frames`` of the model alone with the Karplus-Strong string, along
    a path sampled with ``seed`` or along ``state_sequence`` (its length
    overrides n_frames), at ``sample_rate`` (resampled with soxr if it is
    not the voice's). float32."""
    rng = np.random.default_rng(seed)
    n_states = voice.params.n_states
    if state_sequence is None:
        path = model_path(voice, check_int("n_frames", n_frames), rng)
    else:
        path = np.asarray(state_sequence)
        if path.ndim != 1 or path.size == 0 or path.dtype.kind not in "iu":
            raise ValueError("state_sequence must be a non-empty 1-D sequence of state indices")
        if path.min() < 0 or path.max() >= n_states:
            raise ValueError(f"state_sequence holds states outside 0..{n_states - 1}")
        path = path.astype(np.int64)
    y = soft_limit(render_model(voice, path, "karplus-strong", rng)[0])
    if sample_rate != voice.sample_rate:
        import soxr

        y = soxr.resample(y, voice.sample_rate, sample_rate, quality="HQ")
    return np.asarray(y, dtype=np.float32)


def preview_hook(model, every, n_frames, callback, keep=5):
    """An after-iteration hook for ``model`` that renders a preview every
    ``every`` iterations into ``model.preview_snapshots`` (the last
    ``keep``) and hands it to ``callback``; an exception in the callback is
    a warning, not a failed training."""
    model.preview_snapshots = deque(maxlen=keep)

    def hook(m, record):
        if m.iteration % every:
            return
        snapshot = {"iteration": m.iteration, "log_likelihood": record.get("log_likelihood"),
                    "sample_rate": int(m.sample_rate), "audio": m.render_preview(n_frames)}
        m.preview_snapshots.append(snapshot)
        if callback is not None:
            try:
                callback(snapshot)
            except Exception as exc:  # the user's code: report, keep training
                warnings.warn(f"preview_callback failed at iteration {m.iteration}: "
                              f"{type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)

    return hook
