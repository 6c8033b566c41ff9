#include "ssgs_hmm.h"
#include "ssgs_internal.h"
#include "ssgs_rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(_OPENMP) && !defined(_WIN32)
#include <sched.h>
#define SSGS_YIELD() sched_yield()
#else
#define SSGS_YIELD() ((void)0)
#endif

/* Frames are processed in blocks of BLOCK, transposed to [D][BLOCK] so the
 * innermost loops run over frames: contiguous, independent, vectorisable,
 * and rounded the same way whatever the instruction set. */
#define BLOCK 64
#define LOG_2PI 1.8378770664093454835606594728112

/* The per-state constants of the emission densities. */
typedef struct {
    ptrdiff_t D, N;
    const double *means;   /* [N, D] */
    double *prec_chol;     /* [N, D, D] inverse Cholesky factors (lower) */
    double *lognorm;       /* [N] -D/2 log(2 pi) - log det L */
} gaussians;

static void gaussians_free(gaussians *g)
{
    free(g->prec_chol);
    free(g->lognorm);
}

/*
 * Cholesky factor L of each covariance and its inverse U = L^-1, so that
 * log N(x; mu, C) = lognorm - |U (x - mu)|^2 / 2.
 */
static int gaussians_init(gaussians *g, ptrdiff_t N, ptrdiff_t D, const double *means,
                          const double *covars, ptrdiff_t *err_index)
{
    g->D = D;
    g->N = N;
    g->means = means;
    g->prec_chol = calloc((size_t)(N * D * D), sizeof(double));
    g->lognorm = malloc((size_t)N * sizeof(double));
    double *L = malloc((size_t)(D * D) * sizeof(double));
    if (g->prec_chol == NULL || g->lognorm == NULL || L == NULL) {
        free(L);
        gaussians_free(g);
        return SSGS_ERR_NOMEM;
    }
    for (ptrdiff_t j = 0; j < N; ++j) {
        const double *C = covars + j * D * D;
        double *U = g->prec_chol + j * D * D;
        double logdet = 0.0;
        memset(L, 0, (size_t)(D * D) * sizeof(double));
        for (ptrdiff_t c = 0; c < D; ++c) {
            double s = C[c * D + c];
            for (ptrdiff_t m = 0; m < c; ++m)
                s -= L[c * D + m] * L[c * D + m];
            if (!(s > 0.0) || !isfinite(s)) {
                if (err_index != NULL)
                    *err_index = j;
                free(L);
                gaussians_free(g);
                return SSGS_ERR_NOT_POSITIVE_DEFINITE;
            }
            double l = sqrt(s);
            L[c * D + c] = l;
            logdet += log(l);
            for (ptrdiff_t r = c + 1; r < D; ++r) {
                double v = C[r * D + c];
                for (ptrdiff_t m = 0; m < c; ++m)
                    v -= L[r * D + m] * L[c * D + m];
                L[r * D + c] = v / l;
            }
        }
        for (ptrdiff_t c = 0; c < D; ++c) {
            U[c * D + c] = 1.0 / L[c * D + c];
            for (ptrdiff_t r = c + 1; r < D; ++r) {
                double s = 0.0;
                for (ptrdiff_t m = c; m < r; ++m)
                    s += L[r * D + m] * U[m * D + c];
                U[r * D + c] = -s / L[r * D + r];
            }
        }
        g->lognorm[j] = -0.5 * (double)D * LOG_2PI - logdet;
    }
    free(L);
    return SSGS_OK;
}

/* Block scratch, [D][BLOCK] each: frames, deviations from a mean and
 * posterior-weighted deviations (frames padded with zeros to whole lanes). */
typedef struct {
    double *xT, *dT, *wT;
} block_scratch;

static int block_scratch_init(block_scratch *b, ptrdiff_t D)
{
    b->xT = malloc((size_t)(3 * D * BLOCK) * sizeof(double));
    if (b->xT == NULL)
        return SSGS_ERR_NOMEM;
    b->dT = b->xT + D * BLOCK;
    b->wT = b->dT + D * BLOCK;
    return SSGS_OK;
}

/* Frames [B, D] into xT [D][BLOCK], zero-padded to a whole number of lanes. */
static void load_block(const double *X, ptrdiff_t D, ptrdiff_t B, double *xT)
{
    const ptrdiff_t Bp = (B + SSGS_LANES - 1) / SSGS_LANES * SSGS_LANES;
    for (ptrdiff_t t = 0; t < B; ++t)
        for (ptrdiff_t c = 0; c < D; ++c)
            xT[c * BLOCK + t] = X[t * D + c];
    for (ptrdiff_t c = 0; c < D; ++c)
        for (ptrdiff_t t = B; t < Bp; ++t)
            xT[c * BLOCK + t] = 0.0;
}

/*
 * log N(x_t; mu_j, C_j) for the B frames of a block into out[t * ldo + j].
 * Frames go SSGS_LANES at a time with z = U (x - mu) and |z|^2 kept in
 * registers; lanes never mix, so the rounding is that of a plain loop.
 */
static void emission_block(const gaussians *g, ptrdiff_t B, block_scratch *s, double *out,
                           ptrdiff_t ldo)
{
    const ptrdiff_t D = g->D;
    const ptrdiff_t Bp = (B + SSGS_LANES - 1) / SSGS_LANES * SSGS_LANES;
    double *dT = s->dT;
    for (ptrdiff_t j = 0; j < g->N; ++j) {
        const double *mu = g->means + j * D;
        const double *U = g->prec_chol + j * D * D;
        for (ptrdiff_t c = 0; c < D; ++c) {
            const double m = mu[c];
            const double *xs = s->xT + c * BLOCK;
            double *ds = dT + c * BLOCK;
            for (ptrdiff_t t = 0; t < Bp; ++t)
                ds[t] = xs[t] - m;
        }
        const double ln = g->lognorm[j];
        for (ptrdiff_t t = 0; t < Bp; t += SSGS_LANES) {
            double q[SSGS_LANES] = {0.0};
            for (ptrdiff_t r = 0; r < D; ++r) {
                const double *Ur = U + r * D;
                double z[SSGS_LANES] = {0.0};
                for (ptrdiff_t c = 0; c <= r; ++c) {
                    const double u = Ur[c];
                    const double *ds = dT + c * BLOCK + t;
                    for (int l = 0; l < SSGS_LANES; ++l)
                        z[l] += u * ds[l];
                }
                for (int l = 0; l < SSGS_LANES; ++l)
                    q[l] += z[l] * z[l];
            }
            const ptrdiff_t n = B - t < SSGS_LANES ? B - t : SSGS_LANES;
            for (ptrdiff_t l = 0; l < n; ++l)
                out[(t + l) * ldo + j] = ln - 0.5 * q[l];
        }
    }
}

/*
 * Adds one block's weighted moments about each state's own mean:
 * occ[j] += sum_t g, m1[j] += sum_t g d, m2[j] (upper triangle) +=
 * sum_t g d d^T, with d = x_t - mu_j and g = gamma_t(j). xT holds the
 * block's frames, zero-padded to whole lanes (padded frames get g = 0 and
 * add exact zeros). A state whose posteriors are all exactly zero in the
 * block would add exact zeros too, so it is skipped.
 */
static void moments_block(const gaussians *g, ptrdiff_t B, const double *gamma,
                          block_scratch *s, double *occ, double *m1, double *m2)
{
    const ptrdiff_t D = g->D, N = g->N;
    const ptrdiff_t Bp = (B + SSGS_LANES - 1) / SSGS_LANES * SSGS_LANES;
    double gw[BLOCK];
    for (ptrdiff_t j = 0; j < N; ++j) {
        int any = 0;
        for (ptrdiff_t t = 0; t < B; ++t) {
            gw[t] = gamma[t * N + j];
            any |= gw[t] != 0.0;
        }
        if (!any)
            continue;
        for (ptrdiff_t t = B; t < Bp; ++t)
            gw[t] = 0.0;
        occ[j] += ssgs_sum(gw, Bp);
        const double *mu = g->means + j * D;
        for (ptrdiff_t c = 0; c < D; ++c) {
            const double m = mu[c];
            const double *xs = s->xT + c * BLOCK;
            double *ds = s->dT + c * BLOCK;
            double *ws = s->wT + c * BLOCK;
            for (ptrdiff_t t = 0; t < Bp; ++t) {
                const double dv = xs[t] - m;
                ds[t] = dv;
                ws[t] = gw[t] * dv;
            }
        }
        double *m1j = m1 + j * D;
        double *m2j = m2 + j * D * D;
        for (ptrdiff_t r = 0; r < D; ++r) {
            const double *wr = s->wT + r * BLOCK;
            double *row = m2j + r * D;
            m1j[r] += ssgs_sum(wr, Bp);
            for (ptrdiff_t c = r; c < D; ++c)
                row[c] += ssgs_dot(wr, s->dT + c * BLOCK, Bp);
        }
    }
}

/* out = v M for M [N, N]; zero entries of v (common once a model is
 * trained) skip their row, which only ever adds exact zeros. */
static void vecmat(const double *v, const double *M, ptrdiff_t N, double *out)
{
    for (ptrdiff_t j = 0; j < N; ++j)
        out[j] = 0.0;
    for (ptrdiff_t i = 0; i < N; ++i) {
        const double vi = v[i];
        if (vi == 0.0)
            continue;
        const double *Mi = M + i * N;
        for (ptrdiff_t j = 0; j < N; ++j)
            out[j] += vi * Mi[j];
    }
}

/*
 * Scaled forward-backward on one sequence.
 *   b        [T, N] in: log emissions; out: emissions shifted per frame and
 *            exponentiated
 *   gamma    [T, N] out: posteriors (holds the scaled forward variables
 *            until the backward pass reaches each frame)
 *   xi       [N, N] out: summed transition posteriors
 *   scale    [T] scratch; work [3N] scratch
 * The shift of frame t is the largest log emission among states with
 * non-zero predicted probability; unreachable states get emission 0, which
 * changes nothing they contribute (they are multiplied by zero) and keeps
 * exp from overflowing.
 */
static int fb_core(ptrdiff_t T, ptrdiff_t N, double *b, const double *startprob,
                   const double *A, const double *AT, double *gamma, double *xi,
                   double *scale, double *work, double *loglik, ptrdiff_t *bad_frame)
{
    double *pred = work, *w = work + N, *beta = work + 2 * N;
    double ll = 0.0;
    for (ptrdiff_t t = 0; t < T; ++t) {
        double *bt = b + t * N;
        double *at = gamma + t * N;
        if (t == 0)
            memcpy(pred, startprob, (size_t)N * sizeof(double));
        else
            vecmat(gamma + (t - 1) * N, A, N, pred);
        double shift = -INFINITY;
        for (ptrdiff_t j = 0; j < N; ++j)
            if (pred[j] > 0.0 && bt[j] > shift)
                shift = bt[j];
        if (!(shift > -INFINITY)) {
            *bad_frame = t;
            return SSGS_ERR_ZERO_PROBABILITY;
        }
        double c = 0.0;
        for (ptrdiff_t j = 0; j < N; ++j) {
            const double v = pred[j] > 0.0 ? exp(bt[j] - shift) : 0.0;
            bt[j] = v;
            at[j] = pred[j] * v;
            c += at[j];
        }
        if (!(c > 0.0)) {
            *bad_frame = t;
            return SSGS_ERR_ZERO_PROBABILITY;
        }
        const double inv = 1.0 / c;
        for (ptrdiff_t j = 0; j < N; ++j)
            at[j] *= inv;
        scale[t] = c;
        ll += log(c) + shift;
    }

    memset(xi, 0, (size_t)(N * N) * sizeof(double));
    for (ptrdiff_t j = 0; j < N; ++j)
        beta[j] = 1.0;
    for (ptrdiff_t t = T - 2; t >= 0; --t) {
        const double *bn = b + (t + 1) * N;
        const double invc = 1.0 / scale[t + 1];
        for (ptrdiff_t j = 0; j < N; ++j)
            w[j] = bn[j] * beta[j] * invc;
        double *at = gamma + t * N;
        for (ptrdiff_t i = 0; i < N; ++i) {
            const double ai = at[i];
            if (ai == 0.0)
                continue;
            double *xr = xi + i * N;
            for (ptrdiff_t j = 0; j < N; ++j)
                xr[j] += ai * w[j];
        }
        vecmat(w, AT, N, beta);
        for (ptrdiff_t i = 0; i < N; ++i)
            at[i] *= beta[i];
    }
    /* xi_t(i, j) = alpha_t(i) A(i, j) w_{t+1}(j): A factors out of the sum */
    for (ptrdiff_t k = 0; k < N * N; ++k)
        xi[k] *= A[k];
    *loglik = ll;
    return SSGS_OK;
}

static double *transpose_new(const double *A, ptrdiff_t N)
{
    double *AT = malloc((size_t)(N * N) * sizeof(double));
    if (AT != NULL)
        for (ptrdiff_t i = 0; i < N; ++i)
            for (ptrdiff_t j = 0; j < N; ++j)
                AT[j * N + i] = A[i * N + j];
    return AT;
}

int ssgs_gaussian_logpdf(ptrdiff_t T, ptrdiff_t D, ptrdiff_t N, const double *X,
                         const double *means, const double *covars, int n_threads,
                         double *log_frameprob, ptrdiff_t *err_index)
{
    if (T < 0 || D < 1 || N < 1)
        return SSGS_ERR_ARGUMENT;
    gaussians g;
    int status = gaussians_init(&g, N, D, means, covars, err_index);
    if (status != SSGS_OK)
        return status;
    const ptrdiff_t n_blocks = (T + BLOCK - 1) / BLOCK;
    int nt = ssgs_threads(n_threads);
    (void)nt;
#pragma omp parallel num_threads(nt) if (n_blocks > 1)
    {
        block_scratch s;
        int ok = block_scratch_init(&s, D) == SSGS_OK;
        if (!ok) {
#pragma omp atomic write
            status = SSGS_ERR_NOMEM;
        }
#pragma omp for schedule(static)
        for (ptrdiff_t k = 0; k < n_blocks; ++k) {
            if (!ok)
                continue;
            const ptrdiff_t t0 = k * BLOCK;
            const ptrdiff_t B = T - t0 < BLOCK ? T - t0 : BLOCK;
            load_block(X + t0 * D, D, B, s.xT);
            emission_block(&g, B, &s, log_frameprob + t0 * N, N);
        }
        if (ok)
            free(s.xT);
    }
    gaussians_free(&g);
    return status;
}

int ssgs_forward_backward(ptrdiff_t T, ptrdiff_t N, const double *log_frameprob,
                          const double *startprob, const double *transmat,
                          double *log_likelihood, double *posteriors, double *xi_sum,
                          ptrdiff_t *err_index)
{
    if (T < 1 || N < 1)
        return SSGS_ERR_ARGUMENT;
    double *b = malloc((size_t)(T * N + T + 3 * N) * sizeof(double));
    double *AT = transpose_new(transmat, N);
    if (b == NULL || AT == NULL) {
        free(b);
        free(AT);
        return SSGS_ERR_NOMEM;
    }
    memcpy(b, log_frameprob, (size_t)(T * N) * sizeof(double));
    ptrdiff_t bad = 0;
    int status = fb_core(T, N, b, startprob, transmat, AT, posteriors, xi_sum, b + T * N,
                         b + T * N + T, log_likelihood, &bad);
    if (status != SSGS_OK && err_index != NULL)
        *err_index = bad;
    free(b);
    free(AT);
    return status;
}

int ssgs_viterbi_log(ptrdiff_t T, ptrdiff_t N, const double *log_frameprob,
                     const double *log_startprob, const double *log_transmat,
                     double *log_prob, int64_t *path)
{
    if (T < 1 || N < 1)
        return SSGS_ERR_ARGUMENT;
    double *logAT = malloc((size_t)(N * N + 2 * N) * sizeof(double));
    int32_t *back = malloc((size_t)(T * N) * sizeof(int32_t));
    if (logAT == NULL || back == NULL) {
        free(logAT);
        free(back);
        return SSGS_ERR_NOMEM;
    }
    double *prev = logAT + N * N, *cur = prev + N;
    for (ptrdiff_t i = 0; i < N; ++i)
        for (ptrdiff_t j = 0; j < N; ++j)
            logAT[j * N + i] = log_transmat[i * N + j];
    for (ptrdiff_t j = 0; j < N; ++j) {
        prev[j] = log_startprob[j] + log_frameprob[j];
        back[j] = 0;
    }
    for (ptrdiff_t t = 1; t < T; ++t) {
        const double *lb = log_frameprob + t * N;
        int32_t *bt = back + t * N;
        for (ptrdiff_t j = 0; j < N; ++j) {
            const double *col = logAT + j * N;
            double best = -INFINITY;
            int32_t arg = 0;
            for (ptrdiff_t i = 0; i < N; ++i) {
                const double v = prev[i] + col[i];
                if (v > best) {
                    best = v;
                    arg = (int32_t)i;
                }
            }
            cur[j] = best + lb[j];
            bt[j] = arg;
        }
        double *tmp = prev;
        prev = cur;
        cur = tmp;
    }
    double best = -INFINITY;
    int32_t arg = 0;
    for (ptrdiff_t j = 0; j < N; ++j)
        if (prev[j] > best) {
            best = prev[j];
            arg = (int32_t)j;
        }
    *log_prob = best;
    for (ptrdiff_t t = T - 1; t >= 0; --t) {
        path[t] = arg;
        arg = back[t * N + arg];
    }
    free(logAT);
    free(back);
    return SSGS_OK;
}

int ssgs_viterbi(ptrdiff_t T, ptrdiff_t N, const double *log_frameprob,
                 const double *startprob, const double *transmat,
                 double *log_prob, int64_t *path)
{
    if (T < 1 || N < 1)
        return SSGS_ERR_ARGUMENT;
    double *logs = malloc((size_t)(N * N + N) * sizeof(double));
    if (logs == NULL)
        return SSGS_ERR_NOMEM;
    for (ptrdiff_t k = 0; k < N * N; ++k)
        logs[k] = transmat[k] > 0.0 ? log(transmat[k]) : -INFINITY;
    for (ptrdiff_t j = 0; j < N; ++j)
        logs[N * N + j] = startprob[j] > 0.0 ? log(startprob[j]) : -INFINITY;
    int status = ssgs_viterbi_log(T, N, log_frameprob, logs + N * N, logs, log_prob, path);
    free(logs);
    return status;
}

/* Everything one thread needs to process one sequence of the E-step. */
typedef struct {
    double *b, *gamma, *scale, *work;
    double *stats;
    block_scratch blk;
} estep_worker;

static void estep_worker_free(estep_worker *w)
{
    free(w->b);
    free(w->stats);
    free(w->blk.xT);
}

static int estep_worker_init(estep_worker *w, ptrdiff_t Tmax, ptrdiff_t N, ptrdiff_t D,
                             ptrdiff_t n_stats)
{
    w->b = malloc((size_t)(2 * Tmax * N + Tmax + 3 * N) * sizeof(double));
    w->stats = malloc((size_t)n_stats * sizeof(double));
    w->blk.xT = NULL;
    if (w->b == NULL || w->stats == NULL || block_scratch_init(&w->blk, D) != SSGS_OK) {
        estep_worker_free(w);
        return SSGS_ERR_NOMEM;
    }
    w->gamma = w->b + Tmax * N;
    w->scale = w->gamma + Tmax * N;
    w->work = w->scale + Tmax;
    return SSGS_OK;
}

/* Statistics layout: occupancy [N], start [N], xi [N*N], m1 [N*D], m2 [N*D*D]. */
static ptrdiff_t stats_size(ptrdiff_t N, ptrdiff_t D)
{
    return 2 * N + N * N + N * D + N * D * D;
}

static int estep_sequence(const gaussians *g, const double *startprob, const double *A,
                          const double *AT, const double *X, ptrdiff_t Ts, estep_worker *w,
                          double *loglik)
{
    const ptrdiff_t N = g->N, D = g->D;
    double *occ = w->stats, *start = occ + N, *xi = start + N, *m1 = xi + N * N,
           *m2 = m1 + N * D;
    memset(w->stats, 0, (size_t)stats_size(N, D) * sizeof(double));
    for (ptrdiff_t t0 = 0; t0 < Ts; t0 += BLOCK) {
        const ptrdiff_t B = Ts - t0 < BLOCK ? Ts - t0 : BLOCK;
        load_block(X + t0 * D, D, B, w->blk.xT);
        emission_block(g, B, &w->blk, w->b + t0 * N, N);
    }
    ptrdiff_t bad = 0;
    int status = fb_core(Ts, N, w->b, startprob, A, AT, w->gamma, xi, w->scale, w->work,
                         loglik, &bad);
    if (status != SSGS_OK)
        return status;
    memcpy(start, w->gamma, (size_t)N * sizeof(double));
    for (ptrdiff_t t0 = 0; t0 < Ts; t0 += BLOCK) {
        const ptrdiff_t B = Ts - t0 < BLOCK ? Ts - t0 : BLOCK;
        load_block(X + t0 * D, D, B, w->blk.xT);
        moments_block(g, B, w->gamma + t0 * N, &w->blk, occ, m1, m2);
    }
    return SSGS_OK;
}

static void add_into(double *dst, const double *src, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; ++i)
        dst[i] += src[i];
}

static void load_totals(double *total, ptrdiff_t N, ptrdiff_t D, const double *occupancy,
                        const double *start_occupancy, const double *xi_sum, const double *moment1,
                        const double *moment2)
{
    memcpy(total, occupancy, (size_t)N * sizeof(double));
    memcpy(total + N, start_occupancy, (size_t)N * sizeof(double));
    memcpy(total + 2 * N, xi_sum, (size_t)(N * N) * sizeof(double));
    memcpy(total + 2 * N + N * N, moment1, (size_t)(N * D) * sizeof(double));
    memcpy(total + 2 * N + N * N + N * D, moment2, (size_t)(N * D * D) * sizeof(double));
}

static int estep(ptrdiff_t T, ptrdiff_t D, ptrdiff_t N, ptrdiff_t S, const double *X,
               const int64_t *lengths, const double *startprob, const double *transmat,
               const double *means, const double *covars, int n_threads, int accumulate,
               double *seq_log_likelihood, double *occupancy, double *start_occupancy,
               double *xi_sum, double *moment1, double *moment2, double *posteriors,
               ptrdiff_t *err_index)
{
    if (T < 0 || D < 1 || N < 1 || S < 0)
        return SSGS_ERR_ARGUMENT;
    const ptrdiff_t n_stats = stats_size(N, D);
    ptrdiff_t *offsets = malloc((size_t)(S + 1) * sizeof(ptrdiff_t));
    double *AT = transpose_new(transmat, N);
    double *total = calloc((size_t)n_stats, sizeof(double));
    if (offsets == NULL || AT == NULL || total == NULL) {
        free(offsets);
        free(AT);
        free(total);
        return SSGS_ERR_NOMEM;
    }
    if (accumulate)
        load_totals(total, N, D, occupancy, start_occupancy, xi_sum, moment1, moment2);
    ptrdiff_t Tmax = 0;
    offsets[0] = 0;
    int status = SSGS_OK;
    for (ptrdiff_t s = 0; s < S; ++s) {
        if (lengths[s] < 1)
            status = SSGS_ERR_ARGUMENT;
        offsets[s + 1] = offsets[s] + (ptrdiff_t)lengths[s];
        if ((ptrdiff_t)lengths[s] > Tmax)
            Tmax = (ptrdiff_t)lengths[s];
    }
    if (offsets[S] != T)
        status = SSGS_ERR_ARGUMENT;
    gaussians g;
    if (status == SSGS_OK)
        status = gaussians_init(&g, N, D, means, covars, err_index);
    if (status != SSGS_OK) {
        free(offsets);
        free(AT);
        free(total);
        return status;
    }

    int nt = ssgs_threads(n_threads);
    if (nt > S)
        nt = S > 0 ? (int)S : 1;
    /* Statistics finished out of order wait in a small pool until every
     * earlier sequence has been added: the sum is always
     * ((s0 + s1) + s2) + ..., whatever the number of threads. */
    const ptrdiff_t n_slots = 2 * (ptrdiff_t)nt;
    double *pool = malloc((size_t)(n_slots * n_stats) * sizeof(double));
    ptrdiff_t *slot_seq = malloc((size_t)n_slots * sizeof(ptrdiff_t));
    if (pool == NULL || slot_seq == NULL) {
        free(pool);
        free(slot_seq);
        free(offsets);
        free(AT);
        free(total);
        gaussians_free(&g);
        return SSGS_ERR_NOMEM;
    }
    for (ptrdiff_t k = 0; k < n_slots; ++k)
        slot_seq[k] = -1;
    ptrdiff_t next_seq = 0, next_reduce = 0, fault = 0;

#pragma omp parallel num_threads(nt)
    {
        estep_worker w;
        int ready = estep_worker_init(&w, Tmax, N, D, n_stats) == SSGS_OK;
        if (!ready) {
#pragma omp critical(ssgs_estep)
            status = SSGS_ERR_NOMEM;
        }
        for (;;) {
            ptrdiff_t s;
            int current;
#pragma omp atomic capture
            s = next_seq++;
#pragma omp atomic read
            current = status;
            if (s >= S || current != SSGS_OK || !ready)
                break;
            const ptrdiff_t Ts = offsets[s + 1] - offsets[s];
            double ll = 0.0;
            int rc = estep_sequence(&g, startprob, transmat, AT, X + offsets[s] * D, Ts, &w, &ll);
            if (rc != SSGS_OK) {
#pragma omp critical(ssgs_estep)
                if (status == SSGS_OK) {
                    status = rc;
                    fault = s;
                }
                break;
            }
            seq_log_likelihood[s] = ll;
            if (posteriors != NULL)
                memcpy(posteriors + offsets[s] * N, w.gamma, (size_t)(Ts * N) * sizeof(double));
            for (;;) {
                int done = 0;
#pragma omp critical(ssgs_estep)
                {
                    if (status != SSGS_OK) {
                        done = 1;
                    } else if (s == next_reduce) {
                        add_into(total, w.stats, n_stats);
                        ++next_reduce;
                        for (ptrdiff_t k = 0; k < n_slots; ++k) {
                            if (slot_seq[k] == next_reduce) {
                                add_into(total, pool + k * n_stats, n_stats);
                                slot_seq[k] = -1;
                                ++next_reduce;
                                k = -1;
                            }
                        }
                        done = 1;
                    } else {
                        for (ptrdiff_t k = 0; k < n_slots && !done; ++k) {
                            if (slot_seq[k] < 0) {
                                memcpy(pool + k * n_stats, w.stats, (size_t)n_stats * sizeof(double));
                                slot_seq[k] = s;
                                done = 1;
                            }
                        }
                    }
                }
                if (done)
                    break;
                SSGS_YIELD();
            }
        }
        if (ready)
            estep_worker_free(&w);
    }

    if (status == SSGS_OK) {
        memcpy(occupancy, total, (size_t)N * sizeof(double));
        memcpy(start_occupancy, total + N, (size_t)N * sizeof(double));
        memcpy(xi_sum, total + 2 * N, (size_t)(N * N) * sizeof(double));
        memcpy(moment1, total + 2 * N + N * N, (size_t)(N * D) * sizeof(double));
        const double *m2 = total + 2 * N + N * N + N * D;
        for (ptrdiff_t j = 0; j < N; ++j)
            for (ptrdiff_t r = 0; r < D; ++r)
                for (ptrdiff_t c = 0; c < D; ++c)
                    moment2[(j * D + r) * D + c] =
                        c >= r ? m2[(j * D + r) * D + c] : m2[(j * D + c) * D + r];
    } else if (status == SSGS_ERR_ZERO_PROBABILITY && err_index != NULL) {
        *err_index = fault;
    }
    free(pool);
    free(slot_seq);
    free(offsets);
    free(AT);
    free(total);
    gaussians_free(&g);
    return status;
}

int ssgs_estep(ptrdiff_t T, ptrdiff_t D, ptrdiff_t N, ptrdiff_t S, const double *X,
               const int64_t *lengths, const double *startprob, const double *transmat,
               const double *means, const double *covars, int n_threads,
               double *seq_log_likelihood, double *occupancy, double *start_occupancy,
               double *xi_sum, double *moment1, double *moment2, double *posteriors,
               ptrdiff_t *err_index)
{
    return estep(T, D, N, S, X, lengths, startprob, transmat, means, covars, n_threads, 0,
                 seq_log_likelihood, occupancy, start_occupancy, xi_sum, moment1, moment2, posteriors,
                 err_index);
}

int ssgs_estep_continue(ptrdiff_t T, ptrdiff_t D, ptrdiff_t N, ptrdiff_t S, const double *X,
                        const int64_t *lengths, const double *startprob, const double *transmat,
                        const double *means, const double *covars, int n_threads,
                        double *seq_log_likelihood, double *occupancy, double *start_occupancy,
                        double *xi_sum, double *moment1, double *moment2, double *posteriors,
                        ptrdiff_t *err_index)
{
    return estep(T, D, N, S, X, lengths, startprob, transmat, means, covars, n_threads, 1,
                 seq_log_likelihood, occupancy, start_occupancy, xi_sum, moment1, moment2, posteriors,
                 err_index);
}

int ssgs_sample_states(ptrdiff_t N, const double *startprob, const double *transmat,
                       ptrdiff_t n, uint64_t seed, int64_t *path)
{
    if (N < 1 || n < 0)
        return SSGS_ERR_ARGUMENT;
    double *cdf = malloc((size_t)(N * N + N) * sizeof(double));
    int64_t *last = malloc((size_t)(N + 1) * sizeof(int64_t));
    if (cdf == NULL || last == NULL) {
        free(cdf);
        free(last);
        return SSGS_ERR_NOMEM;
    }
    /* row N of cdf is the start distribution; last[r] is the last state of
     * row r with non-zero probability, the answer when rounding leaves the
     * cumulative sum just below a uniform draw */
    for (ptrdiff_t r = 0; r <= N; ++r) {
        const double *p = r < N ? transmat + r * N : startprob;
        double *c = cdf + r * N;
        double acc = 0.0;
        last[r] = 0;
        for (ptrdiff_t j = 0; j < N; ++j) {
            acc += p[j];
            c[j] = acc;
            if (p[j] > 0.0)
                last[r] = j;
        }
    }
    ssgs_rng rng;
    ssgs_rng_seed(&rng, seed);
    ptrdiff_t row = N;
    for (ptrdiff_t t = 0; t < n; ++t) {
        const double u = ssgs_rng_uniform(&rng);
        const double *c = cdf + row * N;
        int64_t j = 0;
        while (j < N && !(u < c[j]))
            ++j;
        if (j >= N || j > last[row])
            j = last[row];
        path[t] = j;
        row = (ptrdiff_t)j;
    }
    free(cdf);
    free(last);
    return SSGS_OK;
}
