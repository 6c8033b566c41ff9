"""Analysis: framing, LPC, residual, gain, observation vector, frame metadata.

Frame ``f`` of a signal rules the hop region ``[f*hop, (f+1)*hop)``; its
analysis window (Hann, ``frame_size`` samples) starts at
``f*hop - (frame_size - hop)//2``, so it is centred on that region, and is
zero-padded beyond the signal's ends. A signal of ``n`` samples has
``ceil(n / hop)`` frames; none is dropped, silent ones included.

The observation vector the HMM models, per frame (``D = lpc_order + 2``):

- ``lpc_order`` log-area ratios ``g_i = log((1 - k_i) / (1 + k_i))`` of the
  reflection coefficients of the frame's LPC filter. Every real vector is a
  valid set of LARs, and maps back through ``k_i = -tanh(g_i / 2)`` (all
  ``|k_i| < 1``) to a stable synthesis filter: any Gaussian mean, sample or
  interpolation of LARs is a stable filter.
- the log gain: the natural log of the signal's RMS over the hop region,
  floored at ``GAIN_FLOOR`` (-100 dB re full scale) so silence stays finite.
  Synthesis drives the filter with an excitation of RMS
  ``exp(gain) * sqrt(prod(1 - k_i^2))``, the level at which 1/A(z) gives
  back a signal of RMS ``exp(gain)``: the output level follows the model
  whatever spectrum is drawn.
- the voicing: the logit of the frame's periodicity (the normalised
  cross-correlation of the signal at its pitch period, in [0.005, 0.995]),
  which sets how much of the synthetic excitation is periodic.

The LPC analysis conditions the autocorrelation (a 60 Hz Gaussian lag window
and a -80 dB white-noise floor, see :func:`lag_window`), so the filters model
spectral envelopes rather than single partials and stay well inside the unit
circle.

The training audio can be rebuilt exactly from the artifacts: the residual is
stored in float32, computed with the stored (float64) coefficients on the real
signal, so ``lpc_synthesis(residual, lpc, hop)`` gives the signal back to
about -140 dB.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.fft

from ssgs import kernels

__all__ = [
    "FeatureConfig",
    "FileFeatures",
    "GAIN_FLOOR",
    "METADATA_KEYS",
    "analyse_signal",
    "residual_frames",
    "analysis_defaults",
    "frame_harmonicity",
    "frame_starts",
    "lar_from_reflection",
    "lpc_from_reflection",
    "n_frames_for",
    "reflection_from_lar",
    "reflection_from_lpc",
    "rebuild_signal",
    "signal_pitch",
    "voicing_from_logit",
    "voicing_logit",
]

GAIN_FLOOR = float(np.log(1e-5))
METADATA_KEYS = (
    "energy", "rms", "zero_crossings", "lpc_norm", "residual_rms",
    "spectral_centroid", "spectral_bandwidth", "dominant_frequency", "spectral_flux",
)
_CHUNK_FRAMES = 1024
_POWER_FLOOR = 1e-10
LAG_WINDOW_HZ = 60.0
NOISE_FLOOR = 1e-8


def lag_window(order, sample_rate, bandwidth_hz=LAG_WINDOW_HZ, noise_floor=NOISE_FLOOR):
    """Autocorrelation conditioning of the analysis, as in G.729.

    A Gaussian lag window (each resonance at least ``bandwidth_hz`` wide) and
    a white-noise floor ``noise_floor`` (-80 dB) below the frame's power, so a
    near-pure tone still gives reflection coefficients well inside the unit
    circle.

    Parameters
    ----------
    order : int
        LPC order.
    sample_rate : float
        Hz.
    bandwidth_hz : float
        Width of the Gaussian lag window's spectral smoothing.
    noise_floor : float
        Added to lag 0, relative to the frame's power.

    Returns
    -------
    ndarray, shape (order + 1,)
        Factors for the autocorrelation r[0..order] (see
        :func:`ssgs.kernels.lpc_analysis`).
    """
    lags = np.arange(order + 1)
    w = np.exp(-0.5 * (2 * np.pi * bandwidth_hz * lags / sample_rate) ** 2)
    w[0] = 1.0 + noise_floor
    return w


# (lpc_order, frame_size, hop_size) by rate, unless given: docs/core.md#rates says how they were chosen
_DEFAULTS_UP_TO_24K = (12, 1024, 256)  # 64 ms frames, 16 ms hops at 16 kHz
_DEFAULTS_ABOVE_24K = (24, 4096, 1024)  # 93 ms frames, 23 ms hops at 44.1 kHz


def analysis_defaults(sample_rate):
    """The analysis settings (lpc_order, frame_size, hop_size) a model
    takes at ``sample_rate`` unless they are given: 12, 1024, 256 up to
    24 kHz; 24, 4096, 1024 above (44.1 and 48 kHz), chosen by measurement
    on real music and speech (docs/core.md)."""
    return _DEFAULTS_UP_TO_24K if sample_rate <= 24000 else _DEFAULTS_ABOVE_24K


@dataclass(frozen=True)
class FeatureConfig:
    """What the analysis needs to know; part of every checkpoint's config."""

    sample_rate: int = 16000
    frame_size: int = 1024
    hop_size: int = 256
    lpc_order: int = 12
    n_mel: int = 40
    n_erb: int = 32
    audio_bits: int = 16  # how the training audio is kept (ssgs.training_audio)

    @property
    def n_features(self) -> int:
        return self.lpc_order + 2

    @property
    def n_perceptual(self) -> int:
        return self.n_mel + self.n_erb + 2

    def validate(self):
        for name in ("sample_rate", "frame_size", "hop_size", "lpc_order", "n_mel", "n_erb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.hop_size > self.frame_size:
            raise ValueError(f"hop_size ({self.hop_size}) must not exceed frame_size ({self.frame_size})")
        if self.lpc_order >= self.frame_size:
            raise ValueError(f"lpc_order ({self.lpc_order}) must be below frame_size ({self.frame_size})")
        if self.lpc_order > kernels.MAX_ORDER:
            raise ValueError(f"lpc_order must be <= {kernels.MAX_ORDER}, got {self.lpc_order}")
        if self.sample_rate < 1000:
            raise ValueError(f"sample_rate must be at least 1000 Hz, got {self.sample_rate}")
        if self.audio_bits not in (16, 24):
            raise ValueError(f"audio_bits must be 16 or 24, got {self.audio_bits!r}")
        return self


@dataclass
class FileFeatures:
    """The analysis of one signal (one HMM sequence).

    Attributes
    ----------
    n_samples : int
    lpc : ndarray, float64 [F, lpc_order]
        a[1:] of A(z) = 1 + sum_i a_i z^-i.
    residual : ndarray, float32 [F, hop]
        The residual of each hop region; the last frame is zero beyond the
        signal's end.
    observations : ndarray, float32 [F, lpc_order + 2]
        Log-area ratios, log gain (log RMS of the hop region) and voicing
        (logit of the periodicity).
    metadata : dict of str -> ndarray float32 [F]
    perceptual : ndarray, float16 [F, n_mel + n_erb + 2]
        Log mel band energies, log ERB band energies, mel flux, ERB flux.
    f0 : ndarray, float32 [F]
        Fundamental frequency in Hz (0 for silence), from the residual.
    periodicity : ndarray, float32 [F]
        How periodic the residual is at that F0, in [0, 1].
    audio : ssgs.training_audio.CodedAudio or None
        The signal analysed, as it is kept.
    shapes : ndarray, float32 [F, SHAPE_BINS] or None
        Each hop's residual shape, when the residual itself is not kept.
    """

    n_samples: int
    lpc: np.ndarray
    residual: np.ndarray
    observations: np.ndarray
    metadata: dict = field(default_factory=dict)
    perceptual: np.ndarray | None = None
    f0: np.ndarray | None = None
    periodicity: np.ndarray | None = None
    audio: object = None
    shapes: np.ndarray | None = None

    @property
    def n_frames(self) -> int:
        return self.lpc.shape[0]


def n_frames_for(n_samples, hop):
    """Frames of a signal of ``n_samples`` samples (an int, or an int64 array
    of them): ceil(n_samples / hop)."""
    if np.ndim(n_samples):
        return -(-np.asarray(n_samples, dtype=np.int64) // int(hop))
    return -(-int(n_samples) // int(hop))


def frame_starts(n_frames, frame_size, hop) -> np.ndarray:
    """First sample of each frame's analysis window (may be negative)."""
    return np.arange(n_frames, dtype=np.int64) * hop - (frame_size - hop) // 2


def lpc_from_reflection(k) -> np.ndarray:
    """Step-up recursion: reflection coefficients [..., p] to a [..., p + 1]."""
    k = np.asarray(k, dtype=np.float64)
    p = k.shape[-1]
    a = np.zeros(k.shape[:-1] + (p + 1,))
    a[..., 0] = 1.0
    for m in range(1, p + 1):
        km = k[..., m - 1 : m]
        if m > 1:
            a[..., 1:m] = a[..., 1:m] + km * a[..., m - 1 : 0 : -1]
        a[..., m] = km[..., 0]
    return a


def reflection_from_lpc(a) -> np.ndarray:
    """Step-down recursion: a [..., p + 1] (a[..., 0] == 1) to reflection
    coefficients [..., p]. The filter is stable iff all |k| < 1."""
    a = np.array(a, dtype=np.float64)[..., 1:]
    p = a.shape[-1]
    k = np.zeros(a.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        for m in range(p, 0, -1):
            km = a[..., m - 1].copy()
            k[..., m - 1] = km
            if m > 1:
                den = (1.0 - km * km)[..., None]
                a[..., : m - 1] = (a[..., : m - 1] - km[..., None] * a[..., m - 2 :: -1][..., : m - 1]) / den
    return k


def lar_from_reflection(k) -> np.ndarray:
    """Log-area ratios log((1 - k) / (1 + k)) = -2 artanh(k)."""
    k = np.asarray(k, dtype=np.float64)
    return np.log1p(-k) - np.log1p(k)


def reflection_from_lar(g) -> np.ndarray:
    """Inverse of :func:`lar_from_reflection`: k = -tanh(g / 2), always |k| < 1."""
    return -np.tanh(np.asarray(g, dtype=np.float64) / 2.0)


def mel_band_edges(n_bands, sample_rate):
    """The ``n_bands + 2`` edges (Hz) of triangular bands evenly spaced in
    mel from 0 to Nyquist: band ``b`` rises from edge ``b`` to its centre,
    edge ``b + 1``, and falls to edge ``b + 2``."""
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    return 700.0 * (10.0 ** (np.linspace(0.0, hz_to_mel(sample_rate / 2), n_bands + 2) / 2595.0) - 1.0)


def _mel_filterbank(n_bands, n_fft, sample_rate):
    return triangular_bands(mel_band_edges(n_bands, sample_rate), n_fft, sample_rate)


def _erb_filterbank(n_bands, n_fft, sample_rate):
    # ERB-rate scale of Glasberg and Moore (1990)
    def hz_to_erb(f):
        return 21.4 * np.log10(1.0 + 0.00437 * f)

    def erb_to_hz(e):
        return (10.0 ** (e / 21.4) - 1.0) / 0.00437

    edges = erb_to_hz(np.linspace(hz_to_erb(20.0), hz_to_erb(sample_rate / 2), n_bands + 2))
    return triangular_bands(edges, n_fft, sample_rate)


def triangular_bands(edges, n_fft, sample_rate, fill_empty=True):
    """Triangular band weights [n_fft // 2 + 1, n_bands] over an
    ``n_fft``-point transform's bins, from ``edges`` (Hz, n_bands + 2; see
    :func:`mel_band_edges`). With ``fill_empty``, a band narrower than a bin
    still gets the bin nearest its centre; without, it holds nothing."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None, :] - lo) / np.maximum(mid - lo, 1e-9)
    down = (hi - freqs[None, :]) / np.maximum(hi - mid, 1e-9)
    bank = np.maximum(0.0, np.minimum(up, down))
    empty = bank.sum(axis=1) == 0
    if fill_empty and empty.any():
        nearest = np.abs(freqs[None, :] - mid[empty]).argmin(axis=1)
        bank[np.flatnonzero(empty), nearest] = 1.0
    return np.ascontiguousarray(bank.T)


_BANKS: dict = {}


def _banks(config: FeatureConfig):
    key = (config.n_mel, config.n_erb, config.frame_size, config.sample_rate)
    if key not in _BANKS:
        _BANKS[key] = (
            _mel_filterbank(config.n_mel, config.frame_size, config.sample_rate),
            _erb_filterbank(config.n_erb, config.frame_size, config.sample_rate),
            np.hanning(config.frame_size + 2)[1:-1],
        )
    return _BANKS[key]


def _stable_lpc(a):
    """The float64 LPC rows, each checked to be minimum phase (the analysis
    guarantees it; this guards the residual/synthesis pair)."""
    k = reflection_from_lpc(a)
    bad = ~np.all(np.abs(k) < 1.0, axis=1)
    if bad.any():
        a = a.copy()
        a[bad] = lpc_from_reflection(np.clip(k[bad], -0.999999, 0.999999))
    return a


def _empty_features(n, F, config: FeatureConfig) -> FileFeatures:
    """A FileFeatures of ``F`` frames to fill; only the residual starts at zero."""
    p = config.lpc_order
    return FileFeatures(
        n_samples=n,
        lpc=np.empty((F, p)),
        residual=np.zeros((F, config.hop_size), np.float32),
        observations=np.empty((F, p + 2), np.float32),
        metadata={key: np.empty(F, np.float32) for key in METADATA_KEYS},
        perceptual=np.empty((F, config.n_perceptual), np.float16),
    )


def residual_frames(x, lpc, hop) -> np.ndarray:
    """The LPC residual of signal ``x`` (float32 samples) through each
    frame's ``lpc`` (a_1..a_p, [F, p]), frame by frame: float32 [F, hop],
    the last frame zero beyond the signal; what :func:`analyse_signal`
    computes with those coefficients."""
    x64 = np.ascontiguousarray(x, dtype=np.float32).astype(np.float64)
    a = np.hstack([np.ones((lpc.shape[0], 1)), lpc])
    out = np.zeros((lpc.shape[0], hop), np.float32)
    out.reshape(-1)[: x64.shape[0]] = kernels.lpc_residual(x64, a, hop, zi=np.zeros(lpc.shape[1]))
    return out


def _analysis_windows(x32, F, L, hop):
    """Views of every ``L``-sample window of the zero-padded signal, and the
    view of each frame's analysis window."""
    padded = np.concatenate([np.zeros(L, np.float32), x32, np.zeros(L + hop, np.float32)])
    views = np.lib.stride_tricks.sliding_window_view(padded, L)
    return views, frame_starts(F, L, hop) + L


def _hop_lengths(n, f0, f1, hop):
    """Samples of the signal in the hop regions of frames f0..f1 (the last may be short)."""
    return np.minimum(hop, n - np.arange(f0, f1) * hop)


def _residual_chunk(out, x32, a, f0, f1, hop, history):
    """Fill the residual of frames f0..f1 (its history the real signal's last
    samples); returns the chunk's signal in float64 and the next history."""
    n, p = x32.shape[0], a.shape[1] - 1
    seg = x32[f0 * hop:min(n, f1 * hop)].astype(np.float64)
    e = kernels.lpc_residual(seg, a, hop, zi=history)
    flat = out.residual[f0:f1].reshape(-1)
    flat[: e.shape[0]] = e
    res = out.residual[f0:f1]
    res_rms = np.sqrt(np.einsum("ij,ij->i", res, res, dtype=np.float64) / _hop_lengths(n, f0, f1, hop))
    out.metadata["residual_rms"][f0:f1] = res_rms
    return seg, np.concatenate([history, seg])[-p:]


def _envelope_chunk(out, a, seg, f0, f1, hop):
    """Fill the LARs and the log gain (log RMS of each hop region, floored) of frames f0..f1."""
    p = a.shape[1] - 1
    seg_len = _hop_lengths(out.n_samples, f0, f1, hop)
    out.observations[f0:f1, :p] = lar_from_reflection(reflection_from_lpc(a))
    sig = np.zeros((f1 - f0) * hop)
    sig[: seg.shape[0]] = seg
    sig_rms = np.sqrt(np.einsum("ij,ij->i", sig.reshape(-1, hop), sig.reshape(-1, hop)) / seg_len)
    out.observations[f0:f1, p] = np.log(np.maximum(sig_rms, np.exp(GAIN_FLOOR)))


def _waveform_metadata(raw, a):
    """Energy, RMS and zero crossings of unwindowed frames, and the norm of their LPC rows."""
    energy = np.einsum("ij,ij->i", raw, raw)
    signs = np.signbit(raw)
    return {
        "energy": energy,
        "rms": np.sqrt(energy / raw.shape[1]),
        "zero_crossings": np.count_nonzero(signs[:, 1:] != signs[:, :-1], axis=1),
        "lpc_norm": np.linalg.norm(a[:, 1:], axis=1),
    }


def _spectral_metadata(power, freqs):
    """Centroid, bandwidth and dominant frequency of power spectra (0 for a silent frame)."""
    total = power.sum(axis=1)
    safe = np.where(total > 0, total, 1.0)
    centroid = (power @ freqs) / safe
    bandwidth = np.sqrt(np.maximum(0.0, (power @ freqs**2) / safe - centroid**2))
    return {
        "spectral_centroid": np.where(total > 0, centroid, 0.0),
        "spectral_bandwidth": np.where(total > 0, bandwidth, 0.0),
        "dominant_frequency": np.where(total > 0, freqs[np.argmax(power, axis=1)], 0.0),
    }


def _spectral_chunk(out, raw, frames, a, freqs, config: FeatureConfig, f0, f1, previous):
    """Fill the metadata and the perceptual features of frames f0..f1.

    ``previous`` holds the last frame's magnitude, mel and ERB spectra before
    this chunk (None for the first), for the fluxes; returns this chunk's."""
    mel_bank, erb_bank, _ = _banks(config)
    spec = np.fft.rfft(frames, axis=1)
    power = spec.real**2 + spec.imag**2
    mag = np.sqrt(power)
    mel = np.log(power @ mel_bank + _POWER_FLOOR)
    erb = np.log(power @ erb_bank + _POWER_FLOOR)
    prev_mag, prev_mel, prev_erb = previous
    values = {**_waveform_metadata(raw, a), **_spectral_metadata(power, freqs),
              "spectral_flux": _flux(mag, prev_mag)}
    for key, value in values.items():
        out.metadata[key][f0:f1] = value
    out.perceptual[f0:f1, : config.n_mel] = mel
    out.perceptual[f0:f1, config.n_mel : config.n_mel + config.n_erb] = erb
    out.perceptual[f0:f1, -2] = _flux(mel, prev_mel)
    out.perceptual[f0:f1, -1] = _flux(erb, prev_erb)
    return mag[-1], mel[-1], erb[-1]


def analyse_signal(x, config: FeatureConfig, n_threads=1) -> FileFeatures:
    """Analyse one mono signal at ``config.sample_rate``.

    The frames are analysed in chunks of ``_CHUNK_FRAMES``: LPC, residual,
    LARs and gain, metadata and perceptual features; then the pitch of the
    whole signal gives the voicing.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        float32 or float64, finite, n_samples >= 1.
    config : FeatureConfig
    n_threads : int
        Threads for the LPC kernel.

    Returns
    -------
    FileFeatures
    """
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    L, hop, p = config.frame_size, config.hop_size, config.lpc_order
    F = n_frames_for(x32.shape[0], hop)
    out = _empty_features(x32.shape[0], F, config)
    window = _banks(config)[2]
    window_lags = lag_window(p, config.sample_rate)
    freqs = np.fft.rfftfreq(L, 1.0 / config.sample_rate)
    views, starts = _analysis_windows(x32, F, L, hop)
    history, previous = np.zeros(p), (None, None, None)
    for f0 in range(0, F, _CHUNK_FRAMES):
        f1 = min(F, f0 + _CHUNK_FRAMES)
        raw = views[starts[f0:f1]].astype(np.float64)
        frames = raw * window
        a, _, _ = kernels.lpc_analysis(frames, p, lag_window=window_lags, n_threads=n_threads)
        a = _stable_lpc(a)
        out.lpc[f0:f1] = a[:, 1:]
        seg, history = _residual_chunk(out, x32, a, f0, f1, hop, history)
        _envelope_chunk(out, a, seg, f0, f1, hop)
        previous = _spectral_chunk(out, raw, frames, a, freqs, config, f0, f1, previous)
    out.f0, out.periodicity = signal_pitch(x32, config, n_threads)
    out.observations[:, p + 1] = voicing_logit(out.periodicity)
    return out


VOICING_CLIP = 0.005


def voicing_logit(periodicity):
    """The observation's voicing dimension: logit of the periodicity, kept
    within [0.005, 0.995] so silence and perfect tones stay finite."""
    v = np.clip(np.asarray(periodicity, dtype=np.float64), VOICING_CLIP, 1.0 - VOICING_CLIP)
    return np.log(v / (1.0 - v))


def voicing_from_logit(g):
    """Inverse of :func:`voicing_logit` (a periodic share in (0, 1))."""
    return 1.0 / (1.0 + np.exp(-np.asarray(g, dtype=np.float64)))


PITCH_FMIN = 60.0
PITCH_FMAX = 1000.0


def pitch_range(sample_rate):
    """The F0 search range in Hz: 60 to 1000 Hz, or below the Nyquist rate."""
    return PITCH_FMIN, min(PITCH_FMAX, 0.45 * sample_rate)


def signal_pitch(signal, config: FeatureConfig, n_threads=1):
    """F0 (Hz) and periodicity of each frame of the signal (not of its residual).

    The window is ``frame_size`` samples, at least two periods of the lowest
    F0 (:func:`pitch_range`), centred on each hop region.

    Parameters
    ----------
    signal : array_like, shape (n_samples,)
    config : FeatureConfig
    n_threads : int
        Threads for the pitch kernel.

    Returns
    -------
    f0 : ndarray of float32, shape (n_frames,)
        Hz; 0 for a silent window.
    periodicity : ndarray of float32, shape (n_frames,)
        In [0, 1].
    """
    fmin, fmax = pitch_range(config.sample_rate)
    window = max(config.frame_size, int(np.ceil(2 * config.sample_rate / fmin)) + 2)
    f0, periodicity = kernels.pitch(np.asarray(signal, np.float32), config.hop_size, window,
                                    config.sample_rate, fmin, fmax, n_threads=n_threads)
    return f0.astype(np.float32), periodicity.astype(np.float32)


def frame_harmonicity(signal, frame_size, hop, sample_rate, frames=None, chunk=256, workers=1):
    """How periodic each hop region of ``signal`` sounds.

    The peak of the normalised autocorrelation of a Hann window of
    ``frame_size`` samples centred on the region, over the lags of the pitch
    range (:func:`pitch_range`): near 1 for a steady pitched sound, about 0.1
    for noise. The autocorrelation is computed by FFT, ``chunk`` windows at a
    time (the values do not depend on ``chunk``).

    Parameters
    ----------
    signal : array_like, shape (n_samples,)
    frame_size : int
        Window length in samples.
    hop : int
        Samples per hop region.
    sample_rate : float
        Hz.
    frames : array_like of int, optional
        Only these hop regions (default: all).
    chunk : int
        Windows per batch of FFTs.
    workers : int
        Threads for the FFTs.

    Returns
    -------
    ndarray of float64, shape (n,)
        One value per hop region asked for; NaN where the window holds no
        power.
    """
    x = np.asarray(signal, dtype=np.float64)
    n_hops = -(-x.shape[0] // hop)
    index = np.arange(n_hops) if frames is None else np.asarray(frames, dtype=np.int64)
    fmin, fmax = pitch_range(sample_rate)
    lo, hi = max(1, int(sample_rate / fmax)), min(frame_size - 1, int(np.ceil(sample_rate / fmin)))
    half = frame_size // 2
    padded = np.pad(x, (half, frame_size + n_hops * hop - x.shape[0]))
    window = np.hanning(frame_size)
    n_fft = scipy.fft.next_fast_len(frame_size + hi + 1, real=True)  # no circular wrap up to lag hi
    out = np.full(index.shape[0], np.nan)
    for a in range(0, index.shape[0], chunk):
        starts = index[a:a + chunk] * hop + hop // 2  # the region's centre, in padded samples minus half
        framed = padded[starts[:, None] + np.arange(frame_size)] * window
        spec = scipy.fft.rfft(framed, n_fft, axis=1, workers=workers)
        ac = scipy.fft.irfft(spec.real**2 + spec.imag**2, n_fft, axis=1, workers=workers)[:, : hi + 1]
        power = ac[:, 0] > 1e-300
        out[a:a + chunk][power] = ac[power, lo:].max(axis=1) / ac[power, 0]
    return out


def _flux(values, previous):
    """L2 norm of the rise from each frame to the next (0 for a file's first frame)."""
    before = np.vstack([values[:1] if previous is None else previous[None], values[:-1]])
    return np.sqrt(np.square(np.maximum(values - before, 0.0)).sum(axis=1))


def rebuild_signal(lpc, residual, n_samples, hop) -> np.ndarray:
    """The training audio of one sequence from its LPC rows and residual.

    Parameters
    ----------
    lpc : ndarray [F, p]
    residual : ndarray [F, hop]
    n_samples : int

    Returns
    -------
    ndarray float64 [n_samples]
    """
    a = np.concatenate([np.ones((lpc.shape[0], 1)), lpc], axis=1)
    e = np.asarray(residual, dtype=np.float64).reshape(-1)[:n_samples]
    y, _ = kernels.lpc_synthesis(e, a, hop)
    return y
