/*
 * ssgs_hmm.h: Gaussian hidden Markov model kernels (full covariance).
 *
 * Names follow hmmlearn: N states, D features, T frames; startprob [N],
 * transmat [N, N] (rows sum to 1), means [N, D], covars [N, D, D]
 * (symmetric positive definite; only the lower triangle is read),
 * log_frameprob [T, N] = log p(x_t | state).
 */
#ifndef SSGS_HMM_H
#define SSGS_HMM_H

#include "ssgs_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Log density of every frame under every state's Gaussian, through the
 * Cholesky factor of each covariance.
 *
 *   X              [T, D] frames
 *   means          [N, D]
 *   covars         [N, D, D]
 *   n_threads      OpenMP threads over blocks of frames (<= 0: all)
 *   log_frameprob  [T, N] output
 *   err_index      receives the first state whose covariance is not
 *                  positive definite (SSGS_ERR_NOT_POSITIVE_DEFINITE)
 */
int ssgs_gaussian_logpdf(ptrdiff_t T, ptrdiff_t D, ptrdiff_t N, const double *X,
                         const double *means, const double *covars, int n_threads,
                         double *log_frameprob, ptrdiff_t *err_index);

/*
 * Scaled forward-backward for one sequence (Rabiner 1989, eqs. 91-92 with
 * per-frame scaling; the emissions of frame t are shifted by their maximum
 * over the states reachable at t before exponentiation).
 *
 *   log_frameprob  [T, N] input (may hold -inf; not modified)
 *   startprob      [N]
 *   transmat       [N, N]
 *   log_likelihood output: log p(x_0..x_{T-1})
 *   posteriors     [T, N] output: p(state_t = j | x)
 *   xi_sum         [N, N] output: sum_t p(state_t = i, state_{t+1} = j | x)
 *   err_index      receives the frame at which the sequence becomes
 *                  impossible (SSGS_ERR_ZERO_PROBABILITY)
 */
int ssgs_forward_backward(ptrdiff_t T, ptrdiff_t N, const double *log_frameprob,
                          const double *startprob, const double *transmat,
                          double *log_likelihood, double *posteriors, double *xi_sum,
                          ptrdiff_t *err_index);

/*
 * Most likely state path (Viterbi, in the log domain).
 *
 *   log_prob   output: log p(x, path); -inf when every path is impossible
 *   path       [T] output, states 0..N-1 (ties go to the lowest index)
 */
int ssgs_viterbi(ptrdiff_t T, ptrdiff_t N, const double *log_frameprob,
                 const double *startprob, const double *transmat,
                 double *log_prob, int64_t *path);

/*
 * Viterbi over arbitrary log scores: the path maximising
 * log_startprob[s_0] + sum_t log_frameprob[t, s_t] + sum_t log_transmat[s_{t-1}, s_t].
 * Scores may be -inf (forbidden) but not NaN or +inf; they need not be
 * normalised (a transition score can mix log-probability with a penalty,
 * frame scores can be noise). Ties go to the lowest index.
 *
 *   log_startprob  [N]
 *   log_transmat   [N, N]
 *   log_prob       output: the best path's total score
 *   path           [T] output
 */
int ssgs_viterbi_log(ptrdiff_t T, ptrdiff_t N, const double *log_frameprob,
                     const double *log_startprob, const double *log_transmat,
                     double *log_prob, int64_t *path);

/*
 * The E-step of Baum-Welch over S sequences stored back to back in X.
 * Statistics are summed per sequence and the sums reduced in sequence order,
 * so the result is bit-identical for every n_threads. Moments are centred on
 * the given means (the M-step's new mean is means + moment1 / occupancy),
 * which avoids the cancellation of raw sums of x x^T.
 *
 *   X                [T, D] frames of all sequences
 *   lengths          [S] frames per sequence (each >= 1, sum T)
 *   n_threads        OpenMP threads over sequences (<= 0: all)
 * outputs (caller-allocated; overwritten):
 *   seq_log_likelihood [S] log-likelihood of each sequence
 *   occupancy        [N]       sum_t gamma_t(j)
 *   start_occupancy  [N]       sum over sequences of gamma_0(j)
 *   xi_sum           [N, N]    sum_t xi_t(i, j)
 *   moment1          [N, D]    sum_t gamma_t(j) (x_t - means_j)
 *   moment2          [N, D, D] sum_t gamma_t(j) (x_t - means_j)(x_t - means_j)^T
 *   posteriors       [T, N] gamma, or NULL to skip
 *   err_index        the state (not positive definite) or the sequence
 *                    (zero probability) at fault
 *
 * Scratch: per thread O(max length * N + N * D^2), plus a pool of 2 * threads
 * pending per-sequence statistics; never T * N * N.
 */
int ssgs_estep(ptrdiff_t T, ptrdiff_t D, ptrdiff_t N, ptrdiff_t S, const double *X,
               const int64_t *lengths, const double *startprob, const double *transmat,
               const double *means, const double *covars, int n_threads,
               double *seq_log_likelihood, double *occupancy, double *start_occupancy,
               double *xi_sum, double *moment1, double *moment2, double *posteriors,
               ptrdiff_t *err_index);

/*
 * ssgs_estep for the sequences after others: the sums (occupancy,
 * start_occupancy, xi_sum, moment1, moment2) start from the values the
 * outputs hold, another call's sums, instead of zero. Batches of sequences
 * in order then give the bits one call over all of them gives:
 * ((0 + s0) + s1) + ... (moment2's lower triangle is not read).
 */
int ssgs_estep_continue(ptrdiff_t T, ptrdiff_t D, ptrdiff_t N, ptrdiff_t S, const double *X,
                        const int64_t *lengths, const double *startprob, const double *transmat,
                        const double *means, const double *covars, int n_threads,
                        double *seq_log_likelihood, double *occupancy, double *start_occupancy,
                        double *xi_sum, double *moment1, double *moment2, double *posteriors,
                        ptrdiff_t *err_index);

/*
 * A state path of length n drawn from the Markov chain (startprob,
 * transmat), with xoshiro256** seeded by splitmix64(seed). The same seed
 * gives the same path on every platform.
 *
 *   path   [n] output
 */
int ssgs_sample_states(ptrdiff_t N, const double *startprob, const double *transmat,
                       ptrdiff_t n, uint64_t seed, int64_t *path);

#ifdef __cplusplus
}
#endif
#endif
