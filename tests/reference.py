"""Reference implementations used only by the tests: plain numpy/scipy,
written for clarity, independent of the C kernels they check."""

import itertools

import numpy as np
import scipy.linalg
import scipy.signal
from scipy.special import logsumexp
from scipy.stats import multivariate_normal


def autocorrelation(frame, order):
    n = len(frame)
    return np.array([frame[: n - lag] @ frame[lag:] if lag < n else 0.0 for lag in range(order + 1)])


def lpc_toeplitz(frame, order):
    """LPC by solving the normal equations with scipy (with ssgs's r0 correction)."""
    r = autocorrelation(np.asarray(frame, dtype=np.float64), order)
    r[0] *= 1 + 1e-9
    a = scipy.linalg.solve_toeplitz(r[:order], -r[1 : order + 1])
    err = r[0] + r[1 : order + 1] @ a
    return np.concatenate([[1.0], a]), err


def reflection_from_lpc(a):
    """Reflection coefficients by the step-down (backward Levinson) recursion."""
    a = np.asarray(a, dtype=np.float64)[1:].copy()
    p = len(a)
    k = np.zeros(p)
    for m in range(p, 0, -1):
        km = a[m - 1]
        k[m - 1] = km
        if m > 1:
            a = (a[: m - 1] - km * a[m - 2 :: -1][: m - 1]) / (1 - km * km)
    return k


def lfilter_frames(x, a, hop, inverse, zi_outputs=None):
    """Time-varying FIR A(z) (inverse=False) or all-pole 1/A(z) (inverse=True)
    with scipy.signal.lfilter, one frame at a time, state carried by lfiltic."""
    x = np.asarray(x, dtype=np.float64)
    order = a.shape[1] - 1
    past_in = np.zeros(order)
    past_out = np.zeros(order) if zi_outputs is None else np.asarray(zi_outputs, float)
    out = np.empty_like(x)
    for f in range(a.shape[0]):
        seg = x[f * hop : (f + 1) * hop]
        if inverse:
            zi = scipy.signal.lfiltic([1.0], a[f], past_out[::-1], past_in[::-1])
            y, _ = scipy.signal.lfilter([1.0], a[f], seg, zi=zi)
        else:
            zi = scipy.signal.lfiltic(a[f], [1.0], past_out[::-1], past_in[::-1])
            y, _ = scipy.signal.lfilter(a[f], [1.0], seg, zi=zi)
        out[f * hop : f * hop + len(seg)] = y
        past_in = np.concatenate([past_in, seg])[-order:]
        past_out = np.concatenate([past_out, y])[-order:]
    return out


def gaussian_logpdf(X, means, covars):
    return np.stack(
        [multivariate_normal(means[j], covars[j]).logpdf(X).reshape(len(X)) for j in range(len(means))],
        axis=1,
    )


def forward_backward_log(log_frameprob, startprob, transmat):
    """Forward-backward entirely in the log domain."""
    T, N = log_frameprob.shape
    with np.errstate(divide="ignore"):
        log_start = np.log(startprob)
        log_trans = np.log(transmat)
    log_alpha = np.empty((T, N))
    log_beta = np.zeros((T, N))
    log_alpha[0] = log_start + log_frameprob[0]
    for t in range(1, T):
        log_alpha[t] = logsumexp(log_alpha[t - 1][:, None] + log_trans, axis=0) + log_frameprob[t]
    for t in range(T - 2, -1, -1):
        log_beta[t] = logsumexp(log_trans + (log_frameprob[t + 1] + log_beta[t + 1])[None, :], axis=1)
    ll = logsumexp(log_alpha[-1])
    posteriors = np.exp(log_alpha + log_beta - ll)
    xi = np.zeros((N, N))
    for t in range(T - 1):
        xi += np.exp(log_alpha[t][:, None] + log_trans + (log_frameprob[t + 1] + log_beta[t + 1])[None, :] - ll)
    return ll, posteriors, xi


def enumerate_paths(log_frameprob, startprob, transmat):
    """Every state path of a tiny model, with its joint log-probability."""
    T, N = log_frameprob.shape
    with np.errstate(divide="ignore"):
        log_start = np.log(startprob)
        log_trans = np.log(transmat)
    paths = np.array(list(itertools.product(range(N), repeat=T)))
    lp = log_start[paths[:, 0]] + log_frameprob[0, paths[:, 0]]
    for t in range(1, T):
        lp = lp + log_trans[paths[:, t - 1], paths[:, t]] + log_frameprob[t, paths[:, t]]
    return paths, lp


def brute_force(log_frameprob, startprob, transmat):
    """Likelihood, posteriors, xi sum and best path by summing over every path."""
    T, N = log_frameprob.shape
    paths, lp = enumerate_paths(log_frameprob, startprob, transmat)
    ll = logsumexp(lp)
    w = np.exp(lp - ll)
    posteriors = np.zeros((T, N))
    xi = np.zeros((N, N))
    for t in range(T):
        np.add.at(posteriors[t], paths[:, t], w)
        if t + 1 < T:
            np.add.at(xi, (paths[:, t], paths[:, t + 1]), w)
    best = int(np.argmax(lp))
    return ll, posteriors, xi, lp[best], paths[best]


def estep_reference(X, lengths, startprob, transmat, means, covars):
    """The E-step statistics from the log-domain reference, sequence by sequence."""
    N, D = means.shape
    lf = gaussian_logpdf(X, means, covars)
    out = dict(ll=[], occ=np.zeros(N), start=np.zeros(N), xi=np.zeros((N, N)),
               m1=np.zeros((N, D)), m2=np.zeros((N, D, D)), post=[])
    offset = 0
    for n in lengths:
        ll, post, xi = forward_backward_log(lf[offset : offset + n], startprob, transmat)
        x = X[offset : offset + n]
        out["ll"].append(ll)
        out["occ"] += post.sum(0)
        out["start"] += post[0]
        out["xi"] += xi
        for j in range(N):
            d = x - means[j]
            out["m1"][j] += post[:, j] @ d
            out["m2"][j] += (post[:, j, None] * d).T @ d
        out["post"].append(post)
        offset += n
    out["post"] = np.concatenate(out["post"])
    return out


def m_step(stats, means, n_sequences):
    """The exact Baum-Welch M-step from centred statistics (no floor or prior,
    so EM's guarantee that the likelihood never falls applies)."""
    occ = stats.occupancy
    startprob = stats.start_occupancy / n_sequences
    transmat = stats.xi_sum / stats.xi_sum.sum(axis=1, keepdims=True)
    delta = stats.moment1 / occ[:, None]
    covars = stats.moment2 / occ[:, None, None] - delta[:, :, None] * delta[:, None, :]
    covars = 0.5 * (covars + covars.transpose(0, 2, 1))
    return startprob, transmat, means + delta, covars
