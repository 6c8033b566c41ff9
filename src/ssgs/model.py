"""The front door: :class:`SpectralStateGuidedSynthesis`.

A thin class that holds the configuration, the fitted HMM, the training
corpus and the excitation model, and delegates the work: analysis to
:mod:`ssgs.corpus`, EM to :mod:`ssgs.hmm`, the excitation statistics to
:mod:`ssgs.excitation_model`, generation to :mod:`ssgs.synthesis`,
persistence to :mod:`ssgs.model_io` and :mod:`ssgs.checkpoint`. The public
names are those of the reference implementation.
"""

from __future__ import annotations

import hashlib as _hashlib
import warnings

import numpy as np

from ssgs import excitation_model as _excitation
from ssgs import hmm as _hmm
from ssgs import kernels
from ssgs import model_io
from ssgs import synthesis
from ssgs.adaptation import Adaptation
from ssgs.audio import describe_skipped
from ssgs.checks import audio_items, check_duration, check_float, check_int, check_memory
from ssgs.corpus import Corpus, analyse_items, store_sequence
from ssgs.errors import AudioError, CheckpointError, SSGSError, StateCountWarning
from ssgs.frame_store import FrameStore
from ssgs.features import FeatureConfig, analysis_defaults, lpc_from_reflection, reflection_from_lar
from ssgs.retrieval import FrameQueries
from ssgs.synthesis.calibration import calibrate
from ssgs.synthesis.voice import Voice

__all__ = ["SpectralStateGuidedSynthesis"]

_AUTO_CANDIDATES = (8, 16, 24, 32)


class SpectralStateGuidedSynthesis(_hmm.StateSelection, model_io.Persistence, FrameQueries, Adaptation):
    """A Gaussian HMM over per-frame LPC descriptions of audio, and audio made from it.

    Parameters
    ----------
    n_states : int
        Hidden states (spectral states) of the HMM.
    lpc_order : int, optional
        LPC order p; observations have p + 2 dimensions (p log-area ratios,
        the log gain and the voicing).
    frame_size : int, optional
        Analysis window length in samples (Hann).
    hop_size : int, optional
        Samples between frames; frame f rules samples [f*hop, (f+1)*hop).
        Each of the three left out follows the rate the model is trained at
        (:func:`ssgs.features.analysis_defaults`: 12, 1024, 256 up to
        24 kHz; 24, 4096, 1024 at 44.1 and 48 kHz).
    smoothness_weight : float
        Weight of spectral smoothness against transition cost for
        ``decoder='smooth'`` generation, in [0, 1].
    auto_n_states : bool
        Choose n_states by BIC among ``auto_n_states_candidates`` when the
        parameters are initialised (:meth:`initialize_hmm_parameters`, which
        :meth:`train` calls).
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
        Each covariance is kept at least this fraction of the data's variance.
    auto_n_states_candidates : sequence of int
        Candidates for ``auto_n_states``.
    audio_bits : {16, 24}
        How the training audio is kept and stored: integers at this many
        bits after a gain to the full range (exactly, when a file already
        holds such samples), FLAC-coded. Training analyses what is kept,
        so fidelity 1 replays it exactly; a file that 16 bits would keep
        under 80 dB from its source, or with much of it near the 16-bit
        floor (:func:`ssgs.training_audio.encode`), gets 24.

    Attributes
    ----------
    transition_matrix : ndarray [N, N]
    initial_probabilities : ndarray [N]
    state_means : ndarray [N, D]
        Each state's mean observation: log-area ratios, level, voicing
        (``state_lpc_coefficients`` gives the LPC coefficients).
    state_covariances : ndarray [N, D, D]
    corpus : ssgs.corpus.Corpus or None
        The training frames; ``observations``, ``lpc_coefficients``,
        ``residual_signals``, ``frame_metadata``, ``perceptual_features``,
        ``f0``, ``periodicity``, ``sequence_lengths`` and
        ``sequence_samples`` read it (None without training artifacts).
    sources : list of dict
        One entry per sequence: path, kind, size, sha256, frames, samples.
    observation_range : ndarray [2, D]
        Per-dimension minimum and maximum of the training observations.
    sample_rate : int or None
    training_history : list of dict
        One record per EM iteration.
    """

    def __init__(self, n_states=34, lpc_order=None, frame_size=None, hop_size=None, smoothness_weight=0.5,
                 auto_n_states=False, adaptive_memory_limit=6000, *, seed=None, n_threads=0, tol=1e-4,
                 covariance_floor=1e-3, auto_n_states_candidates=_AUTO_CANDIDATES, audio_bits=16):
        self.n_states = check_int("n_states", n_states)
        self._analysis_given = (lpc_order, frame_size, hop_size)
        self._follow_rate(16000)
        self.smoothness_weight = check_float("smoothness_weight", smoothness_weight, 0.0, 1.0)
        self.auto_n_states = bool(auto_n_states)
        self.adaptive_memory_limit = check_int("adaptive_memory_limit", adaptive_memory_limit)
        self.seed = None if seed is None else check_int("seed", seed, 0)
        kernels.resolve_threads(n_threads)
        self.n_threads = int(n_threads)
        self.tol = check_float("tol", tol, 0.0)
        self.covariance_floor = check_float("covariance_floor", covariance_floor, 0.0, 1.0, low_open=True)
        candidates = tuple(check_int("auto_n_states_candidates", c) for c in auto_n_states_candidates)
        if not candidates:
            raise ValueError("auto_n_states_candidates must name at least one state count")
        self.auto_n_states_candidates = candidates
        if audio_bits not in (16, 24) or isinstance(audio_bits, bool):
            raise ValueError(f"audio_bits must be 16 or 24, got {audio_bits!r}")
        self.audio_bits = int(audio_bits)
        self.sample_rate = None
        self.transition_matrix = self.initial_probabilities = self.state_means = self.state_covariances = None
        self.training_history, self.iteration, self.converged = [], 0, False
        self.corpus, self.sources, self.skipped_files = None, [], []
        self.observation_range = None
        self.adaptive_statistics = {}
        self.last_generation, self.preview_snapshots = None, []
        self.backend = None
        self._rng, self._reseeds = None, None
        self._excitation, self._excitation_key, self._voice = None, None, None
        self._stored_derived, self._frame_search = {}, None

    # ------------------------------------------------------------ the corpus
    def _corpus_field(self, name, default=None):
        return default if self.corpus is None else getattr(self.corpus, name)

    # the corpus's arrays, read-only (None without training artifacts)
    observations = property(lambda self: self._corpus_field("observations"))
    lpc_coefficients = property(lambda self: self._corpus_field("lpc_coefficients"))
    residual_signals = property(lambda self: self._corpus_field("residual_signals"))
    frame_metadata = property(lambda self: self._corpus_field("frame_metadata", {}))
    perceptual_features = property(lambda self: self._corpus_field("perceptual_features"))
    f0 = property(lambda self: self._corpus_field("f0"))
    periodicity = property(lambda self: self._corpus_field("periodicity"))
    sequence_lengths = property(lambda self: self._corpus_field("sequence_lengths"))
    sequence_samples = property(lambda self: self._corpus_field("sequence_samples"))
    sequence_offsets = property(lambda self: self._corpus_field("sequence_offsets"))

    @property
    def has_training_artifacts(self) -> bool:
        return self.corpus is not None

    @property
    def spectral_flux(self):
        return self.frame_metadata.get("spectral_flux")

    @property
    def training_frames(self):
        """The training audio rebuilt frame by frame: float32 [T, hop] (None
        without artifacts)."""
        self._require_data()
        return self.corpus.training_frames()

    def rebuild_sequence(self, index) -> np.ndarray:
        """The training audio of sequence ``index`` (float64) as it is kept
        (``audio_bits``): what training analysed and fidelity 1 replays."""
        self._require_data()
        return self.corpus.rebuild_sequence(index)

    @property
    def feature_config(self) -> FeatureConfig:
        return self._analysis_config(self.sample_rate or 16000)

    @property
    def n_features(self) -> int:
        return self.lpc_order + 2

    @property
    def params(self) -> _hmm.HMMParams:
        """The HMM's parameters (settable)."""
        self._require_model()
        return _hmm.HMMParams(self.initial_probabilities, self.transition_matrix, self.state_means,
                              self.state_covariances)

    @params.setter
    def params(self, params: _hmm.HMMParams):
        self.initial_probabilities, self.transition_matrix = params.startprob, params.transmat
        self.state_means, self.state_covariances = params.means, params.covars
        self.n_states = params.n_states

    @property
    def state_lpc_coefficients(self) -> np.ndarray:
        """Each state's LPC coefficients a_1..a_p of A(z) = 1 + sum a_i z^-i
        [N, p], from its mean log-area ratios (``state_means[:, :p]``; the
        rest of a state's mean is its level and voicing): what the reference
        implementation's ``state_means`` held."""
        self._require_model()
        p = self.lpc_order
        return lpc_from_reflection(reflection_from_lar(np.asarray(self.state_means)[:, :p]))[:, 1:]

    def _require_model(self):
        if self.state_means is None:
            raise SSGSError("the model has no parameters yet: train it or load a checkpoint first")

    def _require_data(self, what=None):
        if self.corpus is None:
            raise SSGSError(f"{what or 'this'} needs the training frames: train the model (or call "
                            "extract_features) or load a checkpoint saved with its training artifacts")

    # -------------------------------------------------------------- training
    def _set_corpus(self, analysed, skipped, sample_rate, store=None):
        self.skipped_files = skipped
        if not analysed:
            raise AudioError("no usable audio: " + describe_skipped(skipped))
        self.sources = [s for _, s in analysed]
        self.sample_rate = int(sample_rate)
        if store is not None:
            for feats, _ in analysed:  # analysed elsewhere (a Dask cluster): into the store now
                if feats is not None:
                    store_sequence(store, feats)
            analysed.clear()
            self.corpus = Corpus.from_store(store, self.feature_config)
        else:
            self.corpus = Corpus.from_analysed(analysed, self.feature_config)
        self.observation_range = self.corpus.observation_range()

    def _analyse(self, items, sample_rate, **kwargs):
        return analyse_items(items, self._analysis_config(sample_rate), n_threads=self.n_threads, **kwargs)

    def _follow_rate(self, sample_rate):
        """Set the analysis settings: those given, the rest the rate's
        defaults (checked together)."""
        given = self._analysis_given
        order, frame, hop = (d if v is None else v for v, d in zip(given, analysis_defaults(sample_rate)))
        order, frame = check_int("lpc_order", order), check_int("frame_size", frame, 2)
        hop = check_int("hop_size", hop)
        if hop > frame:
            raise ValueError(f"hop_size ({hop}) must not exceed frame_size ({frame})")
        if order >= frame or order > kernels.MAX_ORDER:
            raise ValueError(f"lpc_order must be below frame_size and at most {kernels.MAX_ORDER}, got {order}")
        self.lpc_order, self.frame_size, self.hop_size = order, frame, hop

    def _analysis_config(self, sample_rate):
        """The analysis settings at ``sample_rate`` (checked); an untrained
        model first takes the rate's defaults for those not given."""
        sample_rate = check_int("sample_rate", sample_rate, 1000)
        if self.state_means is None:
            self._follow_rate(sample_rate)
        return FeatureConfig(sample_rate, self.frame_size, self.hop_size, self.lpc_order, audio_bits=self.audio_bits)

    def extract_features(self, audio, sample_rate=16000):
        """Analyse one signal (or a list of signals and/or file paths, each
        its own sequence) as the model's training data.

        Returns
        -------
        lpc_coefficients : ndarray [T, lpc_order]
        residual_signals : ndarray float32 [T, hop_size]
        """
        analysed, skipped = self._analyse(audio_items(audio), sample_rate)
        self._set_corpus(analysed, skipped, sample_rate)
        return self.lpc_coefficients, self.residual_signals

    def extract_features_from_files(self, paths, sample_rate=16000, workers=0, progress=False, augment=False,
                                    backend=None, cache_dir=None):
        """:meth:`analyse_files` (the same arguments), then the training
        frames' LPC coefficients and residual, as the reference
        implementation returned them.

        Returns
        -------
        lpc_coefficients : ndarray [T, lpc_order]
        residual_signals : ndarray float32 [T, hop_size]
            Computed from the kept audio (4 bytes a sample: call
            :meth:`analyse_files` when they are not wanted).
        """
        self.analyse_files(paths, sample_rate, workers, progress, augment, backend, cache_dir)
        return self.lpc_coefficients, self.residual_signals

    def analyse_files(self, paths, sample_rate=16000, workers=0, progress=False, augment=False, backend=None,
                      cache_dir=None):
        """Decode and analyse audio files (paths or fsspec URLs; in parallel,
        in bounded memory) as the training data; unusable files are skipped
        and listed in ``skipped_files`` as (path, reason). With ``augment``,
        each file also contributes four augmented copies
        (:mod:`ssgs.augment`). With ``backend`` (a
        :class:`ssgs.distributed.DaskBackend`) the files are analysed on a
        Dask cluster and the E-steps of training run there too. With
        ``cache_dir`` (a folder; :func:`ssgs.frame_store.default_cache_dir`
        is the command's default), the corpus goes to a run folder there
        (:class:`ssgs.frame_store.FrameStore`) a file at a time, and
        training reads it from disk; without, it is held in memory.

        Returns
        -------
        self

        Raises
        ------
        AudioError
            When no file is usable.
        """
        paths = [str(p) for p in paths]
        if not paths:
            raise AudioError("no audio files given")
        sample_rate = check_int("sample_rate", sample_rate, 1000)
        config = self._analysis_config(sample_rate)
        store = None if cache_dir is None else FrameStore(cache_dir)
        if backend is not None:
            analysed, skipped = backend.extract(config, paths, augment)
            self.backend = backend
        else:
            analysed, skipped = self._analyse(paths, sample_rate, workers=workers, progress=progress,
                                              augment=augment, store=store)
        if not analysed:
            raise AudioError(f"no usable audio among {len(paths)} file(s) ({describe_skipped(skipped)})")
        self._set_corpus(analysed, skipped, sample_rate, store)
        return self

    def initialize_hmm_parameters(self):
        """The initial parameters. With ``auto_n_states``, first the number
        of states by BIC (:meth:`select_n_states`; its scores go into the
        training history). When the training frames support fewer than
        ``n_states`` states (:func:`ssgs.hmm.supported_states`: one per
        n_features + 1 frames), as many as they support, with a
        :class:`ssgs.StateCountWarning` and a record in the training
        history. Then seeded k-means++ (:meth:`kmeans_initialization`)."""
        self._require_data()
        n_frames = self.corpus.n_frames
        if n_frames == 0:
            raise SSGSError("no usable frames in the training audio (each input is shorter than one hop)")
        selection = self.select_n_states() if self.auto_n_states else None
        reduced = None if selection is not None else self._fit_states_to_frames()
        self.kmeans_initialization()
        if selection is not None:
            self.training_history.append({"iteration": 0, "n_states_selection": selection})
        if reduced is not None:
            self.training_history.append({"iteration": 0, "n_states_reduced": reduced})
        return self

    def _fit_states_to_frames(self):
        """At most as many states as the frames support
        (:func:`ssgs.hmm.supported_states`): the reduction made
        (requested, n_states, n_frames), warned of once, or None."""
        supported = _hmm.supported_states(self.corpus.data(), self.n_states)
        if supported >= self.n_states:
            return None
        n_frames = self.corpus.n_frames
        reduced = {"requested": self.n_states, "n_states": supported, "n_frames": n_frames}
        warnings.warn(f"{self.n_states} states asked for, but {n_frames} frames support only {supported} (a state "
                      f"needs {self.n_features + 1} frames): training {supported} states",
                      StateCountWarning, stacklevel=3)
        self.n_states = supported
        return reduced

    def kmeans_initialization(self):
        """Seeded k-means++ initialisation of ``n_states`` states on the
        standardised observations (:func:`ssgs.hmm.initialize`); resets
        the training history."""
        self._require_data()
        X = self.corpus.data()
        if X.shape[0] < self.n_states:
            raise SSGSError(f"{X.shape[0]} frames are too few for {self.n_states} states")
        if self.seed is None:
            self.seed = int(np.random.SeedSequence().entropy % 2**63)
        self._rng = np.random.default_rng(self.seed)
        self.params = _hmm.initialize(X, self.sequence_lengths, self.n_states, self._rng, self.covariance_floor)
        self.iteration, self.converged, self.training_history = 0, False, []
        self._excitation = None
        self._reseeds = np.zeros(self.n_states, dtype=np.int64)
        return self

    def initialize_from_labels(self, labels):
        """Initial parameters from a state label per training frame
        (:func:`ssgs.hmm.parameters_from_labels`), for a model whose states
        come from elsewhere (a converted reference checkpoint's, say)."""
        self._require_data()
        labels = np.asarray(labels)
        if labels.shape != (self.corpus.n_frames,) or labels.min() < 0 or labels.max() >= self.n_states:
            raise ValueError(f"labels must be {self.corpus.n_frames} state indices in [0, {self.n_states}), "
                             f"got shape {labels.shape}")
        self.params = _hmm.parameters_from_labels(self.corpus.data(), self.sequence_lengths, labels,
                                                  self.n_states, self.covariance_floor)
        self.iteration, self.converged, self.training_history = 0, False, []
        self._excitation = None
        self._reseeds = np.zeros(self.n_states, dtype=np.int64)
        if self.seed is None:
            self.seed = int(np.random.SeedSequence().entropy % 2**63)
        self._rng = np.random.default_rng(self.seed)
        return self

    def run_em_iteration(self):
        """One EM iteration.

        Returns
        -------
        (log_likelihood, occupancy_entropy, smoothness_penalty)
            The first per frame, of the parameters the iteration started from.
        """
        self._require_data()
        self._require_model()
        if self._reseeds is None or len(self._reseeds) != self.n_states:
            self._reseeds = np.zeros(self.n_states, dtype=np.int64)
        estep = None if self.backend is None else self.backend.estep
        params, record = _hmm.em_iteration(self.corpus.frames(), self.sequence_lengths, self.params,
                                           self.corpus.global_var, self.covariance_floor, self.n_threads,
                                           self._reseeds, estep=estep)
        self.params = params
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
        for _ in range(check_int("n_iterations", n_iterations, 0)):
            if self.converged:
                break
            self.run_em_iteration()
            if callback is not None:
                callback(self, self.training_history[-1])
        return self.training_history

    def train(self, audio, sample_rate=16000, n_em_iterations=10, callback=None, *, preview_every=None,
              preview_duration_frames=32, preview_callback=None, augment=False):
        """Extract features, initialise, run EM, then fit the excitation model.

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
            Every this many iterations, render a preview (:meth:`render_preview`,
            ``preview_duration_frames`` frames) into ``preview_snapshots``
            (the last five kept) and pass it to ``preview_callback(snapshot)``
            (a dict: iteration, log_likelihood, sample_rate, audio). An
            exception in the callback is a warning.
        augment : bool
            Also train on time-stretched and pitch-shifted copies of each
            input (:mod:`ssgs.augment`), each its own sequence.

        Returns
        -------
        self
        """
        from ssgs.previews import preview_hook

        n_em_iterations = check_int("n_em_iterations", n_em_iterations, 0)
        analysed, skipped = self._analyse(audio_items(audio), sample_rate, augment=bool(augment))
        self._set_corpus(analysed, skipped, sample_rate)
        self.initialize_hmm_parameters()
        hooks = [callback] if callback is not None else []
        if preview_every is not None:
            hooks.append(preview_hook(self, check_int("preview_every", preview_every),
                                      check_int("preview_duration_frames", preview_duration_frames),
                                      preview_callback))
        self.iterative_refinement(n_em_iterations, (lambda m, r: [h(m, r) for h in hooks]) if hooks else None)
        self.fit_excitation_model()
        return self

    # ----------------------------------------------------- excitation model
    def _parameters_key(self):
        p = self.params
        return _hashlib.blake2b(b"".join(np.ascontiguousarray(a).tobytes() for a in
                                         (p.startprob, p.transmat, p.means, p.covars)), digest_size=16).digest()

    def _excitation_fresh(self):
        """Whether the excitation model was fitted for (or saved with) the current parameters."""
        return (self._excitation is not None and self._excitation_key == self._parameters_key()
                and self._excitation.periodicity.shape[0] == self.n_states)

    @property
    def excitation_model(self) -> _excitation.ExcitationModel:
        """The excitation statistics generation follows: fitted at the end of
        training and stored in checkpoints; fitted here (once) when the
        parameters changed since, or for a checkpoint saved without them."""
        self._require_model()
        if self._excitation_fresh():
            return self._excitation
        if self.corpus is not None and self.corpus.f0 is not None:
            return self.fit_excitation_model()
        if self._excitation is not None and self._excitation.periodicity.shape[0] == self.n_states:
            return self._excitation
        return _excitation.ExcitationModel.neutral(self.n_states)

    def fit_excitation_model(self):
        """Fit the excitation statistics to the training frames under the
        current parameters and calibrate them (voicing, equaliser,
        smoother: :func:`ssgs.synthesis.calibration.calibrate`). Returns the
        :class:`ssgs.excitation_model.ExcitationModel`."""
        self._require_model()
        self._require_data("fit_excitation_model")
        exc, labels = _excitation.fit(self.corpus, self.params, self.n_threads)
        calibrate(self._new_voice(exc), self.corpus, labels)
        self.set_excitation_model(exc)
        return exc

    def set_excitation_model(self, exc, derived=None):
        """Use ``exc`` (an :class:`ssgs.excitation_model.ExcitationModel`) as
        the excitation model of the current parameters; ``derived``: what a
        voice derived from them (:meth:`ssgs.synthesis.voice.Voice.derived_tensors`),
        if it was saved."""
        self._excitation, self._excitation_key, self._voice = exc, self._parameters_key(), None
        self._stored_derived = dict(derived or {})

    def _new_voice(self, exc):
        return Voice(self.params, exc, self.hop_size, self.sample_rate or 16000, self.observation_range,
                     [int(s["n_frames"]) for s in self.sources if s.get("n_frames")], self.smoothness_weight,
                     self.n_threads)

    def voice(self) -> Voice:
        """What generation reads of the model (:class:`ssgs.synthesis.voice.Voice`),
        made anew when what it reads changes; its derived values are taken
        from the checkpoint the model was loaded from when they belong to it."""
        candidate = self._new_voice(self.excitation_model)
        key = candidate.key
        if self._voice is None or self._voice.key != key:
            candidate.preload(self._stored_derived)
            self._voice = candidate
        self._voice.n_threads = self.n_threads
        return self._voice

    # ------------------------------------------------------------- generation
    def render_preview(self, n_frames=32, sample_rate=None, state_sequence=None, seed=None):
        """A short fidelity-0 rendering of the model as it stands (float32).

        Parameters
        ----------
        n_frames : int
            Length in frames (hop_size samples each).
        sample_rate : int, optional
            Output rate (default: the model's).
        state_sequence : array_like of int, optional
            Render this path of states (its length overrides n_frames).
        seed : int, optional
            Default: derived from the model's seed and iteration.
        """
        from ssgs.previews import render_preview

        self._require_model()
        rate = int(self.sample_rate or 16000)
        out_rate = rate if sample_rate is None else check_int("sample_rate", sample_rate, 1000)
        seed = (int(self.seed or 0) * 1_000_003 + self.iteration) % 2**63 if seed is None else check_int("seed", seed, 0)
        return render_preview(self.voice(), n_frames, out_rate, state_sequence, seed)

    def generate(self, duration_seconds, sample_rate=16000, fidelity=0.0, excitation_type="Karplus-Strong",
                 rng=None, seed=None, start=None, *, decoder="sample", return_details=False):
        """Make audio.

        Parameters
        ----------
        duration_seconds : float
            Length of the output (> 0).
        sample_rate : int
            Output rate; other than the model's, the audio is resampled (soxr).
        fidelity : float in [0, 1]
            1 replays the training audio exactly from ``start``; 0 uses the
            model alone; in between, a share ``fidelity`` of the passage's
            stretches is the training audio itself and the rest the model's
            rendering of the same passage, crossfaded (docs/fidelity.md).
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
            'sample': at fidelity 0 a path sampled from the HMM (with the
            training's durations and silences), at fidelity > 0 the Viterbi
            path of the training frames. 'smooth': a dynamic program that
            trades transition log-probability against the distance between
            consecutive states' means (``smoothness_weight``; at fidelity 0
            with Gumbel noise per frame).
        return_details : bool
            Also return a :class:`ssgs.synthesis.GenerationDetails`; the
            details of the last generation are kept in ``last_generation``.

        Returns
        -------
        ndarray of float32, shape (round(duration_seconds * sample_rate),)
            Mono audio. The model's own sound stays within -0.18 dBFS;
            training audio at fidelity > 0 keeps its own level (over full
            scale where the source was), so fidelity 1 is exact.

        Raises
        ------
        ValueError
            A bad argument (the message names it), or a duration whose
            output would need more memory than is available
            (:meth:`generate_stream` makes any length in constant memory).
        SSGSError
            fidelity > 0 on a model without training artifacts.
        """
        self._require_model()
        duration = check_duration("duration_seconds", duration_seconds)
        sample_rate = check_int("sample_rate", sample_rate, 1000)
        # refused before allocating: the output's float32 samples twice (its
        # segments and the whole) and the per-frame plan (below 64 kB a second)
        check_memory(f"duration_seconds {duration:g} s", duration * (8 * sample_rate + 65536))
        voice, args = self._generation_arguments(duration, sample_rate, fidelity, excitation_type, rng, seed,
                                                 start, decoder)
        y, details = synthesis.generate(voice, *args)
        self.last_generation = details
        return (y, details) if return_details else y

    def generate_stream(self, duration_seconds=None, block_seconds=1.0, sample_rate=16000, fidelity=0.0,
                        excitation_type="Karplus-Strong", rng=None, seed=None, start=None, *, decoder="sample"):
        """Make audio a block at a time, in memory that does not grow with
        the duration.

        Parameters
        ----------
        duration_seconds : float or None
            Length of the output (> 0); None: endless (see Notes).
        block_seconds : float
            Length of each block (> 0), rounded to whole samples at the
            output rate (at least one); the last block is shorter.
        sample_rate, fidelity, excitation_type, rng, seed, start, decoder
            As :meth:`generate`.

        Returns
        -------
        iterator of ndarray of float32
            The blocks. Concatenated, they are the bytes :meth:`generate`
            returns for the same arguments and seed, whatever the block size.

        Raises
        ------
        ValueError
            A bad argument (the message names it); duration_seconds=None
            with fidelity > 0.
        SSGSError
            fidelity > 0 on a model without training artifacts.

        Notes
        -----
        The state path and every per-frame quantity (62.5 frames a second at
        hop 256, 16 kHz) are computed when the stream is made; the samples
        are made a segment of 2048 frames at a time
        (:mod:`ssgs.synthesis.segments`) as the blocks are read.
        ``last_generation`` holds the stream's details from the start; its
        ``n_samples`` counts the samples handed out so far.

        Endless (``duration_seconds=None``) is fidelity 0 only: a blend or
        a replay follows a stretch of training audio planned up front, so
        fidelity > 0 needs a duration. An endless stream is a succession of
        segments, each along its own state path drawn from (seed, segment)
        (with decoder='smooth', smoothed within the segment), handed over
        to the next at equal power over two frames; its ``state_path`` and
        ``f0`` in ``last_generation`` grow as segments are rendered. It is
        not the start of any finite generation.
        """
        self._require_model()
        block_seconds = check_duration("block_seconds", block_seconds)
        sample_rate = check_int("sample_rate", sample_rate, 1000)
        duration = None
        if duration_seconds is not None:
            duration = check_duration("duration_seconds", duration_seconds)
            check_memory(f"duration_seconds {duration:g} s", duration * 65536)
        elif check_float("fidelity", fidelity, 0.0, 1.0) > 0:
            raise ValueError(f"duration_seconds=None (endless) needs fidelity 0, got fidelity {fidelity:g}: "
                             "a blend or replay follows a stretch of training audio planned up front")
        voice, args = self._generation_arguments(duration, sample_rate, fidelity, excitation_type, rng, seed,
                                                 start, decoder)
        block = max(1, int(round(block_seconds * sample_rate)))
        details, blocks = synthesis.stream_blocks(voice, *args[:5], block, *args[5:])
        self.last_generation = details
        return blocks

    def _generation_arguments(self, duration, sample_rate, fidelity, excitation_type, rng, seed, start, decoder):
        """The voice and :func:`ssgs.synthesis.generate`'s arguments after
        the voice, checked (ValueError naming the argument)."""
        self._require_model()
        fidelity = check_float("fidelity", fidelity, 0.0, 1.0)
        kind = _excitation.parse_excitation(excitation_type)
        if decoder not in ("sample", "smooth"):
            raise ValueError(f"decoder must be 'sample' or 'smooth', got {decoder!r}")
        if seed is None:
            seed = int(rng.integers(2**63)) if rng is not None else int(np.random.SeedSequence().entropy % 2**63)
        seed = check_int("seed", seed, 0)
        if fidelity > 0 and self.corpus is None:
            raise SSGSError("fidelity > 0 replays training audio, but this model has no training "
                            "artifacts (saved with include_training_artifacts=False or --no-artifacts); "
                            "use fidelity=0 or a checkpoint with artifacts")
        # exact replay along Viterbi paths reads no excitation statistics: none fitted for it
        replay = fidelity == 1.0 and decoder == "sample"
        voice = self._new_voice(None) if replay else self.voice()
        return voice, (self.corpus if fidelity > 0 else None, duration, fidelity, kind, seed, start, decoder,
                       sample_rate, self.sources)

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
            "audio_bits": self.audio_bits,
        }

    def training_state(self) -> dict:
        """What resuming needs: iteration, convergence, history, RNG and re-seed counts."""
        return {
            "iteration": self.iteration,
            "converged": self.converged,
            "history": self.training_history,
            "rng_state": None if self._rng is None else self._rng.bit_generator.state,
            "reseeds": None if self._reseeds is None else [int(r) for r in self._reseeds],
        }

    def restore_training_state(self, state, name="checkpoint"):
        """Take a :meth:`training_state` back (CheckpointError naming ``name``
        for an unreadable random-generator state)."""
        self.iteration = int(state.get("iteration", 0))
        self.converged = bool(state.get("converged", False))
        self.training_history = list(state.get("history", []))
        if state.get("reseeds") is not None:
            self._reseeds = np.array(state["reseeds"], dtype=np.int64)
        if state.get("rng_state") is not None:
            self._rng = np.random.default_rng()
            try:
                self._rng.bit_generator.state = state["rng_state"]
            except (TypeError, ValueError, KeyError):
                raise CheckpointError(f"{name}: unreadable random-generator state") from None

    def stored_excitation(self, with_artifacts):
        """The excitation model a saved file carries (None for none): the
        fitted one if it belongs to the current parameters; a file without
        the training corpus must carry one (fitted now if need be)."""
        if self._excitation_fresh():
            return self._excitation
        if not with_artifacts and (self.f0 is not None or self._excitation is not None):
            return self.excitation_model
        return None

    @classmethod
    def from_config(cls, config, name="configuration"):
        """A new, unfitted model with a saved configuration (CheckpointError
        naming ``name`` for an invalid one)."""
        try:
            model = cls(n_states=config["n_states"], lpc_order=config["lpc_order"],
                        frame_size=config["frame_size"], hop_size=config["hop_size"],
                        smoothness_weight=config.get("smoothness_weight", 0.5),
                        auto_n_states=config.get("auto_n_states", False),
                        adaptive_memory_limit=config.get("adaptive_memory_limit", 6000),
                        seed=config.get("seed"), tol=config.get("tol", 1e-4),
                        covariance_floor=config.get("covariance_floor", 1e-3),
                        auto_n_states_candidates=config.get("auto_n_states_candidates", _AUTO_CANDIDATES),
                        audio_bits=config.get("audio_bits", 16))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{name}: invalid configuration ({exc})") from None
        model.sample_rate = config.get("sample_rate")
        return model

    def __repr__(self):
        fitted = "fitted" if self.state_means is not None else "not fitted"
        return (f"SpectralStateGuidedSynthesis(n_states={self.n_states}, lpc_order={self.lpc_order}, "
                f"frame_size={self.frame_size}, hop_size={self.hop_size}, {fitted})")
