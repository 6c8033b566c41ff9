"""Residual shapes (ssgs.residual_shapes): each frame's spectral shape, how
it varies about its state's and how that follows the frame; and what the
shapes put back in generated audio."""

import numpy as np
import scipy.signal
from numpy.testing import assert_allclose, assert_array_equal

from ssgs import SpectralStateGuidedSynthesis
from ssgs.residual_shapes import (SHAPE_BINS, fit_shape_regression, fit_shape_variation, spectral_shape,
                                  whitened_deviations)


def test_spectral_shape_of_white_and_coloured_noise(rng):
    hop = 256
    white = spectral_shape(rng.standard_normal((2000, hop)))
    assert white.shape == (2000, hop // 2 + 1)
    assert_allclose(white.mean(axis=1), 0.0, atol=1e-9)  # zero mean over frequency, frame by frame
    mean_white = white[:, 4:-4].mean(axis=0)  # away from DC and Nyquist (a real bin there: another bias)
    # flat within ~1 dB: a log periodogram's bias is the same in every bin, and
    # its spread (1.28 nats per bin) over 2000 frames leaves 0.03 nats
    assert np.ptp(mean_white) < 0.25
    # an FIR with a deep notch at 2 kHz: the shape follows its response
    b = scipy.signal.firwin2(65, [0, 0.2, 0.25, 0.3, 1], [1, 1, 0.01, 1, 1])
    coloured = scipy.signal.lfilter(b, [1.0], rng.standard_normal(400 * hop + 64))[64:].reshape(400, hop)
    shape = spectral_shape(coloured).mean(axis=0)
    freqs = np.arange(hop // 2 + 1) / (hop // 2)
    response = np.log(np.abs(scipy.signal.freqz(b, worN=freqs * np.pi)[1]) ** 2)
    notch, flank = np.argmin(np.abs(freqs - 0.25)), np.abs(freqs - 0.1) < 0.03
    assert abs(np.argmin(shape) - notch) <= 1
    depth, true_depth = shape[flank].mean() - shape[notch], response[flank].mean() - response[notch]
    assert 0.85 * true_depth < depth < true_depth  # the window's leakage only fills it in a little
    assert np.all(np.isnan(spectral_shape(np.zeros((2, hop)))))  # silent frames have no shape


def test_fit_shape_variation_recovers_known_directions(rng):
    B, T, N = SHAPE_BINS, 6000, 3
    c1 = np.linspace(-1, 1, B)  # a tilt
    c2 = np.cos(np.linspace(0, 3 * np.pi, B))
    c2 -= c1 * (c1 @ c2) / (c1 @ c1)
    c1, c2 = c1 / np.linalg.norm(c1), c2 / np.linalg.norm(c2)
    labels = rng.integers(0, N, T)
    state_shapes = rng.normal(0, 1, (N, B))
    spread = np.array([[3.0, 1.0], [1.5, 0.5], [0.5, 0.2]])
    a = scipy.signal.lfilter([np.sqrt(1 - 0.8**2)], [1, -0.8], rng.standard_normal((T, 2)), axis=0)
    shapes = state_shapes[labels] + (a * spread[labels]) @ np.stack([c1, c2])
    shapes[::50] = np.nan  # silent frames do not count
    components, got_spread, correlation, regression = fit_shape_variation(shapes, labels, state_shapes,
                                                                            lengths=[T], k=2)
    assert abs(components[0] @ c1) > 0.999 and abs(components[1] @ c2) > 0.99
    assert np.all(components[np.arange(2), np.argmax(np.abs(components), axis=1)] > 0)  # signs fixed
    assert_allclose(got_spread, spread, rtol=0.1)
    assert_allclose(correlation, 0.8, atol=0.05)
    assert regression is None  # nothing to regress on
    assert fit_shape_variation(np.full((5, B), np.nan), labels[:5], state_shapes) is None
    # the same shapes beside frames they do not follow: no component is regressed, nothing changes
    unrelated = rng.standard_normal((T, 5))
    again = fit_shape_variation(shapes, labels, state_shapes, lengths=[T], k=2,
                                  observations=(unrelated, np.zeros((N, 5)), np.tile(np.eye(5), (N, 1, 1))))
    assert again[3] is None
    for got, want in zip(again[:3], (components, got_spread, correlation)):
        assert_array_equal(got, want)


def test_whitened_deviations_against_a_solve_per_frame(rng):
    N, D, F = 3, 4, 50
    means = rng.normal(0, 1, (N, D))
    A = rng.normal(0, 1, (N, D, D))
    covars = A @ A.transpose(0, 2, 1) + 0.5 * np.eye(D)
    states = rng.integers(0, N, F)
    frames = rng.normal(0, 2, (F, D))
    got = whitened_deviations(frames, means, covars, states)
    for f in range(F):
        L = np.linalg.cholesky(covars[states[f]])
        assert_allclose(got[f], np.linalg.solve(L, frames[f] - means[states[f]]), rtol=1e-10, atol=1e-12)
    # frames drawn from their states read N(0, I)
    many = rng.integers(0, N, 60000)
    drawn = means[many] + np.einsum("fij,fj->fi", np.linalg.cholesky(covars)[many], rng.standard_normal((60000, D)))
    assert_allclose(np.cov(whitened_deviations(drawn, means, covars, many).T), np.eye(D), atol=0.03)


def test_fit_shape_regression_finds_what_follows_the_frame(rng):
    """A coefficient that follows the frame's deviation (a known regression
    per state, plus noise) is regressed, close to the truth; one that is
    noise alone is not (zero rows). The regression is on the frames'
    whitened deviations (frames drawn from states with their own means and
    covariances), and the spread kept makes a drawn coefficient (the
    prediction from an N(0, I) draw plus the spread's noise) as spread as
    the state's coefficients."""
    N, D, T = 3, 4, 6000
    labels = np.repeat(rng.integers(0, N, T // 20), 20)  # runs, as states come
    w = rng.standard_normal((T, D))
    means = rng.normal(0, 3, (N, D))
    A = rng.normal(0, 1, (N, D, D))
    covars = A @ A.transpose(0, 2, 1) + np.eye(D)
    frames = means[labels] + np.einsum("tij,tj->ti", np.linalg.cholesky(covars)[labels], w)
    truth = rng.normal(0, 1, (N, D))
    coef = np.stack([np.einsum("td,td->t", truth[labels], w) + 0.5 * rng.standard_normal(T),
                     2.0 * rng.standard_normal(T)], axis=1)
    regression, spread, left = fit_shape_regression(coef, labels, frames, means, covars, N)
    assert regression.shape == (N, 2, D)
    assert_allclose(regression[:, 0], truth, atol=0.06)
    assert_array_equal(regression[:, 1], 0.0)
    assert_allclose(spread[:, 1], 2.0, rtol=0.08)
    # the spread kept: what a draw adds to the prediction for the state's own spread (the split
    # between the two is as good as the state's mean square, whose sampling error here is about
    # half the noise's 0.25)
    mean_square = np.array([np.mean(coef[labels == s] ** 2, axis=0) for s in range(N)])
    assert_allclose(np.sum(regression**2, axis=2) + spread**2, mean_square, rtol=1e-12)
    assert np.all(spread[:, 0] < 0.9)
    assert_allclose(left[:, 0], coef[:, 0] - np.einsum("td,td->t", regression[labels, 0], w), atol=1e-9)
    assert_array_equal(left[:, 1], coef[:, 1])
    # rows picked out of a longer table of frames by index: the same fit
    pad = np.concatenate([frames, frames[:7]])
    order = rng.permutation(T + 7)
    placed = np.empty_like(pad)
    placed[order] = pad
    again = fit_shape_regression(coef, labels, placed, means, covars, N, index=order[:T])
    assert_allclose(again[0], regression, atol=1e-12)
    # noise alone: nothing regressed, the coefficients' own spread
    none, spread_none, _ = fit_shape_regression(coef[:, 1:], labels, frames, means, covars, N)
    assert none is None
    assert_allclose(spread_none[:, 0], [np.sqrt(np.mean(coef[labels == s, 1] ** 2)) for s in range(N)])
    # a state of few frames (fewer than 2 D) is not regressed, and keeps its spread
    few = labels.copy()
    few[:5] = N
    reg_few, spread_few, _ = fit_shape_regression(coef, few, frames, np.vstack([means, means[:1]]),
                                                    np.concatenate([covars, covars[:1]]), N + 1)
    assert_array_equal(reg_few[N], 0.0)
    assert_allclose(spread_few[N], np.sqrt(np.mean(coef[:5] ** 2, axis=0)))
    # through fit_shape_variation: the first component follows the frame, the spread kept is the noise's
    B = SHAPE_BINS
    c1 = np.linspace(-1, 1, B) / np.linalg.norm(np.linspace(-1, 1, B))
    shapes = (coef[:, :1] * 4.0) @ c1[None, :]
    components, sp, _, reg = fit_shape_variation(shapes, labels, np.zeros((N, B)), lengths=[T], k=1,
                                                   observations=(frames, means, covars))
    sign = np.sign(components[0] @ c1)
    assert_allclose(sign * reg[:, 0], 4.0 * truth, atol=0.25)
    assert_allclose(np.sum(reg[:, 0] ** 2, axis=1) + sp[:, 0] ** 2, 16.0 * mean_square[:, 0], rtol=1e-9)


def test_small_states_drawn_as_spread_as_in_training(rng):
    """Drawn at generation (prediction from N(0, I) draws plus the spread's
    noise), the regressed coefficients of states of 30-60 frames are as
    spread as the training's; with the fit's own residual as the spread they
    came out 7-30% short."""
    N, D = 6, 4
    sizes = np.array([30, 35, 40, 45, 50, 60])
    labels = np.repeat(np.arange(N), sizes)
    T = labels.size
    w = rng.standard_normal((T, D))
    truth = rng.normal(0, 1, (N, D))
    coef = (np.einsum("td,td->t", truth[labels], w) + rng.standard_normal(T))[:, None]
    eye = np.tile(np.eye(D), (N, 1, 1))
    regression, spread, _ = fit_shape_regression(coef, labels, w, np.zeros((N, D)), eye, N, folds=2)
    assert regression is not None
    z = rng.standard_normal((200_000, D))
    for s in range(N):
        drawn = z @ regression[s, 0] + spread[s, 0] * rng.standard_normal(200_000)
        assert_allclose(np.var(drawn), np.mean(coef[labels == s, 0] ** 2), rtol=0.02)


def test_residual_shape_puts_back_what_the_envelope_misses(rng):
    """Noise with a deep, narrow notch (zeros an order-12 all-pole envelope
    cannot make): the learned residual shape has the notch, and generated
    audio has it deeper than without the shape."""
    sr = 16000
    b = scipy.signal.firwin2(129, [0, 0.25, 0.35, 0.45, 1], [1, 1, 0.003, 1, 1])
    x = scipy.signal.lfilter(b, [1.0], 0.2 * rng.standard_normal(12 * sr))
    model = SpectralStateGuidedSynthesis(n_states=3, seed=0).train([x], sr, n_em_iterations=4)
    shape = model.excitation_model.residual_shape
    freqs = np.linspace(0, sr / 2, SHAPE_BINS)
    notch = np.argmin(np.abs(freqs - 2800))
    assert np.all(shape[:, notch] < shape[:, np.abs(freqs - 1500) < 300].mean(axis=1) - 1.0)

    def depth(y):
        f, p = scipy.signal.welch(y, sr, nperseg=2048)
        return 10 * np.log10(p[(f > 1000) & (f < 2000)].mean() / p[np.abs(f - 2800) < 60].mean())

    with_shape = depth(model.generate(20.0, fidelity=0.0, excitation_type="Noise", seed=1))
    model.excitation_model.residual_shape = None
    without = depth(model.generate(20.0, fidelity=0.0, excitation_type="Noise", seed=1))
    assert with_shape > without + 6.0, (with_shape, without)
