"""The excitation model: per-state statistics of what drives the LPC
filters (pitch, voicing, silence, residual shapes, run lengths), fitted
from the training frames after EM, and the registry of excitation kinds.

:func:`fit` reads a corpus under fitted HMM parameters; the calibrations
that need the synthesiser (voicing offsets, equaliser, smoother) are fitted
by :mod:`ssgs.synthesis.calibration` and stored in the same tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssgs import kernels
from ssgs.errors import CheckpointError
from ssgs.frame_store import read_rows
from ssgs.residual_shapes import (SHAPE_BINS, batched_lag1_correlation, fit_shape_variation, shape_from_sums,
                                  shape_sums)
from ssgs.runs import (RUN_QUANTILES, end_shares, mean_run_lengths, sequence_batches, silence_run_lengths,
                       state_run_quantiles, within_sequences)

__all__ = [
    "EXCITATION_KINDS",
    "EXCITATION_TYPES",
    "KINDS",
    "VOICED_KINDS",
    "ExcitationKind",
    "ExcitationModel",
    "PosteriorSums",
    "excitation_from_sums",
    "excitation_kind",
    "fit",
    "fit_excitation_model",
    "parse_excitation",
]


@dataclass(frozen=True)
class ExcitationKind:
    """A synthetic excitation: its name for users, the C generator that
    makes it (one of :data:`ssgs.kernels.EXCITATIONS`), whether it has a
    periodic part (then the model calibrates its voicing), and the pulse a
    pulse train repeats (a PyWavelets wavelet whose scaling function is
    the pulse), if any."""

    name: str
    generator: str
    voiced: bool
    pulse: str | None = None

    @property
    def key(self) -> str:
        """The name as :func:`parse_excitation` gives it: lower case."""
        return self.name.lower()


# The registry: adding a kind that reuses a C generator is one entry here.
# Per-kind tables (voicing offsets, equalisers) have one row per kind in
# this order; a model older than a kind has no row for it (no correction).
EXCITATION_KINDS = (
    ExcitationKind("Karplus-Strong", "karplus-strong", voiced=True),
    ExcitationKind("Wavelet", "pulses", voiced=True, pulse="db2"),
    ExcitationKind("Noise", "noise", voiced=False),
)
EXCITATION_TYPES = tuple(k.name for k in EXCITATION_KINDS)
KINDS = tuple(k.key for k in EXCITATION_KINDS)
VOICED_KINDS = tuple(k.key for k in EXCITATION_KINDS if k.voiced)

MIDI_LOW, MIDI_HIGH = 35, 83  # 61.7 Hz .. 987.8 Hz, the pitch search range in semitones
N_PITCH_BINS = MIDI_HIGH - MIDI_LOW + 1
SMOOTHING = 0.7  # frame-to-frame correlation of the model's spectral and gain deviations
SILENT_STATE = 0.5  # a state whose training frames were digital silence this often or more is a silent state
SILENCE_QUANTILES = 33  # the training's silence lengths are kept as this many quantiles


def parse_excitation(name) -> str:
    """The key of an excitation kind from its name: 'Karplus-Strong',
    'Wavelet' or 'Noise' (any case, '-', '_' or ' '). ValueError naming the
    kinds for anything else."""
    key = str(name).strip().lower().replace("_", "-").replace(" ", "-")
    if key not in KINDS:
        raise ValueError(f"excitation_type must be one of {', '.join(repr(e) for e in EXCITATION_TYPES)}; "
                         f"got {name!r}")
    return key


def excitation_kind(key) -> ExcitationKind:
    """The registry entry of a kind's key (see :func:`parse_excitation`)."""
    return EXCITATION_KINDS[KINDS.index(key)]


@dataclass
class ExcitationModel:
    """Per-state excitation statistics, learned from the training frames.

    N states, D observation dimensions, B = N_PITCH_BINS semitone bins.

    pitch_histogram : [N, B] share of each semitone bin (MIDI 35..83)
        among the state's voiced frames
    pitch_log_f0 : [N, B] mean log F0 of the state's frames in each bin
    periodicity : [N] mean periodicity of the state's frames
    residual_shape : [N, SHAPE_BINS] mean log power spectrum of the state's
        residual hops (nats, zero mean over frequency; see
        :mod:`ssgs.residual_shapes`), put back on the synthetic excitation
    silence : [N] share of the state's frames that are digital silence
    occupancy : [N] share of the training frames each state explains
    smoothing : [D] lag-1 correlation of the frames' deviations from their
        state's mean (the AR(1) coefficient of generation's draws)
    smoother : [4, D] the zero-phase smoother run over drawn frames: its
        coefficient, the deviations' gain, the means' gain and the means'
        centre (older checkpoints: [2, D], coefficient and one gain)
    mean_run : [N] mean run length (frames) of the state in the training
        frames' most likely states
    voicing_offset : [len(VOICED_KINDS)] added to the drawn voicing logit
        per voiced excitation kind (calibrated at training)
    pitch_motion : [2] share of pitch leaps (a semitone or more) between
        consecutive voiced frames, and the standard deviation of the
        other steps (nats)
    shape_components : [K, SHAPE_BINS] principal directions of the frames'
        residual shapes about their states'
    shape_spread : [N, K] per state, the spread along each component (what
        a draw adds to the regression's prediction where there is one)
    shape_correlation : [K] frame-to-frame correlation along each component
    silence_runs : [SILENCE_QUANTILES] quantiles of the training's lengths
        of digital silence (frames); None without silence
    silence_rate : () stretches of digital silence per training frame
    pitch_leaps : [B] share of leaps of each size in semitones
    run_quantiles : [N, RUN_QUANTILES] quantiles of the run lengths of the
        states whose runs are not geometric, zero rows elsewhere; None when
        all are geometric
    shape_regression : [N, R, D] per state, how the first R shape
        coefficients follow the frame's whitened deviation from its state
    equaliser : [len(KINDS), hop // 2 + 1] per excitation kind, a log
        power spectrum added to the excitation's colour (fitted at training)
    end : [N] per state, the chance that a chain ends when a run of the
        state ends: the share of its training runs that end a sequence
        (:func:`ssgs.runs.end_shares`)

    Optional tables are None in older checkpoints and where the training
    gives nothing to fit. The pitch statistics and silence lengths are
    float32, the histogram, shapes and equaliser float16 (a fitted table
    is rounded to its compact type; a loaded float32 one stays float32).
    """

    pitch_histogram: np.ndarray
    pitch_log_f0: np.ndarray
    periodicity: np.ndarray
    residual_shape: np.ndarray | None
    silence: np.ndarray
    occupancy: np.ndarray
    smoothing: np.ndarray | None = None
    smoother: np.ndarray | None = None
    mean_run: np.ndarray | None = None
    voicing_offset: np.ndarray | None = None
    pitch_motion: np.ndarray | None = None
    shape_components: np.ndarray | None = None
    shape_spread: np.ndarray | None = None
    shape_correlation: np.ndarray | None = None
    silence_runs: np.ndarray | None = None
    silence_rate: np.ndarray | None = None
    pitch_leaps: np.ndarray | None = None
    run_quantiles: np.ndarray | None = None
    shape_regression: np.ndarray | None = None
    equaliser: np.ndarray | None = None
    end: np.ndarray | None = None

    PER_STATE = ("pitch_histogram", "pitch_log_f0", "periodicity", "residual_shape", "silence", "occupancy",
                 "mean_run", "shape_spread", "run_quantiles", "shape_regression", "end")

    COMPACT = ("pitch_histogram", "pitch_log_f0", "residual_shape", "shape_components", "shape_spread", "silence_runs",
               "silence_rate", "pitch_leaps", "run_quantiles", "shape_regression", "equaliser", "end")
    HALF = ("pitch_histogram", "pitch_log_f0", "residual_shape", "shape_components", "shape_spread",
            "shape_regression", "equaliser")

    def __post_init__(self):
        for name in self.COMPACT:
            value = getattr(self, name)
            if value is None:
                continue
            value = np.asarray(value)
            # fitted (float64): the compact type; loaded: as stored (a float32
            # table of an older checkpoint stays float32, its sound unchanged)
            compact = np.float16 if name in self.HALF and value.dtype != np.float32 else np.float32
            setattr(self, name, value.astype(compact))

    TENSORS = {  # field -> checkpoint tensor name
        "pitch_histogram": "state_pitch_histogram", "pitch_log_f0": "state_pitch_log_f0",
        "periodicity": "state_periodicity", "residual_shape": "state_residual_shape", "silence": "state_silence",
        "occupancy": "state_occupancy", "smoothing": "observation_smoothing", "smoother": "observation_smoother",
        "mean_run": "state_mean_run", "voicing_offset": "excitation_voicing_offset",
        "pitch_motion": "excitation_pitch_motion", "shape_components": "excitation_shape_components",
        "shape_spread": "state_shape_spread", "shape_correlation": "excitation_shape_correlation",
        "silence_runs": "excitation_silence_runs", "silence_rate": "excitation_silence_rate",
        "pitch_leaps": "excitation_pitch_leaps", "run_quantiles": "state_run_quantiles",
        "shape_regression": "state_shape_regression", "equaliser": "excitation_equaliser", "end": "state_end",
    }

    def tensors(self):
        """The statistics as checkpoint tensors (those the model has)."""
        return {name: getattr(self, field) for field, name in self.TENSORS.items() if getattr(self, field) is not None}

    @classmethod
    def from_tensors(cls, tensors):
        """From checkpoint tensors; statistics older checkpoints lack are
        absent (None), silence none and occupancy even."""
        n = np.asarray(tensors["state_periodicity"]).shape[0]
        fields = {field: None if tensors.get(name) is None else  # the compact tables as stored (__post_init__)
                  np.array(tensors[name], None if field in cls.HALF else np.float64)
                  for field, name in cls.TENSORS.items()}
        if fields["silence"] is None:
            fields["silence"] = np.zeros(n)
        if fields["occupancy"] is None:
            fields["occupancy"] = np.full(n, 1.0 / n)
        return cls(**fields)

    def select(self, keep):
        """The statistics of the states ``keep`` (occupancy renormalised)."""
        fields = {f: getattr(self, f) for f in self.__dataclass_fields__}
        for f in self.PER_STATE:
            if fields[f] is not None:
                fields[f] = fields[f][keep]
        fields["occupancy"] = fields["occupancy"] / max(fields["occupancy"].sum(), 1e-300)
        if fields["run_quantiles"] is not None and not np.any(fields["run_quantiles"]):
            fields["run_quantiles"] = None  # every state left is geometric: the C kernel's chain, as before
        return ExcitationModel(**fields)

    @property
    def silent_states(self):
        """[N] bool: the silent states, whose training frames were digital
        silence SILENT_STATE of the time or more."""
        return self.silence >= SILENT_STATE

    def offset_for(self, kind):
        """The voicing-logit offset for an excitation kind (0 for noise, or
        for a model without a calibration)."""
        if self.voicing_offset is None or kind not in VOICED_KINDS:
            return 0.0
        row = VOICED_KINDS.index(kind)
        return float(self.voicing_offset[row]) if row < self.voicing_offset.shape[0] else 0.0

    def equalised(self, colour, kind):
        """An excitation's ``colour`` [1, B] (log power, nats) with the
        model's equaliser for ``kind`` added; as it is for a model without
        one."""
        row = KINDS.index(kind)
        if self.equaliser is None or row >= self.equaliser.shape[0]:  # (a kind newer than the model)
            return colour
        return colour + self.equaliser[row].astype(np.float64)[None, :]


    @classmethod
    def neutral(cls, n_states):
        """For models without excitation statistics: pitches spread evenly
        over 110-440 Hz, half periodic, white residual, no silence."""
        midi = np.arange(MIDI_LOW, MIDI_HIGH + 1)
        hist = ((midi >= 45) & (midi <= 69)).astype(float)
        hist = np.tile(hist / hist.sum(), (n_states, 1))
        return cls(hist, np.tile(bin_log_f0(), (n_states, 1)), np.full(n_states, 0.5), None,
                   np.zeros(n_states), np.full(n_states, 1.0 / n_states))


def bin_log_f0():
    """The log F0 at the centre of each semitone bin, MIDI_LOW .. MIDI_HIGH: [N_PITCH_BINS]."""
    return np.log(440.0 * 2.0 ** ((np.arange(MIDI_LOW, MIDI_HIGH + 1) - 69) / 12.0))


def deviation_smoothing(X, means, labels, lengths):
    """Per-dimension lag-1 correlation of the frames' deviations from their
    (most likely, ``labels``) state's mean, over consecutive frames of one
    state within one sequence; clipped to [0, 0.98]. Summed over batches
    of whole sequences (:func:`ssgs.runs.sequence_batches`)."""
    lengths = np.asarray(lengths, np.int64)

    def pairs(batch):
        rows, sequences = batch
        dev = read_rows(X, rows, np.float64) - means[labels[rows]]
        same = (labels[rows][1:] == labels[rows][:-1]) & within_sequences(dev.shape[0], lengths[sequences])
        return dev[:-1][same], dev[1:][same]

    smoothing = batched_lag1_correlation(pairs, sequence_batches(lengths), SMOOTHING, least=2)
    return np.full(X.shape[1], SMOOTHING) if smoothing is None else smoothing


def voiced_moves(f0, periodicity, lengths=None):
    """The pitch moves (nats) between consecutive voiced frames (periodicity
    above 0.5, an F0) of one sequence."""
    f0 = np.asarray(f0, dtype=np.float64)
    voiced = (np.asarray(periodicity) > 0.5) & (f0 > 0)
    pair = voiced[1:] & voiced[:-1] & within_sequences(f0.shape[0], lengths)
    return np.diff(np.log(np.where(f0 > 0, f0, 1.0)))[pair]


def pitch_motion(f0, periodicity, lengths=None):
    """[leap rate, step size]: over consecutive voiced frames (periodicity
    above 0.5, an F0) of one sequence, the share whose pitch moved a
    semitone or more, and the standard deviation (nats) of the smaller
    moves. Zeros where there are no such frames."""
    moves = voiced_moves(f0, periodicity, lengths)
    if moves.size == 0:
        return np.zeros(2)
    leap = np.abs(moves) >= np.log(2.0) / 12.0
    small = moves[~leap]
    return np.array([leap.mean(), small.std() if small.size > 1 else 0.0])


def leap_intervals(f0, periodicity, lengths=None):
    """[N_PITCH_BINS] how far the training's pitch leaps (moves of a
    semitone or more between consecutive voiced frames, see
    :func:`pitch_motion`) went: the share of leaps of each size, rounded to
    semitones (0 to N_PITCH_BINS - 1, the last holding anything larger),
    smoothed over neighbouring sizes (1/4, 1/2, 1/4, among the sizes of a
    semitone or more: a few dozen leaps are a sparse histogram). None
    without leaps. A leap draws its new note from the state's pitch
    histogram weighted by this."""
    size = np.abs(voiced_moves(f0, periodicity, lengths)) * 12.0 / np.log(2.0)
    size = size[size >= 1.0]
    if size.size == 0:
        return None
    hist = np.bincount(np.minimum(np.rint(size).astype(np.int64), N_PITCH_BINS - 1),
                       minlength=N_PITCH_BINS)[1:].astype(np.float64)
    smooth = 0.5 * hist
    smooth[1:] += 0.25 * hist[:-1]
    smooth[:-1] += 0.25 * hist[1:]
    smooth[[0, -1]] += 0.25 * hist[[0, -1]]  # what would spill past either end stays there
    return np.concatenate([[0.0], smooth / smooth.sum()])


class PosteriorSums:
    """The sums over frames, each frame counted by its posteriors, that the
    excitation model's per-state statistics divide: added a batch of
    frames at a time (:meth:`add`), so a long corpus's posteriors are never
    held at once. One batch gives the bits the whole would."""

    def __init__(self, n_states, shapes=True):
        N = n_states
        self.hist, self.logf = np.zeros((N_PITCH_BINS, N)), np.zeros((N_PITCH_BINS, N))
        self.occupancy, self.periodic, self.silent = np.zeros(N), np.zeros(N), np.zeros(N)
        self.shape_num = np.zeros((N, SHAPE_BINS)) if shapes else None
        self.shape_den = np.zeros(N)
        self.frames, self.periodicity = 0, 0.0

    def add(self, posteriors, f0, periodicity, silent, frame_shapes=None):
        """Count frames: their posteriors [F, N], f0 and periodicity [F]
        (float64), digital silence [F] and residual shapes [F, SHAPE_BINS]."""
        voiced = f0 > 0
        midi = np.zeros(f0.shape[0])
        midi[voiced] = 69.0 + 12.0 * np.log2(f0[voiced] / 440.0)
        bins = np.clip(np.rint(midi).astype(np.int64) - MIDI_LOW, 0, N_PITCH_BINS - 1)
        weight = posteriors[voiced] * periodicity[voiced, None]
        np.add.at(self.hist, bins[voiced], weight)
        np.add.at(self.logf, bins[voiced], weight * np.log(f0[voiced])[:, None])
        del weight  # [voiced frames, N]: not held through the sums below
        self.occupancy = self.occupancy + posteriors.sum(axis=0)
        self.periodic = self.periodic + posteriors.T @ periodicity
        self.silent = self.silent + posteriors.T @ np.asarray(silent, np.float64)
        self.frames, self.periodicity = self.frames + f0.shape[0], self.periodicity + periodicity.sum()
        if self.shape_num is not None:
            num, den = shape_sums(frame_shapes, posteriors)
            self.shape_num, self.shape_den = self.shape_num + num, self.shape_den + den

    def pitch(self):
        """(histogram [N, bins], mean log F0 per bin [N, bins]): each state's
        pitch, a bin's centre where it has none; the overall histogram for
        a state with no voiced frame."""
        hist, logf = self.hist.T, self.logf.T
        centres = np.tile(bin_log_f0(), (hist.shape[0], 1))
        pitch_log_f0 = np.where(hist > 0, logf / np.where(hist > 0, hist, 1.0), centres)
        total = hist.sum(axis=1, keepdims=True)
        overall = hist.sum(axis=0)
        fallback = overall / overall.sum() if overall.sum() > 0 else ExcitationModel.neutral(1).pitch_histogram[0]
        return np.where(total > 0, hist / np.where(total > 0, total, 1.0), fallback[None, :]), pitch_log_f0

    def shares(self):
        """(mean periodicity [N], silence share [N], occupancy share [N])."""
        occ = self.occupancy
        has = occ > 0
        mean_periodicity = np.where(has, self.periodic / np.where(has, occ, 1.0),
                                    self.periodicity / self.frames if self.frames else 0.5)
        silence = np.where(has, self.silent / np.where(has, occ, 1.0), 0.0)
        share = occ / occ.sum() if occ.sum() > 0 else np.full(occ.shape[0], 1.0 / occ.shape[0])
        return np.clip(mean_periodicity, 0.0, 1.0), np.clip(silence, 0.0, 1.0), share


def fit_excitation_model(posteriors, f0, periodicity, silent, frame_shapes=None, smoothing=None,
                         lengths=None, labels=None, observations=None) -> ExcitationModel:
    """Per-state pitch histograms, periodicity, silence share and residual
    shape from the training frames, each frame counted by its posterior
    (and, for pitch, its periodicity, so noisy frames hardly vote).
    ``silent`` [T] marks frames of digital silence; ``frame_shapes``
    (:func:`frame_spectral_shapes` of the residual, optional) give the
    residual shapes; ``lengths`` (the sequences' lengths, optional) the
    states' mean run lengths; ``labels`` (each frame's most likely state,
    derived from the posteriors when not given) the shapes' variation and
    the run lengths; ``observations`` ((the frames [T, D], the states'
    means and covariances), optional) how the shapes follow the frames
    (:func:`fit_shape_regression`)."""
    labels = posteriors.argmax(axis=1) if labels is None else labels
    sums = PosteriorSums(posteriors.shape[1], frame_shapes is not None)
    sums.add(posteriors, f0, periodicity, silent, frame_shapes)
    return excitation_from_sums(sums, f0, periodicity, silent, frame_shapes, smoothing, lengths, labels, observations)


def excitation_from_sums(sums, f0, periodicity, silent, frame_shapes, smoothing, lengths, labels, observations):
    """The excitation model of :class:`PosteriorSums` ``sums`` over every
    frame, and of the per-frame arrays (as :func:`fit_excitation_model`
    takes them; ``frame_shapes`` may be a memory map, read in batches)."""
    T, N = labels.shape[0], sums.occupancy.shape[0]
    histogram, pitch_log_f0 = sums.pitch()
    mean_periodicity, silence, share = sums.shares()
    shape = None if frame_shapes is None else shape_from_sums(sums.shape_num, sums.shape_den)
    variation = None if frame_shapes is None else fit_shape_variation(frame_shapes, labels,
                                                                      shape.astype(np.float16).astype(np.float64),
                                                                      lengths, observations=observations)
    mean_run = None if lengths is None else mean_run_lengths(labels, lengths, N)
    run_quantiles = None if lengths is None else state_run_quantiles(labels, lengths, N)
    end = None if lengths is None else end_shares(labels, lengths, N)
    runs = silence_run_lengths(silent, lengths)
    silence_runs = np.quantile(runs, np.linspace(0.0, 1.0, SILENCE_QUANTILES)) if runs.size else None
    silence_rate = np.array(runs.size / T) if runs.size else None
    return ExcitationModel(histogram, pitch_log_f0, mean_periodicity, shape, silence, share, smoothing,
                           mean_run=mean_run, pitch_motion=pitch_motion(f0, periodicity, lengths),
                           silence_runs=silence_runs, silence_rate=silence_rate,
                           pitch_leaps=leap_intervals(f0, periodicity, lengths), run_quantiles=run_quantiles,
                           end=end, **({} if variation is None else dict(zip(("shape_components", "shape_spread",
                                                                              "shape_correlation",
                                                                              "shape_regression"), variation))))


def tensor_shapes(n_states, n_features, hop):
    """The shape of each excitation tensor a checkpoint may hold (None: any
    length along that axis)."""
    N, D = n_states, n_features
    return {"state_pitch_histogram": (N, N_PITCH_BINS), "state_pitch_log_f0": (N, N_PITCH_BINS),
            "state_periodicity": (N,), "state_residual_shape": (N, SHAPE_BINS), "state_silence": (N,),
            "state_occupancy": (N,), "observation_smoothing": (D,), "observation_smoother": (None, D),
            "state_mean_run": (N,), "excitation_voicing_offset": (None,), "excitation_pitch_motion": (2,),
            "excitation_pitch_leaps": (N_PITCH_BINS,), "excitation_shape_components": (None, SHAPE_BINS),
            "excitation_silence_runs": (SILENCE_QUANTILES,), "excitation_silence_rate": (),
            "state_shape_spread": (N, None), "excitation_shape_correlation": (None,),
            "state_run_quantiles": (N, RUN_QUANTILES), "state_shape_regression": (N, None, D),
            "excitation_equaliser": (None, hop // 2 + 1), "state_end": (N,)}


def check_tensors(tensors, name):
    """CheckpointError (naming the file ``name`` and the tensor) unless the
    excitation tensors among ``tensors`` are consistent: shares not
    negative, run-length quantiles run lengths, no more regressed shape
    components than components, known smoother rows, no more per-kind rows
    than kinds."""
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
    for table, kinds in (("excitation_voicing_offset", VOICED_KINDS), ("excitation_equaliser", KINDS)):
        if table in tensors and not 1 <= tensors[table].shape[0] <= len(kinds):
            raise CheckpointError(f"{name}: tensor '{table}' has {tensors[table].shape[0]} rows, "
                                  f"but ssgs knows {len(kinds)} excitation kinds")


def fit(corpus, params, n_threads=0):
    """The excitation model of a corpus under fitted HMM parameters (before
    calibration), and each training frame's most likely state [T]. The
    posteriors are computed and counted a batch of whole sequences at a
    time (:func:`ssgs.runs.sequence_batches`); a corpus on disk is read a
    batch at a time (its frames from :meth:`ssgs.corpus.Corpus.frames`,
    never all in float64)."""
    X, lengths = corpus.frames(), corpus.sequence_lengths
    f0, periodicity = corpus.f0.astype(np.float64), corpus.periodicity.astype(np.float64)
    silent, shapes = corpus.silent_frames(), corpus.frame_shapes()
    corpus.release()
    labels = np.empty(X.shape[0], np.int64)
    sums = PosteriorSums(params.n_states)
    for rows, sequences in sequence_batches(lengths):
        posteriors = kernels.estep(read_rows(X, rows, np.float64), lengths[sequences], params.startprob,
                                   params.transmat, params.means, params.covars, n_threads=n_threads,
                                   return_posteriors=True).posteriors
        labels[rows] = posteriors.argmax(axis=1)
        sums.add(posteriors, f0[rows], periodicity[rows], silent[rows], read_rows(shapes, rows))
        del posteriors
    smoothing = deviation_smoothing(X, params.means, labels, lengths)
    exc = excitation_from_sums(sums, f0, periodicity, silent, shapes, smoothing, lengths, labels,
                               (X, params.means, params.covars))
    corpus.release()
    return exc, labels
