"""The synthesis kernels: excitation signals and the smoothly varying all-pole filter.

Validated fronts of ``ssgs._core._synth``; see :mod:`ssgs.kernels` for the
conventions.
"""

from __future__ import annotations

import numpy as np

from ssgs._core import _synth
from ssgs.kernels import checks
from ssgs.kernels.lpc import MAX_ORDER

__all__ = ["EXCITATIONS", "MIN_F0", "excitation", "fft_size_ok", "level", "lpc_synthesis_smooth", "peak_limit",
           "shape_excitation", "smooth_gain"]

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



def fft_size_ok(n) -> bool:
    """Whether the C real FFT takes ``n`` points (a power of two, at least 4)."""
    return n >= 4 and n & (n - 1) == 0


def shape_excitation(e, table, index, hop, variation=None):
    """Short-time filtering of ``e`` by a gain per frame and frequency.

    Parameters
    ----------
    e : array_like, shape (n_frames * hop,)
    table : array_like, shape (n_rows, hop + 1)
        Gains (amplitude) on the bins of the ``2 * hop``-point transform.
    index : array_like of int, shape (n_frames,)
        The table's row of each frame, in ``[0, n_rows)``.
    hop : int
        A power of two, at least 2 (:func:`fft_size_ok` of ``2 * hop``).
    variation : array_like, shape (n_frames, n_bins), optional
        Log power (nats) per frame on ``n_bins >= 2`` bins from 0 to
        Nyquist, interpolated linearly onto the ``hop + 1`` bins; the gains
        are multiplied by ``exp(variation / 2)``.

    Returns
    -------
    out : ndarray, shape (n_frames * hop,)

    Notes
    -----
    Frames of ``2 * hop`` samples centred on the hops' centres (the frames
    half a hop before the first and after the last take their neighbours'
    gains), square-root periodic Hann windows at 50% overlap, a real FFT in
    C (radix 2); numpy's ``irfft(rfft(frame) * gain)`` to rounding.
    """
    hop = checks.positive_int("hop", hop)
    if not fft_size_ok(2 * hop):
        raise ValueError(f"hop must be a power of two, got {hop}")
    index = np.ascontiguousarray(index, dtype=np.int64)
    table = checks.real_array("table", table, 2, shape_doc="[n_rows, hop + 1]")
    e = checks.real_array("e", e, 1, shape_doc="[n_frames * hop]")
    F = index.shape[0]
    if index.ndim != 1 or e.shape[0] != F * hop:
        raise ValueError(f"e must have {F} x {hop} samples for {F} frames, got {e.shape[0]}")
    if table.shape[0] < 1 or table.shape[1] != hop + 1:
        raise ValueError(f"table must have hop + 1 = {hop + 1} columns and a row, got {table.shape}")
    if F and not ((index >= 0) & (index < table.shape[0])).all():
        raise ValueError(f"index must lie in [0, {table.shape[0]})")
    if variation is None:
        variation = np.zeros((0, 2))
    else:
        variation = checks.real_array("variation", variation, 2, shape_doc="[n_frames, n_bins]")
        if variation.shape[0] != F or variation.shape[1] < 2:
            raise ValueError(f"variation must have {F} rows and at least 2 bins, got {variation.shape}")
    return _synth.shape_excitation(e, table, index, variation, hop)


def _output(out, y):
    """``out`` checked to take the result for ``y`` (float64, C-contiguous,
    as long; it may be ``y`` itself), or None for a new array."""
    if out is not None and not (isinstance(out, np.ndarray) and out.dtype == np.float64 and out.ndim == 1
                                and out.flags.c_contiguous and out.flags.writeable and out.shape == y.shape):
        raise ValueError(f"out must be a writeable C-contiguous float64 array of shape {y.shape}")
    return out


def level(y, log_gain, hop, max_ratio=100.0, out=None):
    """``y`` with each hop brought to the RMS ``exp(log_gain)`` asked of it.

    Parameters
    ----------
    y : array_like, shape (n_samples,)
        At most ``len(log_gain) * hop`` samples (a missing end counts as
        silence).
    log_gain : array_like, shape (n_frames,)
        Natural log of each hop's wanted RMS.
    hop : int
    max_ratio : float
        The correction wanted / measured RMS is kept within
        ``[1 / max_ratio, max_ratio]``.
    out : ndarray, optional
        Where to write the result (float64, C-contiguous, as long as
        ``y``; ``y`` itself to work in place).

    Returns
    -------
    out : ndarray, shape (n_samples,)
        ``y`` times the per-hop correction, interpolated linearly between
        hop centres and held before the first and after the last.
    """
    y = checks.real_array("y", y, 1, shape_doc="[n_samples]")
    log_gain = checks.real_array("log_gain", log_gain, 1, shape_doc="[n_frames]")
    hop = checks.positive_int("hop", hop)
    if y.shape[0] > log_gain.shape[0] * hop:
        raise ValueError(f"y has {y.shape[0]} samples, more than {log_gain.shape[0]} frames of {hop}")
    if not max_ratio >= 1.0:
        raise ValueError(f"max_ratio must be at least 1, got {max_ratio}")
    return _synth.level(y, log_gain, hop, float(np.log(max_ratio)), _output(out, y))


def smooth_gain(allowed, width):
    """A look-ahead limiter's gain: ``min(1, allowed)`` held at its minimum
    over the ``2 * width + 1`` samples centred on each sample, then averaged
    over as many; exactly 1 farther than ``2 * width`` from every sample
    whose allowance is below 1.

    Parameters
    ----------
    allowed : array_like, shape (n_samples,)
        Each sample's largest allowed gain, at least 0 (+inf: no limit).
    width : int

    Returns
    -------
    gain : ndarray, shape (n_samples,)

    Notes
    -----
    scipy.ndimage's ``uniform_filter1d(minimum_filter1d(a, size,
    mode="nearest"), size, mode="nearest")`` to rounding; the running
    minimum keeps a deque of candidates, and only the stretches within
    reach of a limited sample are computed.
    """
    allowed = np.ascontiguousarray(allowed, dtype=np.float64)
    width = checks.positive_int("width", width, minimum=0)
    if allowed.ndim != 1 or (allowed.size and not (allowed >= 0).all()):
        raise ValueError("allowed must be 1-D, at least 0 and not NaN (+inf: no limit)")
    return _synth.smooth_gain(allowed, width)


def peak_limit(y, width, ceiling, out=None):
    """``y`` times the :func:`smooth_gain` of ``ceiling / |y|``, clipped to
    ``[-ceiling, ceiling]`` (which only removes rounding): no sample exceeds
    the ceiling, and samples farther than ``2 * width`` from every sample
    that did come back as they were.

    Parameters
    ----------
    y : array_like, shape (n_samples,)
    width : int
    ceiling : float
        Positive.
    out : ndarray, optional
        As :func:`level`'s.

    Returns
    -------
    out : ndarray, shape (n_samples,)
    """
    y = checks.real_array("y", y, 1, shape_doc="[n_samples]")
    width = checks.positive_int("width", width, minimum=0)
    if not ceiling > 0:
        raise ValueError(f"ceiling must be positive, got {ceiling}")
    return _synth.peak_limit(y, width, float(ceiling), _output(out, y))
