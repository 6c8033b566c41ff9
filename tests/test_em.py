"""EM with the C E-step and a plain numpy M-step on audio-like features."""

import numpy as np
from numpy.testing import assert_array_equal

from ssgs import SpectralStateGuidedSynthesis, kernels

import reference
from signals import music_like, switching_ar_audio, windowed_frames


def audio_features(rng, n_files=4):
    """Per-file observation sequences: log-area ratios of a 12th-order LPC plus
    log gain, from audio-like signals (switching AR sources, noise floor)."""
    X, lengths = [], []
    for _ in range(n_files):
        x = switching_ar_audio(rng, n_segments=int(rng.integers(6, 14)))
        frames = windowed_frames(x, 512, 128)
        _, k, err = kernels.lpc_analysis(frames, 12)
        lar = np.log((1 - k) / (1 + k))
        X.append(np.column_stack([lar, 0.5 * np.log(err + 1e-12)]))
        lengths.append(len(frames))
    return np.concatenate(X), lengths


def kmeans_init(rng, X, N):
    centres = X[rng.choice(len(X), N, replace=False)]
    for _ in range(10):
        labels = np.argmin(((X[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
        centres = np.stack([X[labels == j].mean(0) if np.any(labels == j) else centres[j] for j in range(N)])
    covars = np.stack([np.cov(X[labels == j].T) + 1e-3 * np.eye(X.shape[1]) if np.sum(labels == j) > X.shape[1]
                       else np.cov(X.T) for j in range(N)])
    return centres, covars


def test_em_never_lowers_the_log_likelihood(rng):
    X, lengths = audio_features(rng)
    N = 6
    means, covars = kmeans_init(rng, X, N)
    startprob = np.full(N, 1.0 / N)
    transmat = np.full((N, N), 0.1 / (N - 1)) + np.eye(N) * (0.9 - 0.1 / (N - 1))
    history = []
    for _ in range(20):
        stats = kernels.estep(X, lengths, startprob, transmat, means, covars)
        history.append(stats.log_likelihood / len(X))
        startprob, transmat, means, covars = reference.m_step(stats, means, len(lengths))
    diffs = np.diff(history)
    assert np.all(diffs >= -1e-9 * np.abs(history[:-1])), history
    assert history[-1] > history[0] + 0.1


def test_em_run_is_identical_for_one_and_two_threads(rng):
    X, lengths = audio_features(rng, n_files=3)
    N = 4
    init = kmeans_init(rng, X, N)
    runs = []
    for nt in (1, 2):
        means, covars = init
        startprob, transmat = np.full(N, 0.25), np.full((N, N), 0.25)
        for _ in range(5):
            stats = kernels.estep(X, lengths, startprob, transmat, means, covars, n_threads=nt)
            startprob, transmat, means, covars = reference.m_step(stats, means, len(lengths))
        runs.append((startprob, transmat, means, covars))
    for a, b in zip(*runs):
        assert_array_equal(a, b)


def test_states_that_keep_emptying_go_dormant_and_training_converges():
    rng = np.random.default_rng(0)
    m = SpectralStateGuidedSynthesis(n_states=12, seed=2, lpc_order=2, frame_size=64, hop_size=32, tol=1e-3)
    m.extract_features([music_like(rng, 0.5)], 16000)
    m.initialize_hmm_parameters()
    m.state_means[5] = 1e3
    m.iterative_refinement(40)
    reseeds = [j for r in m.training_history for j in r["reseeded"]]
    assert reseeds.count(5) <= 2
    assert m.converged
    assert np.isfinite(m.state_means).all() and np.isfinite(m.state_covariances).all()
