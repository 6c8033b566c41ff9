# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Thin Cython layer over the synthesis kernels (c/synth.c).

Arguments arrive validated from ssgs.kernels; outputs are allocated here and
the C kernels run without the GIL.
"""
import numpy as np

from libc.stddef cimport ptrdiff_t
from libc.stdint cimport uint8_t, uint64_t
from ssgs._core.cdefs cimport *

KINDS = {"noise": SSGS_EXCITATION_NOISE, "karplus-strong": SSGS_EXCITATION_KARPLUS_STRONG,
         "pulses": SSGS_EXCITATION_PULSES}


def excitation(int kind, const double[::1] f0, const double[::1] voicing, const uint8_t[::1] onset,
               ptrdiff_t hop, double sample_rate, const double[::1] pulse, ptrdiff_t oversampling,
               uint64_t seed):
    cdef ptrdiff_t F = f0.shape[0]
    e = np.zeros(F * hop)
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
