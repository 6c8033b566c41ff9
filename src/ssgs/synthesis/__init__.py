"""Synthesis: audio made from a model, alone (fidelity 0) or with the
training audio (fidelity > 0).

One job per module: :mod:`~ssgs.synthesis.paths` (state paths, durations,
silences), :mod:`~ssgs.synthesis.trajectory` (frames, pitch, voicing),
:mod:`~ssgs.synthesis.excitation` (excitation signals and residual
shapes), :mod:`~ssgs.synthesis.render` (filtering, level, limiter),
:mod:`~ssgs.synthesis.voice` (what generation reads of a model),
:mod:`~ssgs.synthesis.fidelity` (replay and blends) and
:mod:`~ssgs.synthesis.calibration` (what training fits by rendering).
docs/synthesis.md and docs/fidelity.md say why each is as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ssgs.excitation_model import EXCITATION_TYPES, KINDS
from ssgs.synthesis.fidelity import DecodedPaths, blend, replay, resolve_start
from ssgs.synthesis.paths import model_path
from ssgs.synthesis.render import soft_limit
from ssgs.synthesis.voice import render_model

__all__ = ["GenerationDetails", "generate"]


@dataclass
class GenerationDetails:
    """What a generation did, for the caller to inspect or replay."""

    seed: int
    fidelity: float
    excitation_type: str
    sample_rate: int
    n_samples: int
    state_path: np.ndarray
    decoder: str = "sample"
    source_index: int | None = None
    source_path: str | None = None
    start_sample: int | None = None
    start_seconds: float | None = None
    f0: np.ndarray | None = field(default=None, repr=False)


def _from_training(voice, corpus, n, fidelity, kind, rng, start, decoder):
    """(audio, state path, (sequence, start sample)) for fidelity > 0."""
    index, sample = resolve_start(corpus, start, rng)
    paths = DecodedPaths(voice, corpus, decoder)
    if fidelity == 1.0:
        y, path = replay(corpus, paths, index, sample, n)
    else:
        y, path = blend(voice, corpus, paths, index, sample, n, fidelity, kind, rng)
    return y, path, (index, sample)


def generate(voice, corpus, duration, fidelity, kind, seed, start=None, decoder="sample", sample_rate=None,
             sources=()):
    """Audio of ``duration`` seconds (checked arguments): the model alone at
    fidelity 0, the training ``corpus`` replayed or blended above it;
    resampled (soxr) to ``sample_rate`` when it differs from the voice's.
    The model's rendering stays under its ceiling; at fidelity 0 a soft
    limiter is the safety net for resampling's overshoot. Training audio is
    never limited: replayed, it comes back at its own level, over full
    scale if it was (:func:`ssgs.synthesis.fidelity.crossfade`).

    Returns
    -------
    audio : ndarray float32
    details : GenerationDetails
    """
    rng = np.random.default_rng(seed)
    model_rate = voice.sample_rate
    sample_rate = model_rate if sample_rate is None else sample_rate
    n = max(1, int(round(duration * model_rate)))
    details = dict(seed=seed, fidelity=fidelity, excitation_type=EXCITATION_TYPES[KINDS.index(kind)],
                   sample_rate=sample_rate, decoder=decoder)
    f0 = None
    if fidelity > 0:
        y, path, (index, sample) = _from_training(voice, corpus, n, fidelity, kind, rng, start, decoder)
        details.update(source_index=index, source_path=sources[index]["path"], start_sample=sample,
                       start_seconds=sample / model_rate)
    else:
        path = model_path(voice, -(-n // voice.hop), rng, decoder)
        y, f0 = render_model(voice, path, kind, rng)
        y = y[:n]
    if sample_rate != model_rate:
        import soxr

        y = soxr.resample(y, model_rate, sample_rate, quality="HQ")
    if fidelity == 0:
        y = soft_limit(y)
    y = np.ascontiguousarray(y, dtype=np.float32)
    return y, GenerationDetails(n_samples=len(y), state_path=path, f0=f0, **details)
