"""Finding the audio in folders: each file, and each content, once.

:func:`scan_folders` lists the files with the requested endings in local
folders or fsspec URLs (``s3://bucket/prefix``), sorted folder by folder; a
file reached under several names, or a copy of another's bytes, is taken
once (copies told apart by :func:`file_sha256`, only among files of the
same size). Problems with folders, and the files left out, are skipped
entries rather than errors; the files are decoded by
:func:`ssgs.audio.load_audio`.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ssgs.audio import PYAV_EXTENSIONS, display_path, is_url

__all__ = ["DEFAULT_EXTENSIONS", "READABLE_EXTENSIONS", "ScanResult", "file_sha256", "scan_folders"]

DEFAULT_EXTENSIONS = (".mp3", ".wav", ".flac", ".ogg", ".oga", ".opus")
# every ending load_audio decodes: libsndfile's audio formats and PyAV's
READABLE_EXTENSIONS = DEFAULT_EXTENSIONS + PYAV_EXTENSIONS + (
    ".aif", ".aiff", ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64")


@dataclass
class ScanResult:
    """What :func:`scan_folders` found.

    Attributes
    ----------
    files : list of str
        The audio files to use.
    skipped : list of (str, str)
        (path, reason) for folders that could not be read and files left out.
    other_endings : dict of str -> int
        Files seen in the scanned folders whose ending is an audio ending
        (:data:`READABLE_EXTENSIONS`) other than the requested ones:
        ending (lower case, with the dot) -> how many.
    """

    files: list[str]
    skipped: list[tuple[str, str]]
    other_endings: dict[str, int] = field(default_factory=dict)


def _normalise_extensions(extensions):
    out = []
    for ext in extensions:
        ext = ext.strip().lower()
        if not ext:
            continue
        out.append(ext if ext.startswith(".") else "." + ext)
    return tuple(out)


def _scan_url(folder, exts, recursive, files, skipped, other):
    """Audio files under an fsspec URL (s3://bucket/prefix, ...), sorted;
    the other audio endings met counted in ``other``."""
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
    for p in names:
        if not p.lower().endswith(exts):
            _count_ending(p, other)
    files.extend(f for f in found if f not in files)


def scan_folders(folders, extensions=DEFAULT_EXTENSIONS, recursive=False) -> ScanResult:
    """Audio files in ``folders``, sorted, each file and each content once.

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
        ``files`` in a stable order (folder by folder, then by path).
        A local file reached under several names (symbolic or hard links,
        two folders) is listed once, under its first name that is not a
        symbolic link (else its first name); local files with the same
        bytes are listed once, the first of them kept (only files whose
        sizes collide are hashed; empty files are never copies). ``skipped``
        holds (path, reason) for missing or unreadable folders and for the
        files left out ("same file as ...", "same content as ...").
        ``other_endings`` counts the audio files seen with other endings.
    """
    exts = _normalise_extensions(extensions)
    listed, skipped, other = [], [], Counter()
    seen_dirs: set[tuple[int, int]] = set()
    for folder in folders:
        if is_url(folder):
            _scan_url(str(folder), exts, recursive, listed, skipped, other)
            continue
        folder = Path(str(folder)[len("file://"):] if str(folder).startswith("file://") else folder).expanduser()
        if not folder.exists():
            skipped.append((str(folder), "folder does not exist"))
            continue
        if not folder.is_dir():
            skipped.append((str(folder), "not a folder"))
            continue
        listed.extend(sorted(_scan_local(folder, exts, recursive, seen_dirs, skipped, other)))
    files = _each_content_once(_each_file_once(listed, skipped), skipped)
    return ScanResult(files, skipped, dict(sorted(other.items())))


def _count_ending(name, other):
    ending = os.path.splitext(name)[1].lower()
    if ending in READABLE_EXTENSIONS:
        other[ending] += 1


def _scan_local(folder, exts, recursive, seen_dirs, skipped, other):
    """Names of the audio files in a local folder (and its sub-folders if
    ``recursive``), each real folder taken once across calls (``seen_dirs``);
    the other audio endings met counted in ``other``."""
    found = []
    stack = [folder]
    while stack:
        d = stack.pop()
        for entry in _read_folder(d, seen_dirs, skipped):
            path = Path(entry.path)
            try:
                if entry.is_dir():
                    if recursive:
                        stack.append(path)
                    continue
            except OSError:
                continue
            if entry.name.lower().endswith(exts):
                found.append(str(path))
            else:
                _count_ending(entry.name, other)
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


def _each_file_once(listed, skipped):
    """[(path, size)] of ``listed`` with each local file once (size None for
    a URL): of the names a file has there, the first that is not a
    symbolic link is kept (else the first); the others, and files that
    cannot be read, go to ``skipped``."""
    info, owner = {}, {}
    for path in listed:
        if is_url(path):
            continue
        try:
            st = os.stat(path)
        except OSError as exc:
            skipped.append((path, f"cannot read file: {exc.strerror or exc}"))
            continue
        key = (st.st_dev, st.st_ino)
        info[path] = (key, st.st_size, os.path.islink(path))
        if key not in owner or (info[owner[key]][2] and not info[path][2]):
            owner[key] = path
    kept = []
    for path in listed:
        if is_url(path):
            kept.append((path, None))
        elif path in info:
            first = owner[info[path][0]]
            if first == path:
                kept.append((path, info[path][1]))
            else:
                skipped.append((path, f"same file as {display_path(first)}"))
    return kept


def _each_content_once(kept, skipped):
    """The paths of ``kept`` ([(path, size)]) with each content once: files
    of a size no other file has are unique; the others are told apart by
    SHA-256, the first of equal ones kept, the rest going to ``skipped``."""
    sizes = Counter(size for _, size in kept if size)
    first_of, files = {}, []
    for path, size in kept:
        if size and sizes[size] > 1:
            try:
                digest = (size, file_sha256(path))
            except OSError:
                digest = None  # decoding will say what is wrong with it
            if digest in first_of:
                skipped.append((path, f"same content as {display_path(first_of[digest])}"))
                continue
            if digest is not None:
                first_of[digest] = path
        files.append(path)
    return files


def file_sha256(path, chunk=1 << 20) -> str:
    """SHA-256 of a file's bytes, as hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
