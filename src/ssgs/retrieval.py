"""Frame retrieval: nearest training frames in a feature space (scipy cKDTree)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from ssgs.checks import check_int

__all__ = ["FEATURE_SPACES", "FrameIndex", "FrameQueries", "FrameQueryResult", "FrameSearch", "frame_features", "frame_metadata"]

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


def frame_metadata(corpus, key=None, indices=None):
    """Per-frame metadata of a corpus (:meth:`ssgs.corpus.Corpus.frame_table`):
    a dict of arrays, or one array for ``key``; for all frames or the given
    ``indices``. ValueError naming an unknown key or an index out of range."""
    table, T = corpus.frame_table(), corpus.n_frames
    if key is not None and key not in table:
        raise ValueError(f"unknown metadata key {key!r}; known: {', '.join(sorted(table))}")
    if indices is not None:
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= T):
            raise ValueError(f"indices must lie in 0..{T - 1}")
    pick = (lambda v: v) if indices is None else (lambda v: np.asarray(v)[indices])
    return pick(table[key]) if key is not None else {k: pick(v) for k, v in table.items()}


class FrameSearch:
    """Queries over a corpus's frames: nearest neighbours in a feature space
    (one :class:`FrameIndex` kept, rebuilt for another space) and the
    frames with the largest or smallest value of a metadata metric."""

    def __init__(self, corpus):
        self.corpus = corpus
        self.index = None

    def build(self, feature_space="lpc", normalize=True):
        """Index the frames in ``feature_space``; returns the :class:`FrameIndex`."""
        self.index = FrameIndex(frame_features(self.corpus, feature_space), feature_space, normalize)
        return self.index

    def _index_for(self, feature_space, normalize):
        """The index in ``feature_space`` (None: the current one, or 'lpc'),
        normalised or not as asked (None: as it is), built when needed."""
        index = self.index
        space = feature_space or (index.feature_space if index is not None else "lpc")
        if index is None or index.feature_space != space or (normalize is not None and index.normalize != normalize):
            self.build(space, True if normalize is None else bool(normalize))
        return self.index

    def result(self, indices, distances, feature_space, include_metadata=True):
        """A :class:`FrameQueryResult`, with the frames' metadata unless
        ``include_metadata`` is false (then an empty dict)."""
        metadata = frame_metadata(self.corpus, indices=indices) if include_metadata else {}
        return FrameQueryResult(np.asarray(indices, np.int64), np.asarray(distances, np.float64), metadata,
                                feature_space)

    def similar(self, frame_idx, k, feature_space=None, exclude_self=True, normalize=None, include_metadata=True):
        """The ``k`` frames nearest to frame ``frame_idx``."""
        T = self.corpus.n_frames
        if isinstance(frame_idx, bool) or not isinstance(frame_idx, (int, np.integer)) or not 0 <= frame_idx < T:
            raise ValueError(f"frame_idx must be an integer in 0..{T - 1}, got {frame_idx!r}")
        index = self._index_for(feature_space, normalize)
        vector = frame_features(self.corpus, index.feature_space)[frame_idx]
        idx, dist = index.query(vector, k, exclude=int(frame_idx) if exclude_self else None)
        return self.result(idx, dist, index.feature_space, include_metadata)

    def nearest(self, vector, k, feature_space=None, normalize=None, include_metadata=True):
        """The ``k`` frames nearest to a feature vector (in the feature space's units)."""
        index = self._index_for(feature_space, normalize)
        vector = np.asarray(vector, dtype=np.float64)
        if vector.shape != (index.n_dims,):
            raise ValueError(f"vector must have {index.n_dims} values for feature space "
                             f"'{index.feature_space}', got shape {vector.shape}")
        if not np.isfinite(vector).all():
            raise ValueError("vector contains NaN or inf")
        idx, dist = index.query(vector, k)
        return self.result(idx, dist, index.feature_space, include_metadata)

    def top(self, metric, k, descending=True):
        """The ``k`` frames with the largest (or smallest) value of ``metric``."""
        values = np.asarray(frame_metadata(self.corpus, metric), dtype=np.float64)
        order = np.argsort(-values if descending else values, kind="stable")[:k]
        return self.result(order, values[order], None)


class FrameQueries:
    """The model's frame-retrieval methods, mixed into
    :class:`ssgs.SpectralStateGuidedSynthesis`: queries over its corpus
    through one :class:`FrameSearch` (``_frame_search``, None at first). The
    class provides ``corpus`` and ``_require_data``."""

    def _search(self, what):
        self._require_data(what)
        if self._frame_search is None or self._frame_search.corpus is not self.corpus:
            self._frame_search = FrameSearch(self.corpus)
        return self._frame_search

    def build_feature_index(self, feature_space="lpc", normalize=True):
        """Index the training frames for nearest-neighbour queries
        (:class:`ssgs.retrieval.FrameIndex`) in ``feature_space``: 'lpc' (LPC
        coefficients), 'extended' (the HMM observation, log F0 and the frame
        metadata) or 'residual' (the residual's band energies, level and
        periodicity); ``normalize`` scales every dimension to unit variance."""
        return self._search("build_feature_index").build(feature_space, normalize)

    def query_similar_frames(self, frame_idx, k=5, feature_space=None, exclude_self=True, *, normalize=None,
                             include_metadata=True):
        """The k training frames nearest to training frame ``frame_idx``
        (a :class:`ssgs.retrieval.FrameQueryResult`). ``feature_space`` None
        and ``normalize`` None keep the current index's (at first 'lpc',
        normalised); ``include_metadata=False`` leaves the result's
        metadata empty."""
        return self._search("query_similar_frames").similar(frame_idx, check_int("k", k), feature_space,
                                                            exclude_self, normalize, include_metadata)

    def query_frames_by_features(self, vector, k=5, feature_space=None, *, normalize=None, include_metadata=True):
        """The k training frames nearest to a feature vector (in the units of
        the feature space, before normalisation); ``feature_space``,
        ``normalize`` and ``include_metadata`` as for
        :meth:`query_similar_frames`."""
        return self._search("query_frames_by_features").nearest(vector, check_int("k", k), feature_space,
                                                                normalize, include_metadata)

    def get_frame_metadata(self, key=None, indices=None):
        """Per-frame metadata: a dict of arrays (every key, plus f0,
        periodicity, gain, sequence and seconds), or one array for ``key``;
        for all frames or the given ``indices``."""
        self._require_data("get_frame_metadata")
        return frame_metadata(self.corpus, key, indices)

    def top_frames(self, metric, k=10, descending=True):
        """The k frames with the largest (or smallest) value of a metadata
        metric; ``distances`` holds the values."""
        return self._search("top_frames").top(metric, check_int("k", k), descending)
