# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Thin Cython layer over the LPC kernels (c/lpc.c).

Arguments arrive validated from ssgs.kernels: C-contiguous, the right dtype,
non-empty where a pointer to element 0 is taken. Outputs are allocated here
with numpy and the C kernel runs without the GIL.
"""
import numpy as np

from libc.stddef cimport ptrdiff_t
from ssgs._core.cdefs cimport *


def have_openmp():
    return bool(ssgs_have_openmp())


def max_threads():
    return ssgs_max_threads()


ctypedef fused real:
    float
    double


def lpc_analysis(const real[:, ::1] frames, int order, const double[::1] lag_window, int n_threads):
    cdef ptrdiff_t F = frames.shape[0], L = frames.shape[1]
    a = np.empty((F, order + 1))
    k = np.empty((F, order))
    err = np.empty(F)
    if F == 0:
        return a, k, err
    cdef double[:, ::1] av = a, kv = k
    cdef double[::1] ev = err
    cdef ptrdiff_t bad = 0
    cdef const double *lw = &lag_window[0] if lag_window.shape[0] > 0 else NULL
    cdef int status
    with nogil:
        if real is double:
            status = ssgs_lpc_analysis_f64(&frames[0, 0], F, L, order, lw, n_threads,
                                           &av[0, 0], &kv[0, 0], &ev[0], &bad)
        else:
            status = ssgs_lpc_analysis_f32(&frames[0, 0], F, L, order, lw, n_threads,
                                           &av[0, 0], &kv[0, 0], &ev[0], &bad)
    check_status(status, bad, "lpc_analysis")
    return a, k, err


def lpc_residual(const double[::1] x, const double[:, ::1] a, ptrdiff_t hop,
                 const double[::1] zi):
    cdef ptrdiff_t n = x.shape[0], F = a.shape[0]
    cdef int order = <int>a.shape[1] - 1
    e = np.empty(n)
    if n == 0:
        return e
    cdef double[::1] ev = e
    cdef int status
    with nogil:
        status = ssgs_lpc_residual(&x[0], n, &a[0, 0], F, order, hop, &zi[0], &ev[0])
    check_status(status, 0, "lpc_residual")
    return e


def lpc_synthesis(const double[::1] e, const double[:, ::1] a, ptrdiff_t hop,
                  const double[::1] zi):
    cdef ptrdiff_t n = e.shape[0], F = a.shape[0]
    cdef int order = <int>a.shape[1] - 1
    y = np.empty(n)
    zf = np.array(zi, dtype=np.float64)
    if n == 0:
        return y, zf
    cdef double[::1] yv = y, zv = zf
    cdef ptrdiff_t bad = 0
    cdef int status
    with nogil:
        status = ssgs_lpc_synthesis(&e[0], n, &a[0, 0], F, order, hop, &zv[0], &yv[0], &bad)
    check_status(status, bad, "lpc_synthesis")
    return y, zf


def pitch(const float[::1] x, ptrdiff_t n_frames, ptrdiff_t hop, ptrdiff_t window, double sample_rate,
          double fmin, double fmax, int n_threads):
    f0 = np.zeros(n_frames)
    periodicity = np.zeros(n_frames)
    if n_frames == 0:
        return f0, periodicity
    cdef double[::1] fv = f0, pv = periodicity
    cdef const float *xp = &x[0] if x.shape[0] > 0 else NULL
    cdef int status
    with nogil:
        status = ssgs_pitch(xp, x.shape[0], n_frames, hop, window, sample_rate, fmin, fmax,
                            n_threads, &fv[0], &pv[0])
    check_status(status, 0, "pitch")
    return f0, periodicity
