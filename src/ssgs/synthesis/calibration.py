"""Calibration: what the model fits at training by rendering its own
audio along the training's states and comparing it with the training
audio. The smoother (drawn frames move as the training's do), the voicing
offsets (the audio is as periodic as the training's) and the equaliser
(its mean band spectrum is the training's); :func:`calibrate` runs them in
order. Every rendering uses fixed seeds: the calibration is part of the
model, the same for the same training.
"""

from __future__ import annotations

import numpy as np

from ssgs import kernels
from ssgs.excitation_model import KINDS, VOICED_KINDS
from ssgs.features import frame_harmonicity, mel_band_edges, pitch_range, triangular_bands
from ssgs.frame_store import read_rows
from ssgs.residual_shapes import SHAPE_FLOOR
from ssgs.runs import within_sequences
from ssgs.synthesis.trajectory import observation_trajectory, sound_boundaries, zero_phase_smooth
from ssgs.synthesis.voice import render_model

__all__ = [
    "EQUALISER_BOUND",
    "calibrate",
    "calibrate_voicing",
    "calibration_rows",
    "equaliser_bands",
    "equaliser_step",
    "fit_equaliser",
    "fit_smoother",
    "harmonicity_window",
    "mean_band_spectrum",
    "training_harmonicity",
]

EQUALISER_PASSES = 2  # analysis-by-synthesis passes that fit each excitation kind's equaliser
EQUALISER_BANDS = 64  # mel-spaced bands the equaliser compares spectra in (at 16 kHz: 28 Hz apart at the bottom)
EQUALISER_BOUND = float(np.log(10.0**2.4))  # an equaliser's gain stays within +-24 dB (log power, nats)


def equaliser_bands(n_fft, sample_rate, n_bands=EQUALISER_BANDS):
    """Triangular mel-spaced bands over an ``n_fft``-point transform's bins
    from 0 to Nyquist: the weights [n_fft // 2 + 1, n_bands] and the
    bands' centres, as fractions of Nyquist [n_bands]."""
    edges = mel_band_edges(n_bands, sample_rate)
    return triangular_bands(edges, n_fft, sample_rate, fill_empty=False), edges[1:-1] / (0.5 * float(sample_rate))


def mean_band_spectrum(clips, n, sample_rate, n_bands=EQUALISER_BANDS):
    """The mean over frames of each frame's band powers relative to its
    mean power, in log (nats, [n_bands], :func:`equaliser_bands`): frames
    of ``n`` samples (Hann) every ``n // 2`` of each clip (a list of 1-D
    signals), each without its (window-weighted) mean, frames without
    power left out; None when no frame has any (docs/calibration.md says
    why band powers and why without the offset)."""
    bank, _ = equaliser_bands(n, sample_rate, n_bands)
    window = np.hanning(n)
    total, count = 0.0, 0
    for clip in clips:
        clip = np.asarray(clip, dtype=np.float64)
        if clip.shape[0] < n:
            continue
        frames = np.lib.stride_tricks.sliding_window_view(clip, n)[:: n // 2]
        frames = frames - (frames @ window / window.sum())[:, None]  # no offset: nothing at 0 Hz, none leaked
        power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
        mean = power.mean(axis=1, keepdims=True)
        keep = mean[:, 0] > 0
        band = np.log(np.maximum(power[keep] @ bank, SHAPE_FLOOR * mean[keep])) - np.log(mean[keep])
        total = total + band.sum(axis=0)
        count += band.shape[0]
    return total / count if count else None


def equaliser_step(training_bands, rendered_bands, n_bins, sample_rate):
    """One analysis-by-synthesis step of an equaliser: the difference of two
    :func:`mean_band_spectrum` (the training audio's minus the model's
    rendering of the same states), interpolated from the centres of the
    bands that hold a bin of a 2 * (n_bins - 1)-point transform (the
    rendering's frames) to ``n_bins`` bins from 0 to Nyquist (the colour's),
    in log power (nats)."""
    d = np.asarray(training_bands, dtype=np.float64) - np.asarray(rendered_bands, dtype=np.float64)
    bank, centres = equaliser_bands(2 * (n_bins - 1), sample_rate, d.shape[0])
    read = bank.sum(axis=0) > 0  # a band narrower than the transform's bins may hold none: it read nothing
    return np.interp(np.linspace(0.0, 1.0, n_bins), centres[read], d[read])


def median_step(X, lengths):
    """Per dimension, the median absolute change between consecutive frames
    of one sequence."""
    return np.median(np.abs(np.diff(X, axis=0)[within_sequences(X.shape[0], lengths)]), axis=0)


def smoother_sequences(lengths, max_frames=100_000):
    """How many of the first sequences :func:`fit_smoother` needs look at:
    as many as fit in ``max_frames`` (at least one)."""
    return max(1, int(np.searchsorted(np.cumsum(lengths), max_frames, side="right")))


def fit_smoother(X, lengths, drawn, means_along, steps=16, starts=None):
    """Calibrate :func:`zero_phase_smooth` so drawn frames move like the
    training frames and keep their spread.

    The drawn frames (``drawn``: along the training frames' own states,
    ``means_along`` their states' means) are smoothed in two parts, the
    states' means and the deviations from them (the smoother is linear:
    together, the frames smoothed), and each part is scaled back to its
    own spread, per dimension: the deviations about zero, the means about
    their centre. One smoothing coefficient for all dimensions (so the
    states' correlations between dimensions survive) is found by bisection
    at which the median absolute frame-to-frame change of the result
    matches the training frames', in the geometric mean over dimensions.
    The median, not the standard deviation: real frames change
    little most of the time and a lot at onsets, which the smoother keeps.
    Returns [4, D]: the coefficient, the deviations' gain, the means' gain
    and the means' centre; frames that already move no more than the
    training's are left alone (coefficient 0, gains 1). (A long corpus need
    not be read whole: :func:`smoother_sequences`.) ``starts``: where the
    drawn frames' smoothing stops (:func:`sound_boundaries`), as
    generation's does.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.zeros((4, X.shape[1]))
    out[1:3] = 1.0
    out[3] = means_along.mean(axis=0) if means_along.shape[0] else 0.0
    if X.shape[0] < 3 or np.all(lengths < 2):
        return out
    wanted = np.log(np.maximum(median_step(X, lengths), 1e-12))
    parts = (drawn - means_along, means_along - out[3])

    def rescaled(c):
        frames, gains = out[3], []
        for part in parts:
            smoothed = zero_phase_smooth(part, c, starts)
            before, after = np.std(part, axis=0), np.std(smoothed, axis=0)
            gain = np.divide(before, after, out=np.ones_like(before), where=after > 1e-9 * before)
            frames = frames + smoothed * gain
            gains.append(gain)
        return frames, gains

    def excess(c):  # joined sequences: their few boundaries hardly move a median
        return np.mean(np.log(np.maximum(median_step(rescaled(c)[0], lengths), 1e-12)) - wanted)

    if excess(0.0) <= 0.0:
        return out
    lo, hi = 0.0, 0.95
    for _ in range(steps):
        c = 0.5 * (lo + hi)
        lo, hi = (c, hi) if excess(c) > 0.0 else (lo, c)
    c = 0.5 * (lo + hi)
    out[0] = c
    out[1], out[2] = rescaled(c)[1]
    return out


def calibrate(voice, corpus, labels):
    """Fit, in place, the calibrations of ``voice.excitation`` from the
    training ``corpus`` and its frames' most likely states ``labels``: the
    smoother, the voicing offsets, the equaliser, and the voicing offsets
    again (the equaliser moves how periodic the audio reads). The voice's
    derived values are stale afterwards: make a new voice."""
    exc, p = voice.excitation, voice.params
    lengths = corpus.sequence_lengths[: smoother_sequences(corpus.sequence_lengths)]
    n = int(lengths.sum())
    X = read_rows(corpus.frames(), slice(0, n), np.float64)  # the frames the smoother reads, no more
    drawn = observation_trajectory(p, labels[:n], np.random.default_rng(0), smoothing=exc.smoothing,
                                   bounds=voice.observation_range)
    exc.smoother = fit_smoother(X[:n], lengths, drawn, p.means[labels[:n]],
                                starts=sound_boundaries(exc, labels[:n]))
    exc.voicing_offset = calibrate_voicing(voice, corpus, labels)
    exc.equaliser = fit_equaliser(voice, corpus, labels)
    if exc.equaliser is not None:
        exc.voicing_offset = calibrate_voicing(voice, corpus, labels)
    return exc


def calibration_rows(corpus, n_frames, seconds, blocks):
    """The global frames the calibrations read: ``blocks`` stretches spread
    evenly over the ``n_frames`` training frames, ``seconds`` in all (or
    all of them), sorted."""
    n = max(1, min(n_frames, int(seconds * corpus.sample_rate) // corpus.hop_size))
    size = max(1, n // blocks)
    starts = np.unique(np.linspace(0, n_frames - size, min(blocks, max(1, n_frames // size))).astype(np.int64))
    return np.concatenate([np.arange(a, a + size) for a in starts])


def harmonicity_window(corpus):
    """The calibration's window for :func:`ssgs.features.frame_harmonicity`:
    ``frame_size``, widened (as the pitch tracker's) to two periods of the
    lowest pitch searched and a little more."""
    sr = corpus.sample_rate
    return max(corpus.frame_size, int(np.ceil(2 * sr / pitch_range(sr)[0])) + 2)


def training_harmonicity(corpus, rows, threads=1):
    """:func:`ssgs.features.frame_harmonicity` of the training audio at
    global frames ``rows`` (sorted), each stretch of them rebuilt on its
    own (:meth:`ssgs.corpus.Corpus.stretches`)."""
    frame, hop = harmonicity_window(corpus), corpus.hop_size
    out = np.empty(np.asarray(rows).size)
    for piece, audio, frames in corpus.stretches(rows, -(-frame // (2 * hop)) + 1):
        out[piece] = frame_harmonicity(audio, frame, hop, corpus.sample_rate, frames=frames, workers=threads)
    return out


def _rendered_harmonicity(voice, path, kind, offset, frame, threads, fallback):
    """The median harmonicity of the model's sounding frames along ``path``
    with the trial voicing ``offset`` (one rendering, seed 1)."""
    hop = voice.hop
    y, _ = render_model(voice, path, kind, np.random.default_rng(1), voicing_offset=offset)
    h = frame_harmonicity(y, frame, hop, voice.sample_rate, workers=threads)[: path.size]
    heard = np.any(np.pad(y, (0, path.size * hop - len(y))).reshape(path.size, -1) != 0, axis=1)
    h = h[heard[: h.size]]
    h = h[~np.isnan(h)]
    return float(np.median(h)) if h.size else fallback


def calibrate_voicing(voice, corpus, labels, seconds=30.0, blocks=24, steps=5, bound=4.0):
    """Per voiced excitation kind, the voicing-logit offset (within
    +-``bound``) at which the model's own audio along the training's states
    ``labels`` (:func:`calibration_rows`) is as periodic as the training
    audio by :func:`ssgs.features.frame_harmonicity` (median over sounding
    frames), found by bisection in ``steps`` steps. Zeros without a
    sounding frame to read."""
    rows = calibration_rows(corpus, labels.shape[0], seconds, blocks)
    sounding = corpus.silent_frames(rows) == 0
    if not sounding.any():
        return np.zeros(len(VOICED_KINDS))
    threads = kernels.resolve_threads(voice.n_threads)
    heard_training = training_harmonicity(corpus, rows, threads)
    keep = sounding & ~np.isnan(heard_training)
    if not keep.any():
        return np.zeros(len(VOICED_KINDS))
    target = float(np.median(heard_training[keep]))
    path, frame = labels[rows], harmonicity_window(corpus)
    offsets = []
    for kind in VOICED_KINDS:
        lo, hi = -bound, bound
        for _ in range(steps):
            mid = 0.5 * (lo + hi)
            below = _rendered_harmonicity(voice, path, kind, mid, frame, threads, target) < target
            lo, hi = (mid, hi) if below else (lo, mid)
        offsets.append(0.5 * (lo + hi))
    return np.array(offsets)


def fit_equaliser(voice, corpus, labels, seconds=30.0, blocks=24, passes=EQUALISER_PASSES):
    """Per excitation kind, the equaliser: the log power spectrum to add to
    the kind's colour so that the model's audio along the training's states
    ``labels`` (:func:`calibration_rows`) has, on average over frames, the
    training audio's band spectrum over the same frames
    (:func:`mean_band_spectrum`, frames of 2 * hop). Each of ``passes``
    renderings (seeds 1, 2, ...) adds the difference that is left, within
    +-EQUALISER_BOUND. [len(KINDS), hop // 2 + 1] float16; None without a
    sounding frame among those read. Sets ``voice.excitation.equaliser``
    as it goes (the renderings are equalised by it)."""
    hop, sr = voice.hop, voice.sample_rate
    rows = calibration_rows(corpus, labels.shape[0], seconds, blocks)
    if not np.any(corpus.silent_frames(rows) == 0):
        return None
    pieces = [audio[frames[0] * hop: (frames[-1] + 1) * hop] for _, audio, frames in corpus.stretches(rows, 1)]
    target = mean_band_spectrum(pieces, 2 * hop, sr)
    if target is None:
        return None
    exc, path, bins = voice.excitation, labels[rows], hop // 2 + 1
    equaliser = np.zeros((len(KINDS), bins))
    exc.equaliser = equaliser.astype(np.float16)
    for k, kind in enumerate(KINDS):
        for seed in range(1, passes + 1):
            y, _ = render_model(voice, path, kind, np.random.default_rng(seed))
            rendered = mean_band_spectrum([y], 2 * hop, sr)
            if rendered is None:
                break
            # the colour is taken out of the excitation: more colour, less gain
            step = equaliser_step(target, rendered, bins, sr)
            equaliser[k] = np.clip(equaliser[k] - step, -EQUALISER_BOUND, EQUALISER_BOUND)
            exc.equaliser = equaliser.astype(np.float16)
    return exc.equaliser
