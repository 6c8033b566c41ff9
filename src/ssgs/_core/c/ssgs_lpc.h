/*
 * ssgs_lpc.h: linear prediction kernels.
 *
 * The prediction-error filter is A(z) = 1 + sum_{i=1..p} a[i] z^-i, stored as
 * a[0..p] with a[0] == 1. Time-varying filters take one row of p + 1
 * coefficients per frame; frame f rules samples [f*hop, (f+1)*hop).
 */
#ifndef SSGS_LPC_H
#define SSGS_LPC_H

#include "ssgs_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * LPC analysis of windowed frames: autocorrelation (lags 0..order, with the
 * white-noise correction r[0] *= 1 + 1e-9), then Levinson-Durbin.
 *
 *   frames      [n_frames, frame_len] input, already windowed
 *   n_frames    number of frames (>= 0)
 *   frame_len   samples per frame (>= 1)
 *   order       prediction order, 1..SSGS_MAX_ORDER
 *   lag_window  [order + 1] factors applied to r[0..order] after the
 *               white-noise correction (a lag window and/or a stronger
 *               noise floor, to bound the filter's resonances), or NULL
 *   n_threads   OpenMP threads over frames (<= 0: all)
 *   a           [n_frames, order + 1] output, a[f, 0] == 1
 *   k           [n_frames, order] output, reflection coefficients: k[m-1] is
 *               the last coefficient of the order-m predictor (|k| < 1)
 *   err         [n_frames] output, final prediction-error power
 *   err_index   receives the first frame whose energy is not finite
 *
 * A frame with r[0] == 0 (silence) gives a = [1, 0, ...], k = 0, err = 0.
 * If the recursion meets |k| >= 1 (a numerically singular frame) it stops
 * there: the remaining coefficients are 0 and the filter stays minimum phase.
 * Returns SSGS_OK, SSGS_ERR_NOMEM, SSGS_ERR_ARGUMENT, or SSGS_ERR_NONFINITE
 * for a frame holding NaN or inf (or samples whose squares overflow); the
 * input need not be checked beforehand.
 */
int ssgs_lpc_analysis_f64(const double *frames, ptrdiff_t n_frames, ptrdiff_t frame_len,
                          int order, const double *lag_window, int n_threads, double *a,
                          double *k, double *err, ptrdiff_t *err_index);

/* As ssgs_lpc_analysis_f64 for float32 frames (arithmetic in float64). */
int ssgs_lpc_analysis_f32(const float *frames, ptrdiff_t n_frames, ptrdiff_t frame_len,
                          int order, const double *lag_window, int n_threads, double *a,
                          double *k, double *err, ptrdiff_t *err_index);

/*
 * Levinson-Durbin on one autocorrelation sequence r[0..order] (no correction
 * applied here). Outputs as in ssgs_lpc_analysis_f64 for a single frame.
 */
void ssgs_levinson(const double *r, int order, double *a, double *k, double *err);

/*
 * Residual of the time-varying FIR A(z): e[n] = x[n] + sum_i a_f[i] x[n-i].
 *
 *   x          [n] input signal
 *   n          samples; n_frames must equal ceil(n / hop)
 *   a          [n_frames, order + 1] coefficients
 *   hop        samples per frame (>= 1)
 *   zi         [order] input history x[-order..-1] (oldest first), or NULL
 *              for zeros
 *   e          [n] output residual
 */
int ssgs_lpc_residual(const double *x, ptrdiff_t n, const double *a, ptrdiff_t n_frames,
                      int order, ptrdiff_t hop, const double *zi, double *e);

/*
 * Time-varying all-pole synthesis 1/A(z): y[n] = e[n] - sum_i a_f[i] y[n-i].
 *
 *   e          [n] excitation
 *   state      [order] in: output history y[-order..-1] (oldest first);
 *              out: the last order outputs, ready for the next call
 *   y          [n] output
 *   err_index  receives the first frame whose output is not finite
 *
 * Returns SSGS_OK, or SSGS_ERR_NONFINITE when the filter is unstable enough
 * to overflow (y then holds what was computed).
 */
int ssgs_lpc_synthesis(const double *e, ptrdiff_t n, const double *a, ptrdiff_t n_frames,
                       int order, ptrdiff_t hop, double *state, double *y,
                       ptrdiff_t *err_index);

/*
 * Pitch of each frame: F0 and periodicity from the normalised
 * cross-correlation (NCCF) of x over a window centred on the frame's hop
 * region, searched coarsely on a decimated copy, checked against octave
 * errors, then refined at full rate with parabolic interpolation.
 *
 *   x            [n] signal (the LPC residual works best: the filter's
 *                resonances do not compete with the pitch)
 *   n_frames     frames; frame f rules samples [f*hop, (f+1)*hop)
 *   window       analysis window length (zero-padded beyond x's ends)
 *   sample_rate  in Hz
 *   fmin, fmax   search range in Hz (0 < fmin < fmax < sample_rate / 2)
 *   f0           [n_frames] output, Hz (0 for a silent window)
 *   periodicity  [n_frames] output, the NCCF peak clipped to [0, 1]: about
 *                the periodic share of the window's power
 */
int ssgs_pitch(const float *x, ptrdiff_t n, ptrdiff_t n_frames, ptrdiff_t hop, ptrdiff_t window,
               double sample_rate, double fmin, double fmax, int n_threads,
               double *f0, double *periodicity);

#ifdef __cplusplus
}
#endif
#endif
