"""The training corpus: per-frame observations and artifacts of every
training sequence (one per file, array or augmented copy), the analysis of
files and arrays into it, and the training audio rebuilt from it.

The artifacts (LPC coefficients and residual per hop) rebuild each
sequence's audio exactly (:func:`ssgs.features.rebuild_signal`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ssgs import audio as _audio
from ssgs import kernels, training_audio
from ssgs.checks import check_int
from ssgs.errors import AudioError, CheckpointError
from ssgs.features import (GAIN_FLOOR, METADATA_KEYS, FeatureConfig, analyse_signal, n_frames_for, rebuild_signal,
                            residual_frames)
from ssgs.residual_shapes import frame_spectral_shapes
from ssgs.scan import file_sha256

__all__ = ["Corpus", "analyse_coded", "analyse_item", "analyse_items", "store_sequence"]


def _signal_sha(signal):
    return hashlib.sha256(np.ascontiguousarray(signal, dtype=np.float32).tobytes()).hexdigest()


def _load(item, index, sample_rate):
    """(signal, source entry, name for messages) of one file, URL or array."""
    if isinstance(item, (str, os.PathLike)) and _audio.is_url(item):
        url = str(item)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = _audio.fetch(url, tmp)
            except Exception as exc:  # the storage's own errors: credentials, network, missing key
                raise AudioError(f"{_audio.display_path(url)}: cannot fetch ({exc})") from None
            signal = _audio.load_audio(local, sample_rate, name=_audio.display_path(url))
            source = {"path": url, "kind": "file", "size": os.path.getsize(local),
                      "sha256": file_sha256(local)}
        return signal, source, _audio.display_path(url)
    if isinstance(item, (str, os.PathLike)):
        path = os.fsdecode(os.fspath(item))
        signal = _audio.load_audio(path, sample_rate)
        source = {"path": str(Path(path).resolve()), "kind": "file", "size": os.path.getsize(path),
                  "sha256": file_sha256(path)}
        return signal, source, _audio.display_path(path)
    name = f"audio[{index}]"
    signal = _audio.prepare_signal(item, name)
    return signal, {"path": name, "kind": "array", "size": int(signal.nbytes), "sha256": _signal_sha(signal)}, name


def analyse_item(item, index, config: FeatureConfig, kernel_threads=1, augment=False):
    """[(FileFeatures, source entry)] for one file, URL or array (and, with
    ``augment``, its augmented copies: :mod:`ssgs.augment`).

    Raises
    ------
    AudioError
        If it cannot be used (unreadable, shorter than a frame, silent).
    """
    signal, source, name = _load(item, index, config.sample_rate)
    if signal.shape[0] < config.frame_size:
        raise AudioError(f"{name}: shorter than one frame ({signal.shape[0]} samples < "
                         f"frame_size {config.frame_size} at {config.sample_rate} Hz)")
    if not np.any(signal):
        raise AudioError(f"{name}: silent (every sample is zero)")
    versions = [(None, signal)]
    if augment:
        from ssgs.augment import augmented_copies

        versions += augmented_copies(signal, config.sample_rate)
    out = []
    for augmentation, x in versions:
        feats = analyse_coded(training_audio.encode(np.asarray(x, np.float32), config.sample_rate,
                                                    config.audio_bits), config, kernel_threads)
        entry = dict(source, n_frames=feats.n_frames, n_samples=feats.n_samples)
        if augmentation is not None:
            entry["augmentation"] = augmentation
        out.append((feats, entry))
    return out


def analyse_coded(coded, config: FeatureConfig, kernel_threads=1):
    """The analysis (FileFeatures) of the training audio ``coded`` (a
    :class:`ssgs.training_audio.CodedAudio`): of its decoded samples, so the
    same codes always give the same features. It keeps ``audio`` and each
    hop's residual ``shapes`` in place of the residual, which the audio and
    the LPC coefficients give again (:func:`ssgs.features.residual_frames`)."""
    feats = analyse_signal(coded.decode(), config, n_threads=kernel_threads)
    feats.audio, feats.shapes, feats.residual = coded, frame_spectral_shapes(feats.residual), None
    return feats


def _progress_bar(enabled, total):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="decoding", unit="file", disable=None, leave=False)


def analyse_items(items, config: FeatureConfig, workers=0, n_threads=0, skip_bad=True, progress=False,
                  augment=False, store=None):
    """Analyse files, URLs and arrays in parallel (``workers`` threads, 0:
    one per core; each analysis gets its share of ``n_threads``), at most
    2 x workers in flight, results in input order. With ``store`` (a
    :class:`ssgs.frame_store.FrameStore`), each sequence goes to the store
    as it is collected and its FileFeatures in the result is None.

    While it runs, what native decoders write to file descriptor 2 is
    silenced (:func:`ssgs.audio.native_stderr_silenced`); Python's
    ``sys.stderr`` (the progress bar, warnings) still shows.

    Returns
    -------
    analysed : list of (FileFeatures, source entry)
    skipped : list of (path, reason)
        Files that could not be used (with ``skip_bad``; otherwise their
        AudioError is raised, as it always is for arrays); the reason
        without the file's name.

    Warns
    -----
    AudioWarning
        For each truncated file (its decodable part is used:
        :func:`ssgs.audio.load_audio`).
    """
    items = list(items)
    workers = check_int("workers", workers, 0) or kernels.resolve_threads(n_threads)
    workers = max(1, min(workers, len(items) or 1))
    kernel_threads = max(1, kernels.resolve_threads(n_threads) // workers)

    def task(i):
        try:
            return analyse_item(items[i], i, config, kernel_threads, augment)
        except AudioError as exc:
            if not skip_bad or not isinstance(items[i], (str, os.PathLike)):
                raise
            return exc

    def collect(result):
        if store is None or isinstance(result, AudioError):
            return result
        return [(store_sequence(store, feats), entry) for feats, entry in result]

    with _audio.native_stderr_silenced():  # decoders' chatter; the bar and warnings still show
        results = _in_order(task, len(items), workers, _progress_bar(progress, len(items)), collect)
    skipped = [(os.fsdecode(os.fspath(items[i])), _reason(out, items[i]))
               for i, out in enumerate(results) if isinstance(out, AudioError)]
    return [entry for r in results if not isinstance(r, AudioError) for entry in r], skipped


def _in_order(task, n, workers, bar, collect=None):
    """[collect(task(i)) for i in range(n)] (``collect`` None: as it is),
    the tasks run on ``workers`` threads with at most 2 x workers in
    flight, each result collected in order, ``bar`` (or None) advanced as
    each is collected."""
    results = [None] * n
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending, next_i = {}, 0
            for i in range(n):
                while next_i < n and len(pending) < 2 * workers:
                    pending[next_i] = pool.submit(task, next_i)
                    next_i += 1
                results[i] = pending.pop(i).result()
                if collect is not None:
                    results[i] = collect(results[i])
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return results


def _reason(error, item):
    """An AudioError's message about ``item`` without the file's name before it."""
    message, prefix = str(error), f"{_audio.display_path(os.fspath(item))}: "
    return message[len(prefix):] if message.startswith(prefix) else message


_ANALYSED = ("observations", "lpc_coefficients", "_residual", "_frame_shapes", "frame_metadata", "perceptual_features",
             "f0", "periodicity")


_FIELDS = {"observations": "observations", "lpc_coefficients": "lpc", "perceptual_features": "perceptual",
           "f0": "f0", "periodicity": "periodicity", "frame_shapes": "shapes"}  # Corpus's name -> FileFeatures'


def _gather(feats):
    """The per-frame arrays of analysed sequences ``feats`` (FileFeatures,
    each emptied as it is gathered, so nothing is held twice), as
    :class:`Corpus` takes them."""
    def gather(attr):
        if any(getattr(f, attr) is None for f in feats):
            return None
        out = np.concatenate([getattr(f, attr) for f in feats])
        for f in feats:
            setattr(f, attr, None)
        return out

    arrays = {name: gather(attr) for name, attr in _FIELDS.items()}
    arrays["residual_signals"] = gather("residual")
    arrays["frame_metadata"] = {k: np.concatenate([f.metadata.pop(k) for f in feats]) for k in METADATA_KEYS}
    return arrays


def _sequence_arrays(feats):
    """The per-frame arrays of one analysed sequence by Corpus's names
    (metadata as ``frame_metadata__<key>``), those it has."""
    arrays = {name: getattr(feats, attr) for name, attr in _FIELDS.items()}
    arrays.update({f"frame_metadata__{k}": feats.metadata[k] for k in METADATA_KEYS})
    return {name: arr for name, arr in arrays.items() if arr is not None}


def store_sequence(store, feats):
    """Append the analysed sequence ``feats`` to ``store``; returns None
    (the sequence now lives in the store)."""
    store.append(_sequence_arrays(feats), feats.n_samples, feats.audio)
    return None


def _analyse_all(audio, config, n_threads, done, collect=None):
    """The analysis of every coded sequence in ``audio`` (each passed
    through ``collect`` as it comes), a sequence per thread (``n_threads``,
    0: one per core); those in ``done`` (index -> FileFeatures) are taken
    as they are."""
    threads = kernels.resolve_threads(n_threads)
    workers = max(1, min(threads, len(audio)))
    def task(i):
        return done.pop(i) if i in done else analyse_coded(audio[i], config, max(1, threads // workers))

    return _in_order(task, len(audio), workers, None, collect)


class Corpus:
    """The training frames of every sequence, concatenated (T frames in all).

    Attributes
    ----------
    config : ssgs.features.FeatureConfig
    audio : list of ssgs.training_audio.CodedAudio, or None
        Each sequence's training audio as it is kept (None for a corpus
        loaded from a checkpoint that stored residuals instead).
    observations : ndarray float32 [T, D]
    lpc_coefficients : ndarray float64 [T, p]
    residual_signals : ndarray float32 [T, hop]
        Stored by older checkpoints; otherwise computed from the audio
        each time it is read (4 bytes a sample: not held).
    sequence_lengths, sequence_samples : ndarray int64 [S]
    frame_metadata : dict of str -> ndarray float32 [T]
    perceptual_features : ndarray float16 [T, n_mel + n_erb + 2] or None
    f0, periodicity : ndarray float32 [T] or None

    A corpus loaded from coded audio (:meth:`from_coded`) analyses it when
    one of the per-frame arrays is first read.
    """

    TENSORS = {  # the per-frame form older checkpoints stored: attribute -> (tensor, dtype)
        "observations": ("observations", np.float32), "lpc_coefficients": ("lpc_coefficients", np.float64),
        "residual_signals": ("residual_signals", np.float32), "sequence_offsets": ("sequence_offsets", np.int64),
        "sequence_samples": ("sequence_samples", np.int64),
        "perceptual_features": ("perceptual_features", np.float16),
        "f0": ("f0", np.float32), "periodicity": ("periodicity", np.float32),
    }
    REQUIRED = ("observations", "lpc_coefficients", "residual_signals", "sequence_samples")
    AUDIO = "training_audio"  # the coded form's FLAC bytes; its presence marks that form
    CODED = {  # the coded form: tensor -> dtype
        "training_audio": np.uint8, "training_audio_offsets": np.int64, "training_audio_scale": np.float64,
        "training_audio_bits": np.int64, "sequence_offsets": np.int64, "sequence_samples": np.int64,
    }

    def __init__(self, config, observations, lpc_coefficients, residual_signals, sequence_samples,
                 frame_metadata=None, perceptual_features=None, f0=None, periodicity=None, audio=None,
                 frame_shapes=None):
        self._init_sequences(config, sequence_samples, audio)
        self._set_arrays(observations, lpc_coefficients, residual_signals, frame_metadata, perceptual_features, f0,
                         periodicity, frame_shapes)

    def _init_sequences(self, config, sequence_samples, audio):
        self.config = config
        self.audio = audio
        self.store = None
        self.sequence_samples = np.asarray(sequence_samples, dtype=np.int64)
        self.sequence_lengths = n_frames_for(self.sequence_samples, config.hop_size)
        self._X = self._global_var = None

    def _set_arrays(self, observations, lpc_coefficients, residual_signals, frame_metadata=None,
                    perceptual_features=None, f0=None, periodicity=None, frame_shapes=None):
        self.observations = observations
        self.lpc_coefficients = lpc_coefficients
        self._residual = residual_signals
        self._frame_shapes = frame_shapes
        self.frame_metadata = {} if frame_metadata is None else frame_metadata
        self.perceptual_features = perceptual_features
        self.f0 = f0
        self.periodicity = periodicity

    @classmethod
    def from_analysed(cls, analysed, config):
        """The corpus of ``analysed`` ([(FileFeatures, source)], emptied as
        it is gathered, so the corpus is never held twice)."""
        feats = [f for f, _ in analysed]
        analysed.clear()
        audio = [f.audio for f in feats]
        return cls(config, sequence_samples=[f.n_samples for f in feats], **_gather(feats),
                   audio=None if any(a is None for a in audio) else audio)

    @classmethod
    def from_store(cls, store, config):
        """The corpus of the sequences in ``store`` (a closed or open
        :class:`ssgs.frame_store.FrameStore`), its arrays memory maps of the
        store's files; the store lives as long as the corpus."""
        arrays = store.arrays()
        metadata = {k[len("frame_metadata__"):]: v for k, v in arrays.items() if k.startswith("frame_metadata__")}
        corpus = cls(config, arrays["observations"], arrays["lpc_coefficients"], None, store.sequence_samples,
                     metadata, arrays.get("perceptual_features"), arrays.get("f0"), arrays.get("periodicity"),
                     audio=store.audio(), frame_shapes=arrays.get("frame_shapes"))
        corpus.store = store
        return corpus

    @classmethod
    def from_coded(cls, config, audio, n_threads=0):
        """The corpus of the coded sequences ``audio``, analysed (on
        ``n_threads`` threads) when a per-frame array is first read: the
        same arrays training had."""
        corpus = cls.__new__(cls)
        corpus._init_sequences(config, [a.n_samples for a in audio], list(audio))
        corpus._pending_threads, corpus._sequences = n_threads, {}
        return corpus

    def __getattr__(self, name):
        """Reached only for an attribute not set: a per-frame array of a
        corpus from :meth:`from_coded` not analysed yet."""
        pending = self.__dict__.get("_pending_threads")
        if name not in _ANALYSED or pending is None:
            raise AttributeError(f"'Corpus' object has no attribute {name!r}")
        self._set_arrays(**_gather(_analyse_all(self.audio, self.config, pending, self._sequences)))
        del self._pending_threads, self._sequences
        return getattr(self, name)

    @property
    def needs_analysis(self) -> bool:
        """Whether the corpus is coded audio not analysed yet (:meth:`from_coded`)."""
        return "_pending_threads" in self.__dict__

    def into_store(self, store):
        """This corpus read from ``store`` (a new
        :class:`ssgs.frame_store.FrameStore`): a corpus loaded from coded
        audio and not analysed yet is analysed into it a sequence at a time
        (the same arrays, never all held at once); any other is returned
        as it is."""
        if not self.needs_analysis:
            return self
        _analyse_all(self.audio, self.config, self._pending_threads, self._sequences,
                     lambda feats: store_sequence(store, feats))
        return Corpus.from_store(store, self.config)

    def at_rows(self, name, rows):
        """Per-frame array ``name`` ("observations", "f0" or "periodicity")
        at global frames ``rows`` (sorted or not): of a corpus not analysed
        yet, only the sequences the rows fall in are analysed (each once),
        so a passage of a long corpus sounds without the whole analysis."""
        if "_pending_threads" not in self.__dict__:
            return getattr(self, name)[rows]
        rows = np.arange(self.n_frames)[rows]
        offsets = self.sequence_offsets
        owner = np.searchsorted(offsets, rows, side="right") - 1
        out = None
        for i in np.unique(owner):
            if i not in self._sequences:
                self._sequences[i] = analyse_coded(self.audio[i], self.config, kernels.resolve_threads(
                    self._pending_threads))
            values = getattr(self._sequences[i], name)  # FileFeatures names these three as Corpus does
            mine = owner == i
            if out is None:
                out = np.empty((rows.shape[0],) + values.shape[1:], values.dtype)
            out[mine] = values[rows[mine] - offsets[i]]
        return out

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_size(self) -> int:
        return self.config.hop_size

    @property
    def frame_size(self) -> int:
        return self.config.frame_size

    @property
    def n_frames(self) -> int:
        return int(self.sequence_lengths.sum())

    @property
    def sequence_offsets(self):
        """int64 [S + 1]: where each sequence's frames begin, then T."""
        return np.concatenate([[0], np.cumsum(self.sequence_lengths)]).astype(np.int64)

    def data(self):
        """The observations in float64 [T, D]: computed once and kept, or,
        for a corpus on disk, computed at each call and not kept (the
        E-step reads :meth:`frames` instead)."""
        if self._X is not None:
            return self._X
        X = self.observations.astype(np.float64)
        self.release()
        if self._global_var is None:
            var = X.var(axis=0)
            self._global_var = np.where(var > 0, var, 1.0)
        if self.store is None:
            self._X = X
        return X

    def frames(self):
        """The observations as the E-step reads them, a batch of rows at a
        time (:func:`ssgs.hmm.batched_estep`): the float32 memory map of a
        corpus on disk (the same values as :meth:`data`), else :meth:`data`."""
        return self.observations if self.store is not None else self.data()

    def release(self):
        """Give back the memory of what was read from the store's files (a
        corpus on disk: :meth:`ssgs.frame_store.FrameStore.release`); they
        are read again from the page cache or the disk when next needed."""
        if self.store is not None:
            self.store.release()

    @property
    def global_var(self):
        """Per-dimension variance of the observations (1 where there is none)."""
        if self._global_var is None:
            self.data()
        return self._global_var

    def observation_range(self):
        """[2, D] float64: per-dimension minimum and maximum."""
        out = np.stack([self.observations.min(axis=0), self.observations.max(axis=0)]).astype(np.float64)
        self.release()
        return out

    def silent_frames(self, rows=slice(None)):
        """uint8 per frame (of ``rows``): digital silence (level at the floor)."""
        p = self.config.lpc_order
        level = self.at_rows("observations", rows)[:, p].astype(np.float64)  # as data() holds it
        return (level <= GAIN_FLOOR + 1e-3).astype(np.uint8)  # float32 observations

    @property
    def residual_signals(self):
        """float32 [T, hop]: the stored residual, or the kept audio's."""
        if self._residual is not None or self.audio is None:
            return self._residual
        out = np.zeros((self.n_frames, self.hop_size), np.float32)
        offsets = self.sequence_offsets
        for i, coded in enumerate(self.audio):
            rows = slice(offsets[i], offsets[i + 1])
            out[rows] = residual_frames(coded.decode(), self.lpc_coefficients[rows], self.hop_size)
        return out

    def frame_shapes(self):
        """Each hop's residual shape (:func:`ssgs.residual_shapes.frame_spectral_shapes`),
        from the analysis or computed once."""
        if self._frame_shapes is None:
            self._frame_shapes = frame_spectral_shapes(self.residual_signals)
        return self._frame_shapes

    def rebuild_sequence(self, index) -> np.ndarray:
        """The training audio of sequence ``index`` (float64): decoded
        exactly, or rebuilt from the residuals of an older checkpoint."""
        return self.audio_segment(index, 0, int(self.sequence_samples[index]))

    def audio_segment(self, index, start, stop) -> np.ndarray:
        """Samples ``start:stop`` of sequence ``index``'s training audio
        (float64); from an older checkpoint's residuals, frames ``start //
        hop`` on rebuilt from the sequence's start."""
        if self.audio is not None:
            return self.audio[index].decode(start, stop).astype(np.float64)
        offsets, hop = self.sequence_offsets, self.hop_size
        f0, f1 = offsets[index], offsets[index] + -(-stop // hop)
        return rebuild_signal(self.lpc_coefficients[f0:f1], self.residual_signals[f0:f1], stop, hop)[start:]

    def training_frames(self):
        """The training audio frame by frame: float32 [T, hop] (the last frame
        of each sequence is zero beyond its end)."""
        out = np.zeros((self.n_frames, self.hop_size), np.float32)
        offsets = self.sequence_offsets
        for s in range(len(self.sequence_lengths)):
            y = self.rebuild_sequence(s)
            out[offsets[s]:offsets[s + 1]].reshape(-1)[: y.shape[0]] = y
        return out

    def stretches(self, rows, reach):
        """The training audio at global frames ``rows`` (sorted), a stretch of
        consecutive rows at a time: yields (the positions in ``rows`` of the
        stretch, its audio, the stretch's frames' indices in that audio).
        Each stretch is rebuilt on its own, with ``reach`` frames around it
        and a run-in before it for the filter (its transient dies out long
        before the first frame read), never a whole long sequence."""
        rows = np.asarray(rows, dtype=np.int64)
        hop, run_in = self.hop_size, reach + 16
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
            yield piece, self._stretch(i, lo, hi, n), np.arange(first, last) - lo

    def _stretch(self, i, lo, hi, n):
        """``n`` samples of sequence ``i`` from frame ``lo`` (of frames ``lo:hi``)."""
        hop = self.hop_size
        if self.audio is not None:
            return self.audio[i].decode(lo * hop, lo * hop + n).astype(np.float64)
        g0, g1 = self.sequence_offsets[i] + lo, self.sequence_offsets[i] + hi
        return rebuild_signal(self.lpc_coefficients[g0:g1], self.residual_signals[g0:g1], n, hop)

    def frame_table(self):
        """Per-frame metadata: every metadata key, f0, periodicity, gain,
        sequence and seconds (from the sequence's start), arrays [T]."""
        table = dict(self.frame_metadata)
        if self.f0 is not None:
            table["f0"], table["periodicity"] = self.f0, self.periodicity
        table["gain"] = self.observations[:, self.config.lpc_order]
        offsets = self.sequence_offsets
        frames = np.arange(offsets[-1])
        sequence = np.searchsorted(offsets, frames, side="right") - 1
        table["sequence"] = sequence
        table["seconds"] = (frames - offsets[sequence]) * self.hop_size / float(self.sample_rate)
        return table

    def tensors(self):
        """The corpus as named arrays, in their stored dtypes: the coded
        audio (:data:`CODED`) when there is some, else the per-frame form."""
        if self.audio is not None:
            return self._coded_tensors()
        out = {name: np.asarray(getattr(self, attr)).astype(dtype, copy=False)
               for attr, (name, dtype) in self.TENSORS.items() if getattr(self, attr) is not None}
        out.update({f"frame_metadata__{k}": v.astype(np.float32, copy=False) for k, v in self.frame_metadata.items()})
        return out

    def _coded_tensors(self):
        """The coded form; its audio, from a store, the store's file mapped
        (a checkpoint writer reads it from there: :mod:`ssgs.checkpoint`)."""
        sizes = [len(a.data) for a in self.audio]
        out = {"training_audio_offsets": np.concatenate([[0], np.cumsum(sizes)]),
               "training_audio_scale": [a.scale for a in self.audio],
               "training_audio_bits": [a.bits for a in self.audio],
               "sequence_offsets": self.sequence_offsets, "sequence_samples": self.sequence_samples}
        out = {k: np.asarray(v, self.CODED[k]) for k, v in out.items()}
        out[self.AUDIO] = (self.store.audio_tensor() if self.store is not None
                           else np.frombuffer(b"".join(a.data for a in self.audio), np.uint8))
        return out

    @classmethod
    def is_coded(cls, tensors) -> bool:
        """Whether ``tensors`` (names suffice) hold the coded form."""
        return cls.AUDIO in tensors

    @staticmethod
    def tensor_shapes(tensors, n_features, lpc_order, hop, name):
        """The shape each corpus tensor in ``tensors`` must have (None: no
        corpus there), after checking the sequence boundaries and that the
        tensors a corpus needs are all there (CheckpointError naming the
        file ``name`` and the fault)."""
        if "sequence_offsets" not in tensors:
            return None
        offsets = tensors["sequence_offsets"]
        if offsets.ndim != 1 or offsets.size < 2 or offsets[0] != 0 or np.any(np.diff(offsets) < 1):
            raise CheckpointError(f"{name}: tensor 'sequence_offsets' is not an increasing list from 0")
        T, S = int(offsets[-1]), offsets.size - 1
        if Corpus.is_coded(tensors):
            shapes = {"training_audio": (None,), "training_audio_offsets": (S + 1,), "training_audio_scale": (S,),
                      "training_audio_bits": (S,), "sequence_samples": (S,)}
            required = tuple(shapes)
        else:
            shapes = {"observations": (T, n_features), "lpc_coefficients": (T, lpc_order),
                      "residual_signals": (T, hop), "sequence_samples": (S,), "perceptual_features": (T, None),
                      "f0": (T,), "periodicity": (T,)}
            shapes.update({f"frame_metadata__{k}": (T,) for k in METADATA_KEYS})
            required = Corpus.REQUIRED
        for tname in required:
            if tname not in tensors:
                raise CheckpointError(f"{name}: missing tensor '{tname}' (the training artifacts are incomplete)")
        return shapes

    @classmethod
    def from_tensors(cls, tensors, config, name, copy=True, n_threads=0):
        """The corpus stored in ``tensors`` (checked by :meth:`tensor_shapes`);
        coded audio is analysed on first use, on ``n_threads`` threads."""
        samples = np.asarray(tensors["sequence_samples"], dtype=np.int64)
        if np.any(n_frames_for(samples, config.hop_size) != np.diff(tensors["sequence_offsets"])):
            raise CheckpointError(f"{name}: 'sequence_samples' disagrees with 'sequence_offsets'")
        if cls.is_coded(tensors):
            return cls.from_coded(config, _coded_sequences(tensors, samples, config.sample_rate, name), n_threads)
        take = (lambda v: np.array(v)) if copy else (lambda v: v)
        metadata = {k[len("frame_metadata__"):]: take(v) for k, v in tensors.items()
                    if k.startswith("frame_metadata__")}
        optional = {k: take(tensors[k]) if k in tensors else None for k in ("perceptual_features", "f0", "periodicity")}
        if optional["f0"] is None or optional["periodicity"] is None:
            optional["f0"] = optional["periodicity"] = None
        return cls(config, take(tensors["observations"]), take(tensors["lpc_coefficients"]),
                   take(tensors["residual_signals"]), samples, metadata, **optional)


def _coded_sequences(tensors, samples, sample_rate, name):
    """The CodedAudio of each sequence in ``tensors``, each checked to be
    a mono FLAC stream of its sequence's length at ``sample_rate`` with a
    positive scale and 16 or 24 bits (CheckpointError naming the fault)."""
    data, offsets = tensors["training_audio"], np.asarray(tensors["training_audio_offsets"], np.int64)
    if offsets[0] != 0 or offsets[-1] != data.shape[0] or np.any(np.diff(offsets) < 1):
        raise CheckpointError(f"{name}: tensor 'training_audio_offsets' does not split 'training_audio'")
    out = []
    for i, (a, b) in enumerate(zip(offsets[:-1], offsets[1:])):
        scale, bits = float(tensors["training_audio_scale"][i]), int(tensors["training_audio_bits"][i])
        if not scale > 0 or bits not in training_audio.BITS:
            raise CheckpointError(f"{name}: sequence {i}'s training audio has scale {scale:g} and {bits} bits "
                                  f"(a positive scale and 16 or 24 bits are needed)")
        coded = training_audio.CodedAudio(memoryview(data[a:b]), scale, bits, int(samples[i]))  # no copy
        fault = training_audio.check(coded, sample_rate)
        if fault:
            raise CheckpointError(f"{name}: sequence {i}'s training audio {fault}")
        out.append(coded)
    return out
