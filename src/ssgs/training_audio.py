"""The training audio as ssgs keeps and stores it: each sequence's samples
as integers at 16 or 24 bits after a gain that uses the full range, coded
losslessly as FLAC.

The coded audio is the training audio: analysis reads its decoded samples,
so a corpus rebuilt from the codes (:meth:`ssgs.corpus.Corpus.from_tensors`)
is the one training saw, bit for bit, and fidelity 1 replays it exactly.
docs/checkpoints.md says why it is coded this way.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf

__all__ = ["BITS", "MAX_QUIET_SHARE", "MIN_SNR_DB", "CodedAudio", "check", "encode", "quantisation_snr",
           "quiet_share"]

BITS = (16, 24)
MIN_SNR_DB = 80.0  # a 16-bit coding under this (a crest factor over ~21 dB) is stored at 24 bits
MAX_QUIET_SHARE = 0.05  # so is one that leaves more of the sounding blocks than this near its floor
QUIET_STEPS = 4.0  # "near its floor": a block's RMS under this many steps (its own SNR under 23 dB)
_BLOCK = 256
_SUBTYPE = {16: "PCM_16", 24: "PCM_24"}


@dataclass(frozen=True)
class CodedAudio:
    """One sequence's samples: ``code * scale``, the codes FLAC in ``data``.

    Attributes
    ----------
    data : bytes
        A FLAC stream of ``n_samples`` mono integer samples at ``bits`` bits.
    scale : float
        The gain back to the signal's level (its peak over the largest code).
    bits : int
        16 or 24.
    n_samples : int
    """

    data: bytes
    scale: float
    bits: int
    n_samples: int

    def decode(self, start=0, stop=None) -> np.ndarray:
        """Samples ``start:stop`` as float32 (``code * scale``, rounded once)."""
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        if stop <= start:
            return np.zeros(0, np.float32)
        with sf.SoundFile(io.BytesIO(self.data)) as f:
            if f.frames != self.n_samples:
                raise ValueError(f"the coded audio holds {f.frames} samples, not {self.n_samples}")
            if start:
                f.seek(start)
            codes = f.read(stop - start, dtype="int32")
        return _dequantise(codes >> 8 if self.bits == 24 else codes >> 16, self.scale)


def _dequantise(codes, scale):
    return (codes.astype(np.float64) * scale).astype(np.float32)


def _on_grid(x, bits):
    """(codes, scale) when ``x`` already holds ``bits``-bit samples (a
    16-bit file read as floats, say), else None."""
    full = float(2 ** (bits - 1))
    y = np.asarray(x, np.float64) * full
    if y.size == 0 or y.max() > full - 1 or y.min() < -full or not np.array_equal(y, np.rint(y)):
        return None
    return y.astype(np.int32), 1.0 / full


def _quantise(x, bits):
    """(codes int32, scale, exact): ``x`` itself when it is on the
    ``bits``-bit grid (exact), else rounded after the gain that puts its
    peak at the largest code."""
    grid = _on_grid(x, bits)
    if grid is not None:
        return (*grid, True)
    top = 2 ** (bits - 1) - 1
    scale = float(np.max(np.abs(x), initial=0.0)) / top or 1.0
    codes = np.clip(np.rint(np.asarray(x, np.float64) / scale), -top, top).astype(np.int32)
    return codes, scale, False


def _snr(x, codes, scale):
    x = np.asarray(x, np.float64)
    noise = np.sum((x - _dequantise(codes, scale).astype(np.float64)) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(x * x) / noise))


def _quiet(x, scale):
    n = len(x) // _BLOCK * _BLOCK
    rms = np.sqrt(np.mean(np.square(np.asarray(x[:n], np.float64)).reshape(-1, _BLOCK), axis=1))
    sounding = rms > 0
    return float(np.mean(rms[sounding] < QUIET_STEPS * scale)) if sounding.any() else 0.0


def quantisation_snr(x, bits) -> float:
    """dB of ``x`` over its error once coded at ``bits`` bits (inf: none)."""
    codes, scale, _ = _quantise(x, bits)
    return _snr(x, codes, scale)


def quiet_share(x, bits) -> float:
    """The share of ``x``'s sounding 256-sample blocks whose RMS is under
    QUIET_STEPS steps of its ``bits``-bit coding (0 when it is on that grid
    already: nothing is rounded)."""
    _, scale, exact = _quantise(x, bits)
    return 0.0 if exact else _quiet(x, scale)


def encode(x, sample_rate, bits=16) -> CodedAudio:
    """``x`` (float, finite) coded at ``bits`` (16 or 24) bits: exactly when
    its samples are on that grid already, else after a gain to the full
    range; with 16, a signal that would come back under :data:`MIN_SNR_DB`,
    or with more than :data:`MAX_QUIET_SHARE` of its sounding blocks near
    the 16-bit floor (fades, tails, a decoder's noise between notes, whose
    analysis would read the rounding), is coded at 24."""
    codes, scale, exact = _quantise(x, bits)
    if bits == 16 and not exact and (_snr(x, codes, scale) < MIN_SNR_DB or _quiet(x, scale) > MAX_QUIET_SHARE):
        bits = 24
        codes, scale, _ = _quantise(x, bits)
    buffer = io.BytesIO()
    sf.write(buffer, codes << (32 - bits), int(sample_rate), format="FLAC", subtype=_SUBTYPE[bits],
             compression_level=1.0)
    return CodedAudio(buffer.getvalue(), scale, bits, int(codes.shape[0]))


def check(coded, sample_rate):
    """What is wrong with ``coded`` as one sequence's audio at
    ``sample_rate`` (a FLAC stream, mono, of its length), or None."""
    try:
        info = sf.info(io.BytesIO(coded.data))
    except (RuntimeError, sf.LibsndfileError) as exc:
        return f"is not a readable FLAC stream ({exc})"
    if info.format != "FLAC" or info.channels != 1 or info.samplerate != sample_rate:
        return (f"is {info.format} with {info.channels} channel(s) at {info.samplerate} Hz, not mono FLAC at "
                f"{sample_rate} Hz")
    if info.frames != coded.n_samples:
        return f"holds {info.frames} samples, not {coded.n_samples}"
    return None
