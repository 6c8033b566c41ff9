"""Rendering in segments: per-frame quantities planned up front, per-sample
work done one segment of frames at a time, so memory does not grow with
the duration.

A rendering of F frames is cut on a fixed grid of :data:`SEGMENT_FRAMES`
frames (the grid does not depend on how the caller reads the audio). Each
segment is rendered on its own from its frames plus :data:`WARM_FRAMES`
before it (the string plucked, the filter and the level stage settled,
then discarded) and :data:`FADE_FRAMES` + :data:`WARM_FRAMES` after it; the
next segment fades in over the first :data:`FADE_FRAMES` of its frames at
equal power (the two renderings' excitations are drawn apart, so they are
uncorrelated). A rendering of one segment or less is the whole rendering,
unchanged. Segment 0 takes the plan's seed, segment i > 0 a seed drawn
from (seed, i).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssgs.synthesis.excitation import shape_excitation, shape_variation, synthetic_excitation
from ssgs.synthesis.render import render

__all__ = ["FADE_FRAMES", "SEGMENT_FRAMES", "WARM_FRAMES", "FramePlan", "joined_segments", "segment_seed"]

SEGMENT_FRAMES = 2048  # frames rendered at once (32.8 s at hop 256, 16 kHz)
WARM_FRAMES = 4  # frames rendered and discarded on either side of a segment
FADE_FRAMES = 2  # frames over which one segment hands over to the next


def segment_seed(seed, segment):
    """The excitation seed of ``segment``: ``seed`` itself for segment 0,
    otherwise drawn from (seed, segment)."""
    if segment == 0:
        return int(seed)
    return int(np.random.default_rng([int(seed), int(segment)]).integers(2**63))


@dataclass
class FramePlan:
    """Everything a rendering needs per frame [F]; :meth:`render` makes the
    audio of any stretch of frames.

    ``lar`` [F, p] and ``log_gain`` [F] the frames, ``f0``, ``voicing``,
    ``onset`` the excitation's controls, ``audible`` which frames sound
    (None: all), ``path`` each frame's state, ``shape_coef`` [F, K] the
    residual shapes' coefficients (None without), ``exc`` the excitation
    model, ``colour`` the excitation's colour, ``seed`` the excitation's seed.
    """

    kind: str
    hop: int
    sample_rate: int
    lar: np.ndarray
    log_gain: np.ndarray
    f0: np.ndarray
    voicing: np.ndarray
    onset: np.ndarray
    audible: np.ndarray | None
    path: np.ndarray
    shape_coef: np.ndarray | None
    exc: object
    colour: np.ndarray | None
    seed: int

    @property
    def n_frames(self) -> int:
        return int(self.path.shape[0])

    def render(self, a, b, segment):
        """The audio of frames [a, b) [(b - a) * hop], rendered alone with
        :func:`segment_seed` of ``segment``: excitation, residual shapes,
        filter, level, limiter and silences, as
        :func:`ssgs.synthesis.render.render` does them."""
        hop, sl = self.hop, slice(a, b)
        e = synthetic_excitation(self.kind, self.f0[sl], self.voicing[sl], self.onset[sl], hop, self.sample_rate,
                                 segment_seed(self.seed, segment))
        if self.exc.residual_shape is not None:
            coef = None if self.shape_coef is None else self.shape_coef[sl]
            e = shape_excitation(e, self.exc.residual_shape, hop, index=self.path[sl],
                                 variation=shape_variation(self.exc, coef), colour=self.colour)
        audible = None if self.audible is None else self.audible[sl]
        y, _ = render(self.lar[sl], self.log_gain[sl], e, hop, audible=audible)
        return np.pad(y, (0, (b - a) * hop - y.shape[0]))


def joined_segments(render_frames, n_frames, hop):
    """The audio of ``n_frames`` frames (None: endless), one segment at a
    time: yields arrays of ``SEGMENT_FRAMES * hop`` samples (the last one
    shorter). ``render_frames(a, b, segment)`` renders frames [a, b) alone
    (for an endless rendering, any stretch it is asked for)."""
    carry, i = None, 0
    while n_frames is None or i * SEGMENT_FRAMES < n_frames:
        a, b = i * SEGMENT_FRAMES, (i + 1) * SEGMENT_FRAMES
        last = n_frames is not None and b >= n_frames
        b = b if n_frames is None else min(b, n_frames)
        lo = max(0, a - WARM_FRAMES)
        hi = b if last else b + FADE_FRAMES + WARM_FRAMES
        hi = hi if n_frames is None else min(hi, n_frames)
        y = render_frames(lo, hi, i)[(a - lo) * hop:]
        if carry is not None:
            y[: carry.shape[0]] = fade(carry, y[: carry.shape[0]])
        if last:
            yield y
            return
        carry = y[(b - a) * hop:(b - a + FADE_FRAMES) * hop].copy()
        yield y[: (b - a) * hop]
        i += 1


def fade(out, into):
    """``out`` handing over to ``into`` (as long) at equal power."""
    theta = 0.5 * np.pi * (np.arange(out.shape[0]) + 0.5) / out.shape[0]
    return np.cos(theta) * out + np.sin(theta) * into
