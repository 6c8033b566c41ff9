"""State paths: sampled from the HMM (with the training's durations and
silences), from the smooth decoder, or decoded from training frames.

A path is one state index per frame. :func:`model_path` is what fidelity 0
walks; :func:`decoded_path` what a blend follows.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from ssgs import kernels
from ssgs.runs import silence_run_lengths, true_runs

__all__ = [
    "chain_silence_runs",
    "decoded_path",
    "duration_corrected_transitions",
    "model_path",
    "retime_silences",
    "sample_path",
    "smooth_path",
    "with_end",
    "smooth_transition_scores",
]

CHAIN_FRAMES = 200_000  # frames of the model's own chain that rank its silences (see chain_silence_runs)


def duration_corrected_transitions(transmat, mean_run):
    """The transition matrix generation samples paths from: each state's
    self-transition set so that its runs last, on average, as long as its
    runs in the training sequences (``mean_run``), the exits keeping their
    proportions. States without runs, without exits or with a mean run
    below one frame are left as they are (docs/durations-and-silence.md
    says why EM's own self-transitions are not used)."""
    A = np.array(transmat, dtype=np.float64)
    if mean_run is None:
        return A
    for s, run in enumerate(np.asarray(mean_run, dtype=np.float64)):
        exits = 1.0 - A[s, s]
        if not np.isfinite(run) or run < 1.0 or exits <= 0.0:
            continue
        leave = 1.0 / run
        row = A[s] * (leave / exits)
        row[s] = 1.0 - leave
        A[s] = row / row.sum()
    return A


def sample_path(startprob, transmat, n, seed, run_quantiles=None):
    """A state path of ``n`` frames: the Markov chain (``startprob``,
    ``transmat``; :func:`ssgs.kernels.sample_states`, in C) when
    ``run_quantiles`` is None; otherwise a semi-Markov chain. At each entry
    to a state its run length is drawn: from the state's quantiles
    (``run_quantiles[s]``, linear between them, rounded, at least 1) where
    that row is not all zeros, from the geometric the chain gives it
    (1 - transmat[s, s] the chance to leave after each frame) elsewhere;
    then the next state from the row's exits, in their proportions. Where
    every row is geometric the two chains are the same process. A state
    without exits (or with exits too small to leave by) holds to the end.
    The same seed gives the same path."""
    if run_quantiles is None:
        return kernels.sample_states(startprob, transmat, n, seed)
    A = np.asarray(transmat, dtype=np.float64)
    q = np.asarray(run_quantiles, dtype=np.float64)
    N = A.shape[0]
    exits = A * (1.0 - np.eye(N))
    total = exits.sum(axis=1)
    cdf = np.cumsum(exits / np.where(total > 0, total, 1.0)[:, None], axis=1).tolist()
    total = total.tolist()
    own = np.any(q > 0, axis=1).tolist()
    rows = q.tolist()
    grid = np.linspace(0.0, 1.0, q.shape[1]).tolist()
    start = np.cumsum(np.asarray(startprob, dtype=np.float64)).tolist()
    rng = np.random.default_rng(seed)
    u = (1.0 - rng.random(2 * n + 1)).tolist()  # (0, 1]: at most two draws per run, runs <= n
    out = np.empty(n, np.int64)
    s = min(bisect.bisect_left(start, u[0] * start[-1]), N - 1)
    t, k = 0, 1
    while t < n:
        leave = total[s]  # the chance to leave after each frame
        stuck = leave <= 0.0 or (leave < 1.0 and math.log1p(-leave) == 0.0)
        if stuck:  # no exits (or too few to draw one): the state holds to the end
            d = n - t
        elif own[s]:
            i = min(bisect.bisect_left(grid, u[k]), len(grid) - 1)
            lo = max(i - 1, 0)
            w = 0.0 if i == lo else (u[k] - grid[lo]) / (grid[i] - grid[lo])
            d = max(1, int(round(rows[s][lo] + w * (rows[s][i] - rows[s][lo]))))
        elif leave >= 1.0:
            d = 1
        else:
            d = 1 + int(min(math.log(u[k]) / math.log1p(-leave), n))
        out[t:t + d] = s
        t += d
        if stuck:
            break
        s = min(bisect.bisect_left(cdf[s], u[k + 1] * cdf[s][-1]), N - 1)
        k += 2
    return out


def chain_silence_runs(transmat, start, exc, n_frames=CHAIN_FRAMES, seed=0):
    """Sorted lengths of the stretches of silent states (silence share
    SILENT_STATE or more) in ``n_frames`` of the Markov chain (``start``,
    ``transmat``): how long, and (their number over ``n_frames``) how often,
    the chain itself goes silent, for :func:`retime_silences`. Empty
    without silent states."""
    if not exc.silent_states.any():
        return np.zeros(0, np.int64)
    path = sample_path(start, transmat, n_frames, seed, exc.run_quantiles)
    return np.sort(silence_run_lengths(exc.silent_states[path]))


def retime_silences(path, exc, rng, chain_runs=None, chain_frames=CHAIN_FRAMES):
    """A sampled state path with each stretch of silent states
    (silence share SILENT_STATE or more) as long as a stretch of digital
    silence in training (``exc.silence_runs``, by its quantiles), the
    stretch's states spread over it in order, and as many such stretches
    per frame as the training had (``exc.silence_rate``). The path's
    length changes.

    Which length: the one at the stretch's rank among the chain's own
    stretches (``chain_runs``, sorted, from :func:`chain_silence_runs`
    over ``chain_frames`` frames; ties broken at random): the chain's long
    silences (after a phrase, say) become the training's long ones, its
    short ones (between words) short ones. Without ``chain_runs``, a
    length drawn at random.

    How many: when the chain's stretches (``chain_runs`` over
    ``chain_frames``) come more often than ``exc.silence_rate``, each is
    kept with the ratio of the two as its probability and the others leave
    the path (the sound goes on), so silence comes as often, and lasts as
    long, as in training. Unchanged without
    ``silence_runs`` or silent states."""
    path = np.asarray(path)
    if exc.silence_runs is None or path.size == 0:
        return path
    starts, ends = true_runs(exc.silent_states[path])
    if starts.size == 0:
        return path
    own = ends - starts
    u = rng.random(own.size)
    ranked = chain_runs is not None and len(chain_runs) > 0
    if ranked:
        lo = np.searchsorted(chain_runs, own, side="left")
        hi = np.searchsorted(chain_runs, own, side="right")
        u = (lo + (hi - lo) * u) / len(chain_runs)
    grid = np.linspace(0.0, 1.0, exc.silence_runs.shape[0])
    lengths = np.maximum(1, np.rint(np.interp(u, grid, exc.silence_runs))).astype(np.int64)
    if ranked and exc.silence_rate is not None:
        keep = float(exc.silence_rate) * chain_frames / len(chain_runs)
        if keep < 1.0:
            lengths[rng.random(own.size) >= keep] = 0
    pieces, last = [], 0
    for a, b, n in zip(starts, ends, lengths):
        pieces += [path[last:a], path[a + (np.arange(n) * (b - a)) // n]]
        last = b
    pieces.append(path[last:])
    return np.concatenate(pieces)


def smooth_transition_scores(params, weight, occupancy=None):
    """Pairwise scores of the smooth decoder:
    ``(1 - w) log A_ij - w d_ij``, d_ij the squared distance between the
    states' means in units of the model's overall standard deviation per
    dimension, scaled so its mean over distinct pairs is 1 (so w trades
    like against like). Forbidden transitions stay forbidden."""
    means, covars = params.means, params.covars
    N, D = means.shape
    share = np.full(N, 1.0 / N) if occupancy is None else occupancy / occupancy.sum()
    centre = share @ means
    var = share @ np.diagonal(covars, axis1=1, axis2=2) + share @ (means - centre) ** 2
    z = means / np.sqrt(np.maximum(var, 1e-12))
    d = np.square(z[:, None, :] - z[None, :, :]).sum(axis=2)
    off = d[~np.eye(N, dtype=bool)]
    if off.size and off.mean() > 0:
        d = d / off.mean()
    with np.errstate(divide="ignore"):
        log_a = np.log(params.transmat)
    scores = (1.0 - weight) * np.where(np.isfinite(log_a), log_a, 0.0) - weight * d
    return np.where(params.transmat > 0, scores, -np.inf)


def smooth_path(params, n_frames, rng, weight, occupancy=None, start=None):
    """A state path from the smooth decoder at fidelity 0: the dynamic
    program (C) maximises transition scores (see
    :func:`smooth_transition_scores`) plus Gumbel noise per frame and state,
    a perturb-and-MAP draw that favours moves between similar states."""
    scores = smooth_transition_scores(params, weight, occupancy)
    start = params.startprob if start is None else start
    with np.errstate(divide="ignore"):
        log_start = np.log(start)
    gumbel = -np.log(-np.log(rng.uniform(1e-300, 1.0, (n_frames, params.n_states))))
    return kernels.viterbi_log(gumbel, log_start, scores)[1]


def with_end(transmat, end, mean_run=None):
    """The transitions with an end state (index N, absorbing) added:
    [N + 1, N + 1]. A state's exits (1 - its self-transition) go to the end
    with its share ``end[s]`` of runs that end a sequence, to the other
    states in their proportions with the rest; a state that ends runs but
    has no other exit leaves after its mean run (``mean_run[s]``, one frame
    without it) to the end alone."""
    A = np.asarray(transmat, dtype=np.float64)
    N = A.shape[0]
    out = np.zeros((N + 1, N + 1))
    out[:N, :N] = A
    out[N, N] = 1.0
    for s, share in enumerate(np.asarray(end, dtype=np.float64)):
        if share <= 0.0:
            continue
        leave = 1.0 - A[s, s]
        others = leave > 0.0 and share < 1.0
        if leave <= 0.0:
            run = 1.0 if mean_run is None else max(float(mean_run[s]), 1.0)
            leave = 1.0 / run
        out[s, :N] *= (1.0 - share) if others else 0.0
        out[s, s] = 1.0 - leave
        out[s, N] = leave * share if others else leave
        out[s] /= out[s].sum()
    return out


def model_path(voice, n_frames, rng, decoder="sample"):
    """A state path of ``n_frames`` for fidelity 0, read as an excerpt of an
    endless succession of training-like pieces: its first state drawn from
    the states' share of the training frames and its first chain running
    for a random part of a training sequence's length; then chains from
    the start distribution, each as long as a training sequence drawn at
    random (``voice.piece_lengths``), or shorter: a model that knows where
    its training's sequences ended (``end``) ends a chain where a run of a
    state ends as often as the training's runs of the state ended a
    sequence (:func:`with_end`; not with the smooth decoder). The chains
    follow the
    duration-corrected transitions (:func:`duration_corrected_transitions`,
    :func:`sample_path`), or with ``decoder='smooth'`` the smooth decoder
    (:func:`smooth_path`); each stretch of silent states is retimed
    (:func:`retime_silences`). ``voice``: a :class:`ssgs.synthesis.voice.Voice`."""
    params, exc = voice.params, voice.excitation
    lengths, occupancy, transmat, quantiles = voice.piece_lengths, exc.occupancy, voice.transitions(), exc.run_quantiles
    ends = exc.end is not None and decoder != "smooth"
    if ends:  # the end is one more state, absorbing, never a start; it has geometric runs
        transmat = with_end(transmat, exc.end, exc.mean_run)
        if quantiles is not None:
            quantiles = np.vstack([quantiles, np.zeros((1, quantiles.shape[1]), quantiles.dtype)])
    chain_runs = voice.chain_runs()
    pieces, total = [], 0
    while total < n_frames:
        take = n_frames - total if not lengths else min(n_frames - total, int(rng.choice(lengths)))
        start = params.startprob
        if total == 0:  # (a first piece all of dropped silence leaves nothing: still the first)
            start = occupancy / occupancy.sum()
            if lengths:
                take = min(take, int(rng.integers(1, int(rng.choice(lengths)) + 1)))
        if decoder == "smooth":
            piece = smooth_path(params, take, rng, voice.smoothness_weight, occupancy, start)
        else:
            start = np.append(start, 0.0) if ends else start
            piece = sample_path(start, transmat, take, int(rng.integers(2**63)), quantiles)
            piece = piece[piece < params.means.shape[0]]  # up to the end state: the rest holds it
        pieces.append(retime_silences(piece, exc, rng, chain_runs))
        total += pieces[-1].size
    return np.concatenate(pieces)[:n_frames]


def decoded_path(voice, X, decoder="sample"):
    """The state path of a training sequence's observations ``X`` [F, D]:
    Viterbi, or with ``decoder='smooth'`` the dynamic program that also
    charges the distance between consecutive states
    (:func:`smooth_transition_scores`, ``voice.smoothness_weight``)."""
    p = voice.params
    logp = kernels.gaussian_logpdf(X, p.means, p.covars, n_threads=voice.n_threads)
    if decoder == "smooth":
        scores = smooth_transition_scores(p, voice.smoothness_weight, voice.excitation.occupancy)
        with np.errstate(divide="ignore"):
            return kernels.viterbi_log(logp, np.log(p.startprob), scores)[1]
    return kernels.viterbi(logp, p.startprob, p.transmat)[1]
