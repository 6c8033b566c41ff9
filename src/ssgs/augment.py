"""Data augmentation: time-stretched and pitch-shifted copies of a signal.

Each training input can contribute, besides itself, four copies, each its
own HMM sequence: time-stretched by 0.92 and 1.08 (tempo x 0.92 / x 1.08,
pitch kept) and pitch-shifted by -0.5 and +0.5 semitone (duration kept).
The stretch is a phase vocoder (Flanagan and Golden 1966; phases advanced by
each bin's measured instantaneous frequency), the shift a stretch followed by
soxr resampling. Both are deterministic.
"""

from __future__ import annotations

import numpy as np
import soxr

__all__ = ["AUGMENTATIONS", "augmented_copies", "pitch_shift", "time_stretch"]

AUGMENTATIONS = (("time_stretch", 0.92), ("time_stretch", 1.08), ("pitch_shift", -0.5), ("pitch_shift", 0.5))


def time_stretch(x, rate, n_fft=1024, hop=256):
    """Change tempo by ``rate`` (> 1 faster and shorter), keeping the pitch.

    Returns a float32 signal of about ``len(x) / rate`` samples.
    """
    x = np.asarray(x, dtype=np.float64)
    if not rate > 0:
        raise ValueError(f"rate must be positive, got {rate}")
    window = np.hanning(n_fft + 2)[1:-1]
    padded = np.pad(x, (n_fft // 2, n_fft // 2 + n_fft))
    n_frames = 1 + (len(padded) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    spec = np.fft.rfft(padded[idx] * window, axis=1)
    steps = np.arange(0, n_frames - 1, rate)
    i = steps.astype(np.int64)
    frac = (steps - i)[:, None]
    mag = (1 - frac) * np.abs(spec[i]) + frac * np.abs(spec[i + 1])
    omega = 2 * np.pi * hop * np.arange(spec.shape[1]) / n_fft
    dphi = np.angle(spec[i + 1]) - np.angle(spec[i]) - omega
    dphi -= 2 * np.pi * np.round(dphi / (2 * np.pi))
    phase = np.angle(spec[0]) + np.cumsum(np.vstack([np.zeros_like(omega), (omega + dphi)[:-1]]), axis=0)
    frames = np.fft.irfft(mag * np.exp(1j * phase), n_fft, axis=1) * window
    out_len = hop * (len(steps) - 1) + n_fft
    y = np.zeros(out_len)
    norm = np.zeros(out_len)
    for k in range(len(steps)):  # overlap-add
        y[k * hop : k * hop + n_fft] += frames[k]
        norm[k * hop : k * hop + n_fft] += window**2
    y = y / np.maximum(norm, 1e-8 * norm.max())
    target = int(round(len(x) / rate))
    return y[n_fft // 2 : n_fft // 2 + target].astype(np.float32)


def pitch_shift(x, semitones, sample_rate):
    """Shift the pitch by ``semitones``, keeping the duration (float32)."""
    ratio = 2.0 ** (semitones / 12.0)
    stretched = time_stretch(x, 1.0 / ratio)
    shifted = soxr.resample(stretched.astype(np.float64), sample_rate * ratio, sample_rate, quality="HQ")
    out = np.zeros(len(x), np.float32)
    out[: min(len(x), len(shifted))] = shifted[: len(x)]
    return out


def augmented_copies(x, sample_rate):
    """[(name, signal)] for the four augmentations, in a fixed order."""
    out = []
    for kind, amount in AUGMENTATIONS:
        if kind == "time_stretch":
            out.append((f"time_stretch {amount}", time_stretch(x, amount)))
        else:
            out.append((f"pitch_shift {amount:+g}", pitch_shift(x, amount, sample_rate)))
    return out
