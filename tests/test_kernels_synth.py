"""The synthesis kernels (ssgs.kernels.synth): excitation signals, and the
smoothly varying all-pole filter against a plain reference."""

import numpy as np
import pytest
import scipy.signal
from numpy.testing import assert_allclose, assert_array_equal
from signals import music_like

from ssgs import SpectralStateGuidedSynthesis, kernels
from ssgs.features import lpc_from_reflection, reflection_from_lpc
from ssgs.synthesis.excitation import pulse_shape

SR, HOP = 16000, 256


def harmonic_share(x, f0, n_fft=16384, top=4000.0):
    """Share of the power below ``top`` Hz lying within an eighth of the
    harmonic spacing of a multiple of f0 (an independent, spectral check)."""
    spec = np.abs(np.fft.rfft(x[:n_fft] * np.hanning(n_fft))) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1 / SR)
    band = (freqs > 0.5 * f0) & (freqs < top)
    h = freqs[band] / f0
    return spec[band][np.abs(h - np.rint(h)) < 0.125].sum() / spec[band].sum()


@pytest.mark.parametrize("kind", ["karplus-strong", "pulses"])
@pytest.mark.parametrize("f0", [110.0, 330.0, 777.0])
def test_excitation_has_the_asked_pitch_and_unit_power(kind, f0):
    F = 200
    pulse, os_ = pulse_shape("db2") if kind == "pulses" else (None, 1)
    e = kernels.excitation(kind, np.full(F, f0), np.ones(F), np.eye(1, F, 0)[0], HOP, SR, seed=4,
                           pulse=pulse, pulse_oversampling=os_)
    assert e.shape == (F * HOP,)
    assert_allclose(np.sqrt(np.mean(e**2)), 1.0, rtol=0.15)
    seg = e[20 * HOP :]
    assert harmonic_share(seg, f0) > 0.9  # broadband noise would give about 0.25
    est, per = kernels.pitch(seg.astype(np.float32), HOP, 1024, SR)
    assert_allclose(np.median(est), f0, rtol=0.01)


@pytest.mark.parametrize("f0", [110.0, 330.0, 777.0])
def test_karplus_strong_is_clean_between_partials_and_keeps_its_colour(f0):
    """In short frames (1024, Hann, as the quality benchmark's), the string
    leaves the valleys between its partials empty: under 0.1% of the power
    lies 0.3 of a harmonic spacing or more from a partial (a flattening
    filter switched hop by hop put 0.2-1.2% there). And it does not darken
    from pluck to fade: the share of power above 2 kHz stays near white
    noise's 0.75 early and late."""
    F, n = 100, 1024
    e = kernels.excitation("karplus-strong", np.full(F, f0), np.ones(F), np.eye(1, F, 0)[0], HOP, SR, seed=4)
    frames = np.lib.stride_tricks.sliding_window_view(e[4 * HOP :], n)[::HOP]
    spec = np.abs(np.fft.rfft(frames * np.hanning(n), axis=1)) ** 2
    freqs = np.fft.rfftfreq(n, 1 / SR)
    band = (freqs > 0.5 * f0) & (freqs < 4000.0)
    h = freqs[band] / f0
    off = np.abs(h - np.rint(h)) > 0.3
    assert np.median(spec[:, band][:, off].sum(1) / spec[:, band].sum(1)) < 1e-3
    high = spec[:, freqs > 2000.0].sum(1) / spec.sum(1)
    assert 0.6 < high[1] < 0.95 and 0.6 < high[75] < 0.95, (high[1], high[75])


@pytest.mark.parametrize("f0", [125.0, 200.0, 311.0])
def test_karplus_strong_pluck_gives_every_partial_the_same_level(f0):
    """The string is plucked with one period of every partial at the same
    amplitude, each at a random phase: its partials come out level (a
    noise burst gave each a random one: exponential power, 5.6 dB of
    spread), and the seed changes the phases, not the levels."""
    F, n = 40, 4096
    spreads, spectra = [], []
    for seed in (1, 2, 3):
        e = kernels.excitation("karplus-strong", np.full(F, f0), np.ones(F), np.eye(1, F, 0)[0], HOP, SR, seed=seed)
        spec = np.abs(np.fft.rfft(e[2 * HOP : 2 * HOP + n] * np.hanning(n))) ** 2
        freqs = np.fft.rfftfreq(n, 1 / SR)
        partials = np.array([spec[np.abs(freqs - k * f0) < 0.3 * f0].sum() for k in range(1, int(7000 / f0))])
        spreads.append(np.std(10 * np.log10(partials)))
        spectra.append(e[: 4 * HOP])
    assert max(spreads) < 1.0, spreads
    assert not np.allclose(spectra[0], spectra[1])


def test_excitation_voicing_and_seeds():
    F = 200
    f0 = np.full(F, 200.0)
    voiced = kernels.excitation("karplus-strong", f0, np.full(F, 1.0), np.eye(1, F, 0)[0], HOP, SR, seed=1)
    unvoiced = kernels.excitation("karplus-strong", f0, np.zeros(F), np.eye(1, F, 0)[0], HOP, SR, seed=1)
    per_v = kernels.pitch(voiced.astype(np.float32), HOP, 1024, SR)[1]
    per_u = kernels.pitch(unvoiced.astype(np.float32), HOP, 1024, SR)[1]
    assert np.median(per_v) > 0.9 > 0.4 > np.median(per_u)
    assert_array_equal(voiced, kernels.excitation("karplus-strong", f0, np.ones(F), np.eye(1, F, 0)[0], HOP, SR, seed=1))
    other = kernels.excitation("karplus-strong", f0, np.ones(F), np.eye(1, F, 0)[0], HOP, SR, seed=2)
    assert not np.allclose(voiced, other)
    noise = kernels.excitation("noise", f0, np.ones(F), np.zeros(F), HOP, SR, seed=3)
    assert_allclose(noise.std(), 1.0, rtol=0.01)
    assert abs(np.mean(noise)) < 0.01
    spectrum = np.abs(np.fft.rfft(noise.reshape(-1, 1024), axis=1)) ** 2
    bands = spectrum.mean(0)[1:].reshape(-1, 64).mean(1)
    assert bands.max() / bands.min() < 1.3  # white


def smooth_reference(e, k, log_gain, hop, block):
    """The smooth synthesis written out plainly: per block of samples,
    reflection coefficients interpolated between frame centres, step-up to a
    direct-form all-pole filter fed g * prod(sqrt(1 - k^2)) * e, the gain
    interpolated in log between centres and linearly within a block, from
    where the previous block's ramp ended."""
    n, (F, p) = len(e), k.shape
    centres = np.arange(F) * hop + hop / 2

    def at(t, values):
        return np.array([np.interp(t, centres, values[:, i]) for i in range(values.shape[1])])

    def gain(t):
        return np.exp(np.interp(t, centres, log_gain))

    y = np.zeros(n + p)
    g1 = None
    for s0 in range(0, n, block):
        s1 = min(n, s0 + block)
        kk = at(0.5 * (s0 + s1 - 1), k)
        a = lpc_from_reflection(kk)
        norm = np.prod(np.sqrt(1 - kk**2))
        # each block's gain ramp starts where the previous one ended: no step
        g0, g1 = (gain(s0) * norm if g1 is None else g1), gain(s1) * norm
        for t in range(s0, s1):
            x = e[t] * (g0 + (g1 - g0) * (t - s0) / (s1 - s0))
            y[p + t] = x - a[1:] @ y[p + t - 1 : t - 1 if t else None : -1][:p]
    return y[p:]


def test_smooth_synthesis_matches_a_plain_reference(rng):
    F, p = 12, 6
    k = rng.uniform(-0.9, 0.9, (F, p))
    log_gain = rng.normal(-1, 0.5, F)
    e = rng.standard_normal(F * HOP - 37)
    y, zf = kernels.lpc_synthesis_smooth(e, k, log_gain, HOP, block=16)
    assert_allclose(y, smooth_reference(e, k, log_gain, HOP, 16), rtol=1e-9, atol=1e-12)
    assert_array_equal(zf, y[-p:])


def test_replaying_a_residual_through_the_smooth_filter_keeps_its_spectrum(rng):
    # the direct form's state is the signal itself: coefficient updates leave
    # no transient, and the residual comes back as the audio's spectrum
    # (a lattice filter sprays high-frequency noise at every update here)
    x = music_like(rng, 4.0)
    m = SpectralStateGuidedSynthesis(n_states=3, seed=0).train([x], SR, 1)
    a = np.concatenate([np.ones((len(m.lpc_coefficients), 1)), m.lpc_coefficients], axis=1)
    k = reflection_from_lpc(a)
    e = m.residual_signals.reshape(-1).astype(np.float64)
    undo = -0.5 * np.sum(np.log1p(-k * k), axis=1)
    ref, _ = kernels.lpc_synthesis(e, a, HOP)
    switched, _ = kernels.lpc_synthesis_smooth(e, k, undo, HOP, block=HOP)
    smooth, _ = kernels.lpc_synthesis_smooth(e, k, undo, HOP, block=16)

    def high_band_db(y):  # mean level in 5-8 kHz, frame by frame, against the exact replay
        spec = [np.abs(np.fft.rfft(z[: len(z) // 1024 * 1024].reshape(-1, 1024) * np.hanning(1024), axis=1)) ** 2
                for z in (y, ref)]
        band = slice(320, 513)
        return 10 * np.mean(np.log10(spec[0][:, band].mean(1) / spec[1][:, band].mean(1)))

    # update transients would show as added high-frequency power (a lattice
    # filter updated the same way added about 11 dB here)
    assert abs(high_band_db(switched)) < 1.0
    assert abs(high_band_db(smooth)) < 1.0


def test_smooth_synthesis_is_the_all_pole_filter_when_nothing_moves(rng):
    k = np.tile(rng.uniform(-0.8, 0.8, 8), (40, 1))
    e = rng.standard_normal(40 * HOP)
    y, _ = kernels.lpc_synthesis_smooth(e, k, np.full(40, np.log(0.5)), HOP)
    a = lpc_from_reflection(k[0])
    ref = scipy.signal.lfilter([0.5 * np.prod(np.sqrt(1 - k[0] ** 2))], a, e)
    assert_allclose(y, ref, rtol=1e-9, atol=1e-12)
    # the normalised lattice keeps white input's power
    assert_allclose(np.std(y[HOP:]), 0.5, rtol=0.1)


def test_smooth_synthesis_in_pieces_joins_exactly(rng):
    # a piece cannot look ahead to the next one's frames, so the parameters
    # interpolate differently near a seam; where they do not change across
    # it, pieces continued with zi/zf equal one call bit for bit
    F = 30
    k = np.tile(rng.uniform(-0.9, 0.9, 10), (F, 1))
    g = np.full(F, -0.5)
    e = rng.standard_normal(F * HOP)
    whole, zf_whole = kernels.lpc_synthesis_smooth(e, k, g, HOP)
    first, zf = kernels.lpc_synthesis_smooth(e[: 12 * HOP], k[:12], g[:12], HOP)
    second, zf2 = kernels.lpc_synthesis_smooth(e[12 * HOP :], k[12:], g[12:], HOP, zi=zf)
    assert_array_equal(np.concatenate([first, second]), whole)
    assert_array_equal(zf2, zf_whole)
