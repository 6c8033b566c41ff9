"""Rendering: per-frame LPC envelopes and levels over an excitation, with
the filter's state carried across frames, each hop's level kept under the
peak ceiling, silences gated, and a soft limiter as the safety net for
what would still exceed full scale (resampling's overshoot)."""

from __future__ import annotations

import numpy as np

from ssgs import kernels
from ssgs.features import reflection_from_lar

__all__ = [
    "CEILING",
    "log_spectral_distance",
    "peak_limit",
    "ramp_between_centres",
    "render",
    "silence_gate",
    "smooth_gain",
    "soft_limit",
]

BLOCK = 16  # samples between filter updates
CEILING = 0.98  # the highest sample level rendering makes (-0.18 dBFS)


def silence_gate(audible, hop):
    """Per-sample gain [F * hop]: 1 in sounding hops, exactly 0 in silent
    ones; a sounding hop next to silence fades in (or out) over its half
    that borders it, so no sound leaks into the silence and no step is
    left at its edges."""
    a = np.asarray(audible, dtype=bool)
    F = a.shape[0]
    u = (np.arange(hop) + 0.5) / hop
    g = np.ones((F, hop))
    before = np.concatenate([[True], a[:-1]])
    after = np.concatenate([a[1:], [True]])
    g[~before] = np.minimum(g[~before], np.minimum(1.0, 2.0 * u))
    g[~after] = np.minimum(g[~after], np.minimum(1.0, 2.0 * (1.0 - u)))
    g[~a] = 0.0
    return g.reshape(-1)


def render(lar, log_gain, excitation, hop, state=None, audible=None):
    """Per-frame LARs and log signal levels over a unit-power excitation.

    The C kernel scales the excitation by prod(sqrt(1 - k^2)), which keeps
    white input at its level whatever spectrum the LARs make, and updates a
    direct-form filter every 16 samples from interpolated coefficients.
    A pitched or shaped excitation is not white (its partials may sit on
    the filter's peaks), so each hop's level is then brought to the
    model's: the ratio of wanted to measured RMS per hop (within 1/100
    and 100), interpolated between hop centres, multiplies the output
    (:func:`ssgs.kernels.synth.level`). Every frame ends at the
    gain the model gave it, unless that gain would take a sample over
    :data:`CEILING`: there a look-ahead limiter over half a hop on either
    side takes it down (:func:`peak_limit`). ``audible`` (optional, [F]
    bool): frames that are not get exact zeros (:func:`silence_gate`).
    """
    k = np.clip(reflection_from_lar(lar), -0.999999, 0.999999)
    y, zf = kernels.lpc_synthesis_smooth(excitation, k, log_gain, hop, block=BLOCK, zi=state)
    kernels.synth.level(y, log_gain, hop, max_ratio=100.0, out=y)  # in place: y is ours
    kernels.synth.peak_limit(y, hop // 2, CEILING, out=y)
    if audible is not None and not np.all(audible):
        y *= silence_gate(audible, hop)[: y.shape[0]]
    return y, zf


def peak_limit(y, width, ceiling=CEILING):
    """``y`` with its gain lowered smoothly around every sample that exceeds
    ``ceiling``, so that none does: a look-ahead limiter
    (:func:`smooth_gain` of each sample's ``ceiling / |y|``). Audio within
    the ceiling comes back unchanged. In C
    (:func:`ssgs.kernels.synth.peak_limit`).
    """
    return kernels.synth.peak_limit(y, int(width), ceiling)


def smooth_gain(allowed, width):
    """The largest smooth gain within each sample's ``allowed`` gain (capped
    at 1): the allowance held at its minimum over ``2 * width + 1``
    samples centred on each sample, then averaged over as many. Every
    value averaged at a sample held that sample's own allowance, so the
    gain never exceeds it; it falls and recovers over ``width`` samples on
    either side of a limited sample and is exactly 1 beyond their reach.
    In C (:func:`ssgs.kernels.synth.smooth_gain`).
    """
    return kernels.synth.smooth_gain(np.asarray(allowed, dtype=np.float64), int(width))


def ramp_between_centres(values, hop):
    """Per-sample values, linear between frame centres (f*hop + hop/2) and
    held before the first and after the last: [n_frames * hop]."""
    F = values.shape[0]
    u = (np.arange(hop) + 0.5) / hop - 0.5  # position within a hop, relative to its centre
    nxt = np.append(values[1:], values[-1])
    prv = np.insert(values[:-1], 0, values[0])
    ramp = np.where(u >= 0, values[:, None] + u * (nxt - values)[:, None],
                    values[:, None] + u * (values - prv)[:, None])
    return ramp.reshape(F * hop)


def soft_limit(y, threshold=0.9):
    """Only if some sample would exceed full scale: samples above
    ``threshold`` are compressed smoothly (tanh knee) so none exceeds 1.
    Audio within full scale comes back untouched."""
    y = np.asarray(y, dtype=np.float64)
    if not y.size or np.abs(y).max() <= 1.0:
        return y
    over = np.abs(y) > threshold
    knee = 1.0 - threshold
    y = y.copy()
    y[over] = np.sign(y[over]) * (threshold + knee * np.tanh((np.abs(y[over]) - threshold) / knee))
    return y


def log_spectral_distance(x, y, n_fft=1024, hop=256, floor_db=-100.0):
    """Mean over frames of the RMS difference (dB) between the log power
    spectra of two signals of the same length (Hann frames)."""
    n = min(len(x), len(y))
    if n < n_fft:
        raise ValueError("signals shorter than one FFT frame")
    idx = np.arange(n_fft)[None, :] + hop * np.arange(1 + (n - n_fft) // hop)[:, None]
    w = np.hanning(n_fft)
    px = np.abs(np.fft.rfft(np.asarray(x)[idx] * w, axis=1)) ** 2
    py = np.abs(np.fft.rfft(np.asarray(y)[idx] * w, axis=1)) ** 2
    ref = max(px.max(), py.max(), 1e-30)
    dx = 10 * np.log10(np.maximum(px / ref, 10 ** (floor_db / 10)))
    dy = 10 * np.log10(np.maximum(py / ref, 10 ** (floor_db / 10)))
    return float(np.mean(np.sqrt(np.mean((dx - dy) ** 2, axis=1))))
