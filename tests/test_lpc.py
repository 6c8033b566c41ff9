import numpy as np
import pytest
import scipy.linalg
import scipy.signal
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from ssgs import kernels

from reference import autocorrelation, lfilter_frames, lpc_toeplitz, reflection_from_lpc
from signals import ar_process, stable_lpc, windowed_frames

SR, HOP = 16000, 256


def ar_frames(rng, n_frames=40, frame_len=512, order=10):
    x = ar_process(rng, stable_lpc(rng, order, radius=0.9)[1:], n_frames * frame_len // 2 + frame_len)
    return windowed_frames(x, frame_len, frame_len // 2)[:n_frames]


@pytest.mark.parametrize("order", [1, 2, 5, 12, 20, 32])
def test_lpc_analysis_matches_toeplitz_solve(rng, order):
    frames = ar_frames(rng, order=min(order, 16))
    a, k, err = kernels.lpc_analysis(frames, order)
    assert a.shape == (len(frames), order + 1) and k.shape == (len(frames), order)
    for f in range(len(frames)):
        ref_a, ref_err = lpc_toeplitz(frames[f], order)
        # a backward-stable solve is accurate to (condition number) x eps, normwise
        r = autocorrelation(frames[f], order)
        cond = np.linalg.cond(scipy.linalg.toeplitz(r[:order]))
        assert np.linalg.norm(a[f] - ref_a) <= 10 * cond * 2.2e-16 * np.linalg.norm(ref_a)
        assert_allclose(err[f], ref_err, rtol=1e-7)
        assert_allclose(k[f], reflection_from_lpc(a[f]), rtol=1e-7, atol=1e-10)
    assert np.all(np.abs(k) < 1)


def test_lpc_analysis_recovers_ar_coefficients(rng):
    # x[n] = 0.65 x[n-1] - 0.3 x[n-2] + 0.2 x[n-3] - 0.1 x[n-4] + w[n]
    true = np.array([1.0, -0.65, 0.3, -0.2, 0.1])
    x = ar_process(rng, true[1:], 400_000)
    frames = windowed_frames(x, 4096, 4096)
    a, _, err = kernels.lpc_analysis(frames, 4)
    assert_allclose(a.mean(axis=0), true, atol=0.01)
    assert_allclose(np.median(err / np.sum(np.hanning(4096) ** 2)), 1.0, rtol=0.05)


def test_float32_frames_equal_their_float64_values(rng):
    frames32 = ar_frames(rng).astype(np.float32)
    got = kernels.lpc_analysis(frames32, 12)
    want = kernels.lpc_analysis(frames32.astype(np.float64), 12)
    for g, w in zip(got, want):
        assert g.dtype == np.float64
        assert_array_equal(g, w)


def test_silent_frames_give_the_identity_filter(rng):
    frames = ar_frames(rng, n_frames=6)
    frames[[0, 3, 5]] = 0.0
    a, k, err = kernels.lpc_analysis(frames, 12)
    for f in (0, 3, 5):
        assert_array_equal(a[f], np.eye(1, 13)[0])
        assert_array_equal(k[f], 0.0)
        assert err[f] == 0.0
    assert np.all(err[[1, 2, 4]] > 0)


@pytest.mark.parametrize("signal", ["tone", "dc", "impulse", "alternating"])
def test_degenerate_frames_stay_finite_and_minimum_phase(signal):
    n = np.arange(1024)
    x = {"tone": np.sin(2 * np.pi * 0.05 * n), "dc": np.ones(1024),
         "impulse": np.eye(1, 1024, 500)[0], "alternating": (-1.0) ** n}[signal]
    a, k, err = kernels.lpc_analysis((x * np.hanning(1024))[None], 32)
    assert np.isfinite(a).all() and np.isfinite(k).all() and np.isfinite(err).all()
    assert np.all(np.abs(k) < 1) and err[0] >= 0
    assert np.all(np.abs(np.roots(a[0])) < 1)


def test_lpc_analysis_is_the_same_for_any_thread_count(rng):
    frames = ar_frames(rng, n_frames=300)
    one = kernels.lpc_analysis(frames, 12, n_threads=1)
    for nt in (2, 3):
        for g, w in zip(kernels.lpc_analysis(frames, 12, n_threads=nt), one):
            assert_array_equal(g, w)


@given(
    n_frames=st.integers(0, 8), frame_len=st.integers(1, 300), order=st.integers(1, 32),
    scale=st.sampled_from([1e-8, 1.0, 1e4]), n_silent=st.integers(0, 3), seed=st.integers(0, 2**32 - 1),
)
def test_lpc_analysis_properties(n_frames, frame_len, order, scale, n_silent, seed):
    rng = np.random.default_rng(seed)
    frames = rng.standard_normal((n_frames, frame_len)) * np.hanning(frame_len + 2)[1:-1] * scale
    frames[: min(n_silent, n_frames)] = 0.0
    a, k, err = kernels.lpc_analysis(frames, order)
    assert np.isfinite(a).all() and np.isfinite(k).all() and np.isfinite(err).all()
    assert_array_equal(a[:, 0], 1.0)
    assert np.all(np.abs(k) < 1) and np.all(err >= 0)
    # scale invariance: the filter of x * c is the filter of x
    if n_frames:
        a1, k1, err1 = kernels.lpc_analysis(frames / scale, order)
        assert_allclose(a, a1, rtol=1e-6, atol=1e-6)
        assert_allclose(err, err1 * scale**2, rtol=1e-6)
    # the prediction-error power is what the filter leaves of the correlation
    for f in range(n_frames):
        if err[f] > 0:
            r = autocorrelation(frames[f], order)
            r[0] *= 1 + 1e-9
            assert_allclose(err[f], r @ a[f], rtol=1e-6, atol=1e-12 * r[0])


def time_varying_filters(rng, n_frames, order):
    return np.array([stable_lpc(rng, order, radius=0.97) for _ in range(n_frames)]).reshape(n_frames, order + 1)


@pytest.mark.parametrize("n,hop", [(1000, 256), (1024, 256), (7, 3), (1, 1), (5, 64)])
def test_residual_and_synthesis_match_lfilter(rng, n, hop):
    order = 6
    a = time_varying_filters(rng, -(-n // hop), order)
    x = rng.standard_normal(n)
    e = kernels.lpc_residual(x, a, hop)
    assert_allclose(e, lfilter_frames(x, a, hop, inverse=False), rtol=1e-12, atol=1e-12)
    zi = rng.standard_normal(order)
    y, zf = kernels.lpc_synthesis(e, a, hop, zi=zi)
    assert_allclose(y, lfilter_frames(e, a, hop, inverse=True, zi_outputs=zi), rtol=1e-10, atol=1e-10)
    assert_array_equal(zf, np.concatenate([zi, y])[-order:])


def test_residual_then_synthesis_gives_the_signal_back(rng):
    x = ar_process(rng, stable_lpc(rng, 12, 0.99)[1:], 48_000)
    hop = 256
    a, _, _ = kernels.lpc_analysis(np.pad(x, (0, -len(x) % hop)).reshape(-1, hop), 12)
    y, _ = kernels.lpc_synthesis(kernels.lpc_residual(x, a, hop), a, hop)
    assert_allclose(y, x, rtol=0, atol=1e-11 * np.abs(x).max())


@given(
    n=st.integers(0, 700), hop=st.integers(1, 300), order=st.integers(1, 32),
    scale=st.sampled_from([1e-8, 1.0, 1e4]), seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_property(n, hop, order, scale, seed):
    rng = np.random.default_rng(seed)
    a = time_varying_filters(rng, -(-n // hop), order)
    x = rng.standard_normal(n) * scale
    e = kernels.lpc_residual(x, a, hop)
    y, zf = kernels.lpc_synthesis(e, a, hop)
    # a few ulps of rounding per sample, each amplified by the time-varying
    # synthesis filter: |H| summed along each row, H[:, m] the response to an
    # impulse at m
    H = np.array([kernels.lpc_synthesis(np.eye(1, n, m)[0], a, hop)[0] for m in range(n)]).reshape(n, n).T
    ulp = np.finfo(float).eps * (order + 1) * max(np.abs(e).max(initial=0), np.abs(x).max(initial=0))
    assert np.all(np.abs(y - x) <= 8 * ulp * np.abs(H).sum(axis=1).reshape(n))
    assert zf.shape == (order,)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5, 12, 24])
def test_four_samples_at_a_time_equal_one_at_a_time_bit_for_bit(rng, order):
    """One filter for every frame, run with frames of 3 samples (each sample
    a step of its own) and of 256 (four samples at a time): the same bits."""
    a = np.tile(stable_lpc(rng, order, radius=0.95), (1, 1))
    e = rng.standard_normal(3 * 256)
    by_steps, _ = kernels.lpc_synthesis(e, np.repeat(a, 256, axis=0), 3)
    by_blocks, _ = kernels.lpc_synthesis(e, np.repeat(a, 3, axis=0), 256)
    assert_array_equal(by_blocks, by_steps)
    assert_allclose(by_blocks, scipy.signal.lfilter([1.0], a[0], e), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("split", [0, 1, 2, 5, 255, 256, 257, 511, 512, 513, 999, 1000])
def test_synthesis_in_pieces_equals_one_call_bit_for_bit(rng, split):
    hop, order, n = 256, 12, 1000
    a = time_varying_filters(rng, -(-n // hop), order)
    e = rng.standard_normal(n)
    whole, zf_whole = kernels.lpc_synthesis(e, a, hop)
    x_whole = kernels.lpc_residual(whole, a, hop)
    # split on a frame boundary so both pieces start with a fresh frame
    s = (split // hop) * hop
    first, zf = kernels.lpc_synthesis(e[:s], a[: -(-s // hop)], hop)
    second, zf2 = kernels.lpc_synthesis(e[s:], a[s // hop :], hop, zi=zf)
    assert_array_equal(np.concatenate([first, second]), whole)
    assert_array_equal(zf2, zf_whole)
    r1 = kernels.lpc_residual(whole[:s], a[: -(-s // hop)], hop)
    r2 = kernels.lpc_residual(whole[s:], a[s // hop :], hop, zi=np.concatenate([np.zeros(order), whole[:s]])[-order:])
    assert_array_equal(np.concatenate([r1, r2]), x_whole)


def test_unstable_filter_is_reported_with_its_frame(rng):
    a = np.tile([1.0, -2.5, 1.0], (8, 1))  # a pole outside the unit circle
    a[:3] = [1.0, -0.5, 0.1]
    with pytest.raises(FloatingPointError, match=r"frame \d+.*unstable"):
        kernels.lpc_synthesis(rng.standard_normal(8 * 1000), a, 1000)


@pytest.mark.parametrize("f0", [65.0, 110.0, 220.0, 440.0, 880.0])
def test_pitch_of_harmonic_tones(f0):
    t = np.arange(SR) / SR
    x = sum(np.sin(2 * np.pi * f0 * h * t + h) / h for h in range(1, 8) if f0 * h < SR / 2)
    est, per = kernels.pitch(x.astype(np.float32), HOP, 1024, SR)
    mid = slice(4, -4)
    assert_allclose(np.median(est[mid]), f0, rtol=0.005)
    assert np.median(per[mid]) > 0.95


def test_pitch_of_noise_and_silence():
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    _, per = kernels.pitch(noise, HOP, 1024, SR)
    assert np.median(per) < 0.3
    f0, per = kernels.pitch(np.zeros(SR, np.float32), HOP, 1024, SR)
    assert_array_equal(f0, 0.0)
    assert_array_equal(per, 0.0)
