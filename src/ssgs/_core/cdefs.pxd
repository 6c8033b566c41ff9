# The C prototypes of the kernels (src/ssgs/_core/c/*.h), for the Cython
# modules that link the static kernel library. Pure declarations: no module.
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
    int ssgs_have_openmp()
    int ssgs_max_threads()

cdef extern from "ssgs_lpc.h" nogil:
    int ssgs_lpc_analysis_f64(const double *frames, ptrdiff_t n_frames, ptrdiff_t frame_len,
                              int order, const double *lag_window, int n_threads, double *a,
                              double *k, double *err, ptrdiff_t *err_index)
    int ssgs_lpc_analysis_f32(const float *frames, ptrdiff_t n_frames, ptrdiff_t frame_len,
                              int order, const double *lag_window, int n_threads, double *a,
                              double *k, double *err, ptrdiff_t *err_index)
    void ssgs_levinson(const double *r, int order, double *a, double *k, double *err)
    int ssgs_lpc_residual(const double *x, ptrdiff_t n, const double *a, ptrdiff_t n_frames,
                          int order, ptrdiff_t hop, const double *zi, double *e)
    int ssgs_lpc_synthesis(const double *e, ptrdiff_t n, const double *a, ptrdiff_t n_frames,
                           int order, ptrdiff_t hop, double *state, double *y,
                           ptrdiff_t *err_index)
    int ssgs_pitch(const float *x, ptrdiff_t n, ptrdiff_t n_frames, ptrdiff_t hop, ptrdiff_t window,
                   double sample_rate, double fmin, double fmax, int n_threads,
                   double *f0, double *periodicity)

cdef extern from "ssgs_synth.h" nogil:
    enum:
        SSGS_EXCITATION_NOISE
        SSGS_EXCITATION_KARPLUS_STRONG
        SSGS_EXCITATION_PULSES
    int ssgs_excitation(int kind, ptrdiff_t n_frames, ptrdiff_t hop, double sample_rate,
                        const double *f0, const double *voicing, const uint8_t *onset,
                        const double *pulse, ptrdiff_t pulse_len, ptrdiff_t pulse_oversampling,
                        uint64_t seed, double *e)
    int ssgs_lpc_synthesis_smooth(const double *e, ptrdiff_t n, const double *k,
                                  const double *log_gain, ptrdiff_t n_frames, int order,
                                  ptrdiff_t hop, ptrdiff_t block, double *state, double *y,
                                  ptrdiff_t *err_index)

cdef extern from "ssgs_hmm.h" nogil:
    int ssgs_gaussian_logpdf(ptrdiff_t T, ptrdiff_t D, ptrdiff_t N, const double *X,
                             const double *means, const double *covars, int n_threads,
                             double *log_frameprob, ptrdiff_t *err_index)
    int ssgs_forward_backward(ptrdiff_t T, ptrdiff_t N, const double *log_frameprob,
                              const double *startprob, const double *transmat,
                              double *log_likelihood, double *posteriors, double *xi_sum,
                              ptrdiff_t *err_index)
    int ssgs_viterbi(ptrdiff_t T, ptrdiff_t N, const double *log_frameprob,
                     const double *startprob, const double *transmat,
                     double *log_prob, int64_t *path)
    int ssgs_viterbi_log(ptrdiff_t T, ptrdiff_t N, const double *log_frameprob,
                         const double *log_startprob, const double *log_transmat,
                         double *log_prob, int64_t *path)
    int ssgs_estep(ptrdiff_t T, ptrdiff_t D, ptrdiff_t N, ptrdiff_t S, const double *X,
                   const int64_t *lengths, const double *startprob, const double *transmat,
                   const double *means, const double *covars, int n_threads,
                   double *seq_log_likelihood, double *occupancy, double *start_occupancy,
                   double *xi_sum, double *moment1, double *moment2, double *posteriors,
                   ptrdiff_t *err_index)
    int ssgs_estep_continue(ptrdiff_t T, ptrdiff_t D, ptrdiff_t N, ptrdiff_t S, const double *X,
                            const int64_t *lengths, const double *startprob, const double *transmat,
                            const double *means, const double *covars, int n_threads,
                            double *seq_log_likelihood, double *occupancy, double *start_occupancy,
                            double *xi_sum, double *moment1, double *moment2, double *posteriors,
                            ptrdiff_t *err_index)
    int ssgs_sample_states(ptrdiff_t N, const double *startprob, const double *transmat,
                           ptrdiff_t n, uint64_t seed, int64_t *path)


cdef inline int check_status(int status, ptrdiff_t index, str kernel) except -1:
    """Turn a kernel's negative status into the Python exception it stands for."""
    if status == SSGS_OK:
        return 0
    if status == SSGS_ERR_NOMEM:
        raise MemoryError(f"{kernel}: out of memory for scratch space")
    if status == SSGS_ERR_NOT_POSITIVE_DEFINITE:
        raise ValueError(f"covars[{index}] (state {index}) is not positive definite")
    if status == SSGS_ERR_ZERO_PROBABILITY:
        where = "sequence" if kernel == "estep" else "frame"
        raise ValueError(f"{kernel}: {where} {index} has zero probability under the model "
                         f"(no state with non-zero probability can emit it)")
    if status == SSGS_ERR_NONFINITE and kernel == "lpc_analysis":
        raise ValueError(f"frames[{index}] contains NaN or inf "
                         f"(or samples so large that their squares overflow)")
    if status == SSGS_ERR_NONFINITE:  # lpc_synthesis and lpc_synthesis_smooth
        raise FloatingPointError(f"{kernel}: the output overflowed in frame {index}; "
                                 f"the filter a[{index}] is unstable")
    raise ValueError(f"{kernel}: argument out of range (status {status})")
