#include "ssgs_synth.h"
#include "ssgs_fft.h"
#include "ssgs_internal.h"
#include "ssgs_lpc.h"
#include "ssgs_rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KS_T60_SECONDS 1.5   /* a plucked note decays by 60 dB in this time, at any pitch */
#define KS_T60_DECADES 3.0
#define KS_SUSTAIN 0.01      /* re-pluck once the string is 40 dB below its pluck */
#define NOISE_BLOCK 32       /* samples between updates of the noise high-pass */
#define SSGS_PI 3.14159265358979323846

/* Frame position of sample t: frame index f and weight w of frame f + 1. */
static void frame_position(double t, ptrdiff_t hop, ptrdiff_t n_frames, ptrdiff_t *f, double *w)
{
    /* dividing by a power of two is multiplying by its inverse, exactly */
    const double u = (hop & (hop - 1)) == 0 ? (t - 0.5 * (double)hop) * (1.0 / (double)hop)
                                            : (t - 0.5 * (double)hop) / (double)hop;
    if (u <= 0.0) {
        *f = 0;
        *w = 0.0;
        return;
    }
    ptrdiff_t i = (ptrdiff_t)u;
    if (i >= n_frames - 1) {
        *f = n_frames - 1;
        *w = 0.0;
        return;
    }
    *f = i;
    *w = u - (double)i;
}

/* Approximately Gaussian noise of unit variance, cheaply: the sum of four
 * 16-bit uniforms from one draw (Irwin-Hall), centred and scaled. For an
 * excitation only whiteness and power matter; no transcendental function
 * per sample. */
static inline double noise(ssgs_rng *rng)
{
    const uint64_t u = ssgs_rng_next(rng);
    const double s = (double)(u & 0xffff) + (double)((u >> 16) & 0xffff) + (double)((u >> 32) & 0xffff) +
                     (double)(u >> 48);
    /* each 16-bit uniform has variance (2^32 - 1) / 12 */
    return (s - 2.0 * 65535.0) * 2.6428857203766826e-05; /* 1 / sqrt(4 (2^32 - 1) / 12) */
}

/* The controls of the excitation: per frame the period (samples) and the
 * voicing, read at any sample interpolated linearly between frame centres
 * (no per-sample array: the loops compute them as they go). */
typedef struct {
    const double *period;  /* [n_frames] sample_rate / f0, one division per frame */
    const double *voicing; /* [n_frames] */
    ptrdiff_t hop, n_frames;
} controls;

/* A per-frame control (one of c's arrays) at sample t, linear between frame centres. */
static inline double control_at(const controls *c, const double *values, ptrdiff_t t)
{
    ptrdiff_t f;
    double w;
    frame_position((double)t, c->hop, c->n_frames, &f, &w);
    const double vf = values[f];
    return vf + w * (values[w > 0.0 ? f + 1 : f] - vf);
}

static inline double period_at(const controls *c, ptrdiff_t t) { return control_at(c, c->period, t); }


/* A per-frame control at samples t0 .. t0 + len - 1 (control_at of each), so
 * the per-sample arithmetic on it runs as a plain loop over an array, in
 * vector registers. For a hop that is a power of two, the samples between
 * two frame centres i and i + 1 take the same arithmetic without a branch
 * per sample: u = (t - hop / 2) / hop exactly, so i = floor(u) holds
 * from the centre of frame i up to the sample before the next. */
static void control_run(const controls *c, const double *values, ptrdiff_t t0, ptrdiff_t len, double *out)
{
    const ptrdiff_t hop = c->hop, end = t0 + len;
    if (hop & (hop - 1)) {
        for (ptrdiff_t j = 0; j < len; ++j)
            out[j] = control_at(c, values, t0 + j);
        return;
    }
    const double inv = 1.0 / (double)hop, half = 0.5 * (double)hop;
    ptrdiff_t t = t0;
    while (t < end) {
        const double u = ((double)t - half) * inv;
        const ptrdiff_t i = (ptrdiff_t)u;
        if (u <= 0.0 || i >= c->n_frames - 1) { /* before the first centre or after the last */
            out[t - t0] = control_at(c, values, t);
            ++t;
            continue;
        }
        ptrdiff_t stop = (i + 1) * hop + (hop + 1) / 2; /* the first sample of frame i + 1's interval */
        if (stop > end)
            stop = end;
        const double vf = values[i], d = values[i + 1] - vf;
        for (; t < stop; ++t)
            out[t - t0] = vf + (((double)t - half) * inv - (double)i) * d;
    }
}

/* The level of the string at each sample of the hop starting at t0: the
 * hops' RMS interpolated between hop centres, except across a pluck, where
 * each side keeps its own hop's level. */
static void hop_level(const controls *c, const double *rms, const uint8_t *plucked, ptrdiff_t t0, double *out)
{
    const ptrdiff_t hop = c->hop, n_frames = c->n_frames, g = t0 / hop;
    if (hop & (hop - 1)) {
        for (ptrdiff_t j = 0; j < hop; ++j) {
            ptrdiff_t f;
            double w;
            frame_position((double)(t0 + j), hop, n_frames, &f, &w);
            if (w > 0.0 && plucked[f + 1])
                out[j] = rms[g];
            else
                out[j] = rms[f] + w * (rms[w > 0.0 ? f + 1 : f] - rms[f]);
        }
        return;
    }
    control_run(c, rms, t0, hop, out);
    /* samples before the hop's centre lie between frames g - 1 and g, those
     * after it between g and g + 1 (a power-of-two hop: the centre falls on
     * a sample, or for a hop of 1 between two) */
    const ptrdiff_t centre = (hop + 1) / 2 - (hop == 1);
    if (g >= 1 && plucked[g])
        for (ptrdiff_t j = 0; j < (hop == 1 ? 1 : hop / 2); ++j)
            out[j] = rms[g];
    if (g + 1 < n_frames && plucked[g + 1])
        for (ptrdiff_t j = centre + 1; j < hop; ++j)
            out[j] = rms[g];
}

/* The pluck: len samples back in time from the write position, each the
 * sum over partials k = 1..K (in that order) of amp cos(phi_k + j w_k),
 * w_k = -2 pi k / P, every phasor turned sample by sample. Four samples at a
 * time, so the sums of four samples are independent chains while each
 * partial's phasor turns in registers; the sums and turns are the same
 * as one sample at a time. partials: scratch [4 K]. */
static void pluck(double *line, size_t mask, size_t pos, size_t len, int K, double P, ssgs_rng *rng,
                  double *partials)
{
    double *zr = partials, *zi = zr + K, *cr = zi + K, *ci = cr + K;
    const double amp = sqrt(2.0 / (double)K);
    for (int k = 0; k < K; ++k) {
        const double phi = 2.0 * SSGS_PI * ssgs_rng_uniform(rng);
        const double w = -2.0 * SSGS_PI * (double)(k + 1) / P;
        cr[k] = cos(w);
        ci[k] = sin(w);
        zr[k] = cos(phi);
        zi[k] = sin(phi);
    }
    size_t j = 1;
    for (; j + 3 <= len; j += 4) {
        double acc[4] = {0.0, 0.0, 0.0, 0.0};
        for (int k = 0; k < K; ++k) {
            double r = zr[k], i = zi[k];
            for (int q = 0; q < 4; ++q) {
                const double turned = r * cr[k] - i * ci[k];
                i = r * ci[k] + i * cr[k];
                r = turned;
                acc[q] += amp * r;
            }
            zr[k] = r;
            zi[k] = i;
        }
        for (int q = 0; q < 4; ++q)
            line[(pos - j - (size_t)q) & mask] = acc[q];
    }
    for (; j <= len; ++j) {
        double acc = 0.0;
        for (int k = 0; k < K; ++k) {
            const double turned = zr[k] * cr[k] - zi[k] * ci[k];
            zi[k] = zr[k] * ci[k] + zi[k] * cr[k];
            zr[k] = turned;
            acc += amp * zr[k];
        }
        line[(pos - j) & mask] = acc;
    }
}

/*
 * A Karplus-Strong string without the loop's low-pass: an integer delay and
 * an allpass fraction, so every partial decays at the same rate and the
 * spectrum stays the pluck's (flat: every partial at the same level, at a
 * random phase) from pluck to fade. The colour is the residual shape's and
 * the envelope's job. (A darkening string needed flattening hop by hop, and a flattening
 * filter switched at every hop spread its partials into the valleys between
 * them: copy-synthesis FMD 355 on the demo, 145 on songs, 64 on speech,
 * against 254, 122 and 30 for this string.)
 */
static int karplus_strong(const controls *c, double sr, const uint8_t *onset, const double *f0, ssgs_rng *rng,
                          double *p)
{
    const ptrdiff_t n_frames = c->n_frames, hop = c->hop;
    double fmin = f0[0];
    for (ptrdiff_t f = 1; f < n_frames; ++f)
        if (f0[f] < fmin)
            fmin = f0[f];
    size_t size = 16;
    while ((double)size < sr / fmin + 8.0)
        size <<= 1;
    const size_t mask = size - 1;
    double *line = calloc(size, sizeof(double));
    double *rms = malloc((size_t)n_frames * sizeof(double));
    uint8_t *plucked = malloc((size_t)n_frames);
    double *partials = malloc(2 * size * sizeof(double)); /* K < size / 2 partials, 4 numbers each */
    double *run = malloc(2 * (size_t)hop * sizeof(double)), *coef = run + hop; /* per hop */
    int *whole = malloc((size_t)hop * sizeof(int));
    if (line == NULL || rms == NULL || plucked == NULL || partials == NULL || run == NULL || whole == NULL) {
        free(run);
        free(whole);
        free(partials);
        free(line);
        free(rms);
        free(plucked);
        return SSGS_ERR_NOMEM;
    }
    size_t pos = 0;
    double x_prev = 0.0, y_prev = 0.0, pluck_rms = 0.0, ap_u = 0.0, ap_v = 0.0;
    int repluck = 1;
    for (ptrdiff_t f = 0; f < n_frames; ++f) {
        const ptrdiff_t t0 = f * hop;
        plucked[f] = (uint8_t)(repluck || onset[f]);
        if (plucked[f]) {
            /* one period of every partial below Nyquist at the same
             * amplitude, each at a random phase (a sum of cosines, each
             * turned by a phasor, sample by sample, back in time from the
             * write position): it sounds like a noise burst, but no
             * partial comes out louder than another. A burst of noise gave
             * each partial a random amplitude (power exponential, 5.6 dB
             * of spread), a spectrum of the pluck's luck that no envelope
             * asked for (copy-synthesis FMD on read speech: 42, the
             * pulses' 25). No DC: the partials have none. */
            const double P0 = period_at(c, t0), P = P0 < 2.0 ? 2.0 : P0;
            size_t len = (size_t)ceil(P) + 2;
            if (len > size - 1)
                len = size - 1;
            int K = (int)ceil(0.5 * P) - 1; /* every partial k with k / P < 1/2 */
            if (K < 1)
                K = 1;
            pluck(line, mask, pos, len, K, P, rng, partials);
        }
        /* loop gain for the same decay time at every pitch */
        const double gain = exp(-KS_T60_DECADES * 2.302585092994046 / (KS_T60_SECONDS * f0[f]));
        /* the period as an integer delay and a first-order allpass for
         * the fraction (kept in [0.1, 1.1), where the allpass's phase
         * delay is near its nominal value at low frequencies); a period
         * is at most sample_rate / MIN_F0 samples, well inside an int */
        control_run(c, c->period, t0, hop, run);
        for (ptrdiff_t j = 0; j < hop; ++j) {
            const double delay = run[j] < 2.0 ? 2.0 : run[j];
            whole[j] = (int)(delay - 0.1);
            const double frac = delay - (double)whole[j];
            coef[j] = (1.0 - frac) / (1.0 + frac);
        }
        double energy = 0.0;
        for (ptrdiff_t t = t0; t < t0 + hop; ++t) {
            const double C = coef[t - t0];
            const double u = line[(pos - (size_t)whole[t - t0]) & mask];
            const double v = C * u + ap_u - C * ap_v;
            ap_u = u;
            ap_v = v;
            const double out = gain * v;
            line[pos & mask] = out;
            ++pos;
            /* DC blocker on the way out */
            y_prev = out - x_prev + 0.995 * y_prev;
            x_prev = out;
            p[t] = y_prev;
            energy += y_prev * y_prev;
        }
        rms[f] = sqrt(energy / (double)hop);
        if (plucked[f])
            pluck_rms = rms[f];
        /* pluck again before the string fades into rounding noise */
        repluck = rms[f] < KS_SUSTAIN * pluck_rms;
    }
    /* unit power: divide by the RMS of each hop, interpolated between hop
     * centres so the level never steps, except across a pluck, where each
     * side keeps its own hop's level (no overshoot on the attack) */
    for (ptrdiff_t t0 = 0; t0 < n_frames * hop; t0 += hop) {
        hop_level(c, rms, plucked, t0, run);
        for (ptrdiff_t j = 0; j < hop; ++j)
            p[t0 + j] = run[j] > 1e-300 ? p[t0 + j] / run[j] : 0.0;
    }
    free(run);
    free(whole);
    free(partials);
    free(line);
    free(rms);
    free(plucked);
    return SSGS_OK;
}

/* A train of pulses, one per period, each the pulse shape (tabulated
 * `os` points per sample) evaluated at its exact sub-sample position, scaled
 * so the train has unit power. */
static void pulse_train(ptrdiff_t n, double sr, const controls *c, const double *pulse,
                        ptrdiff_t pulse_len, ptrdiff_t os, double *p)
{
    const double energy = ssgs_dot(pulse, pulse, pulse_len) / (double)os;
    const double support = (double)(pulse_len - 1) / (double)os;
    memset(p, 0, (size_t)n * sizeof(double));
    if (!(energy > 0.0))
        return;
    double phase = 1.0; /* a pulse right at the start */
    for (ptrdiff_t t = 0; t < n; ++t) {
        const double step = 1.0 / period_at(c, t);
        const double f0 = sr * step;
        if (t > 0)
            phase += step;
        if (phase < 1.0)
            continue;
        phase -= floor(phase);
        const double when = (double)t - phase / step; /* the period ended this long ago */
        const double scale = sqrt(sr / (f0 * energy));
        for (ptrdiff_t i = (ptrdiff_t)ceil(when); (double)i <= when + support; ++i) {
            if (i < 0 || i >= n)
                continue;
            const double x = ((double)i - when) * (double)os;
            const ptrdiff_t j = (ptrdiff_t)x;
            const double frac = x - (double)j;
            const double v = j + 1 < pulse_len ? (1.0 - frac) * pulse[j] + frac * pulse[j + 1] : pulse[j];
            p[i] += scale * v;
        }
    }
}

/* The periodic part p (n_frames * hop samples, unit power) mixed in place
 * with the noisy part at each sample's voicing v: sqrt(v) p + sqrt(1 - v)
 * w. The noise w is high-passed (2nd-order Butterworth) at v * f0: a voiced
 * sound has nothing below its fundamental, and its breath and noise lie
 * above it; an unvoiced one (v = 0) keeps full-band noise. Coefficients
 * follow the controls every NOISE_BLOCK samples (direct form I, so changing
 * them leaves no transient). A hop at a time: the square roots run over an
 * array, in vector registers. */
static int noisy_part(const controls *c, double sample_rate, ssgs_rng *rng, double *p)
{
    const ptrdiff_t hop = c->hop;
    double *v = malloc(3 * (size_t)hop * sizeof(double)), *root_v = v + hop, *root_u = root_v + hop;
    if (v == NULL)
        return SSGS_ERR_NOMEM;
    double x1 = 0.0, x2 = 0.0, y1 = 0.0, y2 = 0.0;
    double b0 = 1.0, b1 = 0.0, b2 = 0.0, a1 = 0.0, a2 = 0.0;
    for (ptrdiff_t t0 = 0; t0 < c->n_frames * hop; t0 += hop) {
        control_run(c, c->voicing, t0, hop, v);
        for (ptrdiff_t j = 0; j < hop; ++j) {
            v[j] = v[j] < 0.0 ? 0.0 : (v[j] > 1.0 ? 1.0 : v[j]);
            root_v[j] = sqrt(v[j]);
            root_u[j] = sqrt(1.0 - v[j]);
        }
        for (ptrdiff_t j = 0; j < hop; ++j) {
            const ptrdiff_t t = t0 + j;
            if (t % NOISE_BLOCK == 0) {
                double fc = v[j] * sample_rate / period_at(c, t);
                if (fc < 1.0)
                    fc = 1.0;
                const double w0 = 6.283185307179586 * fc / sample_rate;
                const double cw = cos(w0), alpha = sin(w0) / 1.4142135623730951;
                const double a0 = 1.0 + alpha;
                b0 = 0.5 * (1.0 + cw) / a0;
                b1 = -(1.0 + cw) / a0;
                b2 = b0;
                a1 = -2.0 * cw / a0;
                a2 = (1.0 - alpha) / a0;
            }
            const double x = noise(rng);
            const double w = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
            x2 = x1;
            x1 = x;
            y2 = y1;
            y1 = w;
            p[t] = root_v[j] * p[t] + root_u[j] * w;
        }
    }
    free(v);
    return SSGS_OK;
}

int ssgs_excitation(int kind, ptrdiff_t n_frames, ptrdiff_t hop, double sample_rate,
                    const double *f0, const double *voicing, const uint8_t *onset,
                    const double *pulse, ptrdiff_t pulse_len, ptrdiff_t pulse_oversampling,
                    uint64_t seed, double *e)
{
    if (n_frames < 0 || hop < 1 || !(sample_rate > 0.0) || kind < 0 || kind > 2 ||
        (kind == SSGS_EXCITATION_PULSES && (pulse == NULL || pulse_len < 1 || pulse_oversampling < 1)))
        return SSGS_ERR_ARGUMENT;
    if (n_frames == 0)
        return SSGS_OK;
    const ptrdiff_t n = n_frames * hop;
    ssgs_rng rng;
    ssgs_rng_seed(&rng, seed);
    if (kind == SSGS_EXCITATION_NOISE) {
        for (ptrdiff_t t = 0; t < n; ++t)
            e[t] = noise(&rng);
        return SSGS_OK;
    }
    double *period = malloc((size_t)n_frames * sizeof(double));
    if (period == NULL)
        return SSGS_ERR_NOMEM;
    for (ptrdiff_t f = 0; f < n_frames; ++f)
        period[f] = sample_rate / f0[f];
    const controls c = {period, voicing, hop, n_frames};
    int status = SSGS_OK;
    if (kind == SSGS_EXCITATION_KARPLUS_STRONG)
        status = karplus_strong(&c, sample_rate, onset, f0, &rng, e);
    else
        pulse_train(n, sample_rate, &c, pulse, pulse_len, pulse_oversampling, e);
    if (status == SSGS_OK)
        status = noisy_part(&c, sample_rate, &rng, e);
    free(period);
    return status;
}

/* log gain at sample position t, interpolated between frame centres */
static double gain_at(double t, const double *log_gain, ptrdiff_t hop, ptrdiff_t n_frames)
{
    ptrdiff_t f;
    double w;
    frame_position(t, hop, n_frames, &f, &w);
    return exp(log_gain[f] + w * (log_gain[w > 0.0 ? f + 1 : f] - log_gain[f]));
}

/* Step-up recursion: reflection coefficients k[0..p) to a[0..p], in place:
 * a[i] and a[m - i] from each other's old values, as a pair. */
static void step_up(const double *k, int p, double *a)
{
    a[0] = 1.0;
    for (int m = 1; m <= p; ++m) {
        const double km = k[m - 1];
        int i = 1, j = m - 1;
        for (; i < j; ++i, --j) {
            const double ai = a[i], aj = a[j];
            a[i] = ai + km * aj;
            a[j] = aj + km * ai;
        }
        if (i == j)
            a[i] = a[i] + km * a[i];
        a[m] = km;
    }
}

int ssgs_lpc_synthesis_smooth(const double *e, ptrdiff_t n, const double *k,
                              const double *log_gain, ptrdiff_t n_frames, int order,
                              ptrdiff_t hop, ptrdiff_t block, double *state, double *y,
                              ptrdiff_t *err_index)
{
    if (n < 0 || hop < 1 || block < 1 || order < 1 || order > SSGS_MAX_ORDER ||
        n_frames != (n + hop - 1) / hop)
        return SSGS_ERR_ARGUMENT;
    const int p = order;
    double kk[SSGS_MAX_ORDER], a[SSGS_MAX_ORDER + 1];
    double g_start = 0.0;
    for (ptrdiff_t s0 = 0; s0 < n; s0 += block) {
        const ptrdiff_t s1 = s0 + block < n ? s0 + block : n;
        ptrdiff_t f;
        double w;
        frame_position(0.5 * (double)(s0 + s1 - 1), hop, n_frames, &f, &w);
        const double *k0 = k + f * p, *k1 = k + (w > 0.0 ? f + 1 : f) * p;
        double norm = 1.0;
        for (int i = 0; i < p; ++i) {
            kk[i] = k0[i] + w * (k1[i] - k0[i]); /* exact at the ends and for constant k */
            norm *= (1.0 - kk[i]) * (1.0 + kk[i]);
        }
        norm = sqrt(norm);
        step_up(kk, p, a);
        if (s0 == 0)
            g_start = gain_at(0.0, log_gain, hop, n_frames) * norm;
        const double g_end = gain_at((double)s1, log_gain, hop, n_frames) * norm;
        const double dg = (g_end - g_start) / (double)(s1 - s0);
        for (ptrdiff_t t = s0; t < s1; ++t) /* the inputs, filtered in place */
            y[t] = e[t] * (g_start + dg * (double)(t - s0));
        ssgs_allpole_run(a, p, y, s0, s1, state, y + s0);
        if (!isfinite(y[s1 - 1])) {
            if (err_index != NULL)
                *err_index = (s1 - 1) / hop;
            return SSGS_ERR_NONFINITE;
        }
        g_start = g_end;
    }
    ssgs_update_history(state, y, n, p);
    return SSGS_OK;
}

/* exp(x) for |x| <= 700 (the caller clamps), within two units in the last place: x = n ln 2 + r
 * with |r| <= ln 2 / 2, exp(r) by its Taylor series to degree 13 (the
 * remainder below 1e-17 relative), times 2^n written into the exponent.
 * Plain arithmetic without a call or a branch, so a loop of them runs in
 * vector registers. n is rounded by adding and taking away 1.5 * 2^52,
 * whose last bits then hold it. */
static inline double exp_vector(double x)
{
    const double shifter = 6755399441055744.0;
    const double big = x * 1.4426950408889634 + shifter;
    const double n = big - shifter;
    const double r = (x - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
    double q = 1.0 / 6227020800.0;
    q = q * r + 1.0 / 479001600.0;
    q = q * r + 1.0 / 39916800.0;
    q = q * r + 1.0 / 3628800.0;
    q = q * r + 1.0 / 362880.0;
    q = q * r + 1.0 / 40320.0;
    q = q * r + 1.0 / 5040.0;
    q = q * r + 1.0 / 720.0;
    q = q * r + 1.0 / 120.0;
    q = q * r + 1.0 / 24.0;
    q = q * r + 1.0 / 6.0;
    q = q * r + 0.5;
    q = q * r + 1.0;
    q = q * r + 1.0;
    int64_t e;
    memcpy(&e, &big, sizeof e);
    e = (e - (int64_t)0x4338000000000000LL + 1023) << 52; /* 2^n */
    double scale;
    memcpy(&scale, &e, sizeof scale);
    return q * scale;
}

/* Where each of n_out bins falls among n_in, both spanning 0 to Nyquist (the
 * arithmetic of ssgs.residual_shapes.resample_bins): the lower input bin and
 * the weights of it and the next; and the intervals between input bins,
 * each as the first output bin in it (first[n_in - 1] = n_out). */
typedef struct {
    ptrdiff_t *lo, *first;
    double *w_lo, *w_hi;
    double *start, *step; /* scratch [n_in] */
} bin_map;

static void bin_positions(ptrdiff_t n_in, ptrdiff_t n_out, bin_map *m)
{
    const double ratio = (double)(n_in - 1) / (double)(n_out - 1);
    for (ptrdiff_t b = 0; b < n_out; ++b) {
        const double pos = (double)b * ratio;
        m->lo[b] = (ptrdiff_t)pos < n_in - 2 ? (ptrdiff_t)pos : n_in - 2;
        m->w_hi[b] = pos - (double)m->lo[b];
        m->w_lo[b] = 1.0 - m->w_hi[b];
    }
    ptrdiff_t b = 0;
    for (ptrdiff_t k = 0; k < n_in - 1; ++k) {
        while (b < n_out && m->lo[b] < k)
            ++b;
        m->first[k] = b;
    }
    m->first[n_in - 1] = n_out;
}

/* gain[b] *= exp(v(b) / 2), v the frame's variation (n_in values)
 * interpolated linearly at the bin_positions. Between two of v's values the
 * exponent is linear in the bin, so the factors are a geometric sequence:
 * two exponentials per interval (all of them in one loop, in vector
 * registers), then a multiplication per bin (within a few units in the last
 * place of an exponential per bin). A variation large enough to overflow a
 * factor takes an exponential per bin, its exponent clamped to [-700, 700];
 * arg: scratch [n_out]. */
static void vary_gains(const double *v, ptrdiff_t n_in, const bin_map *m, ptrdiff_t n_out, double *arg,
                       double *gain)
{
    const ptrdiff_t *lo = m->lo, *first = m->first;
    const double *w_lo = m->w_lo, *w_hi = m->w_hi;
    double largest = 0.0;
    for (ptrdiff_t k = 0; k < n_in; ++k)
        largest = fabs(v[k]) > largest ? fabs(v[k]) : largest;
    if (!(largest <= 600.0)) {
        for (ptrdiff_t b = 0; b < n_out; ++b) {
            const double half = 0.5 * (w_lo[b] * v[lo[b]] + w_hi[b] * v[lo[b] + 1]);
            arg[b] = half < -700.0 ? -700.0 : (half > 700.0 ? 700.0 : half);
        }
        for (ptrdiff_t b = 0; b < n_out; ++b)
            gain[b] *= exp_vector(arg[b]);
        return;
    }
    double *start = m->start, *step = m->step;
    for (ptrdiff_t k = 0; k < n_in - 1; ++k) { /* an empty interval's numbers go unused */
        const ptrdiff_t b = first[k] < n_out ? first[k] : n_out - 1, next = b + 1 < n_out ? b + 1 : b;
        start[k] = 0.5 * (w_lo[b] * v[k] + w_hi[b] * v[k + 1]);
        step[k] = 0.5 * (w_hi[next] - w_hi[b]) * (v[k + 1] - v[k]);
    }
    for (ptrdiff_t k = 0; k < n_in - 1; ++k)
        start[k] = exp_vector(start[k]);
    for (ptrdiff_t k = 0; k < n_in - 1; ++k)
        step[k] = exp_vector(step[k]);
    for (ptrdiff_t k = 0; k < n_in - 1; ++k) {
        double factor = start[k];
        for (ptrdiff_t b = first[k]; b < first[k + 1]; ++b) {
            gain[b] *= factor;
            factor *= step[k];
        }
    }
}

int ssgs_shape_excitation(const double *e, ptrdiff_t n_frames, ptrdiff_t hop, const double *table,
                          ptrdiff_t n_rows, const int64_t *index, const double *variation,
                          ptrdiff_t n_bins, double *out)
{
    if (n_frames < 0 || !ssgs_rfft_size_ok(2 * hop) || n_rows < 1 || (variation != NULL && n_bins < 2))
        return SSGS_ERR_ARGUMENT;
    for (ptrdiff_t f = 0; f < n_frames; ++f)
        if (index[f] < 0 || index[f] >= n_rows)
            return SSGS_ERR_ARGUMENT;
    const ptrdiff_t n = n_frames * hop, size = 2 * hop, left = hop + hop / 2;
    memset(out, 0, (size_t)n * sizeof(double));
    if (n_frames == 0)
        return SSGS_OK;
    ssgs_rfft plan;
    int status = ssgs_rfft_init(&plan, size);
    const ptrdiff_t n_in = variation != NULL ? n_bins : 2;
    double *window = malloc((size_t)(2 * size + 4 * (hop + 1) + 2 * n_in) * sizeof(double));
    ptrdiff_t *lo = malloc((size_t)(hop + 1 + n_in) * sizeof(ptrdiff_t));
    if (status != SSGS_OK || window == NULL || lo == NULL) {
        ssgs_rfft_free(&plan);
        free(window);
        free(lo);
        return status != SSGS_OK ? status : SSGS_ERR_NOMEM;
    }
    double *x = window + size, *gain = x + size, *arg = gain + hop + 1;
    bin_map map = {lo, lo + hop + 1, arg + hop + 1, arg + 2 * (hop + 1), arg + 3 * (hop + 1),
                   arg + 3 * (hop + 1) + n_in};
    if (variation != NULL)
        bin_positions(n_bins, hop + 1, &map);
    for (ptrdiff_t j = 0; j < size; ++j) /* periodic */
        window[j] = sqrt(0.5 - 0.5 * cos(2.0 * SSGS_PI * (double)j / (double)size));
    /* frame g covers samples [g hop - left, g hop - left + 2 hop): its
     * centre is the centre of hop g - 1 */
    for (ptrdiff_t g = 0; g < n_frames + 2; ++g) {
        const ptrdiff_t src = g == 0 ? 0 : (g > n_frames ? n_frames - 1 : g - 1), t0 = g * hop - left;
        /* the frame's samples inside the signal: j in [j0, j1) */
        const ptrdiff_t j0 = t0 < 0 ? -t0 : 0, j1 = t0 + size > n ? n - t0 : size;
        for (ptrdiff_t j = 0; j < size; ++j)
            x[j] = 0.0;
        for (ptrdiff_t j = j0; j < j1; ++j)
            x[j] = e[t0 + j] * window[j];
        ssgs_rfft_forward(&plan, x);
        memcpy(gain, table + index[src] * (hop + 1), (size_t)(hop + 1) * sizeof(double));
        if (variation != NULL)
            vary_gains(variation + src * n_bins, n_bins, &map, hop + 1, arg, gain);
        for (ptrdiff_t b = 0; b <= hop; ++b) {
            plan.re[b] *= gain[b];
            plan.im[b] *= gain[b];
        }
        ssgs_rfft_inverse(&plan, x);
        for (ptrdiff_t j = j0; j < j1; ++j)
            out[t0 + j] += x[j] * window[j];
    }
    ssgs_rfft_free(&plan);
    free(window);
    free(lo);
    return SSGS_OK;
}

/* held[i - lo] = min of a = min(1, allowed) over [i - w, i + w] (within the
 * signal) for i in [lo, hi): a running minimum with a deque of candidates
 * (increasing values, indices in queue[]). */
static void running_min(const double *allowed, ptrdiff_t n, ptrdiff_t w, ptrdiff_t lo, ptrdiff_t hi,
                        ptrdiff_t *queue, double *held)
{
    ptrdiff_t head = 0, tail = 0, next = lo - w < 0 ? 0 : lo - w;
    for (ptrdiff_t i = lo; i < hi; ++i) {
        const ptrdiff_t end = i + w + 1 < n ? i + w + 1 : n;
        for (; next < end; ++next) {
            const double v = allowed[next] < 1.0 ? allowed[next] : 1.0;
            while (tail > head && (allowed[queue[tail - 1]] < 1.0 ? allowed[queue[tail - 1]] : 1.0) >= v)
                --tail;
            queue[tail++] = next;
        }
        while (queue[head] < i - w)
            ++head;
        held[i - lo] = allowed[queue[head]] < 1.0 ? allowed[queue[head]] : 1.0;
    }
}

/* gain over [lo, hi): the mean of held over [i - w, i + w], held taken at
 * the nearest sample beyond the signal's ends; held covers [hlo, ...). */
static void running_mean(const double *held, ptrdiff_t hlo, ptrdiff_t n, ptrdiff_t w, ptrdiff_t lo,
                         ptrdiff_t hi, double *gain)
{
    const double size = (double)(2 * w + 1);
    double deficit = 0.0; /* of 1 - held over the window: near 1 the mean keeps its digits */
    for (ptrdiff_t j = lo - w; j <= lo + w; ++j)
        deficit += 1.0 - held[(j < 0 ? 0 : (j >= n ? n - 1 : j)) - hlo];
    for (ptrdiff_t i = lo; i < hi; ++i) {
        gain[i] = 1.0 - deficit / size;
        const ptrdiff_t in = i + w + 1, out = i - w;
        deficit += (1.0 - held[(in >= n ? n - 1 : in) - hlo]) - (1.0 - held[(out < 0 ? 0 : out) - hlo]);
    }
}

/* The stretch of limited samples (allowance below 1) starting at i, joined
 * with the next while their reaches (2 width) overlap: its last sample. */
static ptrdiff_t stretch_end(const double *allowed, ptrdiff_t n, ptrdiff_t i, ptrdiff_t reach)
{
    ptrdiff_t last = i;
    for (ptrdiff_t j = i + 1; j < n && j <= last + 2 * reach; ++j)
        if (allowed[j] < 1.0)
            last = j;
    return last;
}

/* gain over [lo, hi) = [first - 2w, last + 2w] within the signal, from the
 * allowances over [lo - 2w, hi + 2w) (scratch: queue and held, n each) */
static void stretch_gain(const double *allowed, ptrdiff_t n, ptrdiff_t w, ptrdiff_t first, ptrdiff_t last,
                         ptrdiff_t *queue, double *held, double *gain, ptrdiff_t *lo, ptrdiff_t *hi)
{
    *lo = first - 2 * w < 0 ? 0 : first - 2 * w;
    *hi = last + 2 * w + 1 < n ? last + 2 * w + 1 : n;
    const ptrdiff_t hlo = *lo - w < 0 ? 0 : *lo - w, hhi = *hi + w < n ? *hi + w : n;
    running_min(allowed, n, w, hlo, hhi, queue, held);
    running_mean(held, hlo, n, w, *lo, *hi, gain);
}

int ssgs_smooth_gain(const double *allowed, ptrdiff_t n, ptrdiff_t width, double *gain)
{
    if (n < 0 || width < 0)
        return SSGS_ERR_ARGUMENT;
    for (ptrdiff_t i = 0; i < n; ++i)
        gain[i] = 1.0;
    ptrdiff_t *queue = NULL;
    double *held = NULL;
    for (ptrdiff_t i = 0; i < n; ++i) {
        if (!(allowed[i] < 1.0))
            continue;
        if (queue == NULL) {
            queue = malloc((size_t)n * sizeof(ptrdiff_t));
            held = malloc((size_t)n * sizeof(double));
            if (queue == NULL || held == NULL) {
                free(queue);
                free(held);
                return SSGS_ERR_NOMEM;
            }
        }
        ptrdiff_t lo, hi;
        stretch_gain(allowed, n, width, i, stretch_end(allowed, n, i, 2 * width), queue, held, gain, &lo, &hi);
        i = hi - 1;
    }
    free(queue);
    free(held);
    return SSGS_OK;
}

int ssgs_peak_limit(const double *y, ptrdiff_t n, ptrdiff_t width, double ceiling, double *out)
{
    if (n < 0 || width < 0 || !(ceiling > 0.0))
        return SSGS_ERR_ARGUMENT;
    if (out != y)
        memcpy(out, y, (size_t)n * sizeof(double));
    /* allowed and the gain are written only within reach of a peak */
    double *allowed = NULL, *gain = NULL, *held = NULL;
    ptrdiff_t *queue = NULL;
    const ptrdiff_t w = width;
    for (ptrdiff_t i = 0; i < n; ++i) {
        if (!(fabs(y[i]) > ceiling))
            continue;
        if (allowed == NULL) {
            allowed = malloc((size_t)(3 * n) * sizeof(double));
            queue = malloc((size_t)n * sizeof(ptrdiff_t));
            if (allowed == NULL || queue == NULL) {
                free(allowed);
                free(queue);
                return SSGS_ERR_NOMEM;
            }
            gain = allowed + n;
            held = gain + n;
        }
        ptrdiff_t last = i;
        for (ptrdiff_t j = i + 1; j < n && j <= last + 4 * w; ++j)
            if (fabs(y[j]) > ceiling)
                last = j;
        const ptrdiff_t a0 = i - 4 * w < 0 ? 0 : i - 4 * w, a1 = last + 4 * w + 1 < n ? last + 4 * w + 1 : n;
        for (ptrdiff_t j = a0; j < a1; ++j) {
            const double m = fabs(y[j]) > 1e-300 ? fabs(y[j]) : 1e-300;
            allowed[j] = ceiling / m;
        }
        ptrdiff_t lo, hi;
        stretch_gain(allowed, n, w, i, last, queue, held, gain, &lo, &hi);
        for (ptrdiff_t t = lo; t < hi; ++t) {
            const double v = y[t] * gain[t]; /* the clip only removes rounding */
            out[t] = v > ceiling ? ceiling : (v < -ceiling ? -ceiling : v);
        }
        i = hi - 1;
    }
    free(allowed);
    free(queue);
    return SSGS_OK;
}

int ssgs_level(const double *y, ptrdiff_t n, const double *log_gain, ptrdiff_t n_frames, ptrdiff_t hop,
               double max_log_ratio, double *out)
{
    if (n < 0 || hop < 1 || n_frames < 1 || n > n_frames * hop || !(max_log_ratio >= 0.0))
        return SSGS_ERR_ARGUMENT;
    double *c = malloc((size_t)n_frames * sizeof(double));
    if (c == NULL)
        return SSGS_ERR_NOMEM;
    for (ptrdiff_t f = 0; f < n_frames; ++f) {
        const ptrdiff_t t0 = f * hop, t1 = t0 + hop < n ? t0 + hop : n;
        const double ms = t1 > t0 ? ssgs_dot(y + t0, y + t0, t1 - t0) / (double)hop : 0.0;
        const double rms = sqrt(ms) > 1e-30 ? sqrt(ms) : 1e-30;
        double r = log_gain[f] - log(rms);
        r = r < -max_log_ratio ? -max_log_ratio : (r > max_log_ratio ? max_log_ratio : r);
        c[f] = exp(r);
    }
    /* linear between hop centres, held before the first and after the last */
    for (ptrdiff_t f = 0; f < n_frames; ++f) {
        const double v = c[f], prv = c[f > 0 ? f - 1 : 0], nxt = c[f + 1 < n_frames ? f + 1 : f];
        const ptrdiff_t t0 = f * hop, t1 = t0 + hop < n ? t0 + hop : n;
        for (ptrdiff_t t = t0; t < t1; ++t) {
            const double u = ((double)(t - t0) + 0.5) / (double)hop - 0.5;
            out[t] = y[t] * (u >= 0.0 ? v + u * (nxt - v) : v + u * (v - prv));
        }
    }
    free(c);
    return SSGS_OK;
}
