/*
 * ssgs_common.h: status codes and conventions shared by every ssgs kernel.
 *
 * Conventions (the same for every function in ssgs_lpc.h and ssgs_hmm.h):
 *   - arrays are C-contiguous (row-major) float64 unless a name says otherwise;
 *   - the caller allocates every output; a kernel allocates only scratch and
 *     frees it before returning;
 *   - the return value is SSGS_OK (0) or a negative SSGS_ERR_* code, and where
 *     an error concerns one item (a state, a frame, a sequence) its index is
 *     written to *err_index when err_index is not NULL;
 *   - kernels never touch the Python API and may be called without the GIL;
 *   - n_threads <= 0 means "as many threads as OpenMP offers"; results never
 *     depend on the number of threads.
 * Validation (shapes, finiteness, stochastic rows) is the caller's job: the
 * Python layer (ssgs/kernels.py) does it before calling.
 */
#ifndef SSGS_COMMON_H
#define SSGS_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SSGS_KERNELS_VERSION 1

/* Largest LPC order any kernel accepts (scratch lives on the stack). */
#define SSGS_MAX_ORDER 256

enum {
    SSGS_OK = 0,
    SSGS_ERR_NOMEM = -1,            /* scratch allocation failed */
    SSGS_ERR_NOT_POSITIVE_DEFINITE = -2, /* *err_index = state */
    SSGS_ERR_ZERO_PROBABILITY = -3, /* *err_index = sequence (frame for single-sequence kernels) */
    SSGS_ERR_NONFINITE = -4,        /* *err_index = frame whose output is not finite */
    SSGS_ERR_ARGUMENT = -5          /* a size or option out of range */
};

/* 1 when the kernels were compiled with OpenMP, 0 for a serial build. */
int ssgs_have_openmp(void);

/* The number of threads n_threads <= 0 stands for (1 in a serial build). */
int ssgs_max_threads(void);

#ifdef __cplusplus
}
#endif
#endif
