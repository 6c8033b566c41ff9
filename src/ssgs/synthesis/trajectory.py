"""Parameter trajectories: per-frame observations drawn along a state path
(correlated deviations, then the smoother calibrated at training), and the
pitch, voicing and note onsets the excitation follows."""

from __future__ import annotations

import math

import numpy as np
import scipy.signal
import scipy.special

from ssgs.excitation_model import MIDI_LOW, N_PITCH_BINS, SMOOTHING, bin_log_f0
from ssgs.features import voicing_from_logit

__all__ = [
    "ar1",
    "audible_frames",
    "draw_frames",
    "draw_pitch",
    "fixed_order_product",
    "model_trajectory",
    "observation_trajectory",
    "pluck_onsets",
    "smooth_frames",
    "sound_boundaries",
    "state_deviations",
    "voiced_starts",
    "zero_phase_smooth",
]

GLIDE = 0.6  # frame-to-frame pitch smoothing between notes (about 40 ms at hop 256)
LEAP_SEMITONES = 3.0  # a pitch change this large is a new note, plucked anew
PITCH_TAIL = 0.025  # a new state keeps the pitch held so far if it lies within the central 95% of the state's pitches
PITCH_RETURN = 0.98  # per frame, how much of its wander from the note's pitch the pitch keeps (time constant ~50 frames)
VOICING_OFF = 0.25  # a voiced sound ends when the voicing falls below this (it begins at 0.5)


def fixed_order_product(a, b):
    """``a @ b`` [F, K] @ [K, M] for a small K, as K elementwise
    multiply-adds in a fixed order: the same bits whatever the arrays'
    memory layout (numpy's einsum sums in an order set by the strides, so a
    model reloaded from a checkpoint, its arrays laid out anew, rounded a
    sample differently) and no BLAS threads left spinning after it."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    out = a[:, :1] * b[:1, :]
    for k in range(1, a.shape[1]):
        out += a[:, k : k + 1] * b[k : k + 1, :]
    return out


def state_deviations(z, matrices, path, chunk=4096):
    """``matrices[path[t]] @ z[t]`` for every frame t ([F, M] from ``z``
    [F, K] and ``matrices`` [S, M, K]): each frame's draws through its
    state's matrix, summed as :func:`fixed_order_product` sums (the same
    bits), ``chunk`` frames at a time (a [chunk, M, K] stack, never one
    per frame of a long path)."""
    z, path = np.asarray(z, dtype=np.float64), np.asarray(path)
    out = np.empty((len(path), matrices.shape[1]))
    columns = np.ascontiguousarray(np.swapaxes(matrices, 1, 2), dtype=np.float64)  # [S, K, M]
    for a in range(0, len(path), chunk):
        b = min(a + chunk, len(path))
        factors = columns[path[a:b]]  # [n, K, M]
        dev = z[a:b, :1] * factors[:, 0]
        for k in range(1, z.shape[1]):
            dev += z[a:b, k : k + 1] * factors[:, k]
        out[a:b] = dev
    return out


def ar1(eps, rho):
    """Each column of ``eps`` [F, K] (unit-variance noise) through an AR(1)
    filter of coefficient ``rho[k]``, scaled to keep unit variance."""
    z = np.empty_like(eps)
    for k in range(eps.shape[1]):
        z[:, k] = scipy.signal.lfilter([np.sqrt(1.0 - rho[k] ** 2)], [1.0, -rho[k]], eps[:, k])
    return z


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
    rho = np.broadcast_to(np.asarray(smoothing, dtype=np.float64), (D,))
    z = ar1(rng.standard_normal((len(path), D)), rho)
    deviation = state_deviations(z, chol, path)
    g = D - 2
    score = deviation[:, g] / np.sqrt(params.covars[path, g, g]) if return_scores else None
    obs = params.means[path]
    obs += deviation  # in place, the same bits: an hour's frames hold no spare copies
    del deviation
    if bounds is not None:
        np.clip(obs, bounds[0], bounds[1], out=obs)
    out = (obs,)
    if return_scores:
        out += (score,)
    if return_draws:
        out += (z,)
    return out[0] if len(out) == 1 else out


def zero_phase_smooth(x, coefficient, starts=None, out=None):
    """A one-pole low-pass run forwards then backwards over the frames
    ``x`` [F, D] (coefficient per dimension, 0 = untouched), each pass
    starting from its first value (no pull towards zero at the ends).
    ``starts`` (optional): frames where a new segment begins; each segment
    is smoothed on its own, nothing carried across. ``out`` (optional, may
    be ``x`` itself): where to write the result."""
    x = np.asarray(x, dtype=np.float64)
    if out is None:
        out = x.copy()
    elif out is not x:
        out[...] = x
    if starts is not None and len(starts) and x.shape[0]:
        bounds = np.unique(np.concatenate([[0], np.asarray(starts, dtype=np.int64), [x.shape[0]]]))
        for a, b in zip(bounds[:-1], bounds[1:]):
            zero_phase_smooth(out[a:b], coefficient, out=out[a:b])
        return out
    for d, c in enumerate(np.broadcast_to(coefficient, (x.shape[1],))):
        if c <= 0.0 or x.shape[0] < 2:
            continue
        y = scipy.signal.lfilter([1.0 - c], [1.0, -c], out[:, d], zi=[c * out[0, d]])[0]
        out[:, d] = scipy.signal.lfilter([1.0 - c], [1.0, -c], y[::-1], zi=[c * y[-1]])[0][::-1]
    return out


def smooth_frames(obs, means, smoother, starts=None):
    """Drawn frames ``obs`` [F, D] of states with ``means`` [F, D] smoothed
    as :func:`fit_smoother` calibrated (``smoother``: [4, D]; an older
    model's [2, D] scale the smoothed frames' distance from the states'
    means by its second row)."""
    smoother = np.asarray(smoother, dtype=np.float64)
    if smoother.shape[0] < 4:
        return means + (zero_phase_smooth(obs, smoother[0], starts) - means) * smoother[1]
    return _smooth_deviations(np.asarray(obs, dtype=np.float64) - means, means, smoother, starts)


def _smooth_deviations(deviations, means, smoother, starts):
    """:func:`smooth_frames` of the frames ``means + deviations`` (a
    [4, D] ``smoother``): centre + smooth(deviations) * s1 + smooth(means -
    centre) * s2, the same bits, worked in place in ``deviations`` (an
    hour's frames hold no spare copies)."""
    centre = smoother[3]
    out = zero_phase_smooth(deviations, smoother[0], starts, out=deviations)
    out *= smoother[1]
    out += centre
    rest = np.subtract(means, centre)
    rest = zero_phase_smooth(rest, smoother[0], starts, out=rest)
    rest *= smoother[2]
    out += rest
    return out


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
        means, starts = params.means[path], sound_boundaries(exc, path)
        if np.asarray(exc.smoother).shape[0] < 4:
            obs = smooth_frames(obs, means, exc.smoother, starts)
        else:  # obs is ours: its deviations from the means are smoothed in place
            obs -= means
            obs = _smooth_deviations(obs, means, np.asarray(exc.smoother, dtype=np.float64), starts)
        del means
        if bounds is not None:
            np.clip(obs, bounds[0], bounds[1], out=obs)
    return obs, score, z


def draw_pitch(exc, state, rng, current=None):
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
    # rng.choice(N_PITCH_BINS, p=p / p.sum()) without its checks: the same draw, a third of the time
    cdf = (p / p.sum()).cumsum()
    cdf /= cdf[-1]
    b = int(cdf.searchsorted(rng.random(), side="right"))
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
    (``pitch_leaps``, see :func:`draw_pitch`); in between, the pitch
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
            b = min(max(round(69.0 + 12.0 * math.log2(math.exp(current) / 440.0)) - MIDI_LOW, 0), N_PITCH_BINS - 1)
            redraw = not (cdf[s][b] < 1.0 - PITCH_TAIL and cdf[s][b + 1] > PITCH_TAIL)  # outside the central range
        else:  # a leap within a state goes as far as the training's leaps went
            redraw, leap_from = leaps[t], note + drift
        if redraw:
            note, drift = draw_pitch(exc, s, rng, leap_from), 0.0
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
    starts = voiced_starts(voicing)
    onset = leap | starts
    onset[0] = True
    glided[leap] = log_f0[leap]
    notes = np.append(np.flatnonzero(onset), F)  # where each drawn note begins
    for t in np.flatnonzero(leap):  # a leap starts the note at its pitch, gliding from there
        end = notes[np.searchsorted(notes, t, side="right")]
        glided[t:end] = log_f0[t:end]
    audible = audible_frames(exc, path, gain_score) if exc.silence_runs is None else ~exc.silent_states[path]
    low, high = bin_log_f0()[[0, -1]]  # the wander stays within the pitch range the analysis searches
    out = (obs, np.exp(np.clip(glided, low, high)), voicing, onset, audible)
    return out + (draws,) if return_draws else out


def pluck_onsets(voicing, f0):
    """Where a string is plucked along a given pitch track (a passage's
    own): where a voiced sound begins (:func:`voiced_starts`) or the pitch
    leaps by LEAP_SEMITONES or more, and at the first frame."""
    log_f0 = np.log(f0)
    onset = voiced_starts(voicing) | (np.abs(np.diff(log_f0, prepend=log_f0[0])) >= LEAP_SEMITONES * np.log(2) / 12)
    onset[0] = True
    return onset


def voiced_starts(voicing, on=0.5, off=VOICING_OFF):
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


def audible_frames(exc, path, gain_score):
    """Which frames sound, frame by frame: a frame of a state whose
    training frames were digital silence in a share ``s`` is silent when its
    gain score falls in the lowest ``s`` of its distribution (so the
    quietest draws go silent, and each state is silent as often as in
    training). Blends decide silence this way, with the passage's scores
    mixed in (:func:`blended_gain_scores`): their silences follow the
    passage's."""
    return scipy.special.ndtr(gain_score) >= exc.silence[path]
