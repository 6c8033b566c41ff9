"""The training corpus on disk: each analysed sequence's per-frame arrays
and coded audio appended to files in a folder of its own, read back as
memory maps, so training holds in memory only what it computes with.

A store is one run's: a folder ``run-<random>`` under the cache folder,
locked while its process lives and removed when the store is closed or
garbage-collected. A folder left by a process that died (SIGKILL, power
loss) is unlocked; the next store made under the same cache folder
removes it. docs/training.md says why the corpus goes to disk.
"""

from __future__ import annotations

import errno
import mmap
import os
import shutil
import tempfile
import weakref

import numpy as np

from ssgs.errors import SSGSError

__all__ = ["FrameStore", "default_cache_dir", "read_rows", "release"]

_PREFIX = "run-"
_LOCK = "lock"
_AUDIO = "training_audio"


def default_cache_dir() -> str:
    """Where training keeps its corpus unless told otherwise:
    ``$SSGS_CACHE_DIR``, else ``$XDG_CACHE_HOME/ssgs``, else ``~/.cache/ssgs``."""
    if os.environ.get("SSGS_CACHE_DIR"):
        return os.environ["SSGS_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ssgs")


def release(arr):
    """Give back the pages of ``arr`` if it is a memory map (a store's
    file): what was read from it stays in the page cache, not in this
    process's memory. Anything else is left alone."""
    mm = getattr(arr, "_mmap", None)
    if mm is not None and hasattr(mmap, "MADV_DONTNEED"):
        mm.madvise(mmap.MADV_DONTNEED)


def read_rows(arr, rows):
    """``arr[rows]`` copied into memory, then :func:`release` of ``arr``:
    reading a long memory-mapped array in batches holds one batch."""
    out = np.array(arr[rows])
    release(arr)
    return out


def _fault(folder, doing, exc) -> SSGSError:
    """A one-line error about the cache folder ``folder``."""
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return SSGSError(f"cache folder {folder}: the disk is full ({doing}); free some space or choose another "
                         "folder with --cache-dir")
    if isinstance(exc, PermissionError) or getattr(exc, "errno", None) in (errno.EACCES, errno.EROFS, errno.EPERM):
        return SSGSError(f"cache folder {folder}: not writable ({exc.strerror or exc}); choose another with "
                         "--cache-dir")
    return SSGSError(f"cache folder {folder}: cannot be used ({doing}: {exc})")


def _locked_by_another(path) -> bool:
    """Whether another live process holds the lock file ``path``."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no advisory locks: never take another run's folder
        return True
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _remove_abandoned(cache_dir):
    """Remove run folders under ``cache_dir`` whose process is gone."""
    for name in os.listdir(cache_dir):
        folder = os.path.join(cache_dir, name)
        if name.startswith(_PREFIX) and os.path.isdir(folder):
            if not _locked_by_another(os.path.join(folder, _LOCK)):
                shutil.rmtree(folder, ignore_errors=True)


def _lock(folder):
    """A file descriptor holding the run folder's lock for this process's life."""
    fd = os.open(os.path.join(folder, _LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # pragma: no cover
        pass
    return fd


def _release(folder, fd):
    try:
        os.close(fd)
    except OSError:
        pass
    shutil.rmtree(folder, ignore_errors=True)


class FrameStore:
    """A corpus's arrays in a run folder, appended a sequence at a time.

    Attributes
    ----------
    folder : str
    sequence_samples : list of int
    """

    def __init__(self, cache_dir=None):
        cache_dir = os.path.abspath(os.path.expanduser(str(cache_dir or default_cache_dir())))
        try:
            os.makedirs(cache_dir, exist_ok=True)
            _remove_abandoned(cache_dir)
            self.folder = tempfile.mkdtemp(prefix=_PREFIX, dir=cache_dir)
            fd = _lock(self.folder)
        except OSError as exc:
            raise _fault(cache_dir, "making a run folder", exc) from None
        self._finalizer = weakref.finalize(self, _release, self.folder, fd)
        self.sequence_samples, self._audio = [], []  # (offset, size, scale, bits) per sequence
        self._files, self._layout, self._frames, self._audio_bytes = {}, {}, 0, 0
        self._maps = None

    def _write(self, name, arr):
        """Append ``arr`` to the file of array ``name`` (its dtype and row
        shape fixed by the first sequence)."""
        arr = np.ascontiguousarray(arr)
        layout = (arr.dtype.str, arr.shape[1:])
        if self._layout.setdefault(name, layout) != layout:
            raise ValueError(f"array {name}: {layout} after {self._layout[name]}")
        if name not in self._files:
            self._files[name] = open(os.path.join(self.folder, name), "wb")
        self._files[name].write(memoryview(arr.reshape(-1)).cast("B") if arr.size else b"")

    def append(self, arrays, n_samples, audio):
        """Add one sequence: ``arrays`` (name -> per-frame array [F, ...];
        the same names, dtypes and row shapes for every sequence) and its
        :class:`ssgs.training_audio.CodedAudio` ``audio``."""
        if self._maps is not None:
            raise ValueError("the store is closed: no sequence can be added")
        try:
            for name, arr in arrays.items():
                self._write(name, arr)
            self._write(_AUDIO, np.frombuffer(audio.data, np.uint8))
        except OSError as exc:
            raise _fault(os.path.dirname(self.folder), "writing the analysed audio", exc) from None
        self._audio.append((self._audio_bytes, len(audio.data), audio.scale, audio.bits))
        self._audio_bytes += len(audio.data)
        self._frames += next(iter(arrays.values())).shape[0]
        self.sequence_samples.append(int(n_samples))

    def close(self):
        """Finish writing; afterwards :meth:`arrays` and :meth:`audio` read."""
        if self._maps is not None:
            return
        try:
            for f in self._files.values():
                f.close()
        except OSError as exc:
            raise _fault(os.path.dirname(self.folder), "writing the analysed audio", exc) from None
        self._files = {}
        self._maps = {name: self._map(name) for name in self._layout}

    def _map(self, name):
        dtype, tail = self._layout[name]
        rows = self._audio_bytes if name == _AUDIO else self._frames
        if rows == 0:
            return np.zeros((0,) + tail, dtype)
        return np.memmap(os.path.join(self.folder, name), dtype=dtype, mode="r", shape=(rows,) + tail)

    def arrays(self) -> dict:
        """Every per-frame array, read-only memory maps [T, ...]."""
        self.close()
        return {name: arr for name, arr in self._maps.items() if name != _AUDIO}

    def audio(self) -> list:
        """Each sequence's CodedAudio, its ``data`` a view of the file."""
        from ssgs.training_audio import CodedAudio

        self.close()
        data = self._maps.get(_AUDIO, np.zeros(0, np.uint8))
        return [CodedAudio(memoryview(data[a:a + n]), scale, bits, samples)
                for (a, n, scale, bits), samples in zip(self._audio, self.sequence_samples)]

    def audio_tensor(self):
        """Every sequence's coded audio end to end (uint8 [bytes]), read from the file."""
        self.close()
        return self._maps.get(_AUDIO, np.zeros(0, np.uint8))

    def release(self):
        """Give back the pages of every array read so far (:func:`release`)."""
        for arr in (self._maps or {}).values():
            release(arr)

    def remove(self):
        """Delete the run folder now (it goes at garbage collection anyway)."""
        self._maps = {}
        self._finalizer()
