"""Online adaptation: online EM on exponentially blended sufficient statistics.

The model keeps a memory of sufficient statistics (occupancy, start and
transition counts, first and second moments about a fixed centre) worth at
most ``memory_limit`` frames. Adapting to new audio runs its E-step under the
current parameters, blends the new statistics into the memory
(``memory <- memory_blend * memory + new``, then scaled down to the limit),
maximises, and moves the parameters ``adaptation_rate`` of the way towards
that maximum; ``stability_bias`` then leans every state towards staying put.
"""

from __future__ import annotations

import numpy as np

from ssgs import hmm as _hmm
from ssgs import kernels
from ssgs.audio import describe_skipped
from ssgs.checks import audio_items, check_float, check_int
from ssgs.corpus import analyse_items
from ssgs.errors import AudioError

__all__ = ["STAT_NAMES", "Adaptation", "adapt", "at_rate", "centre_moments", "initial_memory", "memory_from_corpus",
           "memory_variance", "starting_memory"]

STAT_NAMES = ("occupancy", "start", "xi_sum", "moment1", "moment2", "centre", "frames", "updates")


def centre_moments(stats, means, centre):
    """Moments of an E-step (about each state's mean) moved to a fixed centre:
    m1_c = m1 + g (mu - c), m2_c = m2 + (mu - c) m1^T + m1 (mu - c)^T + g (mu - c)(mu - c)^T."""
    g = stats.occupancy
    shift = means - centre
    m1 = stats.moment1 + g[:, None] * shift
    m2 = (stats.moment2 + shift[:, :, None] * stats.moment1[:, None, :] + stats.moment1[:, :, None] * shift[:, None, :]
          + g[:, None, None] * shift[:, :, None] * shift[:, None, :])
    return m1, m2


def initial_memory(params, centre, frames, occupancy_share, n_sequences=1.0):
    """Statistics equivalent to ``frames`` frames drawn from the model itself
    (used when there are no training frames to compute them from)."""
    occ = frames * occupancy_share
    shift = params.means - centre
    m1 = occ[:, None] * shift
    m2 = occ[:, None, None] * (params.covars + shift[:, :, None] * shift[:, None, :])
    return {"occupancy": occ, "start": n_sequences * params.startprob, "xi_sum": occ[:, None] * params.transmat,
            "moment1": m1, "moment2": m2, "centre": np.asarray(centre, np.float64),
            "frames": np.array(float(frames)), "updates": np.array(0.0)}


def memory_from_estep(stats, params, centre, n_sequences):
    m1, m2 = centre_moments(stats, params.means, centre)
    return {"occupancy": stats.occupancy, "start": stats.start_occupancy, "xi_sum": stats.xi_sum,
            "moment1": m1, "moment2": m2, "centre": np.asarray(centre, np.float64),
            "frames": np.array(float(stats.occupancy.sum())), "updates": np.array(0.0)}


def _maximise(memory, params, global_var, covariance_floor):
    """Parameters that maximise the memory's statistics (states the memory
    barely knows keep their current parameters)."""
    N, D = params.means.shape
    occ = memory["occupancy"]
    ok = occ >= D + 1
    means, covars = params.means.copy(), params.covars.copy()
    mean_c = memory["moment1"][ok] / occ[ok, None]
    means[ok] = memory["centre"] + mean_c
    raw = memory["moment2"][ok] / occ[ok, None, None] - mean_c[:, :, None] * mean_c[:, None, :]
    covars[ok] = _hmm.floor_covariances(raw, global_var, covariance_floor)
    start = memory["start"] / memory["start"].sum() if memory["start"].sum() > 0 else params.startprob
    rows = memory["xi_sum"].sum(axis=1)
    trans = params.transmat.copy()
    trans[rows > 0] = memory["xi_sum"][rows > 0] / rows[rows > 0, None]
    return _hmm.HMMParams(start, trans, means, covars)


def _log_likelihood(params, X, lengths, n_threads):
    """Log-likelihood per frame of X under ``params``."""
    return kernels.estep(X, lengths, params.startprob, params.transmat, params.means, params.covars,
                         n_threads=n_threads).log_likelihood / X.shape[0]


def _blend(memory, new, memory_blend, memory_limit):
    """``memory_blend * memory + new``, scaled down to at most ``memory_limit`` frames."""
    blended = {k: memory_blend * memory[k] + new[k] for k in ("occupancy", "start", "xi_sum", "moment1",
                                                              "moment2", "frames")}
    if blended["frames"] > memory_limit:
        scale = memory_limit / float(blended["frames"])
        blended = {k: v * scale for k, v in blended.items()}
    blended["centre"] = memory["centre"]
    blended["updates"] = memory["updates"] + 1
    return blended


def _move_towards(params, target, r, stability_bias, global_var, covariance_floor):
    """``params`` moved the share ``r`` of the way to ``target``, transitions
    leaned towards staying put by ``stability_bias``."""
    trans = (1 - r) * params.transmat + r * target.transmat
    trans = (1 - stability_bias) * trans + stability_bias * np.eye(trans.shape[0])
    moved = _hmm.HMMParams(
        ((1 - r) * params.startprob + r * target.startprob) / 1.0,
        trans / trans.sum(axis=1, keepdims=True),
        (1 - r) * params.means + r * target.means,
        _hmm.floor_covariances((1 - r) * params.covars + r * target.covars, global_var, covariance_floor))
    moved.startprob = moved.startprob / moved.startprob.sum()
    return moved


def adapt(params, memory, X, lengths, *, adaptation_rate, stability_bias, memory_blend, memory_limit,
          global_var, covariance_floor, n_threads, iterations=1):
    """Run ``iterations`` online-EM steps on new frames X.

    Parameters
    ----------
    params : HMMParams
        The current parameters.
    memory : dict
        The statistics so far (keys ``STAT_NAMES``).
    X : ndarray [T, D]
        New frames, sequences back to back.
    lengths : array_like of int
        Frames per sequence.
    adaptation_rate : float
        Share of the way the parameters move towards the memory's maximum.
    stability_bias : float
        Weight of the identity mixed into every transition row.
    memory_blend : float
        Factor on the old statistics before the new ones are added.
    memory_limit : float
        Most frames the memory may be worth.
    global_var : ndarray [D]
    covariance_floor : float
    n_threads : int
    iterations : int

    Returns
    -------
    params : HMMParams
        The adapted parameters.
    memory : dict
        The updated statistics.
    metrics : dict
        Frames, log-likelihood per frame before and after, memory frames,
        updates, RMS mean shift, largest transition change, iterations.
    """
    before = _log_likelihood(params, X, lengths, n_threads)
    start_params = params
    for _ in range(iterations):
        stats = kernels.estep(X, lengths, params.startprob, params.transmat, params.means, params.covars,
                              n_threads=n_threads)
        new = memory_from_estep(stats, params, memory["centre"], len(lengths))
        blended = _blend(memory, new, memory_blend, memory_limit)
        target = _maximise(blended, params, global_var, covariance_floor)
        params = _move_towards(params, target, adaptation_rate, stability_bias, global_var, covariance_floor)
        memory = blended
    after = _log_likelihood(params, X, lengths, n_threads)
    metrics = {
        "frames": int(X.shape[0]),
        "log_likelihood_before": float(before),
        "log_likelihood_after": float(after),
        "memory_frames": float(memory["frames"]),
        "updates": int(memory["updates"]),
        "mean_shift": float(np.sqrt(np.mean(np.sum((params.means - start_params.means) ** 2, axis=1)))),
        "transition_change": float(np.abs(params.transmat - start_params.transmat).max()),
        "iterations": int(iterations),
    }
    return params, memory, metrics


def at_rate(items, sample_rate, model_rate):
    """The arrays among ``items`` resampled (soxr) from ``sample_rate`` to the
    model's rate; files stay paths (decoded at the model's rate)."""
    if sample_rate == model_rate:
        return items
    import os

    import soxr

    from ssgs.audio import prepare_signal

    return [soxr.resample(prepare_signal(x, f"audio[{i}]"), sample_rate, model_rate, quality="HQ")
            if not isinstance(x, (str, os.PathLike)) else x for i, x in enumerate(items)]


def memory_from_corpus(params, X, lengths, limit, n_threads=0):
    """The adaptation memory started from the training frames ``X`` (sequences
    of ``lengths``), scaled to at most ``limit`` frames."""
    stats = kernels.estep(X, lengths, params.startprob, params.transmat, params.means, params.covars,
                          n_threads=n_threads)
    memory = memory_from_estep(stats, params, X.mean(axis=0), len(lengths))
    scale = min(1.0, limit / float(memory["frames"]))
    return {k: (v * scale if k not in ("centre", "updates") else v) for k, v in memory.items()}


def memory_variance(memory):
    """Per-dimension variance of the frames a memory summarises (at least 1e-12)."""
    frames = max(float(memory["frames"]), 1.0)
    return np.maximum(memory["moment2"].sum(0).diagonal() / frames - (memory["moment1"].sum(0) / frames) ** 2,
                      1e-12)



def starting_memory(stored, params, corpus, limit, n_threads, occupancy):
    """The memory an adaptation starts from: the ``stored`` statistics when
    they are whole and of these states; else started from the training
    ``corpus`` (:func:`memory_from_corpus`); else from the model itself,
    its states weighted by ``occupancy()``, scaled to ``limit`` frames."""
    if stored and all(k in stored for k in STAT_NAMES) and stored["occupancy"].shape[0] == params.n_states:
        return {k: np.asarray(v, dtype=np.float64) for k, v in stored.items()}
    if corpus is not None:
        return memory_from_corpus(params, corpus.data(), corpus.sequence_lengths, limit, n_threads)
    share = occupancy()
    return initial_memory(params, share @ params.means, float(limit), share / share.sum())


class Adaptation:
    """The model's online adaptation, mixed into
    :class:`ssgs.SpectralStateGuidedSynthesis`. The class provides
    ``params`` (settable), ``corpus``, ``feature_config``,
    ``excitation_model``, the adaptation settings and ``_require_model``;
    its excitation model follows the new parameters by itself."""

    def adapt_to_audio(self, audio, sample_rate=16000, adaptation_rate=0.25, stability_bias=0.05,
                       memory_blend=0.7, memory_limit=None, n_adaptation_iterations=1):
        """Adapt the model to new audio by online EM (see :mod:`ssgs.adaptation`).

        Parameters
        ----------
        audio : array, path, or list of them
            New material, each its own sequence; arrays at ``sample_rate``
            (resampled to the model's rate if different), files decoded at
            the model's rate.
        adaptation_rate, stability_bias, memory_blend : float in [0, 1]
            How far the parameters move per iteration, the weight moved onto
            each self-transition afterwards, and how much of the remembered
            statistics survives each update.
        memory_limit : int, optional
            Frames the memory holds at most (default ``adaptive_memory_limit``).
        n_adaptation_iterations : int

        Returns
        -------
        dict
            frames, log_likelihood_before / _after, memory_frames, updates,
            mean_shift, transition_change, iterations.
        """
        self._require_model()
        rate = check_float("adaptation_rate", adaptation_rate, 0.0, 1.0)
        bias = check_float("stability_bias", stability_bias, 0.0, 1.0)
        blend = check_float("memory_blend", memory_blend, 0.0, 1.0)
        limit = self.adaptive_memory_limit if memory_limit is None else check_int("memory_limit", memory_limit)
        iterations = check_int("n_adaptation_iterations", n_adaptation_iterations)
        model_rate = int(self.sample_rate or 16000)
        items = at_rate(audio_items(audio), check_int("sample_rate", sample_rate, 1000), model_rate)
        analysed, skipped = analyse_items(items, self.feature_config, n_threads=self.n_threads)
        if not analysed:
            raise AudioError("no usable audio to adapt to: " + describe_skipped(skipped))
        X = np.concatenate([f.observations for f, _ in analysed]).astype(np.float64)
        lengths = np.array([f.n_frames for f, _ in analysed], dtype=np.int64)
        memory = starting_memory(self.adaptive_statistics, self.params, self.corpus, limit, self.n_threads,
                                        lambda: self.excitation_model.occupancy)
        global_var = self.corpus.global_var if self.corpus is not None else memory_variance(memory)
        params, memory, metrics = adapt(
            self.params, memory, X, lengths, adaptation_rate=rate, stability_bias=bias, memory_blend=blend,
            memory_limit=limit, global_var=global_var, covariance_floor=self.covariance_floor,
            n_threads=self.n_threads, iterations=iterations)
        self.params = params
        self.adaptive_statistics = memory
        if self.observation_range is not None:
            self.observation_range = np.stack([np.minimum(self.observation_range[0], X.min(axis=0)),
                                               np.maximum(self.observation_range[1], X.max(axis=0))])
        self.training_history.append({"iteration": self.iteration, "adaptation": metrics})
        return metrics
