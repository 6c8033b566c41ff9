"""Synthetic test signals: audio-like material the tests make for themselves."""

import numpy as np
import scipy.signal


def ar_process(rng, coeffs, n, gain=1.0):
    """x[n] = -sum a_i x[n-i] + gain * white noise: an all-pole (AR) signal."""
    a = np.concatenate([[1.0], coeffs])
    return scipy.signal.lfilter([gain], a, rng.standard_normal(n))


def stable_lpc(rng, order, radius=0.95):
    """Random minimum-phase A(z) coefficients (poles inside the given radius)."""
    n_pairs = order // 2
    poles = radius * rng.uniform(0.3, 1.0, n_pairs) * np.exp(1j * rng.uniform(0.05, np.pi - 0.05, n_pairs))
    roots = np.concatenate([poles, poles.conj()])
    if order % 2:
        roots = np.concatenate([roots, [rng.uniform(-radius, radius)]])
    return np.real(np.poly(roots))


def windowed_frames(x, frame_len, hop):
    n_frames = 1 + (len(x) - frame_len) // hop
    idx = np.arange(frame_len)[None, :] + hop * np.arange(n_frames)[:, None]
    return x[idx] * np.hanning(frame_len)[None, :]


def switching_ar_audio(rng, n_segments=12, seg_len=4000, order=8, n_sources=4):
    """Audio-like signal: segments of a few AR sources with different spectra
    and loudness, joined end to end, with a faint noise floor throughout."""
    sources = [stable_lpc(rng, order, radius=0.97) for _ in range(n_sources)]
    gains = 10 ** rng.uniform(-2, 0, n_sources)
    labels = rng.integers(0, n_sources, n_segments)
    x = np.concatenate([ar_process(rng, sources[s][1:], seg_len, gains[s]) for s in labels])
    return x + 1e-4 * rng.standard_normal(len(x))


def tone(freq, seconds, sr, amplitude=0.5, phase=0.0):
    t = np.arange(int(round(seconds * sr))) / sr
    return amplitude * np.sin(2 * np.pi * freq * t + phase)


def music_like(rng, seconds, sr=16000):
    """A few seconds of audio-like material: harmonic notes with decays over
    a faint noise floor, plus a noisy burst, so both voiced and unvoiced
    frames occur."""
    n = int(seconds * sr)
    out = 1e-3 * rng.standard_normal(n)
    step = sr // 4
    for i, start in enumerate(range(0, n - step, step)):
        f0 = 110 * 2 ** (rng.integers(0, 24) / 12)
        t = np.arange(min(2 * step, n - start)) / sr
        note = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6)) * np.exp(-3 * t)
        out[start : start + len(t)] += 0.2 * note
        if i % 5 == 4:
            out[start : start + step // 2] += 0.1 * rng.standard_normal(step // 2)
    return out
