"""The compiled core of ssgs, validated.

Every function here checks its arguments (shapes, dtypes, finiteness,
probabilities), converts them to C-contiguous arrays of the kernel's dtype and
calls a C kernel without the GIL. Bad input raises a ``ValueError`` that names
the argument; the C code never sees it.

Conventions follow hmmlearn: ``N`` states, ``D`` features, ``T`` frames,
``startprob`` [N], ``transmat`` [N, N] (rows sum to 1), ``means`` [N, D],
``covars`` [N, D, D], ``log_frameprob`` [T, N]. LPC filters are
A(z) = 1 + sum_i a[i] z^-i with ``a[..., 0] == 1``.

``n_threads=0`` means every core this process may use; results never depend
on the number of threads.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from ssgs._core import _hmm, _lpc, _synth

__all__ = [
    "EStepResult",
    "MAX_ORDER",
    "EXCITATIONS",
    "MIN_F0",
    "estep",
    "excitation",
    "forward_backward",
    "gaussian_logpdf",
    "have_openmp",
    "lpc_analysis",
    "lpc_residual",
    "lpc_synthesis",
    "lpc_synthesis_smooth",
    "pitch",
    "resolve_threads",
    "sample_states",
    "viterbi",
    "viterbi_log",
]

MAX_ORDER = 256
EXCITATIONS = ("noise", "karplus-strong", "pulses")
MIN_F0 = 20.0  # Hz: the lowest fundamental an excitation takes (a string's pluck costs period^2 / 2)
_PROB_ATOL = 1e-6


def have_openmp() -> bool:
    """Whether the kernels were built with OpenMP (otherwise they run serially)."""
    return _lpc.have_openmp()


def resolve_threads(n_threads) -> int:
    """The thread count ``n_threads`` means: itself, or every usable core for 0.

    Raises ValueError for a negative or non-integer count."""
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)):
        raise ValueError(f"n_threads must be an integer >= 0, got {n_threads!r}")
    if n_threads < 0:
        raise ValueError(f"n_threads must be >= 0 (0 means all cores), got {n_threads}")
    if n_threads == 0:
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not on Linux
            return os.cpu_count() or 1
    return int(n_threads)


def _positive_int(name, value, minimum=1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _real_array(name, x, ndim, dtypes=(np.float64,), allow_neginf=False, shape_doc="",
                check_finite=True):
    """``x`` as a C-contiguous array of one of ``dtypes`` (the first by default)."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        doc = f" {shape_doc}" if shape_doc else ""
        raise ValueError(f"{name} must be {ndim}-D{doc}, got shape {arr.shape}")
    dtype = arr.dtype if arr.dtype in dtypes else dtypes[0]
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not check_finite or np.isfinite(arr).all():
        return arr
    bad = np.isnan(arr) | (arr == np.inf) if allow_neginf else ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        what = "NaN or +inf" if allow_neginf else "NaN or inf"
        raise ValueError(f"{name} contains {what} (first at index {where})")
    return arr


def _probabilities(startprob, transmat, n_states=None):
    startprob = _real_array("startprob", startprob, 1, shape_doc="[n_states]")
    transmat = _real_array("transmat", transmat, 2, shape_doc="[n_states, n_states]")
    N = startprob.shape[0]
    if N == 0:
        raise ValueError("startprob must have at least one state")
    if transmat.shape != (N, N):
        raise ValueError(f"transmat must have shape ({N}, {N}) to match startprob, "
                         f"got {transmat.shape}")
    if n_states is not None and N != n_states:
        raise ValueError(f"startprob has {N} states but the emissions have {n_states}")
    if (startprob < 0).any():
        raise ValueError(f"startprob has a negative entry at index {int(np.argmin(startprob))}")
    if abs(startprob.sum() - 1.0) > _PROB_ATOL:
        raise ValueError(f"startprob sums to {startprob.sum():.9g}, not 1")
    if (transmat < 0).any():
        i, j = np.argwhere(transmat < 0)[0]
        raise ValueError(f"transmat has a negative entry at ({i}, {j})")
    row_sums = transmat.sum(axis=1)
    off = np.abs(row_sums - 1.0) > _PROB_ATOL
    if off.any():
        i = int(np.argmax(off))
        raise ValueError(f"transmat row {i} sums to {row_sums[i]:.9g}, not 1")
    return startprob, transmat


def _gaussians(means, covars, n_features=None):
    means = _real_array("means", means, 2, shape_doc="[n_states, n_features]")
    covars = _real_array("covars", covars, 3, shape_doc="[n_states, n_features, n_features]")
    N, D = means.shape
    if N == 0 or D == 0:
        raise ValueError(f"means must have at least one state and one feature, got shape {means.shape}")
    if n_features is not None and D != n_features:
        raise ValueError(f"means has {D} features but X has {n_features}")
    if covars.shape != (N, D, D):
        raise ValueError(f"covars must have shape ({N}, {D}, {D}) to match means, got {covars.shape}")
    asym = np.abs(covars - covars.transpose(0, 2, 1)).max(axis=(1, 2))
    scale = np.abs(covars).max(axis=(1, 2))
    bad = asym > 1e-8 * np.maximum(scale, np.finfo(float).tiny)
    if bad.any():
        j = int(np.argmax(bad))
        raise ValueError(f"covars[{j}] (state {j}) is not symmetric")
    return means, covars


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
    frames = _real_array("frames", frames, 2, dtypes=(np.float64, np.float32),
                         shape_doc="[n_frames, frame_length]", check_finite=False)
    order = _positive_int("order", order)
    if order > MAX_ORDER:
        raise ValueError(f"order must be <= {MAX_ORDER}, got {order}")
    if frames.shape[1] == 0:
        raise ValueError("frames must have at least one sample per frame")
    if lag_window is None:
        lag_window = np.zeros(0)
    else:
        lag_window = _real_array("lag_window", lag_window, 1, shape_doc="[order + 1]")
        if lag_window.shape[0] != order + 1:
            raise ValueError(f"lag_window must have order + 1 = {order + 1} entries, got {lag_window.shape[0]}")
        if not (lag_window > 0).all():
            raise ValueError("lag_window entries must be positive")
    return _lpc.lpc_analysis(frames, order, lag_window, resolve_threads(n_threads))


def _filter_args(name, x, a, hop, zi):
    x = _real_array(name, x, 1, shape_doc="[n_samples]")
    a = _real_array("a", a, 2, shape_doc="[n_frames, order + 1]")
    hop = _positive_int("hop", hop)
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
        zi = _real_array("zi", zi, 1, shape_doc="[order]")
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


def gaussian_logpdf(X, means, covars, *, n_threads=0):
    """Log density of every frame under every state's full-covariance Gaussian.

    Parameters
    ----------
    X : array_like, shape (n_frames, n_features)
    means : array_like, shape (n_states, n_features)
    covars : array_like, shape (n_states, n_features, n_features)
        Symmetric positive definite.
    n_threads : int, optional
        Threads over blocks of frames; 0 (default) uses every core.

    Returns
    -------
    log_frameprob : ndarray, shape (n_frames, n_states)

    Raises
    ------
    ValueError
        For bad shapes, NaN or inf, or a covariance that is not symmetric
        positive definite (the message names the state).

    Notes
    -----
    Each covariance is factored once, ``C = L L^T``; then
    ``log p = -D/2 log(2 pi) - log det L - |L^-1 (x - mu)|^2 / 2``.
    """
    X = _real_array("X", X, 2, shape_doc="[n_frames, n_features]")
    means, covars = _gaussians(means, covars, X.shape[1])
    return _hmm.gaussian_logpdf(X, means, covars, resolve_threads(n_threads))


def _log_frameprob(log_frameprob):
    lf = _real_array("log_frameprob", log_frameprob, 2, allow_neginf=True,
                     shape_doc="[n_frames, n_states]")
    if lf.shape[0] == 0 or lf.shape[1] == 0:
        raise ValueError(f"log_frameprob must have at least one frame and one state, got shape {lf.shape}")
    return lf


def forward_backward(log_frameprob, startprob, transmat):
    """Scaled forward-backward on one sequence.

    Parameters
    ----------
    log_frameprob : array_like, shape (n_frames, n_states)
        Log emission probabilities; -inf is allowed (impossible emission).
    startprob : array_like, shape (n_states,)
    transmat : array_like, shape (n_states, n_states)

    Returns
    -------
    log_likelihood : float
        log p(x_0, ..., x_{T-1}).
    posteriors : ndarray, shape (n_frames, n_states)
        p(state_t = j | x).
    xi_sum : ndarray, shape (n_states, n_states)
        sum_t p(state_t = i, state_{t+1} = j | x).

    Raises
    ------
    ValueError
        For bad arguments, or a sequence with zero probability under the
        model (the message names the frame).

    Notes
    -----
    Rabiner (1989), eqs. 91-92: forward variables normalised every frame.
    Each frame's emissions are first shifted by their largest value among
    the states reachable at that frame, so no log or exp runs in the N x N
    loops and nothing underflows; no T x N x N array is formed.
    """
    lf = _log_frameprob(log_frameprob)
    startprob, transmat = _probabilities(startprob, transmat, lf.shape[1])
    return _hmm.forward_backward(lf, startprob, transmat)


def viterbi(log_frameprob, startprob, transmat):
    """Most likely state path of one sequence.

    Parameters
    ----------
    log_frameprob : array_like, shape (n_frames, n_states)
    startprob : array_like, shape (n_states,)
    transmat : array_like, shape (n_states, n_states)

    Returns
    -------
    log_prob : float
        log p(x, path); -inf if every path is impossible.
    path : ndarray of int64, shape (n_frames,)
        Ties go to the lowest state index.
    """
    lf = _log_frameprob(log_frameprob)
    startprob, transmat = _probabilities(startprob, transmat, lf.shape[1])
    return _hmm.viterbi(lf, startprob, transmat)


def viterbi_log(log_frameprob, log_startprob, log_transmat):
    """Best path under arbitrary log scores.

    Maximises ``log_startprob[s0] + sum_t log_frameprob[t, s_t] + sum_t
    log_transmat[s_{t-1}, s_t]``; nothing needs to be normalised, so a
    transition score may mix log-probability with a penalty and frame scores
    may be noise (perturb-and-MAP sampling).

    Parameters
    ----------
    log_frameprob : array_like, shape (n_frames, n_states)
    log_startprob : array_like, shape (n_states,)
    log_transmat : array_like, shape (n_states, n_states)
        Any finite values or -inf (forbidden); no NaN or +inf.

    Returns
    -------
    score : float
    path : ndarray of int64, shape (n_frames,)
    """
    lf = _log_frameprob(log_frameprob)
    ls = _real_array("log_startprob", log_startprob, 1, allow_neginf=True, shape_doc="[n_states]")
    lt = _real_array("log_transmat", log_transmat, 2, allow_neginf=True, shape_doc="[n_states, n_states]")
    N = lf.shape[1]
    if ls.shape != (N,) or lt.shape != (N, N):
        raise ValueError(f"log_startprob must have shape ({N},) and log_transmat ({N}, {N}), "
                         f"got {ls.shape} and {lt.shape}")
    return _hmm.viterbi_log(lf, ls, lt)


class EStepResult(NamedTuple):
    """Sufficient statistics of one E-step (see :func:`estep`).

    Moments are centred on the ``means`` the E-step was given, so the M-step
    reads ``new_mean = means + moment1 / occupancy`` and
    ``new_covar = moment2 / occupancy - outer(moment1, moment1) / occupancy**2``.
    """

    log_likelihood: float
    """Total log-likelihood (sum of ``seq_log_likelihood`` in order)."""
    seq_log_likelihood: np.ndarray
    """[n_sequences] log-likelihood of each sequence."""
    occupancy: np.ndarray
    """[n_states] sum_t gamma_t(j)."""
    start_occupancy: np.ndarray
    """[n_states] sum over sequences of gamma_0(j)."""
    xi_sum: np.ndarray
    """[n_states, n_states] sum_t xi_t(i, j)."""
    moment1: np.ndarray
    """[n_states, n_features] sum_t gamma_t(j) (x_t - means_j)."""
    moment2: np.ndarray
    """[n_states, n_features, n_features] sum_t gamma_t(j) (x_t - means_j)(x_t - means_j)^T."""
    posteriors: np.ndarray | None
    """[n_frames, n_states] gamma, when asked for."""


def _lengths(lengths, n_frames):
    arr = np.asarray(lengths)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ValueError(f"lengths must be a 1-D sequence of integers, got {arr.dtype} shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if arr.size == 0:
        raise ValueError("lengths must name at least one sequence")
    if (arr < 1).any():
        s = int(np.argmax(arr < 1))
        raise ValueError(f"lengths[{s}] is {arr[s]}; every sequence needs at least one frame")
    if int(arr.sum()) != n_frames:
        raise ValueError(f"lengths sum to {int(arr.sum())} but X has {n_frames} frames")
    return arr


def estep(X, lengths, startprob, transmat, means, covars, n_threads=0, *,
          return_posteriors=False):
    """The E-step of Baum-Welch over many sequences in one call.

    Emissions through Cholesky factors, scaled forward-backward and the
    sufficient statistics, with OpenMP over sequences.

    Parameters
    ----------
    X : array_like, shape (n_frames, n_features)
        The frames of every sequence, back to back.
    lengths : array_like of int, shape (n_sequences,)
        Frames per sequence; each >= 1, summing to n_frames.
    startprob : array_like, shape (n_states,)
    transmat : array_like, shape (n_states, n_states)
    means : array_like, shape (n_states, n_features)
    covars : array_like, shape (n_states, n_features, n_features)
    n_threads : int, optional
        Threads over sequences; 0 (default) uses every core.
    return_posteriors : bool, optional
        Also return gamma for every frame (n_frames x n_states floats).

    Returns
    -------
    EStepResult

    Raises
    ------
    ValueError
        For bad arguments, a covariance that is not positive definite, or a
        sequence with zero probability under the model.

    Notes
    -----
    Each sequence's statistics are summed on their own and the sums reduced
    in sequence order, so the result is bit-identical for every
    ``n_threads``. Memory is O(longest sequence x N) per thread plus
    O(threads x N x D^2); never T x N x N.
    """
    X = _real_array("X", X, 2, shape_doc="[n_frames, n_features]")
    if X.shape[1] == 0:
        raise ValueError("X must have at least one feature")
    lengths = _lengths(lengths, X.shape[0])
    means, covars = _gaussians(means, covars, X.shape[1])
    startprob, transmat = _probabilities(startprob, transmat, means.shape[0])
    seq_ll, occ, start, xi, m1, m2, post = _hmm.estep(
        X, lengths, startprob, transmat, means, covars, resolve_threads(n_threads),
        bool(return_posteriors))
    return EStepResult(float(np.sum(seq_ll)), seq_ll, occ, start, xi, m1, m2, post)


def sample_states(startprob, transmat, n, seed):
    """Draw a state path from the Markov chain (startprob, transmat).

    Parameters
    ----------
    startprob : array_like, shape (n_states,)
    transmat : array_like, shape (n_states, n_states)
    n : int
        Path length (>= 0).
    seed : int
        0 <= seed < 2**64. The same seed gives the same path on every
        platform (xoshiro256** seeded through splitmix64, in C).

    Returns
    -------
    path : ndarray of int64, shape (n,)
    """
    startprob, transmat = _probabilities(startprob, transmat)
    n = _positive_int("n", n, minimum=0)
    return _hmm.sample_states(startprob, transmat, n, _seed(seed))


def _seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return int(seed)


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
    x = _real_array("x", x, 1, dtypes=(np.float32,), shape_doc="[n_samples]")
    hop = _positive_int("hop", hop)
    window = _positive_int("window", window, 8)
    sample_rate = float(sample_rate)
    if not (np.isfinite(sample_rate) and sample_rate > 0):
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    fmin, fmax = float(fmin), float(fmax)
    if not (0 < fmin < fmax < sample_rate / 2):
        raise ValueError(f"need 0 < fmin < fmax < sample_rate / 2, got fmin={fmin}, fmax={fmax}")
    if sample_rate / fmin > window / 2:
        raise ValueError(f"window ({window}) must hold two periods of fmin ({fmin} Hz): at least "
                         f"{int(np.ceil(2 * sample_rate / fmin))} samples")
    n_frames = -(-x.shape[0] // hop) if n_frames is None else _positive_int("n_frames", n_frames, 0)
    return _lpc.pitch(x, n_frames, hop, window, sample_rate, fmin, fmax, resolve_threads(n_threads))


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
    f0 = _real_array("f0", f0, 1, shape_doc="[n_frames]")
    voicing = _real_array("voicing", voicing, 1, shape_doc="[n_frames]")
    onset = np.ascontiguousarray(np.asarray(onset).astype(bool), dtype=np.uint8)
    n = f0.shape[0]
    if voicing.shape[0] != n or onset.ndim != 1 or onset.shape[0] != n:
        raise ValueError(f"f0, voicing and onset must have the same length, got {n}, "
                         f"{voicing.shape[0]}, {onset.shape}")
    if n and not ((voicing >= 0) & (voicing <= 1)).all():
        raise ValueError("voicing must lie in [0, 1]")
    hop = _positive_int("hop", hop)
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
        pulse = _real_array("pulse", pulse, 1)
        if pulse.shape[0] == 0 or not np.any(pulse):
            raise ValueError("pulse must hold at least one non-zero sample")
    else:
        pulse = np.zeros(0)
    oversampling = _positive_int("pulse_oversampling", pulse_oversampling)
    return _synth.excitation(_synth.KINDS[kind], f0, voicing, onset, hop, sample_rate, pulse,
                             oversampling, _seed(seed))


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
    e = _real_array("e", e, 1, shape_doc="[n_samples]")
    k = _real_array("k", k, 2, shape_doc="[n_frames, order]")
    log_gain = _real_array("log_gain", log_gain, 1, shape_doc="[n_frames]")
    hop = _positive_int("hop", hop)
    block = _positive_int("block", block)
    n_frames = -(-e.shape[0] // hop)
    if k.shape[0] != n_frames or log_gain.shape[0] != n_frames:
        raise ValueError(f"k and log_gain need {n_frames} frames for {e.shape[0]} samples at hop {hop}, "
                         f"got {k.shape[0]} and {log_gain.shape[0]}")
    order = k.shape[1]
    if not 1 <= order <= MAX_ORDER:
        raise ValueError(f"k must have 1 to {MAX_ORDER} columns, got {order}")
    if k.size and not (np.abs(k) < 1).all():
        raise ValueError("every reflection coefficient must satisfy |k| < 1")
    zi = np.zeros(order) if zi is None else _real_array("zi", zi, 1, shape_doc="[order]")
    if zi.shape[0] != order:
        raise ValueError(f"zi must have {order} samples, got {zi.shape[0]}")
    return _synth.lpc_synthesis_smooth(e, k, log_gain, hop, block, zi)
