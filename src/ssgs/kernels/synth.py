"""The synthesis kernels: excitation signals and the smoothly varying all-pole filter.

Validated fronts of ``ssgs._core._synth``; see :mod:`ssgs.kernels` for the
conventions.
"""

from __future__ import annotations

import numpy as np

from ssgs._core import _synth
from ssgs.kernels import checks
from ssgs.kernels.lpc import MAX_ORDER

__all__ = ["EXCITATIONS", "MIN_F0", "excitation", "lpc_synthesis_smooth"]

EXCITATIONS = ("noise", "karplus-strong", "pulses")
MIN_F0 = 20.0  # Hz: the lowest fundamental an excitation takes (a string's pluck costs period^2 / 2)


def excitation(kind, f0, voicing, onset, hop, sample_rate, seed, pulse=None, pulse_oversampling=1):
    """A unit-power excitation: a periodic part mixed with white Gaussian noise.

    Parameters
    ----------
    kind : {"noise", "karplus-strong", "pulses"}
    f0 : array_like, shape (n_frames,)
        Fundamental at each frame's centre in Hz (MIN_F0 = 20 Hz up to,
        not including, sample_rate / 2), interpolated per sample in log
        frequency.
    voicing : array_like, shape (n_frames,)
        Periodic share of the power, in [0, 1].
    onset : array_like of bool, shape (n_frames,)
        Where the Karplus-Strong string is plucked anew.
    hop : int
    sample_rate : float
    seed : int
        The same seed gives the same samples.
    pulse : array_like, optional
        Pulse shape for ``kind="pulses"``, tabulated ``pulse_oversampling``
        points per sample; each pulse is evaluated at its exact sub-sample
        position.
    pulse_oversampling : int

    Returns
    -------
    e : ndarray, shape (n_frames * hop,)
    """
    if kind not in EXCITATIONS:
        raise ValueError(f"kind must be one of {', '.join(EXCITATIONS)}; got {kind!r}")
    f0 = checks.real_array("f0", f0, 1, shape_doc="[n_frames]")
    voicing = checks.real_array("voicing", voicing, 1, shape_doc="[n_frames]")
    onset = np.ascontiguousarray(np.asarray(onset).astype(bool), dtype=np.uint8)
    n = f0.shape[0]
    if voicing.shape[0] != n or onset.ndim != 1 or onset.shape[0] != n:
        raise ValueError(f"f0, voicing and onset must have the same length, got {n}, "
                         f"{voicing.shape[0]}, {onset.shape}")
    if n and not ((voicing >= 0) & (voicing <= 1)).all():
        raise ValueError("voicing must lie in [0, 1]")
    hop = checks.positive_int("hop", hop)
    sample_rate = float(sample_rate)
    if not sample_rate > 2 * MIN_F0:
        raise ValueError(f"sample_rate must be above {2 * MIN_F0:g} Hz, got {sample_rate:g}")
    bad = np.flatnonzero(~((f0 >= MIN_F0) & (f0 < sample_rate / 2)))
    if bad.size:  # a string's pluck costs period^2 / 2; at or above Nyquist nothing is periodic
        raise ValueError(f"f0 must lie in [{MIN_F0:g}, sample_rate / 2) Hz, got {float(f0[bad[0]])} "
                         f"at frame {int(bad[0])}")
    if kind == "pulses":
        if pulse is None:
            raise ValueError('kind="pulses" needs a pulse shape')
        pulse = checks.real_array("pulse", pulse, 1)
        if pulse.shape[0] == 0 or not np.any(pulse):
            raise ValueError("pulse must hold at least one non-zero sample")
    else:
        pulse = np.zeros(0)
    oversampling = checks.positive_int("pulse_oversampling", pulse_oversampling)
    return _synth.excitation(_synth.KINDS[kind], f0, voicing, onset, hop, sample_rate, pulse,
                             oversampling, checks.seed(seed))


def lpc_synthesis_smooth(e, k, log_gain, hop, block=16, zi=None):
    """Smoothly varying all-pole synthesis.

    ``y = g * prod(sqrt(1 - k**2)) / A(z) e``: for a unit-power white
    excitation the output's RMS is ``g``, whatever the spectrum.

    Parameters
    ----------
    e : array_like, shape (n_samples,)
        Excitation.
    k : array_like, shape (ceil(n_samples / hop), order)
        Reflection coefficients at the frame centres, all |k| < 1.
    log_gain : array_like, shape (ceil(n_samples / hop),)
        Natural log of the gain ``g`` at the frame centres.
    hop : int
    block : int
        Samples between filter updates.
    zi : array_like, shape (order,), optional
        Output history (oldest first), zeros if None; pass the previous
        call's ``zf`` to continue a signal.

    Returns
    -------
    y : ndarray, shape (n_samples,)
    zf : ndarray, shape (order,)

    Notes
    -----
    Every ``block`` samples the reflection coefficients are interpolated
    linearly between the neighbouring frame centres (so every intermediate
    filter is stable) and turned into a direct-form filter by the step-up
    recursion; its state is the output history, so changing coefficients
    leaves no transient. The gain is interpolated in log. No parameter jumps
    at a frame boundary.
    """
    e = checks.real_array("e", e, 1, shape_doc="[n_samples]")
    k = checks.real_array("k", k, 2, shape_doc="[n_frames, order]")
    log_gain = checks.real_array("log_gain", log_gain, 1, shape_doc="[n_frames]")
    hop = checks.positive_int("hop", hop)
    block = checks.positive_int("block", block)
    n_frames = -(-e.shape[0] // hop)
    if k.shape[0] != n_frames or log_gain.shape[0] != n_frames:
        raise ValueError(f"k and log_gain need {n_frames} frames for {e.shape[0]} samples at hop {hop}, "
                         f"got {k.shape[0]} and {log_gain.shape[0]}")
    order = k.shape[1]
    if not 1 <= order <= MAX_ORDER:
        raise ValueError(f"k must have 1 to {MAX_ORDER} columns, got {order}")
    if k.size and not (np.abs(k) < 1).all():
        raise ValueError("every reflection coefficient must satisfy |k| < 1")
    zi = np.zeros(order) if zi is None else checks.real_array("zi", zi, 1, shape_doc="[order]")
    if zi.shape[0] != order:
        raise ValueError(f"zi must have {order} samples, got {zi.shape[0]}")
    return _synth.lpc_synthesis_smooth(e, k, log_gain, hop, block, zi)

