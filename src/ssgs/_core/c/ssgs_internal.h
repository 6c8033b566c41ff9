/*
 * ssgs_internal.h: helpers shared by the kernel sources; not part of the API.
 */
#ifndef SSGS_INTERNAL_H
#define SSGS_INTERNAL_H

#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define SSGS_LANES 8

/*
 * Sum and dot product in SSGS_LANES independent accumulators, combined in a
 * fixed order. The compiler can keep the lanes in vector registers without
 * -ffast-math, and the rounding is the same whatever instruction set it
 * picks, so results are reproducible across builds and thread counts.
 */
static inline double ssgs_dot(const double *a, const double *b, ptrdiff_t n)
{
    double acc[SSGS_LANES] = {0.0};
    ptrdiff_t i = 0;
    for (; i + SSGS_LANES <= n; i += SSGS_LANES)
        for (int j = 0; j < SSGS_LANES; ++j)
            acc[j] += a[i + j] * b[i + j];
    double s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; ++i)
        s += a[i] * b[i];
    return s;
}

static inline double ssgs_sum(const double *a, ptrdiff_t n)
{
    double acc[SSGS_LANES] = {0.0};
    ptrdiff_t i = 0;
    for (; i + SSGS_LANES <= n; i += SSGS_LANES)
        for (int j = 0; j < SSGS_LANES; ++j)
            acc[j] += a[i + j];
    double s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; ++i)
        s += a[i];
    return s;
}

/*
 * One sample of the all-pole recursion y[t] = x - sum_{i=1..p} a[i] y[t-i],
 * reading outputs before y[0] from state (the p previous outputs, oldest
 * first). a_1 y[t-1] comes last: the rest of the sum does not wait for the
 * previous output, which keeps the recursion's critical path to one multiply
 * and one subtraction, and the warm-up samples round exactly as the others,
 * so a signal filtered in pieces equals one filtered whole, bit for bit.
 */
static inline double ssgs_allpole_step(const double *a, int p, const double *y, ptrdiff_t t,
                                       const double *state, double x)
{
    double s = 0.0;
    if (t >= p) {
        const double *yp = y + t;
        for (int i = p; i >= 2; --i)
            s += a[i] * yp[-i];
        return (x - s) - a[1] * yp[-1];
    }
    for (int i = p; i >= 2; --i) {
        const ptrdiff_t j = t - i;
        s += a[i] * (j >= 0 ? y[j] : state[p + j]);
    }
    return (x - s) - a[1] * (t >= 1 ? y[t - 1] : state[p - 1]);
}

/*
 * Four samples y[t..t+3] of the same recursion (t >= p, the inputs x[0..3]),
 * each summed in ssgs_allpole_step's order (terms p down to 2, then a_1
 * y[t-1]), so the results are the same bits. The terms of every sample that
 * read only outputs before t run first, as four independent sums, and
 * only the few that read this block's own outputs wait for them: the
 * chain a single sample's sum makes is cut four ways. x may be y + t
 * (filtering in place): each input is read before its output is written.
 */
static inline void ssgs_allpole_block4(const double *a, int p, double *y, ptrdiff_t t, const double *x)
{
    double *yb = y + t;
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    for (int i = p; i >= 4; --i) {
        const double ai = a[i];
        s0 += ai * yb[-i];
        s1 += ai * yb[1 - i];
        s2 += ai * yb[2 - i];
        s3 += ai * yb[3 - i];
    }
    if (p >= 3) {
        s0 += a[3] * yb[-3];
        s1 += a[3] * yb[-2];
        s2 += a[3] * yb[-1];
    }
    if (p >= 2) {
        s0 += a[2] * yb[-2];
        s1 += a[2] * yb[-1];
    }
    const double x1 = x[1], x2 = x[2], x3 = x[3];
    yb[0] = (x[0] - s0) - a[1] * yb[-1];
    if (p >= 3)
        s3 += a[3] * yb[0];
    if (p >= 2)
        s2 += a[2] * yb[0];
    yb[1] = (x1 - s1) - a[1] * yb[0];
    if (p >= 2)
        s3 += a[2] * yb[1];
    yb[2] = (x2 - s2) - a[1] * yb[1];
    yb[3] = (x3 - s3) - a[1] * yb[2];
}

/* y[t] for t in [t0, t1) from the inputs x[t - t0] (x may be y + t0): the
 * first p samples of the signal a step at a time (they read the state),
 * then four at a time, the rest a step at a time. */
static inline void ssgs_allpole_run(const double *a, int p, double *y, ptrdiff_t t0, ptrdiff_t t1,
                                    const double *state, const double *x)
{
    ptrdiff_t t = t0;
    for (; t < t1 && t < p; ++t)
        y[t] = ssgs_allpole_step(a, p, y, t, state, x[t - t0]);
    for (; t + 4 <= t1; t += 4)
        ssgs_allpole_block4(a, p, y, t, x + (t - t0));
    for (; t < t1; ++t)
        y[t] = ssgs_allpole_step(a, p, y, t, state, x[t - t0]);
}

/* The new output history after n samples y: the last p outputs, taking the
 * older ones from the previous state when n < p. */
static inline void ssgs_update_history(double *state, const double *y, ptrdiff_t n, int p)
{
    if (n >= p) {
        for (int i = 0; i < p; ++i)
            state[i] = y[n - p + i];
    } else if (n > 0) {
        for (int i = 0; i < p - n; ++i)
            state[i] = state[i + n];
        for (ptrdiff_t i = 0; i < n; ++i)
            state[p - n + i] = y[i];
    }
}

static inline int ssgs_threads(int n_threads)
{
#ifdef _OPENMP
    return n_threads > 0 ? n_threads : omp_get_max_threads();
#else
    (void)n_threads;
    return 1;
#endif
}

#endif
