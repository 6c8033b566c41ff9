"""Run lengths (ssgs.runs): worked examples, and the test that tells a
state's runs from a geometric's."""

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

from ssgs.runs import (RUN_QUANTILES, end_shares, geometric_rejected, mean_run_lengths, silence_run_lengths,
                       state_run_quantiles)


def test_silence_run_lengths_worked_example():
    silent = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 1], bool)
    assert_array_equal(silence_run_lengths(silent, [5, 5]), [2, 1, 3])
    assert_array_equal(silence_run_lengths(silent), [2, 1, 3])
    assert_array_equal(silence_run_lengths(silent, [4, 6]), [2, 1, 3])  # the run across the boundary is cut
    assert silence_run_lengths(np.zeros(4, bool)).size == 0


def test_end_shares_worked_example():
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 1, 0, 2])
    # sequences [0 0 1 1 1] [2 2 1] [0 2]: runs of 0: 2 (none ending a
    # sequence); of 1: 2, both ending one; of 2: 2, one ending; state 3 none
    assert_allclose(end_shares(labels, [5, 3, 2], 4), [0.0, 1.0, 0.5, 0.0])
    assert_allclose(end_shares(labels, [5, 0, 3, 2], 4), [0.0, 1.0, 0.5, 0.0])  # an empty sequence ends nothing
    # one sequence: a run cut by no boundary; the last run ends it
    assert_allclose(end_shares(np.array([0, 0, 1, 0, 1, 1]), [6], 2), [0.0, 0.5])


def test_mean_run_lengths_worked_example():
    labels = np.array([0, 0, 1, 1, 1, 0, 2, 2, 0, 0])
    # two sequences: [0 0 1 1 1] [0 2 2 0 0]; runs of 0: 2, 1, 2; of 1: 3; of 2: 2; state 3 never
    assert_allclose(mean_run_lengths(labels, [5, 5], 4), [5 / 3, 3.0, 2.0, 0.0])
    # a run does not continue across a sequence boundary
    assert_allclose(mean_run_lengths(np.zeros(6, int), [3, 3], 1), [3.0])


def test_geometric_rejected_is_a_g_test_of_the_fitted_geometric():
    """The test's p-value is scipy's log-likelihood (G) statistic on the
    same classes (lengths 1, 2, ... while a geometric with the runs' mean
    expects five or more, then the rest), one degree of freedom taken for
    the mean; geometric runs are rarely rejected, a pause-like mix (mostly
    single frames, a fifth of 12) is, and too few runs never are."""
    import scipy.stats

    rng = np.random.default_rng(8)
    for trial in range(30):
        runs = rng.geometric(rng.uniform(0.2, 0.7), rng.integers(20, 300))
        p, n = 1 / runs.mean(), runs.size
        k = 1
        while n * p * (1 - p) ** (k - 1) >= 5:
            k += 1
        if k < 3:
            assert not geometric_rejected(runs)
            continue
        observed = [np.sum(runs == j) for j in range(1, k)] + [np.sum(runs >= k)]
        expected = [n * p * (1 - p) ** (j - 1) for j in range(1, k)] + [n * (1 - p) ** (k - 1)]
        reference = scipy.stats.power_divergence(observed, expected, ddof=1, lambda_="log-likelihood").pvalue
        assert geometric_rejected(runs, level=0.5) == (reference < 0.5), trial
        assert geometric_rejected(runs) == (reference < 0.01), trial
    rejected = sum(geometric_rejected(rng.geometric(0.4, 200)) for _ in range(100))
    assert rejected <= 5  # 1 expected at the 1% level
    pauses = np.concatenate([np.ones(80, int), np.full(20, 12)])
    assert geometric_rejected(pauses)
    assert not geometric_rejected(pauses[::12])  # 9 runs: too few to tell
    for never_past_two in (np.full(1000, 2), np.r_[np.ones(100, int), np.full(900, 2)]):
        assert geometric_rejected(never_past_two)  # a geometric with that mean runs past 2 often


def test_state_run_quantiles_worked_example():
    """Runs are cut where a sequence ends; only the state whose runs a
    geometric does not fit gets quantiles (of its own runs), the others a
    row of zeros; None when every state's runs are geometric."""
    rng = np.random.default_rng(1)
    pieces, lengths = [], []
    for _ in range(60):  # sequences: state 0 for 1 or 12 frames, then state 1 for a geometric run
        first = 12 if rng.random() < 0.2 else 1
        second = int(rng.geometric(0.3))
        pieces.append(np.r_[np.zeros(first, int), np.ones(second, int)])
        lengths.append(first + second)
    runs0 = [np.sum(piece == 0) for piece in pieces]
    # the last sequence ends in state 0 and one more begins in it: two runs of one frame, not one of two
    pieces[-1] = np.append(pieces[-1], 0)
    pieces.append(np.zeros(1, int))
    lengths[-1] += 1
    lengths.append(1)
    runs0 = np.array(runs0 + [1, 1])
    labels = np.concatenate(pieces)
    q = state_run_quantiles(labels, lengths, 3)
    assert_allclose(q[0], np.quantile(runs0, np.linspace(0, 1, RUN_QUANTILES)))
    assert_array_equal(q[1:], 0.0)
    geometric = np.concatenate([np.full(int(rng.geometric(0.3 if k % 2 else 0.5)), k % 2) for k in range(400)])
    assert state_run_quantiles(geometric, [geometric.size], 2) is None
