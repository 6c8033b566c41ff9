"""Residual shapes: what the all-pole envelope leaves in the residual.

A frame's shape is the log power spectrum of its residual hop (zero mean
over frequency) at SHAPE_BINS frequencies from 0 to Nyquist. Each state
keeps the mean of its frames' shapes; the frames stray from it along a few
principal components, partly predicted from the frame's own envelope and
level (a ridge regression per state). Generation gives the synthetic
excitation these shapes (:mod:`ssgs.synthesis.excitation`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ssgs.frame_store import read_rows
from ssgs.runs import sequence_batches, within_sequences

__all__ = [
    "SHAPE_BINS",
    "batched_lag1_correlation",
    "fit_shape_regression",
    "fit_shape_variation",
    "frame_spectral_shapes",
    "lag1_correlation",
    "resample_bins",
    "shape_from_sums",
    "shape_sums",
    "spectral_shape",
    "state_spectral_shape",
    "whitened_deviations",
]

SHAPE_BINS = 65  # residual shapes are kept at 65 frequencies from 0 to Nyquist (125 Hz apart at 16 kHz)
SHAPE_COMPONENTS = 8  # principal directions in which a frame's residual shape strays from its state's
SHAPE_REGRESSED = 4  # of those, how many may be predicted from the frame's own envelope and level (the first, largest)
SHAPE_RIDGES = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)  # ridge penalties (in frames' worth) cross-validation picks from
SHAPE_FOLDS = 5  # folds of that cross-validation, each made of contiguous stretches of frames
SHAPE_FLOOR = 1e-12  # -120 dB below the frame's mean power: bins with nothing in them stay finite


def resample_bins(values, n_out):
    """Linear interpolation along the last axis from its bins, evenly spaced
    from 0 to Nyquist, to ``n_out`` bins spaced the same way."""
    n_in = values.shape[-1]
    pos = np.arange(n_out) * ((n_in - 1) / (n_out - 1))
    lo = np.minimum(pos.astype(np.int64), n_in - 2)
    frac = pos - lo
    return (1.0 - frac) * values[..., lo] + frac * values[..., lo + 1]


def spectral_shape(frames):
    """Log power spectrum of each row of ``frames`` [T, n] (Hann window,
    floored 120 dB below the row's mean), minus its mean over frequency:
    [T, n // 2 + 1] nats. Rows without power are NaN. Not smoothed across
    frequency (docs/synthesis.md says why)."""
    frames = np.asarray(frames, dtype=np.float64)
    power = np.abs(np.fft.rfft(frames * np.hanning(frames.shape[1]), axis=1)) ** 2
    mean = power.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        log = np.log(np.maximum(power, SHAPE_FLOOR * mean))
        log -= log.mean(axis=1, keepdims=True)
    log[mean[:, 0] <= 0] = np.nan
    return log


def frame_spectral_shapes(residual, chunk=8192):
    """Each residual hop's :func:`spectral_shape` at SHAPE_BINS frequencies,
    float32 [T, SHAPE_BINS] (NaN rows for silent hops); in chunks of
    frames, no float64 copy of the residual."""
    out = np.empty((residual.shape[0], SHAPE_BINS), np.float32)
    for s0 in range(0, residual.shape[0], chunk):
        out[s0 : s0 + chunk] = resample_bins(spectral_shape(residual[s0 : s0 + chunk]), SHAPE_BINS)
    return out


def state_spectral_shape(frame_shapes, posteriors):
    """Per-state mean of the frames' shapes (:func:`frame_spectral_shapes`),
    each frame weighted by its posterior; silent frames do not count (states
    with no sounding frame get a flat shape). [N, SHAPE_BINS]"""
    return shape_from_sums(*shape_sums(frame_shapes, posteriors))


def shape_sums(frame_shapes, posteriors):
    """The sums :func:`state_spectral_shape` divides, over these frames:
    the posterior-weighted shapes [N, SHAPE_BINS] and the weights [N] of
    the sounding frames (summed over batches of frames, they give the
    mean over all)."""
    sounding = ~np.isnan(frame_shapes[:, 0])
    w = _sounding_rows(posteriors, sounding)
    return w.T @ _sounding_rows(frame_shapes, sounding).astype(np.float64), w.sum(axis=0)


def shape_from_sums(num, den):
    """Each state's mean shape from :func:`shape_sums` (flat without weight)."""
    return np.divide(num, den[:, None], out=np.zeros_like(num), where=den[:, None] > 0)


def _sounding_rows(a, sounding):
    """``a``'s sounding rows: ``a`` itself when every row sounds (no copy;
    the same values in the same layout, so the same products)."""
    return a if sounding.all() else a[sounding]


def _sounding(frame_shapes, batches):
    """[T] bool: which frames have a shape (are not silent), read a batch of
    rows at a time."""
    out = np.empty(frame_shapes.shape[0], bool)
    for rows, _ in batches:
        out[rows] = ~np.isnan(read_rows(frame_shapes, rows)[:, 0])
    return out


def _deviations(frame_shapes, labels, state_shapes, sounding, chunk=8192):
    """Each sounding frame's shape minus its state's (float64 [T, B], zero
    rows where silent), filled in chunks of frames: no float64 copies of
    all the shapes beside it."""
    out = np.empty(frame_shapes.shape, np.float64)
    for s0 in range(0, out.shape[0], chunk):
        rows = slice(s0, s0 + chunk)
        out[rows] = np.where(sounding[rows, None], np.nan_to_num(frame_shapes[rows].astype(np.float64))
                             - state_shapes[labels[rows]], 0.0)
    return out


def lag1_correlation(a, b, default):
    """Per column, the correlation of paired rows ``a`` and ``b`` (``default``
    where either has no variance), clipped to [0, 0.98]."""
    return batched_lag1_correlation(lambda _: (a, b), [None], default, least=-1)


def batched_lag1_correlation(pairs, batches, default, least=0):
    """:func:`lag1_correlation` of the paired rows ``pairs(batch)`` gives
    for each of ``batches``, all batches' rows together, in two passes (the
    means, then the centred sums) so no batch's rows are held beside
    another's; None when there are ``least`` pairs or fewer. One batch
    gives the bits a single call would."""
    count, sa, sb = 0, 0.0, 0.0
    for batch in batches:
        a, b = pairs(batch)
        count, sa, sb = count + a.shape[0], sa + a.sum(0), sb + b.sum(0)
    if count <= least:
        return None
    ma, mb = sa / count, sb / count
    saa = sbb = sab = 0.0
    for batch in batches:
        a, b = pairs(batch)
        a, b = a - ma, b - mb
        saa, sbb, sab = saa + (a * a).sum(0), sbb + (b * b).sum(0), sab + (a * b).sum(0)
    den = np.sqrt(saa * sbb)
    return np.clip(np.where(den > 0, sab / np.where(den > 0, den, 1.0), default), 0.0, 0.98)


def whitened_deviations(frames, means, covars, states, chol=None):
    """Each frame's deviation from its state's mean, whitened by the state's
    covariance: ``L^-1 (x - mean)`` with ``L`` the covariance's Cholesky
    factor (``chol`` [N, D, D], when the caller has it). A frame drawn from
    its state reads N(0, I). [F, D]"""
    states = np.asarray(states)
    chol = np.linalg.cholesky(covars) if chol is None else chol
    out = np.empty(frames.shape, dtype=np.float64)
    order = np.argsort(states, kind="stable")
    for rows in np.split(order, np.flatnonzero(np.diff(states[order])) + 1):
        if rows.size:  # (one state's frames at a time: no float64 copy of them all)
            s = states[rows[0]]
            out[rows] = scipy.linalg.solve_triangular(chol[s], (frames[rows].astype(np.float64) - means[s]).T,
                                                      lower=True).T
    return out


def blocked_folds(n_frames, folds):
    """[n_frames] fold of each frame for a blocked cross-validation: the
    frames cut into n_frames // 200 contiguous stretches (at least
    ``folds``, at most 50: 200 frames each up to 10,000 frames) dealt to the
    folds in turn, so that neighbouring frames, nearly alike, seldom test
    each other. ``folds`` >= 2."""
    stretches = int(np.clip(n_frames // 200, folds, 50))
    return (np.arange(n_frames) * stretches // max(n_frames, 1)) % folds


def fit_shape_regression(coef, labels, frames, means, covars, n_states, index=None, ridges=SHAPE_RIDGES,
                         folds=SHAPE_FOLDS):
    """How a frame's shape coefficients ``coef`` [T, R] (sounding frames
    only, their states ``labels``) follow its observation: per state, a
    ridge regression on the frame's deviation from its state's mean
    whitened by the state's covariance (:func:`whitened_deviations` of
    ``frames`` under ``means`` and ``covars``; rows ``index`` of ``frames``
    are coef's, all of them when None), without intercept (the
    coefficients are deviations from the state's shape already).
    Generation predicts from a frame's standardised draw, which is N(0, I)
    as the training frames' whitened deviations are.

    Each component's penalty (in frames' worth) is the one of ``ridges``
    with the least error in a blocked cross-validation (``folds`` folds of
    contiguous stretches: :func:`blocked_folds`), pooled over the states; a
    component that no penalty predicts better than zero follows nothing
    (its rows stay zero). A state with fewer than 2 D frames is not
    regressed.

    The spread kept is what keeps each state's spread of coefficients at
    generation, where the prediction is made from N(0, I) draws:
    spread^2 = mean(c^2) - |regression|^2 (a regression that alone would
    exceed mean(c^2) is scaled down to it, its spread zero).

    Returns (regression [N, R, D], or None when no component follows the
    frame; spread [N, R], of the coefficients where nothing is predicted;
    what the fit leaves of each coefficient [T, R])."""
    coef = np.asarray(coef, np.float64)
    labels = np.asarray(labels)
    T, R = coef.shape
    D = frames.shape[1]
    index = np.arange(T) if index is None else np.asarray(index)
    chol = np.linalg.cholesky(covars)
    fold = blocked_folds(T, folds)
    eye = np.eye(D)
    order = np.argsort(labels, kind="stable")
    groups = [rows for rows in np.split(order, np.flatnonzero(np.diff(labels[order])) + 1) if rows.size]

    def whitened(rows):  # one state's frames at a time: no [T, D] array
        return whitened_deviations(frames[index[rows]], means, None, labels[rows], chol=chol)

    fitted = [rows for rows in groups if rows.size >= 2 * D]
    err = np.zeros((len(ridges), R))
    base = np.zeros(R)
    for rows in fitted:
        w, c, f = whitened(rows), coef[rows], fold[rows]
        for k in range(folds):
            test = f == k
            if not test.any():
                continue
            train = ~test
            gram, cross = w[train].T @ w[train], w[train].T @ c[train]
            base += (c[test] ** 2).sum(axis=0)
            for j, ridge in enumerate(ridges):
                err[j] += ((c[test] - w[test] @ np.linalg.solve(gram + ridge * eye, cross)) ** 2).sum(axis=0)
    best = np.argmin(err, axis=0)
    follows = err[best, np.arange(R)] < base
    penalty = np.asarray(ridges, np.float64)[best]
    regression = np.zeros((n_states, R, D))
    spread = np.zeros((n_states, R))
    left = coef.copy()
    for rows in groups:
        s, c = labels[rows[0]], coef[rows]
        mean_square = np.mean(c**2, axis=0)
        if rows.size >= 2 * D and follows.any():
            w = whitened(rows)
            gram, cross = w.T @ w, w.T @ c
            for j in np.flatnonzero(follows):
                regression[s, j] = np.linalg.solve(gram + penalty[j] * eye, cross[:, j])
            predicted = np.sum(regression[s] ** 2, axis=1)
            over = predicted > mean_square  # (the prediction alone is scaled to the state's spread)
            regression[s, over] *= np.sqrt(mean_square[over] / predicted[over])[:, None]
            left[rows] = c - w @ regression[s].T
        spread[s] = np.sqrt(np.maximum(mean_square - np.sum(regression[s] ** 2, axis=1), 0.0))
    return (regression if follows.any() else None), spread, left


def fit_shape_variation(frame_shapes, labels, state_shapes, lengths=None, k=SHAPE_COMPONENTS, observations=None,
                        n_regressed=SHAPE_REGRESSED):
    """How the training frames' residual shapes stray from their states':
    the ``k`` principal directions of the deviations (unit norm, signs
    fixed so each direction's largest entry is positive), each state's
    standard deviation along them, and their frame-to-frame correlation
    (standardised by the state's spread) over consecutive sounding frames
    of one sequence. With ``observations`` ((frames [T, D], the states'
    means [N, D] and covariances [N, D, D])), the first ``n_regressed``
    components' coefficients are also regressed on the frames' whitened
    deviations from their states' means (:func:`fit_shape_regression`):
    the spread is then what a draw adds to the prediction, and the
    correlation that of what the regression leaves. Returns
    (components [k, B], spread [N, k], correlation [k], regression
    [N, R, D] or None), or None without sounding frames."""
    lengths = None if lengths is None else np.asarray(lengths, np.int64)
    batches = sequence_batches([frame_shapes.shape[0]] if lengths is None else lengths)
    sounding = _sounding(frame_shapes, batches)
    if sounding.sum() < 2:
        return None

    def deviations(rows):
        return _deviations(read_rows(frame_shapes, rows), labels[rows], state_shapes, sounding[rows])

    gram = 0.0
    for rows, _ in batches:
        kept = _sounding_rows(deviations(rows), sounding[rows])
        gram = gram + kept.T @ kept.copy()  # two operands, as a gemm (not A.T A's syrk)
    del kept
    values, vectors = np.linalg.eigh(gram)
    k = min(k, frame_shapes.shape[1])
    components = vectors[:, ::-1][:, :k].T
    components *= np.where(components[np.arange(k), np.argmax(np.abs(components), axis=1)] < 0, -1.0, 1.0)[:, None]
    coef = np.empty((frame_shapes.shape[0], k))
    for rows, _ in batches:
        coef[rows] = deviations(rows) @ components.T
    N = state_shapes.shape[0]
    count = np.bincount(labels[sounding], minlength=N)
    spread = np.sqrt(np.stack([np.bincount(labels[sounding], weights=coef[sounding, j] ** 2, minlength=N)
                               for j in range(k)], axis=1) / np.maximum(count, 1)[:, None])
    regression = None
    R = min(n_regressed, k)
    if observations is not None and R > 0:
        frames, means, covars = observations
        rows = np.flatnonzero(sounding)
        regression, drawn_spread, left = fit_shape_regression(coef[rows, :R], labels[rows], frames, means, covars,
                                                              N, index=rows)
        if regression is not None:
            spread[:, :R] = drawn_spread
            coef[rows, :R] = left

    def pairs(batch):  # of the standardised draws generation correlates (coefficient / the state's spread)
        rows, sequences = batch
        s = sounding[rows]
        pair = s[1:] & s[:-1] & within_sequences(s.shape[0], None if lengths is None else lengths[sequences])
        z = coef[rows] / np.where(spread[labels[rows]] > 0, spread[labels[rows]], 1.0)
        return z[:-1][pair], z[1:][pair]

    correlation = batched_lag1_correlation(pairs, batches, 0.0, least=2)
    correlation = np.zeros(k) if correlation is None else correlation
    return components, spread, correlation, regression

