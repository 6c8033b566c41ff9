# ssgs.ckernels: the ssgs kernels for other Cython extensions.
#
#     # distutils: include_dirs = <ssgs.get_include()>
#     from ssgs.ckernels cimport estep, SSGS_OK
#
# Each function is the C kernel of the same name with the "ssgs_" prefix
# dropped (documented argument by argument in the headers under
# ssgs.get_include()); call them with or without the GIL. They take raw
# pointers and do no validation: check inputs as ssgs.kernels does.
# Linking is not needed: Cython fetches the functions from this module at
# import time.
from libc.stddef cimport ptrdiff_t
from libc.stdint cimport int64_t, uint8_t, uint64_t

cdef extern from "ssgs_common.h" nogil:
    enum:
        SSGS_KERNELS_VERSION
        SSGS_MAX_ORDER
        SSGS_OK
        SSGS_ERR_NOMEM
        SSGS_ERR_NOT_POSITIVE_DEFINITE
        SSGS_ERR_ZERO_PROBABILITY
        SSGS_ERR_NONFINITE
        SSGS_ERR_ARGUMENT

cdef extern from "ssgs_synth.h" nogil:
    enum:
        SSGS_EXCITATION_NOISE
        SSGS_EXCITATION_KARPLUS_STRONG
        SSGS_EXCITATION_PULSES

cdef int lpc_analysis_f64(const double *frames, ptrdiff_t n_frames, ptrdiff_t frame_len,
                          int order, const double *lag_window, int n_threads, double *a,
                          double *k, double *err, ptrdiff_t *err_index) noexcept nogil
cdef int lpc_analysis_f32(const float *frames, ptrdiff_t n_frames, ptrdiff_t frame_len,
                          int order, const double *lag_window, int n_threads, double *a,
                          double *k, double *err, ptrdiff_t *err_index) noexcept nogil
cdef int lpc_residual(const double *x, ptrdiff_t n, const double *a, ptrdiff_t n_frames,
                      int order, ptrdiff_t hop, const double *zi, double *e) noexcept nogil
cdef int lpc_synthesis(const double *e, ptrdiff_t n, const double *a, ptrdiff_t n_frames,
                       int order, ptrdiff_t hop, double *state, double *y,
                       ptrdiff_t *err_index) noexcept nogil
cdef int gaussian_logpdf(ptrdiff_t T, ptrdiff_t D, ptrdiff_t N, const double *X,
                         const double *means, const double *covars, int n_threads,
                         double *log_frameprob, ptrdiff_t *err_index) noexcept nogil
cdef int forward_backward(ptrdiff_t T, ptrdiff_t N, const double *log_frameprob,
                          const double *startprob, const double *transmat,
                          double *log_likelihood, double *posteriors, double *xi_sum,
                          ptrdiff_t *err_index) noexcept nogil
cdef int viterbi(ptrdiff_t T, ptrdiff_t N, const double *log_frameprob,
                 const double *startprob, const double *transmat, double *log_prob,
                 int64_t *path) noexcept nogil
cdef int viterbi_log(ptrdiff_t T, ptrdiff_t N, const double *log_frameprob,
                     const double *log_startprob, const double *log_transmat, double *log_prob,
                     int64_t *path) noexcept nogil
cdef int estep(ptrdiff_t T, ptrdiff_t D, ptrdiff_t N, ptrdiff_t S, const double *X,
               const int64_t *lengths, const double *startprob, const double *transmat,
               const double *means, const double *covars, int n_threads,
               double *seq_log_likelihood, double *occupancy, double *start_occupancy,
               double *xi_sum, double *moment1, double *moment2, double *posteriors,
               ptrdiff_t *err_index) noexcept nogil
cdef int sample_states(ptrdiff_t N, const double *startprob, const double *transmat,
                       ptrdiff_t n, uint64_t seed, int64_t *path) noexcept nogil
cdef int pitch(const float *x, ptrdiff_t n, ptrdiff_t n_frames, ptrdiff_t hop, ptrdiff_t window,
               double sample_rate, double fmin, double fmax, int n_threads, double *f0,
               double *periodicity) noexcept nogil
cdef int excitation(int kind, ptrdiff_t n_frames, ptrdiff_t hop, double sample_rate,
                    const double *f0, const double *voicing, const uint8_t *onset,
                    const double *pulse, ptrdiff_t pulse_len, ptrdiff_t pulse_oversampling,
                    uint64_t seed, double *e) noexcept nogil
cdef int lpc_synthesis_smooth(const double *e, ptrdiff_t n, const double *k,
                              const double *log_gain, ptrdiff_t n_frames, int order,
                              ptrdiff_t hop, ptrdiff_t block, double *state, double *y,
                              ptrdiff_t *err_index) noexcept nogil
