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
import time
import weakref

import numpy as np

from ssgs.errors import SSGSError

__all__ = ["FrameStore", "default_cache_dir", "read_rows", "release", "usable_cache_dir"]

_PREFIX = "run-"
_MAKING = ".making-"  # a run folder's name until its lock is held
_LOCK = "lock"
_AUDIO = "training_audio"


def default_cache_dir() -> str:
    """Where training keeps its corpus unless told otherwise:
    ``$SSGS_CACHE_DIR``, else ``$XDG_CACHE_HOME/ssgs``, else ``~/.cache/ssgs``."""
    if os.environ.get("SSGS_CACHE_DIR"):
        return os.environ["SSGS_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ssgs")


def usable_cache_dir() -> str:
    """:func:`default_cache_dir` when it can be made and written in, else a
    folder ``ssgs-cache`` in the system's temporary folder (a home folder
    that is read-only, say, does not stop a run that did not ask for it)."""
    folder = default_cache_dir()
    try:
        os.makedirs(folder, exist_ok=True)
        if os.access(folder, os.W_OK | os.X_OK):
            return folder
    except OSError:
        pass
    return os.path.join(tempfile.gettempdir(), "ssgs-cache")


def release(arr):
    """Give back the pages of ``arr`` if it is a memory map (a store's
    file): what was read from it stays in the page cache, not in this
    process's memory. Anything else is left alone."""
    mm = getattr(arr, "_mmap", None)
    if mm is not None and hasattr(mmap, "MADV_DONTNEED"):
        mm.madvise(mmap.MADV_DONTNEED)


def read_rows(arr, rows, dtype=None):
    """``arr[rows]`` in memory (as ``dtype``, if given): of a memory map,
    copied, then :func:`release` of ``arr`` (reading a long mapped array
    in batches holds one batch); of an array in memory, a view where the
    dtype allows. For reading, not writing."""
    if not isinstance(arr, np.memmap):
        return np.asarray(arr[rows], dtype=dtype)
    out = np.array(arr[rows], dtype=dtype)
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
    """Whether the run folder whose lock file is ``path`` may still be in
    use: its lock is held by a live process, or cannot be tested (no
    advisory locks here: another run's folder is never taken). False
    only when the lock could be taken, or there is no lock file."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no advisory locks (Windows)
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _remove_abandoned(cache_dir):
    """Remove run folders under ``cache_dir`` whose process is gone (a folder
    is named ``run-`` only once its lock is held: :func:`_new_run_folder`)."""
    for name in os.listdir(cache_dir):
        folder = os.path.join(cache_dir, name)
        if name.startswith(_PREFIX) and os.path.isdir(folder):
            if not _locked_by_another(os.path.join(folder, _LOCK)):
                shutil.rmtree(folder, ignore_errors=True)
        elif name.startswith(_MAKING) and os.path.isdir(folder):  # a run killed while making its folder
            try:
                stale = time.time() - os.path.getmtime(folder) > 3600
            except OSError:
                stale = False
            if stale:
                shutil.rmtree(folder, ignore_errors=True)


def _lock(folder):
    """A file descriptor holding the run folder's lock for this process's
    life (where the file system has no advisory locks, none is held: the
    folder is then never taken by another run, and goes when this run ends)."""
    fd = os.open(os.path.join(folder, _LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # pragma: no cover - Windows
        pass
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):  # a folder of its own: cannot be
            os.close(fd)
            raise
    return fd


def _new_run_folder(cache_dir):
    """(folder, lock fd): a new folder made under a name cleaning passes
    by, locked, then renamed ``run-...``, so no other run can take it for
    abandoned between its making and its lock."""
    making = tempfile.mkdtemp(prefix=_MAKING, dir=cache_dir)
    try:
        fd = _lock(making)
    except BaseException:
        shutil.rmtree(making, ignore_errors=True)
        raise
    folder = os.path.join(cache_dir, _PREFIX + os.path.basename(making)[len(_MAKING):])
    try:
        os.rename(making, folder)
    except BaseException:
        _release(making, fd)
        raise
    return folder, fd


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
            self.folder, fd = _new_run_folder(cache_dir)
        except OSError as exc:
            raise _fault(cache_dir, "making a run folder", exc) from None
        self._finalizer = weakref.finalize(self, _release, self.folder, fd)
        self.sequence_samples, self._audio = [], []  # (offset, size, scale, bits) per sequence
        self._files, self._layout, self._frames, self._audio_bytes = {}, {}, 0, 0
        self._maps, self._failed = None, False

    def _check(self, arrays):
        """The arrays of one sequence, C-contiguous, after checking that
        they are the arrays every sequence has (names, dtypes, row shapes)
        with one row count: nothing is written for a sequence that is not."""
        arrays = {name: np.ascontiguousarray(arr) for name, arr in arrays.items()}
        layout = {name: (arr.dtype.str, arr.shape[1:]) for name, arr in arrays.items()}
        rows = {arr.shape[0] for arr in arrays.values()}
        if not arrays or len(rows) != 1:
            raise ValueError(f"a sequence's arrays must be some, with one row count: {sorted(rows)}")
        expected = {k: v for k, v in self._layout.items() if k != _AUDIO}
        if expected and layout != expected:
            raise ValueError(f"a sequence's arrays {layout} differ from the first sequence's {expected}")
        return arrays

    def _write(self, name, arr):
        """Append ``arr`` (C-contiguous) to the file of array ``name``."""
        self._layout.setdefault(name, (arr.dtype.str, arr.shape[1:]))
        if name not in self._files:
            self._files[name] = open(os.path.join(self.folder, name), "wb")
        self._files[name].write(memoryview(arr.reshape(-1)).cast("B") if arr.size else b"")

    def append(self, arrays, n_samples, audio):
        """Add one sequence: ``arrays`` (name -> per-frame array [F, ...];
        the same names, dtypes and row shapes for every sequence) and its
        :class:`ssgs.training_audio.CodedAudio` ``audio``. A write that
        fails (a full disk) leaves the store unusable: a run starts again."""
        if self._maps is not None or self._failed:
            raise ValueError("the store is closed or failed: no sequence can be added")
        arrays = self._check(arrays)
        try:
            for name, arr in arrays.items():
                self._write(name, arr)
            self._write(_AUDIO, np.frombuffer(audio.data, np.uint8))
        except OSError as exc:
            self._failed = True
            raise _fault(os.path.dirname(self.folder), "writing the analysed audio", exc) from None
        self._audio.append((self._audio_bytes, len(audio.data), audio.scale, audio.bits))
        self._audio_bytes += len(audio.data)
        self._frames += next(iter(arrays.values())).shape[0]
        self.sequence_samples.append(int(n_samples))

    def close(self):
        """Finish writing; afterwards :meth:`arrays` and :meth:`audio` read."""
        if self._maps is not None:
            return
        if self._failed or not self.sequence_samples:
            raise ValueError("the store holds no sequence" if not self._failed else "the store failed")
        try:
            for f in self._files.values():
                f.close()
            self._files = {}
            self._maps = {name: self._map(name) for name in self._layout}
        except OSError as exc:
            self._failed = True
            raise _fault(os.path.dirname(self.folder), "reading the analysed audio back", exc) from None

    def _map(self, name):
        dtype, tail = self._layout[name]
        rows = self._audio_bytes if name == _AUDIO else self._frames
        if rows == 0 or 0 in tail:
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
        for f in self._files.values():
            f.close()
        self._files, self._maps = {}, {}
        self._finalizer()
