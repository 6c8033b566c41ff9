# cython: language_level=3
"""The ssgs kernels as C functions for other Cython extensions (see ckernels.pxd)."""
from libc.stddef cimport ptrdiff_t
from libc.stdint cimport int64_t, uint8_t, uint64_t
cimport ssgs._core.cdefs as c


cdef int lpc_analysis_f64(const double *frames, ptrdiff_t n_frames, ptrdiff_t frame_len,
                          int order, const double *lag_window, int n_threads, double *a,
                          double *k, double *err, ptrdiff_t *err_index) noexcept nogil:
    return c.ssgs_lpc_analysis_f64(frames, n_frames, frame_len, order, lag_window, n_threads, a,
                                   k, err, err_index)


cdef int lpc_analysis_f32(const float *frames, ptrdiff_t n_frames, ptrdiff_t frame_len,
                          int order, const double *lag_window, int n_threads, double *a,
                          double *k, double *err, ptrdiff_t *err_index) noexcept nogil:
    return c.ssgs_lpc_analysis_f32(frames, n_frames, frame_len, order, lag_window, n_threads, a,
                                   k, err, err_index)


cdef int lpc_residual(const double *x, ptrdiff_t n, const double *a, ptrdiff_t n_frames,
                      int order, ptrdiff_t hop, const double *zi, double *e) noexcept nogil:
    return c.ssgs_lpc_residual(x, n, a, n_frames, order, hop, zi, e)


cdef int lpc_synthesis(const double *e, ptrdiff_t n, const double *a, ptrdiff_t n_frames,
                       int order, ptrdiff_t hop, double *state, double *y,
                       ptrdiff_t *err_index) noexcept nogil:
    return c.ssgs_lpc_synthesis(e, n, a, n_frames, order, hop, state, y, err_index)


cdef int gaussian_logpdf(ptrdiff_t T, ptrdiff_t D, ptrdiff_t N, const double *X,
                         const double *means, const double *covars, int n_threads,
                         double *log_frameprob, ptrdiff_t *err_index) noexcept nogil:
    return c.ssgs_gaussian_logpdf(T, D, N, X, means, covars, n_threads, log_frameprob,
                                  err_index)


cdef int forward_backward(ptrdiff_t T, ptrdiff_t N, const double *log_frameprob,
                          const double *startprob, const double *transmat,
                          double *log_likelihood, double *posteriors, double *xi_sum,
                          ptrdiff_t *err_index) noexcept nogil:
    return c.ssgs_forward_backward(T, N, log_frameprob, startprob, transmat, log_likelihood,
                                   posteriors, xi_sum, err_index)


cdef int viterbi(ptrdiff_t T, ptrdiff_t N, const double *log_frameprob,
                 const double *startprob, const double *transmat, double *log_prob,
                 int64_t *path) noexcept nogil:
    return c.ssgs_viterbi(T, N, log_frameprob, startprob, transmat, log_prob, path)


cdef int viterbi_log(ptrdiff_t T, ptrdiff_t N, const double *log_frameprob,
                     const double *log_startprob, const double *log_transmat, double *log_prob,
                     int64_t *path) noexcept nogil:
    return c.ssgs_viterbi_log(T, N, log_frameprob, log_startprob, log_transmat, log_prob, path)


cdef int estep(ptrdiff_t T, ptrdiff_t D, ptrdiff_t N, ptrdiff_t S, const double *X,
               const int64_t *lengths, const double *startprob, const double *transmat,
               const double *means, const double *covars, int n_threads,
               double *seq_log_likelihood, double *occupancy, double *start_occupancy,
               double *xi_sum, double *moment1, double *moment2, double *posteriors,
               ptrdiff_t *err_index) noexcept nogil:
    return c.ssgs_estep(T, D, N, S, X, lengths, startprob, transmat, means, covars, n_threads,
                        seq_log_likelihood, occupancy, start_occupancy, xi_sum, moment1,
                        moment2, posteriors, err_index)


cdef int sample_states(ptrdiff_t N, const double *startprob, const double *transmat,
                       ptrdiff_t n, uint64_t seed, int64_t *path) noexcept nogil:
    return c.ssgs_sample_states(N, startprob, transmat, n, seed, path)


cdef int pitch(const float *x, ptrdiff_t n, ptrdiff_t n_frames, ptrdiff_t hop, ptrdiff_t window,
               double sample_rate, double fmin, double fmax, int n_threads, double *f0,
               double *periodicity) noexcept nogil:
    return c.ssgs_pitch(x, n, n_frames, hop, window, sample_rate, fmin, fmax, n_threads, f0,
                        periodicity)


cdef int excitation(int kind, ptrdiff_t n_frames, ptrdiff_t hop, double sample_rate,
                    const double *f0, const double *voicing, const uint8_t *onset,
                    const double *pulse, ptrdiff_t pulse_len, ptrdiff_t pulse_oversampling,
                    uint64_t seed, double *e) noexcept nogil:
    return c.ssgs_excitation(kind, n_frames, hop, sample_rate, f0, voicing, onset, pulse,
                             pulse_len, pulse_oversampling, seed, e)


cdef int lpc_synthesis_smooth(const double *e, ptrdiff_t n, const double *k,
                              const double *log_gain, ptrdiff_t n_frames, int order,
                              ptrdiff_t hop, ptrdiff_t block, double *state, double *y,
                              ptrdiff_t *err_index) noexcept nogil:
    return c.ssgs_lpc_synthesis_smooth(e, n, k, log_gain, n_frames, order, hop, block, state, y,
                                       err_index)
