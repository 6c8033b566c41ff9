# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Thin Cython layer over the synthesis kernels (c/synth.c).

Arguments arrive validated from ssgs.kernels; outputs are allocated here and
the C kernels run without the GIL.
"""
import numpy as np

from libc.stddef cimport ptrdiff_t
from libc.stdint cimport int64_t, uint8_t, uint64_t
from ssgs._core.cdefs cimport *

KINDS = {"noise": SSGS_EXCITATION_NOISE, "karplus-strong": SSGS_EXCITATION_KARPLUS_STRONG,
         "pulses": SSGS_EXCITATION_PULSES}


def excitation(int kind, const double[::1] f0, const double[::1] voicing, const uint8_t[::1] onset,
               ptrdiff_t hop, double sample_rate, const double[::1] pulse, ptrdiff_t oversampling,
               uint64_t seed):
    cdef ptrdiff_t F = f0.shape[0]
    e = np.empty(F * hop)  # every sample is written
    if F == 0:
        return e
    cdef double[::1] ev = e
    cdef const double *pp = &pulse[0] if pulse.shape[0] > 0 else NULL
    cdef int status
    with nogil:
        status = ssgs_excitation(kind, F, hop, sample_rate, &f0[0], &voicing[0], &onset[0], pp,
                                 pulse.shape[0], oversampling, seed, &ev[0])
    check_status(status, 0, "excitation")
    return e


def lpc_synthesis_smooth(const double[::1] e, const double[:, ::1] k, const double[::1] log_gain,
                         ptrdiff_t hop, ptrdiff_t block, const double[::1] zi):
    cdef ptrdiff_t n = e.shape[0], F = k.shape[0]
    cdef int order = <int>k.shape[1]
    y = np.empty(n)
    zf = np.array(zi, dtype=np.float64)
    if n == 0:
        return y, zf
    cdef double[::1] yv = y, zv = zf
    cdef ptrdiff_t bad = 0
    cdef int status
    with nogil:
        status = ssgs_lpc_synthesis_smooth(&e[0], n, &k[0, 0], &log_gain[0], F, order, hop, block,
                                           &zv[0], &yv[0], &bad)
    check_status(status, bad, "lpc_synthesis_smooth")
    return y, zf


cdef extern from "ssgs_synth.h" nogil:
    int ssgs_shape_excitation(const double *e, ptrdiff_t n_frames, ptrdiff_t hop, const double *table,
                              ptrdiff_t n_rows, const int64_t *index, const double *variation,
                              ptrdiff_t n_bins, double *out)


def shape_excitation(const double[::1] e, const double[:, ::1] table, const int64_t[::1] index,
                     const double[:, ::1] variation, ptrdiff_t hop):
    cdef ptrdiff_t F = index.shape[0]
    out = np.empty(F * hop)
    if F == 0:
        return out
    cdef double[::1] ov = out
    cdef const double *vp = &variation[0, 0] if variation.shape[0] > 0 else NULL
    cdef int status
    with nogil:
        status = ssgs_shape_excitation(&e[0], F, hop, &table[0, 0], table.shape[0], &index[0], vp,
                                       variation.shape[1], &ov[0])
    check_status(status, 0, "shape_excitation")
    return out


cdef extern from "ssgs_synth.h" nogil:
    int ssgs_level(const double *y, ptrdiff_t n, const double *log_gain, ptrdiff_t n_frames, ptrdiff_t hop,
                   double max_log_ratio, double *out)
    int ssgs_smooth_gain(const double *allowed, ptrdiff_t n, ptrdiff_t width, double *gain)
    int ssgs_peak_limit(const double *y, ptrdiff_t n, ptrdiff_t width, double ceiling, double *out)


def level(const double[::1] y, const double[::1] log_gain, ptrdiff_t hop, double max_log_ratio, out=None):
    cdef ptrdiff_t n = y.shape[0]
    out = np.empty(n) if out is None else out
    if n == 0:
        return out
    cdef double[::1] ov = out
    cdef int status
    with nogil:
        status = ssgs_level(&y[0], n, &log_gain[0], log_gain.shape[0], hop, max_log_ratio, &ov[0])
    check_status(status, 0, "level")
    return out


def smooth_gain(const double[::1] allowed, ptrdiff_t width):
    cdef ptrdiff_t n = allowed.shape[0]
    gain = np.empty(n)
    if n == 0:
        return gain
    cdef double[::1] gv = gain
    cdef int status
    with nogil:
        status = ssgs_smooth_gain(&allowed[0], n, width, &gv[0])
    check_status(status, 0, "smooth_gain")
    return gain


def peak_limit(const double[::1] y, ptrdiff_t width, double ceiling, out=None):
    cdef ptrdiff_t n = y.shape[0]
    out = np.empty(n) if out is None else out
    if n == 0:
        return out
    cdef double[::1] ov = out
    cdef int status
    with nogil:
        status = ssgs_peak_limit(&y[0], n, width, ceiling, &ov[0])
    check_status(status, 0, "peak_limit")
    return out
