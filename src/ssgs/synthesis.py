"""Synthesis: state paths, parameter trajectories, excitation, fidelity, output gain.

Fidelity f in [0, 1] is the share of the output that is the training audio
itself; the rest is the model's own rendering of it.

- f = 1 replays the training audio exactly: the stored LPC coefficients and
  residual through the analysis' own (frame-switched) synthesis filter.
- 0 < f < 1 follows the training audio from a start point: a share f of the
  passage's stretches (:func:`passage_stretches`) is its own audio, the rest
  the model's rendering, crossfaded at equal power. The model's rendering
  walks the states decoded (Viterbi) from the training observations, draws
  each frame's log-area ratios and gain from those states (deviating from
  the state's mean as the passage's own frame does, in proportion f, the
  rest drawn afresh), and excites them with the passage's own pitch and
  voicing. The same seed keeps, at a higher fidelity, every stretch a lower
  one kept, so the distance to the training audio falls with f.
- f = 0 uses the model alone: a state path sampled from the HMM, LARs and
  gain drawn from the states, pitch drawn from each state's pitch
  distribution. No training frame or residual is read; a checkpoint without
  artifacts is enough.

The model's frames become sound through the C kernels: a unit-power
excitation (a Karplus-Strong string tuned to the modelled F0, a train of
wavelet-shaped pulses, or plain noise; periodic and noisy parts mixed by the
modelled periodicity), flattened and given the residual shape of each
frame's state (the valleys and tilt the all-pole envelope misses, learned
as a mean log spectrum per state), then an all-pole filter whose reflection
coefficients and gain are interpolated between frame centres and updated
every 16 samples (direct form, whose state is the output history: a change
of coefficients leaves no transient), state carried throughout: no jumps at
frame boundaries.
The gain is the model's; frames of states that were mostly digital silence
in training are exact zeros, in silences as long as the training's (see
:func:`retime_silences`); a soft limiter acts only when a sample would
exceed full scale.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.signal
import scipy.special
import scipy.stats

from ssgs import kernels
from ssgs.features import mel_band_edges, reflection_from_lar, triangular_bands, voicing_from_logit

__all__ = [
    "EXCITATION_TYPES",
    "ExcitationModel",
    "GenerationDetails",
    "excitation_colour",
    "fit_excitation_model",
    "log_spectral_distance",
    "model_trajectory",
    "observation_trajectory",
    "parse_excitation",
    "passage_stretches",
    "render",
    "shape_excitation",
    "silence_gate",
    "smooth_path",
    "smooth_transition_scores",
    "soft_limit",
    "spectral_shape",
]

EXCITATION_TYPES = ("Karplus-Strong", "Wavelet", "Noise")
VOICED_KINDS = ("karplus-strong", "wavelet")  # the excitations with a periodic part
_KERNEL_KIND = {"karplus-strong": "karplus-strong", "wavelet": "pulses", "noise": "noise"}
KINDS = tuple(_KERNEL_KIND)  # the excitation types as parse_excitation names them, in EXCITATION_TYPES' order
MIDI_LOW, MIDI_HIGH = 35, 83  # 61.7 Hz .. 987.8 Hz, the pitch search range in semitones
N_PITCH_BINS = MIDI_HIGH - MIDI_LOW + 1
SMOOTHING = 0.7  # frame-to-frame correlation of the model's spectral and gain deviations
GLIDE = 0.6  # frame-to-frame pitch smoothing between notes (about 40 ms at hop 256)
LEAP_SEMITONES = 3.0  # a pitch change this large is a new note, plucked anew
PITCH_TAIL = 0.025  # a new state keeps the pitch held so far if it lies within the central 95% of the state's pitches
PITCH_RETURN = 0.98  # per frame, how much of its wander from the note's pitch the pitch keeps (time constant ~50 frames)
BLOCK = 16  # samples between filter updates
VOICING_OFF = 0.25  # a voiced sound ends when the voicing falls below this (it begins at 0.5)


def parse_excitation(name) -> str:
    """'Karplus-Strong', 'Wavelet' or 'Noise' (any case, '-', '_' or ' ')."""
    key = str(name).strip().lower().replace("_", "-").replace(" ", "-")
    if key not in _KERNEL_KIND:
        raise ValueError(f"excitation_type must be one of {', '.join(repr(e) for e in EXCITATION_TYPES)}; "
                         f"got {name!r}")
    return key


@dataclass
class GenerationDetails:
    """What a generation did, for the caller to inspect or replay."""

    seed: int
    fidelity: float
    excitation_type: str
    sample_rate: int
    n_samples: int
    state_path: np.ndarray
    decoder: str = "sample"
    source_index: int | None = None
    source_path: str | None = None
    start_sample: int | None = None
    start_seconds: float | None = None
    f0: np.ndarray | None = field(default=None, repr=False)


SHAPE_BINS = 65  # residual shapes are kept at 65 frequencies from 0 to Nyquist (125 Hz apart at 16 kHz)
SHAPE_COMPONENTS = 8  # principal directions in which a frame's residual shape strays from its state's
SHAPE_REGRESSED = 4  # of those, how many may be predicted from the frame's own envelope and level (the first, largest)
SHAPE_RIDGES = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)  # ridge penalties (in frames' worth) cross-validation picks from
SHAPE_FOLDS = 5  # folds of that cross-validation, each made of contiguous stretches of frames
_SHAPE_FLOOR = 1e-12  # -120 dB below the frame's mean power: bins with nothing in them stay finite
SILENT_STATE = 0.5  # a state whose training frames were digital silence this often or more is a silent state
SILENCE_QUANTILES = 33  # the training's silence lengths are kept as this many quantiles
RUN_QUANTILES = 33  # a state's run lengths, where a geometric does not fit them, are kept as this many quantiles
RUN_TEST_LEVEL = 0.01  # a state's run lengths are called not geometric when a G-test rejects it at this level
RUN_TEST_MIN = 10  # runs a state needs before its lengths are tested
CHAIN_FRAMES = 200_000  # frames of the model's own chain that rank its silences (see chain_silence_runs)
COLOUR_HOPS = 2048  # hops of the model's own excitation its colour is measured over (33 s at hop 256, 16 kHz)
EQUALISER_PASSES = 2  # analysis-by-synthesis passes that fit each excitation kind's equaliser
EQUALISER_BANDS = 64  # mel-spaced bands the equaliser compares spectra in (at 16 kHz: 28 Hz apart at the bottom)
EQUALISER_BOUND = float(np.log(10.0**2.4))  # an equaliser's gain stays within +-24 dB (log power, nats)


@dataclass
class ExcitationModel:
    """Per-state excitation statistics, learned from the training frames.

    pitch_histogram : [N, B] probability of each semitone bin (MIDI 35..83)
        among the state's voiced frames
    pitch_log_f0 : [N, B] mean log F0 of the state's frames in each bin
    periodicity : [N] mean periodicity of the state's frames
    residual_shape : [N, SHAPE_BINS] mean over the state's frames of the
        residual's log power spectrum (nats, zero mean over
        frequency; at SHAPE_BINS frequencies evenly from 0 to Nyquist): what the all-pole
        envelope leaves in the residual (valleys between formants it cannot
        dig, a tilt), put back on the synthetic excitation. Averaged in log,
        as ears and log-mel features weigh it.
    silence : [N] share of the state's frames that are digital silence
        (level at the analysis floor, -100 dB): such frames generate exact
        zeros
    occupancy : [N] share of the training frames each state explains
    silence_runs : [SILENCE_QUANTILES] quantiles (0 to 1, evenly) of the
        lengths, in frames, of the training's stretches of digital silence
        (see :func:`retime_silences`); None without silence in training
    silence_rate : () how many stretches of digital silence the training
        had per frame (see :func:`retime_silences`); None without silence
        in training, or in older checkpoints
    mean_run : [N] mean length (frames) of the state's runs in the training
        frames' most likely states, runs cut by a sequence's end included
        (0 for a state no frame fell in); see
        :func:`duration_corrected_transitions`
    voicing_offset : [2] added to the drawn voicing logit with the
        Karplus-Strong and the Wavelet excitation, so that the synthetic
        audio, analysed by the training's own pitch tracker, is as periodic
        as the training audio (calibrated at training, see
        ``SpectralStateGuidedSynthesis.excitation_model``)
    shape_components : [K, SHAPE_BINS] the principal directions (unit
        norm) in which the training frames' residual shapes stray from their
        states' shapes (the first mostly a tilt); see
        :func:`fit_shape_variation`
    shape_spread : [N, K] per state, the standard deviation along each
        component
    shape_correlation : [K] frame-to-frame correlation along each component
    shape_regression : [N, R, D] per state, how the first R (at most
        SHAPE_REGRESSED) shape coefficients follow the frame's observation:
        coefficient = regression[state] @ w, where w is the frame's
        deviation from the state's mean whitened by the state's covariance
        (:func:`whitened_deviations`; at generation, the frame's
        standardised draw, :func:`draw_frames`); zero rows for components
        that follow nothing (see :func:`fit_shape_regression`). Where it is
        present, ``shape_spread`` holds the spread a draw adds to that
        prediction (so that the two together have the state's spread).
        None in older checkpoints and where no component follows the frame
    pitch_motion : [2] how the training's pitch moved between consecutive
        voiced frames: the share of leaps (a semitone or more) and the
        standard deviation of the other steps (nats); see
        :func:`pitch_motion`
    pitch_leaps : [B] how far those leaps went: the share of leaps of each
        size in semitones (0 to B - 1), smoothed over neighbouring sizes;
        a leap draws its new note from the state's histogram weighted by
        it (see :func:`leap_intervals`); None in older checkpoints (the
        state's histogram alone)
    run_quantiles : [N, RUN_QUANTILES] for each state whose run lengths in
        the training frames' most likely states a geometric distribution
        does not fit (see :func:`state_run_quantiles`), their quantiles (0
        to 1, evenly; frames); a row of zeros for every other state, whose
        runs stay geometric. None when every state's are geometric, and in
        older checkpoints (see :func:`sample_path`)
    smoothing : [D] frame-to-frame correlation, per observation dimension, of
        the training frames' deviations from their state's mean (the AR(1)
        coefficient generation gives its drawn deviations)
    equaliser : [3, B] per excitation kind (Karplus-Strong, Wavelet,
        Noise; see EXCITATION_TYPES), a log power spectrum (nats, B bins from
        0 to Nyquist: the bins of the kind's colour, hop // 2 + 1) that
        generation adds to the excitation's colour, so the audio the model
        makes along the training's states has, on average over frames, the
        training audio's band spectrum (:func:`mean_band_spectrum`; fitted at
        training by analysis by synthesis, see
        ``SpectralStateGuidedSynthesis._fit_equaliser``); None in older
        checkpoints (no correction)
    smoother : [4, D] per observation dimension, the coefficient of a
        zero-phase one-pole smoother run over the drawn frames, the gains
        that then restore the spread of their deviations from the states'
        means and of the means, and the means' centre (see
        :func:`fit_smoother`); older checkpoints' [2, D] hold the
        coefficient and one gain

    The pitch statistics and the silence lengths are kept in float32, the
    pitch histogram and the residual shapes and their variation in float16
    (in memory as in checkpoints; an older checkpoint's float32 tables stay
    float32): summaries whose rounding (float16: 5e-4 relative, 0.005 nats
    on a shape) is far below their sampling error, so that a model without
    training artifacts stays under 100 KB for 34 states with its training
    history. The HMM's parameters are float64.
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

    PER_STATE = ("pitch_histogram", "pitch_log_f0", "periodicity", "residual_shape", "silence", "occupancy",
                 "mean_run", "shape_spread", "run_quantiles", "shape_regression")

    COMPACT = ("pitch_histogram", "pitch_log_f0", "residual_shape", "shape_components", "shape_spread", "silence_runs",
               "silence_rate", "pitch_leaps", "run_quantiles", "shape_regression", "equaliser")
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
        "shape_regression": "state_shape_regression", "equaliser": "excitation_equaliser",
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
        return float(self.voicing_offset[VOICED_KINDS.index(kind)])

    def equalised(self, colour, kind):
        """An excitation's ``colour`` [1, B] (see :func:`shape_excitation`)
        with the model's equaliser for ``kind`` added; as it is for a model
        without one."""
        if self.equaliser is None:
            return colour
        return colour + self.equaliser[KINDS.index(kind)].astype(np.float64)[None, :]

    def shape_excitation(self, excitation, path, hop, rng, colour=None, deviations=None):
        """The excitation given the residual shape of each frame's state
        (:func:`shape_excitation`, ``colour`` the excitation's colour, as
        there), each frame straying from it along the shape components by a
        draw of the state's spread, correlated from frame to frame as in
        training, and where the model has a ``shape_regression``, by what
        it predicts from the frame's ``deviations`` [F, D] (its standardised
        draw, :func:`draw_frames`, or a training frame's
        :func:`whitened_deviations`); unchanged for a model without
        shapes."""
        if self.residual_shape is None:
            return excitation
        variation = None
        if self.shape_components is not None:
            K, rho = self.shape_components.shape[0], np.clip(self.shape_correlation, 0.0, 0.98)
            z = _ar1(rng.standard_normal((len(path), K)), rho)
            coef = z * self.shape_spread[path]
            if self.shape_regression is not None and deviations is not None:
                R = self.shape_regression.shape[1]
                path = np.asarray(path)
                for s in np.unique(path):  # per state: no [F, R, D] stack
                    rows = path == s
                    coef[rows, :R] += deviations[rows] @ self.shape_regression[s].astype(np.float64).T
            variation = coef @ self.shape_components
        return shape_excitation(excitation, self.residual_shape, hop, index=path, variation=variation,
                                colour=colour)

    @classmethod
    def neutral(cls, n_states):
        """For models without excitation statistics: pitches spread evenly
        over 110-440 Hz, half periodic, white residual, no silence."""
        midi = np.arange(MIDI_LOW, MIDI_HIGH + 1)
        hist = ((midi >= 45) & (midi <= 69)).astype(float)
        hist = np.tile(hist / hist.sum(), (n_states, 1))
        return cls(hist, np.tile(_bin_log_f0(), (n_states, 1)), np.full(n_states, 0.5), None,
                   np.zeros(n_states), np.full(n_states, 1.0 / n_states))


def _bin_log_f0():
    return np.log(440.0 * 2.0 ** ((np.arange(MIDI_LOW, MIDI_HIGH + 1) - 69) / 12.0))


def resample_bins(values, n_out):
    """Linear interpolation along the last axis from its bins, evenly spaced
    from 0 to Nyquist, to ``n_out`` bins spaced the same way."""
    n_in = values.shape[-1]
    pos = np.arange(n_out) * ((n_in - 1) / (n_out - 1))
    lo = np.minimum(pos.astype(np.int64), n_in - 2)
    frac = pos - lo
    return (1.0 - frac) * values[..., lo] + frac * values[..., lo + 1]


def spectral_shape(frames):
    """Log power spectrum of each row of ``frames`` [T, n] (Hann window,
    floored 120 dB below the row's mean), minus its mean over frequency:
    [T, n // 2 + 1] nats. Rows without power are NaN.

    Not smoothed across frequency: smoothing the power before the log fills
    the valleys (a mean of powers is ruled by the peaks), and the shapes
    came out flatter than the residual in the log terms ears and log-mel
    features weigh (+-3 bins cost copy-synthesis FMD 122 against 89 on
    songs, 30 against 19 on speech). Averaging over a state's frames
    smooths what needs smoothing."""
    frames = np.asarray(frames, dtype=np.float64)
    power = np.abs(np.fft.rfft(frames * np.hanning(frames.shape[1]), axis=1)) ** 2
    mean = power.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        log = np.log(np.maximum(power, _SHAPE_FLOOR * mean))
        log -= log.mean(axis=1, keepdims=True)
    log[mean[:, 0] <= 0] = np.nan
    return log


def frame_spectral_shapes(residual, chunk=8192):
    """Each residual hop's :func:`spectral_shape` at SHAPE_BINS frequencies,
    float32 [T, SHAPE_BINS] (NaN rows for silent hops); in chunks of
    frames, no float64 copy of the residual."""
    out = np.empty((residual.shape[0], SHAPE_BINS), np.float32)
    for s0 in range(0, residual.shape[0], chunk):
        out[s0 : s0 + chunk] = resample_bins(spectral_shape(residual[s0 : s0 + chunk]), SHAPE_BINS)
    return out


def state_spectral_shape(frame_shapes, posteriors):
    """Per-state mean of the frames' shapes (:func:`frame_spectral_shapes`),
    each frame weighted by its posterior; silent frames do not count (states
    with no sounding frame get a flat shape). [N, SHAPE_BINS]"""
    sounding = ~np.isnan(frame_shapes[:, 0])
    w = posteriors[sounding]
    num = w.T @ frame_shapes[sounding].astype(np.float64)
    den = w.sum(axis=0)
    return np.divide(num, den[:, None], out=np.zeros_like(num), where=den[:, None] > 0)


def _within_sequences(n_frames, lengths):
    """[n_frames - 1] bool: which consecutive frame pairs lie in one
    sequence (of ``lengths`` frames; None: one sequence)."""
    pair = np.ones(max(n_frames - 1, 0), bool)
    if lengths is not None and len(lengths) > 1:
        pair[np.cumsum(lengths)[:-1] - 1] = False
    return pair


def _lag1_correlation(a, b, default):
    """Per column, the correlation of paired rows ``a`` and ``b`` (``default``
    where either has no variance), clipped to [0, 0.98]."""
    a, b = a - a.mean(0), b - b.mean(0)
    den = np.sqrt((a * a).sum(0) * (b * b).sum(0))
    return np.clip(np.where(den > 0, (a * b).sum(0) / np.where(den > 0, den, 1.0), default), 0.0, 0.98)


def _ar1(eps, rho):
    """Each column of ``eps`` [F, K] (unit-variance noise) through an AR(1)
    filter of coefficient ``rho[k]``, scaled to keep unit variance."""
    z = np.empty_like(eps)
    for k in range(eps.shape[1]):
        z[:, k] = scipy.signal.lfilter([np.sqrt(1.0 - rho[k] ** 2)], [1.0, -rho[k]], eps[:, k])
    return z


def deviation_smoothing(X, means, labels, lengths):
    """Per-dimension lag-1 correlation of the frames' deviations from their
    (most likely, ``labels``) state's mean, over consecutive frames of one
    state within one sequence; clipped to [0, 0.98]."""
    dev = X - means[labels]
    same = (labels[1:] == labels[:-1]) & _within_sequences(labels.shape[0], lengths)
    a, b = dev[:-1][same], dev[1:][same]
    if a.shape[0] < 3:
        return np.full(X.shape[1], SMOOTHING)
    return _lag1_correlation(a, b, SMOOTHING)


def mean_run_lengths(labels, lengths, n_states):
    """Per state, the mean length of its runs in ``labels`` (one state per
    frame; sequences of ``lengths`` frames, a run ends where its sequence
    does; :func:`state_runs`); 0 for states with no run."""
    return np.array([runs.mean() if runs.size else 0.0 for runs in state_runs(labels, lengths, n_states)])


def _true_runs(flags, lengths=None):
    """Starts and ends (exclusive) of the stretches of True in ``flags`` [T],
    in order, each cut where its sequence (of ``lengths`` frames; None: one
    sequence) ends."""
    flags = np.asarray(flags, dtype=bool)
    cut = ~_within_sequences(flags.shape[0], lengths)
    begins, finishes = flags.copy(), flags.copy()
    begins[1:] &= ~flags[:-1] | cut
    finishes[:-1] &= ~flags[1:] | cut
    return np.flatnonzero(begins), np.flatnonzero(finishes) + 1


def silence_run_lengths(silent, lengths=None):
    """Lengths (frames) of the stretches of consecutive silent frames
    ``silent`` [T] within each sequence (``lengths``; one sequence when
    None), in order."""
    starts, ends = _true_runs(silent, lengths)
    return ends - starts


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

    How many: a state that was silent in about half its training frames
    is a silent state, and the chain enters it wherever it entered it in
    training, sounding or not; with every entry silent the chain fell
    silent more often than the training did (on read speech, 13 stretches
    per 1000 frames against 9.9, and 8.2% of the frames against 6.5%).
    When the chain's stretches (``chain_runs`` over ``chain_frames``) come
    more often than ``exc.silence_rate``, each is kept with the ratio of
    the two as its probability and the others leave the path (the sound
    goes on), so silence comes as often, and lasts as long, as in
    training.

    An HMM's chain passes through its silent states as it passes through
    any: it drops into one for a frame or two in the middle of sound and
    chains several into silences longer than any in training, and a state
    that is silent now and then goes silent now and then, wherever it is.
    Generated from the states alone, silence came out as dropouts (on
    speech, one-frame silences inside sound at 5 times the training's rate;
    on the demo, three times as many silences as in training, most of one
    or two frames) and silences up to 3 times the training's longest.
    Silence is digital silence for whole stretches of silent states, as
    long as the training's, and never elsewhere. Unchanged without
    ``silence_runs`` or silent states."""
    path = np.asarray(path)
    if exc.silence_runs is None or path.size == 0:
        return path
    starts, ends = _true_runs(exc.silent_states[path])
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


def duration_corrected_transitions(transmat, mean_run):
    """The transition matrix generation samples paths from: each state's
    self-transition set so that its runs last, on average, as long as its
    runs in the training sequences (``mean_run``), the exits keeping their
    proportions.

    EM's self-transitions are right where a state's runs end inside the
    sequences, but a state the sequences end in (the silence after the last
    word of every file) is rarely seen to leave, so its estimate comes out
    near 1 and sampled chains linger in it: silence far longer and more
    often than in training. States without runs, without exits or with a
    mean run below one frame are left as they are."""
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


def geometric_rejected(runs, level=RUN_TEST_LEVEL, min_runs=RUN_TEST_MIN):
    """Whether a G-test rejects, at ``level``, a geometric distribution
    (from 1, its mean the runs' mean) for the run lengths ``runs``: the
    lengths 1, 2, ... each a class while a geometric expects five or more
    runs of it, the rest one class; one degree of freedom fewer for the
    fitted mean. False for fewer than ``min_runs`` runs or fewer than three
    classes (too little to tell)."""
    runs = np.asarray(runs, dtype=np.int64)
    n = runs.size
    if n < min_runs or runs.max(initial=0) < 2:
        return False
    p = 1.0 / runs.mean()
    k = 1  # classes 1 .. k - 1 on their own, then >= k
    while n * p * (1.0 - p) ** (k - 1) >= 5.0:  # an empty tail class counts too (runs never past 2)
        k += 1
    if k < 3:
        return False
    observed = np.append(np.bincount(runs, minlength=k)[1:k], np.sum(runs >= k)).astype(np.float64)
    expected = np.append(n * p * (1.0 - p) ** np.arange(k - 1), n * (1.0 - p) ** (k - 1))
    seen = observed > 0
    g = 2.0 * np.sum(observed[seen] * np.log(observed[seen] / expected[seen]))
    return bool(scipy.stats.chi2.sf(g, observed.size - 2) < level)


def state_runs(labels, lengths, n_states):
    """Per state, the lengths of its runs in ``labels`` (runs cut where a
    sequence of ``lengths`` frames ends), as a list of int64 arrays."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return [np.zeros(0, np.int64) for _ in range(n_states)]
    first = np.ones(labels.shape[0], bool)
    first[1:] = labels[1:] != labels[:-1]
    first[np.cumsum(lengths)[:-1]] = True
    starts = np.flatnonzero(first)
    runs = np.diff(np.append(starts, labels.shape[0]))
    owner = labels[starts]
    return [runs[owner == s] for s in range(n_states)]


def state_run_quantiles(labels, lengths, n_states, quantiles=RUN_QUANTILES):
    """[n_states, quantiles]: the quantiles of each state's run lengths in
    ``labels`` (the training frames' most likely states; runs cut by a
    sequence's end included) where :func:`geometric_rejected` says a
    geometric does not fit them, zeros where it does; None when it fits
    every state's.

    A first-order chain gives every state geometric run lengths, the most
    likely at one frame. Read speech's pause states are not so: many
    single frames between words and a few pauses of 9-17 frames, where the
    geometric with their mean (two frames) all but never lasts ten; the
    generated speech had 0.7% of its frames at the 16-bit floor against the
    training's 2.6%. Drawing every state's runs from its training runs
    mended that but cost the short corpora (ten seconds of the alsa words)
    the luck of their few runs; the test keeps the geometric wherever the
    runs do not clearly say otherwise (on read speech 4 states of 34, on the
    songs 19, on the alsa words and the demo none)."""
    out = np.zeros((n_states, quantiles))
    grid = np.linspace(0.0, 1.0, quantiles)
    flagged = False
    for s, runs in enumerate(state_runs(labels, lengths, n_states)):
        if geometric_rejected(runs):
            out[s] = np.quantile(runs, grid)
            flagged = True
    return out if flagged else None


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


def zero_phase_smooth(x, coefficient, starts=None):
    """A one-pole low-pass run forwards then backwards over the frames
    ``x`` [F, D] (coefficient per dimension, 0 = untouched), each pass
    starting from its first value (no pull towards zero at the ends).
    ``starts`` (optional): frames where a new segment begins; each segment
    is smoothed on its own, nothing carried across."""
    x = np.asarray(x, dtype=np.float64)
    if starts is not None and len(starts) and x.shape[0]:
        bounds = np.unique(np.concatenate([[0], np.asarray(starts, dtype=np.int64), [x.shape[0]]]))
        return np.concatenate([zero_phase_smooth(x[a:b], coefficient) for a, b in zip(bounds[:-1], bounds[1:])])
    out = x.copy()
    for d, c in enumerate(np.broadcast_to(coefficient, (x.shape[1],))):
        if c <= 0.0 or x.shape[0] < 2:
            continue
        y = scipy.signal.lfilter([1.0 - c], [1.0, -c], x[:, d], zi=[c * x[0, d]])[0]
        out[:, d] = scipy.signal.lfilter([1.0 - c], [1.0, -c], y[::-1], zi=[c * y[-1]])[0][::-1]
    return out


def _median_step(X, lengths):
    """Per dimension, the median absolute change between consecutive frames
    of one sequence."""
    return np.median(np.abs(np.diff(X, axis=0)[_within_sequences(X.shape[0], lengths)]), axis=0)


def smoother_sequences(lengths, max_frames=100_000):
    """How many of the first sequences :func:`fit_smoother` needs look at:
    as many as fit in ``max_frames`` (at least one)."""
    return max(1, int(np.searchsorted(np.cumsum(lengths), max_frames, side="right")))


def sound_boundaries(exc, path):
    """Frames of a path where sound meets silence: a silent state (silence
    share SILENT_STATE or more) after a sounding one or the other way
    round. None for a model that decides silence frame by frame (no
    ``silence_runs``). Smoothing stops there: the frames of a silent state
    are never heard, and smoothed across, their levels (the analysis floor,
    -100 dB) pulled the sound on either side down with them."""
    if exc.silence_runs is None:
        return None
    quiet = exc.silent_states[np.asarray(path)]
    return np.flatnonzero(quiet[1:] != quiet[:-1]) + 1


def fit_smoother(X, lengths, drawn, means_along, steps=16, starts=None):
    """Calibrate :func:`zero_phase_smooth` so drawn frames move like the
    training frames and keep their spread.

    Frames drawn independently from the states (even with correlated
    deviations) jitter from frame to frame more than real ones, whose
    envelopes and levels glide except at onsets: the jitter modulates the
    partials and costs harmonicity. The drawn frames (``drawn``: along the
    training frames' own states, ``means_along`` their states' means) are
    smoothed in two parts, the states' means and the deviations from them
    (the smoother is linear: together, the frames smoothed), and each part
    is scaled back to its own spread, per dimension: the deviations about
    zero, the means about their centre. One smoothing coefficient for all
    dimensions (so the states' correlations between dimensions survive) is
    found by bisection at which the median absolute frame-to-frame change
    of the result matches the training frames', in the geometric mean over
    dimensions. The median, not the standard deviation: real frames change
    little most of the time and a lot at onsets, which the smoother keeps.
    Returns [4, D]: the coefficient, the deviations' gain, the means' gain
    and the means' centre; frames that already move no more than the
    training's are left alone (coefficient 0, gains 1). (A long corpus need
    not be read whole: :func:`smoother_sequences`.) ``starts``: where the
    drawn frames' smoothing stops (:func:`sound_boundaries`), as
    generation's does.

    Smoothing flattens the jumps between consecutive states' means as well
    as the deviations about them. Restoring only the spread about the
    states' means left read speech (states of 2.6 frames) 6% short of the
    training's spread in every dimension; restoring the total spread by
    scaling the distance from the states' means undid the smoothing (a
    smoothed frame between two states lies against the jump, and scaled up
    it overshoots: the frames moved 1.35 times as much as the training's,
    unsmoothed draws 1.5 times, and followed their states less, a
    correlation with the states' means of 0.81 against the training's
    0.89); scaling the whole frames about their centre moved long states'
    means outward to make up for the deviations' lost jitter.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.zeros((4, X.shape[1]))
    out[1:3] = 1.0
    out[3] = means_along.mean(axis=0) if means_along.shape[0] else 0.0
    if X.shape[0] < 3 or np.all(lengths < 2):
        return out
    wanted = np.log(np.maximum(_median_step(X, lengths), 1e-12))
    parts = (drawn - means_along, means_along - out[3])

    def rescaled(c):
        frames, gains = out[3], []
        for part in parts:
            smoothed = zero_phase_smooth(part, c, starts)
            before, after = np.std(part, axis=0), np.std(smoothed, axis=0)
            gain = np.divide(before, after, out=np.ones_like(before), where=after > 1e-9 * before)
            frames = frames + smoothed * gain
            gains.append(gain)
        return frames, gains

    def excess(c):  # joined sequences: their few boundaries hardly move a median
        return np.mean(np.log(np.maximum(_median_step(rescaled(c)[0], lengths), 1e-12)) - wanted)

    if excess(0.0) <= 0.0:
        return out
    lo, hi = 0.0, 0.95
    for _ in range(steps):
        c = 0.5 * (lo + hi)
        lo, hi = (c, hi) if excess(c) > 0.0 else (lo, c)
    c = 0.5 * (lo + hi)
    out[0] = c
    out[1], out[2] = rescaled(c)[1]
    return out


def smooth_frames(obs, means, smoother, starts=None):
    """Drawn frames ``obs`` [F, D] of states with ``means`` [F, D] smoothed
    as :func:`fit_smoother` calibrated (``smoother``: [4, D]; an older
    model's [2, D] scale the smoothed frames' distance from the states'
    means by its second row)."""
    smoother = np.asarray(smoother, dtype=np.float64)
    if smoother.shape[0] < 4:
        return means + (zero_phase_smooth(obs, smoother[0], starts) - means) * smoother[1]
    centre = smoother[3]
    return (centre + zero_phase_smooth(obs - means, smoother[0], starts) * smoother[1] +
            zero_phase_smooth(means - centre, smoother[0], starts) * smoother[2])


def draw_frames(params, exc, path, rng, bounds=None):
    """Observations along a state path as generation uses them: drawn
    (:func:`observation_trajectory`, with the model's per-dimension
    correlation), then smoothed as calibrated at training
    (:func:`fit_smoother`; not across :func:`sound_boundaries`), kept
    within ``bounds``. Returns (frames, the gain scores of the raw draws
    (for :func:`audible_frames`), the standardised draws [F, D] (see
    :func:`observation_trajectory`): what the residual shapes follow,
    :meth:`ExcitationModel.shape_excitation`)."""
    smoothing = SMOOTHING if exc.smoothing is None else exc.smoothing
    obs, score, z = observation_trajectory(params, path, rng, smoothing=smoothing, bounds=bounds,
                                           return_scores=True, return_draws=True)
    if exc.smoother is not None and np.any(exc.smoother[0] > 0):
        obs = smooth_frames(obs, params.means[path], exc.smoother, sound_boundaries(exc, path))
        if bounds is not None:
            obs = np.clip(obs, bounds[0], bounds[1])
    return obs, score, z


def _voiced_moves(f0, periodicity, lengths=None):
    """The pitch moves (nats) between consecutive voiced frames (periodicity
    above 0.5, an F0) of one sequence."""
    f0 = np.asarray(f0, dtype=np.float64)
    voiced = (np.asarray(periodicity) > 0.5) & (f0 > 0)
    pair = voiced[1:] & voiced[:-1] & _within_sequences(f0.shape[0], lengths)
    return np.diff(np.log(np.where(f0 > 0, f0, 1.0)))[pair]


def pitch_motion(f0, periodicity, lengths=None):
    """[leap rate, step size]: over consecutive voiced frames (periodicity
    above 0.5, an F0) of one sequence, the share whose pitch moved a
    semitone or more, and the standard deviation (nats) of the smaller
    moves. Zeros where there are no such frames."""
    moves = _voiced_moves(f0, periodicity, lengths)
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
    without leaps.

    A leap draws its new note from the state's pitch histogram weighted by
    this (:func:`model_trajectory`). Drawn from the histogram alone, a leap
    landed anywhere in the state's range: on the alsa words, where half the
    leaps are glides of 1-2 semitones, the leaps moved further than the
    training's did, and the pulses' harmonicity fell at them."""
    size = np.abs(_voiced_moves(f0, periodicity, lengths)) * 12.0 / np.log(2.0)
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


def whitened_deviations(frames, means, covars, states, chol=None):
    """Each frame's deviation from its state's mean, whitened by the state's
    covariance: ``L^-1 (x - mean)`` with ``L`` the covariance's Cholesky
    factor (``chol`` [N, D, D], when the caller has it). A frame drawn from
    its state reads N(0, I). [F, D]"""
    states = np.asarray(states)
    chol = np.linalg.cholesky(covars) if chol is None else chol
    out = np.empty(frames.shape, dtype=np.float64)
    order = np.argsort(states, kind="stable")
    for rows in np.split(order, np.flatnonzero(np.diff(states[order])) + 1):
        if rows.size:  # (one state's frames at a time: no float64 copy of them all)
            s = states[rows[0]]
            out[rows] = scipy.linalg.solve_triangular(chol[s], (frames[rows].astype(np.float64) - means[s]).T,
                                                      lower=True).T
    return out


def _folds(n_frames, folds):
    """[n_frames] fold of each frame for a blocked cross-validation: the
    frames cut into n_frames // 200 contiguous stretches (at least
    ``folds``, at most 50: 200 frames each up to 10,000 frames) dealt to the
    folds in turn, so that neighbouring frames, nearly alike, seldom test
    each other. ``folds`` >= 2."""
    stretches = int(np.clip(n_frames // 200, folds, 50))
    return (np.arange(n_frames) * stretches // max(n_frames, 1)) % folds


def fit_shape_regression(coef, labels, frames, means, covars, n_states, index=None, ridges=SHAPE_RIDGES,
                         folds=SHAPE_FOLDS):
    """How a frame's shape coefficients ``coef`` [T, R] (sounding frames
    only, their states ``labels``) follow its observation: per state, a
    ridge regression on the frame's deviation from its state's mean
    whitened by the state's covariance (:func:`whitened_deviations` of
    ``frames`` under ``means`` and ``covars``; rows ``index`` of ``frames``
    are coef's, all of them when None), without intercept (the
    coefficients are deviations from the state's shape already). The
    residual's shape is what the all-pole envelope leaves, and what it
    leaves follows the envelope: on read speech, a frame's envelope
    predicts a sixth to two fifths of its shape's first four coefficients,
    in frames the fit never saw.

    Generation predicts from a frame's standardised draw (:func:`draw_frames`),
    which is N(0, I) as the training frames' whitened deviations are, not
    from the finished frame: smoothed across states, a drawn frame lies
    far from its own state's mean in whitened terms (on the songs, a mean
    square of 8.8 per dimension against the training frames' 0.96, 2.3
    from the smoothed means), and the shapes predicted from it moved the
    songs' FMD from 89 / 91 to 95 / 95, where from the draws it stays.

    Each component's penalty (in frames' worth) is the one of ``ridges``
    with the least error in a blocked cross-validation (``folds`` folds of
    contiguous stretches: :func:`_folds`), pooled over the states; a
    component that no penalty predicts better than zero follows nothing
    (its rows stay zero). A state with fewer than 2 D frames is not
    regressed.

    The spread kept is what keeps each state's spread of coefficients at
    generation, where the prediction is made from N(0, I) draws:
    spread^2 = mean(c^2) - |regression|^2 (a regression that alone would
    exceed mean(c^2) is scaled down to it, its spread zero). The root-mean-
    square of the fit's own residual would be smaller: the ridge and the
    fit's overfitting take from it, and drawn coefficients came out 7-30%
    short of the training's variance in states of 60-20 frames.

    Returns (regression [N, R, D], or None when no component follows the
    frame; spread [N, R], of the coefficients where nothing is predicted;
    what the fit leaves of each coefficient [T, R])."""
    coef = np.asarray(coef, np.float64)
    labels = np.asarray(labels)
    T, R = coef.shape
    D = frames.shape[1]
    index = np.arange(T) if index is None else np.asarray(index)
    chol = np.linalg.cholesky(covars)
    fold = _folds(T, folds)
    eye = np.eye(D)
    order = np.argsort(labels, kind="stable")
    groups = [rows for rows in np.split(order, np.flatnonzero(np.diff(labels[order])) + 1) if rows.size]

    def whitened(rows):  # one state's frames at a time: no [T, D] array
        return whitened_deviations(frames[index[rows]], means, None, labels[rows], chol=chol)

    fitted = [rows for rows in groups if rows.size >= 2 * D]
    err = np.zeros((len(ridges), R))
    base = np.zeros(R)
    for rows in fitted:
        w, c, f = whitened(rows), coef[rows], fold[rows]
        for k in range(folds):
            test = f == k
            if not test.any():
                continue
            train = ~test
            gram, cross = w[train].T @ w[train], w[train].T @ c[train]
            base += (c[test] ** 2).sum(axis=0)
            for j, ridge in enumerate(ridges):
                err[j] += ((c[test] - w[test] @ np.linalg.solve(gram + ridge * eye, cross)) ** 2).sum(axis=0)
    best = np.argmin(err, axis=0)
    follows = err[best, np.arange(R)] < base
    penalty = np.asarray(ridges, np.float64)[best]
    regression = np.zeros((n_states, R, D))
    spread = np.zeros((n_states, R))
    left = coef.copy()
    for rows in groups:
        s, c = labels[rows[0]], coef[rows]
        mean_square = np.mean(c**2, axis=0)
        if rows.size >= 2 * D and follows.any():
            w = whitened(rows)
            gram, cross = w.T @ w, w.T @ c
            for j in np.flatnonzero(follows):
                regression[s, j] = np.linalg.solve(gram + penalty[j] * eye, cross[:, j])
            predicted = np.sum(regression[s] ** 2, axis=1)
            over = predicted > mean_square  # (the prediction alone is scaled to the state's spread)
            regression[s, over] *= np.sqrt(mean_square[over] / predicted[over])[:, None]
            left[rows] = c - w @ regression[s].T
        spread[s] = np.sqrt(np.maximum(mean_square - np.sum(regression[s] ** 2, axis=1), 0.0))
    return (regression if follows.any() else None), spread, left


def fit_shape_variation(frame_shapes, labels, state_shapes, lengths=None, k=SHAPE_COMPONENTS, observations=None,
                        n_regressed=SHAPE_REGRESSED):
    """How the training frames' residual shapes stray from their states':
    the ``k`` principal directions of the deviations (unit norm, signs
    fixed so each direction's largest entry is positive), each state's
    standard deviation along them, and their frame-to-frame correlation
    (standardised by the state's spread) over consecutive sounding frames
    of one sequence. With ``observations`` ((frames [T, D], the states'
    means [N, D] and covariances [N, D, D])), the first ``n_regressed``
    components' coefficients are also regressed on the frames' whitened
    deviations from their states' means (:func:`fit_shape_regression`):
    the spread is then what a draw adds to the prediction, and the
    correlation that of what the regression leaves. Returns
    (components [k, B], spread [N, k], correlation [k], regression
    [N, R, D] or None), or None without sounding frames."""
    sounding = ~np.isnan(frame_shapes[:, 0])
    if sounding.sum() < 2:
        return None
    dev = np.where(sounding[:, None], np.nan_to_num(frame_shapes.astype(np.float64)) - state_shapes[labels], 0.0)
    values, vectors = np.linalg.eigh(dev[sounding].T @ dev[sounding])
    k = min(k, dev.shape[1])
    components = vectors[:, ::-1][:, :k].T
    components *= np.where(components[np.arange(k), np.argmax(np.abs(components), axis=1)] < 0, -1.0, 1.0)[:, None]
    coef = dev @ components.T
    del dev
    N = state_shapes.shape[0]
    count = np.bincount(labels[sounding], minlength=N)
    spread = np.sqrt(np.stack([np.bincount(labels[sounding], weights=coef[sounding, j] ** 2, minlength=N)
                               for j in range(k)], axis=1) / np.maximum(count, 1)[:, None])
    regression = None
    R = min(n_regressed, k)
    if observations is not None and R > 0:
        frames, means, covars = observations
        rows = np.flatnonzero(sounding)
        regression, drawn_spread, left = fit_shape_regression(coef[rows, :R], labels[rows], frames, means, covars,
                                                              N, index=rows)
        if regression is not None:
            spread[:, :R] = drawn_spread
            coef[rows, :R] = left
    pair = sounding[1:] & sounding[:-1] & _within_sequences(sounding.shape[0], lengths)
    correlation = np.zeros(k)
    if pair.sum() > 2:  # of the standardised draws generation correlates (coefficient / the state's spread)
        z = coef / np.where(spread[labels] > 0, spread[labels], 1.0)
        correlation = _lag1_correlation(z[:-1][pair], z[1:][pair], 0.0)
    return components, spread, correlation, regression


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
    T, N = posteriors.shape
    labels = posteriors.argmax(axis=1) if labels is None else labels
    voiced = f0 > 0
    midi = np.zeros(T)
    midi[voiced] = 69.0 + 12.0 * np.log2(f0[voiced] / 440.0)
    bins = np.clip(np.rint(midi).astype(np.int64) - MIDI_LOW, 0, N_PITCH_BINS - 1)
    weight = posteriors[voiced] * periodicity[voiced, None]
    hist = np.zeros((N_PITCH_BINS, N))
    logf = np.zeros((N_PITCH_BINS, N))
    np.add.at(hist, bins[voiced], weight)
    np.add.at(logf, bins[voiced], weight * np.log(f0[voiced])[:, None])
    hist, logf = hist.T, logf.T
    centres = np.tile(_bin_log_f0(), (N, 1))
    pitch_log_f0 = np.where(hist > 0, logf / np.where(hist > 0, hist, 1.0), centres)
    total = hist.sum(axis=1, keepdims=True)
    overall = hist.sum(axis=0)
    fallback = overall / overall.sum() if overall.sum() > 0 else ExcitationModel.neutral(1).pitch_histogram[0]
    histogram = np.where(total > 0, hist / np.where(total > 0, total, 1.0), fallback[None, :])
    occ = posteriors.sum(axis=0)
    mean_periodicity = np.where(occ > 0, posteriors.T @ periodicity / np.where(occ > 0, occ, 1.0),
                                float(np.mean(periodicity)) if T else 0.5)
    silence = np.where(occ > 0, posteriors.T @ np.asarray(silent, np.float64) / np.where(occ > 0, occ, 1.0), 0.0)
    shape = None if frame_shapes is None else state_spectral_shape(frame_shapes, posteriors)
    variation = None if frame_shapes is None else fit_shape_variation(frame_shapes, labels,
                                                                      shape.astype(np.float16).astype(np.float64),
                                                                      lengths, observations=observations)
    share = occ / occ.sum() if occ.sum() > 0 else np.full(N, 1.0 / N)
    mean_run = None if lengths is None else mean_run_lengths(labels, lengths, N)
    run_quantiles = None if lengths is None else state_run_quantiles(labels, lengths, N)
    runs = silence_run_lengths(silent, lengths)
    silence_runs = np.quantile(runs, np.linspace(0.0, 1.0, SILENCE_QUANTILES)) if runs.size else None
    silence_rate = np.array(runs.size / T) if runs.size else None
    return ExcitationModel(histogram, pitch_log_f0, np.clip(mean_periodicity, 0.0, 1.0), shape,
                           np.clip(silence, 0.0, 1.0), share, smoothing, mean_run=mean_run,
                           pitch_motion=pitch_motion(f0, periodicity, lengths), silence_runs=silence_runs,
                           silence_rate=silence_rate, pitch_leaps=leap_intervals(f0, periodicity, lengths),
                           run_quantiles=run_quantiles,
                           **({} if variation is None else dict(zip(("shape_components", "shape_spread",
                                                                      "shape_correlation", "shape_regression"),
                                                                     variation))))


def observation_trajectory(params, path, rng, smoothing=SMOOTHING, bounds=None, return_scores=False,
                           return_draws=False):
    """Per-frame observations along a state path: the state's mean plus
    correlated Gaussian deviations with the state's covariance (``smoothing``:
    the AR(1) coefficient, one or one per dimension), kept within
    ``bounds`` ((low, high) per dimension: the range of the training
    observations, so no draw is louder or more resonant than anything the
    model was trained on).

    z_t = rho z_{t-1} + sqrt(1 - rho^2) eps_t has unit variance, so every
    frame's deviation has exactly its state's covariance (the output keeps
    the training's spread of spectra and loudness) while consecutive frames
    stay correlated (no jitter every hop).

    With ``return_scores``, also the standardised deviation of each frame's
    gain from its state's mean (before the bounds; N(0, 1) per frame,
    correlated in time like the draws): low where the drawn frame is quiet.
    With ``return_draws``, also (last) the standardised draws ``z`` [F, D]
    the deviations are made of (deviation = L z, L the state's covariance's
    Cholesky factor; N(0, I) per frame).
    """
    D = params.means.shape[1]
    chol = np.linalg.cholesky(params.covars)
    eps = rng.standard_normal((len(path), D))
    rho = np.broadcast_to(np.asarray(smoothing, dtype=np.float64), (D,))
    z = _ar1(eps, rho)
    deviation = np.empty_like(z)
    for state in np.unique(path):  # per state: no [F, D, D] stack of factors
        rows = path == state
        deviation[rows] = z[rows] @ chol[state].T
    obs = params.means[path] + deviation
    if bounds is not None:
        obs = np.clip(obs, bounds[0], bounds[1])
    out = (obs,)
    if return_scores:
        g = D - 2
        out += (deviation[:, g] / np.sqrt(params.covars[path, g, g]),)
    if return_draws:
        out += (z,)
    return out[0] if len(out) == 1 else out


STRETCH_SECONDS = (0.25, 1.0)  # a blend switches between the passage and the model after this long (min, max)


def passage_stretches(path, rng, min_frames, max_frames=None):
    """For a blend: one uniform draw per stretch of a passage, repeated over
    its frames [F]. A stretch ends at the first change of state at least
    ``min_frames`` after it began (so a switch between the passage's audio
    and the model's falls where the sound changes anyway), or after
    ``max_frames`` (default 4 x min_frames) without one. Frames whose draw
    is below the fidelity are the passage's own audio: the same seed keeps,
    at a higher fidelity, every stretch a lower one kept."""
    path = np.asarray(path)
    F = path.shape[0]
    max_frames = 4 * min_frames if max_frames is None else max_frames
    bounds = [0]
    for c in (np.flatnonzero(np.diff(path)) + 1).tolist() + [F]:
        while c - bounds[-1] > max_frames:
            bounds.append(bounds[-1] + max_frames)
        if c - bounds[-1] >= min_frames or c == F:
            bounds.append(c)
    bounds = np.unique(bounds)
    return np.repeat(rng.random(len(bounds) - 1), np.diff(bounds))


def blended_gain_scores(params, exc, path, log_gain, silent, fresh, fidelity):
    """Gain scores for a blend (see :func:`audible_frames`): the passage's
    frames' scores mixed with fresh ones, ``f * z_a + sqrt(1 - f^2) * z_b``,
    so a blended frame goes silent with the passage's silences more often
    as the fidelity rises, and as often as the state's share at any
    fidelity. A passage frame's score is its place in its state's
    distribution of levels: a silent frame in the middle of the state's
    silent share, a sounding one above it, by its standardised level."""
    g = params.means.shape[1] - 2
    share = exc.silence[path].astype(np.float64)
    z = (log_gain - params.means[path, g]) / np.sqrt(params.covars[path, g, g])
    u = np.where(silent, 0.5 * share, share + (1.0 - share) * scipy.special.ndtr(z))
    z_a = scipy.special.ndtri(np.clip(u, 1e-12, 1.0 - 1e-12))
    f = float(fidelity)
    return f * z_a + np.sqrt(max(0.0, 1.0 - f * f)) * fresh


def audible_frames(exc, path, gain_score):
    """Which frames sound, frame by frame: a frame of a state whose
    training frames were digital silence in a share ``s`` is silent when its
    gain score falls in the lowest ``s`` of its distribution (so the
    quietest draws go silent, and each state is silent as often as in
    training). Blends decide silence this way, with the passage's scores
    mixed in (:func:`blended_gain_scores`): their silences follow the
    passage's. At fidelity 0 it made dropouts (see :func:`retime_silences`)."""
    return scipy.special.ndtr(gain_score) >= exc.silence[path]


def _draw_pitch(exc, state, rng, current=None):
    """A note (log F0) from the state's pitch histogram; for a leap from the
    pitch ``current``, weighted by how often the training leapt that far
    (``exc.pitch_leaps``; the histogram alone when no bin of it is within
    such a leap, or for older checkpoints)."""
    p = exc.pitch_histogram[state].astype(np.float64)
    if current is not None and exc.pitch_leaps is not None:
        size = np.abs(exc.pitch_log_f0[state].astype(np.float64) - current) * (12.0 / np.log(2.0))
        w = p * exc.pitch_leaps[np.minimum(np.rint(size).astype(np.int64), N_PITCH_BINS - 1)]
        if w.sum() > 0:
            p = w
    b = int(rng.choice(N_PITCH_BINS, p=p / p.sum()))
    return float(exc.pitch_log_f0[state, b])


def model_trajectory(params, exc, path, rng, bounds=None, kind=None, voicing_offset=None, return_draws=False):
    """The model's frames along a path: observations, F0, voicing, onsets
    and which frames sound: those of states that are not silent states (a
    path from :func:`retime_silences`), or for a model without the
    training's silence lengths (older checkpoints) :func:`audible_frames`'s
    choice. The voicing is the
    drawn voicing logit plus the model's offset for the excitation ``kind``
    (or ``voicing_offset``, when given).

    A new pitch is drawn from the new state's histogram when the state
    changes and the pitch held so far lies outside the state's central 95%
    of pitches, and otherwise as often as the training's pitch leapt from
    one voiced frame to the next (``pitch_motion``), as far as it leapt
    (``pitch_leaps``, see :func:`_draw_pitch`); in between, the pitch
    moves as the training's did from frame to frame (a random walk with the
    training's step size, drawn back towards the note's pitch). The pitch
    glides between notes, and a note is plucked anew (onset) only where a
    voiced sound begins or the pitch leaps by three semitones or more.
    Voicing is the observation's voicing dimension, drawn with the rest of
    the frame. With ``return_draws``, also (last) the frames' standardised
    draws (:func:`draw_frames`).
    """
    obs, gain_score, draws = draw_frames(params, exc, path, rng, bounds=bounds)
    F = len(path)
    log_f0 = np.empty(F)
    onset = np.zeros(F, bool)
    hist = exc.pitch_histogram.astype(np.float64)
    cdf = np.concatenate([np.zeros((hist.shape[0], 1)), np.cumsum(hist, axis=1)], axis=1)
    cdf = (cdf / np.maximum(cdf[:, -1:], 1e-300)).tolist()  # plain floats: a loop over frames
    leap_rate, step = (0.0, 0.0) if exc.pitch_motion is None else (float(exc.pitch_motion[0]), float(exc.pitch_motion[1]))
    leaps = (rng.random(F) < leap_rate).tolist()
    steps = (step * rng.standard_normal(F)).tolist()
    states = path.tolist()
    note = drift = 0.0
    for t in range(F):
        s = states[t]
        leap_from = None
        if t == 0:
            redraw = True
        elif s != states[t - 1]:
            current = note + drift
            b = min(max(round(69.0 + 12.0 * np.log2(np.exp(current) / 440.0)) - MIDI_LOW, 0), N_PITCH_BINS - 1)
            redraw = not (cdf[s][b] < 1.0 - PITCH_TAIL and cdf[s][b + 1] > PITCH_TAIL)  # outside the central range
        else:  # a leap within a state goes as far as the training's leaps went
            redraw, leap_from = leaps[t], note + drift
        if redraw:
            note, drift = _draw_pitch(exc, s, rng, leap_from), 0.0
            onset[t] = True
        else:
            drift = PITCH_RETURN * drift + steps[t]
        log_f0[t] = note + drift
    p = obs.shape[1] - 2
    offset = exc.offset_for(kind) if voicing_offset is None else voicing_offset
    voicing = voicing_from_logit(obs[:, p + 1] + offset)
    # the pitch glides from note to note (about 40 ms); the string is
    # plucked only where a voiced sound begins or the pitch leaps: a pluck's
    # first period is noise, and plucking at every change of state would
    # fill the sound with it
    glided = scipy.signal.lfilter([1.0 - GLIDE], [1.0, -GLIDE], log_f0, zi=[GLIDE * log_f0[0]])[0]
    leap = onset & (np.abs(np.diff(log_f0, prepend=log_f0[0])) >= LEAP_SEMITONES * np.log(2) / 12)
    starts = _voiced_starts(voicing)
    onset = leap | starts
    onset[0] = True
    glided[leap] = log_f0[leap]
    notes = np.append(np.flatnonzero(onset), F)  # where each drawn note begins
    for t in np.flatnonzero(leap):  # a leap starts the note at its pitch, gliding from there
        end = notes[np.searchsorted(notes, t, side="right")]
        glided[t:end] = log_f0[t:end]
    audible = audible_frames(exc, path, gain_score) if exc.silence_runs is None else ~exc.silent_states[path]
    low, high = _bin_log_f0()[[0, -1]]  # the wander stays within the pitch range the analysis searches
    out = (obs, np.exp(np.clip(glided, low, high)), voicing, onset, audible)
    return out + (draws,) if return_draws else out


def pluck_onsets(voicing, f0):
    """Where a string is plucked along a given pitch track (a passage's
    own): where a voiced sound begins (:func:`_voiced_starts`) or the pitch
    leaps by LEAP_SEMITONES or more, and at the first frame."""
    log_f0 = np.log(f0)
    onset = _voiced_starts(voicing) | (np.abs(np.diff(log_f0, prepend=log_f0[0])) >= LEAP_SEMITONES * np.log(2) / 12)
    onset[0] = True
    return onset


def _voiced_starts(voicing, on=0.5, off=VOICING_OFF):
    """Frames where a voiced sound begins: voicing reaches ``on`` after
    having fallen below ``off`` (hysteresis: the drawn voicing wobbling
    around 0.5 inside one voiced sound is not a new start)."""
    starts = np.zeros(voicing.shape[0], bool)
    voiced = False
    for t, v in enumerate(voicing):
        if not voiced and v >= on:
            starts[t] = t > 0
            voiced = True
        elif voiced and v < off:
            voiced = False
    return starts


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


def _pulse_shape():
    """The pulse of the 'Wavelet' excitation: the Daubechies-2 scaling function
    (PyWavelets), three samples wide, tabulated 64 points per sample."""
    import pywt

    phi, _, _ = pywt.Wavelet("db2").wavefun(level=6)
    return np.asarray(phi, dtype=np.float64), 64


def synthetic_excitation(kind, f0, voicing, onset, hop, sample_rate, seed):
    """Unit-power excitation per frame (C kernel)."""
    if kind == "wavelet":
        pulse, oversampling = _pulse_shape()
        return kernels.excitation("pulses", f0, voicing, onset, hop, sample_rate, seed, pulse=pulse,
                                  pulse_oversampling=oversampling)
    return kernels.excitation(_KERNEL_KIND[kind], f0, voicing, onset, hop, sample_rate, seed)


def excitation_colour(excitation, hop, max_hops=COLOUR_HOPS):
    """The colour of an excitation [F * hop]: its mean log spectrum
    (:func:`spectral_shape` of each hop, over up to ``max_hops`` hops spread
    over it; a log periodogram's spread, 1.28 nats per bin, comes down to
    0.03 over 2048), [1, hop // 2 + 1] nats; zeros when no hop has power."""
    e = np.asarray(excitation, dtype=np.float64)
    F = e.shape[0] // hop
    frame_shapes = spectral_shape(e[: F * hop].reshape(F, hop)[:: max(1, F // max_hops)])
    sounding = ~np.isnan(frame_shapes[:, 0])
    if not sounding.any():
        return np.zeros((1, hop // 2 + 1))
    return frame_shapes[sounding].mean(axis=0, keepdims=True)


def equaliser_bands(n_fft, sample_rate, n_bands=EQUALISER_BANDS):
    """Triangular mel-spaced bands over an ``n_fft``-point transform's bins
    from 0 to Nyquist: the weights [n_fft // 2 + 1, n_bands] and the
    bands' centres, as fractions of Nyquist [n_bands]."""
    edges = mel_band_edges(n_bands, sample_rate)
    return triangular_bands(edges, n_fft, sample_rate, fill_empty=False), edges[1:-1] / (0.5 * float(sample_rate))


def mean_band_spectrum(clips, n, sample_rate, n_bands=EQUALISER_BANDS):
    """The mean over frames of each frame's band powers relative to its
    mean power, in log (nats, [n_bands], :func:`equaliser_bands`): frames
    of ``n`` samples (Hann) every ``n // 2`` of each clip (a list of 1-D
    signals), each without its (window-weighted) mean, frames without
    power left out; None when no frame has any. A DC offset is not sound:
    left in, the window spreads it over the two lowest bands (at 16 kHz,
    28 and 56 Hz), and an equaliser copies it from the training (the songs'
    audio has one) onto the model's 31-62 Hz.

    Band powers, not a log per bin: a mean of logs per bin reads a spectrum
    of clean partials as lower than a noisy one of the same power in the
    band, and an equaliser fitted on it cut what it should have left
    (the songs' 1.5-3.5 kHz, 0.6-1.2 nats under the training's in the
    log-mel means after it)."""
    bank, _ = equaliser_bands(n, sample_rate, n_bands)
    window = np.hanning(n)
    total, count = 0.0, 0
    for clip in clips:
        clip = np.asarray(clip, dtype=np.float64)
        if clip.shape[0] < n:
            continue
        frames = np.lib.stride_tricks.sliding_window_view(clip, n)[:: n // 2]
        frames = frames - (frames @ window / window.sum())[:, None]  # no offset: nothing at 0 Hz, none leaked
        power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
        mean = power.mean(axis=1, keepdims=True)
        keep = mean[:, 0] > 0
        band = np.log(np.maximum(power[keep] @ bank, _SHAPE_FLOOR * mean[keep])) - np.log(mean[keep])
        total = total + band.sum(axis=0)
        count += band.shape[0]
    return total / count if count else None


def equaliser_step(training_bands, rendered_bands, n_bins, sample_rate):
    """One analysis-by-synthesis step of an equaliser: the difference of two
    :func:`mean_band_spectrum` (the training audio's minus the model's
    rendering of the same states), interpolated from the centres of the
    bands that hold a bin of a 2 * (n_bins - 1)-point transform (the
    rendering's frames) to ``n_bins`` bins from 0 to Nyquist (the colour's),
    in log power (nats)."""
    d = np.asarray(training_bands, dtype=np.float64) - np.asarray(rendered_bands, dtype=np.float64)
    bank, centres = equaliser_bands(2 * (n_bins - 1), sample_rate, d.shape[0])
    read = bank.sum(axis=0) > 0  # a band narrower than the transform's bins may hold none: it read nothing
    return np.interp(np.linspace(0.0, 1.0, n_bins), centres[read], d[read])


def shape_excitation(excitation, shape, hop, flatten=True, index=None, variation=None, colour=None):
    """Give a unit-power excitation [F * hop] each frame's spectral shape.

    The excitation is first flattened: its colour (a Karplus-Strong
    string's pluck, a pulse's roll-off, the noise's high-pass) is taken out,
    either ``colour`` (log power, nats, on its own bins from 0 to Nyquist:
    the excitation kind's colour as the model measures it over a long
    stretch of its own excitation) or, without it, the colour of this
    excitation itself (:func:`excitation_colour`). Then each hop is given
    its row of ``shape`` [F, B] (log power, nats, B bins from 0 to Nyquist:
    the residual shape of the frame's state), or with ``index`` [F] the row
    ``shape[index[f]]`` (a table per state, [N, B]), plus ``variation``
    [F, B'] (optional, log power on its own B' bins) per frame. Filtering
    is by short-time Fourier transform: frames of 2 * hop centred on the
    hops' centres, square-root Hann windows at 50% overlap (which rebuild
    the input exactly under a flat gain), so the gain crossfades from one
    hop to the next.

    A short excitation's own colour holds its few pitches: the partials of
    a steady note stand out of its mean log spectrum, and taking that out
    fills the valleys between them (a quarter second of a 190 Hz string,
    shaped flat, fell from 0.95 to 0.82 in harmonicity). A colour measured
    over many notes has no partials in it.
    """
    e = np.asarray(excitation, dtype=np.float64)
    shape = np.asarray(shape, dtype=np.float64)
    index = np.arange(shape.shape[0]) if index is None else np.asarray(index)
    F = index.shape[0]
    if e.shape[0] != F * hop or shape.shape[1] < 2:
        raise ValueError(f"shape_excitation needs {F} x {hop} samples and at least 2 bins per frame")
    own = np.zeros((1, 2))
    if colour is not None:
        own = np.asarray(colour, dtype=np.float64).reshape(1, -1)
    elif flatten:
        own = excitation_colour(e, hop)
    # on the bins of the 2 * hop transform, per row of the table; frames -1 and F take their neighbours' gains
    table = np.exp(0.5 * (resample_bins(shape, hop + 1) - resample_bins(own, hop + 1)))
    gain = table[np.concatenate([index[:1], index, index[-1:]])]
    if variation is not None:
        variation = np.asarray(variation, dtype=np.float64)
        gain = gain * np.exp(0.5 * resample_bins(np.concatenate([variation[:1], variation, variation[-1:]]), hop + 1))
    window = np.sqrt(0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(2 * hop) / (2 * hop)))  # periodic
    left = hop + hop // 2
    blocks = np.pad(e, (left, 3 * hop - left)).reshape(F + 3, hop)
    frames = np.concatenate([blocks[:-1], blocks[1:]], axis=1) * window
    out = np.fft.irfft(np.fft.rfft(frames, axis=1) * gain, 2 * hop, axis=1) * window
    ola = np.zeros((F + 3, hop))
    ola[:-1] += out[:, :hop]
    ola[1:] += out[:, hop:]
    return ola.reshape(-1)[left : left + F * hop]


def silence_gate(audible, hop):
    """Per-sample gain [F * hop]: 1 in sounding hops, exactly 0 in silent
    ones; a sounding hop next to silence fades in (or out) over its half
    that borders it, so no sound leaks into the silence and no step is
    left at its edges."""
    a = np.asarray(audible, dtype=bool)
    F = a.shape[0]
    u = (np.arange(hop) + 0.5) / hop
    g = np.ones((F, hop))
    before = np.concatenate([[True], a[:-1]])
    after = np.concatenate([a[1:], [True]])
    g[~before] = np.minimum(g[~before], np.minimum(1.0, 2.0 * u))
    g[~after] = np.minimum(g[~after], np.minimum(1.0, 2.0 * (1.0 - u)))
    g[~a] = 0.0
    return g.reshape(-1)


def render(lar, log_gain, excitation, hop, state=None, audible=None):
    """Per-frame LARs and log signal levels over a unit-power excitation.

    The C kernel scales the excitation by prod(sqrt(1 - k^2)), which keeps
    white input at its level whatever spectrum the LARs make, and updates a
    direct-form filter every 16 samples from interpolated coefficients.
    A pitched or shaped excitation is not white (its partials may sit on
    the filter's peaks), so each hop's level is then brought to the
    model's: the ratio of wanted to measured RMS per hop, interpolated in
    log between hop centres, multiplies the output. Every frame ends at
    the gain the model gave it. ``audible`` (optional, [F] bool): frames
    that are not get exact zeros (:func:`silence_gate`).
    """
    k = np.clip(reflection_from_lar(lar), -0.999999, 0.999999)
    y, zf = kernels.lpc_synthesis_smooth(excitation, k, log_gain, hop, block=BLOCK, zi=state)
    n_frames = k.shape[0]
    padded = np.zeros(n_frames * hop)
    padded[: y.shape[0]] = y
    measured = np.sqrt(np.mean(padded.reshape(n_frames, hop) ** 2, axis=1))
    correction = np.exp(np.clip(log_gain - np.log(np.maximum(measured, 1e-30)), -np.log(100.0), np.log(100.0)))
    y *= _ramp_between_centres(correction, hop)[: y.shape[0]]
    if audible is not None and not np.all(audible):
        y *= silence_gate(audible, hop)[: y.shape[0]]
    return y, zf


def _ramp_between_centres(values, hop):
    """Per-sample values, linear between frame centres (f*hop + hop/2) and
    held before the first and after the last: [n_frames * hop]."""
    F = values.shape[0]
    u = (np.arange(hop) + 0.5) / hop - 0.5  # position within a hop, relative to its centre
    nxt = np.append(values[1:], values[-1])
    prv = np.insert(values[:-1], 0, values[0])
    ramp = np.where(u >= 0, values[:, None] + u * (nxt - values)[:, None],
                    values[:, None] + u * (values - prv)[:, None])
    return ramp.reshape(F * hop)


def soft_limit(y, threshold=0.9):
    """Only if some sample would exceed full scale: samples above
    ``threshold`` are compressed smoothly (tanh knee) so none exceeds 1.
    Audio within full scale comes back untouched."""
    y = np.asarray(y, dtype=np.float64)
    if not y.size or np.abs(y).max() <= 1.0:
        return y
    over = np.abs(y) > threshold
    knee = 1.0 - threshold
    y = y.copy()
    y[over] = np.sign(y[over]) * (threshold + knee * np.tanh((np.abs(y[over]) - threshold) / knee))
    return y


def log_spectral_distance(x, y, n_fft=1024, hop=256, floor_db=-100.0):
    """Mean over frames of the RMS difference (dB) between the log power
    spectra of two signals of the same length (Hann frames)."""
    n = min(len(x), len(y))
    if n < n_fft:
        raise ValueError("signals shorter than one FFT frame")
    idx = np.arange(n_fft)[None, :] + hop * np.arange(1 + (n - n_fft) // hop)[:, None]
    w = np.hanning(n_fft)
    px = np.abs(np.fft.rfft(np.asarray(x)[idx] * w, axis=1)) ** 2
    py = np.abs(np.fft.rfft(np.asarray(y)[idx] * w, axis=1)) ** 2
    ref = max(px.max(), py.max(), 1e-30)
    dx = 10 * np.log10(np.maximum(px / ref, 10 ** (floor_db / 10)))
    dy = 10 * np.log10(np.maximum(py / ref, 10 ** (floor_db / 10)))
    return float(np.mean(np.sqrt(np.mean((dx - dy) ** 2, axis=1))))
