"""Synthesis: audio made from a model, alone (fidelity 0) or with the
training audio (fidelity > 0).

One job per module: :mod:`~ssgs.synthesis.paths` (state paths, durations,
silences), :mod:`~ssgs.synthesis.trajectory` (frames, pitch, voicing),
:mod:`~ssgs.synthesis.excitation` (excitation signals and residual
shapes), :mod:`~ssgs.synthesis.render` (filtering, level, limiter),
:mod:`~ssgs.synthesis.voice` (what generation reads of a model),
:mod:`~ssgs.synthesis.fidelity` (replay and blends),
:mod:`~ssgs.synthesis.segments` (per-sample work a segment of frames at a
time), :mod:`~ssgs.synthesis.stream` (trimming, resampling, limiting and
blocks of the output) and :mod:`~ssgs.synthesis.calibration` (what
training fits by rendering).
docs/synthesis.md and docs/fidelity.md say why each is as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ssgs.excitation_model import EXCITATION_TYPES, KINDS
from ssgs.synthesis.fidelity import DecodedPaths, blend_segments, replay_segments, replay_states, resolve_start
from ssgs.synthesis.paths import model_path
from ssgs.synthesis.segments import SEGMENT_FRAMES, joined_segments
from ssgs.synthesis.stream import blocks, limited, resampled, trimmed
from ssgs.synthesis.voice import model_plan

__all__ = ["GenerationDetails", "generate", "generation", "stream_blocks"]


@dataclass
class GenerationDetails:
    """What a generation did, for the caller to inspect or replay. A
    stream's details are complete when it starts, except ``n_samples`` (the
    samples handed out so far) and, for an endless stream, ``state_path``
    and ``f0`` (those of the segments rendered so far)."""

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


def _from_training(voice, corpus, n, fidelity, kind, rng, start, decoder, details, sources):
    """Frame-grid chunks of a fidelity > 0 generation, its details filled in."""
    index, sample = resolve_start(corpus, start, rng)
    paths = DecodedPaths(voice, corpus, decoder)
    details.source_index, details.source_path = index, sources[index]["path"]
    details.start_sample, details.start_seconds = sample, sample / voice.sample_rate
    if fidelity == 1.0:
        details.state_path = replay_states(corpus, paths, index, sample, n)
        return replay_segments(corpus, index, sample, n)
    segments, details.state_path, offset = blend_segments(voice, corpus, paths, index, sample, n, fidelity,
                                                         kind, rng)
    return trimmed(segments, offset, n)


def _endless(voice, kind, seed, decoder, details):
    """Frame-grid chunks of an endless fidelity-0 generation: each segment
    (:func:`ssgs.synthesis.segments.joined_segments`) along its own state
    path, drawn from (``seed``, segment), its states and F0 appended to
    ``details``."""
    def render_frames(a, b, segment):
        rng = np.random.default_rng([seed, segment])
        path = model_path(voice, b - a, rng, decoder)
        plan, f0 = model_plan(voice, path, kind, rng)
        first = segment * SEGMENT_FRAMES - a
        details.state_path = np.concatenate([details.state_path, path[first:first + SEGMENT_FRAMES]])
        details.f0 = np.concatenate([details.f0, f0[first:first + SEGMENT_FRAMES]])
        return plan.render(0, b - a, segment)

    details.state_path, details.f0 = np.zeros(0, np.int64), np.zeros(0)
    return joined_segments(render_frames, None, voice.hop)


def generation(voice, corpus, duration, fidelity, kind, seed, start=None, decoder="sample", sample_rate=None,
               sources=()):
    """A generation planned (checked arguments): its state path and every
    per-frame quantity computed, its audio still to be made. The model
    alone at fidelity 0, the training ``corpus`` replayed or blended above
    it; resampled (a soxr stream) to ``sample_rate`` when it differs from
    the voice's. ``duration`` None: endless (fidelity 0 only). The model's
    rendering stays under its ceiling; at fidelity 0 a soft limiter is the
    safety net for resampling's overshoot. Training audio is never limited
    (:func:`ssgs.synthesis.fidelity.crossfade`).

    Returns
    -------
    details : GenerationDetails
    chunks : iterator of float32 arrays
        The audio, a segment at a time (their lengths do not depend on
        anything the caller reads them by).
    """
    rng = np.random.default_rng(seed)
    model_rate = voice.sample_rate
    sample_rate = model_rate if sample_rate is None else sample_rate
    details = GenerationDetails(seed=seed, fidelity=fidelity, excitation_type=EXCITATION_TYPES[KINDS.index(kind)],
                                sample_rate=sample_rate, decoder=decoder, n_samples=0, state_path=np.zeros(0, np.int64))
    if duration is None:
        chunks = _endless(voice, kind, seed, decoder, details)
    else:
        n = max(1, int(round(duration * model_rate)))
        if fidelity > 0:
            chunks = _from_training(voice, corpus, n, fidelity, kind, rng, start, decoder, details, sources)
        else:
            details.state_path = model_path(voice, -(-n // voice.hop), rng, decoder)
            plan, details.f0 = model_plan(voice, details.state_path, kind, rng)
            chunks = trimmed(joined_segments(plan.render, plan.n_frames, voice.hop), 0, n)
    return details, limited(resampled(chunks, model_rate, sample_rate), fidelity == 0)


def generate(voice, corpus, duration, fidelity, kind, seed, start=None, decoder="sample", sample_rate=None,
             sources=()):
    """:func:`generation`'s audio whole.

    Returns
    -------
    audio : ndarray float32
    details : GenerationDetails
    """
    details, chunks = generation(voice, corpus, duration, fidelity, kind, seed, start, decoder, sample_rate,
                                 sources)
    parts = list(chunks)
    y = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    details.n_samples = y.shape[0]
    return y, details


def stream_blocks(voice, corpus, duration, fidelity, kind, seed, block, start=None, decoder="sample",
                  sample_rate=None, sources=()):
    """:func:`generation`'s audio in blocks of ``block`` samples (the last
    one shorter), the same samples as :func:`generate`'s. Returns
    (details, blocks); ``details.n_samples`` counts the samples handed out."""
    details, chunks = generation(voice, corpus, duration, fidelity, kind, seed, start, decoder, sample_rate,
                                 sources)

    def count(b):
        details.n_samples += b.shape[0]

    return details, blocks(chunks, block, on_block=count)
