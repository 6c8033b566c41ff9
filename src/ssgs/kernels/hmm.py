"""The HMM kernels: emissions, forward-backward, Viterbi, the E-step, path sampling.

Validated fronts of ``ssgs._core._hmm``; see :mod:`ssgs.kernels` for the
conventions.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ssgs._core import _hmm
from ssgs.kernels import checks
from ssgs.kernels.threads import resolve_threads

__all__ = [
    "EStepResult",
    "estep",
    "forward_backward",
    "gaussian_logpdf",
    "sample_states",
    "viterbi",
    "viterbi_log",
]

_PROB_ATOL = 1e-6


def _probabilities(startprob, transmat, n_states=None):
    startprob = checks.real_array("startprob", startprob, 1, shape_doc="[n_states]")
    transmat = checks.real_array("transmat", transmat, 2, shape_doc="[n_states, n_states]")
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
    means = checks.real_array("means", means, 2, shape_doc="[n_states, n_features]")
    covars = checks.real_array("covars", covars, 3, shape_doc="[n_states, n_features, n_features]")
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
    X = checks.real_array("X", X, 2, shape_doc="[n_frames, n_features]")
    means, covars = _gaussians(means, covars, X.shape[1])
    return _hmm.gaussian_logpdf(X, means, covars, resolve_threads(n_threads))


def _log_frameprob(log_frameprob):
    lf = checks.real_array("log_frameprob", log_frameprob, 2, allow_neginf=True,
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
    ls = checks.real_array("log_startprob", log_startprob, 1, allow_neginf=True, shape_doc="[n_states]")
    lt = checks.real_array("log_transmat", log_transmat, 2, allow_neginf=True, shape_doc="[n_states, n_states]")
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


def _continued_sums(after, N, D):
    """The sums of the E-step result ``after`` for a call with N states and
    D features to continue (ValueError when their shapes are not those)."""
    sums = (after.occupancy, after.start_occupancy, after.xi_sum, after.moment1, after.moment2)
    shapes = ((N,), (N,), (N, N), (N, D), (N, D, D))
    if any(np.shape(a) != shape for a, shape in zip(sums, shapes)):
        raise ValueError(f"after: sums of shapes {[np.shape(a) for a in sums]}, not those of {N} states and "
                         f"{D} features")
    return sums


def estep(X, lengths, startprob, transmat, means, covars, n_threads=0, *,
          return_posteriors=False, after=None):
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
    after : EStepResult, optional
        The result of the sequences before these (the same parameters):
        the sums continue from its sums and ``seq_log_likelihood`` from
        its own, so batches of sequences in order give the bits one call
        over all of them gives. Its posteriors are not carried over.

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
    X = checks.real_array("X", X, 2, shape_doc="[n_frames, n_features]")
    if X.shape[1] == 0:
        raise ValueError("X must have at least one feature")
    lengths = _lengths(lengths, X.shape[0])
    means, covars = _gaussians(means, covars, X.shape[1])
    startprob, transmat = _probabilities(startprob, transmat, means.shape[0])
    sums = None if after is None else _continued_sums(after, means.shape[0], X.shape[1])
    seq_ll, occ, start, xi, m1, m2, post = _hmm.estep(
        X, lengths, startprob, transmat, means, covars, resolve_threads(n_threads),
        bool(return_posteriors), sums)
    if after is not None:
        seq_ll = np.concatenate([after.seq_log_likelihood, seq_ll])
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
    n = checks.positive_int("n", n, minimum=0)
    return _hmm.sample_states(startprob, transmat, n, checks.seed(seed))

