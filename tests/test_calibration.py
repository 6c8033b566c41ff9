"""What training fits by rendering (ssgs.synthesis.calibration): the frames'
smoother, the voicing offsets, the equaliser and what they read."""

from dataclasses import replace

import numpy as np
import scipy.signal
from numpy.testing import assert_allclose, assert_array_equal
from excitation import excitation_tables
from signals import tone

from ssgs import SpectralStateGuidedSynthesis
from ssgs.excitation_model import EXCITATION_TYPES
from ssgs.corpus import Corpus
from ssgs.features import FeatureConfig
from ssgs.synthesis.calibration import (EQUALISER_BANDS, equaliser_bands, equaliser_step, fit_smoother,
                                        harmonicity_window, mean_band_spectrum, training_harmonicity)
from ssgs.synthesis.trajectory import smooth_frames, zero_phase_smooth

SR, HOP = 16000, 256


def steps(a):
    """Median absolute frame-to-frame change per dimension."""
    return np.median(np.abs(np.diff(a, axis=0)), axis=0)


def test_fit_smoother_matches_the_training_frames_steps(rng):
    # long enough that the smoothed deviations' correlation is read to about 0.007 (smoothed, few of them are free)
    T, lengths = 100_000, [37_500, 62_500]
    means = np.repeat(rng.standard_normal((1000, 2)), 100, axis=0)  # piecewise-constant state means
    smooth = means + scipy.signal.lfilter([0.1], [1, -0.9], rng.standard_normal((T, 2)), axis=0)  # gliding
    jittery = means + 0.5 * rng.standard_normal((T, 2)) @ np.array([[1.0, 0.6], [0.0, 0.8]])  # correlated dims
    fitted = fit_smoother(smooth, lengths, jittery, means)
    assert fitted.shape == (4, 2)
    assert fitted[0, 0] == fitted[0, 1] and 0.3 < fitted[0, 0] < 0.95  # one coefficient for all dimensions
    assert_allclose(fitted[3], means.mean(axis=0))
    out = smooth_frames(jittery, means, fitted)
    assert_allclose(out, fitted[3] + zero_phase_smooth(jittery - means, fitted[0]) * fitted[1]
                    + (zero_phase_smooth(means, fitted[0]) - fitted[3]) * fitted[2], atol=1e-12)  # its two parts
    ratio = steps(out) / steps(smooth)
    assert abs(np.mean(np.log(ratio))) < 0.01  # the bisection's target: geometric mean over dimensions
    assert_allclose(np.std(out - zero_phase_smooth(means - fitted[3], fitted[0]) * fitted[2] - fitted[3], axis=0),
                    np.std(jittery - means, axis=0), rtol=1e-9)  # the deviations' spread kept
    # the whole up to the two parts' sample covariance once smoothed (a few percent here)
    assert_allclose(np.std(out, axis=0), np.std(jittery, axis=0), rtol=0.05)
    inside = np.abs((np.arange(T) + 50) % 100 - 50) > 15  # away from the means' jumps
    corr = lambda a: np.corrcoef((a - means)[inside].T)[0, 1]  # noqa: E731
    assert abs(corr(out) - corr(jittery)) < 0.03  # and the dimensions' correlation
    # frames that already move no more than the training's are left alone
    calm = fit_smoother(jittery, lengths, smooth, means)
    assert_array_equal(calm[:3], [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    older = np.array([[0.5, 0.5], [1.2, 1.3]])  # an older model's two rows: the distance from the means scaled
    assert_allclose(smooth_frames(jittery, means, older),
                    means + (zero_phase_smooth(jittery, 0.5) - means) * [1.2, 1.3], atol=1e-12)


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
    fitted = fit_smoother(smooth, [T], jittery, means)
    out = smooth_frames(jittery, means, fitted)
    assert fitted[0, 0] > 0.2
    assert_allclose(np.std(out, axis=0), np.std(jittery, axis=0), rtol=0.05)
    assert abs(np.mean(np.log(steps(out) / steps(smooth)))) < 0.01

    def follows(a):  # correlation with the states' means, over the dimensions
        return np.mean([np.corrcoef(a[:, d], means[:, d])[0, 1] for d in range(3)])

    assert follows(out) > follows(smooth) - 0.05
    smoothed = zero_phase_smooth(jittery, fitted[0])
    within = np.std(jittery - means, axis=0) / np.std(smoothed - means, axis=0)
    assert np.all(np.std(means + (smoothed - means) * within, axis=0) < 0.95 * np.std(jittery, axis=0))
    m, r = means - means.mean(axis=0), (smoothed - means) - (smoothed - means).mean(axis=0)
    a, b, c = np.mean(r * r, axis=0), 2 * np.mean(m * r, axis=0), np.mean(m * m, axis=0) - np.var(jittery, axis=0)
    total = means + (smoothed - means) * (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)
    assert np.mean(np.log(steps(total) / steps(smooth))) > 0.2 and follows(total) < follows(smooth) - 0.1


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
        exc = model.fit_excitation_model()  # refit, calibration included
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
    assert_allclose(training_harmonicity(model.corpus, rows), whole[rows], rtol=0, atol=1e-9)


def corpus_at(config):
    """A corpus of no frames analysed with ``config`` (all the window reads)."""
    p, hop = config.lpc_order, config.hop_size
    return Corpus(config, np.zeros((0, p + 2), np.float32), np.zeros((0, p)), np.zeros((0, hop), np.float32), [])


def test_harmonicity_window_holds_two_periods_of_the_lowest_pitch():
    """At 16 kHz the calibration reads harmonicity over frame_size; at 48 kHz
    over two periods of 60 Hz and a little more, where a 1024-sample window's
    taper rules the reading: a steady 120 Hz sawtooth reads 0.39 over 1024
    samples and about 0.66 over the wider window (0.89 at 16 kHz)."""
    from ssgs.features import frame_harmonicity

    config = FeatureConfig()  # the model's defaults: frame_size 1024 at 16 kHz
    assert harmonicity_window(corpus_at(config)) == config.frame_size
    window = harmonicity_window(corpus_at(replace(config, sample_rate=48000)))
    assert window >= 2 * 48000 / 60
    t = np.arange(48000) / 48000
    saw = sum(np.sin(2 * np.pi * 120 * h * t) / h for h in range(1, 12))
    narrow = np.nanmedian(frame_harmonicity(saw, config.frame_size, 768, 48000))
    wide = np.nanmedian(frame_harmonicity(saw, window, 768, 48000))
    assert narrow < 0.45 < 0.6 < wide


def test_equaliser_bands_partition_the_spectrum():
    """The equaliser's bands are triangles on the mel scale: weights in
    [0, 1], centres rising and closer together at the bottom than at the
    top, and between the first and the last centre every bin's weights sum
    to one (each bin's power is counted once)."""
    bank, centres = equaliser_bands(512, SR)
    assert bank.shape == (257, EQUALISER_BANDS) and centres.shape == (EQUALISER_BANDS,)
    assert bank.min() >= 0 and bank.max() <= 1 + 1e-12
    assert np.all(np.diff(centres) > 0) and np.diff(centres)[0] < np.diff(centres)[-1] / 5
    f = np.linspace(0, 1, 257)
    inside = (f >= centres[0]) & (f <= centres[-1])
    assert_allclose(bank[inside].sum(axis=1), 1.0, atol=1e-12)
    for rate, c in ((SR, centres), (48000, equaliser_bands(512, 48000)[1])):  # evenly spaced in mel, in Hz
        mel = 2595 * np.log10(1 + c * rate / 2 / 700)
        assert_allclose(np.diff(mel), mel[0], rtol=1e-9)


def test_mean_band_spectrum_reads_where_the_power_is():
    """A tone's power lands in the bands around its frequency; the reading
    is relative to each frame's power (a louder copy reads the same),
    frames of digital silence are left out, and no sounding frame at all
    reads None."""
    n = 512
    x = tone(1000.0, 1.0, SR, amplitude=0.3) + 1e-4 * np.random.default_rng(0).standard_normal(SR)
    bands = mean_band_spectrum([x], n, SR)
    _, centres = equaliser_bands(n, SR)
    assert abs(centres[np.argmax(bands)] * SR / 2 - 1000.0) < 40.0
    assert bands.max() - np.median(bands) > 10.0  # nats: the noise is 70 dB down
    assert_allclose(mean_band_spectrum([10.0 * x], n, SR), bands, atol=1e-9)
    assert_allclose(mean_band_spectrum([x, np.zeros(4 * n)], n, SR), bands, atol=1e-12)
    assert mean_band_spectrum([np.zeros(4 * n), np.zeros(n - 1)], n, SR) is None
    # a DC offset is not sound: the reading does not see it (left in, the window spreads it over the lowest bands)
    assert_allclose(mean_band_spectrum([x + 0.3], n, SR), bands, atol=1e-9)


def test_equaliser_step_reads_only_bands_that_hold_a_bin():
    """At 48 kHz with a hop of 256 the lowest mel band is narrower than the
    transform's bins and holds none: both spectra read nothing there, and
    the step follows the bands that did read something, down to 0 Hz."""
    bank, _ = equaliser_bands(512, 48000)
    empty = bank.sum(axis=0) == 0
    assert empty[0]
    training = np.where(empty, 0.0, 1.0)  # what a level difference of 1 nat reads, the empty band 0 on both sides
    step = equaliser_step(training, np.zeros_like(training), 257, 48000)
    assert_allclose(step, 1.0, atol=1e-12)


def voice_like(rng, seconds):
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
    model = SpectralStateGuidedSynthesis(n_states=4, seed=0).train([voice_like(rng, 4.0), voice_like(rng, 4.0)], SR,
                                                                   n_em_iterations=5)
    exc = model.excitation_model
    assert exc.equaliser.shape == (3, HOP // 2 + 1) and exc.equaliser.dtype == np.float16
    n = 2 * HOP
    target = mean_band_spectrum([model.rebuild_sequence(i) for i in range(2)], n, SR)
    _, centres = equaliser_bands(n, SR)
    low = centres * SR / 2 < 150

    def error(kind):
        got = mean_band_spectrum([model.generate(10.0, excitation_type=kind, seed=s) for s in (1, 2)], n, SR)
        d = got - target
        return np.sqrt(np.mean(d ** 2)), np.sqrt(np.mean(d[low] ** 2))

    for kind in EXCITATION_TYPES:
        with_eq = error(kind)
        with excitation_tables(model, equaliser=None):
            without_eq = error(kind)
        assert with_eq[0] < 0.9 * without_eq[0], (kind, with_eq, without_eq)
        assert with_eq[1] < 0.9 * without_eq[1], (kind, with_eq, without_eq)
