"""State paths (ssgs.synthesis.paths): durations corrected, runs drawn from
a state's quantiles, silences retimed to the training's lengths and rate."""

import numpy as np
import scipy.signal
from numpy.testing import assert_allclose, assert_array_equal
from signals import music_like

from ssgs import SpectralStateGuidedSynthesis, kernels
from ssgs.excitation_model import ExcitationModel, SILENCE_QUANTILES
from ssgs.runs import RUN_QUANTILES, silence_run_lengths, state_runs
from ssgs.synthesis.paths import (duration_corrected_transitions, model_path, retime_silences, sample_path,
                                  with_end)

SR, HOP = 16000, 256


def test_duration_corrected_transitions():
    A = np.array([[0.98, 0.02, 0.0], [0.3, 0.5, 0.2], [0.0, 0.0, 1.0]])
    B = duration_corrected_transitions(A, np.array([10.0, 2.0, 5.0]))
    assert_allclose(B.sum(axis=1), 1.0)
    assert_allclose(1.0 / (1.0 - np.diag(B)[:2]), [10.0, 2.0])  # expected run lengths
    assert_allclose(B[1, [0, 2]] / B[1, [0, 2]].sum(), [0.6, 0.4])  # exits keep their proportions
    assert_array_equal(B[2], A[2])  # a state with no exit is left alone
    assert_array_equal(duration_corrected_transitions(A, np.array([0.0, 0.5, np.nan])), A)
    assert_array_equal(duration_corrected_transitions(A, None), A)


def test_sample_path_draws_the_flagged_states_runs_and_the_chain_elsewhere():
    """Without quantiles the path is the C kernel's, bit for bit. With them,
    a flagged state's runs follow its quantiles (linear between them,
    rounded); the other states' runs stay geometric with the chain's
    self-transition, and every state leaves by its exits in their
    proportions. The same seed gives the same path; a state without exits
    holds to the end."""
    A = np.array([[0.8, 0.15, 0.05], [0.1, 0.6, 0.3], [0.3, 0.2, 0.5]])
    start = np.array([0.5, 0.3, 0.2])
    assert_array_equal(sample_path(start, A, 5000, 9), kernels.sample_states(start, A, 5000, 9))
    q = np.zeros((3, RUN_QUANTILES))
    q[1] = np.quantile(np.r_[np.ones(80), np.full(20, 12)], np.linspace(0, 1, RUN_QUANTILES))
    path = sample_path(start, A, 300_000, 9, q)
    assert_array_equal(path, sample_path(start, A, 300_000, 9, q))
    assert not np.array_equal(path, sample_path(start, A, 300_000, 10, q))
    runs = state_runs(path, [path.size], 3)
    u = np.random.default_rng(0).uniform(size=400_000)
    expected = np.maximum(1, np.rint(np.interp(u, np.linspace(0, 1, RUN_QUANTILES), q[1])))
    for length in (1, 2, 6, 11, 12):
        assert abs(np.mean(runs[1][:-1] == length) - np.mean(expected == length)) < 0.01, length
    assert abs(runs[0].mean() - 5.0) < 0.1 and abs(runs[2].mean() - 2.0) < 0.05  # 1 / (1 - A_ss)
    assert abs(np.mean(runs[0] == 1) - 0.2) < 0.01  # geometric: P(1) = 1 - A_ss
    after = path[1:][path[1:] != path[:-1]]
    before = path[:-1][path[1:] != path[:-1]]
    for s in range(3):
        exits = np.bincount(after[before == s], minlength=3) / np.sum(before == s)
        want = A[s] * (1 - np.eye(3)[s])
        assert_allclose(exits, want / want.sum(), atol=0.01)
    absorbing = np.array([[0.5, 0.5], [0.0, 1.0]])
    for q_absorbing in (0.0, 3.0):  # the absorbing state geometric, or with run quantiles of its own
        table = np.zeros((2, RUN_QUANTILES)) + [[2.0], [q_absorbing]]
        held = sample_path([1.0, 0.0], absorbing, 200, 3, table)
        assert_array_equal(held[:2], 0)
        assert_array_equal(held[2:], 1)
    nearly = np.array([[1.0, 1e-20], [0.5, 0.5]])  # a self-transition that rounds to 1 (EM floors nothing)
    path = sample_path([1.0, 0.0], nearly, 100, 3, np.zeros((2, RUN_QUANTILES)) + [[0.0], [2.0]])
    assert_array_equal(path, 0)


def test_retime_silences_gives_each_stretch_of_silent_states_a_training_length(rng):
    exc = ExcitationModel.neutral(4)
    exc.silence = np.array([0.0, 1.0, 0.6, 0.3])  # states 1 and 2 are silent states, 3 is not
    exc.silence_runs = np.full(SILENCE_QUANTILES, 5.0)
    path = np.array([0, 0, 1, 0, 3, 3, 1, 2, 2, 1, 2, 1, 1, 0])
    out = retime_silences(path, exc, rng)
    assert_array_equal(out, [0, 0, 1, 1, 1, 1, 1, 0, 3, 3, 1, 2, 2, 2, 1, 0])  # a stretch keeps its states in order
    exc.silence_runs = np.linspace(2.0, 9.0, SILENCE_QUANTILES)  # lengths drawn within the training's
    lengths = np.concatenate([silence_run_lengths(exc.silence[retime_silences(path, exc, rng)] >= 0.5)
                              for _ in range(200)])
    assert lengths.min() == 2 and lengths.max() == 9 and abs(lengths.mean() - 5.5) < 0.4
    # ranked by the chain's own stretches: the longest becomes long, the shortest short
    path = np.array([0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 2, 2, 0])
    chain = np.array([1, 1, 1, 2, 2, 3, 4, 6, 6, 9])
    for _ in range(50):
        lengths = silence_run_lengths(exc.silence[retime_silences(path, exc, rng, chain)] >= 0.5)
        assert lengths[0] <= 4 and lengths[1] >= 7 and 4 <= lengths[2] <= 6, lengths
    exc.silence_runs = None  # an older model: the path as it was
    assert_array_equal(retime_silences(path, exc, rng), path)


def test_retime_silences_keeps_the_trainings_rate_of_silences(rng):
    """A chain that falls silent twice as often as the training did keeps
    about half its stretches (at random), each still a training length;
    one that falls silent less often keeps them all."""
    exc = ExcitationModel.neutral(3)
    exc.silence = np.array([0.0, 1.0, 0.0])
    exc.silence_runs = np.full(SILENCE_QUANTILES, 6.0)
    path = np.tile([0, 0, 0, 0, 1, 2, 2, 2, 2, 2], 2000)  # a stretch of silent states every 10 frames
    chain = np.ones(1000, np.int64)  # the chain's own: 1000 stretches in 10,000 frames
    exc.silence_rate = np.array(0.05)  # the training: one in 20 frames
    out = retime_silences(path, exc, rng, chain, chain_frames=10_000)
    kept = silence_run_lengths(exc.silent_states[out])
    assert np.all(kept == 6)
    assert abs(kept.size / 2000 - 0.5) < 0.05, kept.size
    assert np.sum(out == 0) == np.sum(path == 0) and np.sum(out == 2) == np.sum(path == 2)  # the sound goes on
    exc.silence_rate = np.array(0.2)  # the training fell silent more often than the chain: all kept
    assert silence_run_lengths(exc.silent_states[retime_silences(path, exc, rng, chain, 10_000)]).size == 2000
    exc.silence_rate = None  # older checkpoints: all kept
    assert silence_run_lengths(exc.silent_states[retime_silences(path, exc, rng, chain, 10_000)]).size == 2000


def test_generation_follows_a_states_run_quantiles():
    """A model whose busiest sounding state is given runs of exactly 20
    frames generates that state in runs of 20 (but where a piece of the
    chain ends); with the geometric (no quantiles) it seldom does."""
    rng = np.random.default_rng(4)
    model = SpectralStateGuidedSynthesis(n_states=6, seed=0).train([music_like(rng, 6.0) for _ in range(2)], SR,
                                                                   n_em_iterations=3)
    exc = model.excitation_model
    state = int(np.argmax(np.where(exc.silent_states, -1.0, exc.occupancy)))
    saved = exc.run_quantiles

    def share_of_twenty():
        path = model_path(model.voice(), 20_000, np.random.default_rng(2))
        return np.mean(state_runs(path, [path.size], model.n_states)[state] == 20)

    try:
        exc.run_quantiles = np.zeros((model.n_states, RUN_QUANTILES))
        exc.run_quantiles[state] = 20.0
        assert share_of_twenty() > 0.9
        exc.run_quantiles = None
        assert share_of_twenty() < 0.2
    finally:
        exc.run_quantiles = saved


def test_sampled_paths_keep_the_training_durations_of_a_state_sequences_end_in():
    """Every file ends in a long silence (EM sees the silence state leave
    once per file but stay until each file's end, so its self-transition
    comes out near 1): the generated share of silence is the training's."""
    rng = np.random.default_rng(11)
    sr, files = 16000, []
    for _ in range(6):
        burst = lambda s: scipy.signal.lfilter([0.3], [1.0, -0.9], rng.standard_normal(int(sr * s)))  # noqa: E731
        files.append(np.concatenate([burst(0.6), np.zeros(int(0.25 * sr)), burst(0.6), np.zeros(int(1.2 * sr))]))
    model = SpectralStateGuidedSynthesis(n_states=4, seed=0).train(files, sr, n_em_iterations=6)
    hop = model.hop_size
    train_share = np.mean(model.corpus.silent_frames())
    exc = model.excitation_model
    silent_state = int(np.argmax(exc.silence))
    assert model.transition_matrix[silent_state, silent_state] > 0.97  # what EM makes of it

    def share():
        y = model.generate(120.0, fidelity=0.0, seed=4).astype(np.float64)
        return np.mean(np.all(y[: len(y) // hop * hop].reshape(-1, hop) == 0, axis=1))

    assert abs(share() - train_share) < 0.1, (share(), train_share)
    # the correction's own part, with silence decided frame by frame (the
    # silence retiming sets the silences' lengths on top of any chain) and
    # without the chain's ends (which also let it leave the silence the
    # files end in: with them, EM's own transitions keep the share too)
    exc.silence_runs, exc.end = None, None
    corrected = share()
    exc.mean_run = None  # EM's own transitions linger in the silence
    assert abs(share() - train_share) > abs(corrected - train_share)


def test_with_end_sends_a_states_share_of_its_exits_to_the_end():
    A = np.array([[0.8, 0.2, 0.0], [0.1, 0.9, 0.0], [0.0, 0.0, 1.0]])
    out = with_end(A, np.array([0.0, 0.25, 0.5]), mean_run=np.array([5.0, 10.0, 4.0]))
    assert out.shape == (4, 4) and and_all_rows_sum_to_one(out)
    assert_allclose(out[0], [0.8, 0.2, 0.0, 0.0])  # no runs end a sequence: as it was
    assert_allclose(out[1], [0.1 * 0.75, 0.9, 0.0, 0.1 * 0.25])  # a quarter of its exits end the chain
    assert_allclose(out[2], [0.0, 0.0, 0.75, 0.25])  # no exit of its own: leaves after its mean run, to the end
    assert_allclose(out[3], [0.0, 0.0, 0.0, 1.0])  # the end holds
    assert_allclose(with_end(A, np.array([0.0, 1.0, 0.0]))[1], [0.0, 0.9, 0.0, 0.1])  # every run ends it


def and_all_rows_sum_to_one(a):
    return np.allclose(a.sum(axis=1), 1.0)


def test_a_state_the_training_ended_in_does_not_hold_the_chain():
    """A model whose sequences end in a state that, by EM's counts, never
    leaves (a fade-out at each file's end): the generated chain leaves it
    about as soon as the training did and starts a new piece, instead of
    staying until the piece's length runs out (the holes of near-silence
    on real music)."""
    rng = np.random.default_rng(21)
    sr, files = 16000, []
    for _ in range(3):
        sound = scipy.signal.lfilter([0.3], [1.0, -0.9], rng.standard_normal(int(sr * 4.0)))
        fade = 0.003 * rng.standard_normal(int(sr * 0.8))
        files.append(np.concatenate([sound, fade]))
    model = SpectralStateGuidedSynthesis(n_states=3, seed=0).train(files, sr, n_em_iterations=5)
    exc = model.excitation_model
    quiet = int(np.argmin(model.state_means[:, -2]))
    assert exc.end[quiet] > 0.5 and model.transition_matrix[quiet, quiet] > 0.97
    train_share = 0.8 / 4.8  # the fade's share of each file

    def quiet_share():
        return np.mean(model_path(model.voice(), 30_000, np.random.default_rng(3)) == quiet)

    with_ends = quiet_share()
    assert abs(with_ends - train_share) < 0.08, (with_ends, train_share)
    exc.end = None  # an older checkpoint's chain: pieces as long as the files, the fade held to their end
    assert quiet_share() > with_ends + 0.05
