"""Synthesis: state paths, parameter trajectories, excitation, fidelity, output gain.

Fidelity f in [0, 1] has one meaning: a blend, frame by frame, between the
training audio and the model's own rendering of it.

- f = 1 replays the training audio exactly: the stored LPC coefficients and
  residual through the analysis' own (frame-switched) synthesis filter.
- 0 < f < 1 follows the training audio from a start point. The model part
  walks the states decoded (Viterbi) from the training observations, draws
  each frame's log-area ratios and gain from those states, and excites them
  with the passage's own pitch and voicing. The two are mixed in power, frame by frame:
  the mixed frame's spectrum is f * P_training + (1 - f) * P_model (their
  autocorrelations mixed, so the filter stays stable), and the excitation is
  the training residual and the synthetic excitation (each of unit power)
  in the same power shares. Every frequency's expected log-distance to the
  training audio shrinks as f grows.
- f = 0 uses the model alone: a state path sampled from the HMM, LARs and
  gain drawn from the states, pitch drawn from each state's pitch
  distribution. No training frame or residual is read; a checkpoint without
  artifacts is enough.

The model's frames become sound through the C kernels: a unit-power
excitation (a Karplus-Strong string tuned to the modelled F0, a train of
wavelet-shaped pulses, or plain noise; periodic and noisy parts mixed by the
modelled periodicity), then an all-pole filter whose reflection
coefficients and gain are interpolated between frame centres and updated
every 16 samples (direct form, whose state is the output history: a change
of coefficients leaves no transient), state carried throughout: no jumps at
frame boundaries.
The gain is the model's; a soft limiter acts only when a sample would
exceed full scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.signal

from ssgs import kernels
from ssgs.features import (lar_from_reflection, lpc_from_reflection, reflection_from_lar,
                           reflection_from_lpc, voicing_from_logit)

__all__ = [
    "EXCITATION_TYPES",
    "ExcitationModel",
    "GenerationDetails",
    "blend_frames",
    "fit_excitation_model",
    "log_spectral_distance",
    "model_trajectory",
    "observation_trajectory",
    "parse_excitation",
    "render",
    "smooth_path",
    "smooth_transition_scores",
    "soft_limit",
]

EXCITATION_TYPES = ("Karplus-Strong", "Wavelet", "Noise")
_KERNEL_KIND = {"karplus-strong": "karplus-strong", "wavelet": "pulses", "noise": "noise"}
MIDI_LOW, MIDI_HIGH = 35, 83  # 61.7 Hz .. 987.8 Hz, the pitch search range in semitones
N_PITCH_BINS = MIDI_HIGH - MIDI_LOW + 1
SMOOTHING = 0.7  # frame-to-frame correlation of the model's spectral and gain deviations
GLIDE = 0.6  # frame-to-frame pitch smoothing between notes (about 40 ms at hop 256)
LEAP_SEMITONES = 3.0  # a pitch change this large is a new note, plucked anew
BLOCK = 16  # samples between filter updates


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


COLOUR_ORDER = 4


@dataclass
class ExcitationModel:
    """Per-state excitation statistics, learned from the training frames.

    pitch_histogram : [N, B] probability of each semitone bin (MIDI 35..83)
        among the state's voiced frames
    pitch_log_f0 : [N, B] mean log F0 of the state's frames in each bin
    periodicity : [N] mean periodicity of the state's frames
    residual_colour : [N, 4] reflection coefficients of an order-4 all-pole
        fit to the state's average residual spectrum: what the order-p
        envelope leaves in the residual (a tilt, valleys it cannot dig),
        put back on the synthetic excitation
    occupancy : [N] share of the training frames each state explains
    smoothing : [D] frame-to-frame correlation, per observation dimension, of
        the training frames' deviations from their state's mean (the AR(1)
        coefficient generation gives its drawn deviations)
    """

    pitch_histogram: np.ndarray
    pitch_log_f0: np.ndarray
    periodicity: np.ndarray
    residual_colour: np.ndarray
    occupancy: np.ndarray
    smoothing: np.ndarray | None = None

    def tensors(self):
        out = {"state_pitch_histogram": self.pitch_histogram, "state_pitch_log_f0": self.pitch_log_f0,
               "state_periodicity": self.periodicity, "state_residual_colour": self.residual_colour,
               "state_occupancy": self.occupancy}
        if self.smoothing is not None:
            out["observation_smoothing"] = self.smoothing
        return out

    @classmethod
    def from_tensors(cls, tensors):
        n = np.asarray(tensors["state_periodicity"]).shape[0]
        colour = tensors.get("state_residual_colour")
        occupancy = tensors.get("state_occupancy")
        smoothing = tensors.get("observation_smoothing")
        return cls(np.array(tensors["state_pitch_histogram"], np.float64),
                   np.array(tensors["state_pitch_log_f0"], np.float64),
                   np.array(tensors["state_periodicity"], np.float64),
                   np.zeros((n, COLOUR_ORDER)) if colour is None else np.array(colour, np.float64),
                   np.full(n, 1.0 / n) if occupancy is None else np.array(occupancy, np.float64),
                   None if smoothing is None else np.array(smoothing, np.float64))

    @classmethod
    def neutral(cls, n_states):
        """For models without excitation statistics: pitches spread evenly
        over 110-440 Hz, half periodic, white residual."""
        midi = np.arange(MIDI_LOW, MIDI_HIGH + 1)
        hist = ((midi >= 45) & (midi <= 69)).astype(float)
        hist = np.tile(hist / hist.sum(), (n_states, 1))
        return cls(hist, np.tile(_bin_log_f0(), (n_states, 1)), np.full(n_states, 0.5),
                   np.zeros((n_states, COLOUR_ORDER)), np.full(n_states, 1.0 / n_states))


def _bin_log_f0():
    return np.log(440.0 * 2.0 ** ((np.arange(MIDI_LOW, MIDI_HIGH + 1) - 69) / 12.0))


def residual_autocorrelation(residual, order=COLOUR_ORDER, chunk=8192):
    """Normalised autocorrelation r[0..order] (r[0] = 1) of each frame's
    residual [T, hop] (in chunks of frames: no float64 copy of it all); a
    silent frame gets a white one."""
    out = np.empty((residual.shape[0], order + 1))
    for s0 in range(0, residual.shape[0], chunk):
        block = np.asarray(residual[s0 : s0 + chunk], dtype=np.float64)
        out[s0 : s0 + chunk] = np.stack(
            [np.einsum("ij,ij->i", block[:, : block.shape[1] - lag], block[:, lag:]) for lag in range(order + 1)],
            axis=1)
    silent = out[:, 0] <= 0
    out[silent] = np.eye(1, order + 1)[0]
    return out / out[:, :1]


def deviation_smoothing(X, means, posteriors, lengths):
    """Per-dimension lag-1 correlation of the frames' deviations from their
    (most likely) state's mean, over consecutive frames of one state within
    one sequence; clipped to [0, 0.98]."""
    labels = posteriors.argmax(axis=1)
    dev = X - means[labels]
    same = labels[1:] == labels[:-1]
    same[np.cumsum(lengths)[:-1] - 1] = False
    a, b = dev[:-1][same], dev[1:][same]
    if a.shape[0] < 3:
        return np.full(X.shape[1], SMOOTHING)
    a, b = a - a.mean(0), b - b.mean(0)
    den = np.sqrt((a * a).sum(0) * (b * b).sum(0))
    rho = np.where(den > 0, (a * b).sum(0) / np.where(den > 0, den, 1.0), SMOOTHING)
    return np.clip(rho, 0.0, 0.98)


def fit_excitation_model(posteriors, f0, periodicity, residual_acf=None, smoothing=None) -> ExcitationModel:
    """Per-state pitch histograms, periodicity and residual colour from the
    training frames, each frame counted by its posterior (and, for pitch, its
    periodicity, so noisy frames hardly vote)."""
    T, N = posteriors.shape
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
    colour = np.zeros((N, COLOUR_ORDER))
    if residual_acf is not None:
        # a weighted mean of autocorrelations is an autocorrelation: stable fit
        acf = posteriors.T @ residual_acf
        acf[occ <= 0] = np.eye(1, COLOUR_ORDER + 1)[0]
        acf[:, 0] *= 1.0 + 1e-6
        colour = reflection_from_autocorrelation(acf / acf[:, :1])
    share = occ / occ.sum() if occ.sum() > 0 else np.full(N, 1.0 / N)
    return ExcitationModel(histogram, pitch_log_f0, np.clip(mean_periodicity, 0.0, 1.0), colour, share, smoothing)


def coloured_reflection(lar, colour):
    """Reflection coefficients [F, p + q] of A(z) B(z): the frames' envelope
    times the residual colour (both minimum phase, so is the product)."""
    a = lpc_from_reflection(reflection_from_lar(lar))
    b = lpc_from_reflection(colour)
    p, q = a.shape[1] - 1, b.shape[1] - 1
    prod = np.zeros((a.shape[0], p + q + 1))
    for j in range(q + 1):  # the product polynomial, all frames at once
        prod[:, j : j + p + 1] += b[:, j : j + 1] * a
    return reflection_from_lpc(prod)


def observation_trajectory(params, path, rng, smoothing=SMOOTHING, bounds=None):
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
    """
    D = params.means.shape[1]
    chol = np.linalg.cholesky(params.covars)
    eps = rng.standard_normal((len(path), D))
    rho = np.broadcast_to(np.asarray(smoothing, dtype=np.float64), (D,))
    z = np.empty_like(eps)
    for d in range(D):
        z[:, d] = scipy.signal.lfilter([np.sqrt(1.0 - rho[d] ** 2)], [1.0, -rho[d]], eps[:, d])
    obs = params.means[path] + np.einsum("tij,tj->ti", chol[path], z)
    if bounds is not None:
        obs = np.clip(obs, bounds[0], bounds[1])
    return obs


def _draw_pitch(exc, state, rng):
    b = int(rng.choice(N_PITCH_BINS, p=exc.pitch_histogram[state]))
    return exc.pitch_log_f0[state, b]


def model_trajectory(params, exc, path, rng, bounds=None):
    smoothing = SMOOTHING if exc.smoothing is None else exc.smoothing
    """The model's frames along a path: observations, F0, voicing, onsets.

    A new pitch is drawn from the new state's histogram when the state
    changes and the pitch held so far is unlikely there; otherwise the note
    carries on. The pitch glides between notes, and a note is plucked anew
    (onset) only where a voiced sound begins or the pitch leaps by three
    semitones or more. Voicing is the observation's voicing dimension, drawn
    with the rest of the frame.
    """
    obs = observation_trajectory(params, path, rng, smoothing=smoothing, bounds=bounds)
    F = len(path)
    log_f0 = np.empty(F)
    onset = np.zeros(F, bool)
    changes = np.flatnonzero(np.diff(path, prepend=-1))  # the first frame of every run of one state
    current = None
    for i, t in enumerate(changes):
        s = path[t]
        hist = exc.pitch_histogram[s]
        if current is None:
            keep = False
        else:
            midi = 69.0 + 12.0 * np.log2(np.exp(current) / 440.0)
            b = int(np.clip(np.rint(midi) - MIDI_LOW, 0, N_PITCH_BINS - 1))
            keep = hist[b] >= 0.5 * hist.max()
        if not keep:
            current = _draw_pitch(exc, s, rng)
            onset[t] = True
        log_f0[t : changes[i + 1] if i + 1 < len(changes) else F] = current
    p = obs.shape[1] - 2
    voicing = voicing_from_logit(obs[:, p + 1])
    # the pitch glides from note to note (about 40 ms); the string is
    # plucked only where a voiced sound begins or the pitch leaps: a pluck's
    # first period is noise, and plucking at every change of state would
    # fill the sound with it
    glided = scipy.signal.lfilter([1.0 - GLIDE], [1.0, -GLIDE], log_f0, zi=[GLIDE * log_f0[0]])[0]
    leap = onset & (np.abs(np.diff(log_f0, prepend=log_f0[0])) >= LEAP_SEMITONES * np.log(2) / 12)
    starts = (voicing >= 0.5) & (np.concatenate([[0.0], voicing[:-1]]) < 0.5)
    onset = leap | starts
    onset[0] = True
    glided[leap] = log_f0[leap]
    for t in np.flatnonzero(leap):  # a leap starts the note at its pitch, gliding from there
        end = changes[np.searchsorted(changes, t, side="right")] if t < changes[-1] else F
        glided[t:end] = log_f0[t:end]
    return obs, np.exp(glided), voicing, onset


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


def render(lar, log_gain, excitation, hop, state=None, colour=None):
    """Per-frame LARs and log signal levels over a unit-power excitation.

    The C kernel scales the excitation by prod(sqrt(1 - k^2)), which keeps
    white input at its level whatever spectrum the LARs make, and updates a
    direct-form filter every 16 samples from interpolated coefficients.
    ``colour`` ([F, q] reflection coefficients, optional) adds each
    frame's residual colour to the envelope. A pitched excitation is not
    white (its partials may sit on the filter's peaks), so each hop's level
    is then brought to the model's: the ratio of wanted to measured RMS per
    hop, interpolated in log between hop centres, multiplies the output.
    Every frame ends at the gain the model gave it.
    """
    k = reflection_from_lar(lar) if colour is None else coloured_reflection(lar, colour)
    k = np.clip(k, -0.999999, 0.999999)
    y, zf = kernels.lpc_synthesis_smooth(excitation, k, log_gain, hop, block=BLOCK, zi=state)
    n_frames = k.shape[0]
    padded = np.zeros(n_frames * hop)
    padded[: y.shape[0]] = y
    measured = np.sqrt(np.mean(padded.reshape(n_frames, hop) ** 2, axis=1))
    correction = np.exp(np.clip(log_gain - np.log(np.maximum(measured, 1e-30)), -np.log(100.0), np.log(100.0)))
    y *= _ramp_between_centres(correction, hop)[: y.shape[0]]
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


def autocorrelation_from_reflection(k):
    """Normalised autocorrelation r[..., 0..p] (r[0] = 1) of the all-pole
    model with reflection coefficients k [..., p]: the inverse of the
    Levinson-Durbin recursion, r[m] = -k_m E_{m-1} - sum_i a_i r[m - i]."""
    k = np.asarray(k, dtype=np.float64)
    p = k.shape[-1]
    r = np.zeros(k.shape[:-1] + (p + 1,))
    r[..., 0] = 1.0
    a = np.zeros(k.shape[:-1] + (p + 1,))
    a[..., 0] = 1.0
    err = np.ones(k.shape[:-1])
    for m in range(1, p + 1):
        km = k[..., m - 1]
        r[..., m] = -km * err - np.sum(a[..., 1:m] * r[..., m - 1:0:-1], axis=-1)
        if m > 1:
            a[..., 1:m] = a[..., 1:m] + km[..., None] * a[..., m - 1:0:-1]
        a[..., m] = km
        err = err * (1.0 - km * km)
    return r


def reflection_from_autocorrelation(r):
    """Levinson-Durbin over frames: autocorrelations r [..., p + 1] to
    reflection coefficients [..., p]."""
    r = np.asarray(r, dtype=np.float64)
    p = r.shape[-1] - 1
    k = np.zeros(r.shape[:-1] + (p,))
    a = np.zeros(r.shape[:-1] + (p + 1,))
    a[..., 0] = 1.0
    err = r[..., 0].copy()
    for m in range(1, p + 1):
        acc = r[..., m] + np.sum(a[..., 1:m] * r[..., m - 1:0:-1], axis=-1)
        km = np.clip(-acc / err, -0.999999, 0.999999)
        if m > 1:
            a[..., 1:m] = a[..., 1:m] + km[..., None] * a[..., m - 1:0:-1]
        a[..., m] = km
        k[..., m - 1] = km
        err = err * (1.0 - km * km)
    return k


def blend_frames(fidelity, lar_a, log_gain_a, lar_b, log_gain_b):
    """Mix two sequences of frames in power: the spectrum of the result is
    ``f * P_a + (1 - f) * P_b`` (P = level^2 x envelope), as for two
    uncorrelated signals mixed with powers f and 1 - f, rendered as one
    all-pole frame (a mixture of autocorrelations is an autocorrelation, so
    the filter is stable). Every bin's log-distance to P_a,
    |log(f + (1 - f) P_b / P_a)|, shrinks as f grows.

    Returns
    -------
    lar, log_gain : the mixed frames
    share_a : power share of frames a, per frame, for mixing the excitations
    """
    f = float(fidelity)
    pa = f * np.exp(2.0 * log_gain_a)
    pb = (1.0 - f) * np.exp(2.0 * log_gain_b)
    r = pa[:, None] * autocorrelation_from_reflection(reflection_from_lar(lar_a)) + \
        pb[:, None] * autocorrelation_from_reflection(reflection_from_lar(lar_b))
    total = r[:, 0]
    lar = lar_from_reflection(reflection_from_autocorrelation(r / total[:, None]))
    return lar, 0.5 * np.log(total), pa / total


def training_lars(lpc):
    """Log-area ratios of stored LPC rows [T, p] (float64, exact)."""
    a = np.concatenate([np.ones((lpc.shape[0], 1)), lpc], axis=1)
    return lar_from_reflection(reflection_from_lpc(a))


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
