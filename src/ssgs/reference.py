"""Checkpoints of the reference implementation (one pure-Python ``ssgs.py``):
recognised, checked, and converted into ssgs models.

Its files are safetensors with string metadata (``n_states``,
``lpc_order``, ``frame_size``, ``hop_size``, ``sample_rate``, ...) and no
``ssgs_format_version`` and no digests. Its four parameter tensors are
Gaussian states over the LPC coefficients a_1..a_p of
A(z) = 1 + sum a_i z^-i. With training artifacts it also holds the raw
training frames (``training_frames``, one every ``hop_size`` samples;
near-silent frames dropped). docs/checkpoints.md says what converts, what
is approximated and what is refused.
"""

from __future__ import annotations

import math

import numpy as np

from ssgs import kernels
from ssgs.errors import CheckpointError
from ssgs.features import lar_from_reflection, reflection_from_lpc

__all__ = ["REQUIRED", "check", "convert", "is_reference", "observation_gaussians", "sequences_from_frames"]

REQUIRED = ("transition_matrix", "initial_probabilities", "state_means", "state_covariances")
DEFAULT_RATE = 16000  # a file whose sample_rate is "None"
LEVEL = (math.log(0.05), 1.0)  # without artifacts: each state's level (log RMS, about -26 dBFS) mean and variance
VOICING = (0.0, 4.0)  # ... and voicing logit (periodicity 0.5) mean and variance
REFLECTION_LIMIT = 0.999  # a mean LPC vector's reflection coefficients are kept within this (stable)
STEP = 1e-6  # the central differences of the LPC-to-LAR map's Jacobian
STOCHASTIC_TOLERANCE = 1e-3  # how far a row of probabilities may sum from 1


def is_reference(metadata) -> bool:
    """Whether a safetensors file's metadata is the reference
    implementation's: no ``ssgs_format_version``, and its own entries."""
    return "ssgs_format_version" not in metadata and all(k in metadata for k in ("n_states", "lpc_order", "hop_size"))


def _int_entry(metadata, key, name):
    try:
        value = int(metadata[key])
    except (KeyError, ValueError):
        raise CheckpointError(f"{name}: metadata entry '{key}' is missing or not an integer") from None
    if value < 1:
        raise CheckpointError(f"{name}: metadata entry '{key}' must be at least 1, got {value}")
    return value


def _settings(metadata, name):
    """(n_states, lpc_order, frame_size, hop_size, sample_rate) from the metadata."""
    n, p, hop = (_int_entry(metadata, k, name) for k in ("n_states", "lpc_order", "hop_size"))
    frame = _int_entry(metadata, "frame_size", name) if "frame_size" in metadata else 2 * hop
    rate = metadata.get("sample_rate", "None")
    try:
        rate = DEFAULT_RATE if rate in ("None", "") else int(float(rate))
    except ValueError:
        raise CheckpointError(f"{name}: metadata entry 'sample_rate' is not a number, got {rate!r}") from None
    return n, p, frame, hop, rate


def _check_rows(x, tname, name):
    if np.any(x < 0) or np.any(np.abs(x.sum(axis=-1) - 1.0) > STOCHASTIC_TOLERANCE):
        raise CheckpointError(f"{name}: tensor '{tname}' is not a probability distribution "
                              f"(negative, or a row not summing to 1)")


def check(tensors, metadata, name):
    """The settings of a reference checkpoint, after checking its parameter
    tensors (each present, of its shape, finite; probabilities that sum to
    1; covariances symmetric). CheckpointError naming the fault."""
    n, p, frame, hop, rate = _settings(metadata, name)
    shapes = {"transition_matrix": (n, n), "initial_probabilities": (n,), "state_means": (n, p),
              "state_covariances": (n, p, p)}
    for tname in REQUIRED:
        if tname not in tensors:
            raise CheckpointError(f"{name}: missing tensor {tname}")
        x = tensors[tname]
        if tuple(x.shape) != shapes[tname]:
            raise CheckpointError(f"{name}: tensor '{tname}' has shape {tuple(x.shape)}, expected {shapes[tname]}")
        if x.dtype.kind != "f" or not np.all(np.isfinite(x)):
            raise CheckpointError(f"{name}: tensor '{tname}' contains NaN or inf (or is not floating point)")
    _check_rows(np.asarray(tensors["initial_probabilities"], np.float64), "initial_probabilities", name)
    _check_rows(np.asarray(tensors["transition_matrix"], np.float64), "transition_matrix", name)
    covars = np.asarray(tensors["state_covariances"], np.float64)
    if not np.allclose(covars, np.swapaxes(covars, 1, 2), rtol=1e-4, atol=1e-8):
        raise CheckpointError(f"{name}: tensor 'state_covariances' is not symmetric")
    frames = tensors.get("training_frames")
    if frames is not None and (frames.ndim != 2 or frames.shape[1] != frame or not np.all(np.isfinite(frames))):
        raise CheckpointError(f"{name}: tensor 'training_frames' must be [F, {frame}] and finite, "
                              f"got {tuple(frames.shape)}")
    return n, p, frame, hop, rate


def sequences_from_frames(frames, hop):
    """The audio the frames were cut from, one array per run of consecutive
    frames: frame i + 1 follows frame i when its first samples are frame
    i's from ``hop`` on (where frames were dropped, they are not, and a new
    sequence begins; where the frames on either side of dropped ones
    overlap in exact zeros, they are joined: the silence is shorter, no
    other sample is lost). Each sequence is its first frame, then each next
    frame's last ``hop`` samples."""
    frames = np.asarray(frames)
    if frames.shape[0] == 0:
        return []
    overlap = frames.shape[1] - hop
    follows = np.all(frames[1:, :overlap] == frames[:-1, hop:], axis=1) if overlap > 0 else np.ones(len(frames) - 1, bool)
    starts = np.concatenate([[0], np.flatnonzero(~follows) + 1, [len(frames)]])
    return [np.concatenate([frames[a], frames[a + 1:b, overlap:].reshape(-1)]).astype(np.float64)
            for a, b in zip(starts[:-1], starts[1:])]


def _lar(a):
    """LARs of LPC vectors a_1..a_p [..., p], reflection coefficients kept
    within REFLECTION_LIMIT."""
    one = np.ones(a.shape[:-1] + (1,))
    k = reflection_from_lpc(np.concatenate([one, a], axis=-1))
    k = np.clip(np.nan_to_num(k, nan=0.0), -REFLECTION_LIMIT, REFLECTION_LIMIT)
    return lar_from_reflection(k)


def observation_gaussians(lpc_means, lpc_covars):
    """Gaussians over LPC coefficients [N, p] / [N, p, p] mapped into ssgs's
    observation space [N, p + 2] / [N, p + 2, p + 2]: the LARs of each
    mean, the covariance through the map's Jacobian at the mean (central
    differences), and the documented level and voicing (LEVEL, VOICING),
    independent of the spectrum."""
    m = np.asarray(lpc_means, np.float64)
    S = np.asarray(lpc_covars, np.float64)
    N, p = m.shape
    eye = np.eye(p) * STEP
    J = np.stack([(_lar(m + eye[i]) - _lar(m - eye[i])) / (2 * STEP) for i in range(p)], axis=-1)  # [N, p, p]
    means = np.zeros((N, p + 2))
    means[:, :p], means[:, p], means[:, p + 1] = _lar(m), LEVEL[0], VOICING[0]
    covars = np.zeros((N, p + 2, p + 2))
    spectral = J @ S @ np.swapaxes(J, 1, 2)
    scale = np.maximum(np.trace(spectral, axis1=1, axis2=2) / p, 1e-12)  # a singular one made positive definite
    covars[:, :p, :p] = spectral + 1e-6 * scale[:, None, None] * np.eye(p)
    covars[:, p, p], covars[:, p + 1, p + 1] = LEVEL[1], VOICING[1]
    return means, 0.5 * (covars + np.swapaxes(covars, 1, 2))


def _labels(model, tensors):
    """The reference states of the model's training frames: the Viterbi path
    of their LPC coefficients under the reference's Gaussians and
    transitions."""
    covars = np.asarray(tensors["state_covariances"], np.float64)
    p = covars.shape[1]
    covars = covars + 1e-9 * np.trace(covars, axis1=1, axis2=2)[:, None, None] / p * np.eye(p)
    logp = kernels.gaussian_logpdf(model.corpus.lpc_coefficients, np.asarray(tensors["state_means"], np.float64),
                                   covars, n_threads=model.n_threads)
    start = np.asarray(tensors["initial_probabilities"], np.float64)
    trans = np.asarray(tensors["transition_matrix"], np.float64)
    start, trans = start / start.sum(), trans / trans.sum(axis=1, keepdims=True)
    off = model.corpus.sequence_offsets
    return np.concatenate([kernels.viterbi(logp[a:b], start, trans)[1] for a, b in zip(off[:-1], off[1:])])


def convert(cls, tensors, metadata, name, n_iterations=10, seed=0):
    """An ssgs model (of class ``cls``) from a checked reference checkpoint,
    and a sentence saying how it was made. With training frames: their
    audio rebuilt (:func:`sequences_from_frames`), analysed the ssgs way,
    initialised from the reference's state of each frame and refined by
    ``n_iterations`` of EM, its excitation model fitted. Without: the
    reference's Gaussians mapped (:func:`observation_gaussians`), the
    neutral excitation model; fidelity 0 only."""
    n, p, frame, hop, rate = check(tensors, metadata, name)
    model = cls(n_states=n, lpc_order=p, frame_size=frame, hop_size=hop, seed=seed)
    if "training_frames" in tensors and len(tensors["training_frames"]):
        sequences = sequences_from_frames(tensors["training_frames"], hop)
        model.extract_features(sequences, rate)
        model.initialize_from_labels(_labels(model, tensors))
        model.iterative_refinement(n_iterations)
        model.fit_excitation_model()
        model.sources = [{**s, "path": f"{name} (reference training frames, sequence {i})"}
                         for i, s in enumerate(model.sources)]
        return model, (f"its training audio rebuilt from its training frames ({len(sequences)} sequence(s)) and "
                       f"refitted from its states ({n_iterations} EM iterations)")
    from ssgs.hmm import HMMParams

    means, covars = observation_gaussians(tensors["state_means"], tensors["state_covariances"])
    start = np.asarray(tensors["initial_probabilities"], np.float64)
    trans = np.asarray(tensors["transition_matrix"], np.float64)
    model.params = HMMParams(start / start.sum(), trans / trans.sum(axis=1, keepdims=True), means, covars)
    model.sample_rate = rate
    return model, "its states mapped to ssgs's observations, level and voicing at defaults (fidelity 0 only)"
