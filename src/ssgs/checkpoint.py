"""Checkpoints: safetensors files with integrity checks, written atomically,
on local disk or any fsspec URL (s3://, gs://, memory://, file://).

File layout: one safetensors file. Model parameters are float64 tensors;
training artifacts (present when saved with ``include_training_artifacts``)
are stored compactly. Metadata (strings, as safetensors requires):

``format``                "safetensors" (what the reference implementation writes)
``ssgs_format_version``   integer as text; this ssgs reads up to FORMAT_VERSION
``ssgs_version``          the version that wrote the file
``config``                JSON: the model configuration
``training_state``        JSON: iteration, history, RNG state, converged
``sources``               JSON: one entry per training sequence (path, size, sha256, frames, samples)
``created``               UTC time, ISO 8601 (SOURCE_DATE_EPOCH overrides, for reproducible files)
``tensors_sha256``        SHA-256 over every tensor's name, dtype, shape and bytes, sorted by name
``metadata_sha256``       SHA-256 over every other metadata entry, sorted by key

safetensors itself has no checksum: the two digests make a flipped byte
anywhere in the file (header or data) a :class:`ssgs.CheckpointError`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import struct
import tempfile

import numpy as np

from ssgs.errors import CheckpointError, CheckpointNotFoundError, SSGSError

__all__ = [
    "FORMAT_VERSION",
    "REQUIRED_TENSORS",
    "atomic_write",
    "filesystem",
    "is_remote",
    "local_path",
    "read_checkpoint",
    "read_header",
    "tensors_sha256",
    "write_checkpoint",
]

FORMAT_NAME = "safetensors"
FORMAT_VERSION = 1
REQUIRED_TENSORS = ("transition_matrix", "initial_probabilities", "state_means", "state_covariances")
_DIGEST_KEYS = ("tensors_sha256", "metadata_sha256")
_UMASK = os.umask(0)
os.umask(_UMASK)
_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8, "BOOL": np.bool_,
}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}


def _contiguous(arr):
    """C-contiguous, keeping 0-d arrays 0-d (np.ascontiguousarray makes them 1-d)."""
    arr = np.asarray(arr)
    return np.ascontiguousarray(arr).reshape(arr.shape)


def tensors_sha256(tensors) -> str:
    """SHA-256 over each tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        arr = _contiguous(tensors[name])
        h.update(name.encode())
        h.update(b"\0" + arr.dtype.str.encode() + b"\0")
        h.update(json.dumps(list(arr.shape)).encode() + b"\0")
        h.update(_buffer(arr))
    return h.hexdigest()


def _buffer(arr):
    """The bytes of a C-contiguous array, without copying them."""
    return memoryview(arr.reshape(-1)).cast("B") if arr.size else b""


def _safetensors_header(tensors, metadata) -> tuple[bytes, list]:
    """The safetensors header for ``tensors`` (laid out by dtype size, then
    name, as the reference writer does) padded with spaces to 8 bytes, and
    the tensors in file order."""
    order = sorted(tensors, key=lambda n: (-tensors[n].dtype.itemsize, n))
    header, offset = {}, 0
    for name in order:
        arr = tensors[name]
        if arr.dtype not in _CODES:
            raise TypeError(f"tensor '{name}': dtype {arr.dtype} cannot be stored in safetensors")
        header[name] = {"dtype": _CODES[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, [tensors[n] for n in order]


def _write_stream(f, head, arrays):
    f.write(head)
    for arr in arrays:
        f.write(_buffer(arr))


def _metadata_sha256(metadata) -> str:
    h = hashlib.sha256()
    for key in sorted(metadata):
        if key in _DIGEST_KEYS:
            continue
        h.update(key.encode() + b"\0" + metadata[key].encode() + b"\0")
    return h.hexdigest()


def _created() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (_dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc) if epoch and epoch.isdigit()
            else _dt.datetime.now(_dt.timezone.utc))
    return when.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def is_remote(path) -> bool:
    """Whether ``path`` is a URL for a filesystem other than the local one."""
    path = str(path)
    return "://" in path and not path.startswith("file://")


def filesystem(path):
    """(fsspec filesystem, path within it) for a URL; SSGSError naming the
    protocol when its package is not installed."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(str(path))
    except ImportError as exc:
        protocol = str(path).split("://", 1)[0]
        extra = {"s3": "s3", "gs": "gcs", "gcs": "gcs"}.get(protocol)
        hint = f': pip install "ssgs[{extra}]"' if extra else ""
        raise SSGSError(f"{path}: the {protocol}:// filesystem is not installed ({exc}){hint}") from None
    except ValueError as exc:
        raise SSGSError(f"{path}: not a path or URL fsspec understands ({exc})") from None


def local_path(path) -> str:
    """A local path, ``file://`` stripped."""
    path = str(path)
    return path[len("file://"):] if path.startswith("file://") else path


def atomic_write(path, data=None, writer=None):
    """Write ``data`` (or whatever ``writer(file)`` writes) to ``path`` so that
    a crash at any moment leaves either the old file or the new one whole:
    temporary file in the same folder, fsync, rename over, fsync the folder."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; keep what a plain open would give
        with os.fdopen(fd, "wb") as f:
            if writer is not None:
                writer(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_checkpoint(path, tensors: dict, metadata: dict) -> str:
    """Serialise and write a checkpoint; returns the path written.

    Parameters
    ----------
    path : str or Path
        Local path or fsspec URL.
    tensors : dict of str -> ndarray
    metadata : dict of str -> str
        Entries besides the ones this function fills in (format, version,
        created, digests).
    """
    from ssgs._version import __version__

    tensors = {name: _contiguous(arr) for name, arr in tensors.items()}
    meta = {key: str(value) for key, value in metadata.items()}
    meta.setdefault("format", FORMAT_NAME)
    meta.setdefault("ssgs_format_version", str(FORMAT_VERSION))
    meta.setdefault("ssgs_version", __version__)
    meta.setdefault("created", _created())
    meta["tensors_sha256"] = tensors_sha256(tensors)
    meta["metadata_sha256"] = _metadata_sha256(meta)
    head, arrays = _safetensors_header(tensors, meta)
    # The tensors go from memory to the file as they are: no serialised copy
    # of a checkpoint that may hold hundreds of megabytes of artifacts.
    if not is_remote(path):
        atomic_write(local_path(path), writer=lambda f: _write_stream(f, head, arrays))
        return str(path)
    # Remote: write locally, check the file, then upload it in one put (object
    # stores replace whole objects, so readers never see half a file).
    fs, rpath = filesystem(path)
    with tempfile.TemporaryDirectory() as tmpdir:
        local = os.path.join(tmpdir, "checkpoint.safetensors")
        with open(local, "wb") as f:
            _write_stream(f, head, arrays)
        read_checkpoint(local, verify=True)
        parent = rpath.rsplit("/", 1)[0] if "/" in rpath else ""
        if parent:
            try:
                fs.makedirs(parent, exist_ok=True)
            except Exception:  # object stores have no real folders
                pass
        fs.put_file(local, rpath)
    return str(path)


def _read_bytes(path, limit=None) -> bytes:
    try:
        if is_remote(path):
            fs, rpath = filesystem(path)
            if limit is None:
                return fs.cat_file(rpath)
            with fs.open(rpath, "rb") as f:
                return f.read(limit)
        with open(local_path(path), "rb") as f:
            return f.read() if limit is None else f.read(limit)
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"{path}: no such checkpoint") from None
    except IsADirectoryError:
        raise CheckpointNotFoundError(f"{path}: is a folder, not a checkpoint file") from None
    except PermissionError:
        raise CheckpointError(f"{path}: permission denied") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc})") from None


def _parse_header(data: bytes, name: str, total_size: int | None = None):
    if len(data) < 8:
        raise CheckpointError(f"{name}: truncated or not a safetensors file ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > 100_000_000:
        raise CheckpointError(f"{name}: not a safetensors file (header length {n})")
    if len(data) < 8 + n:
        raise CheckpointError(f"{name}: truncated inside the header")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{name}: corrupt header ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name}: corrupt header (not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{name}: corrupt header (metadata must map strings to strings)")
    return n, header, metadata


def read_header(path):
    """Metadata and tensor descriptions (dtype, shape) without reading the
    tensor data: for ``ssgs info`` and similar. No integrity check."""
    name = str(path)
    head = _read_bytes(path, limit=8)
    if len(head) < 8:
        raise CheckpointError(f"{name}: truncated or not a safetensors file ({len(head)} bytes)")
    (n,) = struct.unpack("<Q", head)
    if n > 100_000_000:
        raise CheckpointError(f"{name}: not a safetensors file (header length {n})")
    data = _read_bytes(path, limit=8 + n)
    _, header, metadata = _parse_header(data, name)
    return metadata, {k: {"dtype": v.get("dtype"), "shape": v.get("shape")} for k, v in header.items()}


def _parse(data: bytes, name: str, verify: bool):
    n, header, metadata = _parse_header(data, name)
    body = memoryview(data)[8 + n :]
    tensors = {}
    end_max = 0
    for tname, info in header.items():
        try:
            dtype = np.dtype(_DTYPES[info["dtype"]])
            shape = tuple(int(s) for s in info["shape"])
            begin, end = (int(v) for v in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{name}: corrupt header entry for tensor '{tname}'") from None
        if end > len(body):
            raise CheckpointError(f"{name}: truncated: tensor '{tname}' ends at byte {end} of the data "
                                  f"but only {len(body)} bytes are present")
        count = int(np.prod(shape, dtype=np.int64))
        if begin < 0 or end - begin != count * dtype.itemsize:
            raise CheckpointError(f"{name}: corrupt header: tensor '{tname}' has {end - begin} bytes "
                                  f"for shape {shape} of {dtype}")
        tensors[tname] = np.frombuffer(body[begin:end], dtype=dtype).reshape(shape)
        end_max = max(end_max, end)
    if end_max != len(body):
        raise CheckpointError(f"{name}: {len(body) - end_max} unexpected bytes after the tensors")
    if verify:
        _verify(tensors, metadata, name)
    return tensors, metadata


def _verify(tensors, metadata, name):
    if metadata.get("format") != FORMAT_NAME or "ssgs_format_version" not in metadata:
        raise CheckpointError(f"{name}: not an ssgs checkpoint (no ssgs_format_version in its metadata)")
    for key in _DIGEST_KEYS:
        if key not in metadata:
            raise CheckpointError(f"{name}: no {key} in the metadata: cannot verify integrity")
    if _metadata_sha256(metadata) != metadata["metadata_sha256"]:
        raise CheckpointError(f"{name}: metadata does not match its SHA-256 (the file is corrupt)")
    if tensors_sha256(tensors) != metadata["tensors_sha256"]:
        raise CheckpointError(f"{name}: tensor data does not match its SHA-256 (the file is corrupt)")


def read_checkpoint(path, verify=True):
    """Read a checkpoint's tensors and metadata.

    With ``verify`` the file must be an ssgs checkpoint whose digests match;
    the checks of what a model needs are the caller's
    (:func:`ssgs.model_io.check_tensors`).

    Returns
    -------
    tensors : dict of str -> ndarray (read-only views)
    metadata : dict of str -> str
    """
    name = str(path)
    data = _read_bytes(path)
    tensors, metadata = _parse(data, name, verify)
    version = metadata.get("ssgs_format_version")
    if version is not None:
        try:
            v = int(version)
        except ValueError:
            raise CheckpointError(f"{name}: unreadable ssgs_format_version {version!r}") from None
        if v > FORMAT_VERSION:
            raise CheckpointError(f"{name}: written in checkpoint format {v} by a newer ssgs; "
                                  f"this ssgs reads up to format {FORMAT_VERSION}: upgrade ssgs")
    return tensors, metadata


def json_field(metadata, key, name, default=None):
    """A JSON metadata entry, or a CheckpointError naming it."""
    if key not in metadata:
        if default is not None:
            return default
        raise CheckpointError(f"{name}: metadata entry '{key}' is missing")
    try:
        return json.loads(metadata[key])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{name}: metadata entry '{key}' is not valid JSON ({exc})") from None
