#include "ssgs_lpc.h"
#include "ssgs_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ssgs_levinson(const double *r, int order, double *a, double *k, double *err)
{
    double prev[SSGS_MAX_ORDER + 1];
    a[0] = 1.0;
    for (int i = 1; i <= order; ++i) {
        a[i] = 0.0;
        k[i - 1] = 0.0;
    }
    double e = r[0];
    if (!(e > 0.0) || !isfinite(e)) {
        *err = 0.0;
        return;
    }
    for (int m = 1; m <= order; ++m) {
        double acc = r[m];
        for (int i = 1; i < m; ++i)
            acc += a[i] * r[m - i];
        double km = -acc / e;
        /* |k| >= 1 only happens when the Toeplitz matrix is singular to
         * working precision; stopping keeps the filter minimum phase. */
        if (!(fabs(km) < 1.0))
            break;
        memcpy(prev, a, (size_t)m * sizeof(double));
        for (int i = 1; i < m; ++i)
            a[i] = prev[i] + km * prev[m - i];
        a[m] = km;
        k[m - 1] = km;
        e *= (1.0 - km) * (1.0 + km);
        if (!(e > 0.0)) {
            e = 0.0;
            break;
        }
    }
    *err = e;
}

/* LPC of one frame; 0, or -1 when the frame's energy is not finite (a NaN
 * or inf sample, or samples so large that their squares overflow). */
static int lpc_frame(const double *x, ptrdiff_t len, int order, double *a, double *k, double *err)
{
    double r[SSGS_MAX_ORDER + 1];
    for (int lag = 0; lag <= order; ++lag)
        r[lag] = lag < len ? ssgs_dot(x, x + lag, len - lag) : 0.0;
    if (!isfinite(r[0]))
        return -1;
    r[0] *= 1.0 + 1e-9;
    ssgs_levinson(r, order, a, k, err);
    return 0;
}

/* Records frame f as bad if it is the first bad frame seen so far. */
static void note_bad_frame(ptrdiff_t *first_bad, ptrdiff_t f)
{
#pragma omp critical(ssgs_lpc_bad)
    if (*first_bad < 0 || f < *first_bad)
        *first_bad = f;
}

int ssgs_lpc_analysis_f64(const double *frames, ptrdiff_t n_frames, ptrdiff_t frame_len,
                          int order, int n_threads, double *a, double *k, double *err,
                          ptrdiff_t *err_index)
{
    if (order < 1 || order > SSGS_MAX_ORDER || frame_len < 1 || n_frames < 0)
        return SSGS_ERR_ARGUMENT;
    int nt = ssgs_threads(n_threads);
    ptrdiff_t first_bad = -1;
    (void)nt;
#pragma omp parallel for schedule(static) num_threads(nt) if (n_frames > 64)
    for (ptrdiff_t f = 0; f < n_frames; ++f)
        if (lpc_frame(frames + f * frame_len, frame_len, order, a + f * (order + 1),
                      k + f * order, err + f) != 0)
            note_bad_frame(&first_bad, f);
    if (first_bad >= 0) {
        if (err_index != NULL)
            *err_index = first_bad;
        return SSGS_ERR_NONFINITE;
    }
    return SSGS_OK;
}

int ssgs_lpc_analysis_f32(const float *frames, ptrdiff_t n_frames, ptrdiff_t frame_len,
                          int order, int n_threads, double *a, double *k, double *err,
                          ptrdiff_t *err_index)
{
    if (order < 1 || order > SSGS_MAX_ORDER || frame_len < 1 || n_frames < 0)
        return SSGS_ERR_ARGUMENT;
    int nt = ssgs_threads(n_threads);
    int status = SSGS_OK;
    ptrdiff_t first_bad = -1;
    (void)nt;
#pragma omp parallel num_threads(nt) if (n_frames > 64)
    {
        double *buf = malloc((size_t)frame_len * sizeof(double));
        if (buf == NULL) {
#pragma omp atomic write
            status = SSGS_ERR_NOMEM;
        }
#pragma omp for schedule(static)
        for (ptrdiff_t f = 0; f < n_frames; ++f) {
            if (buf == NULL)
                continue;
            const float *src = frames + f * frame_len;
            for (ptrdiff_t i = 0; i < frame_len; ++i)
                buf[i] = (double)src[i];
            if (lpc_frame(buf, frame_len, order, a + f * (order + 1), k + f * order, err + f) != 0)
                note_bad_frame(&first_bad, f);
        }
        free(buf);
    }
    if (status == SSGS_OK && first_bad >= 0) {
        if (err_index != NULL)
            *err_index = first_bad;
        return SSGS_ERR_NONFINITE;
    }
    return status;
}

/* Frame geometry shared by the two time-varying filters. */
static int check_frames(ptrdiff_t n, ptrdiff_t n_frames, int order, ptrdiff_t hop)
{
    if (n < 0 || hop < 1 || order < 1 || order > SSGS_MAX_ORDER)
        return SSGS_ERR_ARGUMENT;
    if (n_frames != (n + hop - 1) / hop)
        return SSGS_ERR_ARGUMENT;
    return SSGS_OK;
}

int ssgs_lpc_residual(const double *x, ptrdiff_t n, const double *a, ptrdiff_t n_frames,
                      int order, ptrdiff_t hop, const double *zi, double *e)
{
    int status = check_frames(n, n_frames, order, hop);
    if (status != SSGS_OK)
        return status;
    const int p = order;
    for (ptrdiff_t f = 0; f < n_frames; ++f) {
        const double *af = a + f * (p + 1);
        ptrdiff_t t = f * hop;
        ptrdiff_t t1 = t + hop < n ? t + hop : n;
        /* the first p samples of the call read their history from zi */
        for (; t < t1 && t < p; ++t) {
            double s = 0.0;
            for (int i = p; i >= 1; --i) {
                ptrdiff_t j = t - i;
                double past = j >= 0 ? x[j] : (zi != NULL ? zi[p + j] : 0.0);
                s += af[i] * past;
            }
            e[t] = x[t] + s;
        }
        for (; t < t1; ++t) {
            const double *xp = x + t;
            double s = 0.0;
            for (int i = p; i >= 1; --i)
                s += af[i] * xp[-i];
            e[t] = x[t] + s;
        }
    }
    return SSGS_OK;
}

int ssgs_lpc_synthesis(const double *e, ptrdiff_t n, const double *a, ptrdiff_t n_frames,
                       int order, ptrdiff_t hop, double *state, double *y,
                       ptrdiff_t *err_index)
{
    int status = check_frames(n, n_frames, order, hop);
    if (status != SSGS_OK)
        return status;
    const int p = order;
    for (ptrdiff_t f = 0; f < n_frames; ++f) {
        const double *af = a + f * (p + 1);
        ptrdiff_t t = f * hop;
        ptrdiff_t t1 = t + hop < n ? t + hop : n;
        /* a_1 y[n-1] comes last: the rest of the sum does not wait for the
         * previous output, which keeps the recursion's critical path to one
         * multiply and one subtraction. The first p samples of the call read
         * their history from the state, rounded exactly as the main loop
         * rounds, so a signal synthesised in pieces equals one synthesised
         * whole, bit for bit. */
        for (; t < t1 && t < p; ++t) {
            double s = 0.0;
            for (int i = p; i >= 2; --i) {
                ptrdiff_t j = t - i;
                s += af[i] * (j >= 0 ? y[j] : state[p + j]);
            }
            y[t] = (e[t] - s) - af[1] * (t >= 1 ? y[t - 1] : state[p - 1]);
        }
        for (; t < t1; ++t) {
            const double *yp = y + t;
            double s = 0.0;
            for (int i = p; i >= 2; --i)
                s += af[i] * yp[-i];
            y[t] = (e[t] - s) - af[1] * yp[-1];
        }
        if (t1 > f * hop && !isfinite(y[t1 - 1])) {
            if (err_index != NULL)
                *err_index = f;
            return SSGS_ERR_NONFINITE;
        }
    }
    /* new state: the last p outputs, falling back on the old state when the
     * call was shorter than p */
    if (n >= p) {
        memcpy(state, y + n - p, (size_t)p * sizeof(double));
    } else if (n > 0) {
        memmove(state, state + n, (size_t)(p - n) * sizeof(double));
        memcpy(state + (p - n), y, (size_t)n * sizeof(double));
    }
    return SSGS_OK;
}
