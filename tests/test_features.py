import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from ssgs import kernels
from ssgs.features import (GAIN_FLOOR, METADATA_KEYS, FeatureConfig, analyse_signal, frame_starts,
                           lar_from_reflection, lpc_from_reflection, rebuild_signal, reflection_from_lar,
                           reflection_from_lpc)

from signals import music_like, stable_lpc, tone

CONFIG = FeatureConfig(16000, 1024, 256, 12)


def snr_db(ref, est):
    return 10 * np.log10(np.sum(ref**2) / max(np.sum((ref - est) ** 2), 1e-300))


@pytest.mark.parametrize("n", [1024, 1025, 1280, 16000, 16000 * 3 + 17])
def test_every_sample_has_a_frame_and_the_audio_rebuilds_exactly(rng, n):
    x = music_like(rng, n / 16000 + 1)[:n].astype(np.float32)
    feats = analyse_signal(x, CONFIG)
    assert feats.n_frames == -(-n // 256)
    assert feats.residual.shape == (feats.n_frames, 256) and feats.residual.dtype == np.float32
    assert feats.observations.shape == (feats.n_frames, 14)
    y = rebuild_signal(feats.lpc, feats.residual, n, 256)
    assert y.shape == (n,)
    assert snr_db(x, y) > 120
    # first and last samples included
    assert_allclose(y[:5], x[:5], atol=1e-6 * np.abs(x).max())
    assert_allclose(y[-5:], x[-5:], atol=1e-6 * np.abs(x).max())
    assert_array_equal(feats.residual.reshape(-1)[n:], 0.0)


def test_silence_is_kept_with_the_gain_floor(rng):
    x = np.concatenate([music_like(rng, 1.0), np.zeros(16000), music_like(rng, 1.0)]).astype(np.float32)
    feats = analyse_signal(x, CONFIG)
    silent = slice(16000 // 256 + 4, 2 * 16000 // 256 - 4)
    assert_array_equal(feats.observations[silent, 12], np.float32(GAIN_FLOOR))
    assert_array_equal(feats.observations[silent, :12], 0.0)
    assert np.isfinite(feats.observations).all()
    assert np.isfinite(feats.perceptual.astype(np.float32)).all()


def test_analysis_windows_are_centred_on_the_hop_regions():
    starts = frame_starts(5, 1024, 256)
    assert_array_equal(starts, [-384, -128, 128, 384, 640])
    assert_array_equal(starts + 512, np.arange(5) * 256 + 128)  # window centre = hop region centre


def test_observations_are_lars_of_the_frame_filters_and_log_signal_rms(rng):
    x = music_like(rng, 2.0).astype(np.float32)
    feats = analyse_signal(x, CONFIG)
    a = np.concatenate([np.ones((feats.n_frames, 1)), feats.lpc], axis=1)
    k = reflection_from_lpc(a)
    assert np.all(np.abs(k) < 1)
    assert_allclose(feats.observations[:, :12], lar_from_reflection(k), rtol=1e-6, atol=1e-6)
    e = kernels.lpc_residual(x.astype(np.float64), a, 256).reshape(-1, 256)
    assert_allclose(feats.residual, e, rtol=1e-6, atol=1e-9)
    padded = np.concatenate([x, np.zeros(feats.n_frames * 256 - len(x), np.float32)]).astype(np.float64)
    hop_len = np.minimum(256, len(x) - 256 * np.arange(feats.n_frames))
    rms = np.sqrt(np.sum(padded.reshape(-1, 256) ** 2, axis=1) / hop_len)
    assert_allclose(feats.observations[:, 12], np.log(np.maximum(rms, np.exp(GAIN_FLOOR))), rtol=1e-6)


def test_windowed_lpc_matches_the_kernel_on_explicit_frames(rng):
    x = music_like(rng, 1.0).astype(np.float32)
    feats = analyse_signal(x, CONFIG)
    padded = np.concatenate([np.zeros(1024), x.astype(np.float64), np.zeros(2048)])
    starts = frame_starts(feats.n_frames, 1024, 256) + 1024
    frames = np.stack([padded[s:s + 1024] for s in starts]) * np.hanning(1026)[1:-1]
    r_window = np.exp(-0.5 * (2 * np.pi * 60 * np.arange(13) / 16000) ** 2)
    r_window[0] = 1 + 1e-8
    a, _, _ = kernels.lpc_analysis(frames, 12, lag_window=r_window)
    assert_array_equal(feats.lpc, a[:, 1:])


def test_frame_metadata_of_a_tone():
    sr, f = 16000, 1000.0
    x = tone(f, 2.0, sr, amplitude=0.5).astype(np.float32)
    feats = analyse_signal(x, CONFIG)
    mid = slice(10, -10)
    meta = feats.metadata
    assert set(meta) == set(METADATA_KEYS)
    assert_allclose(meta["rms"][mid], 0.5 / np.sqrt(2), rtol=1e-3)
    assert_allclose(meta["energy"][mid], 1024 * 0.125, rtol=1e-3)
    assert_allclose(meta["zero_crossings"][mid], 2 * f * 1024 / sr, atol=2)
    assert_allclose(meta["dominant_frequency"][mid], f, atol=sr / 1024)
    assert_allclose(meta["spectral_centroid"][mid], f, rtol=0.02)
    assert np.all(meta["spectral_bandwidth"][mid] < 100)
    assert np.all(meta["spectral_flux"][mid] < 1e-2 * meta["spectral_flux"].max())
    assert np.all(meta["lpc_norm"] > 0)
    mel = feats.perceptual[:, :40].astype(np.float32)
    assert np.argmax(mel[100]) == np.argmax(mel[120])  # the tone stays in one band


@given(k=st.lists(st.floats(-0.999, 0.999), min_size=1, max_size=32))
def test_step_up_and_step_down_are_inverse(k):
    k = np.array(k)
    a = lpc_from_reflection(k)
    assert a[0] == 1.0
    # the step-down divides by 1 - k^2 at every stage: rounding grows with that product
    amplification = np.prod(1.0 / (1.0 - k**2))
    assert_allclose(reflection_from_lpc(a), k, atol=1e-13 * amplification)
    # poles inside the unit circle, up to the root finder's own error (k near -1 puts several
    # poles within 1e-8 of the circle, and np.roots is off by a few 1e-16 there)
    assert np.all(np.abs(np.roots(a)) < 1 + 1e-9) if len(k) <= 16 else True


def test_lar_maps_every_vector_to_a_stable_filter(rng):
    g = rng.normal(0, 5, (200, 12))
    k = reflection_from_lar(g)
    assert np.all(np.abs(k) < 1)  # |k| < 1 for every k is what makes the filter stable
    assert_allclose(lar_from_reflection(k), g, rtol=1e-9, atol=1e-9)
    # and, where root-finding is accurate enough to tell, the poles are inside
    a = lpc_from_reflection(reflection_from_lar(rng.normal(0, 1.5, (20, 12))))
    for row in a[:20]:
        assert np.all(np.abs(np.roots(row)) < 1)


def test_reflection_from_lpc_matches_levinson(rng):
    a_true = stable_lpc(rng, 10)
    frames = rng.standard_normal((20, 2048))
    a, k, _ = kernels.lpc_analysis(frames, 10)
    assert_allclose(reflection_from_lpc(a), k, atol=1e-12)
    assert_allclose(lpc_from_reflection(k), a, atol=1e-12)
    assert_allclose(reflection_from_lpc(lpc_from_reflection(reflection_from_lpc(a_true))),
                    reflection_from_lpc(a_true), atol=1e-12)


def test_frame_harmonicity_is_the_windowed_autocorrelation_peak():
    """Each hop region's harmonicity equals, computed directly with
    np.correlate, the peak of a Hann window's autocorrelation (centred on the
    region, zeros beyond the ends) over the lags of 60-1000 Hz, divided by
    its value at lag 0; a subset of regions reads the same; a silent window
    is NaN; a steady tone reads near 1 and white noise low."""
    from ssgs.features import frame_harmonicity

    sr, frame, hop = 16000, 1024, 256
    rng = np.random.default_rng(3)
    t = np.arange(sr) / sr
    x = np.concatenate([np.sin(2 * np.pi * 150 * t) + 0.3 * np.sin(2 * np.pi * 450 * t + 1.0),
                        np.zeros(4 * frame), rng.standard_normal(sr)])
    h = frame_harmonicity(x, frame, hop, sr)
    assert h.shape == (-(-x.size // hop),)
    padded = np.pad(x, (frame // 2, 2 * frame))
    lo, hi = int(sr / 1000), int(np.ceil(sr / 60))
    checked = [0, 3, 30, 62, 70, 80, 100, h.size - 1]
    for f in checked:
        w = padded[f * hop + hop // 2: f * hop + hop // 2 + frame] * np.hanning(frame)
        ac = np.correlate(w, w, mode="full")[frame - 1:]
        if ac[0] == 0:
            assert np.isnan(h[f]), f
        else:
            assert_allclose(h[f], ac[lo:hi + 1].max() / ac[0], rtol=1e-9, atol=1e-12, err_msg=str(f))
    assert np.isnan(h[(sr + 2 * frame) // hop])  # inside the silence
    assert_array_equal(frame_harmonicity(x, frame, hop, sr, frames=checked), h[checked])
    assert np.median(h[5:55]) > 0.9  # the tone
    assert np.median(h[-55:-5]) < 0.3  # the noise
