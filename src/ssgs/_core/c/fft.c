#include "ssgs_fft.h"
#include "ssgs_common.h"

#include <math.h>
#include <stdlib.h>

#define SSGS_TWO_PI 6.283185307179586476925

int ssgs_rfft_size_ok(ptrdiff_t n)
{
    return n >= 4 && (n & (n - 1)) == 0;
}

int ssgs_rfft_init(ssgs_rfft *plan, ptrdiff_t n)
{
    plan->rev = NULL;
    plan->tw = plan->split = plan->re = NULL;
    if (!ssgs_rfft_size_ok(n))
        return SSGS_ERR_ARGUMENT;
    const ptrdiff_t m = n / 2;
    plan->m = m;
    plan->rev = malloc((size_t)m * sizeof(ptrdiff_t));
    plan->tw = malloc((size_t)(2 * m + 2 * (m / 2 + 1) + 2 * (m + 1)) * sizeof(double));
    if (plan->rev == NULL || plan->tw == NULL) {
        ssgs_rfft_free(plan);
        return SSGS_ERR_NOMEM;
    }
    plan->split = plan->tw + 2 * m;
    plan->re = plan->split + 2 * (m / 2 + 1);
    plan->im = plan->re + (m + 1);
    int bits = 0;
    while (((ptrdiff_t)1 << bits) < m)
        ++bits;
    for (ptrdiff_t k = 0; k < m; ++k) {
        ptrdiff_t r = 0;
        for (int b = 0; b < bits; ++b)
            r |= ((k >> b) & 1) << (bits - 1 - b);
        plan->rev[k] = r;
    }
    /* stage of length L: its L/2 twiddles exp(-2 pi i j / L), contiguous so
     * the butterflies read them in step */
    double *t = plan->tw;
    for (ptrdiff_t L = 2; L <= m; L *= 2) {
        const ptrdiff_t half = L / 2;
        for (ptrdiff_t j = 0; j < half; ++j) {
            t[j] = cos(SSGS_TWO_PI * (double)j / (double)L);
            t[half + j] = -sin(SSGS_TWO_PI * (double)j / (double)L);
        }
        t += 2 * half;
    }
    for (ptrdiff_t k = 0; k <= m / 2; ++k) {
        plan->split[k] = cos(SSGS_TWO_PI * (double)k / (double)n);
        plan->split[m / 2 + 1 + k] = -sin(SSGS_TWO_PI * (double)k / (double)n);
    }
    return SSGS_OK;
}

void ssgs_rfft_free(ssgs_rfft *plan)
{
    free(plan->rev);
    free(plan->tw);
    plan->rev = NULL;
    plan->tw = plan->split = plan->re = plan->im = NULL;
}

/* half butterflies of one block: a += w b, b = a - w b (the old a) */
static void block(double *restrict ar, double *restrict ai, double *restrict br, double *restrict bi,
                  const double *restrict wr, const double *restrict wi, ptrdiff_t half)
{
    for (ptrdiff_t j = 0; j < half; ++j) {
        const double tr = wr[j] * br[j] - wi[j] * bi[j];
        const double ti = wr[j] * bi[j] + wi[j] * br[j];
        br[j] = ar[j] - tr;
        bi[j] = ai[j] - ti;
        ar[j] = ar[j] + tr;
        ai[j] = ai[j] + ti;
    }
}

/* In place, on bit-reversed input: the m-point DFT (forward twiddles). */
static void butterflies(const ssgs_rfft *plan, double *re, double *im)
{
    const ptrdiff_t m = plan->m;
    if (m == 2) { /* length 2: twiddle 1 */
        const double ar = re[0], ai = im[0];
        re[0] = ar + re[1];
        im[0] = ai + im[1];
        re[1] = ar - re[1];
        im[1] = ai - im[1];
        return;
    }
    for (ptrdiff_t s = 0; s < m; s += 4) { /* lengths 2 and 4 at once: twiddles 1 and -i */
        const double s0r = re[s] + re[s + 1], s0i = im[s] + im[s + 1];
        const double d0r = re[s] - re[s + 1], d0i = im[s] - im[s + 1];
        const double s1r = re[s + 2] + re[s + 3], s1i = im[s + 2] + im[s + 3];
        const double d1r = re[s + 2] - re[s + 3], d1i = im[s + 2] - im[s + 3];
        re[s] = s0r + s1r;
        im[s] = s0i + s1i;
        re[s + 2] = s0r - s1r;
        im[s + 2] = s0i - s1i;
        re[s + 1] = d0r + d1i; /* d0 - i d1 */
        im[s + 1] = d0i - d1r;
        re[s + 3] = d0r - d1i;
        im[s + 3] = d0i + d1r;
    }
    const double *t = plan->tw + 2 + 4; /* past the stages of lengths 2 and 4 */
    for (ptrdiff_t half = 4; half < m; half *= 2) {
        for (ptrdiff_t s = 0; s < m; s += 2 * half)
            block(re + s, im + s, re + s + half, im + s + half, t, t + half, half);
        t += 2 * half;
    }
}

void ssgs_rfft_forward(ssgs_rfft *plan, const double *x)
{
    const ptrdiff_t m = plan->m, h = m / 2;
    double *re = plan->re, *im = plan->im;
    for (ptrdiff_t k = 0; k < m; ++k) {
        re[plan->rev[k]] = x[2 * k];
        im[plan->rev[k]] = x[2 * k + 1];
    }
    butterflies(plan, re, im);
    /* Z = E + i O (E, O the spectra of the even and odd samples); X[k] =
     * E[k] + W^k O[k] and X[m - k] = conj(E[k] - W^k O[k]), W = exp(-2 pi i / n) */
    const double *cr = plan->split, *ci = plan->split + h + 1;
    const double z0r = re[0], z0i = im[0];
    re[0] = z0r + z0i;
    im[0] = 0.0;
    re[m] = z0r - z0i;
    im[m] = 0.0;
    im[h] = -im[h]; /* X[m/2] = conj(Z[m/2]) */
    for (ptrdiff_t k = 1; k < h; ++k) {
        const double ar = re[k], ai = im[k], br = re[m - k], bi = -im[m - k];
        const double er = 0.5 * (ar + br), ei = 0.5 * (ai + bi);
        const double or_ = 0.5 * (ai - bi), oi = -0.5 * (ar - br); /* O = (A - B) / 2i */
        const double tr = cr[k] * or_ - ci[k] * oi, ti = cr[k] * oi + ci[k] * or_;
        re[k] = er + tr;
        im[k] = ei + ti;
        re[m - k] = er - tr;
        im[m - k] = -(ei - ti);
    }
}

void ssgs_rfft_inverse(ssgs_rfft *plan, double *x)
{
    const ptrdiff_t m = plan->m, h = m / 2;
    double *re = plan->re, *im = plan->im;
    const double *cr = plan->split, *ci = plan->split + h + 1;
    /* back to Z = E + i O, conjugated (the inverse as a forward transform
     * of the conjugate) */
    const double x0 = re[0], xm = re[m];
    re[0] = 0.5 * (x0 + xm);
    im[0] = -0.5 * (x0 - xm);
    /* Z[m/2] = conj(X[m/2]), stored conjugated: as it is */
    for (ptrdiff_t k = 1; k < h; ++k) {
        const double ur = re[k], ui = im[k], vr = re[m - k], vi = -im[m - k];
        const double er = 0.5 * (ur + vr), ei = 0.5 * (ui + vi);
        const double dr = 0.5 * (ur - vr), di = 0.5 * (ui - vi);
        const double or_ = cr[k] * dr + ci[k] * di, oi = cr[k] * di - ci[k] * dr; /* D conj(W^k) */
        /* Z[k] = E + i O, Z[m - k] = conj(E) + i conj(O); stored conjugated */
        re[k] = er - oi;
        im[k] = -(ei + or_);
        re[m - k] = er + oi;
        im[m - k] = -(or_ - ei);
    }
    for (ptrdiff_t k = 0; k < m; ++k) {
        const ptrdiff_t r = plan->rev[k];
        if (r > k) {
            double s = re[k];
            re[k] = re[r];
            re[r] = s;
            s = im[k];
            im[k] = im[r];
            im[r] = s;
        }
    }
    butterflies(plan, re, im);
    const double scale = 1.0 / (double)m; /* each half of x is an m-point inverse */
    for (ptrdiff_t k = 0; k < m; ++k) {
        x[2 * k] = re[k] * scale;
        x[2 * k + 1] = -im[k] * scale;
    }
}
