# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Thin Cython layer over the HMM kernels (c/hmm.c).

Arguments arrive validated from ssgs.kernels (C-contiguous float64 / int64,
at least one frame and one state). Outputs are allocated here with numpy and
the C kernel runs without the GIL.
"""
import numpy as np

from libc.stddef cimport ptrdiff_t
from libc.stdint cimport int64_t, uint64_t
from ssgs._core.cdefs cimport *


def gaussian_logpdf(const double[:, ::1] X, const double[:, ::1] means,
                    const double[:, :, ::1] covars, int n_threads):
    cdef ptrdiff_t T = X.shape[0], D = X.shape[1], N = means.shape[0]
    out = np.empty((T, N))
    cdef double[:, ::1] ov = out
    cdef ptrdiff_t bad = 0
    cdef int status
    cdef const double *xp = &X[0, 0] if T > 0 else NULL
    cdef double *op = &ov[0, 0] if T > 0 else NULL
    with nogil:
        status = ssgs_gaussian_logpdf(T, D, N, xp, &means[0, 0], &covars[0, 0, 0],
                                      n_threads, op, &bad)
    check_status(status, bad, "gaussian_logpdf")
    return out


def forward_backward(const double[:, ::1] log_frameprob, const double[::1] startprob,
                     const double[:, ::1] transmat):
    cdef ptrdiff_t T = log_frameprob.shape[0], N = log_frameprob.shape[1]
    posteriors = np.empty((T, N))
    xi_sum = np.empty((N, N))
    cdef double[:, ::1] pv = posteriors, xv = xi_sum
    cdef double ll = 0.0
    cdef ptrdiff_t bad = 0
    cdef int status
    with nogil:
        status = ssgs_forward_backward(T, N, &log_frameprob[0, 0], &startprob[0],
                                       &transmat[0, 0], &ll, &pv[0, 0], &xv[0, 0], &bad)
    check_status(status, bad, "forward_backward")
    return ll, posteriors, xi_sum


ctypedef int (*viterbi_kernel)(ptrdiff_t, ptrdiff_t, const double *, const double *, const double *,
                               double *, int64_t *) noexcept nogil


cdef object _best_path(viterbi_kernel kernel, str name, const double[:, ::1] log_frameprob,
                       const double[::1] start, const double[:, ::1] trans):
    """One Viterbi kernel (probabilities or their logs: the same signature)."""
    cdef ptrdiff_t T = log_frameprob.shape[0], N = log_frameprob.shape[1]
    path = np.empty(T, dtype=np.int64)
    cdef int64_t[::1] pv = path
    cdef double lp = 0.0
    cdef int status
    with nogil:
        status = kernel(T, N, &log_frameprob[0, 0], &start[0], &trans[0, 0], &lp, &pv[0])
    check_status(status, 0, name)
    return lp, path


def viterbi(const double[:, ::1] log_frameprob, const double[::1] startprob,
            const double[:, ::1] transmat):
    return _best_path(ssgs_viterbi, "viterbi", log_frameprob, startprob, transmat)


def viterbi_log(const double[:, ::1] log_frameprob, const double[::1] log_startprob,
                const double[:, ::1] log_transmat):
    return _best_path(ssgs_viterbi_log, "viterbi_log", log_frameprob, log_startprob, log_transmat)


def estep(const double[:, ::1] X, const int64_t[::1] lengths, const double[::1] startprob,
          const double[:, ::1] transmat, const double[:, ::1] means,
          const double[:, :, ::1] covars, int n_threads, bint return_posteriors, sums=None):
    """``sums``: (occupancy, start, xi_sum, m1, m2) of an earlier call to
    continue from (copied, not changed), or None to start from zero."""
    cdef ptrdiff_t T = X.shape[0], D = X.shape[1], N = means.shape[0], S = lengths.shape[0]
    seq_ll = np.empty(S)
    if sums is None:
        occupancy, start, xi_sum, m1, m2 = np.empty(N), np.empty(N), np.empty((N, N)), np.empty((N, D)), np.empty((N, D, D))
    else:
        occupancy, start, xi_sum, m1, m2 = (np.array(a, dtype=np.float64, order="C") for a in sums)
    posteriors = np.empty((T, N)) if return_posteriors else None
    cdef double[::1] llv = seq_ll, ov = occupancy, sv = start
    cdef double[:, ::1] xv = xi_sum, m1v = m1
    cdef double[:, :, ::1] m2v = m2
    cdef double[:, ::1] pv
    cdef double *pp = NULL
    cdef double *llp = NULL
    cdef int accumulate = sums is not None
    if S > 0:
        llp = &llv[0]
    if return_posteriors and T > 0:
        pv = posteriors
        pp = &pv[0, 0]
    cdef const double *xp = NULL
    cdef const int64_t *lp = NULL
    if T > 0:
        xp = &X[0, 0]
    if S > 0:
        lp = &lengths[0]
    cdef ptrdiff_t bad = 0
    cdef int status
    with nogil:
        if accumulate:
            status = ssgs_estep_continue(T, D, N, S, xp, lp, &startprob[0], &transmat[0, 0], &means[0, 0],
                                         &covars[0, 0, 0], n_threads, llp, &ov[0], &sv[0], &xv[0, 0], &m1v[0, 0],
                                         &m2v[0, 0, 0], pp, &bad)
        else:
            status = ssgs_estep(T, D, N, S, xp, lp, &startprob[0], &transmat[0, 0], &means[0, 0], &covars[0, 0, 0],
                                n_threads, llp, &ov[0], &sv[0], &xv[0, 0], &m1v[0, 0], &m2v[0, 0, 0], pp, &bad)
    check_status(status, bad, "estep")
    return seq_ll, occupancy, start, xi_sum, m1, m2, posteriors


def sample_states(const double[::1] startprob, const double[:, ::1] transmat, ptrdiff_t n,
                  uint64_t seed):
    cdef ptrdiff_t N = startprob.shape[0]
    path = np.empty(n, dtype=np.int64)
    if n == 0:
        return path
    cdef int64_t[::1] pv = path
    cdef int status
    with nogil:
        status = ssgs_sample_states(N, &startprob[0], &transmat[0, 0], n, seed, &pv[0])
    check_status(status, 0, "sample_states")
    return path
