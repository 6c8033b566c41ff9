"""WAV to a stream that cannot seek (a pipe): the header written first with
the length known up front, then the samples block by block.

libsndfile writes a WAV header's sizes when it closes the file, seeking
back to its start, which a pipe cannot do. Here the header (RIFF, a
``fmt `` chunk of WAVE_FORMAT_PCM or WAVE_FORMAT_IEEE_FLOAT, a ``data``
chunk) carries the length the caller promises, and the samples are turned
into bytes by libsndfile itself (soundfile's RAW format, little-endian),
so they are the bytes a .wav file of the same subtype holds.
"""

from __future__ import annotations

import io
import struct

import numpy as np

__all__ = ["STDOUT_SUBTYPES", "check_stdout_subtype", "wav_header", "write_wav_stream"]

# subtype -> (bytes per sample, WAVE format tag)
STDOUT_SUBTYPES = {"PCM_16": (2, 1), "PCM_24": (3, 1), "PCM_32": (4, 1), "FLOAT": (4, 3)}


def check_stdout_subtype(subtype):
    """``subtype`` (default PCM_24) upper-cased; ValueError unless a WAV on
    standard output can take it."""
    subtype = (subtype or "PCM_24").upper()
    if subtype not in STDOUT_SUBTYPES:
        raise ValueError(f"cannot write WAV to standard output with subtype {subtype} "
                         f"(it takes {' '.join(STDOUT_SUBTYPES)})")
    return subtype


def wav_header(n_samples, rate, subtype):
    """The 44-byte header of a mono WAV of ``n_samples`` samples."""
    width, tag = STDOUT_SUBTYPES[subtype]
    data = n_samples * width
    if 36 + data >= 2**32:
        raise ValueError(f"{n_samples} samples of {subtype} are more than a WAV file holds (4 GiB)")
    fmt = struct.pack("<HHIIHH", tag, 1, rate, rate * width, width, 8 * width)
    return b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt \
        + b"data" + struct.pack("<I", data)


def _sample_bytes(block, subtype):
    """``block``'s samples as libsndfile writes them in a WAV of ``subtype``."""
    import soundfile as sf

    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", samplerate=8000, channels=1, format="RAW", subtype=subtype,
                      endian="LITTLE") as raw:
        raw.write(block)
    return buf.getvalue()


def write_wav_stream(out, blocks, rate, n_samples, subtype="PCM_24"):
    """Write ``blocks`` (float arrays) to the binary stream ``out`` as a mono
    WAV of exactly ``n_samples`` samples (what the blocks hold beyond is
    dropped, what they lack is filled with silence, so the header is
    always true). Returns the peak sample level written."""
    out.write(wav_header(n_samples, rate, subtype))
    done, peak = 0, 0.0
    for block in blocks:
        block = np.asarray(block)[: n_samples - done]
        if block.shape[0]:
            peak = max(peak, float(np.abs(block).max()))
            out.write(_sample_bytes(block, subtype))
            done += block.shape[0]
    if done < n_samples:
        out.write(bytes((n_samples - done) * STDOUT_SUBTYPES[subtype][0]))
    out.flush()
    return peak
