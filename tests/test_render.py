"""Filtering to audio (ssgs.synthesis.render): the silence gate, the
look-ahead limiter of the level stage and the soft limiter."""

import numpy as np
from numpy.testing import assert_array_equal

from ssgs import kernels
from ssgs.synthesis.render import CEILING, peak_limit, ramp_between_centres, silence_gate, smooth_gain, soft_limit


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


def _peak_limit_reference(y, width, ceiling):
    """The limiter written out sample by sample: each sample's gain is the
    mean over its window of each neighbour's smallest allowed gain."""
    allowed = np.minimum(1.0, ceiling / np.maximum(np.abs(y), 1e-300))
    n = len(y)
    held = np.array([allowed[max(0, i - width): i + width + 1].min() for i in range(n)])
    padded = np.concatenate([np.full(width, held[0]), held, np.full(width, held[-1])])
    gain = np.array([padded[i: i + 2 * width + 1].mean() for i in range(n)])
    return y * gain


def test_peak_limit_keeps_every_sample_under_the_ceiling_and_matches_a_reference():
    rng = np.random.default_rng(5)
    y = rng.standard_normal(3000) * np.repeat(rng.uniform(0.1, 0.9, 30), 100)
    limited = peak_limit(y, 16)
    assert np.abs(y).max() > 2 * CEILING  # loud enough to be limited
    assert np.abs(limited).max() <= CEILING
    np.testing.assert_allclose(limited, _peak_limit_reference(y, 16, CEILING), rtol=1e-12, atol=0)


def test_peak_limit_touches_only_the_neighbourhood_of_a_peak_and_leaves_quiet_audio_alone():
    rng = np.random.default_rng(6)
    y = np.clip(0.3 * rng.standard_normal(40000), -0.9, 0.9)
    assert_array_equal(peak_limit(y, 32), y)
    peaks = np.sort(rng.choice(np.arange(100, 20000), 200, replace=False))
    y[peaks] = rng.uniform(1.0, 3.0, peaks.size) * np.sign(y[peaks])
    y[30000] = 3.0
    limited = peak_limit(y, 32)
    peaks = np.append(peaks, 30000)
    changed = np.flatnonzero(limited != y)
    assert np.abs(changed[:, None] - peaks[None, :]).min(axis=1).max() <= 64  # all near a peak
    assert_array_equal(limited[20100:29900], y[20100:29900])  # bit for bit beyond their reach
    assert_array_equal(limited[30100:], y[30100:])
    gain = limited[29900:30100] / y[29900:30100]
    assert abs(limited[30000]) <= CEILING
    assert np.abs(np.diff(gain)).max() <= 1.0 / 65 + 1e-12  # falls and recovers in steps, no jump


def test_smooth_gain_matches_a_reference_at_every_density_and_width():
    """The C running minimum and mean against the sample-by-sample
    reference, exactly 1 beyond the reach of every limited sample, from no
    limited sample to all of them; edges included."""
    rng = np.random.default_rng(7)
    for n, width in ((1, 0), (2, 1), (7, 3), (300, 16), (5000, 40)):
        for share in (0.0, 0.002, 0.05, 1.0):
            allowed = np.where(rng.random(n) < share, rng.uniform(0.2, 1.0, n), rng.uniform(1.0, 3.0, n))
            y = CEILING / allowed
            gain = smooth_gain(allowed, width)
            np.testing.assert_allclose(y * gain, _peak_limit_reference(y, width, CEILING), rtol=1e-12, atol=0)
            limited = np.flatnonzero(allowed < 1.0)
            far = np.ones(n, bool) if not limited.size else (
                np.abs(np.arange(n)[:, None] - limited[None, :]).min(axis=1) > 2 * width)
            assert_array_equal(gain[far], 1.0)


def test_level_brings_each_hop_to_its_rms_between_centres():
    rng = np.random.default_rng(8)
    for F, hop, short in ((1, 4, 0), (3, 4, 1), (40, 256, 0), (40, 256, 100)):
        y, log_gain = rng.standard_normal(F * hop - short), rng.normal(0, 2, F)
        padded = np.zeros(F * hop)
        padded[: y.shape[0]] = y
        rms = np.sqrt(np.mean(padded.reshape(F, hop) ** 2, axis=1))
        ratio = np.exp(np.clip(log_gain - np.log(rms), -np.log(100.0), np.log(100.0)))
        want = y * ramp_between_centres(ratio, hop)[: y.shape[0]]
        np.testing.assert_allclose(kernels.synth.level(y, log_gain, hop), want, rtol=1e-12, atol=0)


def test_peak_limit_is_the_smooth_gain_of_the_allowances_clipped():
    rng = np.random.default_rng(9)
    for n, width, loud in ((1, 0, 2.0), (50, 3, 1.2), (4000, 16, 1.5), (4000, 16, 4.0)):
        y = rng.standard_normal(n) * loud * 0.5
        want = np.clip(y * smooth_gain(CEILING / np.maximum(np.abs(y), 1e-300), width), -CEILING, CEILING)
        assert_array_equal(peak_limit(y, width), want)


def test_level_and_limiter_in_place_give_the_same_bytes():
    rng = np.random.default_rng(10)
    hop, F = 64, 50
    y, log_gain = rng.standard_normal(F * hop), rng.normal(0.5, 1, F)
    want = kernels.synth.peak_limit(kernels.synth.level(y, log_gain, hop), hop // 2, CEILING)
    assert np.abs(kernels.synth.level(y, log_gain, hop)).max() > 2 * CEILING  # the limiter has work to do
    z = y.copy()
    kernels.synth.level(z, log_gain, hop, out=z)
    kernels.synth.peak_limit(z, hop // 2, CEILING, out=z)
    assert_array_equal(z, want)
