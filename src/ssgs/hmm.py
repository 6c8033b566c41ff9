"""The Gaussian HMM: initialisation, M-step, EM iterations, diagnostics.

The E-step is :func:`ssgs.kernels.estep` (C, OpenMP over sequences); the rest
is numpy on small arrays. Every random choice draws from the generator passed
in, so a seed fixes the whole run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ssgs import kernels
from ssgs.checks import check_float
from ssgs.frame_store import read_rows, release
from ssgs.runs import sequence_batches

__all__ = [
    "HMMParams",
    "StateSelection",
    "batched_estep",
    "bic",
    "supported_states",
    "em_iteration",
    "floor_covariances",
    "graph_structure",
    "initialize",
    "kmeans_plus_plus",
    "m_step",
    "occupancy_entropy",
    "parameters_from_labels",
    "prune_states",
    "select_state_rows",
    "smoothness_penalty",
]

_CHUNK = 8192


@dataclass
class HMMParams:
    """Parameters of a Gaussian HMM with full covariances (float64)."""

    startprob: np.ndarray  # [N]
    transmat: np.ndarray  # [N, N]
    means: np.ndarray  # [N, D]
    covars: np.ndarray  # [N, D, D]

    @property
    def n_states(self) -> int:
        return self.means.shape[0]

    def copy(self) -> HMMParams:
        return HMMParams(self.startprob.copy(), self.transmat.copy(), self.means.copy(), self.covars.copy())


def _sq_distances(X, centres):
    """Squared Euclidean distances [T, K], computed in chunks without BLAS
    (so the result never depends on a BLAS library's threading)."""
    out = np.empty((X.shape[0], centres.shape[0]))
    for s in range(0, X.shape[0], _CHUNK):
        diff = X[s : s + _CHUNK, None, :] - centres[None, :, :]
        out[s : s + _CHUNK] = np.einsum("tkd,tkd->tk", diff, diff)
    return out


def _nearest(X, centres):
    """Index of each row's nearest centre [T]: the argmin of
    :func:`_sq_distances`, a chunk at a time (no [T, K] array)."""
    out = np.empty(X.shape[0], np.int64)
    for s in range(0, X.shape[0], _CHUNK):
        out[s : s + _CHUNK] = np.argmin(_sq_distances(X[s : s + _CHUNK], centres), axis=1)
    return out


def supported_states(X, limit):
    """How many states the observations ``X`` [T, D] can support, counting
    no further than ``limit``: at most one per distinct frame, and at most
    one per D + 1 frames (below that a state's covariance is singular and
    :func:`m_step` leaves it for re-seeding); at least 1."""
    T, D = X.shape
    limit = min(limit, max(1, T // (D + 1)))
    seen = set()
    for row in np.ascontiguousarray(X):  # reads rows only until ``limit`` distinct ones
        seen.add(row.tobytes())
        if len(seen) >= limit:
            break
    return len(seen)


def kmeans_plus_plus(Xs, n_clusters, rng, n_lloyd=10):
    """Seeded k-means++ (Arthur and Vassilvitskii, 2007), then Lloyd iterations.

    Parameters
    ----------
    Xs : ndarray [T, D]
        Standardised observations.
    n_clusters : int
    rng : numpy.random.Generator

    Returns
    -------
    centres : ndarray [K, D]
    labels : ndarray of int64 [T]
    """
    T = Xs.shape[0]
    centres = np.empty((n_clusters, Xs.shape[1]))
    centres[0] = Xs[rng.integers(T)]
    closest = _sq_distances(Xs, centres[:1])[:, 0]
    for c in range(1, n_clusters):
        total = closest.sum()
        if total > 0:
            pick = int(np.searchsorted(np.cumsum(closest), rng.random() * total, side="right"))
            pick = min(pick, T - 1)
        else:
            pick = int(rng.integers(T))
        centres[c] = Xs[pick]
        closest = np.minimum(closest, _sq_distances(Xs, centres[c : c + 1])[:, 0])
    labels = _nearest(Xs, centres)
    for _ in range(n_lloyd):
        counts = np.bincount(labels, minlength=n_clusters)
        sums = np.zeros_like(centres)
        np.add.at(sums, labels, Xs)
        moved = centres.copy()
        filled = counts > 0
        moved[filled] = sums[filled] / counts[filled, None]
        new_labels = _nearest(Xs, moved)
        centres = moved
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    return centres, labels


def floor_covariances(covars, global_var, floor):
    """Clip each covariance from below at ``floor`` times the global variance.

    In coordinates scaled by the global standard deviations, eigenvalues
    below ``floor`` are raised to it (eigenvectors kept). This is the exact
    maximiser of the M-step objective under that constraint, so EM with the
    floor still never lowers the likelihood.
    """
    scale = np.sqrt(global_var)
    scaled = covars / scale[None, :, None] / scale[None, None, :]
    scaled = 0.5 * (scaled + scaled.transpose(0, 2, 1))
    w, v = np.linalg.eigh(scaled)
    if np.all(w >= floor):
        out = scaled
    else:
        out = np.einsum("nij,nj,nkj->nik", v, np.maximum(w, floor), v)
    out = out * scale[None, :, None] * scale[None, None, :]
    return 0.5 * (out + out.transpose(0, 2, 1))


def initialize(X, lengths, n_states, rng, covariance_floor, prior=0.1):
    """Initial parameters from seeded k-means++ on standardised observations.

    Means and covariances are those of each cluster (covariances floored);
    start and transition probabilities are counted from the cluster labels
    along each sequence, with ``prior`` added to every count.
    """
    mean, var = X.mean(axis=0), X.var(axis=0)
    var = np.where(var > 0, var, 1.0)
    standardised = X - mean
    standardised /= np.sqrt(var)  # (in place: one copy of the frames beside them)
    centres, labels = kmeans_plus_plus(standardised, n_states, rng)
    del standardised
    return parameters_from_labels(X, lengths, labels, n_states, covariance_floor, prior,
                                  means=centres * np.sqrt(var) + mean)


def parameters_from_labels(X, lengths, labels, n_states, covariance_floor, prior=0.1, means=None):
    """Parameters from a state label per frame: each state's mean (unless
    ``means`` [N, D] are given) and covariance those of its frames (a state
    with no frames: the overall mean; with D frames or fewer: the overall
    covariance; covariances floored), start and transition probabilities
    counted along each sequence with ``prior`` added to every count."""
    labels = np.asarray(labels, dtype=np.int64)
    var = X.var(axis=0)
    var = np.where(var > 0, var, 1.0)
    D = X.shape[1]
    covars = np.empty((n_states, D, D))
    global_cov = np.cov(X, rowvar=False).reshape(D, D)
    if means is None:
        means = np.tile(X.mean(axis=0), (n_states, 1))
        for j in np.unique(labels):
            means[j] = X[labels == j].mean(axis=0)
    for j in range(n_states):
        members = X[labels == j]
        if members.shape[0] > D:
            covars[j] = np.cov(members, rowvar=False).reshape(D, D)
        else:
            covars[j] = global_cov
    covars = floor_covariances(covars, var, covariance_floor)
    startprob = np.full(n_states, prior)
    transmat = np.full((n_states, n_states), prior)
    offset = 0
    for n in lengths:
        seq = labels[offset : offset + n]
        startprob[seq[0]] += 1.0
        np.add.at(transmat, (seq[:-1], seq[1:]), 1.0)
        offset += n
    startprob /= startprob.sum()
    transmat /= transmat.sum(axis=1, keepdims=True)
    return HMMParams(startprob, transmat, means, covars)


def m_step(stats, params, n_sequences, global_var, covariance_floor):
    """Maximisation step from the centred statistics of :func:`ssgs.kernels.estep`.

    Returns new parameters and the states whose occupancy fell below D + 1
    frames (their rows are left as they were, for :func:`_reseed`).
    """
    N, D = params.means.shape
    occ = stats.occupancy
    weak = np.flatnonzero(occ < D + 1)
    ok = occ >= D + 1
    means = params.means.copy()
    covars = params.covars.copy()
    delta = stats.moment1[ok] / occ[ok, None]
    means[ok] = params.means[ok] + delta
    raw = stats.moment2[ok] / occ[ok, None, None] - delta[:, :, None] * delta[:, None, :]
    covars[ok] = floor_covariances(raw, global_var, covariance_floor)
    startprob = stats.start_occupancy / n_sequences
    row = stats.xi_sum.sum(axis=1)
    transmat = params.transmat.copy()
    has = row > 0
    transmat[has] = stats.xi_sum[has] / row[has, None]
    startprob = startprob / startprob.sum()
    transmat = transmat / transmat.sum(axis=1, keepdims=True)
    return HMMParams(startprob, transmat, means, covars), weak


def batched_estep(frames, lengths, params, n_threads):
    """:func:`ssgs.kernels.estep` over ``frames`` [T, D]: of a float32
    memory map (a corpus on disk), a batch of whole sequences at a time
    (:func:`ssgs.runs.sequence_batches`), each continuing the last's sums
    (the bits of one call, holding one batch of frames); of an array in
    memory, one call (every thread busy to the end)."""
    lengths = np.asarray(lengths, np.int64)
    if not isinstance(frames, np.memmap):
        return kernels.estep(frames, lengths, params.startprob, params.transmat, params.means, params.covars,
                             n_threads=n_threads)
    stats = None
    for rows, sequences in sequence_batches(lengths):
        stats = kernels.estep(read_rows(frames, rows, np.float64), lengths[sequences], params.startprob,
                              params.transmat, params.means, params.covars, n_threads=n_threads, after=stats)
    return stats


def _badness(frames, lengths, params, keep, n_threads):
    """How well the states ``keep`` explain each frame: the best of their
    log densities [T], a batch of frames at a time."""
    out = np.zeros(frames.shape[0])
    if keep.size:
        for rows, _ in sequence_batches(lengths):
            out[rows] = kernels.gaussian_logpdf(read_rows(frames, rows, np.float64), params.means[keep],
                                                params.covars[keep], n_threads=n_threads).max(axis=1)
    return out


def _reseed(params, weak, X, lengths, global_var, covariance_floor, n_threads, share=1e-3):
    """Move states that explain (almost) nothing onto the frames the model
    explains worst: mean at such a frame, covariance a quarter of the global
    one, and a small share of every row's transition mass (and of the start
    mass) so the E-step can reach them. ``X``: the frames, as
    :func:`batched_estep` takes them."""
    params = params.copy()
    keep = np.setdiff1d(np.arange(params.n_states), weak)
    order = np.argsort(_badness(X, lengths, params, keep, n_threads), kind="stable")
    chosen = []
    for t in order:
        if all(np.any(X[t] != X[c]) for c in chosen):
            chosen.append(int(t))
        if len(chosen) == len(weak):
            break
    D = X.shape[1]
    global_cov = np.cov(X, rowvar=False).reshape(D, D)
    release(X)
    for j, t in zip(weak, chosen):
        params.means[j] = X[t]
        params.covars[j] = floor_covariances((0.25 * global_cov)[None], global_var, covariance_floor)[0]
        params.transmat[:, j] += share
        params.transmat[j] = params.transmat[j] * 0 + share
        params.transmat[j, j] = 0.5
        params.startprob[j] += share
    params.transmat /= params.transmat.sum(axis=1, keepdims=True)
    params.startprob /= params.startprob.sum()
    return params


def occupancy_entropy(occupancy) -> float:
    """Entropy (nats) of the share of frames each state explains."""
    p = occupancy / occupancy.sum()
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def smoothness_penalty(xi_sum, means, global_var) -> float:
    """Expected squared jump, in global standard deviations, between the means
    of consecutive frames' states (0 when the path never changes state)."""
    z = means / np.sqrt(global_var)
    sq = np.square(z[:, None, :] - z[None, :, :]).sum(axis=2)
    total = xi_sum.sum()
    return float((xi_sum * sq).sum() / total) if total > 0 else 0.0


def bic(log_likelihood, n_states, n_features, n_frames) -> float:
    """Bayesian information criterion (lower is better) of a full-covariance
    Gaussian HMM: free parameters are start (N-1), transitions N(N-1),
    means N D and covariances N D (D+1) / 2."""
    D = n_features
    k = (n_states - 1) + n_states * (n_states - 1) + n_states * D + n_states * D * (D + 1) // 2
    return float(-2.0 * log_likelihood + k * math.log(n_frames))


MAX_RESEEDS = 2


def em_iteration(X, lengths, params, global_var, covariance_floor, n_threads, reseeds=None, estep=None):
    """One EM iteration over the frames ``X`` (float64, or a float32 memory
    map of a corpus on disk: :func:`batched_estep`).

    Returns
    -------
    params : HMMParams
        The updated parameters.
    record : dict
        ``log_likelihood`` (per frame, of the parameters going in),
        ``occupancy_entropy``, ``smoothness_penalty``, ``reseeded`` (states
        moved because they emptied out), ``dormant`` (states that emptied
        out again after MAX_RESEEDS re-seeds: left as they were) and
        ``seconds``.
    reseeds (argument, updated in place) : int array [N] re-seeds so far.
    """
    t0 = time.perf_counter()
    if estep is None:
        stats = batched_estep(X, lengths, params, n_threads)
    else:  # elsewhere (a Dask cluster): the same statistics, reduced in the same order
        stats = estep(params)
    new, weak = m_step(stats, params, len(lengths), global_var, covariance_floor)
    if reseeds is None:
        reseeds = np.zeros(params.n_states, dtype=np.int64)
    # a state re-seeded MAX_RESEEDS times that empties again is left dormant
    # (its last parameters kept): the data has no room for it
    again = weak[reseeds[weak] < MAX_RESEEDS]
    dormant = weak[reseeds[weak] >= MAX_RESEEDS]
    if again.size:
        new = _reseed(new, again, X, lengths, global_var, covariance_floor, n_threads)
        reseeds[again] += 1
    record = {
        "log_likelihood": stats.log_likelihood / X.shape[0],
        "occupancy_entropy": occupancy_entropy(stats.occupancy),
        "smoothness_penalty": smoothness_penalty(stats.xi_sum, params.means, global_var),
        "reseeded": [int(j) for j in again],
        "dormant": [int(j) for j in dormant],
        "seconds": time.perf_counter() - t0,
    }
    return new, record


def long_run_occupancy(startprob, transmat, steps=20000):
    """Long-run share of time the chain spends in each state, starting from
    startprob: the Cesaro mean of startprob A^t (well defined for any finite
    chain, periodic or reducible)."""
    pi = np.asarray(startprob, dtype=np.float64).copy()
    total = np.zeros_like(pi)
    for _ in range(steps):
        total += pi
        pi = pi @ transmat
    return total / steps


def graph_structure(startprob, transmat, min_state_probability):
    """Strongly connected components, reachability from the start states and
    the long-run occupancy of a Markov chain; which states to drop."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import breadth_first_order, connected_components

    N = len(startprob)
    graph = csr_matrix(np.asarray(transmat) > 0)
    n_comp, labels = connected_components(graph, directed=True, connection="strong")
    reachable = np.zeros(N, bool)
    for s in np.flatnonzero(np.asarray(startprob) > 0):
        reachable[breadth_first_order(graph, s, directed=True, return_predecessors=False)] = True
    occupancy = long_run_occupancy(startprob, transmat)
    drop = ~reachable | (occupancy < min_state_probability)
    if drop.all():
        drop[np.argmax(occupancy)] = False
    components = [np.flatnonzero(labels == c).tolist() for c in range(n_comp)]
    return components, reachable, occupancy, drop


def prune_states(params, min_state_probability):
    """The parameters without the states :func:`graph_structure` drops
    (unreachable, or occupied less than ``min_state_probability`` of the
    time in the long run): the kept rows of the transition matrix and the
    start probabilities renormalised (a row whose mass all went to removed
    states stays in place).

    Returns
    -------
    params : HMMParams
        Unchanged when nothing is dropped.
    keep : ndarray of int
        The kept states' indices before the change.
    result : dict
        components, unreachable, removed, kept, occupancy, n_states_before,
        n_states_after.
    """
    components, reachable, occupancy, drop = graph_structure(params.startprob, params.transmat,
                                                             min_state_probability)
    keep = np.flatnonzero(~drop)
    result = {"components": components, "unreachable": np.flatnonzero(~reachable).tolist(),
              "removed": np.flatnonzero(drop).tolist(), "kept": keep.tolist(), "occupancy": occupancy.tolist(),
              "n_states_before": int(drop.size), "n_states_after": int(keep.size)}
    if not drop.any():
        return params, keep, result
    start = params.startprob[keep]
    trans = params.transmat[np.ix_(keep, keep)]
    rows = trans.sum(axis=1)
    trans[rows <= 0, :] = np.eye(keep.size)[rows <= 0]
    start = start / start.sum() if start.sum() > 0 else np.full(keep.size, 1.0 / keep.size)
    pruned = HMMParams(start, trans / trans.sum(axis=1, keepdims=True), params.means[keep], params.covars[keep])
    return pruned, keep, result


def select_state_rows(statistics, keep, n_states):
    """Per-state arrays (a dict, e.g. adaptation statistics) restricted to
    the states ``keep`` (of ``n_states``): per-state rows, and the columns
    of state-by-state tables; other entries as they are."""
    out = dict(statistics or {})
    for name, arr in out.items():
        if isinstance(arr, np.ndarray) and arr.ndim >= 1 and arr.shape[0] == n_states:
            arr = arr[keep]
            if arr.ndim >= 2 and arr.shape[1] == n_states:
                arr = arr[:, keep]
            out[name] = arr
    return out


class StateSelection:
    """The model's choice of states, mixed into
    :class:`ssgs.SpectralStateGuidedSynthesis`: how many (BIC over
    candidates) and which to keep (graph pruning). The class provides
    ``corpus``, ``params`` (settable), the EM steps, ``stored_excitation``,
    ``set_excitation_model``, ``adaptive_statistics``, ``training_history``,
    ``_reseeds`` and the ``_require_*`` checks."""

    def select_n_states(self, n_iterations=5):
        """Choose ``n_states`` by BIC among ``auto_n_states_candidates`` (each
        at most what the frames support: :func:`supported_states`), each candidate
        trained for ``n_iterations`` from its own seeded k-means++ start.
        Returns the candidates' scores (n_states, log_likelihood, bic)."""
        self._require_data()
        scores, T, D = [], self.corpus.n_frames, self.n_features
        most = supported_states(self.corpus.data(), max(self.auto_n_states_candidates))
        for n in sorted({min(n, most) for n in self.auto_n_states_candidates}):
            self.n_states = n
            self.kmeans_initialization()
            for _ in range(n_iterations):
                self.run_em_iteration()
            stats = batched_estep(self.corpus.frames(), self.sequence_lengths, self.params, self.n_threads)
            scores.append({"n_states": n, "log_likelihood": stats.log_likelihood / T,
                           "bic": bic(stats.log_likelihood, n, D, T)})
        self.n_states = min(scores, key=lambda s: s["bic"])["n_states"]
        return scores

    def identify_graph_constraints(self, min_state_probability=1e-4):
        """Remove the states the model can never or almost never reach
        (unreachable from a start state, or occupied less than
        ``min_state_probability`` of the time in the long run) from every
        per-state array, renormalising what is left
        (:func:`ssgs.hmm.prune_states`).

        Returns
        -------
        dict
            ``components``, ``unreachable``, ``removed``, ``kept`` (state
            indices before the change), ``occupancy`` (long-run, before),
            ``n_states_before``, ``n_states_after``.
        """
        self._require_model()
        p = check_float("min_state_probability", min_state_probability, 0.0, 1.0)
        if p >= 1.0:
            raise ValueError("min_state_probability must be below 1")
        exc = self.stored_excitation(False)
        params, keep, result = prune_states(self.params, p)
        if keep.size < result["n_states_before"]:
            self.params = params
            if exc is not None:
                self.set_excitation_model(exc.select(keep))
            if self._reseeds is not None and len(self._reseeds) == result["n_states_before"]:
                self._reseeds = self._reseeds[keep]
            self.adaptive_statistics = select_state_rows(self.adaptive_statistics, keep, result["n_states_before"])
        self.training_history.append({"iteration": self.iteration, "graph_constraints": {
            k: result[k] for k in ("removed", "n_states_before", "n_states_after")}})
        return result
