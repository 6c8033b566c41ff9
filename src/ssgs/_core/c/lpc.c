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
static int lpc_frame(const double *x, ptrdiff_t len, int order, const double *lag_window,
                     double *a, double *k, double *err)
{
    double r[SSGS_MAX_ORDER + 1];
    for (int lag = 0; lag <= order; ++lag)
        r[lag] = lag < len ? ssgs_dot(x, x + lag, len - lag) : 0.0;
    if (!isfinite(r[0]))
        return -1;
    r[0] *= 1.0 + 1e-9;
    if (lag_window != NULL)
        for (int lag = 0; lag <= order; ++lag)
            r[lag] *= lag_window[lag];
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
                          int order, const double *lag_window, int n_threads, double *a,
                          double *k, double *err, ptrdiff_t *err_index)
{
    if (order < 1 || order > SSGS_MAX_ORDER || frame_len < 1 || n_frames < 0)
        return SSGS_ERR_ARGUMENT;
    int nt = ssgs_threads(n_threads);
    ptrdiff_t first_bad = -1;
    (void)nt;
#pragma omp parallel for schedule(static) num_threads(nt) if (n_frames > 64)
    for (ptrdiff_t f = 0; f < n_frames; ++f)
        if (lpc_frame(frames + f * frame_len, frame_len, order, lag_window, a + f * (order + 1),
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
                          int order, const double *lag_window, int n_threads, double *a,
                          double *k, double *err, ptrdiff_t *err_index)
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
            if (lpc_frame(buf, frame_len, order, lag_window, a + f * (order + 1), k + f * order,
                          err + f) != 0)
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
        ssgs_allpole_run(af, p, y, t, t1, state, e + t);
        if (t1 > f * hop && !isfinite(y[t1 - 1])) {
            if (err_index != NULL)
                *err_index = f;
            return SSGS_ERR_NONFINITE;
        }
    }
    ssgs_update_history(state, y, n, p);
    return SSGS_OK;
}

#define PITCH_CANDIDATES 6

/* NCCF of y[0..m) at lag tau, with prefix sums of squares in e2 (e2[i] =
 * sum of y[0..i)^2). */
static double nccf(const double *y, const double *e2, ptrdiff_t m, ptrdiff_t tau)
{
    const ptrdiff_t len = m - tau;
    if (len <= 0)
        return 0.0;
    const double num = ssgs_dot(y, y + tau, len);
    const double den = (e2[len] - e2[0]) * (e2[m] - e2[tau]);
    return den > 0.0 ? num / sqrt(den) : 0.0;
}

static void prefix_energy(const double *y, ptrdiff_t m, double *e2)
{
    e2[0] = 0.0;
    for (ptrdiff_t i = 0; i < m; ++i)
        e2[i + 1] = e2[i] + y[i] * y[i];
}

/*
 * One frame's pitch. buf: the window (w samples, modified); scratch: at
 * least 5w + 8 doubles. q: box-smoothing length and coarse decimation.
 *
 * The window is smoothed by a box of q samples (a low-pass that makes the
 * correlation of narrow pulses insensitive to where between two samples
 * they fall) and searched on every q-th sample; the coarse local maxima are
 * refined at full rate and the shortest lag within 90% of the best taken
 * (longer lags repeat the true period).
 */
static void pitch_frame(double *buf, ptrdiff_t w, double sr, ptrdiff_t lag_min, ptrdiff_t lag_max,
                        ptrdiff_t q, double *scratch, double *f0, double *periodicity)
{
    const double mean = ssgs_sum(buf, w) / (double)w;
    for (ptrdiff_t i = 0; i < w; ++i)
        buf[i] -= mean;
    const ptrdiff_t ws = w - q + 1, m = ws / q;
    double *xs = scratch, *e2 = xs + ws, *y = e2 + ws + 1, *ey = y + m, *r = ey + m + 1;
    for (ptrdiff_t i = 0; i < ws; ++i)
        xs[i] = ssgs_sum(buf + i, q);
    prefix_energy(xs, ws, e2);
    if (!(e2[ws] > 0.0)) {
        *f0 = 0.0;
        *periodicity = 0.0;
        return;
    }
    for (ptrdiff_t i = 0; i < m; ++i)
        y[i] = xs[i * q];
    prefix_energy(y, m, ey);
    ptrdiff_t lo = lag_min / q, hi = (lag_max + q - 1) / q + 1;
    if (lo < 1)
        lo = 1;
    if (hi > m - 2)
        hi = m - 2;
    double top = -2.0;
    for (ptrdiff_t tau = lo - 1; tau <= hi + 1; ++tau) {
        r[tau - lo + 1] = (tau >= 1 && tau < m) ? nccf(y, ey, m, tau) : -2.0;
        if (tau >= lo && tau <= hi && r[tau - lo + 1] > top)
            top = r[tau - lo + 1];
    }
    /* the coarse grid is too coarse to judge short periods (an 18-sample
     * period on a 4-sample grid): refine every coarse local maximum within
     * half of the best at full rate, then take the shortest lag that
     * explains the window almost as well as the best (longer lags repeat
     * the true period) */
    ptrdiff_t lags[PITCH_CANDIDATES];
    double scores[PITCH_CANDIDATES];
    int n_cand = 0;
    for (ptrdiff_t tau = lo; tau <= hi && n_cand < PITCH_CANDIDATES; ++tau) {
        const double rt = r[tau - lo + 1];
        if (!(rt >= 0.5 * top && rt >= r[tau - lo] && rt >= r[tau - lo + 2]))
            continue;
        ptrdiff_t a = (tau - 1) * q, b = (tau + 1) * q;
        if (a < lag_min)
            a = lag_min;
        if (b > lag_max)
            b = lag_max;
        if (b > ws - 2)
            b = ws - 2;
        if (a > b)
            a = b;
        ptrdiff_t arg = a;
        double best_r = -2.0;
        for (ptrdiff_t t = a; t <= b; ++t) {
            const double rf = nccf(xs, e2, ws, t);
            if (rf > best_r) {
                best_r = rf;
                arg = t;
            }
        }
        lags[n_cand] = arg;
        scores[n_cand] = best_r;
        ++n_cand;
    }
    double r_max = -2.0;
    for (int c = 0; c < n_cand; ++c)
        if (scores[c] > r_max)
            r_max = scores[c];
    ptrdiff_t lag = lag_min;
    double r0 = -2.0;
    for (int c = 0; c < n_cand; ++c)
        if (scores[c] >= 0.9 * r_max) {
            lag = lags[c];
            r0 = scores[c];
            break;
        }
    double frac = 0.0;
    if (lag > 1 && lag < ws - 2) {
        const double rm = nccf(xs, e2, ws, lag - 1), rp = nccf(xs, e2, ws, lag + 1);
        const double den = rm - 2.0 * r0 + rp;
        if (den < 0.0) {
            frac = 0.5 * (rm - rp) / den;
            if (frac > 0.5)
                frac = 0.5;
            if (frac < -0.5)
                frac = -0.5;
        }
    }
    *f0 = sr / ((double)lag + frac);
    *periodicity = r0 < 0.0 ? 0.0 : (r0 > 1.0 ? 1.0 : r0);
}

int ssgs_pitch(const float *x, ptrdiff_t n, ptrdiff_t n_frames, ptrdiff_t hop, ptrdiff_t window,
               double sample_rate, double fmin, double fmax, int n_threads,
               double *f0, double *periodicity)
{
    if (n < 0 || n_frames < 0 || hop < 1 || window < 8 || !(sample_rate > 0.0) || !(fmin > 0.0) ||
        !(fmax > fmin) || !(fmax < 0.5 * sample_rate))
        return SSGS_ERR_ARGUMENT;
    ptrdiff_t lag_min = (ptrdiff_t)floor(sample_rate / fmax);
    ptrdiff_t lag_max = (ptrdiff_t)ceil(sample_rate / fmin);
    if (lag_min < 2)
        lag_min = 2;
    if (lag_max > window / 2)
        lag_max = window / 2;
    if (lag_max < lag_min)
        return SSGS_ERR_ARGUMENT;
    /* decimate the coarse search to about 4 fmax */
    ptrdiff_t q = (ptrdiff_t)floor(sample_rate / (4.0 * fmax));
    if (q < 1)
        q = 1;
    if (q > lag_min)
        q = lag_min;
    int nt = ssgs_threads(n_threads);
    int status = SSGS_OK;
    (void)nt;
#pragma omp parallel num_threads(nt) if (n_frames > 64)
    {
        double *buf = malloc((size_t)(6 * window + 8) * sizeof(double));
        if (buf == NULL) {
#pragma omp atomic write
            status = SSGS_ERR_NOMEM;
        }
#pragma omp for schedule(static)
        for (ptrdiff_t f = 0; f < n_frames; ++f) {
            if (buf == NULL)
                continue;
            const ptrdiff_t start = f * hop + hop / 2 - window / 2;
            for (ptrdiff_t i = 0; i < window; ++i) {
                const ptrdiff_t j = start + i;
                buf[i] = (j >= 0 && j < n) ? (double)x[j] : 0.0;
            }
            pitch_frame(buf, window, sample_rate, lag_min, lag_max, q, buf + window, f0 + f,
                        periodicity + f);
        }
        free(buf);
    }
    return status;
}
