/*
 * ssgs_fft.h: a small real FFT for the kernels (not part of the API).
 *
 * A real transform of n = 2m points (m a power of two, m >= 2) is computed
 * as a complex transform of m points of the interleaved pairs
 * z[k] = x[2k] + i x[2k+1] (iterative radix-2, decimation in time), then
 * split into the spectra of the even and odd samples (the "real-input
 * split"; Press et al., Numerical Recipes, 12.3). Unnormalised forward,
 * inverse scaled by 1/n, as numpy.fft.rfft / irfft.
 */
#ifndef SSGS_FFT_H
#define SSGS_FFT_H

#include <stddef.h>

typedef struct {
    ptrdiff_t m;       /* complex points: half the real size */
    ptrdiff_t *rev;    /* [m] bit-reversed index */
    double *tw;        /* [2 (m - 1)] twiddles of every stage, re and im in turn per stage */
    double *split;     /* [2 (m / 2 + 1)] exp(-2 pi i k / 2m), k = 0 .. m/2: re then im */
    double *re, *im;   /* [m + 1] work: the spectrum X[0..m] in place */
} ssgs_rfft;

/* 1 when n is a size ssgs_rfft_init takes (a power of two, at least 4). */
int ssgs_rfft_size_ok(ptrdiff_t n);

/* Tables and work space for transforms of n real points; SSGS_OK,
 * SSGS_ERR_ARGUMENT for a size it does not take or SSGS_ERR_NOMEM. */
int ssgs_rfft_init(ssgs_rfft *plan, ptrdiff_t n);
void ssgs_rfft_free(ssgs_rfft *plan);

/* x [n] -> plan->re, plan->im [n/2 + 1]: the spectrum, as numpy.fft.rfft. */
void ssgs_rfft_forward(ssgs_rfft *plan, const double *x);

/* plan->re, plan->im [n/2 + 1] -> x [n], as numpy.fft.irfft (the imaginary
 * parts of bins 0 and n/2 are ignored). */
void ssgs_rfft_inverse(ssgs_rfft *plan, double *x);

#endif
