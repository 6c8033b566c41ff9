"""Frames, pitch and voicing drawn along a state path (ssgs.synthesis.trajectory)."""

import numpy as np
import scipy.signal
from numpy.testing import assert_allclose, assert_array_equal

from ssgs.excitation_model import ExcitationModel, MIDI_LOW, SILENCE_QUANTILES, leap_intervals
from ssgs.hmm import HMMParams
from ssgs.synthesis import trajectory
from ssgs.synthesis.trajectory import draw_frames, draw_pitch, model_trajectory, zero_phase_smooth, fixed_order_product


def test_a_leap_goes_as_far_as_the_trainings_leaps():
    """Within a state, a leap draws its new note from the state's pitch
    histogram weighted by how far the training leapt: with leaps of two
    semitones in training, the notes land two semitones (one to three)
    from the pitch held, where the histogram alone lands anywhere in the
    state's range; with no bin within reach, the histogram alone."""
    exc = ExcitationModel.neutral(1)  # MIDI 45..69 evenly
    exc.pitch_leaps = leap_intervals(100 * 2 ** (np.arange(0, 40, 2) / 12), np.ones(20))
    rng = np.random.default_rng(5)
    current = exc.pitch_log_f0[0, 57 - MIDI_LOW]  # MIDI 57, mid-range
    sizes = np.array([abs(draw_pitch(exc, 0, rng, current) - current) for _ in range(400)]) * 12 / np.log(2)
    assert np.all((sizes > 0.5) & (sizes < 3.5)) and np.mean(np.abs(sizes - 2) < 0.5) > 0.4
    anywhere = np.array([abs(draw_pitch(exc, 0, rng) - current) for _ in range(400)]) * 12 / np.log(2)
    assert np.mean(anywhere > 4) > 0.5
    exc.pitch_histogram = exc.pitch_histogram * 0
    exc.pitch_histogram[0, [30, 33]] = 0.5  # MIDI 65 and 68, 8 and 11 semitones away: no leap of the training's
    drawn = {round(draw_pitch(exc, 0, rng, current), 9) for _ in range(60)}  # reaches them: the histogram
    assert drawn == {round(float(exc.pitch_log_f0[0, b]), 9) for b in (30, 33)}


def test_only_a_leap_within_a_state_is_weighted_by_the_leap_sizes(rng, monkeypatch):
    """The leap sizes weight the draw of a leap within a state (from the
    pitch held); the first frame and a change of state draw from the new
    state's histogram alone."""
    N, D = 2, 14
    params = HMMParams(np.full(N, 0.5), np.full((N, N), 0.5), np.zeros((N, D)), np.stack([np.eye(D)] * N))
    exc = ExcitationModel.neutral(N)
    exc.pitch_motion = np.array([1.0, 0.0])  # a leap at every frame
    exc.pitch_leaps = leap_intervals(np.array([100.0, 100 * 2 ** (2 / 12)]), np.ones(2))
    path = np.array([0, 0, 0, 1, 1, 0, 0, 0, 1])
    calls = []
    monkeypatch.setattr(trajectory, "draw_pitch",
                        lambda e, s, r, current=None: calls.append(current is not None) or draw_pitch(e, s, r, current))
    model_trajectory(params, exc, path, rng)
    within = [t > 0 and path[t] == path[t - 1] for t in range(len(path))]
    assert sum(calls) == sum(within) == 5  # every leap within a state, weighted
    assert len(calls) - sum(calls) <= 4  # the first frame and at most the 3 changes of state


def test_zero_phase_smooth(rng):
    x = rng.standard_normal((200, 3))
    assert_array_equal(zero_phase_smooth(x, [0.0, 0.0, 0.0]), x)
    assert_allclose(zero_phase_smooth(np.full((50, 2), 3.5), 0.8), 3.5)  # no pull towards zero at the ends
    impulse = np.zeros((101, 1))
    impulse[50] = 1.0
    y = zero_phase_smooth(impulse, 0.6)[:, 0]
    assert_allclose(y, y[::-1], atol=1e-10)  # zero phase: symmetric about the impulse (the ends start from rest, not exactly)
    assert y.argmax() == 50 and abs(y.sum() - 1.0) < 1e-9  # unit DC gain
    ref = scipy.signal.lfilter([0.4], [1, -0.6], scipy.signal.lfilter([0.4], [1, -0.6], impulse[:, 0])[::-1])[::-1]
    assert_allclose(y, ref, atol=1e-10)  # it is the one-pole filter both ways
    # in segments: each on its own, nothing carried across
    steps = np.concatenate([np.full((10, 1), -11.5), np.full((10, 1), -3.0), x[:10, :1]])
    assert_allclose(zero_phase_smooth(steps, 0.8, starts=[10, 20]),
                    np.concatenate([steps[:20], zero_phase_smooth(x[:10, :1], 0.8)]), atol=1e-12)


def test_drawn_sound_next_to_silence_keeps_its_level(rng):
    """A sounding state between stretches of a silent state whose frames sit
    at the analysis floor (-100 dB): its frames next to the silence keep
    their own state's level. Smoothed across the boundary, they were pulled
    down towards the floor (the silent frames are never heard)."""
    D = 4
    params = HMMParams(np.full(2, 0.5), np.full((2, 2), 0.5), np.array([[0.0, 0.0, -11.5, 0.0], [0.0, 0.0, -3.0, 0.0]]),
                       np.stack([np.eye(D) * 0.01, np.eye(D) * 0.25]))
    exc = ExcitationModel.neutral(2)
    exc.silence = np.array([1.0, 0.0])
    exc.silence_runs = np.full(SILENCE_QUANTILES, 20.0)
    exc.smoother = np.array([[0.9] * D, [1.0] * D])
    path = np.repeat([0, 1, 0, 1, 0], 20)
    edges = np.concatenate([np.arange(20, 23), np.arange(37, 40), np.arange(60, 63), np.arange(77, 80)])
    levels = np.array([draw_frames(params, exc, path, rng)[0][edges, 2] for _ in range(50)])
    assert abs(levels.mean() + 3.0) < 0.2, levels.mean()
    exc.silence_runs = None  # frame-by-frame silence (older models): smoothed across, as before
    levels = np.array([draw_frames(params, exc, path, rng)[0][edges, 2] for _ in range(50)])
    assert levels.mean() < -4.0, levels.mean()  # the case it is for


def test_fixed_order_product_is_the_matrix_product_with_the_same_bits_in_any_layout():
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((301, 14)), rng.standard_normal((14, 9))
    np.testing.assert_allclose(fixed_order_product(a, b), a @ b, rtol=1e-12, atol=1e-12)
    same = fixed_order_product(a, b).tobytes()
    for x, y in ((np.asfortranarray(a), b), (a, np.asfortranarray(b)), (a, np.ascontiguousarray(b.T).T)):
        assert fixed_order_product(x, y).tobytes() == same  # (np.einsum's differ here)
