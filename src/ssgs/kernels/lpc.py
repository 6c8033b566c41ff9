"""The LPC kernels: analysis, residual and synthesis filters, pitch.

Validated fronts of ``ssgs._core._lpc``; see :mod:`ssgs.kernels` for the
conventions.
"""

from __future__ import annotations

import numpy as np

from ssgs._core import _lpc
from ssgs.kernels import checks
from ssgs.kernels.threads import resolve_threads

__all__ = ["MAX_ORDER", "lpc_analysis", "lpc_residual", "lpc_synthesis", "pitch"]

MAX_ORDER = 256


def lpc_analysis(frames, order, *, lag_window=None, n_threads=0):
    """Linear prediction coefficients of windowed frames.

    Autocorrelation (lags 0..order, with the white-noise correction
    ``r[0] *= 1 + 1e-9``), then the Levinson-Durbin recursion.

    Parameters
    ----------
    frames : array_like, shape (n_frames, frame_length)
        Frames, already windowed. float32 or float64 (others are converted to
        float64); arithmetic is float64 either way.
    order : int
        Prediction order, 1 <= order <= 256.
    lag_window : array_like, shape (order + 1,), optional
        Factors applied to the autocorrelation r[0..order] before the
        recursion: a lag window (bandwidth expansion) and/or a white-noise
        floor in ``lag_window[0]``. None applies only the 1e-9 correction.
    n_threads : int, optional
        Threads over frames; 0 (default) uses every core.

    Returns
    -------
    a : ndarray, shape (n_frames, order + 1)
        A(z) = 1 + sum_i a[f, i] z^-i; ``a[:, 0] == 1``. Minimum phase.
    k : ndarray, shape (n_frames, order)
        Reflection coefficients, ``k[f, m-1]`` being the last coefficient of
        the order-m predictor; all ``|k| < 1``.
    err : ndarray, shape (n_frames,)
        Prediction-error power of the order-``order`` predictor.

    Raises
    ------
    ValueError
        If ``frames`` is not 2-D, holds NaN or inf (the message names the
        frame), or ``order`` is out of range.

    Notes
    -----
    A silent frame gives ``a = [1, 0, ...]``, ``k = 0``, ``err = 0``. When the
    recursion meets ``|k| >= 1`` (the Toeplitz system is singular to working
    precision, as for a pure tone) it stops: the remaining coefficients are 0.
    """
    # the kernel checks finiteness itself, in the pass it makes anyway
    frames = checks.real_array("frames", frames, 2, dtypes=(np.float64, np.float32),
                         shape_doc="[n_frames, frame_length]", check_finite=False)
    order = checks.positive_int("order", order)
    if order > MAX_ORDER:
        raise ValueError(f"order must be <= {MAX_ORDER}, got {order}")
    if frames.shape[1] == 0:
        raise ValueError("frames must have at least one sample per frame")
    if lag_window is None:
        lag_window = np.zeros(0)
    else:
        lag_window = checks.real_array("lag_window", lag_window, 1, shape_doc="[order + 1]")
        if lag_window.shape[0] != order + 1:
            raise ValueError(f"lag_window must have order + 1 = {order + 1} entries, got {lag_window.shape[0]}")
        if not (lag_window > 0).all():
            raise ValueError("lag_window entries must be positive")
    return _lpc.lpc_analysis(frames, order, lag_window, resolve_threads(n_threads))


def _filter_args(name, x, a, hop, zi):
    x = checks.real_array(name, x, 1, shape_doc="[n_samples]")
    a = checks.real_array("a", a, 2, shape_doc="[n_frames, order + 1]")
    hop = checks.positive_int("hop", hop)
    order = a.shape[1] - 1
    if order < 1:
        raise ValueError(f"a must have at least 2 columns (order >= 1), got shape {a.shape}")
    if order > MAX_ORDER:
        raise ValueError(f"a has order {order}; at most {MAX_ORDER} is supported")
    if a.shape[0] and not (a[:, 0] == 1.0).all():
        f = int(np.argmax(a[:, 0] != 1.0))
        raise ValueError(f"a[{f}, 0] is {float(a[f, 0])!r}; every row of a must start with 1")
    n_frames = -(-x.shape[0] // hop)
    if a.shape[0] != n_frames:
        raise ValueError(f"a has {a.shape[0]} frames but {name} has {x.shape[0]} samples, "
                         f"which at hop {hop} need ceil({x.shape[0]}/{hop}) = {n_frames}")
    if zi is None:
        zi = np.zeros(order)
    else:
        zi = checks.real_array("zi", zi, 1, shape_doc="[order]")
        if zi.shape[0] != order:
            raise ValueError(f"zi must have {order} samples (the filter order), got {zi.shape[0]}")
    return x, a, hop, zi


def lpc_residual(x, a, hop, zi=None):
    """Prediction residual through a time-varying FIR A(z).

    ``e[n] = x[n] + sum_i a[f, i] x[n - i]`` where frame ``f = n // hop``
    rules samples ``[f * hop, (f + 1) * hop)``.

    Parameters
    ----------
    x : array_like, shape (n_samples,)
        Signal (float64; other real dtypes are converted).
    a : array_like, shape (ceil(n_samples / hop), order + 1)
        Coefficients per frame, ``a[:, 0] == 1``.
    hop : int
        Samples per frame.
    zi : array_like, shape (order,), optional
        The ``order`` samples before ``x[0]``, oldest first (zeros if None).
        To continue a signal in pieces, pass the previous piece's last
        ``order`` samples.

    Returns
    -------
    e : ndarray, shape (n_samples,)

    See Also
    --------
    lpc_synthesis : the inverse filter; ``lpc_synthesis(lpc_residual(x, a,
        hop), a, hop)[0]`` equals ``x`` to float64 rounding.
    """
    x, a, hop, zi = _filter_args("x", x, a, hop, zi)
    return _lpc.lpc_residual(x, a, hop, zi)


def lpc_synthesis(e, a, hop, zi=None):
    """Time-varying all-pole synthesis 1/A(z), with state carried across frames.

    ``y[n] = e[n] - sum_i a[f, i] y[n - i]`` with ``f = n // hop``.

    Parameters
    ----------
    e : array_like, shape (n_samples,)
        Excitation.
    a : array_like, shape (ceil(n_samples / hop), order + 1)
        Coefficients per frame, ``a[:, 0] == 1``.
    hop : int
        Samples per frame.
    zi : array_like, shape (order,), optional
        The ``order`` outputs before ``y[0]``, oldest first (zeros if None);
        pass the ``zf`` of the previous call to continue a signal.

    Returns
    -------
    y : ndarray, shape (n_samples,)
    zf : ndarray, shape (order,)
        The last ``order`` outputs, oldest first: the ``zi`` of the next call.

    Raises
    ------
    FloatingPointError
        If the output overflows (an unstable filter); the message names the
        frame.
    """
    e, a, hop, zi = _filter_args("e", e, a, hop, zi)
    return _lpc.lpc_synthesis(e, a, hop, zi)


def pitch(x, hop, window, sample_rate, fmin=60.0, fmax=1000.0, n_frames=None, *, n_threads=0):
    """F0 and periodicity of each frame.

    Parameters
    ----------
    x : array_like, shape (n_samples,)
        The signal (the LPC residual gives the cleanest estimates), float32
        (others are converted).
    hop : int
        Frame f rules samples [f*hop, (f+1)*hop).
    window : int
        Analysis window, centred on each hop region; it must hold two periods
        of ``fmin``.
    sample_rate : float
    fmin, fmax : float
        Search range in Hz.
    n_frames : int, optional
        Default ceil(n_samples / hop).

    Returns
    -------
    f0 : ndarray, shape (n_frames,)
        Hz; 0 for a silent window.
    periodicity : ndarray, shape (n_frames,)
        The peak of the normalised cross-correlation at the chosen period,
        in [0, 1]: about the periodic share of the power.

    Notes
    -----
    The normalised cross-correlation function (NCCF, as in RAPT, Talkin
    1995) is searched on a copy decimated to about 4 fmax, the best lag is
    checked against a shorter one that explains the window almost as well
    (sub-octave errors), then refined at full rate with parabolic
    interpolation.
    """
    x = checks.real_array("x", x, 1, dtypes=(np.float32,), shape_doc="[n_samples]")
    hop = checks.positive_int("hop", hop)
    window = checks.positive_int("window", window, 8)
    sample_rate = float(sample_rate)
    if not (np.isfinite(sample_rate) and sample_rate > 0):
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    fmin, fmax = float(fmin), float(fmax)
    if not (0 < fmin < fmax < sample_rate / 2):
        raise ValueError(f"need 0 < fmin < fmax < sample_rate / 2, got fmin={fmin}, fmax={fmax}")
    if sample_rate / fmin > window / 2:
        raise ValueError(f"window ({window}) must hold two periods of fmin ({fmin} Hz): at least "
                         f"{int(np.ceil(2 * sample_rate / fmin))} samples")
    n_frames = -(-x.shape[0] // hop) if n_frames is None else checks.positive_int("n_frames", n_frames, 0)
    return _lpc.pitch(x, n_frames, hop, window, sample_rate, fmin, fmax, resolve_threads(n_threads))

