"""Audio in: decoding, mono mixdown, resampling.

Decoding uses soundfile (libsndfile: wav, flac, ogg/oga/opus, mp3, aiff and
more); m4a/aac/mp4 go through PyAV when it is installed (``pip install
"ssgs[av]"``). Everything is mixed to mono and resampled with soxr (high
quality) to the model's rate, in blocks, so a long file never exists in memory
at its original rate and channel count.

Problems with a file are :class:`ssgs.AudioError` with a one-line message
naming the file (through :func:`display_path`); a file used with a caveat
(truncated) gives an :class:`ssgs.AudioWarning`. Finding the files to
decode in folders is :mod:`ssgs.scan`'s.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ssgs.errors import AudioError, AudioWarning

__all__ = [
    "PYAV_EXTENSIONS",
    "display_path",
    "describe_skipped",
    "fetch",
    "is_url",
    "load_audio",
    "native_stderr_silenced",
    "prepare_signal",
]

PYAV_EXTENSIONS = (".m4a", ".aac", ".mp4", ".m4b", ".wma")
_BLOCK_SECONDS = 30.0
# a header's frame count may be an estimate (an MP3 without a Xing/Info
# header: from the file's size), off by a fraction of a percent
_CLAIM_TOLERANCE = 0.01
_UNKNOWN_LENGTH = 1 << 62  # libsndfile's frame count when the length is not known
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def describe_skipped(skipped, limit=3) -> str:
    """The first ``limit`` (path, reason) pairs of a skip list as one line."""
    shown = "; ".join(f"{display_path(p)}: {r}" for p, r in skipped[:limit])
    more = f"; and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return shown + more


def display_path(path) -> str:
    r"""``path`` as one printable line, for messages about a file.

    Bytes of the name that are not valid in the file system's encoding
    (which Python keeps in a str as surrogate escapes, PEP 383) show as
    ``\xNN``; control characters as ``\n``, ``\r``, ``\t``, ``\xNN`` or
    ``\uNNNN``; every other character, letters of any script included, as
    it is.

    Parameters
    ----------
    path : str, bytes or os.PathLike

    Returns
    -------
    str

    Examples
    --------
    >>> display_path(b"caf\xe9\n.wav")
    'caf\\xe9\\n.wav'
    >>> display_path("café.wav")
    'café.wav'
    """
    text = os.fsdecode(os.fspath(path))
    if text.isprintable():
        return text
    return "".join(_display_char(c) for c in text)


def _display_char(c):
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, surrogate-escaped
        return f"\\x{code - 0xDC00:02x}"
    if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp"):
        return _ESCAPES.get(c) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
    return c


def is_url(path) -> bool:
    """Whether ``path`` is an fsspec URL (``s3://...``; ``file://`` is a local path)."""
    return "://" in str(path) and not str(path).startswith("file://")


def fetch(url, folder):
    """Copy an fsspec URL into ``folder``; returns the local path."""
    import fsspec

    fs, rpath = fsspec.core.url_to_fs(url)
    local = os.path.join(folder, os.path.basename(rpath) or "audio")
    fs.get_file(rpath, local)
    return local


def _mono_blocks_soundfile(path, name):
    """(sample rate, mono float32 blocks) of a file libsndfile decodes."""
    try:
        f = sf.SoundFile(path if os.name == "nt" else os.fsencode(path))  # bytes: any name the OS allows
    except sf.LibsndfileError as exc:
        raise AudioError(f"{name}: cannot decode ({_short(exc)})") from None
    except OSError as exc:
        raise AudioError(f"{name}: cannot read ({exc.strerror or exc})") from None
    with f:
        _check_channels(name, f.channels)
        yield f.samplerate, _decoded_blocks(f, name, max(1, int(_BLOCK_SECONDS * f.samplerate)))


def _decoded_blocks(f, name, block):
    """Mono float32 blocks of ``block`` frames (the last one shorter) from
    the open SoundFile ``f``, read until the decoder stops: at the frame
    count its header claims, where the data ends, or at a decoding error
    (what decoded before it kept); then :func:`_check_complete`."""
    claimed = f.frames if 0 <= f.frames < _UNKNOWN_LENGTH else None
    buffer = np.empty((max(1, min(block, claimed or block)), f.channels), np.float32)
    decoded, error = 0, None
    while claimed is None or decoded < claimed:
        want = block if claimed is None else min(block, claimed - decoded)
        n, error = _read_into(f, buffer[:want])
        if n:
            data = buffer[:n]
            yield data.mean(axis=1, dtype=np.float32) if f.channels == 2 else data[:, 0].copy()
            decoded += n
        if error is not None or n < want:
            break
    _check_complete(name, decoded, claimed, f.samplerate, error)


def _read_into(f, out):
    """(frames decoded into ``out``, the decoding error that stopped it or None).

    After an error, the frames that did decode are those the decoder's
    position moved by."""
    start = _position(f)
    try:
        return f.read(out=out).shape[0], None
    except (sf.LibsndfileError, RuntimeError) as exc:
        end = _position(f)
        n = 0 if start is None or end is None else min(max(end - start, 0), out.shape[0])
        return n, exc


def _position(f):
    try:
        return f.tell()
    except (sf.LibsndfileError, RuntimeError):
        return None


def _check_complete(name, decoded, claimed, rate, error):
    """Say what decoding ``decoded`` frames of ``claimed`` (None: length not
    known) means: AudioError if nothing decoded, AudioWarning if decoding
    stopped at an error or more than ``_CLAIM_TOLERANCE`` short of the claim."""
    claim = f"the {_duration(claimed, rate)} its header claims" if claimed else "the file"
    if decoded == 0 and (claimed or error is not None):
        cause = "truncated" if error is None else f"cannot decode ({_short(error)})"
        raise AudioError(f"{name}: {cause}: nothing decodable of {claim}")
    short = claimed is not None and decoded < claimed * (1.0 - _CLAIM_TOLERANCE)
    if decoded and (short or error is not None):
        got = _duration(decoded, rate)
        warnings.warn(f"{name}: truncated: {got} decodable of {claim}; using the {got}", AudioWarning, stacklevel=3)


def _duration(frames, rate):
    """'9.7 s', or '1.1 ms' below a tenth of a second."""
    seconds = frames / rate
    return f"{seconds:.1f} s" if seconds >= 0.1 else f"{seconds * 1000:.1f} ms"


def _mono_blocks_pyav(path, name):
    """(sample rate, mono float32 blocks) of a file PyAV decodes."""
    try:
        import av
    except ImportError:
        raise AudioError(f"{name}: {Path(path).suffix} files need PyAV: pip install \"ssgs[av]\"") from None
    try:
        container = av.open(path)
    except Exception as exc:  # PyAV raises its own error classes per codec
        raise AudioError(f"{name}: cannot decode ({_short(exc)})") from None
    with container:
        streams = [s for s in container.streams if s.type == "audio"]
        if not streams:
            raise AudioError(f"{name}: no audio stream")
        stream = streams[0]
        channels = stream.codec_context.channels
        _check_channels(name, channels)
        resampler = av.AudioResampler(format="fltp", layout="mono" if channels == 1 else "stereo")

        def blocks():
            try:
                for frame in container.decode(stream):
                    for out in resampler.resample(frame):
                        data = out.to_ndarray().astype(np.float32, copy=False)
                        yield data.mean(axis=0, dtype=np.float32) if data.shape[0] == 2 else data[0]
            except Exception as exc:
                raise AudioError(f"{name}: cannot decode ({_short(exc)})") from None

        yield stream.codec_context.sample_rate, blocks()


def _check_channels(name, channels):
    if channels > 2:
        raise AudioError(f"{name}: {channels} channels (only mono and stereo are supported)")
    if channels < 1:
        raise AudioError(f"{name}: no audio channels")


def _short(exc) -> str:
    """The decoder's own words: libsndfile's error text without the file's
    name soundfile puts before it, else the last line of the message."""
    text = getattr(exc, "error_string", None) or str(exc)
    lines = text.strip().splitlines()
    return display_path(lines[-1]) if lines else type(exc).__name__


def load_audio(path, sample_rate=16000, *, name=None) -> np.ndarray:
    """Decode a file, mix to mono and resample to ``sample_rate``.

    The file is decoded in blocks until the decoder stops: at the frame
    count its header claims, where the data ends, or at a decoding error.
    Only what decoded is used; nothing is repeated or invented. A file
    that holds less than its header claims (a truncated download, a copy
    cut short) gives its decodable part and an :class:`ssgs.AudioWarning`
    "<file>: truncated: <a> s decodable of the <b> s its header claims;
    using the <a> s" when decoding stopped at an error (what decoded before
    it is kept) or more than 1 % short of the header's frame count (the
    tolerance is for counts that are estimates: an MP3 without a Xing/Info
    header has one from its size). When nothing decodes it is an
    AudioError ("... nothing decodable of the <b> s its header claims").
    Readers that take the length from the data present (WAV, AIFF, Ogg)
    give a shortened file's audio without a warning.

    Parameters
    ----------
    path : str, bytes or Path
        Any name the operating system allows (bytes that are not valid
        UTF-8 included).
    sample_rate : int
        Target rate in Hz.
    name : str, optional
        How messages name the file (default: ``display_path(path)``).

    Returns
    -------
    ndarray of float32, shape (n_samples,)

    Raises
    ------
    AudioError
        Unreadable, undecodable, empty, nothing decodable, more than two
        channels, or holding NaN or inf; the message names the file.

    Warns
    -----
    AudioWarning
        Truncated: only the decodable part is returned.

    Examples
    --------
    >>> signal = load_audio("song.mp3", 16000)  # doctest: +SKIP
    """
    path = os.fsdecode(os.fspath(path))
    name = display_path(path) if name is None else name
    if not os.path.exists(path):
        raise AudioError(f"{name}: file does not exist")
    if os.path.getsize(path) == 0:
        raise AudioError(f"{name}: empty file (0 bytes)")
    opener = _mono_blocks_pyav if path.lower().endswith(PYAV_EXTENSIONS) else _mono_blocks_soundfile
    pieces = []
    for rate, blocks in opener(path, name):
        if rate <= 0:
            raise AudioError(f"{name}: invalid sample rate {rate}")
        resampler = None if rate == sample_rate else soxr.ResampleStream(
            rate, sample_rate, 1, dtype="float32", quality="HQ")
        for block in blocks:
            if not np.isfinite(block).all():
                raise AudioError(f"{name}: contains NaN or inf samples")
            pieces.append(block.copy() if resampler is None else resampler.resample_chunk(block))
        if resampler is not None:
            pieces.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    signal = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    if signal.size == 0:
        raise AudioError(f"{name}: no audio samples")
    return signal


_silenced = {"depth": 0, "saved": None, "stream": None, "previous": None}
_silenced_lock = threading.Lock()


@contextlib.contextmanager
def native_stderr_silenced():
    """Within the block, what native code writes to file descriptor 2 (the
    decoders' chatter: libmpg123's "Xing stream size off by more than
    1%", ...) goes to the null device, while Python's ``sys.stderr`` still
    reaches the original standard error.

    How: fd 2 is pointed at ``os.devnull``, and when ``sys.stderr`` wrote to
    fd 2 it is replaced, for the block, by a stream on a duplicate of the
    original descriptor (so warnings, tqdm bars and ``print(...,
    file=sys.stderr)`` made inside the block are shown; a stream object
    taken before the block that writes to fd 2 is silenced with it). Both
    are restored on the way out, exception or not. Nested or concurrent
    uses (from several threads) share one redirection, undone by the last
    to leave; without a usable fd 2 the block runs unchanged.

    Examples
    --------
    >>> with native_stderr_silenced():
    ...     signal = load_audio("song.mp3")  # doctest: +SKIP
    """
    entered = _silence_enter()
    try:
        yield
    finally:
        if entered:
            _silence_leave()


def _silence_enter():
    """Redirect fd 2 (or count one more user); whether it is redirected."""
    with _silenced_lock:
        if _silenced["depth"]:
            _silenced["depth"] += 1
            return True
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        try:
            saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
        except OSError:
            return False
        os.dup2(devnull, 2)
        os.close(devnull)
        stream = None
        if _writes_to_fd2(sys.stderr):
            stream = io.TextIOWrapper(io.FileIO(os.dup(saved), "w"), encoding=sys.stderr.encoding,
                                      errors=sys.stderr.errors, line_buffering=True, write_through=True)
            _silenced["previous"], sys.stderr = sys.stderr, stream
        _silenced.update(depth=1, saved=saved, stream=stream)
        return True


def _silence_leave():
    with _silenced_lock:
        _silenced["depth"] -= 1
        if _silenced["depth"]:
            return
        stream, saved = _silenced["stream"], _silenced["saved"]
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.flush()
            if sys.stderr is stream:
                sys.stderr = _silenced["previous"]
            stream.close()
        os.dup2(saved, 2)
        os.close(saved)
        _silenced.update(saved=None, stream=None, previous=None)


def _writes_to_fd2(stream):
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


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
