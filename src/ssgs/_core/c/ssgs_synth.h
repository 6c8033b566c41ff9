/*
 * ssgs_synth.h: synthesis kernels: excitation and smoothly varying all-pole
 * filtering.
 *
 * Frame f rules samples [f*hop, (f+1)*hop); per-frame parameters describe
 * the frame's centre, f*hop + hop/2, and are interpolated in between.
 */
#ifndef SSGS_SYNTH_H
#define SSGS_SYNTH_H

#include "ssgs_common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    SSGS_EXCITATION_NOISE = 0,          /* white noise only */
    SSGS_EXCITATION_KARPLUS_STRONG = 1, /* plucked string + noise */
    SSGS_EXCITATION_PULSES = 2          /* train of pulses of a given shape + noise */
};

/*
 * An excitation of about unit power: a periodic part mixed with noise (white,
 * unit variance, close to Gaussian: a sum of four uniforms), e = sqrt(v) p + sqrt(1 - v) w, the noise high-passed at v * f0
 * (a voiced sound has nothing below its fundamental; unvoiced noise stays
 * full band).
 *
 *   kind         SSGS_EXCITATION_*
 *   n_frames     frames; the output has n_frames * hop samples
 *   hop          samples per frame
 *   sample_rate  in Hz
 *   f0           [n_frames] fundamental in Hz at each frame's centre (> 0);
 *                the period is interpolated linearly per sample
 *   voicing      [n_frames] periodic share v of the power, in [0, 1],
 *                interpolated linearly
 *   onset        [n_frames] non-zero where a note starts: the string is
 *                plucked anew there (frame 0 always plucks; a note that has
 *                faded 40 dB is plucked again)
 *   pulse        [pulse_len] pulse shape for SSGS_EXCITATION_PULSES (NULL
 *                otherwise), tabulated pulse_oversampling points per sample;
 *                one pulse starts at every period boundary, evaluated at its
 *                exact sub-sample position, the train scaled to unit power
 *   seed         the noise and the plucks come from xoshiro256** seeded by
 *                splitmix64(seed): the same seed gives the same samples
 *   e            [n_frames * hop] output
 *
 * The Karplus-Strong string (delay line tuned to f0 with a two-tap loop
 * filter, loop gain for a 1.5 s decay at any pitch, zero-mean plucks and a
 * DC blocker) is normalised to unit power by its RMS per hop, interpolated
 * between hop centres, so its level never jumps at a frame boundary.
 */
int ssgs_excitation(int kind, ptrdiff_t n_frames, ptrdiff_t hop, double sample_rate,
                    const double *f0, const double *voicing, const uint8_t *onset,
                    const double *pulse, ptrdiff_t pulse_len, ptrdiff_t pulse_oversampling,
                    uint64_t seed, double *e);

/*
 * y = g prod(sqrt(1 - k_i^2)) / A(z) e, with A(z) and g varying smoothly.
 * For a unit-power white excitation the output's RMS is g, whatever the
 * spectrum (1/A(z) has power gain 1 / prod(1 - k_i^2) on white input).
 *
 *   e          [n] excitation; n_frames must equal ceil(n / hop)
 *   k          [n_frames, order] reflection coefficients, all |k| < 1, at
 *              the frame centres
 *   log_gain   [n_frames] natural log of the gain g at the frame centres
 *   block      samples between filter updates (>= 1)
 *   state      [order] in: output history (oldest first); out: the last
 *              order outputs, ready for the next call
 *   y          [n] output
 *   err_index  receives the frame where the output overflowed
 *
 * Every block samples the reflection coefficients are interpolated linearly
 * between the neighbouring frame centres (a convex combination of values
 * below 1 in magnitude stays below 1: every block's filter is stable) and
 * turned into a direct-form filter. The direct form's state is the output
 * history itself, so a change of coefficients leaves no transient (a
 * lattice's internal state, built under the old coefficients, does: it
 * sprays high-frequency noise at every update). The gain is interpolated in
 * log between frame centres and linearly within a block. Before the first
 * centre and after the last the parameters are held.
 */
int ssgs_lpc_synthesis_smooth(const double *e, ptrdiff_t n, const double *k,
                              const double *log_gain, ptrdiff_t n_frames, int order,
                              ptrdiff_t hop, ptrdiff_t block, double *state, double *y,
                              ptrdiff_t *err_index);

/*
 * Short-time filtering of an excitation by a gain per frame and frequency:
 * frames of 2 hop samples centred on the hops' centres, square-root
 * periodic Hann windows at 50% overlap (which rebuild the input exactly
 * under a flat gain), each frame's spectrum (a real FFT of 2 hop points)
 * multiplied by its gains, then transformed back, windowed and overlapped.
 *
 *   e          [n_frames * hop] input
 *   hop        a power of two, at least 2
 *   table      [n_rows, hop + 1] gains (amplitude) on the bins of the
 *              2 hop-point transform, one row per state
 *   index      [n_frames] row of the table each frame takes, in [0, n_rows);
 *              the frames half a hop before the first and after the last
 *              take their neighbours' rows
 *   variation  [n_frames, n_bins] or NULL: log power (nats) per frame on
 *              n_bins >= 2 bins from 0 to Nyquist, interpolated linearly
 *              onto the hop + 1 bins; the gains are multiplied by
 *              exp(variation / 2)
 *   out        [n_frames * hop] output
 *
 * Returns SSGS_ERR_ARGUMENT for a hop that is not a power of two or an
 * index out of range. Frames are independent and overlapped in order: the
 * same input gives the same bytes.
 */
int ssgs_shape_excitation(const double *e, ptrdiff_t n_frames, ptrdiff_t hop, const double *table,
                          ptrdiff_t n_rows, const int64_t *index, const double *variation,
                          ptrdiff_t n_bins, double *out);

/*
 * The level stage of rendering: each hop brought to the level the model
 * asked for.
 *
 *   y              [n] rendered audio, n <= n_frames * hop (a missing end
 *                  counts as silence)
 *   log_gain       [n_frames] natural log of each hop's wanted RMS
 *   max_log_ratio  the correction's bound: |log(wanted / measured)| at most this
 *   out            [n] y times the correction, exp(log_gain - log RMS of
 *                  the hop) bounded, interpolated linearly between hop
 *                  centres and held before the first and after the last;
 *                  out may be y
 */
int ssgs_level(const double *y, ptrdiff_t n, const double *log_gain, ptrdiff_t n_frames, ptrdiff_t hop,
               double max_log_ratio, double *out);

/*
 * The largest smooth gain within each sample's allowance (a look-ahead
 * limiter's gain): a = min(1, allowed) held at its minimum over the
 * 2 width + 1 samples centred on each sample (within the signal), then
 * averaged over as many (the held value taken at the nearest sample beyond
 * either end); exactly 1 farther than 2 width from every sample with
 * a < 1. Work is proportional to the limited stretches.
 *
 *   allowed  [n] each sample's largest allowed gain (>= 0, +inf: no limit)
 *   gain     [n] output
 */
int ssgs_smooth_gain(const double *allowed, ptrdiff_t n, ptrdiff_t width, double *gain);

/*
 * A look-ahead limiter: out = y times ssgs_smooth_gain of the allowances
 * ceiling / |y|, clipped to [-ceiling, ceiling] (which only removes
 * rounding); samples farther than 2 width from every sample over the
 * ceiling are copied as they are. out may be y.
 */
int ssgs_peak_limit(const double *y, ptrdiff_t n, ptrdiff_t width, double ceiling, double *out);

#ifdef __cplusplus
}
#endif
#endif
