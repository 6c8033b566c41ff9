"""The excitation statistics (ssgs.excitation_model): worked examples of
the pitch motion and leap sizes fitted from the training pitch."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from ssgs.excitation_model import N_PITCH_BINS, leap_intervals, pitch_motion


def test_pitch_motion_worked_example():
    f0 = np.array([100.0, 100.0, 101.0, 120.0, 0.0, 120.0, 121.0])
    per = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.2])
    # voiced pairs: (100, 100), (100, 101), (101, 120); 101 -> 120 is a leap (3 semitones)
    moves = np.log([100 / 100, 101 / 100])
    assert_allclose(pitch_motion(f0, per), [1 / 3, np.std(moves)])
    assert_allclose(pitch_motion(f0, per, lengths=[2, 5]), [1 / 2, 0.0])  # no pair across sequences
    assert_array_equal(pitch_motion(np.zeros(4), np.ones(4)), [0.0, 0.0])


def test_leap_intervals_worked_example():
    semitone = 2 ** (1 / 12)
    # voiced moves: 2 semitones, 0.2 (a step), 5 semitones down; an unvoiced frame breaks the pairs
    f0 = np.array([100.0, 100 * semitone**2, 100 * semitone**2.2, 100 * semitone**-2.8, 0.0, 300.0])
    per = np.full(6, 0.9)
    expected = np.zeros(N_PITCH_BINS)
    for size in (2, 5):  # each leap spread over its size and its neighbours (1/4, 1/2, 1/4)
        expected[size - 1:size + 2] += [0.25, 0.5, 0.25]
    assert_allclose(leap_intervals(f0, per), expected / expected.sum())
    # at either end of the sizes (a semitone; beyond the table, the last size) nothing spills out
    near = leap_intervals(np.array([100.0, 100 * semitone**1.1]), np.ones(2))
    assert_allclose(near[:3], [0.0, 0.75, 0.25]) and near.sum() == pytest.approx(1.0)
    far = leap_intervals(np.array([60.0, 1000.0]), np.ones(2))
    assert_allclose(far[-2:], [0.25, 0.75]) and far.sum() == pytest.approx(1.0)
    assert leap_intervals(np.full(5, 100.0), np.ones(5)) is None  # no leap


def test_the_excitation_model_belongs_to_the_parameters_it_was_fitted_for():
    import golden
    from ssgs.hmm import HMMParams

    model = golden.trained("music")
    exc = model.excitation_model
    assert model.excitation_model is exc  # fitted at the end of training, for these parameters
    p = model.params
    model.params = HMMParams(p.startprob, p.transmat, p.means + 0.01, p.covars)
    assert model.excitation_model is not exc  # other parameters: fitted again
    model.params = p
    assert model.excitation_model is not exc and model.excitation_model is model.excitation_model
