"""Fidelity: the training audio replayed (fidelity 1) or blended with the
model's rendering of the same passage (0 < fidelity < 1).

A blend follows the training audio from a start point: a share
``fidelity`` of the passage's stretches (:func:`passage_stretches`) is its
own audio, the rest the model's rendering of the passage along its
decoded states, crossfaded at equal power. The same seed keeps, at a
higher fidelity, every stretch a lower one kept.
"""

from __future__ import annotations

import numpy as np
import scipy.special

from ssgs.checks import check_float
from ssgs.features import voicing_from_logit, voicing_logit
from ssgs.residual_shapes import whitened_deviations
from ssgs.synthesis.excitation import shape_coefficients
from ssgs.synthesis.paths import decoded_path
from ssgs.synthesis.render import CEILING, ramp_between_centres, smooth_gain
from ssgs.synthesis.segments import SEGMENT_FRAMES, FramePlan, joined_segments
from ssgs.synthesis.trajectory import audible_frames, draw_frames, pluck_onsets

__all__ = [
    "DecodedPaths",
    "PassageAudio",
    "blend",
    "blend_segments",
    "blended_gain_scores",
    "crossfade",
    "passage_controls",
    "passage_plan",
    "passage_stretches",
    "render_passage",
    "replay",
    "replay_segments",
    "replay_states",
    "resolve_start",
]

STRETCH_SECONDS = (0.25, 1.0)  # a blend switches between the passage and the model after this long (min, max)


def passage_stretches(path, rng, min_frames, max_frames=None):
    """For a blend: one uniform draw per stretch of a passage, repeated over
    its frames [F]. A stretch ends at the first change of state at least
    ``min_frames`` after it began (so a switch between the passage's audio
    and the model's falls where the sound changes anyway), or after
    ``max_frames`` (default 4 x min_frames) without one. Frames whose draw
    is below the fidelity are the passage's own audio: the same seed keeps,
    at a higher fidelity, every stretch a lower one kept."""
    path = np.asarray(path)
    F = path.shape[0]
    max_frames = 4 * min_frames if max_frames is None else max_frames
    bounds = [0]
    for c in (np.flatnonzero(np.diff(path)) + 1).tolist() + [F]:
        while c - bounds[-1] > max_frames:
            bounds.append(bounds[-1] + max_frames)
        if c - bounds[-1] >= min_frames or c == F:
            bounds.append(c)
    bounds = np.unique(bounds)
    return np.repeat(rng.random(len(bounds) - 1), np.diff(bounds))


def blended_gain_scores(params, exc, path, log_gain, silent, fresh, fidelity):
    """Gain scores for a blend (see :func:`audible_frames`): the passage's
    frames' scores mixed with fresh ones, ``f * z_a + sqrt(1 - f^2) * z_b``,
    so a blended frame goes silent with the passage's silences more often
    as the fidelity rises, and as often as the state's share at any
    fidelity. A passage frame's score is its place in its state's
    distribution of levels: a silent frame in the middle of the state's
    silent share, a sounding one above it, by its standardised level."""
    g = params.means.shape[1] - 2
    share = exc.silence[path].astype(np.float64)
    z = (log_gain - params.means[path, g]) / np.sqrt(params.covars[path, g, g])
    u = np.where(silent, 0.5 * share, share + (1.0 - share) * scipy.special.ndtr(z))
    z_a = scipy.special.ndtri(np.clip(u, 1e-12, 1.0 - 1e-12))
    f = float(fidelity)
    return f * z_a + np.sqrt(max(0.0, 1.0 - f * f)) * fresh


class DecodedPaths:
    """The decoded state path of each training sequence of ``corpus``
    (:func:`ssgs.synthesis.paths.decoded_path` under ``voice``), each
    computed once."""

    def __init__(self, voice, corpus, decoder="sample"):
        self.voice, self.corpus, self.decoder = voice, corpus, decoder
        self._paths = {}

    def __call__(self, index):
        if index not in self._paths:
            offsets = self.corpus.sequence_offsets
            X = self.corpus.at_rows("observations", slice(offsets[index], offsets[index + 1])).astype(np.float64)
            self._paths[index] = decoded_path(self.voice, X, self.decoder)
        return self._paths[index]


def resolve_start(corpus, start, rng):
    """(sequence index, start sample) from ``start`` ((file_index, seconds))
    or, when None, drawn by ``rng`` (a sequence by its length, a frame in
    it). ValueError naming the fault for a start outside the corpus."""
    lengths = corpus.sequence_samples
    if start is None:
        index = int(rng.choice(len(lengths), p=lengths / lengths.sum()))
        frame = int(rng.integers(corpus.sequence_lengths[index]))
        return index, min(frame * corpus.hop_size, int(lengths[index]) - 1)
    try:
        index, seconds = start
    except (TypeError, ValueError):
        raise ValueError(f"start must be (file_index, seconds), got {start!r}") from None
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(lengths):
        raise ValueError(f"start file index must be in 0..{len(lengths) - 1}, got {index!r}")
    seconds = check_float("start seconds", seconds, 0.0)
    sample = int(round(seconds * corpus.sample_rate))
    if sample >= lengths[index]:
        raise ValueError(f"start {seconds} s is past the end of file {index} "
                         f"({lengths[index] / corpus.sample_rate:.2f} s long)")
    return int(index), sample


def frames_from(corpus, index, frame, n_frames):
    """[(sequence, first frame, last frame)] covering ``n_frames`` from a
    point, continuing into the next sequences (and round to the first)."""
    pieces = []
    while n_frames > 0:
        take = min(n_frames, int(corpus.sequence_lengths[index]) - frame)
        pieces.append((index, frame, frame + take))
        n_frames -= take
        index = (index + 1) % len(corpus.sequence_lengths)
        frame = 0
    return pieces


class PassageAudio:
    """The training audio of ``corpus`` from (``index``, ``sample``) on,
    across files and round to the first, read a stretch at a time (the
    last file rebuilt is kept for the next read)."""

    def __init__(self, corpus, index, sample):
        self.corpus, self.index, self.sample = corpus, int(index), int(sample)
        self._rebuilt = (None, None)

    def _sequence(self, index):
        if self._rebuilt[0] != index:
            self._rebuilt = (None, None)
            self._rebuilt = (index, self.corpus.rebuild_sequence(index))
        return self._rebuilt[1]

    def read(self, s0, s1):
        """Samples [s0, s1) of the passage."""
        lengths = self.corpus.sequence_samples
        index, sample, pos, out = self.index, self.sample, 0, []
        while pos < s1:
            take = int(lengths[index]) - sample
            if pos + take > s0:
                lo, hi = max(s0 - pos, 0), min(s1 - pos, take)
                out.append(self._sequence(index)[sample + lo:sample + hi])
            pos += take
            index, sample = (index + 1) % len(lengths), 0
        return np.concatenate(out) if out else np.zeros(0)


def replay_states(corpus, paths, index, sample, n):
    """The decoded states (``paths``: a :class:`DecodedPaths`) of the frames
    ``n`` samples of training audio from (``index``, ``sample``) cover."""
    lengths, hop, states = corpus.sequence_samples, corpus.hop_size, []
    while n > 0:
        take = min(n, int(lengths[index]) - sample)
        states.append(paths(index)[sample // hop:-(-(sample + take) // hop)])
        n -= take
        index, sample = (index + 1) % len(lengths), 0
    return np.concatenate(states)


def replay(corpus, paths, index, sample, n):
    """The training audio from (``index``, ``sample``), ``n`` samples,
    across files, and its decoded states (``paths``: a :class:`DecodedPaths`)."""
    return PassageAudio(corpus, index, sample).read(0, n), replay_states(corpus, paths, index, sample, n)


def replay_segments(corpus, index, sample, n):
    """:func:`replay`'s audio, a segment (SEGMENT_FRAMES hops) at a time."""
    audio, step = PassageAudio(corpus, index, sample), SEGMENT_FRAMES * corpus.hop_size
    for s0 in range(0, n, step):
        yield audio.read(s0, min(n, s0 + step))


def blend_segments(voice, corpus, paths, index, sample, n, fidelity, kind, rng):
    """0 < fidelity < 1: ``n`` samples from (``index``, ``sample``): the
    passage's own audio in a share ``fidelity`` of its stretches, the
    model's rendering of the passage in the rest (:func:`passage_plan`,
    rendered in segments: :func:`ssgs.synthesis.segments.joined_segments`),
    crossfaded at equal power over one hop. Returns (segments, states,
    offset): the audio on the frame grid a segment at a time, of which the
    first ``offset`` samples come before ``sample`` and what follows the
    ``n`` after them is to be dropped."""
    hop = corpus.hop_size
    first, offset = sample // hop, sample % hop
    n_frames = -(-(n + offset) // hop)
    pieces = frames_from(corpus, index, first, n_frames)
    offsets = corpus.sequence_offsets
    rows = np.concatenate([np.arange(offsets[i] + a, offsets[i] + b) for i, a, b in pieces])
    path = np.concatenate([paths(i)[a:b] for i, a, b in pieces])
    # drawn first, from the same seed the same at every fidelity: a higher
    # fidelity keeps every stretch a lower one kept
    shortest, longest = (max(1, int(round(t * corpus.sample_rate / hop))) for t in STRETCH_SECONDS)
    own = (passage_stretches(path, rng, shortest, longest) < fidelity).astype(np.float64)
    plan = passage_plan(voice, corpus, rows, path, fidelity, kind, rng)
    return _blended(plan, own, PassageAudio(corpus, index, first * hop), hop), path, offset


def _blended(plan, own, audio, hop):
    pos = 0
    for model in joined_segments(plan.render, plan.n_frames, hop):
        a, b = pos // hop, (pos + model.shape[0]) // hop
        lo, hi = max(0, a - 1), min(own.shape[0], b + 1)
        share = ramp_between_centres(own[lo:hi], hop)[(a - lo) * hop:(b - lo) * hop]
        yield crossfade(audio.read(pos, pos + model.shape[0]), model, share, hop // 2)
        pos += model.shape[0]


def blend(voice, corpus, paths, index, sample, n, fidelity, kind, rng):
    """:func:`blend_segments` whole. Returns (audio, states)."""
    segments, path, offset = blend_segments(voice, corpus, paths, index, sample, n, fidelity, kind, rng)
    return np.concatenate(list(segments))[offset:offset + n], path


def crossfade(real, model, share, width):
    """``share`` (per sample, 0..1) of the training audio ``real``, the rest
    the ``model``'s, at equal power (the two are uncorrelated). Where the
    share is 1 the output is the training audio exactly, whatever its level;
    elsewhere the model's part is turned down smoothly
    (:func:`ssgs.synthesis.render.smooth_gain` over ``width`` samples) just
    enough that no sample exceeds the larger of the ceiling and the
    training audio's own part: the replayed audio is never bent."""
    a = np.sin(0.5 * np.pi * share) * real
    b = np.where(share < 1.0, np.cos(0.5 * np.pi * share), 0.0) * model
    bound = np.maximum(CEILING, np.abs(a))
    with np.errstate(divide="ignore"):
        allowed = (bound - a * np.sign(b)) / np.abs(b)  # the largest g with |a + g b| <= bound
    if np.all(allowed >= 1.0):
        return a + b
    return a + smooth_gain(allowed, width) * b


def passage_plan(voice, corpus, rows, path, fidelity, kind, rng):
    """The model's rendering of training frames ``rows`` along their decoded
    states ``path``, planned per frame
    (:class:`ssgs.synthesis.segments.FramePlan`): frames drawn from the
    states, deviating from the state's mean as the passage's own frames do
    in proportion to the fidelity (the rest drawn afresh), silent where the
    passage's gain scores mixed with fresh ones say so
    (:func:`blended_gain_scores`), sounded with the passage's own pitch and
    voicing."""
    p, params, exc = voice.lpc_order, voice.params, voice.excitation
    obs, gain_score, draws = draw_frames(params, exc, path, rng, bounds=voice.observation_range)
    X = corpus.at_rows("observations", rows).astype(np.float64)
    mean = params.means[path]
    obs = mean + fidelity * (X - mean) + np.sqrt(1.0 - fidelity**2) * (obs - mean)
    deviations = None  # what the shapes follow, blended as the frames are
    if exc.shape_regression is not None:
        # (a passage's frame can lie far from its decoded state's mean: an
        # outlier predicts no more than a draw four deviations out would)
        own = np.clip(whitened_deviations(X, params.means, params.covars, path), -4.0, 4.0)
        deviations = fidelity * own + np.sqrt(1.0 - fidelity**2) * draws
    if voice.observation_range is not None:
        obs = np.clip(obs, voice.observation_range[0], voice.observation_range[1])
    f0, voicing, onset = passage_controls(exc, corpus, rows, path, kind)
    seed = int(rng.integers(2**63))
    coef = shape_coefficients(exc, path, rng, deviations=deviations)
    silent = corpus.silent_frames(rows) == 1
    score = blended_gain_scores(params, exc, path, X[:, p], silent, gain_score, fidelity)
    return FramePlan(kind, voice.hop, corpus.sample_rate, obs[:, :p], obs[:, p], f0, voicing, onset,
                     audible_frames(exc, path, score), np.asarray(path), coef, exc, voice.colour(kind), seed)


def render_passage(voice, corpus, rows, path, fidelity, kind, rng):
    """:func:`passage_plan` rendered whole [len(rows) * hop]."""
    return passage_plan(voice, corpus, rows, path, fidelity, kind, rng).render(0, len(rows), 0)


def passage_controls(exc, corpus, rows, path, kind):
    """The excitation's controls for training frames ``rows`` (states
    ``path``): their own F0 (unvoiced frames: the state's most common
    pitch), their own periodicity as voicing (with the model's offset for
    ``kind``), and the plucks :func:`ssgs.synthesis.trajectory.pluck_onsets`
    places along them. Returns (f0, voicing, onset), one per frame."""
    f0 = corpus.at_rows("f0", rows).astype(np.float64)
    most_common = exc.pitch_log_f0[path, np.argmax(exc.pitch_histogram[path], axis=1)].astype(np.float64)
    f0 = np.where(f0 > 0, f0, np.exp(most_common))
    voicing = voicing_from_logit(voicing_logit(corpus.at_rows("periodicity", rows)) + exc.offset_for(kind))
    return f0, voicing, pluck_onsets(voicing, f0)
