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

import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import stat
import struct
import tempfile

import numpy as np

from ssgs.errors import CheckpointError, CheckpointNotFoundError, SSGSError
from ssgs.frame_store import release

__all__ = [
    "FORMAT_VERSION",
    "MAX_HEADER_BYTES",
    "REQUIRED_TENSORS",
    "atomic_write",
    "file_size",
    "filesystem",
    "is_remote",
    "json_field",
    "local_path",
    "read_checkpoint",
    "read_header",
    "tensor_nbytes",
    "tensors_sha256",
    "write_checkpoint",
]

FORMAT_NAME = "safetensors"
FORMAT_VERSION = 2  # 2: the training audio coded (ssgs.corpus); a file without it is written as 1 (model_io)
MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit
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
    """C-contiguous, keeping 0-d arrays 0-d (np.ascontiguousarray makes them 1-d);
    a memory map as it is (:func:`_chunks` reads it a chunk at a time)."""
    if _mapped(arr):
        return arr
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
        for chunk in _chunks(arr):
            h.update(chunk)
    return h.hexdigest()


def _buffer(arr):
    """The bytes of a C-contiguous array, without copying them."""
    return memoryview(arr.reshape(-1)).cast("B") if arr.size else b""


def _mapped(arr) -> bool:
    """Whether ``arr`` is a C-contiguous memory map (a training corpus on
    disk: :mod:`ssgs.frame_store`)."""
    return isinstance(arr, np.memmap) and arr.flags.c_contiguous


_CHUNK = 1 << 22


def _chunks(arr):
    """The bytes of a C-contiguous array in order, without copying them;
    of a memory map, a few megabytes at a time, each chunk's pages given
    back once it is used (so writing a checkpoint of hours of audio holds
    a few megabytes)."""
    if not _mapped(arr):
        yield _buffer(arr)
        return
    flat = arr.reshape(-1).view(np.uint8)
    for start in range(0, flat.shape[0], _CHUNK):
        yield memoryview(flat[start:start + _CHUNK])
        release(arr)


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
        for chunk in _chunks(arr):
            f.write(chunk)


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


def file_size(path) -> int:
    """The size in bytes of the file at ``path`` (local path or fsspec URL)."""
    with _opened(path) as (_, size):
        return size


def _open_local(path, name):
    """A local regular file open for reading, and its size. Anything else
    (a device such as /dev/zero, a named pipe) is refused from what the
    path is, before opening it: reading one has no end, or waits for ever."""
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(path)
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"{name}: not a regular file")
    f = open(path, "rb")
    return f, os.fstat(f.fileno()).st_size


def _open_remote(path, name):
    fs, rpath = filesystem(path)
    size = fs.size(rpath)
    if size is None:
        raise CheckpointError(f"{name}: the filesystem does not tell the file's size")
    return fs.open(rpath, "rb"), int(size)


@contextlib.contextmanager
def _opened(path):
    """(file open for reading, its size) for a local path or fsspec URL; the
    faults of opening and reading it as CheckpointErrors naming it."""
    name = str(path)
    try:
        f, size = _open_remote(path, name) if is_remote(path) else _open_local(local_path(path), name)
        with f:
            yield f, size
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"{name}: no such checkpoint") from None
    except IsADirectoryError:
        raise CheckpointNotFoundError(f"{name}: is a folder, not a checkpoint file") from None
    except PermissionError:
        raise CheckpointError(f"{name}: permission denied") from None
    except OSError as exc:
        raise CheckpointError(f"{name}: cannot read ({exc})") from None


def _read_exactly(f, start, length, name) -> bytes:
    """``length`` bytes of ``f`` from ``start``; fewer means the file
    shrank since its size was taken."""
    f.seek(start)
    data = f.read(length)
    if len(data) != length:
        raise CheckpointError(f"{name}: truncated while being read ({len(data)} of {length} bytes "
                              f"from byte {start}): was the file being written?")
    return data


def _cut(text, limit=60) -> str:
    """``text`` cut to ``limit`` characters: a crafted header's names and
    values in a message stay one short line."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _brief(value, limit=60) -> str:
    return _cut(repr(value), limit)


def _header_json(raw: bytes, name: str):
    """A safetensors header's tensor entries and metadata (strings to strings)."""
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, a 5000-digit number, deep nesting
        raise CheckpointError(f"{name}: corrupt header ({_cut(str(exc), 200)})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name}: corrupt header (not a JSON object)")
    metadata = header.pop("__metadata__", None)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{name}: corrupt header (metadata must map strings to strings)")
    return header, metadata


def _nbytes(shape, itemsize, limit) -> int:
    """itemsize * prod(shape), exactly, stopping once past ``limit`` (so a
    crafted shape costs no more than its length)."""
    if 0 in shape:
        return 0
    total = itemsize
    for dim in shape:
        total *= dim
        if total > limit:
            break
    return total


def _entry(tname, info, name):
    """(dtype code, shape, begin, end) of a header entry, checked with exact
    integers: a known dtype, a list of non-negative dimensions, two
    increasing offsets exactly the shape's size apart."""
    where = f"{name}: corrupt header: tensor '{_cut(tname)}'"
    if not isinstance(info, dict):
        raise CheckpointError(f"{where} is described by {_brief(info)}, not an object")
    code, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(code, str) or code not in _DTYPES:
        raise CheckpointError(f"{where} has unknown dtype {_brief(code)}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise CheckpointError(f"{where} has shape {_brief(shape)}, not a list of non-negative integers")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(v) is int for v in offsets)
            or not 0 <= offsets[0] <= offsets[1]):
        raise CheckpointError(f"{where} has data_offsets {_brief(offsets)}, not two increasing byte offsets")
    begin, end = offsets
    if _nbytes(shape, np.dtype(_DTYPES[code]).itemsize, end - begin) != end - begin:
        raise CheckpointError(f"{where} has {end - begin} bytes for shape {_brief(shape)} of {code}")
    return code, tuple(shape), begin, end


def _check_coverage(layout, data_length, name):
    """The tensors' byte ranges follow one another from the start of the
    data to its end: no overlap, no gap, nothing after, nothing missing
    (those two unchecked when ``data_length`` is None)."""
    at = 0
    for tname, (_, _, begin, end) in sorted(layout.items(), key=lambda item: item[1][2:]):
        if begin != at:
            fault = "overlaps the tensor before it" if begin < at else f"follows a gap of {begin - at} bytes"
            raise CheckpointError(f"{name}: corrupt header: tensor '{_cut(tname)}' {fault} "
                                  f"(bytes {begin} to {end} of the data)")
        at = end
    if data_length is None:
        return
    if at > data_length:
        raise CheckpointError(f"{name}: truncated: the tensors end at byte {at} of the data "
                              f"but only {data_length} bytes are present")
    if at < data_length:
        raise CheckpointError(f"{name}: {data_length - at} unexpected bytes after the tensors")


def _read_layout(f, size, name, whole=True):
    """Read and check a safetensors header from ``f`` (``size`` bytes),
    reading no more than the header (at most MAX_HEADER_BYTES): where the
    data starts, {name: (dtype code, shape, begin, end)} and the metadata.
    With ``whole`` the tensors must fill the rest of the file exactly."""
    if size < 8:
        raise CheckpointError(f"{name}: truncated or not a safetensors file ({size} bytes)")
    (n,) = struct.unpack("<Q", _read_exactly(f, 0, 8, name))
    if n > MAX_HEADER_BYTES:
        raise CheckpointError(f"{name}: not a safetensors file (header length {n})")
    if 8 + n > size:
        raise CheckpointError(f"{name}: truncated inside the header (it says {n} bytes, {size - 8} follow)")
    entries, metadata = _header_json(_read_exactly(f, 8, n, name), name)
    layout = {tname: _entry(tname, info, name) for tname, info in entries.items()}
    _check_coverage(layout, size - 8 - n if whole else None, name)
    return 8 + n, layout, metadata


def read_header(path, whole=True):
    """Metadata and tensor descriptions (dtype code, shape) read from the
    header alone, after the same checks of its layout as
    :func:`read_checkpoint`: for ``ssgs info`` and similar. No digest is
    checked (that needs the data). ``whole=False`` reads the header of a
    file cut short or with bytes after its tensors too (``info --force``).

    Returns
    -------
    metadata : dict of str -> str
    tensors : dict of str -> {"dtype": str, "shape": list of int}
    """
    name = str(path)
    with _opened(path) as (f, size):
        _, layout, metadata = _read_layout(f, size, name, whole)
    return metadata, {t: {"dtype": code, "shape": list(shape)} for t, (code, shape, _, _) in layout.items()}


def tensor_nbytes(info) -> int:
    """The bytes of a tensor :func:`read_header` describes."""
    return np.dtype(_DTYPES[info["dtype"]]).itemsize * math.prod(info["shape"])


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


def _check_version(metadata, name):
    version = metadata.get("ssgs_format_version")
    if version is None:
        return
    try:
        v = int(version)
    except ValueError:
        raise CheckpointError(f"{name}: unreadable ssgs_format_version {_brief(version)}") from None
    if v > FORMAT_VERSION:
        raise CheckpointError(f"{name}: written in checkpoint format {v} by a newer ssgs; "
                              f"this ssgs reads up to format {FORMAT_VERSION}: upgrade ssgs")


def read_checkpoint(path, verify=True):
    """Read a checkpoint's tensors and metadata: the header is read and its
    layout checked first (:func:`read_header`), then the data in one read.

    With ``verify`` the file must be an ssgs checkpoint whose digests match;
    the checks of what a model needs are the caller's
    (:func:`ssgs.model_io.check_tensors`).

    Returns
    -------
    tensors : dict of str -> ndarray (read-only views)
    metadata : dict of str -> str

    Raises
    ------
    CheckpointError
        Naming the file and the fault (CheckpointNotFoundError for no file).
    """
    name = str(path)
    with _opened(path) as (f, size):
        start, layout, metadata = _read_layout(f, size, name)
        body = memoryview(_read_exactly(f, start, size - start, name))
    tensors = {tname: np.frombuffer(body[begin:end], dtype=_DTYPES[code]).reshape(shape)
               for tname, (code, shape, begin, end) in layout.items()}
    if verify:
        _verify(tensors, metadata, name)
    _check_version(metadata, name)
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
