"""A training run's folder: checking it before anything is decoded, writing
files into it, clearing what an earlier run or a killed write left, keeping
the newest N periodic checkpoints.

The folder is a local path or an fsspec URL (``s3://bucket/run``); local
folders are probed with a temporary file, URLs with a small object, and
listed and cleared through ``os`` or the URL's filesystem (``ls``, ``rm``).
Problems are :class:`ssgs._cli.UsageError` naming ``--checkpoint-dir``, the
option of ``python -m ssgs.train`` that chooses the folder.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import tempfile
import uuid

from ssgs._cli import UsageError

__all__ = ["check_destination", "exists", "join", "keep_last", "remove", "write_bytes"]

# what a run writes into its folder, and what a write killed midway leaves
_RUN_FILE = re.compile(r"checkpoint_.+\.safetensors|model_final\.npz|test_generation\.wav")
_PERIODIC = re.compile(r"checkpoint_epoch_(\d+)\.safetensors")
_KILLED_WRITE = re.compile(r"\.(checkpoint_.+\.safetensors|model_final\.npz|test_generation\.wav)\.\w+\.tmp"
                           r"|\.ssgs-probe-\w+")


def join(folder, name) -> str:
    """The path of file ``name`` in ``folder``: joined with ``/`` for a URL,
    with the operating system's separator for a local path."""
    folder = str(folder)
    return posixpath.join(folder, name) if "://" in folder else os.path.join(folder, name)


def write_bytes(path, data):
    """Write ``data`` to ``path`` whole: locally through an atomic write
    (a temporary file renamed), to a URL by uploading a temporary file."""
    from ssgs import checkpoint

    if checkpoint.is_remote(path):
        fs, rpath = checkpoint.filesystem(path)
        with tempfile.NamedTemporaryFile() as tmp:
            tmp.write(data)
            tmp.flush()
            fs.put_file(tmp.name, rpath)
    else:
        checkpoint.atomic_write(checkpoint.local_path(path), data)


def exists(path) -> bool:
    """Whether the file ``path`` (a path or URL) is there."""
    from ssgs import checkpoint

    if checkpoint.is_remote(path):
        fs, rpath = checkpoint.filesystem(path)
        return fs.exists(rpath)
    return os.path.isfile(checkpoint.local_path(path))


def _names_in(folder):
    """Names of the files directly in ``folder`` (a path or URL); none if it does not exist."""
    from ssgs import checkpoint

    if checkpoint.is_remote(folder):
        fs, rpath = checkpoint.filesystem(folder)
        try:
            return [posixpath.basename(p.rstrip("/")) for p in fs.ls(rpath, detail=False)]
        except FileNotFoundError:
            return []
    path = checkpoint.local_path(folder)
    return os.listdir(path) if os.path.isdir(path) else []


def remove(folder, names):
    """Remove these files of ``folder`` (a path or URL); one already gone is no error."""
    from ssgs import checkpoint

    for name in names:
        path = join(folder, name)
        if checkpoint.is_remote(path):
            fs, rpath = checkpoint.filesystem(path)
            fs.rm_file(rpath)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(checkpoint.local_path(path))


def _listed(names, shown=3):
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _check_local_folder(folder):
    """UsageError unless checkpoints can be written into ``folder``, or the
    folder can be made: a probe file is written and removed in a folder that
    exists; the nearest existing parent of one that does not must be a
    writable folder (nothing is made before the audio proves usable)."""
    from ssgs import checkpoint

    path = os.path.abspath(checkpoint.local_path(folder))
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"--checkpoint-dir {folder} is not a folder" if existing == path else
                         f"cannot make --checkpoint-dir {folder}: {existing} is not a folder")
    if existing != path:
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UsageError(f"cannot make --checkpoint-dir {folder}: {existing} is not writable")
        return
    try:
        fd, probe = tempfile.mkstemp(prefix=".ssgs-probe-", dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise UsageError(f"cannot write to --checkpoint-dir {folder}: {exc.strerror or exc}") from None


def _check_remote_folder(folder):
    """UsageError unless a small probe object can be written to and removed
    from the URL ``folder`` (credentials, the bucket, the network)."""
    from ssgs import checkpoint
    from ssgs._cli import describe

    fs, rpath = checkpoint.filesystem(folder)
    probe = posixpath.join(rpath.rstrip("/"), f".ssgs-probe-{uuid.uuid4().hex}")
    try:
        fs.pipe_file(probe, b"")
        fs.rm_file(probe)
    except Exception as exc:  # the storage's own errors, whatever their type
        raise UsageError(f"cannot write to {folder}: {describe(exc)}") from None


def _resumes_in(resume, folder):
    """Whether ``resume`` is a checkpoint in ``folder``: a run continuing itself."""
    from ssgs import checkpoint

    if not resume:
        return False
    if checkpoint.is_remote(folder) or checkpoint.is_remote(resume):
        return str(resume).rsplit("/", 1)[0].rstrip("/") == str(folder).rstrip("/")
    here = os.path.dirname(os.path.abspath(checkpoint.local_path(resume)))
    return os.path.realpath(here) == os.path.realpath(checkpoint.local_path(folder))


def check_destination(folder, resume=None, overwrite=False) -> list[str]:
    """Check the checkpoint folder before any audio is read, and clear what
    killed writes left in it.

    Parameters
    ----------
    folder : str
        The folder (a path or an fsspec URL); it need not exist yet.
    resume : str, optional
        The checkpoint a resumed run starts from; one in ``folder`` is a run
        continuing itself, so the folder's run files are its own.
    overwrite : bool
        Whether another run's files in ``folder`` may be replaced.

    Returns
    -------
    list of str
        The names of another run's files in ``folder`` (checkpoints, the
        npz, the test generation), sorted, to :func:`remove` once this run's
        first checkpoint is whole; empty when there are none or they are
        the resumed run's own.

    Raises
    ------
    UsageError
        The folder cannot be written (or made), or it holds another run's
        files and ``overwrite`` is false.
    """
    from ssgs import checkpoint

    (_check_remote_folder if checkpoint.is_remote(folder) else _check_local_folder)(folder)
    names = _names_in(folder)
    others = sorted(n for n in names if _RUN_FILE.fullmatch(n))
    replaced = []
    if others and not _resumes_in(resume, folder):
        if not overwrite:
            raise UsageError(f"{folder} already holds another run's files ({_listed(others)}): add --overwrite "
                             "to replace that run, or choose another --checkpoint-dir")
        replaced = others
    remove(folder, [n for n in names if _KILLED_WRITE.fullmatch(n)])
    return replaced


def keep_last(folder, n) -> set[str]:
    """Remove all but the newest ``n`` periodic checkpoints
    (``checkpoint_epoch_<iteration>.safetensors``, newest by iteration) of
    ``folder``; returns the paths removed, as :func:`join` makes them."""
    periodic = sorted((int(m.group(1)), m.group(0)) for m in map(_PERIODIC.fullmatch, _names_in(folder)) if m)
    old = [name for _, name in periodic[:-n]]
    remove(folder, old)
    return {join(folder, name) for name in old}
