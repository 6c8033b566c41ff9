"""Audio in: folder scanning, decoding, mono mixdown, resampling.

Decoding uses soundfile (libsndfile: wav, flac, ogg/oga/opus, mp3, aiff and
more); m4a/aac/mp4 go through PyAV when it is installed (``pip install
"ssgs[av]"``). Everything is mixed to mono and resampled with soxr (high
quality) to the model's rate, in blocks, so a long file never exists in memory
at its original rate and channel count.

Problems with a file are :class:`ssgs.AudioError` with a one-line message
naming the file; :func:`scan_folders` reports problems with folders as
skipped entries rather than raising.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ssgs.errors import AudioError

__all__ = [
    "DEFAULT_EXTENSIONS",
    "PYAV_EXTENSIONS",
    "ScanResult",
    "fetch",
    "file_sha256",
    "is_url",
    "load_audio",
    "prepare_signal",
    "scan_folders",
]

DEFAULT_EXTENSIONS = (".mp3", ".wav", ".flac", ".ogg")
PYAV_EXTENSIONS = (".m4a", ".aac", ".mp4", ".m4b", ".wma")
_BLOCK_SECONDS = 30.0


@dataclass
class ScanResult:
    """Files found by :func:`scan_folders` and what was skipped (path, reason)."""

    files: list[str]
    skipped: list[tuple[str, str]]


def _normalise_extensions(extensions):
    out = []
    for ext in extensions:
        ext = ext.strip().lower()
        if not ext:
            continue
        out.append(ext if ext.startswith(".") else "." + ext)
    return tuple(out)


def is_url(path) -> bool:
    """Whether ``path`` is an fsspec URL (``s3://...``; ``file://`` is a local path)."""
    return "://" in str(path) and not str(path).startswith("file://")


def _scan_url(folder, exts, recursive, files, skipped):
    """Audio files under an fsspec URL (s3://bucket/prefix, ...), sorted."""
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(folder)
    except ImportError as exc:
        skipped.append((folder, f"its filesystem is not installed ({exc})"))
        return
    protocol = folder.split("://", 1)[0]
    try:
        if not fs.exists(root) or not fs.isdir(root):
            skipped.append((folder, "folder does not exist"))
            return
        names = fs.find(root) if recursive else [p for p in fs.ls(root, detail=False) if not fs.isdir(p)]
    except Exception as exc:  # the storage's own errors: credentials, network
        skipped.append((folder, f"cannot list: {exc}"))
        return
    found = sorted(f"{protocol}://{p}" for p in names if p.lower().endswith(exts))
    files.extend(f for f in found if f not in files)


def fetch(url, folder):
    """Copy an fsspec URL into ``folder``; returns the local path."""
    import fsspec

    fs, rpath = fsspec.core.url_to_fs(url)
    local = os.path.join(folder, os.path.basename(rpath) or "audio")
    fs.get_file(rpath, local)
    return local


def scan_folders(folders, extensions=DEFAULT_EXTENSIONS, recursive=False) -> ScanResult:
    """Audio files in ``folders``, sorted, each file once.

    Parameters
    ----------
    folders : iterable of str or Path
        Local folders or fsspec URLs (s3://bucket/prefix, gs://..., ...);
        files under a URL are listed as URLs.
    extensions : iterable of str
        File name endings to take (case-insensitive; the dot is optional).
    recursive : bool
        Descend into sub-folders (following symbolic links, each real folder
        visited once, so a link loop ends).

    Returns
    -------
    ScanResult
        ``files`` in a stable order (folder by folder, then by path), a file
        reached twice (two folders, or a symbolic link) listed once;
        ``skipped`` holds (path, reason) for missing or unreadable folders
        and for duplicates.
    """
    exts = _normalise_extensions(extensions)
    files, skipped = [], []
    seen_files: dict[tuple[int, int], str] = {}
    seen_dirs: set[tuple[int, int]] = set()
    for folder in folders:
        if is_url(folder):
            _scan_url(str(folder), exts, recursive, files, skipped)
            continue
        folder = Path(str(folder)[len("file://"):] if str(folder).startswith("file://") else folder).expanduser()
        if not folder.exists():
            skipped.append((str(folder), "folder does not exist"))
            continue
        if not folder.is_dir():
            skipped.append((str(folder), "not a folder"))
            continue
        found = _scan_local(folder, exts, recursive, seen_files, seen_dirs, skipped)
        files.extend(sorted(found))
    return ScanResult(files, skipped)


def _scan_local(folder, exts, recursive, seen_files, seen_dirs, skipped):
    """Audio files in a local folder (and its sub-folders if ``recursive``),
    each real folder and file taken once across calls (``seen_dirs``,
    ``seen_files``)."""
    found = []
    stack = [folder]
    while stack:
        d = stack.pop()
        entries = _read_folder(d, seen_dirs, skipped)
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_dir():
                    if recursive:
                        stack.append(path)
                    continue
            except OSError:
                continue
            if entry.name.lower().endswith(exts) and _first_sight(path, seen_files, skipped):
                found.append(str(path))
    return found


def _read_folder(d, seen_dirs, skipped):
    """The entries of folder ``d`` by name; none if it was seen before or cannot be read."""
    try:
        st = d.stat()
    except OSError as exc:
        skipped.append((str(d), f"cannot read folder: {exc.strerror or exc}"))
        return []
    key = (st.st_dev, st.st_ino)
    if key in seen_dirs:
        return []
    seen_dirs.add(key)
    try:
        return sorted(os.scandir(d), key=lambda e: e.name)
    except OSError as exc:
        skipped.append((str(d), f"cannot read folder: {exc.strerror or exc}"))
        return []


def _first_sight(path, seen_files, skipped):
    """Whether ``path`` is a readable file not met before (under any name)."""
    try:
        fst = path.stat()
    except OSError as exc:
        skipped.append((str(path), f"cannot read file: {exc.strerror or exc}"))
        return False
    fkey = (fst.st_dev, fst.st_ino)
    if fkey in seen_files:
        skipped.append((str(path), f"same file as {seen_files[fkey]}"))
        return False
    seen_files[fkey] = str(path)
    return True


def file_sha256(path, chunk=1 << 20) -> str:
    """SHA-256 of a file's bytes, as hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _mono_blocks_soundfile(path):
    try:
        f = sf.SoundFile(path)
    except sf.LibsndfileError as exc:
        raise AudioError(f"{path}: cannot decode ({_short(exc)})") from None
    except OSError as exc:
        raise AudioError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with f:
        rate, channels = f.samplerate, f.channels
        _check_channels(path, channels)
        block = max(1, int(_BLOCK_SECONDS * rate))

        def blocks():
            try:
                for data in f.blocks(blocksize=block, dtype="float32", always_2d=True):
                    yield data.mean(axis=1, dtype=np.float32) if channels == 2 else data[:, 0]
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise AudioError(f"{path}: cannot decode ({_short(exc)})") from None

        yield rate, blocks()


def _mono_blocks_pyav(path):
    try:
        import av
    except ImportError:
        raise AudioError(f"{path}: {Path(path).suffix} files need PyAV: pip install \"ssgs[av]\"") from None
    try:
        container = av.open(str(path))
    except Exception as exc:  # PyAV raises its own error classes per codec
        raise AudioError(f"{path}: cannot decode ({_short(exc)})") from None
    with container:
        streams = [s for s in container.streams if s.type == "audio"]
        if not streams:
            raise AudioError(f"{path}: no audio stream")
        stream = streams[0]
        channels = stream.codec_context.channels
        _check_channels(path, channels)
        resampler = av.AudioResampler(format="fltp", layout="mono" if channels == 1 else "stereo")

        def blocks():
            try:
                for frame in container.decode(stream):
                    for out in resampler.resample(frame):
                        data = out.to_ndarray().astype(np.float32, copy=False)
                        yield data.mean(axis=0, dtype=np.float32) if data.shape[0] == 2 else data[0]
            except Exception as exc:
                raise AudioError(f"{path}: cannot decode ({_short(exc)})") from None

        yield stream.codec_context.sample_rate, blocks()


def _check_channels(path, channels):
    if channels > 2:
        raise AudioError(f"{path}: {channels} channels (only mono and stereo are supported)")
    if channels < 1:
        raise AudioError(f"{path}: no audio channels")


def _short(exc) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def load_audio(path, sample_rate=16000) -> np.ndarray:
    """Decode a file, mix to mono and resample to ``sample_rate``.

    Parameters
    ----------
    path : str or Path
    sample_rate : int
        Target rate in Hz.

    Returns
    -------
    ndarray of float32, shape (n_samples,)

    Raises
    ------
    AudioError
        Unreadable, undecodable, empty, more than two channels, or holding
        NaN or inf; the message names the file.
    """
    path = str(path)
    if not os.path.exists(path):
        raise AudioError(f"{path}: file does not exist")
    if os.path.getsize(path) == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    opener = _mono_blocks_pyav if path.lower().endswith(PYAV_EXTENSIONS) else _mono_blocks_soundfile
    pieces = []
    for rate, blocks in opener(path):
        if rate <= 0:
            raise AudioError(f"{path}: invalid sample rate {rate}")
        resampler = None if rate == sample_rate else soxr.ResampleStream(
            rate, sample_rate, 1, dtype="float32", quality="HQ")
        for block in blocks:
            if not np.isfinite(block).all():
                raise AudioError(f"{path}: contains NaN or inf samples")
            pieces.append(block.copy() if resampler is None else resampler.resample_chunk(block))
        if resampler is not None:
            pieces.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    signal = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    if signal.size == 0:
        raise AudioError(f"{path}: no audio samples")
    return signal


def prepare_signal(x, name="audio") -> np.ndarray:
    """An in-memory signal as float32 mono: 1-D, or 2-D [n_samples, channels]
    with one or two channels (averaged)."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise AudioError(f"{name}: expected an array of samples, got dtype {arr.dtype}")
    if arr.ndim == 2:
        if arr.shape[1] > 2 and arr.shape[0] <= 2:
            arr = arr.T
        if arr.shape[1] > 2:
            raise AudioError(f"{name}: {arr.shape[1]} channels (only mono and stereo are supported)")
        arr = arr.mean(axis=1)
    elif arr.ndim != 1:
        raise AudioError(f"{name}: expected a 1-D signal or [n_samples, channels], got shape {arr.shape}")
    if arr.dtype.kind in "iu":
        arr = arr / float(np.iinfo(arr.dtype).max)
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise AudioError(f"{name}: contains NaN or inf samples")
    return arr
