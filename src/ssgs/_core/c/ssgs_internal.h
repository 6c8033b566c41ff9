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
