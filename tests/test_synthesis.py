"""Generation: the synthesis kernels, what fidelity means, how it sounds, bad input."""

import os

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import soxr
from commands import command
from excitation import excitation_tables
from numpy.testing import assert_allclose, assert_array_equal
from signals import music_like, tone

from ssgs import SpectralStateGuidedSynthesis, SSGSError, kernels
from ssgs import synthesis as S
from ssgs.features import lpc_from_reflection, reflection_from_lpc
from ssgs.hmm import HMMParams

SR, HOP = 16000, 256


def snr_db(ref, est):
    return 10 * np.log10(np.sum(ref**2) / max(np.sum((ref - est) ** 2), 1e-300))


@pytest.fixture(scope="module")
def audio():
    rng = np.random.default_rng(31)
    return [music_like(rng, 5.0), music_like(rng, 4.0) * 0.5, music_like(rng, 6.0)]


@pytest.fixture(scope="module")
def model(audio):
    return SpectralStateGuidedSynthesis(n_states=8, seed=2).train(audio, SR, n_em_iterations=8)


# ---------------------------------------------------------------- kernels
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
    pulse, os_ = S._pulse_shape() if kind == "pulses" else (None, 1)
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


# -------------------------------------------------------------- fidelity
@pytest.mark.parametrize("start", [(0, 0.0), (1, 1.37), (2, 0.5)])
def test_fidelity_one_rebuilds_the_training_audio(model, audio, start):
    index, seconds = start
    y, details = model.generate(2.0, fidelity=1.0, start=start, return_details=True)
    s0 = int(round(seconds * SR))
    ref = audio[index][s0 : s0 + len(y)]
    assert y.dtype == np.float32 and len(y) == 2 * SR
    assert snr_db(ref, y) >= 60
    assert details.source_index == index and details.start_sample == s0
    assert details.source_path == "audio[%d]" % index
    assert len(details.state_path) == -(-(2 * SR + s0 % HOP) // HOP) or len(details.state_path) > 0


def test_fidelity_one_runs_across_file_boundaries(model, audio):
    y = model.generate(2.5, fidelity=1.0, start=(0, 4.0))
    ref = np.concatenate([audio[0][4 * SR :], audio[1]])[: len(y)]
    assert snr_db(ref, y) >= 60
    tail = model.generate(3.0, fidelity=1.0, start=(2, 5.0))  # past the last file: round to the first
    assert snr_db(np.concatenate([audio[2][5 * SR :], audio[0]])[: len(tail)], tail) >= 60


def test_fidelity_zero_needs_no_training_artifacts(model, tmp_path):
    path = tmp_path / "small.safetensors"
    model.save_checkpoint(path, include_training_artifacts=False)
    light = SpectralStateGuidedSynthesis.load_checkpoint(path)
    assert light.residual_signals is None and light.observations is None
    y_light = light.generate(2.0, fidelity=0.0, seed=9)
    y_full = model.generate(2.0, fidelity=0.0, seed=9)
    # the same samples whether or not training frames and residuals exist: none were used
    assert_array_equal(y_light, y_full)
    with pytest.raises(SSGSError, match="training artifacts"):
        light.generate(1.0, fidelity=0.5)


def test_distance_to_the_training_audio_never_grows_with_fidelity(model, audio):
    for start in [(0, 1.0), (2, 2.0)]:
        s0 = int(start[1] * SR)
        ref = audio[start[0]][s0 : s0 + 2 * SR]
        distances = [S.log_spectral_distance(ref, model.generate(2.0, fidelity=f, seed=5, start=start))
                     for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
        assert all(b <= a + 1e-9 for a, b in zip(distances, distances[1:])), distances
        assert distances[-1] < 1e-3


def test_passage_stretches_end_at_changes_of_state(rng):
    path = np.repeat(rng.integers(0, 5, 300), rng.integers(1, 12, 300))
    draws = S.passage_stretches(path, np.random.default_rng(4), 16, 64)
    assert draws.shape == path.shape
    assert_array_equal(draws, S.passage_stretches(path, np.random.default_rng(4), 16, 64))
    starts = np.flatnonzero(np.diff(draws)) + 1
    lengths = np.diff(np.concatenate([[0], starts, [path.size]]))
    assert lengths[:-1].min() >= 16 and lengths.max() <= 64
    changes = path[starts] != path[starts - 1]
    assert changes.mean() > 0.9  # almost every switch falls where the state changes
    assert np.all(lengths[:-1][~changes] == 64)  # the others after the longest stretch
    long = S.passage_stretches(np.zeros(1000, int), rng, 16, 64)  # no change at all: cut every 64
    assert np.all(np.diff(np.flatnonzero(np.diff(long)) + 1) == 64)


def test_blends_keep_the_passage_in_a_share_of_stretches(model, audio):
    """Between fidelity 0 and 1 the output is the passage's own audio
    (exactly) in stretches covering about that share of it (stretches last
    0.25-1 s, so 12 s hold some twenty: within 0.2), and the model's
    rendering elsewhere; a higher fidelity keeps every stretch a lower one
    kept (same seed and start)."""
    ref = np.concatenate(audio)[: 12 * SR]  # from the start of the first file, on into the others
    hop = model.hop_size
    own = {}
    for f in (0.25, 0.5, 0.75):
        y = model.generate(12.0, fidelity=f, seed=7, start=(0, 0.0)).astype(np.float64)
        error = np.abs(y - ref).reshape(-1, hop).max(axis=1)
        own[f] = error < 1e-6
        assert abs(own[f].mean() - f) < 0.2, (f, own[f].mean())
        assert np.mean(error[~own[f]] > 1e-3) > 0.9  # the rest is the model's
    assert np.all(own[0.5][own[0.25]]) and np.all(own[0.75][own[0.5]])
    assert own[0.25].mean() < own[0.75].mean()


@pytest.mark.parametrize("excitation", ["Karplus-Strong", "Wavelet", "Noise"])
def test_same_seed_same_samples(model, excitation):
    a = model.generate(1.5, excitation_type=excitation, seed=11)
    assert_array_equal(a, model.generate(1.5, excitation_type=excitation, seed=11))
    assert not np.array_equal(a, model.generate(1.5, excitation_type=excitation, seed=12))
    b = model.generate(1.5, fidelity=0.5, excitation_type=excitation, seed=11)
    assert_array_equal(b, model.generate(1.5, fidelity=0.5, excitation_type=excitation, seed=11))
    assert model.last_generation.seed == 11
    assert np.all(np.abs(a) <= 1.0) and np.isfinite(a).all()


def test_rng_and_seed(model):
    y1 = model.generate(0.5, rng=np.random.default_rng(3))
    y2 = model.generate(0.5, rng=np.random.default_rng(3))
    assert_array_equal(y1, y2)
    fresh, details = model.generate(0.5, return_details=True)
    assert_array_equal(fresh, model.generate(0.5, seed=details.seed))  # a drawn seed replays


# -------------------------------------------------------------- how it sounds
def test_loudness_follows_the_model_not_a_constant(tmp_path):
    rng = np.random.default_rng(4)
    loud = music_like(rng, 4.0)
    quiet = music_like(rng, 4.0) * 0.01
    m = SpectralStateGuidedSynthesis(n_states=6, seed=1).train([np.concatenate([loud, quiet, loud])], SR, 6)
    y = m.generate(30.0, seed=2)
    rms_db = 20 * np.log10(np.maximum(np.sqrt(np.mean(y[: len(y) // HOP * HOP].reshape(-1, HOP) ** 2, axis=1)), 1e-6))
    train_db = 20 * np.log10(np.maximum(np.sqrt(np.mean(
        np.concatenate([loud, quiet, loud])[:, None][: (12 * SR) // HOP * HOP].reshape(-1, HOP) ** 2, axis=1)), 1e-6))
    assert np.percentile(rms_db, 95) - np.percentile(rms_db, 5) > 0.5 * (
        np.percentile(train_db, 95) - np.percentile(train_db, 5))
    assert np.percentile(rms_db, 95) < np.percentile(train_db, 99) + 6


def test_no_clicks_at_frame_boundaries(model):
    y = model.generate(10.0, seed=3, excitation_type="Noise").astype(np.float64)
    d = np.abs(np.diff(y))
    at_boundary = d[np.arange(HOP - 1, len(d), HOP)]
    elsewhere = np.delete(d, np.arange(HOP - 1, len(d), HOP))
    assert np.percentile(at_boundary, 99) < 1.5 * np.percentile(elsewhere, 99)


def test_generated_pitch_follows_the_training_pitch():
    # a corpus of held tones at two pitches: generation should sound at those pitches
    parts = [tone(f, 1.0, SR, 0.3) + 0.2 * tone(2 * f, 1.0, SR, 0.3) for f in (196.0, 294.0) * 4]
    m = SpectralStateGuidedSynthesis(n_states=4, seed=0).train([np.concatenate(parts)], SR, 6)
    y = m.generate(8.0, seed=1).astype(np.float32)
    f0, per = kernels.pitch(y, HOP, 1024, SR)
    voiced = f0[per > 0.8]
    assert voiced.size > 0.5 * len(f0)
    near = np.minimum(np.abs(np.log2(voiced / 196.0)), np.abs(np.log2(voiced / 294.0)))
    assert np.median(near) < 1 / 24  # within a quarter tone


def test_pitch_motion_worked_example():
    f0 = np.array([100.0, 100.0, 101.0, 120.0, 0.0, 120.0, 121.0])
    per = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.2])
    # voiced pairs: (100, 100), (100, 101), (101, 120); 101 -> 120 is a leap (3 semitones)
    moves = np.log([100 / 100, 101 / 100])
    assert_allclose(S.pitch_motion(f0, per), [1 / 3, np.std(moves)])
    assert_allclose(S.pitch_motion(f0, per, lengths=[2, 5]), [1 / 2, 0.0])  # no pair across sequences
    assert_array_equal(S.pitch_motion(np.zeros(4), np.ones(4)), [0.0, 0.0])


def test_leap_intervals_worked_example():
    semitone = 2 ** (1 / 12)
    # voiced moves: 2 semitones, 0.2 (a step), 5 semitones down; an unvoiced frame breaks the pairs
    f0 = np.array([100.0, 100 * semitone**2, 100 * semitone**2.2, 100 * semitone**-2.8, 0.0, 300.0])
    per = np.full(6, 0.9)
    expected = np.zeros(S.N_PITCH_BINS)
    for size in (2, 5):  # each leap spread over its size and its neighbours (1/4, 1/2, 1/4)
        expected[size - 1:size + 2] += [0.25, 0.5, 0.25]
    assert_allclose(S.leap_intervals(f0, per), expected / expected.sum())
    # at either end of the sizes (a semitone; beyond the table, the last size) nothing spills out
    near = S.leap_intervals(np.array([100.0, 100 * semitone**1.1]), np.ones(2))
    assert_allclose(near[:3], [0.0, 0.75, 0.25]) and near.sum() == pytest.approx(1.0)
    far = S.leap_intervals(np.array([60.0, 1000.0]), np.ones(2))
    assert_allclose(far[-2:], [0.25, 0.75]) and far.sum() == pytest.approx(1.0)
    assert S.leap_intervals(np.full(5, 100.0), np.ones(5)) is None  # no leap


def test_a_leap_goes_as_far_as_the_trainings_leaps():
    """Within a state, a leap draws its new note from the state's pitch
    histogram weighted by how far the training leapt: with leaps of two
    semitones in training, the notes land two semitones (one to three)
    from the pitch held, where the histogram alone lands anywhere in the
    state's range; with no bin within reach, the histogram alone."""
    exc = S.ExcitationModel.neutral(1)  # MIDI 45..69 evenly
    exc.pitch_leaps = S.leap_intervals(100 * 2 ** (np.arange(0, 40, 2) / 12), np.ones(20))
    rng = np.random.default_rng(5)
    current = exc.pitch_log_f0[0, 57 - S.MIDI_LOW]  # MIDI 57, mid-range
    sizes = np.array([abs(S._draw_pitch(exc, 0, rng, current) - current) for _ in range(400)]) * 12 / np.log(2)
    assert np.all((sizes > 0.5) & (sizes < 3.5)) and np.mean(np.abs(sizes - 2) < 0.5) > 0.4
    anywhere = np.array([abs(S._draw_pitch(exc, 0, rng) - current) for _ in range(400)]) * 12 / np.log(2)
    assert np.mean(anywhere > 4) > 0.5
    exc.pitch_histogram = exc.pitch_histogram * 0
    exc.pitch_histogram[0, [30, 33]] = 0.5  # MIDI 65 and 68, 8 and 11 semitones away: no leap of the training's
    drawn = {round(S._draw_pitch(exc, 0, rng, current), 9) for _ in range(60)}  # reaches them: the histogram
    assert drawn == {round(float(exc.pitch_log_f0[0, b]), 9) for b in (30, 33)}


def test_only_a_leap_within_a_state_is_weighted_by_the_leap_sizes(rng):
    """The leap sizes weight the draw of a leap within a state (from the
    pitch held); the first frame and a change of state draw from the new
    state's histogram alone."""
    N, D = 2, 14
    params = HMMParams(np.full(N, 0.5), np.full((N, N), 0.5), np.zeros((N, D)), np.stack([np.eye(D)] * N))
    exc = S.ExcitationModel.neutral(N)
    exc.pitch_motion = np.array([1.0, 0.0])  # a leap at every frame
    exc.pitch_leaps = S.leap_intervals(np.array([100.0, 100 * 2 ** (2 / 12)]), np.ones(2))
    path = np.array([0, 0, 0, 1, 1, 0, 0, 0, 1])
    calls = []
    original = S._draw_pitch
    try:
        S._draw_pitch = lambda e, s, r, current=None: calls.append(current is not None) or original(e, s, r, current)
        S.model_trajectory(params, exc, path, rng)
    finally:
        S._draw_pitch = original
    within = [t > 0 and path[t] == path[t - 1] for t in range(len(path))]
    assert sum(calls) == sum(within) == 5  # every leap within a state, weighted
    assert len(calls) - sum(calls) <= 4  # the first frame and at most the 3 changes of state


def test_generated_pitch_moves_as_the_training_pitch_moved():
    """Tones with a slow vibrato and a jump every second: the model's pitch
    wanders and leaps about as often and as far as the training's (a pitch
    held as long as a state allows it would be a monotone)."""
    t = np.arange(SR) / SR
    parts = []
    for i in range(10):
        f = 150.0 * 2 ** ((i * 5 % 12) / 12) * 2 ** (0.5 / 12 * np.sin(2 * np.pi * 1.5 * t))
        phase = 2 * np.pi * np.cumsum(f) / SR
        parts.append(0.3 * (np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase)))
    m = SpectralStateGuidedSynthesis(n_states=4, seed=0).train([np.concatenate(parts)], SR, 6)
    leap, step = m.excitation_model.pitch_motion
    assert 0.005 < leap < 0.05 and step > 0.002
    y, details = m.generate(30.0, seed=2, return_details=True)
    gen = S.pitch_motion(details.f0, np.ones(details.f0.size))
    assert 0.5 * leap < gen[0] < 2.0 * leap, (gen, leap)
    assert 0.5 * step < gen[1] < 2.0 * step, (gen, step)


def test_resampled_output(model):
    y = model.generate(1.0, sample_rate=44100, seed=1)
    assert len(y) == 44100
    native = model.generate(1.0, seed=1)
    assert_allclose(y, soxr.resample(native.astype(np.float64), SR, 44100, quality="HQ").astype(np.float32), atol=2e-3)


def test_soft_limit_only_touches_audio_that_would_clip():
    x = np.linspace(-0.99, 0.99, 100)
    assert_array_equal(S.soft_limit(x), x)
    loud = np.linspace(-3, 3, 1001)
    limited = S.soft_limit(loud)
    assert np.abs(limited).max() <= 1.0 and np.all(np.diff(limited) >= 0)
    assert_array_equal(limited[np.abs(loud) <= 0.9], loud[np.abs(loud) <= 0.9])


# ------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs,message", [
    ({"excitation_type": "Sine"}, "excitation_type must be one of 'Karplus-Strong', 'Wavelet', 'Noise'"),
    ({"fidelity": -0.1}, r"fidelity must be in \[0.0, 1.0\]"),
    ({"fidelity": 1.5}, r"fidelity must be in \[0.0, 1.0\]"),
    ({"duration_seconds": 0}, "duration_seconds must be in"),
    ({"duration_seconds": -2}, "duration_seconds must be in"),
    ({"sample_rate": 10}, "sample_rate must be an integer >= 1000"),
    ({"fidelity": 0.5, "start": (7, 0.0)}, "start file index must be in 0..2"),
    ({"fidelity": 0.5, "start": (0, 99.0)}, "past the end of file 0"),
    ({"fidelity": 0.5, "start": "0:1"}, r"start must be \(file_index, seconds\)"),
    ({"decoder": "beam"}, "decoder must be"),
])
def test_generate_rejects_bad_arguments(model, kwargs, message):
    args = {"duration_seconds": 1.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        model.generate(**args)


def test_excitation_names_are_forgiving(model):
    for name in ("karplus-strong", "KARPLUS_STRONG", "Karplus Strong", "wavelet", "noise"):
        model.generate(0.2, excitation_type=name, seed=0)
    assert model.synthesize_audio(0.2, seed=0).shape == (3200,)


# ------------------------------------------------------------- the CLI
run_generate = command("ssgs.generate", timeout=120)


def test_generate_cli(model, audio, tmp_path):
    ckpt = tmp_path / "m.safetensors"
    model.save_checkpoint(ckpt)
    out = tmp_path / "out.wav"
    proc = run_generate(ckpt, "-o", out, "--duration", "1.5", "--fidelity", "1", "--start", "1:0.5", "--seed", "1",
                        "--subtype", "FLOAT")
    assert proc.returncode == 0, proc.stderr
    assert "audio[1] at 0.50 s" in proc.stdout
    y, sr = sf.read(out)
    assert sr == SR and len(y) == int(1.5 * SR)
    assert snr_db(audio[1][SR // 2 : SR // 2 + len(y)], y) >= 60
    proc = run_generate(ckpt, "-o", tmp_path / "syn.flac", "--duration", "1", "--excitation", "wavelet", "--seed", "3",
                        "--sample-rate", "22050")
    assert proc.returncode == 0, proc.stderr
    assert sf.info(tmp_path / "syn.flac").samplerate == 22050


@pytest.mark.parametrize("case,code,message", [
    ("missing", 2, "no such checkpoint"),
    ("excitation", 2, "excitation_type must be one of"),
    ("fidelity", 2, r"fidelity must be in"),
    ("start", 2, "expected FILE_INDEX:SECONDS"),
    ("no_artifacts", 2, "training artifacts"),
    ("corrupt", 1, "does not match its SHA-256"),
    ("output", 2, "cannot write"),
])
def test_generate_cli_errors(model, tmp_path, case, code, message):
    ckpt = tmp_path / "m.safetensors"
    model.save_checkpoint(ckpt, include_training_artifacts=case != "no_artifacts")
    args = [ckpt, "-o", tmp_path / "o.wav", "--duration", "0.5"]
    if case == "missing":
        args[0] = tmp_path / "nope.safetensors"
    elif case == "excitation":
        args += ["--excitation", "sine"]
    elif case == "fidelity":
        args += ["--fidelity", "2"]
    elif case == "start":
        args += ["--start", "zero"]
    elif case == "no_artifacts":
        args += ["--fidelity", "0.5"]
    elif case == "corrupt":
        data = bytearray(ckpt.read_bytes())
        data[-5] ^= 0x01
        ckpt.write_bytes(bytes(data))
    elif case == "output":
        args[2] = tmp_path / "no" / "such" / "dir" / "o.wav"
    proc = run_generate(*args)
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert message in proc.stderr or (case == "start" and message in proc.stderr), proc.stderr
    assert not os.path.exists(tmp_path / "o.wav")


# ------------------------------------------------------------ residual shape and silence
def test_spectral_shape_of_white_and_coloured_noise(rng):
    hop = 256
    white = S.spectral_shape(rng.standard_normal((2000, hop)))
    assert white.shape == (2000, hop // 2 + 1)
    assert_allclose(white.mean(axis=1), 0.0, atol=1e-9)  # zero mean over frequency, frame by frame
    mean_white = white[:, 4:-4].mean(axis=0)  # away from DC and Nyquist (a real bin there: another bias)
    # flat within ~1 dB: a log periodogram's bias is the same in every bin, and
    # its spread (1.28 nats per bin) over 2000 frames leaves 0.03 nats
    assert np.ptp(mean_white) < 0.25
    # an FIR with a deep notch at 2 kHz: the shape follows its response
    b = scipy.signal.firwin2(65, [0, 0.2, 0.25, 0.3, 1], [1, 1, 0.01, 1, 1])
    coloured = scipy.signal.lfilter(b, [1.0], rng.standard_normal(400 * hop + 64))[64:].reshape(400, hop)
    shape = S.spectral_shape(coloured).mean(axis=0)
    freqs = np.arange(hop // 2 + 1) / (hop // 2)
    response = np.log(np.abs(scipy.signal.freqz(b, worN=freqs * np.pi)[1]) ** 2)
    notch, flank = np.argmin(np.abs(freqs - 0.25)), np.abs(freqs - 0.1) < 0.03
    assert abs(np.argmin(shape) - notch) <= 1
    depth, true_depth = shape[flank].mean() - shape[notch], response[flank].mean() - response[notch]
    assert 0.85 * true_depth < depth < true_depth  # the window's leakage only fills it in a little
    assert np.all(np.isnan(S.spectral_shape(np.zeros((2, hop)))))  # silent frames have no shape


def test_fit_shape_variation_recovers_known_directions(rng):
    B, T, N = S.SHAPE_BINS, 6000, 3
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
    components, got_spread, correlation, regression = S.fit_shape_variation(shapes, labels, state_shapes,
                                                                            lengths=[T], k=2)
    assert abs(components[0] @ c1) > 0.999 and abs(components[1] @ c2) > 0.99
    assert np.all(components[np.arange(2), np.argmax(np.abs(components), axis=1)] > 0)  # signs fixed
    assert_allclose(got_spread, spread, rtol=0.1)
    assert_allclose(correlation, 0.8, atol=0.05)
    assert regression is None  # nothing to regress on
    assert S.fit_shape_variation(np.full((5, B), np.nan), labels[:5], state_shapes) is None
    # the same shapes beside frames they do not follow: no component is regressed, nothing changes
    unrelated = rng.standard_normal((T, 5))
    again = S.fit_shape_variation(shapes, labels, state_shapes, lengths=[T], k=2,
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
    got = S.whitened_deviations(frames, means, covars, states)
    for f in range(F):
        L = np.linalg.cholesky(covars[states[f]])
        assert_allclose(got[f], np.linalg.solve(L, frames[f] - means[states[f]]), rtol=1e-10, atol=1e-12)
    # frames drawn from their states read N(0, I)
    many = rng.integers(0, N, 60000)
    drawn = means[many] + np.einsum("fij,fj->fi", np.linalg.cholesky(covars)[many], rng.standard_normal((60000, D)))
    assert_allclose(np.cov(S.whitened_deviations(drawn, means, covars, many).T), np.eye(D), atol=0.03)


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
    regression, spread, left = S.fit_shape_regression(coef, labels, frames, means, covars, N)
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
    again = S.fit_shape_regression(coef, labels, placed, means, covars, N, index=order[:T])
    assert_allclose(again[0], regression, atol=1e-12)
    # noise alone: nothing regressed, the coefficients' own spread
    none, spread_none, _ = S.fit_shape_regression(coef[:, 1:], labels, frames, means, covars, N)
    assert none is None
    assert_allclose(spread_none[:, 0], [np.sqrt(np.mean(coef[labels == s, 1] ** 2)) for s in range(N)])
    # a state of few frames (fewer than 2 D) is not regressed, and keeps its spread
    few = labels.copy()
    few[:5] = N
    reg_few, spread_few, _ = S.fit_shape_regression(coef, few, frames, np.vstack([means, means[:1]]),
                                                    np.concatenate([covars, covars[:1]]), N + 1)
    assert_array_equal(reg_few[N], 0.0)
    assert_allclose(spread_few[N], np.sqrt(np.mean(coef[:5] ** 2, axis=0)))
    # through fit_shape_variation: the first component follows the frame, the spread kept is the noise's
    B = S.SHAPE_BINS
    c1 = np.linspace(-1, 1, B) / np.linalg.norm(np.linspace(-1, 1, B))
    shapes = (coef[:, :1] * 4.0) @ c1[None, :]
    components, sp, _, reg = S.fit_shape_variation(shapes, labels, np.zeros((N, B)), lengths=[T], k=1,
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
    regression, spread, _ = S.fit_shape_regression(coef, labels, w, np.zeros((N, D)), eye, N, folds=2)
    assert regression is not None
    z = rng.standard_normal((200_000, D))
    for s in range(N):
        drawn = z @ regression[s, 0] + spread[s, 0] * rng.standard_normal(200_000)
        assert_allclose(np.var(drawn), np.mean(coef[labels == s, 0] ** 2), rtol=0.02)


def test_shape_excitation_follows_the_frames(rng):
    """With a shape regression and no spread, each frame's variation is the
    regression's prediction from its deviation along the components."""
    N, D, hop, F = 2, 3, 256, 12
    B = S.SHAPE_BINS
    exc = S.ExcitationModel.neutral(N)
    exc.residual_shape = np.zeros((N, B), np.float16)
    exc.shape_components = np.stack([np.linspace(-1, 1, B), np.cos(np.linspace(0, np.pi, B))]).astype(np.float16)
    exc.shape_spread = np.zeros((N, 2), np.float16)
    exc.shape_correlation = np.zeros(2)
    exc.shape_regression = rng.normal(0, 1, (N, 1, D)).astype(np.float16)
    path = rng.integers(0, N, F)
    dev = rng.standard_normal((F, D))
    e = rng.standard_normal(F * hop)
    got = exc.shape_excitation(e, path, hop, np.random.default_rng(0), colour=np.zeros((1, B)), deviations=dev)
    pred = np.einsum("fd,fd->f", exc.shape_regression[path, 0].astype(np.float64), dev)
    variation = pred[:, None] * exc.shape_components[0].astype(np.float64)
    want = S.shape_excitation(e, np.zeros((N, B)), hop, index=path, variation=variation, colour=np.zeros((1, B)))
    assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # without deviations (or without a regression) the frames do not move
    flat = S.shape_excitation(e, np.zeros((N, B)), hop, index=path, colour=np.zeros((1, B)))
    assert_allclose(exc.shape_excitation(e, path, hop, np.random.default_rng(0), colour=np.zeros((1, B))), flat,
                    atol=1e-12)
    assert np.max(np.abs(got - flat)) > 0.1


def test_shape_excitation_rebuilds_exactly_under_a_flat_shape(rng):
    hop, F = 256, 40
    e = rng.standard_normal(F * hop)
    out = S.shape_excitation(e, np.zeros((F, S.SHAPE_BINS)), hop, flatten=False)
    assert_allclose(out, e, atol=1e-12)


@pytest.mark.parametrize("kind", ["noise", "karplus-strong"])
def test_shape_excitation_gives_the_asked_spectrum(rng, kind):
    hop, F, sr = 256, 600, 16000
    freqs = np.linspace(0, sr / 2, S.SHAPE_BINS)
    target = np.where(np.abs(freqs - 3000) < 500, -3.0, 0.0) + np.where(freqs > 6000, -1.5, 0.0)
    target -= target.mean()
    f0 = np.full(F, 220.0)
    e = kernels.excitation(kind, f0, np.full(F, 0.5), np.eye(1, F, dtype=bool)[0], hop, sr, 3)
    out = S.shape_excitation(e, np.tile(target, (F, 1)), hop)
    # the output's spectrum, at the resolution the shapes have, is the target's
    f, po = scipy.signal.welch(out, sr, nperseg=hop)
    po = np.convolve(np.pad(po, 2, mode="reflect"), np.ones(5) / 5, mode="valid")  # 300 Hz: over the partials
    got = np.log(po) - np.log(po).mean()
    err = got - np.interp(f, freqs, target)
    inside = (f > 250) & (f < 7750) & (np.abs(np.abs(f - 3000) - 500) > 250) & (np.abs(f - 6000) > 250)
    assert np.abs(err[inside] - err[inside].mean()).max() < 0.5, err  # within 2.2 dB


def period_correlation(x, f0, frame=1024, hop=512):
    """Median over Hann-windowed frames of the normalised autocorrelation
    peak within 5% of the period 1 / f0 (the quality benchmark's
    harmonicity, searched near the known period)."""
    frames = np.lib.stride_tricks.sliding_window_view(x, frame)[::hop] * np.hanning(frame)
    ac = np.fft.irfft(np.abs(np.fft.rfft(frames, 2 * frame, axis=1)) ** 2, axis=1)
    lag = SR / f0
    near = slice(int(0.95 * lag), int(np.ceil(1.05 * lag)) + 1)
    return float(np.median(ac[:, near].max(axis=1) / ac[:, 0]))


def test_shape_excitation_takes_out_a_given_colour_exactly(rng):
    hop, F = 256, 40
    e = rng.standard_normal(F * hop)
    shape = rng.standard_normal((F, S.SHAPE_BINS))
    colour = rng.standard_normal((1, hop // 2 + 1))
    assert_allclose(S.shape_excitation(e, shape, hop, colour=colour),
                    S.shape_excitation(e, S.resample_bins(shape, hop // 2 + 1) - colour, hop, flatten=False),
                    atol=1e-12)


@pytest.mark.parametrize("kind", ["karplus-strong", "pulses"])
def test_a_colour_measured_over_many_notes_keeps_a_short_notes_partials(kind):
    """A quarter second of a steady 250 Hz note (its partials on the
    shaping's own bins), shaped flat. Its own mean log spectrum holds its
    partials, and taking that out leaves next to nothing periodic; the
    colour of the same excitation over many pitches has no partials in it
    and leaves the note as periodic as it was."""
    pulse, os_ = S._pulse_shape() if kind == "pulses" else (None, 1)
    F = 16
    note = kernels.excitation(kind, np.full(F, 250.0), np.ones(F), np.eye(1, F, 0)[0], HOP, SR, seed=4,
                              pulse=pulse, pulse_oversampling=os_)
    n = 2048  # notes of 8 hops at pitches spread over two octaves
    pitches = np.repeat(100.0 * 2 ** (np.random.default_rng(1).uniform(0, 2, n // 8)), 8)
    many = kernels.excitation(kind, pitches, np.ones(n), np.arange(n) % 8 == 0, HOP, SR, seed=5,
                              pulse=pulse, pulse_oversampling=os_)
    flat = np.zeros((F, S.SHAPE_BINS))
    before = period_correlation(note, 250.0)
    kept = period_correlation(S.shape_excitation(note, flat, HOP, colour=S.excitation_colour(many, HOP)), 250.0)
    filled = period_correlation(S.shape_excitation(note, flat, HOP), 250.0)
    assert before > 0.9
    assert kept > before - 0.02, (kept, before)
    assert filled < 0.5, (filled, before)  # the case the colour is for


def harmonicity(clips, frame=1024, hop=512):
    """The quality benchmark's harmonicity: the median over Hann-windowed
    frames (of each clip on its own) of the normalised autocorrelation peak
    at lags for 60-1000 Hz."""
    frames = np.concatenate([np.lib.stride_tricks.sliding_window_view(x, frame)[::hop] for x in clips])
    ac = np.fft.irfft(np.abs(np.fft.rfft(frames * np.hanning(frame), 2 * frame, axis=1)) ** 2, axis=1)
    return float(np.median(ac[:, SR // 1000 : SR // 60 + 1].max(axis=1) / ac[:, 0]))


def test_short_and_long_generations_are_as_periodic(tmp_path):
    """A model of a voice gliding over most of an octave (a pulse train
    through two formants): quarter-second clips come out as periodic as a
    long generation and as the training audio, since the colour taken out
    of the excitation is the model's, measured over many notes, not the
    clip's, which holds its few partials. The colour is part of the model:
    the same after a save and load, and measured without touching the
    caller's random stream."""
    rng = np.random.default_rng(3)
    files = []
    for k in range(3):
        n = 4 * SR
        f = 250 * 2 ** (0.35 * np.sin(2 * np.pi * np.arange(n) / SR / 3.0 + k))
        y = np.diff(np.floor(np.cumsum(f) / SR), prepend=0.0)  # a pulse per period
        for fc, bw in ((700.0, 120.0), (1800.0, 200.0)):
            r = np.exp(-np.pi * bw / SR)
            y = scipy.signal.lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * fc / SR), r * r], y)
        files.append(0.3 * y / np.abs(y).max() + 1e-3 * rng.standard_normal(n))
    model = SpectralStateGuidedSynthesis(n_states=3, seed=0).train(files, SR, n_em_iterations=5)
    trained = harmonicity(files)

    def short_and_long(kind):
        short = [model.generate(0.25, excitation_type=kind, seed=k).astype(np.float64) for k in range(24)]
        return harmonicity(short), harmonicity([model.generate(6.0, excitation_type=kind, seed=99)])

    shorts = {}
    for kind in ("Karplus-Strong", "Wavelet"):
        short, long = short_and_long(kind)
        shorts[kind] = short
        assert short > long - 0.01 and short > trained - 0.02, (kind, short, long, trained)
    colour = model._excitation_colour("karplus-strong")
    path = tmp_path / "m.safetensors"
    model.save_checkpoint(path, include_training_artifacts=False)
    loaded = SpectralStateGuidedSynthesis.load_checkpoint(path)
    assert_array_equal(loaded._excitation_colour("karplus-strong"), colour)
    fresh = SpectralStateGuidedSynthesis.load_checkpoint(path)  # its colour not yet measured
    assert_array_equal(fresh.generate(0.5, seed=7), loaded.generate(0.5, seed=7))
    model._excitation_colour = lambda kind: None  # each clip's own colour: the case the model's is for
    for kind in ("Karplus-Strong", "Wavelet"):
        short, long = short_and_long(kind)
        assert short < shorts[kind] - 0.025, (kind, short, shorts[kind], long)  # less periodic than with the model's


def test_silence_gate_is_exact_zero_in_silence_and_has_no_steps():
    hop = 64
    audible = np.array([1, 1, 0, 0, 1, 0, 1, 1, 1, 0], bool)
    g = S.silence_gate(audible, hop).reshape(-1, hop)
    assert np.all(g[~audible] == 0.0)
    assert np.all(g[[0, 7]] == 1.0)  # sounding hops away from silence are untouched
    assert np.abs(np.diff(np.concatenate([[1.0], g.reshape(-1), [0.0]]))).max() <= 2.0 / hop + 1e-12
    assert np.all(S.silence_gate(np.ones(5, bool), hop) == 1.0)


@pytest.fixture(scope="module")
def gapped():
    """Noise bursts (through a fixed resonance) separated by digital silence:
    about 40% of the frames are exact zeros."""
    rng = np.random.default_rng(7)
    sr, pieces = 16000, []
    for i in range(16):
        burst = scipy.signal.lfilter([0.3], [1.0, -1.2, 0.8], rng.standard_normal(int(sr * rng.uniform(0.3, 0.6))))
        pieces += [burst * np.hanning(len(burst)) ** 0.1, np.zeros(int(sr * rng.uniform(0.2, 0.4)))]
    x = np.concatenate(pieces)
    model = SpectralStateGuidedSynthesis(n_states=6, seed=1).train([x], sr, n_em_iterations=6)
    return x, model


def test_digital_silence_in_training_generates_digital_silence(gapped):
    x, model = gapped
    hop = model.hop_size
    share_train = np.mean(np.all(x[: len(x) // hop * hop].reshape(-1, hop) == 0, axis=1))
    assert model.excitation_model.silence.max() > 0.9  # a state of silence
    y = model.generate(60.0, fidelity=0.0, seed=3).astype(np.float64)
    share = np.mean(np.all(y[: len(y) // hop * hop].reshape(-1, hop) == 0, axis=1))
    assert 0.5 * share_train < share < 1.5 * share_train
    # and a model of audio without silence never goes silent
    rng = np.random.default_rng(2)
    noisy = SpectralStateGuidedSynthesis(n_states=4, seed=1).train([music_like(rng, 4.0)], 16000, n_em_iterations=4)
    assert noisy.excitation_model.silence.max() == 0.0
    z = noisy.generate(10.0, fidelity=0.0, seed=3)
    assert not np.any(np.all(z[: len(z) // hop * hop].reshape(-1, hop) == 0, axis=1))


def test_silence_run_lengths_worked_example():
    silent = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 1], bool)
    assert_array_equal(S.silence_run_lengths(silent, [5, 5]), [2, 1, 3])
    assert_array_equal(S.silence_run_lengths(silent), [2, 1, 3])
    assert_array_equal(S.silence_run_lengths(silent, [4, 6]), [2, 1, 3])  # the run across the boundary is cut
    assert S.silence_run_lengths(np.zeros(4, bool)).size == 0


def test_retime_silences_gives_each_stretch_of_silent_states_a_training_length(rng):
    exc = S.ExcitationModel.neutral(4)
    exc.silence = np.array([0.0, 1.0, 0.6, 0.3])  # states 1 and 2 are silent states, 3 is not
    exc.silence_runs = np.full(S.SILENCE_QUANTILES, 5.0)
    path = np.array([0, 0, 1, 0, 3, 3, 1, 2, 2, 1, 2, 1, 1, 0])
    out = S.retime_silences(path, exc, rng)
    assert_array_equal(out, [0, 0, 1, 1, 1, 1, 1, 0, 3, 3, 1, 2, 2, 2, 1, 0])  # a stretch keeps its states in order
    exc.silence_runs = np.linspace(2.0, 9.0, S.SILENCE_QUANTILES)  # lengths drawn within the training's
    lengths = np.concatenate([S.silence_run_lengths(exc.silence[S.retime_silences(path, exc, rng)] >= 0.5)
                              for _ in range(200)])
    assert lengths.min() == 2 and lengths.max() == 9 and abs(lengths.mean() - 5.5) < 0.4
    # ranked by the chain's own stretches: the longest becomes long, the shortest short
    path = np.array([0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 2, 2, 0])
    chain = np.array([1, 1, 1, 2, 2, 3, 4, 6, 6, 9])
    for _ in range(50):
        lengths = S.silence_run_lengths(exc.silence[S.retime_silences(path, exc, rng, chain)] >= 0.5)
        assert lengths[0] <= 4 and lengths[1] >= 7 and 4 <= lengths[2] <= 6, lengths
    exc.silence_runs = None  # an older model: the path as it was
    assert_array_equal(S.retime_silences(path, exc, rng), path)


def test_retime_silences_keeps_the_trainings_rate_of_silences(rng):
    """A chain that falls silent twice as often as the training did keeps
    about half its stretches (at random), each still a training length;
    one that falls silent less often keeps them all."""
    exc = S.ExcitationModel.neutral(3)
    exc.silence = np.array([0.0, 1.0, 0.0])
    exc.silence_runs = np.full(S.SILENCE_QUANTILES, 6.0)
    path = np.tile([0, 0, 0, 0, 1, 2, 2, 2, 2, 2], 2000)  # a stretch of silent states every 10 frames
    chain = np.ones(1000, np.int64)  # the chain's own: 1000 stretches in 10,000 frames
    exc.silence_rate = np.array(0.05)  # the training: one in 20 frames
    out = S.retime_silences(path, exc, rng, chain, chain_frames=10_000)
    kept = S.silence_run_lengths(exc.silent_states[out])
    assert np.all(kept == 6)
    assert abs(kept.size / 2000 - 0.5) < 0.05, kept.size
    assert np.sum(out == 0) == np.sum(path == 0) and np.sum(out == 2) == np.sum(path == 2)  # the sound goes on
    exc.silence_rate = np.array(0.2)  # the training fell silent more often than the chain: all kept
    assert S.silence_run_lengths(exc.silent_states[S.retime_silences(path, exc, rng, chain, 10_000)]).size == 2000
    exc.silence_rate = None  # older checkpoints: all kept
    assert S.silence_run_lengths(exc.silent_states[S.retime_silences(path, exc, rng, chain, 10_000)]).size == 2000


def test_generated_silences_are_as_long_as_the_trainings(gapped):
    """Bursts between silences of 12 to 24 hops: generated silences last
    12 to 24 hops too, and there are no dropouts (short silences inside
    sound). Deciding silence frame by frame from the states (the rule older
    models keep) made most silences one or two hops long and chained
    others past any in training."""
    _, model = gapped
    hop = model.hop_size
    train = S.silence_run_lengths(model._silent_frames() == 1)

    def inner_silences():
        y = model.generate(60.0, fidelity=0.0, seed=3).astype(np.float64)
        zero = np.all(y[: len(y) // hop * hop].reshape(-1, hop) == 0, axis=1)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], zero.astype(np.int8), [0]])))
        inner = (edges[::2] > 0) & (edges[1::2] < zero.size)  # not cut by the clip's ends
        return (edges[1::2] - edges[::2])[inner]

    runs = inner_silences()
    assert runs.size > 20
    assert runs.min() >= train.min() and runs.max() <= train.max(), (runs, train)
    exc = model.excitation_model
    saved, exc.silence_runs = exc.silence_runs, None
    try:
        old = inner_silences()
    finally:
        exc.silence_runs = saved
    assert np.mean(old < train.min()) > 0.5 and old.max() > train.max(), (old, train)  # the case it is for


def test_blended_silence_follows_the_passage_more_as_fidelity_rises(gapped, rng):
    """Between fidelity 0 and 1 a frame's silence is decided by the passage's
    gain scores mixed with fresh ones: the share of silent frames stays the
    states' at every fidelity, the agreement with the passage's own silences
    grows with the fidelity, and at fidelity 1 it is exact."""
    _, model = gapped
    exc, params = model.excitation_model, model.params
    path = np.concatenate([model._decoded_path(i, {}) for i in range(len(model.sequence_lengths))])
    silent = model._silent_frames() == 1
    gain = model._data()[:, model.lpc_order].astype(np.float64)
    expected = exc.silence[path].mean()
    agreement = []
    for f in (0.0, 0.25, 0.5, 0.75, 1.0):
        fresh = scipy.signal.lfilter([np.sqrt(1 - 0.8**2)], [1.0, -0.8], rng.standard_normal(path.size))
        quiet = ~S.audible_frames(exc, path, S.blended_gain_scores(params, exc, path, gain, silent, fresh, f))
        assert abs(quiet.mean() - expected) < 0.06, (f, quiet.mean(), expected)
        agreement.append(np.mean(quiet == silent))
    assert agreement[-1] == 1.0
    assert np.all(np.diff(agreement) > 0), agreement
    # and in the audio: at fidelity 0.25 the blend is silent about as often as the training audio
    hop = model.hop_size
    y = model.generate(30.0, fidelity=0.25, seed=5).astype(np.float64)
    share = np.mean(np.all(y[: len(y) // hop * hop].reshape(-1, hop) == 0, axis=1))
    assert abs(share - silent.mean()) < 0.03, (share, silent.mean())


def test_residual_shape_puts_back_what_the_envelope_misses(rng):
    """Noise with a deep, narrow notch (zeros an order-12 all-pole envelope
    cannot make): the learned residual shape has the notch, and generated
    audio has it deeper than without the shape."""
    sr = 16000
    b = scipy.signal.firwin2(129, [0, 0.25, 0.35, 0.45, 1], [1, 1, 0.003, 1, 1])
    x = scipy.signal.lfilter(b, [1.0], 0.2 * rng.standard_normal(12 * sr))
    model = SpectralStateGuidedSynthesis(n_states=3, seed=0).train([x], sr, n_em_iterations=4)
    shape = model.excitation_model.residual_shape
    freqs = np.linspace(0, sr / 2, S.SHAPE_BINS)
    notch = np.argmin(np.abs(freqs - 2800))
    assert np.all(shape[:, notch] < shape[:, np.abs(freqs - 1500) < 300].mean(axis=1) - 1.0)

    def depth(y):
        f, p = scipy.signal.welch(y, sr, nperseg=2048)
        return 10 * np.log10(p[(f > 1000) & (f < 2000)].mean() / p[np.abs(f - 2800) < 60].mean())

    with_shape = depth(model.generate(20.0, fidelity=0.0, excitation_type="Noise", seed=1))
    model.excitation_model.residual_shape = None
    without = depth(model.generate(20.0, fidelity=0.0, excitation_type="Noise", seed=1))
    assert with_shape > without + 6.0, (with_shape, without)


# ------------------------------------------------------- trajectories and durations
def test_zero_phase_smooth(rng):
    x = rng.standard_normal((200, 3))
    assert_array_equal(S.zero_phase_smooth(x, [0.0, 0.0, 0.0]), x)
    assert_allclose(S.zero_phase_smooth(np.full((50, 2), 3.5), 0.8), 3.5)  # no pull towards zero at the ends
    impulse = np.zeros((101, 1))
    impulse[50] = 1.0
    y = S.zero_phase_smooth(impulse, 0.6)[:, 0]
    assert_allclose(y, y[::-1], atol=1e-10)  # zero phase: symmetric about the impulse (the ends start from rest, not exactly)
    assert y.argmax() == 50 and abs(y.sum() - 1.0) < 1e-9  # unit DC gain
    ref = scipy.signal.lfilter([0.4], [1, -0.6], scipy.signal.lfilter([0.4], [1, -0.6], impulse[:, 0])[::-1])[::-1]
    assert_allclose(y, ref, atol=1e-10)  # it is the one-pole filter both ways
    # in segments: each on its own, nothing carried across
    steps = np.concatenate([np.full((10, 1), -11.5), np.full((10, 1), -3.0), x[:10, :1]])
    assert_allclose(S.zero_phase_smooth(steps, 0.8, starts=[10, 20]),
                    np.concatenate([steps[:20], S.zero_phase_smooth(x[:10, :1], 0.8)]), atol=1e-12)


def test_drawn_sound_next_to_silence_keeps_its_level(rng):
    """A sounding state between stretches of a silent state whose frames sit
    at the analysis floor (-100 dB): its frames next to the silence keep
    their own state's level. Smoothed across the boundary, they were pulled
    down towards the floor (the silent frames are never heard)."""
    D = 4
    params = HMMParams(np.full(2, 0.5), np.full((2, 2), 0.5), np.array([[0.0, 0.0, -11.5, 0.0], [0.0, 0.0, -3.0, 0.0]]),
                       np.stack([np.eye(D) * 0.01, np.eye(D) * 0.25]))
    exc = S.ExcitationModel.neutral(2)
    exc.silence = np.array([1.0, 0.0])
    exc.silence_runs = np.full(S.SILENCE_QUANTILES, 20.0)
    exc.smoother = np.array([[0.9] * D, [1.0] * D])
    path = np.repeat([0, 1, 0, 1, 0], 20)
    edges = np.concatenate([np.arange(20, 23), np.arange(37, 40), np.arange(60, 63), np.arange(77, 80)])
    levels = np.array([S.draw_frames(params, exc, path, rng)[0][edges, 2] for _ in range(50)])
    assert abs(levels.mean() + 3.0) < 0.2, levels.mean()
    exc.silence_runs = None  # frame-by-frame silence (older models): smoothed across, as before
    levels = np.array([S.draw_frames(params, exc, path, rng)[0][edges, 2] for _ in range(50)])
    assert levels.mean() < -4.0, levels.mean()  # the case it is for


def steps(a):
    """Median absolute frame-to-frame change per dimension."""
    return np.median(np.abs(np.diff(a, axis=0)), axis=0)


def test_fit_smoother_matches_the_training_frames_steps(rng):
    # long enough that the smoothed deviations' correlation is read to about 0.007 (smoothed, few of them are free)
    T, lengths = 100_000, [37_500, 62_500]
    means = np.repeat(rng.standard_normal((1000, 2)), 100, axis=0)  # piecewise-constant state means
    smooth = means + scipy.signal.lfilter([0.1], [1, -0.9], rng.standard_normal((T, 2)), axis=0)  # gliding
    jittery = means + 0.5 * rng.standard_normal((T, 2)) @ np.array([[1.0, 0.6], [0.0, 0.8]])  # correlated dims
    fitted = S.fit_smoother(smooth, lengths, jittery, means)
    assert fitted.shape == (4, 2)
    assert fitted[0, 0] == fitted[0, 1] and 0.3 < fitted[0, 0] < 0.95  # one coefficient for all dimensions
    assert_allclose(fitted[3], means.mean(axis=0))
    out = S.smooth_frames(jittery, means, fitted)
    assert_allclose(out, fitted[3] + S.zero_phase_smooth(jittery - means, fitted[0]) * fitted[1]
                    + (S.zero_phase_smooth(means, fitted[0]) - fitted[3]) * fitted[2], atol=1e-12)  # its two parts
    ratio = steps(out) / steps(smooth)
    assert abs(np.mean(np.log(ratio))) < 0.01  # the bisection's target: geometric mean over dimensions
    assert_allclose(np.std(out - S.zero_phase_smooth(means - fitted[3], fitted[0]) * fitted[2] - fitted[3], axis=0),
                    np.std(jittery - means, axis=0), rtol=1e-9)  # the deviations' spread kept
    # the whole up to the two parts' sample covariance once smoothed (a few percent here)
    assert_allclose(np.std(out, axis=0), np.std(jittery, axis=0), rtol=0.05)
    inside = np.abs((np.arange(T) + 50) % 100 - 50) > 15  # away from the means' jumps
    corr = lambda a: np.corrcoef((a - means)[inside].T)[0, 1]  # noqa: E731
    assert abs(corr(out) - corr(jittery)) < 0.03  # and the dimensions' correlation
    # frames that already move no more than the training's are left alone
    calm = S.fit_smoother(jittery, lengths, smooth, means)
    assert_array_equal(calm[:3], [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    older = np.array([[0.5, 0.5], [1.2, 1.3]])  # an older model's two rows: the distance from the means scaled
    assert_allclose(S.smooth_frames(jittery, means, older),
                    means + (S.zero_phase_smooth(jittery, 0.5) - means) * [1.2, 1.3], atol=1e-12)


def test_smoothed_frames_move_like_the_training_and_keep_their_spread_when_states_change_often(rng):
    """States of 2 to 4 frames, as in speech: smoothing flattens the jumps
    between their means as well as the deviations about them. Smoothed in
    two parts, each scaled back to its spread, the frames keep the drawn
    frames' spread, move from frame to frame as the (gliding) training
    frames do and follow their states about as closely. The earlier
    rescalings, of the distance from the states' means, fail one each: the
    spread about the means alone leaves the total short, and the total
    spread restored that way overshoots at every change of state (frames
    move far more than the training's and follow their states less)."""
    T = 6000
    runs = rng.integers(2, 5, T)
    state_of = np.repeat(np.arange(runs.size), runs)[:T]
    means = rng.standard_normal((runs.size, 3))[state_of]
    smooth = scipy.signal.lfilter([0.3], [1, -0.7], means + 0.5 * rng.standard_normal((T, 3)), axis=0)
    jittery = means + 0.5 * rng.standard_normal((T, 3))
    fitted = S.fit_smoother(smooth, [T], jittery, means)
    out = S.smooth_frames(jittery, means, fitted)
    assert fitted[0, 0] > 0.2
    assert_allclose(np.std(out, axis=0), np.std(jittery, axis=0), rtol=0.05)
    assert abs(np.mean(np.log(steps(out) / steps(smooth)))) < 0.01

    def follows(a):  # correlation with the states' means, over the dimensions
        return np.mean([np.corrcoef(a[:, d], means[:, d])[0, 1] for d in range(3)])

    assert follows(out) > follows(smooth) - 0.05
    smoothed = S.zero_phase_smooth(jittery, fitted[0])
    within = np.std(jittery - means, axis=0) / np.std(smoothed - means, axis=0)
    assert np.all(np.std(means + (smoothed - means) * within, axis=0) < 0.95 * np.std(jittery, axis=0))
    m, r = means - means.mean(axis=0), (smoothed - means) - (smoothed - means).mean(axis=0)
    a, b, c = np.mean(r * r, axis=0), 2 * np.mean(m * r, axis=0), np.mean(m * m, axis=0) - np.var(jittery, axis=0)
    total = means + (smoothed - means) * (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)
    assert np.mean(np.log(steps(total) / steps(smooth))) > 0.2 and follows(total) < follows(smooth) - 0.1


def test_mean_run_lengths_worked_example():
    labels = np.array([0, 0, 1, 1, 1, 0, 2, 2, 0, 0])
    # two sequences: [0 0 1 1 1] [0 2 2 0 0]; runs of 0: 2, 1, 2; of 1: 3; of 2: 2; state 3 never
    assert_allclose(S.mean_run_lengths(labels, [5, 5], 4), [5 / 3, 3.0, 2.0, 0.0])
    # a run does not continue across a sequence boundary
    assert_allclose(S.mean_run_lengths(np.zeros(6, int), [3, 3], 1), [3.0])


def test_duration_corrected_transitions():
    A = np.array([[0.98, 0.02, 0.0], [0.3, 0.5, 0.2], [0.0, 0.0, 1.0]])
    B = S.duration_corrected_transitions(A, np.array([10.0, 2.0, 5.0]))
    assert_allclose(B.sum(axis=1), 1.0)
    assert_allclose(1.0 / (1.0 - np.diag(B)[:2]), [10.0, 2.0])  # expected run lengths
    assert_allclose(B[1, [0, 2]] / B[1, [0, 2]].sum(), [0.6, 0.4])  # exits keep their proportions
    assert_array_equal(B[2], A[2])  # a state with no exit is left alone
    assert_array_equal(S.duration_corrected_transitions(A, np.array([0.0, 0.5, np.nan])), A)
    assert_array_equal(S.duration_corrected_transitions(A, None), A)


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
            assert not S.geometric_rejected(runs)
            continue
        observed = [np.sum(runs == j) for j in range(1, k)] + [np.sum(runs >= k)]
        expected = [n * p * (1 - p) ** (j - 1) for j in range(1, k)] + [n * (1 - p) ** (k - 1)]
        reference = scipy.stats.power_divergence(observed, expected, ddof=1, lambda_="log-likelihood").pvalue
        assert S.geometric_rejected(runs, level=0.5) == (reference < 0.5), trial
        assert S.geometric_rejected(runs) == (reference < 0.01), trial
    rejected = sum(S.geometric_rejected(rng.geometric(0.4, 200)) for _ in range(100))
    assert rejected <= 5  # 1 expected at the 1% level
    pauses = np.concatenate([np.ones(80, int), np.full(20, 12)])
    assert S.geometric_rejected(pauses)
    assert not S.geometric_rejected(pauses[::12])  # 9 runs: too few to tell
    for never_past_two in (np.full(1000, 2), np.r_[np.ones(100, int), np.full(900, 2)]):
        assert S.geometric_rejected(never_past_two)  # a geometric with that mean runs past 2 often


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
    q = S.state_run_quantiles(labels, lengths, 3)
    assert_allclose(q[0], np.quantile(runs0, np.linspace(0, 1, S.RUN_QUANTILES)))
    assert_array_equal(q[1:], 0.0)
    geometric = np.concatenate([np.full(int(rng.geometric(0.3 if k % 2 else 0.5)), k % 2) for k in range(400)])
    assert S.state_run_quantiles(geometric, [geometric.size], 2) is None


def test_sample_path_draws_the_flagged_states_runs_and_the_chain_elsewhere():
    """Without quantiles the path is the C kernel's, bit for bit. With them,
    a flagged state's runs follow its quantiles (linear between them,
    rounded); the other states' runs stay geometric with the chain's
    self-transition, and every state leaves by its exits in their
    proportions. The same seed gives the same path; a state without exits
    holds to the end."""
    A = np.array([[0.8, 0.15, 0.05], [0.1, 0.6, 0.3], [0.3, 0.2, 0.5]])
    start = np.array([0.5, 0.3, 0.2])
    assert_array_equal(S.sample_path(start, A, 5000, 9), kernels.sample_states(start, A, 5000, 9))
    q = np.zeros((3, S.RUN_QUANTILES))
    q[1] = np.quantile(np.r_[np.ones(80), np.full(20, 12)], np.linspace(0, 1, S.RUN_QUANTILES))
    path = S.sample_path(start, A, 300_000, 9, q)
    assert_array_equal(path, S.sample_path(start, A, 300_000, 9, q))
    assert not np.array_equal(path, S.sample_path(start, A, 300_000, 10, q))
    runs = S.state_runs(path, [path.size], 3)
    u = np.random.default_rng(0).uniform(size=400_000)
    expected = np.maximum(1, np.rint(np.interp(u, np.linspace(0, 1, S.RUN_QUANTILES), q[1])))
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
        table = np.zeros((2, S.RUN_QUANTILES)) + [[2.0], [q_absorbing]]
        held = S.sample_path([1.0, 0.0], absorbing, 200, 3, table)
        assert_array_equal(held[:2], 0)
        assert_array_equal(held[2:], 1)
    nearly = np.array([[1.0, 1e-20], [0.5, 0.5]])  # a self-transition that rounds to 1 (EM floors nothing)
    path = S.sample_path([1.0, 0.0], nearly, 100, 3, np.zeros((2, S.RUN_QUANTILES)) + [[0.0], [2.0]])
    assert_array_equal(path, 0)


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
        model._derived_cache = None
        path = model._sample_path(20_000, np.random.default_rng(2))
        return np.mean(S.state_runs(path, [path.size], model.n_states)[state] == 20)

    try:
        exc.run_quantiles = np.zeros((model.n_states, S.RUN_QUANTILES))
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
    train_share = np.mean(model._silent_frames())
    exc = model.excitation_model
    silent_state = int(np.argmax(exc.silence))
    assert model.transition_matrix[silent_state, silent_state] > 0.97  # what EM makes of it

    def share():
        y = model.generate(120.0, fidelity=0.0, seed=4).astype(np.float64)
        return np.mean(np.all(y[: len(y) // hop * hop].reshape(-1, hop) == 0, axis=1))

    corrected = share()
    assert abs(corrected - train_share) < 0.1, (corrected, train_share)
    exc.mean_run = None  # EM's own transitions linger in the silence
    assert abs(share() - train_share) > abs(corrected - train_share)


def test_voicing_calibration_makes_the_audio_as_periodic_as_the_training():
    """Whatever lies between the voicing the model draws and how periodic
    the audio made from it sounds (the median normalised autocorrelation
    peak over frame-size windows, the quality benchmark's harmonicity), the
    calibrated offset takes it out. Here the gap is made on purpose: the
    model's voicing logits (state means and range) are moved by +-2 after
    training, which alone puts the generated audio's harmonicity 0.1 or more
    from the training audio's (0.2 below it at -2; at +2 the chords' audio
    cannot read much above 0.6); refitted, the excitation model's offsets undo
    the move and the audio reads within 0.05 of the training again. (Read
    over four generations: one 20-second generation's median moves by a few
    hundredths from seed to seed.) The uncalibrated model is the one without
    the offsets and without the equaliser fitted with them (which moves the
    reading too, so the offsets are calibrated again after it): the offsets
    move against the shift by most of its size, not to the digit, since the
    reading moves slowly with the offset (0.03-0.05 per unit here) and the
    equaliser takes up part of it."""
    from ssgs.features import frame_harmonicity

    rng = np.random.default_rng(5)
    t = np.arange(2 * SR) / SR
    files = []
    for _ in range(4):  # chords: two notes a tempered major third apart, each with partials
        f0 = 110 * 2 ** (rng.integers(0, 12) / 12)
        chord = sum(np.sin(2 * np.pi * f * h * t) / h for f in (f0, f0 * 2 ** (4 / 12)) for h in range(1, 6))
        files.append(0.1 * chord * np.exp(-t) + 0.003 * rng.standard_normal(t.size))
    model = SpectralStateGuidedSynthesis(n_states=4, seed=0).train(files, SR, n_em_iterations=5)
    fitted = model.excitation_model.voicing_offset.copy()
    assert fitted.shape == (2,) and np.all(np.abs(fitted) <= 4.0)
    frame, hop = model.frame_size, model.hop_size

    def harmonicity(signals):
        h = np.concatenate([frame_harmonicity(x, frame, hop, SR) for x in signals])
        return np.median(h[~np.isnan(h)])

    target = harmonicity(files)
    v = model.lpc_order + 1  # the voicing logit's dimension

    def periodicity(kind):
        return harmonicity([model.generate(20.0, fidelity=0.0, excitation_type=kind, seed=seed)
                            for seed in (8, 9, 10, 11)])

    offsets = {}
    for shift in (-2.0, 2.0):
        model.state_means[:, v] += shift
        model.observation_range[:, v] += shift
        model._excitation_iteration = None  # refit, calibration included
        exc = model.excitation_model
        offsets[shift] = exc.voicing_offset.copy()
        assert exc.equaliser is not None
        calibrated = {kind: periodicity(kind) for kind in ("Karplus-Strong", "Wavelet")}
        with excitation_tables(model, voicing_offset=None, equaliser=None):  # the uncalibrated model
            plain = {kind: periodicity(kind) for kind in ("Karplus-Strong", "Wavelet")}
        for kind in calibrated:
            assert abs(plain[kind] - target) > 0.1, (shift, kind, plain, target)  # the case the calibration is for
            assert abs(calibrated[kind] - target) < 0.05, (shift, kind, calibrated, plain, target)
        model.state_means[:, v] -= shift
        model.observation_range[:, v] -= shift
    assert np.all(offsets[-2.0] > fitted) and np.all(fitted > offsets[2.0]), (offsets, fitted)
    assert np.all(offsets[-2.0] - offsets[2.0] > 3.0), offsets  # the shifts are 4 apart


def test_training_harmonicity_rebuilds_only_the_stretches_it_reads():
    """The calibration's reading of the training audio, rebuilt stretch by
    stretch (a run-in before each, zero filter state), equals the reading of
    each whole sequence rebuilt, at the same frames: stretches at the
    sequences' starts and ends, one crossing from one sequence into the next,
    and single frames."""
    from ssgs.features import frame_harmonicity

    rng = np.random.default_rng(2)
    t = np.arange(3 * SR) / SR
    files = [0.2 * np.sin(2 * np.pi * (140 + 40 * k) * t + 3 * np.sin(2 * np.pi * 0.5 * t))
             + 0.02 * rng.standard_normal(t.size) for k in range(3)]
    model = SpectralStateGuidedSynthesis(n_states=3, seed=0).train(files, SR, n_em_iterations=2)
    offsets = model.sequence_offsets
    whole = np.concatenate([frame_harmonicity(model.rebuild_sequence(i), model.frame_size, model.hop_size, SR)
                            [: model.sequence_lengths[i]] for i in range(len(files))])
    rows = np.concatenate([np.arange(0, 40), np.arange(offsets[1] - 30, offsets[1] + 30), [offsets[2] - 100],
                           np.arange(offsets[3] - 25, offsets[3])])
    assert_allclose(model._training_harmonicity(rows), whole[rows], rtol=0, atol=1e-9)


def test_harmonicity_window_holds_two_periods_of_the_lowest_pitch():
    """At 16 kHz the calibration reads harmonicity over frame_size; at 48 kHz
    over two periods of 60 Hz and a little more, where a 1024-sample window's
    taper rules the reading: a steady 120 Hz sawtooth reads 0.39 over 1024
    samples and about 0.66 over the wider window (0.89 at 16 kHz)."""
    from ssgs.features import frame_harmonicity

    model = SpectralStateGuidedSynthesis(n_states=2)
    assert model._harmonicity_window() == model.frame_size
    model.sample_rate = 48000
    window = model._harmonicity_window()
    assert window >= 2 * 48000 / 60
    t = np.arange(48000) / 48000
    saw = sum(np.sin(2 * np.pi * 120 * h * t) / h for h in range(1, 12))
    narrow = np.nanmedian(frame_harmonicity(saw, model.frame_size, 768, 48000))
    wide = np.nanmedian(frame_harmonicity(saw, window, 768, 48000))
    assert narrow < 0.45 < 0.6 < wide


def test_equaliser_bands_partition_the_spectrum():
    """The equaliser's bands are triangles on the mel scale: weights in
    [0, 1], centres rising and closer together at the bottom than at the
    top, and between the first and the last centre every bin's weights sum
    to one (each bin's power is counted once)."""
    bank, centres = S.equaliser_bands(512, SR)
    assert bank.shape == (257, S.EQUALISER_BANDS) and centres.shape == (S.EQUALISER_BANDS,)
    assert bank.min() >= 0 and bank.max() <= 1 + 1e-12
    assert np.all(np.diff(centres) > 0) and np.diff(centres)[0] < np.diff(centres)[-1] / 5
    f = np.linspace(0, 1, 257)
    inside = (f >= centres[0]) & (f <= centres[-1])
    assert_allclose(bank[inside].sum(axis=1), 1.0, atol=1e-12)
    for rate, c in ((SR, centres), (48000, S.equaliser_bands(512, 48000)[1])):  # evenly spaced in mel, in Hz
        mel = 2595 * np.log10(1 + c * rate / 2 / 700)
        assert_allclose(np.diff(mel), mel[0], rtol=1e-9)


def test_mean_band_spectrum_reads_where_the_power_is():
    """A tone's power lands in the bands around its frequency; the reading
    is relative to each frame's power (a louder copy reads the same),
    frames of digital silence are left out, and no sounding frame at all
    reads None."""
    n = 512
    x = tone(1000.0, 1.0, SR, amplitude=0.3) + 1e-4 * np.random.default_rng(0).standard_normal(SR)
    bands = S.mean_band_spectrum([x], n, SR)
    _, centres = S.equaliser_bands(n, SR)
    assert abs(centres[np.argmax(bands)] * SR / 2 - 1000.0) < 40.0
    assert bands.max() - np.median(bands) > 10.0  # nats: the noise is 70 dB down
    assert_allclose(S.mean_band_spectrum([10.0 * x], n, SR), bands, atol=1e-9)
    assert_allclose(S.mean_band_spectrum([x, np.zeros(4 * n)], n, SR), bands, atol=1e-12)
    assert S.mean_band_spectrum([np.zeros(4 * n), np.zeros(n - 1)], n, SR) is None
    # a DC offset is not sound: the reading does not see it (left in, the window spreads it over the lowest bands)
    assert_allclose(S.mean_band_spectrum([x + 0.3], n, SR), bands, atol=1e-9)


def test_equaliser_step_reads_only_bands_that_hold_a_bin():
    """At 48 kHz with a hop of 256 the lowest mel band is narrower than the
    transform's bins and holds none: both spectra read nothing there, and
    the step follows the bands that did read something, down to 0 Hz."""
    bank, _ = S.equaliser_bands(512, 48000)
    empty = bank.sum(axis=0) == 0
    assert empty[0]
    training = np.where(empty, 0.0, 1.0)  # what a level difference of 1 nat reads, the empty band 0 on both sides
    step = S.equaliser_step(training, np.zeros_like(training), 257, 48000)
    assert_allclose(step, 1.0, atol=1e-12)


def _voice(rng, seconds):
    """Pulse trains on random notes (110-208 Hz) through two formants, a
    little noise, little below 150 Hz (a second-order high-pass): a
    spectrum whose bottom octaves the model's residual shapes (125 Hz
    apart) cannot follow."""
    n = int(seconds * SR)
    x, t = np.zeros(n), 0
    while t < n:
        f0 = 110 * 2 ** (rng.integers(0, 12) / 12)
        for _ in range(int(0.3 * f0)):
            if t >= n:
                break
            x[t] = 1.0
            t += int(SR / f0)
    poles = [r * np.exp(s * 2j * np.pi * f / SR) for f, r in ((700, 0.97), (1800, 0.95)) for s in (1, -1)]
    y = scipy.signal.lfilter([1.0], np.poly(poles).real, x) + 0.02 * rng.standard_normal(n)
    y = scipy.signal.sosfilt(scipy.signal.butter(2, 150, "highpass", fs=SR, output="sos"), y)
    return 0.1 * y / np.std(y)


def test_equaliser_brings_the_model_to_the_training_spectrum():
    """The equaliser fitted at training takes the model's audio (fidelity 0,
    its own chain) closer to the training audio's mean band spectrum, with
    every excitation, over all bands and below 150 Hz, where the training
    has little and the model's sources kept their own energy."""
    rng = np.random.default_rng(7)
    model = SpectralStateGuidedSynthesis(n_states=4, seed=0).train([_voice(rng, 4.0), _voice(rng, 4.0)], SR,
                                                                   n_em_iterations=5)
    exc = model.excitation_model
    assert exc.equaliser.shape == (3, HOP // 2 + 1) and exc.equaliser.dtype == np.float16
    n = 2 * HOP
    target = S.mean_band_spectrum([model.rebuild_sequence(i) for i in range(2)], n, SR)
    _, centres = S.equaliser_bands(n, SR)
    low = centres * SR / 2 < 150

    def error(kind):
        got = S.mean_band_spectrum([model.generate(10.0, excitation_type=kind, seed=s) for s in (1, 2)], n, SR)
        d = got - target
        return np.sqrt(np.mean(d ** 2)), np.sqrt(np.mean(d[low] ** 2))

    for kind in S.EXCITATION_TYPES:
        with_eq = error(kind)
        with excitation_tables(model, equaliser=None):
            without_eq = error(kind)
        assert with_eq[0] < 0.9 * without_eq[0], (kind, with_eq, without_eq)
        assert with_eq[1] < 0.9 * without_eq[1], (kind, with_eq, without_eq)
