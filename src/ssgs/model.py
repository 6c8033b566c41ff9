"""The front door: :class:`SpectralStateGuidedSynthesis`.

A thin class that holds the configuration, the fitted HMM and the training
artifacts, and delegates the work to audio, features, hmm, checkpoint and
synthesis. The public names are those of the reference implementation.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ssgs import audio as _audio
from ssgs import checkpoint as _ckpt
from ssgs import hmm as _hmm
from ssgs import kernels
from ssgs import synthesis as _synth
from ssgs.errors import AudioError, CheckpointError, SSGSError
from ssgs.features import (GAIN_FLOOR, METADATA_KEYS, FeatureConfig, analyse_signal, frame_harmonicity, pitch_range,
                           rebuild_signal, voicing_from_logit, voicing_logit)

__all__ = ["SpectralStateGuidedSynthesis"]

_AUTO_CANDIDATES = (8, 16, 24, 32)
_DERIVED_SEED = 0x5C01  # the fixed seed of what generation derives from the model itself (see _derived)


def _check_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_float(name, value, low=None, high=None, low_open=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or (low is not None and (v <= low if low_open else v < low)) or (
            high is not None and v > high):
        bounds = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}]"
        raise ValueError(f"{name} must be in {bounds}, got {value!r}")
    return v


class SpectralStateGuidedSynthesis:
    """A Gaussian HMM over per-frame LPC descriptions of audio, and audio made from it.

    Parameters
    ----------
    n_states : int
        Hidden states (spectral states) of the HMM.
    lpc_order : int
        LPC order p; observations have p + 2 dimensions (p log-area ratios,
        the log gain and the voicing).
    frame_size : int
        Analysis window length in samples (Hann).
    hop_size : int
        Samples between frames; frame f rules samples [f*hop, (f+1)*hop).
    smoothness_weight : float
        Weight of spectral smoothness against transition cost for
        ``decoder='smooth'`` generation, in [0, 1].
    auto_n_states : bool
        Choose n_states by BIC among ``auto_n_states_candidates`` when
        training.
    adaptive_memory_limit : int
        Frames of recent audio that online adaptation remembers.
    seed : int, optional
        Seed of every random choice (initialisation, generation defaults).
        None draws one, recorded in the checkpoint so the run can be replayed.
    n_threads : int
        Threads for the compiled kernels; 0 means all cores. Results do not
        depend on it.
    tol : float
        EM stops when the log-likelihood per frame gains less than this;
        0 runs every iteration asked for.
    covariance_floor : float
        Each covariance is kept at least this fraction of the data's variance
        (in every direction, in coordinates scaled by the global standard
        deviations).
    auto_n_states_candidates : sequence of int
        Candidates for ``auto_n_states``.

    Attributes
    ----------
    transition_matrix : ndarray [N, N]
    initial_probabilities : ndarray [N]
    state_means : ndarray [N, D]
    state_covariances : ndarray [N, D, D]
    observations : ndarray float32 [T, D]
        The HMM's training observations (log-area ratios, log gain).
    lpc_coefficients : ndarray float64 [T, p]
        a[1:] of each frame's A(z) = 1 + sum_i a_i z^-i.
    residual_signals : ndarray float32 [T, hop]
        Each frame's prediction residual over its hop region.
    frame_metadata : dict of str -> ndarray float32 [T]
    perceptual_features : ndarray float16 [T, n_mel + n_erb + 2]
    f0, periodicity : ndarray float32 [T]
        Each frame's fundamental (Hz, 0 in silence) and periodicity (0..1),
        from the residual.
    sequence_lengths : ndarray int64 [S]
        Frames of each training sequence (one per file or array).
    sources : list of dict
        One entry per sequence: path, kind, size, sha256, frames, samples.
    observation_range : ndarray [2, D]
        Per-dimension minimum and maximum of the training observations:
        generation keeps its draws within them.
    sample_rate : int or None
    training_history : list of dict
        One record per EM iteration.
    """

    def __init__(self, n_states=34, lpc_order=12, frame_size=1024, hop_size=256, smoothness_weight=0.5,
                 auto_n_states=False, adaptive_memory_limit=6000, *, seed=None, n_threads=0, tol=1e-4,
                 covariance_floor=1e-3, auto_n_states_candidates=_AUTO_CANDIDATES):
        self.n_states = _check_int("n_states", n_states)
        self.lpc_order = _check_int("lpc_order", lpc_order)
        self.frame_size = _check_int("frame_size", frame_size, 2)
        self.hop_size = _check_int("hop_size", hop_size)
        if self.hop_size > self.frame_size:
            raise ValueError(f"hop_size ({hop_size}) must not exceed frame_size ({frame_size})")
        if self.lpc_order >= self.frame_size or self.lpc_order > kernels.MAX_ORDER:
            raise ValueError(f"lpc_order must be below frame_size and at most {kernels.MAX_ORDER}, got {lpc_order}")
        self.smoothness_weight = _check_float("smoothness_weight", smoothness_weight, 0.0, 1.0)
        self.auto_n_states = bool(auto_n_states)
        self.adaptive_memory_limit = _check_int("adaptive_memory_limit", adaptive_memory_limit)
        if seed is not None:
            seed = _check_int("seed", seed, 0)
        self.seed = seed
        kernels.resolve_threads(n_threads)
        self.n_threads = int(n_threads)
        self.tol = _check_float("tol", tol, 0.0)
        self.covariance_floor = _check_float("covariance_floor", covariance_floor, 0.0, 1.0, low_open=True)
        candidates = tuple(_check_int("auto_n_states_candidates", c) for c in auto_n_states_candidates)
        if not candidates:
            raise ValueError("auto_n_states_candidates must name at least one state count")
        self.auto_n_states_candidates = candidates

        self.sample_rate = None
        self.transition_matrix = None
        self.initial_probabilities = None
        self.state_means = None
        self.state_covariances = None
        self.training_history = []
        self.iteration = 0
        self.converged = False
        self.skipped_files = []
        self.last_generation = None
        self.observation_range = None
        self.preview_snapshots = []
        self.adaptive_statistics = {}
        self._rng = None
        self._excitation = None
        self._excitation_iteration = None
        self._clear_training_data()

    # ------------------------------------------------------------------ state
    def _clear_training_data(self):
        self.observations = None
        self.lpc_coefficients = None
        self.residual_signals = None
        self.frame_metadata = {}
        self.perceptual_features = None
        self.f0 = None
        self.periodicity = None
        self.sequence_lengths = None
        self.sequence_samples = None
        self.sources = []
        self._X = None
        self._shape_cache = None

    @property
    def feature_config(self) -> FeatureConfig:
        return FeatureConfig(self.sample_rate or 16000, self.frame_size, self.hop_size, self.lpc_order)

    @property
    def n_features(self) -> int:
        return self.lpc_order + 2

    @property
    def params(self) -> _hmm.HMMParams:
        self._require_model()
        return _hmm.HMMParams(self.initial_probabilities, self.transition_matrix, self.state_means,
                              self.state_covariances)

    @params.setter
    def params(self, params: _hmm.HMMParams):
        self._set_params(params)

    def _set_params(self, params: _hmm.HMMParams):
        self.initial_probabilities = params.startprob
        self.transition_matrix = params.transmat
        self.state_means = params.means
        self.state_covariances = params.covars
        self.n_states = params.n_states

    def _require_model(self):
        if self.state_means is None:
            raise SSGSError("the model has no parameters yet: train it or load a checkpoint first")

    def _require_data(self):
        if self.observations is None:
            raise SSGSError("no training data: call extract_features / extract_features_from_files "
                            "(or train) first, or load a checkpoint saved with its training artifacts")

    @property
    def has_training_artifacts(self) -> bool:
        return self.residual_signals is not None

    @property
    def sequence_offsets(self):
        if self.sequence_lengths is None:
            return None
        return np.concatenate([[0], np.cumsum(self.sequence_lengths)]).astype(np.int64)

    @property
    def spectral_flux(self):
        return self.frame_metadata.get("spectral_flux")

    @property
    def training_frames(self):
        """The training audio rebuilt from the residual, frame by frame:
        float32 [T, hop] (row f is the hop region frame f rules; the last
        frame of each sequence is zero beyond its end). Computed on access."""
        self._require_data()
        if not self.has_training_artifacts:
            return None
        out = np.zeros(self.residual_signals.shape, np.float32)
        offsets = self.sequence_offsets
        for s in range(len(self.sequence_lengths)):
            f0, f1 = offsets[s], offsets[s + 1]
            y = self.rebuild_sequence(s)
            out[f0:f1].reshape(-1)[: y.shape[0]] = y
        return out

    def rebuild_sequence(self, index) -> np.ndarray:
        """The training audio of sequence ``index`` (float64), rebuilt exactly
        from its LPC coefficients and residual."""
        self._require_data()
        if not self.has_training_artifacts:
            raise SSGSError("this model has no training artifacts to rebuild audio from")
        offsets = self.sequence_offsets
        f0, f1 = offsets[index], offsets[index + 1]
        return rebuild_signal(self.lpc_coefficients[f0:f1], self.residual_signals[f0:f1],
                              int(self.sequence_samples[index]), self.hop_size)

    # --------------------------------------------------------------- features
    def _new_rng(self):
        if self.seed is None:
            self.seed = int(np.random.SeedSequence().entropy % 2**63)
        self._rng = np.random.default_rng(self.seed)

    def _kernel_threads(self, workers):
        total = kernels.resolve_threads(self.n_threads)
        return max(1, total // max(1, workers))

    def _analyse_one(self, item, index, sample_rate, kernel_threads, augment=False):
        """[(FileFeatures, source)] for one file or array (and its augmented
        copies); AudioError if unusable."""
        if isinstance(item, (str, os.PathLike)) and _audio.is_url(item):
            import tempfile

            url = str(item)
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    local = _audio.fetch(url, tmp)
                except Exception as exc:  # the storage's own errors: credentials, network, missing key
                    raise AudioError(f"{url}: cannot fetch ({exc})") from None
                signal = _audio.load_audio(local, sample_rate)
                source = {"path": url, "kind": "file", "size": os.path.getsize(local),
                          "sha256": _audio.file_sha256(local)}
            name = url
        elif isinstance(item, (str, os.PathLike)):
            path = str(item)
            signal = _audio.load_audio(path, sample_rate)
            source = {"path": str(Path(path).resolve()), "kind": "file", "size": os.path.getsize(path),
                      "sha256": _audio.file_sha256(path)}
            name = path
        else:
            name = f"audio[{index}]"
            signal = _audio.prepare_signal(item, name)
            source = {"path": name, "kind": "array", "size": int(signal.nbytes),
                      "sha256": _audio_sha(signal)}
        if signal.shape[0] < self.frame_size:
            raise AudioError(f"{name}: shorter than one frame ({signal.shape[0]} samples < "
                             f"frame_size {self.frame_size} at {sample_rate} Hz)")
        if not np.any(signal):
            raise AudioError(f"{name}: silent (every sample is zero)")
        config = FeatureConfig(sample_rate, self.frame_size, self.hop_size, self.lpc_order)
        versions = [(None, signal)]
        if augment:
            from ssgs.augment import augmented_copies

            versions += augmented_copies(signal, sample_rate)
        out = []
        for augmentation, x in versions:
            feats = analyse_signal(x, config, n_threads=kernel_threads)
            entry = dict(source, n_frames=feats.n_frames, n_samples=feats.n_samples)
            if augmentation is not None:
                entry["augmentation"] = augmentation
            out.append((feats, entry))
        return out

    def _analyse_items(self, items, sample_rate, workers=0, skip_bad=True, progress=False, augment=False):
        sample_rate = _check_int("sample_rate", sample_rate, 1000)
        items = list(items)
        workers = _check_int("workers", workers, 0) or kernels.resolve_threads(self.n_threads)
        workers = max(1, min(workers, len(items) or 1))
        kernel_threads = self._kernel_threads(workers)
        results, skipped = [None] * len(items), []
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(items), desc="decoding", unit="file", disable=None, leave=False)

        def task(i):
            try:
                return self._analyse_one(items[i], i, sample_rate, kernel_threads, augment)
            except AudioError as exc:
                if not skip_bad or not isinstance(items[i], (str, os.PathLike)):
                    raise
                return exc

        # bounded in-flight work: at most 2 x workers files decoded at once,
        # results kept in input order whatever finishes first
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending = {}
            next_i = 0
            for i in range(len(items)):
                while next_i < len(items) and len(pending) < 2 * workers:
                    pending[next_i] = pool.submit(task, next_i)
                    next_i += 1
                out = pending.pop(i).result()
                if isinstance(out, AudioError):
                    message, prefix = str(out), f"{items[i]}: "
                    skipped.append((str(items[i]), message[len(prefix):] if message.startswith(prefix) else message))
                else:
                    results[i] = out
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
        kept = [entry for r in results if r is not None for entry in r]
        return kept, skipped

    def _set_training_data(self, analysed, sample_rate):
        if not analysed:
            raise AudioError("no usable audio: every input was skipped")
        feats = [f for f, _ in analysed]
        self.sources = [s for _, s in analysed]
        analysed.clear()
        self.sample_rate = int(sample_rate)
        self.sequence_lengths = np.array([f.n_frames for f in feats], dtype=np.int64)
        self.sequence_samples = np.array([f.n_samples for f in feats], dtype=np.int64)

        def gather(attr):
            # concatenate one field and let the per-file copies go, so the
            # whole corpus is never held twice
            out = np.concatenate([getattr(f, attr) for f in feats])
            for f in feats:
                setattr(f, attr, None)
            return out

        self.residual_signals = gather("residual")
        self.lpc_coefficients = gather("lpc")
        self.observations = gather("observations")
        self.perceptual_features = gather("perceptual")
        self.f0 = gather("f0")
        self.periodicity = gather("periodicity")
        self.observation_range = np.stack([self.observations.min(axis=0), self.observations.max(axis=0)]).astype(np.float64)
        self.frame_metadata = {k: np.concatenate([f.metadata.pop(k) for f in feats]) for k in METADATA_KEYS}
        self._X = None
        self._shape_cache = None

    def extract_features(self, audio, sample_rate=16000):
        """Analyse one signal (or a list of signals and/or file paths, each
        its own sequence) as the model's training data.

        Parameters
        ----------
        audio : ndarray [n_samples] or [n_samples, channels], path, or list of them
        sample_rate : int
            Rate of the given arrays; files are resampled to it.

        Returns
        -------
        lpc_coefficients : ndarray [T, lpc_order]
        residual_signals : ndarray float32 [T, hop_size]
        """
        items = list(audio) if isinstance(audio, (list, tuple)) else [audio]
        if not items:
            raise ValueError("audio must hold at least one signal or file")
        analysed, skipped = self._analyse_items(items, sample_rate)
        self.skipped_files = skipped
        self._set_training_data(analysed, sample_rate)
        return self.lpc_coefficients, self.residual_signals

    def extract_features_from_files(self, paths, sample_rate=16000, workers=0, progress=False, augment=False,
                                    backend=None):
        """Decode and analyse audio files (in parallel, in bounded memory) as
        the training data; unusable files are skipped and listed in
        ``skipped_files`` as (path, reason). With ``augment``, each file also
        contributes four augmented copies (:mod:`ssgs.augment`). Paths may
        be fsspec URLs. With ``backend`` (a
        :class:`ssgs.distributed.DaskBackend`) the files are analysed on a
        Dask cluster and the E-steps of training run there too.

        Returns
        -------
        lpc_coefficients : ndarray [T, lpc_order]
        residual_signals : ndarray float32 [T, hop_size]

        Raises
        ------
        AudioError
            When no file is usable.
        """
        paths = [str(p) for p in paths]
        if not paths:
            raise AudioError("no audio files given")
        sample_rate = _check_int("sample_rate", sample_rate, 1000)
        if backend is not None:  # on a cluster (ssgs.distributed.DaskBackend), which also runs the E-steps
            analysed, skipped = backend.extract(self, paths, sample_rate, augment)
            self.backend = backend
        else:
            analysed, skipped = self._analyse_items(paths, sample_rate, workers, progress=progress, augment=augment)
        self.skipped_files = skipped
        if not analysed:
            reasons = "; ".join(f"{p}: {r}" for p, r in skipped[:3])
            raise AudioError(f"no usable audio among {len(paths)} file(s) ({reasons})")
        self._set_training_data(analysed, sample_rate)
        return self.lpc_coefficients, self.residual_signals

    # -------------------------------------------------------------------- HMM
    def _data(self):
        self._require_data()
        if self._X is None:
            self._X = self.observations.astype(np.float64)
            var = self._X.var(axis=0)
            self._global_var = np.where(var > 0, var, 1.0)
        return self._X

    def initialize_hmm_parameters(self):
        """Seeded k-means++ initialisation on the standardised observations."""
        X = self._data()
        if X.shape[0] < self.n_states:
            raise SSGSError(f"{X.shape[0]} frames are too few for {self.n_states} states")
        self._new_rng()
        params = _hmm.initialize(X, self.sequence_lengths, self.n_states, self._rng, self.covariance_floor)
        self._set_params(params)
        self.iteration = 0
        self.converged = False
        self.training_history = []
        self._excitation = None
        self._reseeds = np.zeros(self.n_states, dtype=np.int64)
        return self

    def run_em_iteration(self):
        """One EM iteration.

        Returns
        -------
        log_likelihood : float
            Per frame, of the parameters the iteration started from.
        occupancy_entropy : float
        smoothness_penalty : float
        """
        X = self._data()
        self._require_model()
        if getattr(self, "_reseeds", None) is None or len(self._reseeds) != self.n_states:
            self._reseeds = np.zeros(self.n_states, dtype=np.int64)
        backend = getattr(self, "backend", None)
        params, record = _hmm.em_iteration(X, self.sequence_lengths, self.params, self._global_var,
                                           self.covariance_floor, self.n_threads, self._reseeds,
                                           estep=None if backend is None else backend.estep)
        self._set_params(params)
        self.iteration += 1
        record = {"iteration": self.iteration, **record}
        em = [r for r in self.training_history if "log_likelihood" in r]
        if self.tol > 0 and em and not record["reseeded"] and not em[-1].get("reseeded"):
            self.converged = record["log_likelihood"] - em[-1]["log_likelihood"] < self.tol
        self.training_history.append(record)
        return record["log_likelihood"], record["occupancy_entropy"], record["smoothness_penalty"]

    def iterative_refinement(self, n_iterations, callback=None):
        """Run EM for up to ``n_iterations`` more iterations, stopping early
        once converged. ``callback(model, record)`` runs after each one."""
        n_iterations = _check_int("n_iterations", n_iterations, 0)
        for _ in range(n_iterations):
            if self.converged:
                break
            self.run_em_iteration()
            if callback is not None:
                callback(self, self.training_history[-1])
        return self.training_history

    def identify_graph_constraints(self, min_state_probability=1e-4):
        """Remove the states the model can never or almost never reach.

        The transition graph's strongly connected components, the states
        reachable from a start state and the chain's long-run occupancy
        (the Cesaro mean of startprob A^t) are computed; states that are
        unreachable or occupied less than ``min_state_probability`` of the
        time are removed from every per-state array (parameters, excitation
        model, re-seed counts), the remaining rows of the transition matrix
        and the start probabilities renormalised.

        (The reference implementation kept such states; here they go, since
        a state that is never visited only wastes computation and can still
        be drawn with a tiny probability at generation, sounding like
        nothing the training audio had.)

        Parameters
        ----------
        min_state_probability : float in [0, 1)

        Returns
        -------
        dict
            ``components`` (lists of states, before the change),
            ``unreachable``, ``removed``, ``kept`` (state indices before the
            change), ``occupancy`` (long-run, before), ``n_states_before``,
            ``n_states_after``.
        """
        self._require_model()
        p = _check_float("min_state_probability", min_state_probability, 0.0, 1.0)
        if p >= 1.0:
            raise ValueError("min_state_probability must be below 1")
        components, reachable, occupancy, drop = _hmm.graph_structure(
            self.initial_probabilities, self.transition_matrix, p)
        keep = np.flatnonzero(~drop)
        result = {
            "components": components,
            "unreachable": np.flatnonzero(~reachable).tolist(),
            "removed": np.flatnonzero(drop).tolist(),
            "kept": keep.tolist(),
            "occupancy": occupancy.tolist(),
            "n_states_before": self.n_states,
            "n_states_after": int(keep.size),
        }
        if drop.any():
            exc = self.excitation_model if (self._excitation is not None or self.f0 is not None) else None
            start = self.initial_probabilities[keep]
            trans = self.transition_matrix[np.ix_(keep, keep)]
            # a row whose mass all went to removed states stays in place
            rows = trans.sum(axis=1)
            trans[rows <= 0, :] = np.eye(keep.size)[rows <= 0]
            start = start / start.sum() if start.sum() > 0 else np.full(keep.size, 1.0 / keep.size)
            self._set_params(_hmm.HMMParams(start, trans / trans.sum(axis=1, keepdims=True),
                                            self.state_means[keep], self.state_covariances[keep]))
            if exc is not None:
                self._excitation = exc.select(keep)
                self._excitation_iteration = self.iteration
            if getattr(self, "_reseeds", None) is not None and len(self._reseeds) == drop.size:
                self._reseeds = self._reseeds[keep]
            for name in list(getattr(self, "adaptive_statistics", {}) or {}):
                arr = self.adaptive_statistics[name]
                if isinstance(arr, np.ndarray) and arr.ndim >= 1 and arr.shape[0] == drop.size:
                    arr = arr[keep]
                    if arr.ndim >= 2 and arr.shape[1] == drop.size:
                        arr = arr[:, keep]
                    self.adaptive_statistics[name] = arr
        self.training_history.append({"iteration": self.iteration, "graph_constraints": {
            k: result[k] for k in ("removed", "n_states_before", "n_states_after")}})
        return result

    # ------------------------------------------------------------ adaptation
    def adapt_to_audio(self, audio, sample_rate=16000, adaptation_rate=0.25, stability_bias=0.05,
                       memory_blend=0.7, memory_limit=None, n_adaptation_iterations=1):
        """Adapt the model to new audio by online EM (see :mod:`ssgs.adaptation`).

        Parameters
        ----------
        audio : array, path, or list of them
            New material, each its own sequence; arrays at ``sample_rate``
            (resampled to the model's rate if different), files decoded at
            the model's rate.
        adaptation_rate : float in [0, 1]
            How far the parameters move towards the maximum of the blended
            statistics per iteration.
        stability_bias : float in [0, 1]
            Weight moved onto each state's self-transition afterwards.
        memory_blend : float in [0, 1]
            How much of the remembered statistics survives each update.
        memory_limit : int, optional
            Frames the memory holds at most (default ``adaptive_memory_limit``).
        n_adaptation_iterations : int

        Returns
        -------
        dict
            frames, log_likelihood_before / _after (per frame of the new
            audio), memory_frames, updates, mean_shift, transition_change,
            iterations.
        """
        from ssgs import adaptation as _adapt

        self._require_model()
        rate = _check_float("adaptation_rate", adaptation_rate, 0.0, 1.0)
        bias = _check_float("stability_bias", stability_bias, 0.0, 1.0)
        blend = _check_float("memory_blend", memory_blend, 0.0, 1.0)
        limit = self.adaptive_memory_limit if memory_limit is None else _check_int("memory_limit", memory_limit)
        iterations = _check_int("n_adaptation_iterations", n_adaptation_iterations)
        model_rate = int(self.sample_rate or 16000)
        items = list(audio) if isinstance(audio, (list, tuple)) else [audio]
        if not items:
            raise ValueError("audio must hold at least one signal or file")
        sample_rate = _check_int("sample_rate", sample_rate, 1000)
        if sample_rate != model_rate:
            import soxr

            items = [soxr.resample(_audio.prepare_signal(x, f"audio[{i}]"), sample_rate, model_rate, quality="HQ")
                     if not isinstance(x, (str, os.PathLike)) else x for i, x in enumerate(items)]
        analysed, skipped = self._analyse_items(items, model_rate)
        if not analysed:
            raise AudioError("no usable audio to adapt to: " + "; ".join(f"{p}: {r}" for p, r in skipped[:3]))
        X = np.concatenate([f.observations for f, _ in analysed]).astype(np.float64)
        lengths = np.array([f.n_frames for f, _ in analysed], dtype=np.int64)
        global_var = self._global_var if self._X is not None or self.observations is not None and self._data() is not None \
            else None
        memory = self._adaptive_memory(limit)
        if global_var is None:
            global_var = np.maximum(memory["moment2"].sum(0).diagonal() / max(float(memory["frames"]), 1.0)
                                    - (memory["moment1"].sum(0) / max(float(memory["frames"]), 1.0)) ** 2, 1e-12)
        params, memory, metrics = _adapt.adapt(
            self.params, memory, X, lengths, adaptation_rate=rate, stability_bias=bias, memory_blend=blend,
            memory_limit=limit, global_var=global_var, covariance_floor=self.covariance_floor,
            n_threads=self.n_threads, iterations=iterations)
        self._set_params(params)
        self.adaptive_statistics = memory
        if self.observation_range is not None:
            self.observation_range = np.stack([np.minimum(self.observation_range[0], X.min(axis=0)),
                                               np.maximum(self.observation_range[1], X.max(axis=0))])
        if self.has_training_artifacts:
            self._excitation_iteration = None  # refit from the training frames under the new parameters
        self.training_history.append({"iteration": self.iteration, "adaptation": metrics})
        return metrics

    def _adaptive_memory(self, limit):
        """The adaptation memory: stored, or started from the training frames
        (or, without them, from the model itself) scaled to ``limit`` frames."""
        from ssgs import adaptation as _adapt

        memory = getattr(self, "adaptive_statistics", None)
        if memory and all(k in memory for k in _adapt.STAT_NAMES) and memory["occupancy"].shape[0] == self.n_states:
            return {k: np.asarray(v, dtype=np.float64) for k, v in memory.items()}
        p = self.params
        if self.observations is not None:
            X = self._data()
            centre = X.mean(axis=0)
            stats = kernels.estep(X, self.sequence_lengths, p.startprob, p.transmat, p.means, p.covars,
                                  n_threads=self.n_threads)
            memory = _adapt.memory_from_estep(stats, p, centre, len(self.sequence_lengths))
            scale = min(1.0, limit / float(memory["frames"]))
            return {k: (v * scale if k not in ("centre", "updates") else v) for k, v in memory.items()}
        share = self.excitation_model.occupancy
        centre = share @ p.means
        return _adapt.initial_memory(p, centre, float(limit), share / share.sum())

    # -------------------------------------------------------- frame retrieval
    def _require_artifacts(self, what):
        if not self.has_training_artifacts:
            raise SSGSError(f"{what} needs the training frames: train the model or load a checkpoint "
                            "saved with its training artifacts")

    def build_feature_index(self, feature_space="lpc", normalize=True):
        """Index the training frames for nearest-neighbour queries.

        Parameters
        ----------
        feature_space : {'lpc', 'extended', 'residual'}
            'lpc': LPC coefficients; 'extended': the HMM observation (LARs,
            gain, voicing), log F0 and the frame metadata; 'residual': the
            residual's band energies, level and periodicity.
        normalize : bool
            Scale every dimension to unit variance (so no feature dominates
            by its units).

        Returns
        -------
        ssgs.retrieval.FrameIndex
        """
        from ssgs.retrieval import FrameIndex, frame_features

        self._require_artifacts("build_feature_index")
        self._feature_index = FrameIndex(frame_features(self, feature_space), feature_space, normalize)
        return self._feature_index

    def _index_for(self, feature_space):
        index = getattr(self, "_feature_index", None)
        if index is None or (feature_space is not None and index.feature_space != feature_space):
            index = self.build_feature_index(feature_space or "lpc")
        return index

    def _frame_result(self, indices, distances, feature_space):
        from ssgs.retrieval import FrameQueryResult

        return FrameQueryResult(np.asarray(indices, np.int64), np.asarray(distances, np.float64),
                                self.get_frame_metadata(indices=indices), feature_space)

    def query_similar_frames(self, frame_idx, k=5, feature_space=None, exclude_self=True):
        """The k training frames nearest to training frame ``frame_idx``.

        Returns
        -------
        ssgs.retrieval.FrameQueryResult
        """
        self._require_artifacts("query_similar_frames")
        T = int(self.sequence_lengths.sum())
        if isinstance(frame_idx, bool) or not isinstance(frame_idx, (int, np.integer)) or not 0 <= frame_idx < T:
            raise ValueError(f"frame_idx must be an integer in 0..{T - 1}, got {frame_idx!r}")
        k = _check_int("k", k)
        index = self._index_for(feature_space)
        from ssgs.retrieval import frame_features

        vector = frame_features(self, index.feature_space)[frame_idx]
        idx, dist = index.query(vector, k, exclude=int(frame_idx) if exclude_self else None)
        return self._frame_result(idx, dist, index.feature_space)

    def query_frames_by_features(self, vector, k=5, feature_space=None):
        """The k training frames nearest to a feature vector (in the units of
        the feature space, before normalisation)."""
        self._require_artifacts("query_frames_by_features")
        k = _check_int("k", k)
        index = self._index_for(feature_space)
        vector = np.asarray(vector, dtype=np.float64)
        if vector.shape != (index.n_dims,):
            raise ValueError(f"vector must have {index.n_dims} values for feature space "
                             f"'{index.feature_space}', got shape {vector.shape}")
        if not np.isfinite(vector).all():
            raise ValueError("vector contains NaN or inf")
        idx, dist = index.query(vector, k)
        return self._frame_result(idx, dist, index.feature_space)

    def get_frame_metadata(self, key=None, indices=None):
        """Per-frame metadata: a dict of arrays (every key, plus f0,
        periodicity, gain, sequence and seconds), or one array for ``key``;
        for all frames or the given ``indices``."""
        self._require_artifacts("get_frame_metadata")
        table = dict(self.frame_metadata)
        if self.f0 is not None:
            table["f0"], table["periodicity"] = self.f0, self.periodicity
        table["gain"] = self.observations[:, self.lpc_order]
        offsets = self.sequence_offsets
        frames = np.arange(offsets[-1])
        sequence = np.searchsorted(offsets, frames, side="right") - 1
        table["sequence"] = sequence
        table["seconds"] = (frames - offsets[sequence]) * self.hop_size / float(self.sample_rate)
        if key is not None and key not in table:
            raise ValueError(f"unknown metadata key {key!r}; known: {', '.join(sorted(table))}")
        if indices is not None:
            indices = np.asarray(indices, dtype=np.int64)
            if indices.size and (indices.min() < 0 or indices.max() >= offsets[-1]):
                raise ValueError(f"indices must lie in 0..{offsets[-1] - 1}")
        pick = (lambda v: v) if indices is None else (lambda v: np.asarray(v)[indices])
        return pick(table[key]) if key is not None else {k: pick(v) for k, v in table.items()}

    def top_frames(self, metric, k=10, descending=True):
        """The k frames with the largest (or smallest) value of a metadata
        metric; ``distances`` holds the values."""
        values = np.asarray(self.get_frame_metadata(metric), dtype=np.float64)
        k = _check_int("k", k)
        order = np.argsort(-values if descending else values, kind="stable")[:k]
        return self._frame_result(order, values[order], None)

    # ---------------------------------------------------------------- previews
    def render_preview(self, n_frames=32, sample_rate=None, state_sequence=None, seed=None):
        """A short fidelity-0 rendering of the model as it stands.

        Parameters
        ----------
        n_frames : int
            Length in frames (hop_size samples each).
        sample_rate : int, optional
            Output rate (default: the model's).
        state_sequence : array_like of int, optional
            Render this path of states (its length overrides n_frames)
            instead of one sampled from the HMM.
        seed : int, optional
            Default: derived from the model's seed and iteration, so a
            preview is reproducible.

        Returns
        -------
        ndarray of float32
        """
        self._require_model()
        rate = int(self.sample_rate or 16000)
        out_rate = rate if sample_rate is None else _check_int("sample_rate", sample_rate, 1000)
        seed = (int(self.seed or 0) * 1_000_003 + self.iteration) % 2**63 if seed is None else _check_int("seed", seed, 0)
        rng = np.random.default_rng(seed)
        if state_sequence is None:
            n_frames = _check_int("n_frames", n_frames)
            path = self._sample_path(n_frames, rng)
        else:
            path = np.asarray(state_sequence)
            if path.ndim != 1 or path.size == 0 or path.dtype.kind not in "iu":
                raise ValueError("state_sequence must be a non-empty 1-D sequence of state indices")
            if path.min() < 0 or path.max() >= self.n_states:
                raise ValueError(f"state_sequence holds states outside 0..{self.n_states - 1}")
            path = path.astype(np.int64)
        y = _synth.soft_limit(self._render_model(path, "karplus-strong", rng)[0])
        if out_rate != rate:
            import soxr

            y = soxr.resample(y, rate, out_rate, quality="HQ")
        return np.asarray(y, dtype=np.float32)

    def _preview_hook(self, every, n_frames, callback, keep=5):
        """An after-iteration hook that renders a preview every ``every``
        iterations into preview_snapshots and hands it to ``callback``; an
        exception in the callback is a warning, not a failed training."""
        import warnings
        from collections import deque

        self.preview_snapshots = deque(maxlen=keep)

        def hook(model, record):
            if model.iteration % every:
                return
            snapshot = {"iteration": model.iteration, "log_likelihood": record.get("log_likelihood"),
                        "sample_rate": int(model.sample_rate), "audio": model.render_preview(n_frames)}
            model.preview_snapshots.append(snapshot)
            if callback is not None:
                try:
                    callback(snapshot)
                except Exception as exc:  # the user's code: report, keep training
                    warnings.warn(f"preview_callback failed at iteration {model.iteration}: "
                                  f"{type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)

        return hook

    def select_n_states(self, n_iterations=5):
        """Choose ``n_states`` by BIC among ``auto_n_states_candidates``, each
        candidate trained for ``n_iterations`` from its own seeded start.
        Returns the candidates' scores (n_states, log_likelihood, bic)."""
        X = self._data()
        scores = []
        for n in self.auto_n_states_candidates:
            if n > X.shape[0]:
                continue
            self.n_states = n
            self.initialize_hmm_parameters()
            for _ in range(n_iterations):
                self.run_em_iteration()
            p = self.params
            stats = kernels.estep(X, self.sequence_lengths, p.startprob, p.transmat, p.means, p.covars,
                                  n_threads=self.n_threads)
            scores.append({"n_states": n, "log_likelihood": stats.log_likelihood / X.shape[0],
                           "bic": _hmm.bic(stats.log_likelihood, n, X.shape[1], X.shape[0])})
        if not scores:
            raise SSGSError(f"{X.shape[0]} frames are too few for any candidate state count")
        best = min(scores, key=lambda s: s["bic"])
        self.n_states = best["n_states"]
        return scores

    def train(self, audio, sample_rate=16000, n_em_iterations=10, callback=None, *, preview_every=None,
              preview_duration_frames=32, preview_callback=None, augment=False):
        """Extract features, initialise and run EM.

        Parameters
        ----------
        audio : ndarray, path, or list of arrays and/or paths
            Each array or file is its own HMM sequence (never concatenated).
        sample_rate : int
            Rate of the arrays, and the model's rate (files are resampled).
        n_em_iterations : int
        callback : callable, optional
            ``callback(model, record)`` after each EM iteration.
        preview_every : int, optional
            Every this many iterations, render a preview
            (:meth:`render_preview`, ``preview_duration_frames`` frames) into
            ``preview_snapshots`` (the last five kept) and pass it to
            ``preview_callback(snapshot)``; snapshot is a dict with
            iteration, log_likelihood, sample_rate and audio. An exception in
            the callback is a warning.
        augment : bool
            Also train on time-stretched (0.92, 1.08) and pitch-shifted
            (-0.5, +0.5 semitone) copies of each input, each its own
            sequence (see :mod:`ssgs.augment`).

        Returns
        -------
        self
        """
        n_em_iterations = _check_int("n_em_iterations", n_em_iterations, 0)
        items = list(audio) if isinstance(audio, (list, tuple)) else [audio]
        if not items:
            raise ValueError("audio must hold at least one signal or file")
        analysed, skipped = self._analyse_items(items, sample_rate, augment=bool(augment))
        self.skipped_files = skipped
        if not analysed:
            raise AudioError("no usable audio: " + "; ".join(f"{p}: {r}" for p, r in skipped[:3]))
        self._set_training_data(analysed, sample_rate)
        selection = self.select_n_states() if self.auto_n_states else None
        self.initialize_hmm_parameters()
        if selection is not None:
            self.training_history.append({"iteration": 0, "n_states_selection": selection})
        hooks = [callback] if callback is not None else []
        if preview_every is not None:
            hooks.append(self._preview_hook(_check_int("preview_every", preview_every),
                                            _check_int("preview_duration_frames", preview_duration_frames),
                                            preview_callback))

        def after(model, record):
            for hook in hooks:
                hook(model, record)

        self.iterative_refinement(n_em_iterations, after if hooks else None)
        return self

    # ------------------------------------------------------------- generation
    @property
    def excitation_model(self) -> _synth.ExcitationModel:
        """Per-state pitch histograms and periodicity (what the synthetic
        excitation follows), learned from the training frames' F0 and
        periodicity under the current parameters."""
        self._require_model()
        fresh = self._excitation is not None and self._excitation_iteration == self.iteration and \
            self._excitation.periodicity.shape[0] == self.n_states
        if fresh:
            return self._excitation
        if self.observations is not None and self.f0 is not None:
            p = self.params
            stats = kernels.estep(self._data(), self.sequence_lengths, p.startprob, p.transmat, p.means,
                                  p.covars, n_threads=self.n_threads, return_posteriors=True)
            shapes = self._frame_shapes() if self.has_training_artifacts else None
            labels = stats.posteriors.argmax(axis=1)  # each frame's most likely state
            smoothing = _synth.deviation_smoothing(self._data(), p.means, labels, self.sequence_lengths)
            exc = _synth.fit_excitation_model(stats.posteriors, self.f0.astype(np.float64),
                                              self.periodicity.astype(np.float64),
                                              self._silent_frames(), shapes, smoothing, self.sequence_lengths,
                                              labels=labels, observations=(self._data(), p.means, p.covars))
            # frames drawn along the training frames' own states (a fixed seed: the
            # calibration is part of the model, the same for the same training)
            lengths = self.sequence_lengths[: _synth.smoother_sequences(self.sequence_lengths)]
            n = int(lengths.sum())
            drawn = _synth.observation_trajectory(p, labels[:n], np.random.default_rng(0), smoothing=smoothing,
                                                  bounds=self.observation_range)
            exc.smoother = _synth.fit_smoother(self._data()[:n], lengths, drawn, p.means[labels[:n]],
                                               starts=_synth.sound_boundaries(exc, labels[:n]))
            self._excitation = exc
            self._excitation_iteration = self.iteration
            exc.voicing_offset = self._calibrate_voicing(labels)
            exc.equaliser = self._fit_equaliser(labels)
            if exc.equaliser is not None:  # the equaliser moves how periodic the audio reads: calibrate again
                exc.voicing_offset = self._calibrate_voicing(labels)
                self._derived_cache = None  # the colours were measured at the first offsets
            return self._excitation
        if self._excitation is not None and self._excitation.periodicity.shape[0] == self.n_states:
            return self._excitation
        return _synth.ExcitationModel.neutral(self.n_states)

    def _calibrate_voicing(self, labels, seconds=30.0, blocks=24, steps=5, bound=4.0,
                          seeds=1):
        """Per voiced excitation kind, the voicing-logit offset (within
        +-``bound``) at which the model's own audio is as periodic as the
        training audio, by :func:`ssgs.features.frame_harmonicity` (median
        over sounding frames): the normalised autocorrelation's peak over a
        window of ``frame_size``.

        What the model draws is the training frames' periodicity, but the
        audio made from it reads otherwise: drawn envelopes and levels that
        move within a frame blur the periods (less periodic), one clean
        excitation stands in for a mix of sources (more periodic). The model
        renders the training's own states ``labels`` (``blocks`` stretches
        spread over the corpus, ``seconds`` in all, so both sides cover the
        same material) at trial offsets, by bisection, pooling the frames
        of ``seeds`` renderings with seeds 1, 2, ... (the calibration is
        part of the model: the same for the same training). One 8-second
        rendering's median moves by a few hundredths from seed to seed with
        the string (the drawn notes differ).

        The median moves slowly with the offset (on read speech by 0.02-0.03
        per unit), so a hundredth of error in either median moves the
        offset by a third to a half: more material, one seed, rather than
        less material and three seeds, for the same cost. Over 10 seconds
        in 8 stretches (three seeds) speech's offsets came out at +2.9 /
        +2.6, over its whole 40 seconds at +2.1 / +1.9, where the model's
        own chain is as harmonic as the training (+2); 30 seconds in 24
        stretches read +2.1 / +1.6.

        Measured by the analysis' pitch tracker instead (the cross-correlation
        at the one period it picks), the offsets came out otherwise, and
        worse by both the ears' measure and this one: on read speech the
        tracker read the model's frames as less periodic than the training's
        and the offsets sat at their +4 bound, while the audio had cleaner
        valleys between its harmonics than the training's (copy-synthesis
        FMD 41 with the string and 25 with the pulses at +3.9, 20-24 and 16
        at +1); on the alsa words it left the pulses 0.12 less harmonic than
        the training."""
        config = self.feature_config
        hop, sr, frame = self.hop_size, config.sample_rate, self._harmonicity_window()
        rows = self._calibration_rows(labels.shape[0], seconds, blocks)
        sounding = self._silent_frames(rows) == 0
        if not sounding.any() or not self.has_training_artifacts:
            return np.zeros(len(_synth.VOICED_KINDS))
        threads = kernels.resolve_threads(self.n_threads)
        heard_training = self._training_harmonicity(rows, threads)
        keep = sounding & ~np.isnan(heard_training)
        if not keep.any():
            return np.zeros(len(_synth.VOICED_KINDS))
        target = float(np.median(heard_training[keep]))
        path = labels[rows]
        offsets = []
        for kind in _synth.VOICED_KINDS:
            def harmonicity(offset, kind=kind):
                pooled = []
                for seed in range(1, seeds + 1):
                    y, _ = self._render_model(path, kind, np.random.default_rng(seed), voicing_offset=offset)
                    h = frame_harmonicity(y, frame, hop, sr, workers=threads)[: path.size]
                    heard = np.any(np.pad(y, (0, path.size * hop - len(y))).reshape(path.size, -1) != 0, axis=1)
                    h = h[heard[: h.size]]
                    pooled.append(h[~np.isnan(h)])
                pooled = np.concatenate(pooled)
                return float(np.median(pooled)) if pooled.size else target
            lo, hi = -bound, bound
            for _ in range(steps):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if harmonicity(mid) < target else (lo, mid)
            offsets.append(0.5 * (lo + hi))
        return np.array(offsets)

    def _calibration_rows(self, n_frames, seconds, blocks):
        """The global frames the calibrations read: ``blocks`` stretches
        spread evenly over the ``n_frames`` training frames, ``seconds`` in
        all (or all of them), sorted."""
        n = max(1, min(n_frames, int(seconds * self.feature_config.sample_rate) // self.hop_size))
        size = max(1, n // blocks)
        starts = np.unique(np.linspace(0, n_frames - size, min(blocks, max(1, n_frames // size))).astype(np.int64))
        return np.concatenate([np.arange(a, a + size) for a in starts])

    def _fit_equaliser(self, labels, seconds=30.0, blocks=24, passes=_synth.EQUALISER_PASSES):
        """Per excitation kind, the equaliser (see
        :class:`ssgs.synthesis.ExcitationModel`): the log power to add to
        the kind's colour so that the model's audio along the training's
        own states ``labels`` (the voicing calibration's stretches,
        :meth:`_calibration_rows`) has, on average over frames, the training
        audio's spectrum over the same frames, each frame's band powers
        relative to its power (:func:`ssgs.synthesis.mean_band_spectrum`:
        64 mel-spaced bands, frames of 2 * hop every hop). Each of
        ``passes`` renderings (seeds 1, 2, ...: the equaliser is part of
        the model, the same for the same training) adds the difference
        that is left. Both sides are read without their DC offset (the
        songs' training has one: copied, it raised the string's 0 Hz by
        14 dB). None without the training artifacts or a sounding frame
        among those read.

        What it corrects is what the model cannot say frame by frame: the
        residual shapes' bins are 125 Hz apart and measured on one hop,
        so below about 100 Hz the excitation keeps its own energy where the
        training has none (read speech's audio, 20-60 Hz, sat 26 dB below
        its 250-500 Hz; the model's 12-16 dB), and the all-pole envelope
        fills valleys between strong partials that the training keeps (the
        songs', 9 dB at 1.5 kHz). Rendered along the training's own states
        rather than the model's chain: a 30-second stretch of the chain
        holds whatever material it wandered into (on speech, mostly one of
        the two voices), and equalisers fitted on two such stretches left
        the FMD 4-6 apart."""
        if not self.has_training_artifacts:
            return None
        rows = self._calibration_rows(labels.shape[0], seconds, blocks)
        if not np.any(self._silent_frames(rows) == 0):
            return None
        n, sr, bins = 2 * self.hop_size, self.feature_config.sample_rate, self.hop_size // 2 + 1
        pieces = [audio[frames[0] * self.hop_size: (frames[-1] + 1) * self.hop_size]
                  for _, audio, frames in self._training_stretches(rows, 1)]
        target = _synth.mean_band_spectrum(pieces, n, sr)
        if target is None:
            return None
        exc, path = self.excitation_model, labels[rows]
        equaliser = np.zeros((len(_synth.KINDS), bins))
        exc.equaliser = equaliser.astype(np.float16)  # what the renderings below are equalised by
        for k, kind in enumerate(_synth.KINDS):
            for seed in range(1, passes + 1):
                y, _ = self._render_model(path, kind, np.random.default_rng(seed))
                rendered = _synth.mean_band_spectrum([y], n, sr)
                if rendered is None:
                    break
                # the colour is taken out of the excitation: more colour, less gain
                step = _synth.equaliser_step(target, rendered, bins, sr)
                equaliser[k] = np.clip(equaliser[k] - step, -_synth.EQUALISER_BOUND, _synth.EQUALISER_BOUND)
                exc.equaliser = equaliser.astype(np.float16)
        return exc.equaliser

    def _harmonicity_window(self):
        """The calibration's window for :func:`ssgs.features.frame_harmonicity`:
        ``frame_size``, widened (as the pitch tracker's) to two periods of
        the lowest pitch searched and a little more: at 48 kHz a 1024-sample
        window's Hann taper ruled the reading of a 120 Hz note (a steady
        sawtooth read 0.39 where it reads 0.89 at 16 kHz)."""
        sr = self.feature_config.sample_rate
        return max(self.frame_size, int(np.ceil(2 * sr / pitch_range(sr)[0])) + 2)

    def _training_harmonicity(self, rows, threads=1):
        """:func:`ssgs.features.frame_harmonicity` of the training audio at
        global frames ``rows`` (sorted), each stretch of them rebuilt on its
        own (:meth:`_training_stretches`)."""
        frame, sr = self._harmonicity_window(), self.feature_config.sample_rate
        out = np.empty(np.asarray(rows).size)
        for piece, audio, frames in self._training_stretches(rows, -(-frame // (2 * self.hop_size)) + 1):
            out[piece] = frame_harmonicity(audio, frame, self.hop_size, sr, frames=frames, workers=threads)
        return out

    def _training_stretches(self, rows, reach):
        """The training audio at global frames ``rows`` (sorted), a stretch
        of consecutive rows at a time: yields (the positions in ``rows`` of
        the stretch, its audio, the stretch's frames' indices in that audio).
        Each stretch is rebuilt on its own from its LPC rows and residual,
        with ``reach`` frames around it (for windows that reach beyond a
        frame) and a run-in before it for the filter (zero state there: its
        transient has died out long before the first frame read), so a long
        sequence is never rebuilt whole for a few seconds of it."""
        rows = np.asarray(rows, dtype=np.int64)
        hop = self.hop_size
        run_in = reach + 16
        offsets = self.sequence_offsets
        sequence = np.searchsorted(offsets, rows, side="right") - 1
        cut = np.flatnonzero((np.diff(rows) != 1) | (np.diff(sequence) != 0)) + 1
        for piece in np.split(np.arange(rows.size), cut):
            if piece.size == 0:
                continue
            i = int(sequence[piece[0]])
            first, last = int(rows[piece[0]] - offsets[i]), int(rows[piece[-1]] - offsets[i]) + 1
            lo, hi = max(0, first - run_in), min(int(self.sequence_lengths[i]), last + reach)
            n = min(int(self.sequence_samples[i]), hi * hop) - lo * hop
            g0, g1 = offsets[i] + lo, offsets[i] + hi
            audio = rebuild_signal(self.lpc_coefficients[g0:g1], self.residual_signals[g0:g1], n, hop)
            yield piece, audio, np.arange(first, last) - lo

    def _decoded_path(self, index, cache, decoder="sample"):
        """The state path of training sequence ``index``: Viterbi, or with
        decoder='smooth' the dynamic program that also charges the distance
        between consecutive states (``smoothness_weight``)."""
        if index not in cache:
            offsets = self.sequence_offsets
            X = self._data()[offsets[index]:offsets[index + 1]]
            p = self.params
            logp = kernels.gaussian_logpdf(X, p.means, p.covars, n_threads=self.n_threads)
            if decoder == "smooth":
                scores = _synth.smooth_transition_scores(p, self.smoothness_weight, self.excitation_model.occupancy)
                with np.errstate(divide="ignore"):
                    cache[index] = kernels.viterbi_log(logp, np.log(p.startprob), scores)[1]
            else:
                cache[index] = kernels.viterbi(logp, p.startprob, p.transmat)[1]
        return cache[index]

    def _resolve_start(self, start, rng):
        """(sequence index, start sample) from ``start`` or drawn by ``rng``."""
        lengths = self.sequence_samples
        if start is None:
            index = int(rng.choice(len(lengths), p=lengths / lengths.sum()))
            frame = int(rng.integers(self.sequence_lengths[index]))
            return index, min(frame * self.hop_size, int(lengths[index]) - 1)
        try:
            index, seconds = start
        except (TypeError, ValueError):
            raise ValueError(f"start must be (file_index, seconds), got {start!r}") from None
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(lengths):
            raise ValueError(f"start file index must be in 0..{len(lengths) - 1}, got {index!r}")
        seconds = _check_float("start seconds", seconds, 0.0)
        sample = int(round(seconds * self.sample_rate))
        if sample >= lengths[index]:
            raise ValueError(f"start {seconds} s is past the end of file {index} "
                             f"({lengths[index] / self.sample_rate:.2f} s long)")
        return int(index), sample

    def _frames_from(self, index, frame, n_frames):
        """[(sequence, first frame, last frame)] covering n_frames from a
        point, continuing into the next sequences (and round to the first)."""
        pieces = []
        while n_frames > 0:
            take = min(n_frames, int(self.sequence_lengths[index]) - frame)
            pieces.append((index, frame, frame + take))
            n_frames -= take
            index = (index + 1) % len(self.sequence_lengths)
            frame = 0
        return pieces

    def _replay(self, index, sample, n, decoder="sample", cache=None):
        """The training audio from (index, sample), n samples, across files
        (``cache``: decoded paths already at hand, see :meth:`_decoded_path`)."""
        out, paths = [], []
        cache = {} if cache is None else cache
        while n > 0:
            audio = self.rebuild_sequence(index)[sample:sample + n]
            out.append(audio)
            f0, f1 = sample // self.hop_size, -(-(sample + len(audio)) // self.hop_size)
            paths.append(self._decoded_path(index, cache, decoder)[f0:f1])
            n -= len(audio)
            index, sample = (index + 1) % len(self.sequence_lengths), 0
        return np.concatenate(out), np.concatenate(paths)

    def _blend(self, index, sample, n, fidelity, kind, rng, decoder="sample"):
        """0 < fidelity < 1: the passage's own audio in a share ``fidelity``
        of its stretches, the model's rendering of the passage in the rest
        (see :func:`ssgs.synthesis.passage_stretches`), crossfaded."""
        hop = self.hop_size
        first, offset = sample // hop, sample % hop
        n_frames = -(-(n + offset) // hop)
        pieces = self._frames_from(index, first, n_frames)
        offsets = self.sequence_offsets
        cache = {}
        rows = np.concatenate([np.arange(offsets[i] + a, offsets[i] + b) for i, a, b in pieces])
        path = np.concatenate([self._decoded_path(i, cache, decoder)[a:b] for i, a, b in pieces])
        # drawn first, from the same seed the same at every fidelity: a higher
        # fidelity keeps every stretch a lower one kept
        shortest, longest = (max(1, int(round(t * self.sample_rate / hop))) for t in _synth.STRETCH_SECONDS)
        draws = _synth.passage_stretches(path, rng, shortest, longest)
        own = draws < fidelity
        real, _ = self._replay(index, first * hop, n_frames * hop, decoder, cache)
        model = self._render_passage(rows, path, fidelity, kind, rng)
        # equal power across each switch (the two are uncorrelated), over one hop
        share = _synth._ramp_between_centres(own.astype(np.float64), hop)
        y = np.sin(0.5 * np.pi * share) * real + np.cos(0.5 * np.pi * share) * model
        return y[offset:offset + n], path

    def _render_passage(self, rows, path, fidelity, kind, rng):
        """The model's rendering of training frames ``rows`` along their
        decoded states ``path``: frames drawn from the states, deviating
        from the state's mean as the passage's own frames do in proportion
        to the fidelity (the rest drawn afresh: each frame's spread is still
        its state's), silent where the passage's gain scores mixed with
        fresh ones say so, sounded with the passage's own pitch and voicing
        by the synthetic excitation. [len(rows) * hop]"""
        hop, p = self.hop_size, self.lpc_order
        exc = self.excitation_model
        obs, gain_score, draws = _synth.draw_frames(self.params, exc, path, rng, bounds=self.observation_range)
        X = self._data()[rows].astype(np.float64)
        mean = self.params.means[path]
        obs = mean + fidelity * (X - mean) + np.sqrt(1.0 - fidelity**2) * (obs - mean)
        deviations = None  # what the shapes follow, blended as the frames are
        if exc.shape_regression is not None:
            # (a passage's frame can lie far from its decoded state's mean: an
            # outlier predicts no more than a draw four deviations out would)
            own = np.clip(_synth.whitened_deviations(X, self.params.means, self.params.covars, path), -4.0, 4.0)
            deviations = fidelity * own + np.sqrt(1.0 - fidelity**2) * draws
        if self.observation_range is not None:
            obs = np.clip(obs, self.observation_range[0], self.observation_range[1])
        f0, voicing, onset = self._passage_controls(rows, path, kind)
        e = _synth.synthetic_excitation(kind, f0, voicing, onset, hop, self.sample_rate, int(rng.integers(2**63)))
        e = exc.shape_excitation(e, path, hop, rng, colour=self._excitation_colour(kind), deviations=deviations)
        silent = self._silent_frames(rows) == 1
        score = _synth.blended_gain_scores(self.params, exc, path, X[:, p], silent, gain_score, fidelity)
        y, _ = _synth.render(obs[:, :p], obs[:, p], e, hop, audible=_synth.audible_frames(exc, path, score))
        return np.pad(y, (0, len(rows) * hop - len(y)))

    def _passage_controls(self, rows, path, kind):
        """The excitation's controls for training frames ``rows`` (states
        ``path``): their own F0 (unvoiced frames: the state's most common
        pitch), their own periodicity as voicing (with the model's offset
        for ``kind``), and the plucks :func:`ssgs.synthesis.pluck_onsets`
        places along them. Returns (f0, voicing, onset), one per frame."""
        exc = self.excitation_model
        f0 = self.f0[rows].astype(np.float64)
        most_common = exc.pitch_log_f0[path, np.argmax(exc.pitch_histogram[path], axis=1)].astype(np.float64)
        f0 = np.where(f0 > 0, f0, np.exp(most_common))
        voicing = voicing_from_logit(voicing_logit(self.periodicity[rows]) + exc.offset_for(kind))
        return f0, voicing, _synth.pluck_onsets(voicing, f0)

    def _sample_path(self, n_frames, rng, decoder="sample"):
        """A state path of n_frames, read as an excerpt of an endless
        succession of training-like pieces: its first state drawn from the
        states' share of the training frames and its first chain running for
        a random part of a training sequence's length; then chains from the
        start distribution (a new piece begins), each as long as a training
        sequence drawn at random. (Each file is its own training sequence, so
        within one chain the HMM rarely leaves the kind of material it
        started in.) The chains follow the duration-corrected transitions
        (:func:`ssgs.synthesis.duration_corrected_transitions`): each state
        lasts as long as in training, on average, and where a state's runs
        are clearly not geometric, as long as its training runs
        (:func:`ssgs.synthesis.sample_path`); each stretch of silent states
        as long as a silence in training
        (:func:`ssgs.synthesis.retime_silences`)."""
        params = self.params
        lengths = [int(s["n_frames"]) for s in self.sources if s.get("n_frames")]
        occupancy = self.excitation_model.occupancy
        transmat = _synth.duration_corrected_transitions(params.transmat, self.excitation_model.mean_run)
        chain_runs = None if self.excitation_model.silence_runs is None else self._derived(
            "silences", lambda: _synth.chain_silence_runs(transmat, occupancy / occupancy.sum(),
                                                          self.excitation_model, seed=_DERIVED_SEED))
        pieces, total = [], 0
        while total < n_frames:
            take = n_frames - total if not lengths else min(n_frames - total, int(rng.choice(lengths)))
            start = params.startprob
            if total == 0:  # (a first piece all of dropped silence leaves nothing: still the first)
                start = occupancy / occupancy.sum()
                if lengths:
                    take = min(take, int(rng.integers(1, int(rng.choice(lengths)) + 1)))
            if decoder == "smooth":
                piece = _synth.smooth_path(params, take, rng, self.smoothness_weight, occupancy, start)
            else:
                piece = _synth.sample_path(start, transmat, take, int(rng.integers(2**63)),
                                           self.excitation_model.run_quantiles)
            pieces.append(_synth.retime_silences(piece, self.excitation_model, rng, chain_runs))
            total += pieces[-1].size
        return np.concatenate(pieces)[:n_frames]

    def _render_model(self, path, kind, rng, voicing_offset=None):
        """The model alone along a state path: frames drawn from the states,
        the synthetic excitation (its colour, :meth:`_excitation_colour`,
        taken out) given each state's residual shape (and where the model
        has one, the shape its frame's draw predicts), frames of silent
        states silent. Returns (audio, F0 per frame). With a trial
        ``voicing_offset`` (the calibration's: long renderings) the
        excitation's colour is measured on the excitation itself (and the
        model's equaliser, if it has one, added to it)."""
        hop, p = self.hop_size, self.lpc_order
        exc = self.excitation_model
        obs, f0, voicing, onset, audible, draws = _synth.model_trajectory(
            self.params, exc, path, rng, bounds=self.observation_range, kind=kind, voicing_offset=voicing_offset,
            return_draws=True)
        e = _synth.synthetic_excitation(kind, f0, voicing, onset, hop, self.sample_rate or 16000,
                                        int(rng.integers(2**63)))
        colour = self._excitation_colour(kind) if voicing_offset is None else \
            exc.equalised(_synth.excitation_colour(e, hop), kind)
        e = exc.shape_excitation(e, path, hop, rng, colour=colour, deviations=draws)
        y, _ = _synth.render(obs[:, :p], obs[:, p], e, hop, audible=audible)
        return y, f0

    def _excitation_colour(self, kind):
        """The colour of the model's own synthetic excitation of ``kind``
        (:func:`ssgs.synthesis.excitation_colour`), measured over
        COLOUR_HOPS hops of it: a state path, frames, pitch and voicing
        drawn from the model with a fixed seed (the colour is part of the
        model, the same for the same model; the caller's random stream is
        not touched). Generation takes it out of the excitation before
        putting the residual shapes on; a clip's own colour would hold its
        few pitches (see :func:`ssgs.synthesis.shape_excitation`), and a
        short clip would come out less periodic than a long one. Cached
        until the model's parameters or excitation statistics change. The
        model's equaliser for ``kind``, where it has one, is added to it
        (see :meth:`_fit_equaliser`)."""
        def measure():
            rng = np.random.default_rng(_DERIVED_SEED)
            path = self._sample_path(_synth.COLOUR_HOPS, rng)
            _, f0, voicing, onset, _ = _synth.model_trajectory(self.params, self.excitation_model, path, rng,
                                                               bounds=self.observation_range, kind=kind)
            e = _synth.synthetic_excitation(kind, f0, voicing, onset, self.hop_size, self.sample_rate or 16000,
                                            int(rng.integers(2**63)))
            return _synth.excitation_colour(e, self.hop_size)

        return self.excitation_model.equalised(self._derived(f"colour {kind}", measure), kind)

    def _derived(self, name, compute):
        """``compute()``, cached under ``name`` until the model's parameters
        or excitation statistics change: what generation derives from the
        model itself with a fixed seed (the excitation's colour, the
        chain's own silences)."""
        exc, p = self.excitation_model, self.params
        key = hashlib.blake2b(b"".join(np.ascontiguousarray(a).tobytes() for a in
                                       (p.startprob, p.transmat, p.means, p.covars)), digest_size=16).digest()
        cached = getattr(self, "_derived_cache", None)
        if cached is None or cached[0] is not exc or cached[1] != key:
            cached = self._derived_cache = (exc, key, {})
        if name not in cached[2]:
            cached[2][name] = compute()
        return cached[2][name]

    def _frame_shapes(self):
        """Each training hop's residual shape (they depend on the residual
        alone, not on the parameters: computed once per residual)."""
        cached = getattr(self, "_shape_cache", None)
        if cached is None or cached[0] is not self.residual_signals:
            self._shape_cache = (self.residual_signals, _synth.frame_spectral_shapes(self.residual_signals))
        return self._shape_cache[1]

    def _silent_frames(self, rows=slice(None)):
        """uint8 per training frame (of ``rows``): digital silence (level at the floor)."""
        return (self._data()[rows, self.lpc_order] <= GAIN_FLOOR + 1e-3).astype(np.uint8)  # float32 observations

    def _model_only(self, n, kind, rng, decoder="sample"):
        path = self._sample_path(-(-n // self.hop_size), rng, decoder)
        y, f0 = self._render_model(path, kind, rng)
        return y[:n], path, f0

    def generate(self, duration_seconds, sample_rate=16000, fidelity=0.0, excitation_type="Karplus-Strong",
                 rng=None, seed=None, start=None, *, decoder="sample", return_details=False):
        """Make audio.

        Parameters
        ----------
        duration_seconds : float
            Length of the output (> 0).
        sample_rate : int
            Output rate; other than the model's, the audio is resampled with
            soxr.
        fidelity : float in [0, 1]
            1 replays the training audio exactly from ``start``; 0 uses the
            model alone; in between, a share ``fidelity`` of the passage's
            stretches is the training audio itself and the rest the model's
            rendering of the same passage, crossfaded (see
            :mod:`ssgs.synthesis`).
        excitation_type : {'Karplus-Strong', 'Wavelet', 'Noise'}
            The synthetic excitation: a plucked string tuned to the modelled
            F0, a train of wavelet-shaped pulses at that F0 (both mixed with
            noise by the modelled periodicity), or noise alone.
        rng : numpy.random.Generator, optional
            Draws the seed when ``seed`` is None.
        seed : int, optional
            The same seed gives the same samples. Neither seed nor rng: a
            fresh seed, recorded in the details.
        start : (file_index, seconds), optional
            Where in the training audio a fidelity > 0 generation begins;
            drawn by the seed when None.
        decoder : {'sample', 'smooth'}
            How the state path is made. 'sample': at fidelity 0 drawn from
            the HMM as an excerpt of a succession of training-like pieces
            (first state from the states' share of the training frames, then
            chains from the start distribution as long as training
            sequences; each state's runs as long, on average, as in the
            training); at fidelity > 0 the Viterbi path of the training
            frames. 'smooth': a dynamic program (C) that trades transition
            log-probability against the distance between consecutive states'
            means, weighted by ``smoothness_weight`` (at fidelity 0 with
            Gumbel noise per frame: a perturb-and-MAP draw).
        return_details : bool
            Also return a :class:`ssgs.synthesis.GenerationDetails` (state
            path, source file and sample where it began, seed, ...); the
            details of the last generation are kept in ``last_generation``.

        Returns
        -------
        ndarray of float32, shape (round(duration_seconds * sample_rate),)
            Mono audio within [-1, 1].

        Raises
        ------
        ValueError
            A bad argument (the message names it).
        SSGSError
            fidelity > 0 on a model without training artifacts.
        """
        self._require_model()
        duration = _check_float("duration_seconds", duration_seconds, 0.0, low_open=True)
        fidelity = _check_float("fidelity", fidelity, 0.0, 1.0)
        kind = _synth.parse_excitation(excitation_type)
        sample_rate = _check_int("sample_rate", sample_rate, 1000)
        if decoder not in ("sample", "smooth"):
            raise ValueError(f"decoder must be 'sample' or 'smooth', got {decoder!r}")
        if seed is None:
            seed = int(rng.integers(2**63)) if rng is not None else int(np.random.SeedSequence().entropy % 2**63)
        seed = _check_int("seed", seed, 0)
        r = np.random.default_rng(seed)
        model_rate = int(self.sample_rate or 16000)
        n = max(1, int(round(duration * model_rate)))
        details = dict(seed=seed, fidelity=fidelity, excitation_type=_synth.EXCITATION_TYPES[
            _synth.KINDS.index(kind)], sample_rate=sample_rate, decoder=decoder)
        if fidelity > 0:
            if not self.has_training_artifacts:
                raise SSGSError("fidelity > 0 replays training audio, but this model has no training "
                                "artifacts (saved with include_training_artifacts=False or --no-artifacts); "
                                "use fidelity=0 or a checkpoint with artifacts")
            index, sample = self._resolve_start(start, r)
            if fidelity == 1.0:
                y, path = self._replay(index, sample, n, decoder)
            else:
                y, path = self._blend(index, sample, n, fidelity, kind, r, decoder)
            details.update(source_index=index, source_path=self.sources[index]["path"], start_sample=sample,
                           start_seconds=sample / model_rate)
            f0 = None
        else:
            y, path, f0 = self._model_only(n, kind, r, decoder)
        y = _synth.soft_limit(y)
        if sample_rate != model_rate:
            import soxr

            y = soxr.resample(y, model_rate, sample_rate, quality="HQ")
        y = np.ascontiguousarray(y, dtype=np.float32)
        result = _synth.GenerationDetails(n_samples=len(y), state_path=path, f0=f0, **details)
        self.last_generation = result
        return (y, result) if return_details else y

    def synthesize_audio(self, duration_seconds, sample_rate=16000, fidelity=0.0, excitation_type="Karplus-Strong",
                         rng=None, seed=None, start=None, **kwargs):
        """The same as :meth:`generate` (the reference implementation's name)."""
        return self.generate(duration_seconds, sample_rate, fidelity, excitation_type, rng, seed, start, **kwargs)

    # ------------------------------------------------------------ persistence
    def config(self) -> dict:
        """The configuration a checkpoint records (runtime knobs such as
        n_threads are not part of it)."""
        return {
            "n_states": self.n_states, "lpc_order": self.lpc_order, "frame_size": self.frame_size,
            "hop_size": self.hop_size, "smoothness_weight": self.smoothness_weight,
            "auto_n_states": self.auto_n_states, "adaptive_memory_limit": self.adaptive_memory_limit,
            "seed": self.seed, "tol": self.tol, "covariance_floor": self.covariance_floor,
            "auto_n_states_candidates": list(self.auto_n_states_candidates),
            "sample_rate": self.sample_rate, "n_features": self.n_features,
            "n_mel": self.feature_config.n_mel, "n_erb": self.feature_config.n_erb,
        }

    def training_state(self) -> dict:
        return {
            "iteration": self.iteration,
            "converged": self.converged,
            "history": self.training_history,
            "rng_state": None if self._rng is None else self._rng.bit_generator.state,
            "reseeds": None if getattr(self, "_reseeds", None) is None else [int(r) for r in self._reseeds],
        }

    def save_checkpoint(self, path, include_training_artifacts=True, include_adaptive_statistics=True):
        """Write a verified safetensors checkpoint (atomically; path may be an
        fsspec URL). Returns the path.

        Parameters
        ----------
        path : str or Path
        include_training_artifacts : bool
            Also store what resuming without the audio and rebuilding the
            training audio need: observations, LPC coefficients, residual,
            sequence boundaries, frame metadata, perceptual features.
        include_adaptive_statistics : bool
            Also store online-adaptation statistics, when there are any.
        """
        self._require_model()
        tensors = {
            "transition_matrix": np.asarray(self.transition_matrix, np.float64),
            "initial_probabilities": np.asarray(self.initial_probabilities, np.float64),
            "state_means": np.asarray(self.state_means, np.float64),
            "state_covariances": np.asarray(self.state_covariances, np.float64),
        }
        if include_training_artifacts and self.has_training_artifacts:
            tensors.update({
                "observations": self.observations.astype(np.float32),
                "lpc_coefficients": self.lpc_coefficients.astype(np.float64),
                "residual_signals": self.residual_signals.astype(np.float32),
                "sequence_offsets": self.sequence_offsets,
                "sequence_samples": self.sequence_samples.astype(np.int64),
                "perceptual_features": self.perceptual_features.astype(np.float16),
            })
            if self.f0 is not None:
                tensors["f0"] = self.f0.astype(np.float32)
                tensors["periodicity"] = self.periodicity.astype(np.float32)
            for key, values in self.frame_metadata.items():
                tensors[f"frame_metadata__{key}"] = values.astype(np.float32)
        # The excitation model follows from the parameters and the artifacts
        # (load_checkpoint rebuilds it on first use, deterministically), so
        # a checkpoint with artifacts stores it only if it is already at
        # hand; one without artifacts must carry it.
        fresh = self._excitation is not None and self._excitation_iteration == self.iteration
        with_artifacts = include_training_artifacts and self.has_training_artifacts
        if fresh or (not with_artifacts and (self.f0 is not None or self._excitation is not None)):
            tensors.update(self.excitation_model.tensors())
        if self.observation_range is not None:
            tensors["observation_range"] = np.asarray(self.observation_range, np.float64)
        if include_adaptive_statistics:
            for name, value in (getattr(self, "adaptive_statistics", None) or {}).items():
                tensors[f"adaptive__{name}"] = np.asarray(value, np.float64)
        metadata = {
            "config": json.dumps(self.config(), sort_keys=True),
            "training_state": json.dumps(self.training_state(), sort_keys=True),
            "sources": json.dumps(self.sources, sort_keys=True),
        }
        return _ckpt.write_checkpoint(path, tensors, metadata)

    @classmethod
    def _from_config(cls, config, name):
        try:
            model = cls(n_states=config["n_states"], lpc_order=config["lpc_order"],
                        frame_size=config["frame_size"], hop_size=config["hop_size"],
                        smoothness_weight=config.get("smoothness_weight", 0.5),
                        auto_n_states=config.get("auto_n_states", False),
                        adaptive_memory_limit=config.get("adaptive_memory_limit", 6000),
                        seed=config.get("seed"), tol=config.get("tol", 1e-4),
                        covariance_floor=config.get("covariance_floor", 1e-3),
                        auto_n_states_candidates=config.get("auto_n_states_candidates", _AUTO_CANDIDATES))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{name}: invalid configuration ({exc})") from None
        model.sample_rate = config.get("sample_rate")
        return model

    @classmethod
    def load_checkpoint(cls, path, verify=True):
        """Load a checkpoint written by :meth:`save_checkpoint`.

        Raises
        ------
        CheckpointError
            Naming the file and the fault: truncated, corrupt (a digest does
            not match), a missing tensor, a shape that disagrees with the
            configuration, NaN or inf, or a format newer than this ssgs.
        """
        name = str(path)
        tensors, metadata = _ckpt.read_checkpoint(path, verify=verify)
        config = _ckpt.json_field(metadata, "config", name)
        _check_config(config, name, "metadata entry 'config'")
        artifact_shapes = _artifact_shapes(tensors, config, name)
        _check_tables(tensors, config, name, artifact_shapes)

        model = cls._from_config(config, name)
        model._set_params(_hmm.HMMParams(
            np.array(tensors["initial_probabilities"]), np.array(tensors["transition_matrix"]),
            np.array(tensors["state_means"]), np.array(tensors["state_covariances"])))
        state = _ckpt.json_field(metadata, "training_state", name, default={})
        model.iteration = int(state.get("iteration", 0))
        model.converged = bool(state.get("converged", False))
        model.training_history = list(state.get("history", []))
        if state.get("reseeds") is not None:
            model._reseeds = np.array(state["reseeds"], dtype=np.int64)
        if state.get("rng_state") is not None:
            model._rng = np.random.default_rng()
            try:
                model._rng.bit_generator.state = state["rng_state"]
            except (TypeError, ValueError, KeyError):
                raise CheckpointError(f"{name}: unreadable random-generator state") from None
        model.sources = _ckpt.json_field(metadata, "sources", name, default=[])
        if artifact_shapes is not None:
            offsets = tensors["sequence_offsets"]
            model.sequence_lengths = np.diff(offsets).astype(np.int64)
            model.sequence_samples = np.array(tensors["sequence_samples"], dtype=np.int64)
            if np.any(n_frames_for_array(model.sequence_samples, model.hop_size) != model.sequence_lengths):
                raise CheckpointError(f"{name}: 'sequence_samples' disagrees with 'sequence_offsets'")
            model.observations = np.array(tensors["observations"])
            model.lpc_coefficients = np.array(tensors["lpc_coefficients"])
            model.residual_signals = np.array(tensors["residual_signals"])
            model.frame_metadata = {k: np.array(tensors[f"frame_metadata__{k}"]) for k in METADATA_KEYS
                                    if f"frame_metadata__{k}" in tensors}
            if "perceptual_features" in tensors:
                model.perceptual_features = np.array(tensors["perceptual_features"])
            if "f0" in tensors and "periodicity" in tensors:
                model.f0 = np.array(tensors["f0"])
                model.periodicity = np.array(tensors["periodicity"])
        if all(k in tensors for k in ("state_pitch_histogram", "state_pitch_log_f0", "state_periodicity")):
            model._excitation = _synth.ExcitationModel.from_tensors(tensors)
            model._excitation_iteration = model.iteration
        if "observation_range" in tensors:
            model.observation_range = np.array(tensors["observation_range"])
        adaptive = {k[len("adaptive__"):]: np.array(v) for k, v in tensors.items() if k.startswith("adaptive__")}
        if adaptive:
            model.adaptive_statistics = adaptive
        return model

    def export_model(self, path, use_compression=True, precision=np.float32, pack_covariances=True,
                     include_training_artifacts=False, include_adaptive_statistics=True):
        """Write the model to a numpy ``.npz`` file (readable with
        ``allow_pickle=False``; :meth:`load_model` reads it back).

        Parameters
        ----------
        path : str, Path or file object
        use_compression : bool
            ``np.savez_compressed`` rather than ``np.savez``.
        precision : numpy float dtype
            dtype of the parameters and statistics (float32 halves the file;
            float64 keeps them exact).
        pack_covariances : bool
            Store each covariance's upper triangle only ([N, D(D+1)/2]).
        include_training_artifacts : bool
            Also store observations, LPC coefficients, residual, sequence
            boundaries, F0, periodicity and frame metadata.
        include_adaptive_statistics : bool
            Also store online-adaptation statistics, when there are any.
        """
        self._require_model()
        dtype = np.dtype(precision)
        if dtype.kind != "f":
            raise ValueError(f"precision must be a floating-point dtype, got {dtype}")
        N, D = self.state_means.shape
        covars = np.asarray(self.state_covariances, np.float64)
        if pack_covariances:
            iu = np.triu_indices(D)
            covars = covars[:, iu[0], iu[1]]
        arrays = {
            "transition_matrix": np.asarray(self.transition_matrix).astype(dtype),
            "initial_probabilities": np.asarray(self.initial_probabilities).astype(dtype),
            "state_means": np.asarray(self.state_means).astype(dtype),
            "state_covariances": covars.astype(dtype),
            "config": np.array(json.dumps(self.config(), sort_keys=True)),
            "training_state": np.array(json.dumps(self.training_state(), sort_keys=True)),
            "sources": np.array(json.dumps(self.sources, sort_keys=True)),
            "export_format": np.array(json.dumps({"packed_covariances": bool(pack_covariances),
                                                  "precision": dtype.name, "version": 1})),
        }
        if self._excitation is not None or self.f0 is not None:
            # the compact tables stay as they are at any precision: float16 ones
            # stay float16 (nothing is lost, and a reload keeps them compact:
            # float32 would read as an older model's), an older model's float32
            # ones float32 (in float64 a reload would round them to float16)
            exc = self.excitation_model
            half = {exc.TENSORS[f] for f in exc.HALF}
            tables = {k: np.asarray(v) for k, v in exc.tensors().items()}
            arrays.update({k: v if v.dtype == np.float16 or (k in half and v.dtype == np.float32) else
                           v.astype(dtype) for k, v in tables.items()})
        if self.observation_range is not None:
            arrays["observation_range"] = np.asarray(self.observation_range).astype(dtype)
        if include_training_artifacts and self.has_training_artifacts:
            arrays.update({
                "observations": self.observations, "lpc_coefficients": self.lpc_coefficients,
                "residual_signals": self.residual_signals, "sequence_offsets": self.sequence_offsets,
                "sequence_samples": self.sequence_samples, "perceptual_features": self.perceptual_features,
            })
            if self.f0 is not None:
                arrays["f0"], arrays["periodicity"] = self.f0, self.periodicity
            for key, values in self.frame_metadata.items():
                arrays[f"frame_metadata__{key}"] = values
        if include_adaptive_statistics:
            for name, value in (getattr(self, "adaptive_statistics", None) or {}).items():
                arrays[f"adaptive__{name}"] = np.asarray(value)
        (np.savez_compressed if use_compression else np.savez)(path, **arrays)
        return str(path) if not hasattr(path, "write") else path

    @classmethod
    def load_model(cls, path):
        """Load a model written by :meth:`export_model` (parameters back in
        float64; artifacts and adaptive statistics when the file has them)."""
        name = str(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError) as exc:
            raise CheckpointError(f"{name}: not a readable .npz model ({exc})") from None
        for key in ("config", *_ckpt.REQUIRED_TENSORS):
            if key not in arrays:
                raise CheckpointError(f"{name}: missing '{key}'")
        try:
            config = json.loads(str(arrays["config"]))
            fmt = json.loads(str(arrays["export_format"])) if "export_format" in arrays else {}
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{name}: 'config' is not valid JSON ({exc})") from None
        _check_config(config, name, "'config'")
        N, D = int(config["n_states"]), int(config["n_features"])
        covars = arrays["state_covariances"].astype(np.float64)
        if fmt.get("packed_covariances"):
            if covars.shape != (N, D * (D + 1) // 2):
                raise CheckpointError(f"{name}: packed covariances have shape {covars.shape}, "
                                      f"the configuration needs ({N}, {D * (D + 1) // 2})")
            full = np.zeros((N, D, D))
            iu = np.triu_indices(D)
            full[:, iu[0], iu[1]] = covars
            full[:, iu[1], iu[0]] = covars
            covars = full
        arrays["state_covariances"] = covars
        _check_tables(arrays, config, name, _artifact_shapes(arrays, config, name))
        model = cls._from_config(config, name)
        start = arrays["initial_probabilities"].astype(np.float64)
        trans = arrays["transition_matrix"].astype(np.float64)
        if arrays["transition_matrix"].dtype != np.float64:
            # rounded to a smaller float: rows sum to 1 again
            start, trans = start / start.sum(), trans / trans.sum(axis=1, keepdims=True)
        model._set_params(_hmm.HMMParams(start, trans, arrays["state_means"].astype(np.float64), covars))
        if "training_state" in arrays:
            state = json.loads(str(arrays["training_state"]))
            model.iteration = int(state.get("iteration", 0))
            model.converged = bool(state.get("converged", False))
            model.training_history = list(state.get("history", []))
        if "sources" in arrays:
            model.sources = json.loads(str(arrays["sources"]))
        if all(k in arrays for k in ("state_pitch_histogram", "state_pitch_log_f0", "state_periodicity")):
            model._excitation = _synth.ExcitationModel.from_tensors(arrays)
            model._excitation_iteration = model.iteration
        if "observation_range" in arrays:
            model.observation_range = arrays["observation_range"].astype(np.float64)
        if "sequence_offsets" in arrays:
            model.sequence_lengths = np.diff(arrays["sequence_offsets"]).astype(np.int64)
            model.sequence_samples = arrays["sequence_samples"].astype(np.int64)
            if np.any(n_frames_for_array(model.sequence_samples, model.hop_size) != model.sequence_lengths):
                raise CheckpointError(f"{name}: 'sequence_samples' disagrees with 'sequence_offsets'")
            model.observations = arrays["observations"]
            model.lpc_coefficients = arrays["lpc_coefficients"]
            model.residual_signals = arrays["residual_signals"]
            model.perceptual_features = arrays.get("perceptual_features")
            model.f0, model.periodicity = arrays.get("f0"), arrays.get("periodicity")
            model.frame_metadata = {k[len("frame_metadata__"):]: v for k, v in arrays.items()
                                    if k.startswith("frame_metadata__")}
        adaptive = {k[len("adaptive__"):]: v for k, v in arrays.items() if k.startswith("adaptive__")}
        if adaptive:
            model.adaptive_statistics = adaptive
        return model

    def __repr__(self):
        fitted = "fitted" if self.state_means is not None else "not fitted"
        return (f"SpectralStateGuidedSynthesis(n_states={self.n_states}, lpc_order={self.lpc_order}, "
                f"frame_size={self.frame_size}, hop_size={self.hop_size}, {fitted})")


def _check_config(config, name, what):
    """A saved model's configuration (``what``, for the message) is a JSON
    object with the sizes; fills in ``n_features`` for older files."""
    if not isinstance(config, dict):
        raise CheckpointError(f"{name}: {what} is not a JSON object")
    for key in ("n_states", "lpc_order", "frame_size", "hop_size"):
        if key not in config:
            raise CheckpointError(f"{name}: configuration lacks '{key}'")
    config.setdefault("n_features", config["lpc_order"] + 2)


def _artifact_shapes(tensors, config, name):
    """The shapes the training artifacts in ``tensors`` must have (None
    without artifacts), after checking the sequence boundaries and that the
    artifacts needed to use them are all there."""
    if "sequence_offsets" not in tensors:
        return None
    offsets = tensors["sequence_offsets"]
    if offsets.ndim != 1 or offsets.size < 2 or offsets[0] != 0 or np.any(np.diff(offsets) < 1):
        raise CheckpointError(f"{name}: tensor 'sequence_offsets' is not an increasing list from 0")
    T, S = int(offsets[-1]), offsets.size - 1
    D, p, hop = int(config["n_features"]), int(config["lpc_order"]), int(config["hop_size"])
    shapes = {"observations": (T, D), "lpc_coefficients": (T, p), "residual_signals": (T, hop),
              "sequence_samples": (S,), "perceptual_features": (T, None)}
    shapes.update({f"frame_metadata__{k}": (T,) for k in METADATA_KEYS})
    shapes.update({"f0": (T,), "periodicity": (T,)})
    for required in ("observations", "lpc_coefficients", "residual_signals", "sequence_samples"):
        if required not in tensors:
            raise CheckpointError(f"{name}: missing tensor '{required}' (the training artifacts are incomplete)")
    return shapes


def _check_tables(tensors, config, name, artifact_shapes=None):
    """A saved model's tensors (a checkpoint's or an npz export's): the
    parameters, the artifacts' shapes (``artifact_shapes``) and the
    excitation's tables are shaped as the configuration says and finite,
    shares are not negative and run-length quantiles are run lengths."""
    N, D = int(config["n_states"]), int(config["n_features"])
    excitation_shapes = {"state_pitch_histogram": (N, _synth.N_PITCH_BINS),
                         "state_pitch_log_f0": (N, _synth.N_PITCH_BINS), "state_periodicity": (N,),
                         "state_residual_shape": (N, _synth.SHAPE_BINS),
                         "state_silence": (N,), "state_occupancy": (N,),
                         "observation_smoothing": (D,), "observation_smoother": (None, D),
                         "state_mean_run": (N,), "excitation_voicing_offset": (len(_synth.VOICED_KINDS),),
                         "excitation_pitch_motion": (2,), "excitation_pitch_leaps": (_synth.N_PITCH_BINS,),
                         "excitation_shape_components": (None, _synth.SHAPE_BINS),
                         "excitation_silence_runs": (_synth.SILENCE_QUANTILES,),
                         "excitation_silence_rate": (),
                         "state_shape_spread": (N, None), "excitation_shape_correlation": (None,),
                         "state_run_quantiles": (N, _synth.RUN_QUANTILES),
                         "state_shape_regression": (N, None, D),
                         "excitation_equaliser": (len(_synth.KINDS), int(config["hop_size"]) // 2 + 1),
                         "observation_range": (2, D)}
    _ckpt.check_model_tensors(tensors, config, name, {**(artifact_shapes or {}), **excitation_shapes})
    for share in ("state_pitch_histogram", "excitation_pitch_leaps", "state_occupancy", "state_silence"):
        if share in tensors and np.any(np.asarray(tensors[share]) < 0):
            raise CheckpointError(f"{name}: tensor '{share}' has negative values, but it holds shares")
    if "state_run_quantiles" in tensors:
        q = np.asarray(tensors["state_run_quantiles"], dtype=np.float64)
        own = np.any(q != 0, axis=1)
        if np.any(q[own] < 1) or np.any(np.diff(q[own], axis=1) < 0):
            raise CheckpointError(f"{name}: tensor 'state_run_quantiles' has a row that is neither all zeros "
                                  f"nor run lengths (1 frame or more) in increasing order")
    if "state_shape_regression" in tensors:
        components = tensors.get("excitation_shape_components")
        R = tensors["state_shape_regression"].shape[1]
        if components is None or R > components.shape[0]:
            raise CheckpointError(f"{name}: tensor 'state_shape_regression' regresses {R} shape components, "
                                  f"but the model has {0 if components is None else components.shape[0]}")
    rows = tensors["observation_smoother"].shape[0] if "observation_smoother" in tensors else 4
    if rows not in (2, 4):
        raise CheckpointError(f"{name}: tensor 'observation_smoother' has {rows} rows, "
                              f"but ssgs knows 2 (older) or 4")


def n_frames_for_array(samples, hop):
    return -(-np.asarray(samples, dtype=np.int64) // hop)


def _audio_sha(signal):
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(signal, dtype=np.float32).tobytes()).hexdigest()
