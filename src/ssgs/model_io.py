"""One mapping between a model and named arrays, for both persistence
formats: safetensors checkpoints (:mod:`ssgs.checkpoint`) and numpy ``.npz``
exports.

Each owner declares its tensors once: the HMM parameters here
(:data:`PARAMETERS`), the corpus in :class:`ssgs.corpus.Corpus`
(``TENSORS``, ``tensor_shapes``), the excitation model in
:class:`ssgs.excitation_model.ExcitationModel` (``TENSORS``) and
:func:`ssgs.excitation_model.tensor_shapes`, what a voice derives from them
in :mod:`ssgs.synthesis.voice`. Arrays are stored, never
behaviour: loading fits nothing.
"""

from __future__ import annotations

import json
import warnings

import numpy as np

from ssgs import checkpoint, reference
from ssgs import excitation_model as _excitation
from ssgs.corpus import Corpus
from ssgs.errors import CheckpointError, ReferenceCheckpointWarning
from ssgs.features import FeatureConfig
from ssgs.hmm import HMMParams
from ssgs.kernels import MIN_F0
from ssgs.synthesis import voice as _voice

__all__ = ["PARAMETERS", "Persistence", "check_config", "check_entries", "check_tensors", "model_arrays",
           "npz_arrays", "read_npz", "restore"]

PARAMETERS = ("transition_matrix", "initial_probabilities", "state_means", "state_covariances")
_EXCITATION_KEYS = ("state_pitch_histogram", "state_pitch_log_f0", "state_periodicity")


def parameter_arrays(params):
    """The HMM parameters as named arrays (float64)."""
    return {"transition_matrix": np.asarray(params.transmat, np.float64),
            "initial_probabilities": np.asarray(params.startprob, np.float64),
            "state_means": np.asarray(params.means, np.float64),
            "state_covariances": np.asarray(params.covars, np.float64)}


def metadata_entries(model):
    """The JSON entries saved beside the arrays: config, training_state, sources."""
    return {"config": json.dumps(model.config(), sort_keys=True),
            "training_state": json.dumps(model.training_state(), sort_keys=True),
            "sources": json.dumps(model.sources, sort_keys=True)}


def _adaptive(model, dtype=None):
    return {f"adaptive__{k}": np.asarray(v, dtype) for k, v in (model.adaptive_statistics or {}).items()}


def model_arrays(model, artifacts=True, adaptive=True, excitation=None):
    """A checkpoint's tensors: parameters, the corpus (with ``artifacts``,
    when the model has one), the excitation tables ``excitation`` (an
    ExcitationModel, or None for none), the observation range and (with
    ``adaptive``) the adaptation statistics."""
    tensors = parameter_arrays(model.params)
    if artifacts and model.corpus is not None:
        tensors.update(model.corpus.tensors())
    if excitation is not None:
        tensors.update(excitation.tensors())
    if model.observation_range is not None:
        tensors["observation_range"] = np.asarray(model.observation_range, np.float64)
    if adaptive:
        tensors.update(_adaptive(model, np.float64))
    return tensors


def _compact(tables, dtype):
    """The excitation tables at an export's precision: float16 ones stay
    float16 and an older model's float32 compact ones float32 (a reload
    keeps them as they were), the rest in ``dtype``."""
    half = {_excitation.ExcitationModel.TENSORS[f] for f in _excitation.ExcitationModel.HALF}
    tables = {k: np.asarray(v) for k, v in tables.items()}
    return {k: v if v.dtype == np.float16 or (k in half and v.dtype == np.float32) else v.astype(dtype)
            for k, v in tables.items()}


def npz_arrays(model, dtype, pack_covariances, artifacts, adaptive, excitation=None):
    """An npz export's arrays: parameters at ``dtype`` (covariances as upper
    triangles with ``pack_covariances``), JSON entries as 0-d strings, the
    excitation tables (:func:`_compact`), the corpus as in a checkpoint."""
    params = parameter_arrays(model.params)
    if pack_covariances:
        iu = np.triu_indices(params["state_means"].shape[1])
        params["state_covariances"] = params["state_covariances"][:, iu[0], iu[1]]
    arrays = {k: v.astype(dtype) for k, v in params.items()}
    arrays.update({k: np.array(v) for k, v in metadata_entries(model).items()})
    arrays["export_format"] = np.array(json.dumps({"packed_covariances": bool(pack_covariances),
                                                   "precision": dtype.name, "version": 1}))
    if excitation is not None:
        arrays.update(_compact(excitation.tensors(), dtype))
    if model.observation_range is not None:
        arrays["observation_range"] = np.asarray(model.observation_range).astype(dtype)
    if artifacts and model.corpus is not None:
        arrays.update(model.corpus.tensors())
    if adaptive:
        arrays.update(_adaptive(model))
    return arrays


def unpack_covariances(packed, n_states, n_features, name):
    """Full [N, D, D] covariances from their upper triangles [N, D(D+1)/2]."""
    N, D = n_states, n_features
    if packed.shape != (N, D * (D + 1) // 2):
        raise CheckpointError(f"{name}: packed covariances have shape {packed.shape}, "
                              f"the configuration needs ({N}, {D * (D + 1) // 2})")
    full = np.zeros((N, D, D))
    iu = np.triu_indices(D)
    full[:, iu[0], iu[1]] = packed
    full[:, iu[1], iu[0]] = packed
    return full


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_config(config, name, what):
    """A saved model's configuration (``what``, for the message) is a JSON
    object with the sizes as positive integers and a sample rate generation
    can use (or none); fills in ``n_features`` for older files."""
    if not isinstance(config, dict):
        raise CheckpointError(f"{name}: {what} is not a JSON object")
    for key in ("n_states", "lpc_order", "frame_size", "hop_size"):
        if key not in config:
            raise CheckpointError(f"{name}: configuration lacks '{key}'")
        if not _integer(config[key]) or config[key] < 1:
            raise CheckpointError(f"{name}: configuration's '{key}' is {config[key]!r:.60}, not a positive integer")
    config.setdefault("n_features", config["lpc_order"] + 2)
    if not _integer(config["n_features"]) or config["n_features"] < 1:
        raise CheckpointError(f"{name}: configuration's 'n_features' is {config['n_features']!r:.60}, "
                              f"not a positive integer")
    rate = config.get("sample_rate")
    if rate is not None and not (_integer(rate) and 2 * MIN_F0 < rate < 2**31):  # 2**31: a C int
        raise CheckpointError(f"{name}: configuration's 'sample_rate' is {rate!r:.60}, "
                              f"not an integer above {2 * MIN_F0:g} Hz (and below 2**31)")


_NUMBER = (int, float)
_KIND_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list", _NUMBER: "a number"}


def _check_fields(item, kinds, what, name):
    """The JSON object ``item`` (``what``, for the message) has the entries
    ``kinds`` names (key -> type) of that type, when they are present."""
    if not isinstance(item, dict):
        raise CheckpointError(f"{name}: {what} is not a JSON object")
    for key, kind in kinds.items():
        value = item.get(key)
        if value is not None and (not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)):
            raise CheckpointError(f"{name}: {what}['{key}'] is {value!r:.60}, not {_KIND_NAMES[kind]}")


def _check_list(items, kinds, what, name):
    if not isinstance(items, list):
        raise CheckpointError(f"{name}: {what} is not a JSON list")
    for i, item in enumerate(items):
        _check_fields(item, kinds, f"{what}[{i}]", name)


def check_entries(training_state, sources, name):
    """A saved model's training state (a JSON object: iteration, converged,
    a history of objects, reseeds) and sources (a list of objects: path,
    n_frames, n_samples) have the types a model takes back."""
    _check_fields(training_state, {"iteration": int, "converged": bool, "history": list, "reseeds": list},
                  "training_state", name)
    if not all(_integer(r) for r in training_state.get("reseeds") or []):
        raise CheckpointError(f"{name}: training_state['reseeds'] is not a list of integers")
    _check_list(training_state.get("history") or [], {"log_likelihood": _NUMBER, "seconds": _NUMBER},
                "training_state['history']", name)
    _check_list(sources, {"path": str, "n_frames": int, "n_samples": int}, "sources", name)


def _check_shapes(tensors, shapes, name):
    for tname, shape in shapes.items():
        if tname not in tensors:
            continue
        got = tensors[tname].shape
        if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got)):
            raise CheckpointError(f"{name}: tensor '{tname}' has shape {got}, but the configuration "
                                  f"needs {tuple('*' if s is None else s for s in shape)}")


def _check_probabilities(stored, tname, name):
    """``stored`` holds probabilities (a vector, or a matrix whose row i is
    state i's): none negative, each row summing to 1 within what rounding
    to the stored float type can move it (float16 exports are renormalised
    by :func:`restore`)."""
    p = np.asarray(stored, np.float64)
    tol = max(1e-6, 2 * float(np.finfo(stored.dtype).eps))
    if p.ndim == 1:
        if (p < 0).any():
            raise CheckpointError(f"{name}: {tname}[{int(np.argmin(p))}] is negative ({p.min():.6g})")
        if abs(p.sum() - 1) > tol:
            raise CheckpointError(f"{name}: {tname} sums to {p.sum():.6g}, not 1")
        return
    negative, off = (p < 0).any(axis=1), np.abs(p.sum(axis=1) - 1) > tol
    if negative.any():
        i = int(np.argmax(negative))
        raise CheckpointError(f"{name}: {tname}[{i}] has a negative probability "
                              f"({p[i].min():.6g}, to state {int(np.argmin(p[i]))})")
    if off.any():
        i = int(np.argmax(off))
        raise CheckpointError(f"{name}: {tname}[{i}] sums to {p[i].sum():.6g}, not 1")


def _check_covariances(covars, name):
    """Every state's covariance is symmetric and positive definite (a
    Cholesky factorisation exists): what its Gaussian's density needs."""
    c = np.asarray(covars, np.float64)
    scale = np.abs(c).max(axis=(1, 2), initial=0.0)
    asymmetric = np.abs(c - c.transpose(0, 2, 1)).max(axis=(1, 2), initial=0.0) > 1e-6 * scale
    if asymmetric.any():
        raise CheckpointError(f"{name}: state_covariances[{int(np.argmax(asymmetric))}] is not symmetric")
    try:
        np.linalg.cholesky(c)
        return
    except np.linalg.LinAlgError:
        pass
    for i, one in enumerate(c):  # which state: the stacked factorisation does not say
        try:
            np.linalg.cholesky(one)
        except np.linalg.LinAlgError:
            raise CheckpointError(f"{name}: state_covariances[{i}] is not positive definite") from None


def _check_floating(tensors, name):
    for tname in PARAMETERS:
        if tensors[tname].dtype.kind != "f":
            raise CheckpointError(f"{name}: tensor '{tname}' is {tensors[tname].dtype}, not floating point")


def _check_parameters(tensors, name):
    """The HMM parameters (finite, shaped as the configuration says) are
    ones a model can generate from: floating point, probabilities, and
    covariances."""
    _check_floating(tensors, name)
    _check_probabilities(tensors["initial_probabilities"], "initial_probabilities", name)
    _check_probabilities(tensors["transition_matrix"], "transition_matrix", name)
    _check_covariances(tensors["state_covariances"], name)


def check_tensors(tensors, config, name):
    """A saved model's tensors (a checkpoint's or an npz export's) are all
    there, shaped as the configuration says, finite and consistent, with
    probabilities that sum to 1 and positive definite covariances
    (CheckpointError naming the file, the tensor and the state). Returns whether a
    corpus is stored."""
    N, D = int(config["n_states"]), int(config["n_features"])
    p, hop = int(config["lpc_order"]), int(config["hop_size"])
    for tname in PARAMETERS:
        if tname not in tensors:
            raise CheckpointError(f"{name}: missing tensor '{tname}'")
    corpus_shapes = Corpus.tensor_shapes(tensors, D, p, hop, name)
    shapes = {"transition_matrix": (N, N), "initial_probabilities": (N,), "state_means": (N, D),
              "state_covariances": (N, D, D), "observation_range": (2, D), **(corpus_shapes or {}),
              **_excitation.tensor_shapes(N, D, hop), **_voice.tensor_shapes(hop)}
    _check_shapes(tensors, shapes, name)
    for tname, arr in tensors.items():
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise CheckpointError(f"{name}: tensor '{tname}' contains NaN or inf")
    _check_parameters(tensors, name)
    _excitation.check_tensors(tensors, name)
    return corpus_shapes is not None


def feature_config(config):
    """The analysis settings a saved configuration describes."""
    return FeatureConfig(config.get("sample_rate") or 16000, int(config["frame_size"]), int(config["hop_size"]),
                         int(config["lpc_order"]), audio_bits=int(config.get("audio_bits", 16)))


def restore(model, tensors, training_state, sources, name, renormalise=False, copy=True):
    """Fill a fresh ``model`` (made from the saved configuration) from
    checked ``tensors``: parameters (``renormalise``: rows of probabilities
    rounded to a smaller float sum to 1 again), training state, sources,
    corpus, excitation tables, observation range, adaptation statistics."""
    start = np.array(tensors["initial_probabilities"], np.float64)
    trans = np.array(tensors["transition_matrix"], np.float64)
    if renormalise:
        start, trans = start / start.sum(), trans / trans.sum(axis=1, keepdims=True)
    model.params = HMMParams(start, trans, np.array(tensors["state_means"], np.float64),
                             np.array(tensors["state_covariances"], np.float64))
    model.restore_training_state(training_state, name)
    model.sources = sources
    if "sequence_offsets" in tensors:
        model.corpus = Corpus.from_tensors(tensors, feature_config(model.config()), name, copy=copy,
                                           n_threads=model.n_threads)
    if all(k in tensors for k in _EXCITATION_KEYS):
        derived = {k: np.array(v) for k, v in tensors.items() if k in _voice.tensor_shapes(1)}
        model.set_excitation_model(_excitation.ExcitationModel.from_tensors(tensors), derived)
    if "observation_range" in tensors:
        model.observation_range = np.array(tensors["observation_range"], np.float64)
    adaptive = {k[len("adaptive__"):]: np.array(v) for k, v in tensors.items() if k.startswith("adaptive__")}
    if adaptive:
        model.adaptive_statistics = adaptive
    return model


def _json_entry(arrays, key, name, default):
    """An npz export's JSON entry ``key`` (``default`` when absent)."""
    if key not in arrays:
        return default
    try:
        return json.loads(str(arrays[key]))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{name}: '{key}' is not valid JSON ({exc})") from None


def read_npz(path):
    """An npz export's arrays (covariances unpacked, checked as a
    checkpoint's), configuration, training state and sources.

    Raises
    ------
    CheckpointError
        Naming the file and the fault.
    """
    name = str(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise CheckpointError(f"{name}: not a readable .npz model ({exc})") from None
    for key in ("config", *PARAMETERS):
        if key not in arrays:
            raise CheckpointError(f"{name}: missing '{key}'")
    config, fmt, state, sources = (_json_entry(arrays, key, name, default) for key, default in
                                   (("config", None), ("export_format", {}), ("training_state", {}),
                                    ("sources", [])))
    check_config(config, name, "'config'")
    check_entries(state, sources, name)
    if not isinstance(fmt, dict):
        raise CheckpointError(f"{name}: 'export_format' is not a JSON object")
    _check_floating(arrays, name)
    covars = arrays["state_covariances"].astype(np.float64)
    if fmt.get("packed_covariances"):
        covars = unpack_covariances(covars, int(config["n_states"]), int(config["n_features"]), name)
    arrays["state_covariances"] = covars
    check_tensors(arrays, config, name)
    return arrays, config, state, sources


class Persistence:
    """The model's save and load methods, mixed into
    :class:`ssgs.SpectralStateGuidedSynthesis`: safetensors checkpoints
    (:mod:`ssgs.checkpoint`) and npz exports, both through the mapping
    above. The class provides ``params``, ``corpus``, ``voice()``,
    ``stored_excitation(with_artifacts)``, ``from_config`` and
    ``_require_model``."""

    def save_checkpoint(self, path, include_training_artifacts=True, include_adaptive_statistics=True):
        """Write a verified safetensors checkpoint (atomically; path may be an
        fsspec URL). Returns the path.

        Parameters
        ----------
        path : str or Path
        include_training_artifacts : bool
            Also store the training corpus (observations, LPC coefficients,
            residual, boundaries, frame tables): what fidelity > 0 and
            resuming without the audio need.
        include_adaptive_statistics : bool
            Also store online-adaptation statistics, when there are any.
        """
        self._require_model()
        with_artifacts = include_training_artifacts and self.corpus is not None
        exc = self.stored_excitation(with_artifacts)
        tensors = model_arrays(self, with_artifacts, include_adaptive_statistics, exc)
        if exc is not None:  # what generation derives from it: a loaded model derives nothing
            tensors.update(self.voice().derived_tensors())
        # format 1 lacks only the coded audio: a file without it is one an older ssgs reads
        version = checkpoint.FORMAT_VERSION if Corpus.is_coded(tensors) else 1
        return checkpoint.write_checkpoint(path, tensors, {**metadata_entries(self), "ssgs_format_version": version})

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
        if reference.is_reference(checkpoint.read_header(path)[0]):
            return cls.convert_reference(path)
        tensors, metadata = checkpoint.read_checkpoint(path, verify=verify)
        config = checkpoint.json_field(metadata, "config", name)
        check_config(config, name, "metadata entry 'config'")
        state = checkpoint.json_field(metadata, "training_state", name, default={})
        sources = checkpoint.json_field(metadata, "sources", name, default=[])
        check_entries(state, sources, name)
        check_tensors(tensors, config, name)
        return restore(cls.from_config(config, name), tensors, state, sources, name)

    @classmethod
    def convert_reference(cls, path, n_iterations=10, seed=0):
        """A model from a checkpoint of the reference implementation
        (:func:`ssgs.reference.convert`), with a warning that says how it
        was made and that such files carry no integrity check. CheckpointError
        naming a missing or malformed tensor."""
        name = str(path)
        tensors, metadata = checkpoint.read_checkpoint(path, verify=False)
        model, how = reference.convert(cls, tensors, metadata, name, n_iterations, seed)
        model.training_history.insert(0, {"iteration": 0, "converted_from_reference": name})
        warnings.warn(f"{name}: a checkpoint of the reference implementation, converted on load: {how}. "
                      "Its contents could not be verified (the format has no checksum); `ssgs convert` writes "
                      "a verified ssgs checkpoint", ReferenceCheckpointWarning, stacklevel=3)
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
            dtype of the parameters and statistics (float64 keeps them exact).
        pack_covariances : bool
            Store each covariance's upper triangle only ([N, D(D+1)/2]).
        include_training_artifacts : bool
            Also store the training corpus.
        include_adaptive_statistics : bool
            Also store online-adaptation statistics, when there are any.
        """
        self._require_model()
        dtype = np.dtype(precision)
        if dtype.kind != "f":
            raise ValueError(f"precision must be a floating-point dtype, got {dtype}")
        exc = self.stored_excitation(False)
        arrays = npz_arrays(self, dtype, pack_covariances, include_training_artifacts,
                                     include_adaptive_statistics, exc)
        (np.savez_compressed if use_compression else np.savez)(path, **arrays)
        return str(path) if not hasattr(path, "write") else path

    @classmethod
    def load_model(cls, path):
        """Load a model written by :meth:`export_model` (parameters back in
        float64; artifacts and adaptive statistics when the file has them)."""
        name = str(path)
        arrays, config, state, sources = read_npz(path)
        model = cls.from_config(config, name)
        return restore(model, arrays, state, sources, name,
                                renormalise=arrays["transition_matrix"].dtype != np.float64, copy=False)
