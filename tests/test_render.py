"""Filtering to audio (ssgs.synthesis.render): the silence gate and the limiter."""

import numpy as np
from numpy.testing import assert_array_equal

from ssgs.synthesis.render import silence_gate, soft_limit


def test_soft_limit_only_touches_audio_that_would_clip():
    x = np.linspace(-0.99, 0.99, 100)
    assert_array_equal(soft_limit(x), x)
    loud = np.linspace(-3, 3, 1001)
    limited = soft_limit(loud)
    assert np.abs(limited).max() <= 1.0 and np.all(np.diff(limited) >= 0)
    assert_array_equal(limited[np.abs(loud) <= 0.9], loud[np.abs(loud) <= 0.9])


def test_silence_gate_is_exact_zero_in_silence_and_has_no_steps():
    hop = 64
    audible = np.array([1, 1, 0, 0, 1, 0, 1, 1, 1, 0], bool)
    g = silence_gate(audible, hop).reshape(-1, hop)
    assert np.all(g[~audible] == 0.0)
    assert np.all(g[[0, 7]] == 1.0)  # sounding hops away from silence are untouched
    assert np.abs(np.diff(np.concatenate([[1.0], g.reshape(-1), [0.0]]))).max() <= 2.0 / hop + 1e-12
    assert np.all(silence_gate(np.ones(5, bool), hop) == 1.0)
