"""Frame retrieval: nearest training frames in a feature space (scipy cKDTree)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["FEATURE_SPACES", "FrameIndex", "FrameQueryResult", "frame_features"]

FEATURE_SPACES = ("lpc", "extended", "residual")
_RESIDUAL_BANDS = 8


@dataclass
class FrameQueryResult:
    """Frames found by a query.

    indices : ndarray of int64 [k]
        Frame indices into the training frames (all sequences back to back).
    distances : ndarray [k]
        Distance in the (normalised) feature space, or the metric's values
        for :meth:`SpectralStateGuidedSynthesis.top_frames`.
    metadata : dict of str -> ndarray [k]
        The frames' metadata, with ``sequence`` (which training sequence)
        and ``seconds`` (where in it the frame's hop region starts).
    feature_space : str
    """

    indices: np.ndarray
    distances: np.ndarray
    metadata: dict = field(default_factory=dict)
    feature_space: str | None = None


def _residual_descriptors(residual, periodicity):
    """Per frame: log energy of the residual in 8 equal bands, its log RMS
    and the frame's periodicity (computed in chunks)."""
    T, hop = residual.shape
    out = np.empty((T, _RESIDUAL_BANDS + 2))
    edges = np.linspace(0, hop // 2 + 1, _RESIDUAL_BANDS + 1).astype(int)
    for s0 in range(0, T, 8192):
        block = np.asarray(residual[s0 : s0 + 8192], dtype=np.float64)
        power = np.abs(np.fft.rfft(block * np.hanning(hop), axis=1)) ** 2
        bands = np.stack([power[:, a:b].sum(1) for a, b in zip(edges[:-1], edges[1:])], axis=1)
        out[s0 : s0 + 8192, :_RESIDUAL_BANDS] = np.log(bands + 1e-12)
        out[s0 : s0 + 8192, _RESIDUAL_BANDS] = 0.5 * np.log(np.mean(block * block, axis=1) + 1e-12)
    out[:, -1] = 0.0 if periodicity is None else periodicity
    return out


def frame_features(corpus, feature_space):
    """The [T, F] feature matrix of a :class:`ssgs.corpus.Corpus` in a feature space:

    - ``'lpc'``: the LPC coefficients a_1..a_p;
    - ``'extended'``: the HMM observation (log-area ratios, log gain,
      voicing), log F0 and every frame-metadata value;
    - ``'residual'``: the residual's log energy in 8 bands, its log RMS and
      the periodicity.
    """
    if feature_space == "lpc":
        return np.asarray(corpus.lpc_coefficients, dtype=np.float64)
    if feature_space == "extended":
        parts = [np.asarray(corpus.observations, dtype=np.float64)]
        if corpus.f0 is not None:
            parts.append(np.log(np.maximum(corpus.f0.astype(np.float64), 1.0))[:, None])
        parts += [np.asarray(corpus.frame_metadata[k], dtype=np.float64)[:, None] for k in sorted(corpus.frame_metadata)]
        return np.concatenate(parts, axis=1)
    if feature_space == "residual":
        return _residual_descriptors(corpus.residual_signals, corpus.periodicity)
    raise ValueError(f"feature_space must be one of {', '.join(map(repr, FEATURE_SPACES))}; got {feature_space!r}")


class FrameIndex:
    """A k-d tree over the training frames in one feature space."""

    def __init__(self, features, feature_space, normalize=True):
        self.feature_space = feature_space
        self.normalize = bool(normalize)
        self.mean = features.mean(axis=0) if normalize else np.zeros(features.shape[1])
        std = features.std(axis=0) if normalize else np.ones(features.shape[1])
        self.scale = np.where(std > 0, std, 1.0)
        self.tree = cKDTree((features - self.mean) / self.scale)
        self.n_frames, self.n_dims = features.shape

    def query(self, vector, k, exclude=None):
        vector = (np.asarray(vector, dtype=np.float64) - self.mean) / self.scale
        want = min(self.n_frames, k + (1 if exclude is not None else 0))
        dist, idx = self.tree.query(vector, k=want)
        dist, idx = np.atleast_1d(dist), np.atleast_1d(idx)
        if exclude is not None:
            keep = idx != exclude
            dist, idx = dist[keep], idx[keep]
        return idx[:k].astype(np.int64), dist[:k]
