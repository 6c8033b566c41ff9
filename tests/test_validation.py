"""Bad input to ssgs.kernels: a ValueError naming the argument, never a crash."""

import numpy as np
import pytest

from ssgs import kernels

rng = np.random.default_rng(0)
FRAMES = rng.normal(size=(4, 64))
X = rng.normal(size=(20, 2))
MEANS = np.zeros((3, 2))
COVARS = np.stack([np.eye(2)] * 3)
START = np.full(3, 1 / 3)
TRANS = np.full((3, 3), 1 / 3)
LOGP = rng.normal(size=(20, 3))
A = np.tile([1.0, -0.5, 0.1], (4, 1))
SIG = rng.normal(size=100)


def with_value(arr, index, value):
    arr = np.array(arr, dtype=float)
    arr[index] = value
    return arr


CASES = {
    # excitation
    "excitation kind": (lambda: kernels.excitation("sine", np.full(3, 100.0), np.ones(3), np.zeros(3), 16, 16000, 1), r"kind must be one of noise, karplus-strong, pulses; got 'sine'"),
    "excitation f0 zero": (lambda: kernels.excitation("noise", [100.0, 0.0, 100.0], np.ones(3), np.zeros(3), 16, 16000, 1), r"f0 must lie in \[20, sample_rate / 2\) Hz, got 0.0 at frame 1"),
    "excitation f0 too low": (lambda: kernels.excitation("karplus-strong", [5.0, 100.0], np.ones(2), np.zeros(2), 16, 16000, 1), r"f0 must lie in .* got 5.0 at frame 0"),
    "excitation f0 at Nyquist": (lambda: kernels.excitation("pulses", [100.0, 8000.0], np.ones(2), np.zeros(2), 16, 16000, 1, pulse=[1.0]), r"f0 must lie in .* got 8000.0 at frame 1"),
    "excitation f0 NaN": (lambda: kernels.excitation("noise", [100.0, np.nan], np.ones(2), np.zeros(2), 16, 16000, 1), r"f0.* contains NaN or inf"),
    "excitation sample rate": (lambda: kernels.excitation("noise", [100.0], [1.0], [0], 16, 30, 1), r"sample_rate must be above 40 Hz, got 30"),
    "excitation voicing": (lambda: kernels.excitation("noise", np.full(2, 100.0), [0.5, 1.5], np.zeros(2), 16, 16000, 1), r"voicing must lie in \[0, 1\]"),
    "excitation lengths": (lambda: kernels.excitation("noise", np.full(3, 100.0), np.ones(2), np.zeros(3), 16, 16000, 1), r"f0, voicing and onset must have the same length"),
    "excitation no pulse": (lambda: kernels.excitation("pulses", np.full(2, 100.0), np.ones(2), np.zeros(2), 16, 16000, 1), r'kind="pulses" needs a pulse shape'),
    # lpc_analysis
    "frames 1-D": (lambda: kernels.lpc_analysis(FRAMES[0], 4), r"frames must be 2-D"),
    "frames complex": (lambda: kernels.lpc_analysis(FRAMES + 1j, 4), r"frames must hold real numbers"),
    "frames NaN": (lambda: kernels.lpc_analysis(with_value(FRAMES, (2, 3), np.nan), 4), r"frames\[2\] contains NaN or inf"),
    "frames inf": (lambda: kernels.lpc_analysis(with_value(FRAMES, (0, 0), -np.inf), 4), r"frames\[0\] contains NaN or inf"),
    "frames overflow": (lambda: kernels.lpc_analysis(with_value(FRAMES, (3, 7), 1e200), 4), r"frames\[3\] contains NaN or inf \(or samples so large"),
    "frames float32 NaN": (lambda: kernels.lpc_analysis(with_value(FRAMES, (1, 0), np.nan).astype(np.float32), 4), r"frames\[1\] contains NaN"),
    "frames empty rows": (lambda: kernels.lpc_analysis(np.zeros((3, 0)), 4), r"frames must have at least one sample"),
    "order 0": (lambda: kernels.lpc_analysis(FRAMES, 0), r"order must be >= 1, got 0"),
    "order too big": (lambda: kernels.lpc_analysis(FRAMES, 257), r"order must be <= 256"),
    "order float": (lambda: kernels.lpc_analysis(FRAMES, 4.0), r"order must be an integer"),
    "order bool": (lambda: kernels.lpc_analysis(FRAMES, True), r"order must be an integer"),
    "n_threads negative": (lambda: kernels.lpc_analysis(FRAMES, 4, n_threads=-1), r"n_threads must be >= 0"),
    "n_threads string": (lambda: kernels.lpc_analysis(FRAMES, 4, n_threads="2"), r"n_threads must be an integer"),
    # lpc_residual / lpc_synthesis
    "x 2-D": (lambda: kernels.lpc_residual(FRAMES, A, 64), r"x must be 1-D"),
    "x NaN": (lambda: kernels.lpc_residual(with_value(SIG, 5, np.nan), A, 25), r"x contains NaN or inf \(first at index \(5,\)\)"),
    "a 1-D": (lambda: kernels.lpc_residual(SIG, A[0], 25), r"a must be 2-D"),
    "a not monic": (lambda: kernels.lpc_synthesis(SIG, with_value(A, (2, 0), 2.0), 25), r"a\[2, 0\] is 2.0; every row of a must start with 1"),
    "a order 0": (lambda: kernels.lpc_synthesis(SIG, np.ones((4, 1)), 25), r"a must have at least 2 columns"),
    "a NaN": (lambda: kernels.lpc_synthesis(SIG, with_value(A, (1, 2), np.nan), 25), r"a contains NaN or inf"),
    "a frame count": (lambda: kernels.lpc_synthesis(SIG, A, 20), r"a has 4 frames but e has 100 samples, which at hop 20 need ceil\(100/20\) = 5"),
    "hop 0": (lambda: kernels.lpc_residual(SIG, A, 0), r"hop must be >= 1"),
    "zi length": (lambda: kernels.lpc_synthesis(SIG, A, 25, zi=np.zeros(3)), r"zi must have 2 samples"),
    "zi NaN": (lambda: kernels.lpc_synthesis(SIG, A, 25, zi=[np.nan, 0.0]), r"zi contains NaN"),
    # gaussian_logpdf
    "X 1-D": (lambda: kernels.gaussian_logpdf(X[:, 0], MEANS, COVARS), r"X must be 2-D"),
    "X inf": (lambda: kernels.gaussian_logpdf(with_value(X, (3, 1), np.inf), MEANS, COVARS), r"X contains NaN or inf \(first at index \(3, 1\)\)"),
    "means features": (lambda: kernels.gaussian_logpdf(X, np.zeros((3, 3)), COVARS), r"means has 3 features but X has 2"),
    "covars shape": (lambda: kernels.gaussian_logpdf(X, MEANS, COVARS[:2]), r"covars must have shape \(3, 2, 2\)"),
    "covars NaN": (lambda: kernels.gaussian_logpdf(X, MEANS, with_value(COVARS, (1, 0, 0), np.nan)), r"covars contains NaN"),
    "covars asymmetric": (lambda: kernels.gaussian_logpdf(X, MEANS, with_value(COVARS, (2, 0, 1), 0.5)), r"covars\[2\] \(state 2\) is not symmetric"),
    "covars not PD": (lambda: kernels.gaussian_logpdf(X, MEANS, with_value(COVARS, (1, 1, 1), 0.0)), r"covars\[1\] \(state 1\) is not positive definite"),
    # forward_backward / viterbi
    "log_frameprob NaN": (lambda: kernels.forward_backward(with_value(LOGP, (4, 2), np.nan), START, TRANS), r"log_frameprob contains NaN or \+inf"),
    "log_frameprob +inf": (lambda: kernels.viterbi(with_value(LOGP, (4, 2), np.inf), START, TRANS), r"log_frameprob contains NaN or \+inf"),
    "log_frameprob empty": (lambda: kernels.forward_backward(np.zeros((0, 3)), START, TRANS), r"log_frameprob must have at least one frame"),
    "startprob sum": (lambda: kernels.forward_backward(LOGP, [0.5, 0.3, 0.1], TRANS), r"startprob sums to 0.9, not 1"),
    "startprob negative": (lambda: kernels.forward_backward(LOGP, [1.5, -0.5, 0.0], TRANS), r"startprob has a negative entry at index 1"),
    "startprob states": (lambda: kernels.viterbi(LOGP, [0.5, 0.5], np.full((2, 2), 0.5)), r"startprob has 2 states but the emissions have 3"),
    "transmat row": (lambda: kernels.forward_backward(LOGP, START, with_value(TRANS, (1, 1), 0.5)), r"transmat row 1 sums to 1.16666"),
    "transmat negative": (lambda: kernels.viterbi(LOGP, START, [[1, 0, 0], [1.5, -0.5, 0], [0, 0, 1]]), r"transmat has a negative entry at \(1, 1\)"),
    "transmat shape": (lambda: kernels.forward_backward(LOGP, START, np.full((3, 2), 0.5)), r"transmat must have shape \(3, 3\)"),
    # estep
    "lengths sum": (lambda: kernels.estep(X, [10, 9], START, TRANS, MEANS, COVARS), r"lengths sum to 19 but X has 20 frames"),
    "lengths zero": (lambda: kernels.estep(X, [20, 0], START, TRANS, MEANS, COVARS), r"lengths\[1\] is 0"),
    "lengths float": (lambda: kernels.estep(X, [10.0, 10.0], START, TRANS, MEANS, COVARS), r"lengths must be a 1-D sequence of integers"),
    "lengths empty": (lambda: kernels.estep(X[:0], [], START, TRANS, MEANS, COVARS), r"lengths must name at least one sequence"),
    "estep covars not PD": (lambda: kernels.estep(X, [20], START, TRANS, MEANS, with_value(COVARS, (0, 0, 0), -1.0)), r"covars\[0\] \(state 0\) is not positive definite"),
    "estep transmat": (lambda: kernels.estep(X, [20], START, with_value(TRANS, (2, 0), 0.0), MEANS, COVARS), r"transmat row 2 sums to"),
    # sample_states
    "seed negative": (lambda: kernels.sample_states(START, TRANS, 5, seed=-1), r"seed must be in \[0, 2\*\*64\)"),
    "seed too big": (lambda: kernels.sample_states(START, TRANS, 5, seed=2**64), r"seed must be in \[0, 2\*\*64\)"),
    "seed None": (lambda: kernels.sample_states(START, TRANS, 5, seed=None), r"seed must be an integer"),
    "n negative": (lambda: kernels.sample_states(START, TRANS, -1, seed=0), r"n must be >= 0"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_raises_value_error_naming_the_problem(case):
    call, message = CASES[case]
    with pytest.raises(ValueError, match=message):
        call()
