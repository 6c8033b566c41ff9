"""Excitation signals: the synthetic sources (C generators), their colour,
and the residual shapes put on them by short-time filtering."""

from __future__ import annotations

import numpy as np

from ssgs import kernels
from ssgs.excitation_model import excitation_kind
from ssgs.residual_shapes import resample_bins, spectral_shape
from ssgs.synthesis.trajectory import ar1, fixed_order_product, state_deviations

__all__ = [
    "COLOUR_HOPS",
    "excitation_colour",
    "pulse_shape",
    "shape_coefficients",
    "shape_excitation",
    "shape_variation",
    "state_shaped_excitation",
    "synthetic_excitation",
]

COLOUR_HOPS = 2048  # hops of the model's own excitation its colour is measured over (33 s at hop 256, 16 kHz)


def pulse_shape(wavelet):
    """The pulse a pulse train repeats: the scaling function of a
    PyWavelets ``wavelet`` ('db2': three samples wide), tabulated 64
    points per sample. Returns (pulse, oversampling)."""
    import pywt

    phi, _, _ = pywt.Wavelet(wavelet).wavefun(level=6)
    return np.asarray(phi, dtype=np.float64), 64


def synthetic_excitation(kind, f0, voicing, onset, hop, sample_rate, seed):
    """Unit-power excitation, ``hop`` samples per frame, from the C
    generator of the excitation kind ``kind`` (a key of
    :data:`ssgs.excitation_model.KINDS`) following per-frame ``f0`` (Hz),
    ``voicing`` (0..1) and ``onset`` (bool: a string is plucked)."""
    entry = excitation_kind(kind)
    if entry.pulse is not None:
        pulse, oversampling = pulse_shape(entry.pulse)
        return kernels.excitation(entry.generator, f0, voicing, onset, hop, sample_rate, seed, pulse=pulse,
                                  pulse_oversampling=oversampling)
    return kernels.excitation(entry.generator, f0, voicing, onset, hop, sample_rate, seed)


def excitation_colour(excitation, hop, max_hops=COLOUR_HOPS):
    """The colour of an excitation [F * hop]: its mean log spectrum
    (:func:`spectral_shape` of each hop, over up to ``max_hops`` hops spread
    over it), [1, hop // 2 + 1] nats; zeros when no hop has power."""
    e = np.asarray(excitation, dtype=np.float64)
    F = e.shape[0] // hop
    frame_shapes = spectral_shape(e[: F * hop].reshape(F, hop)[:: max(1, F // max_hops)])
    sounding = ~np.isnan(frame_shapes[:, 0])
    if not sounding.any():
        return np.zeros((1, hop // 2 + 1))
    return frame_shapes[sounding].mean(axis=0, keepdims=True)


def shape_excitation(excitation, shape, hop, flatten=True, index=None, variation=None, colour=None):
    """Give a unit-power excitation [F * hop] each frame's spectral shape.

    The excitation is first flattened: its colour (a Karplus-Strong
    string's pluck, a pulse's roll-off, the noise's high-pass) is taken out,
    either ``colour`` (log power, nats, on its own bins from 0 to Nyquist:
    the excitation kind's colour as the model measures it over a long
    stretch of its own excitation) or, without it, the colour of this
    excitation itself (:func:`excitation_colour`). Then each hop is given
    its row of ``shape`` [F, B] (log power, nats, B bins from 0 to Nyquist:
    the residual shape of the frame's state), or with ``index`` [F] the row
    ``shape[index[f]]`` (a table per state, [N, B]), plus ``variation``
    [F, B'] (optional, log power on its own B' bins) per frame. Filtering
    is by short-time Fourier transform: frames of 2 * hop centred on the
    hops' centres, square-root Hann windows at 50% overlap (which rebuild
    the input exactly under a flat gain), so the gain crossfades from one
    hop to the next. In C (:func:`ssgs.kernels.synth.shape_excitation`)
    when ``2 * hop`` is a power of two, in numpy otherwise.
    """
    e = np.asarray(excitation, dtype=np.float64)
    shape = np.asarray(shape, dtype=np.float64)
    index = np.arange(shape.shape[0]) if index is None else np.asarray(index)
    F = index.shape[0]
    if e.shape[0] != F * hop or shape.shape[1] < 2:
        raise ValueError(f"shape_excitation needs {F} x {hop} samples and at least 2 bins per frame")
    own = np.zeros((1, 2))
    if colour is not None:
        own = np.asarray(colour, dtype=np.float64).reshape(1, -1)
    elif flatten:
        own = excitation_colour(e, hop)
    # on the bins of the 2 * hop transform, one row per row of the shape table
    table = np.exp(0.5 * (resample_bins(shape, hop + 1) - resample_bins(own, hop + 1)))
    if kernels.synth.fft_size_ok(2 * hop):
        return kernels.synth.shape_excitation(e, table, index, hop, variation=variation)
    return _stft_filter(e, table, index, variation, hop)


def _stft_filter(e, table, index, variation, hop):
    """:func:`ssgs.kernels.synth.shape_excitation` in numpy, for a hop
    whose ``2 * hop`` is not a power of two (the C real FFT's sizes)."""
    F = index.shape[0]
    gain = table[np.concatenate([index[:1], index, index[-1:]])]  # frames -1 and F take their neighbours' gains
    if variation is not None:
        variation = np.asarray(variation, dtype=np.float64)
        gain = gain * np.exp(0.5 * resample_bins(np.concatenate([variation[:1], variation, variation[-1:]]), hop + 1))
    window = np.sqrt(0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(2 * hop) / (2 * hop)))  # periodic
    left = hop + hop // 2
    blocks = np.pad(e, (left, 3 * hop - left)).reshape(F + 3, hop)
    frames = np.concatenate([blocks[:-1], blocks[1:]], axis=1) * window
    out = np.fft.irfft(np.fft.rfft(frames, axis=1) * gain, 2 * hop, axis=1) * window
    ola = np.zeros((F + 3, hop))
    ola[:-1] += out[:, :hop]
    ola[1:] += out[:, hop:]
    return ola.reshape(-1)[left : left + F * hop]


def shape_coefficients(exc, path, rng, deviations=None):
    """Each frame's coefficients along the excitation model ``exc``'s shape
    components [F, K]: a draw of the state's spread, correlated from frame
    to frame as in training, plus, where the model has a
    ``shape_regression``, what it predicts from the frame's ``deviations``
    [F, D]; None for a model without shape components. Per frame, so a
    renderer can take any stretch of frames (:func:`shape_variation`)."""
    if exc.residual_shape is None or exc.shape_components is None:
        return None
    K, rho = exc.shape_components.shape[0], np.clip(exc.shape_correlation, 0.0, 0.98)
    z = ar1(rng.standard_normal((len(path), K)), rho)
    coef = z * exc.shape_spread[path]
    if exc.shape_regression is not None and deviations is not None:
        R = exc.shape_regression.shape[1]
        coef[:, :R] += state_deviations(deviations, exc.shape_regression, path)
    return coef


def shape_variation(exc, coef):
    """The log-power variation [F, B] of frames with shape coefficients
    ``coef`` [F, K] (:func:`shape_coefficients`; row by row, the same bits
    for any stretch of rows), or None without."""
    return None if coef is None else fixed_order_product(coef, exc.shape_components)


def state_shaped_excitation(exc, excitation, path, hop, rng, colour=None, deviations=None):
    """The excitation given the residual shape of each frame's state in the
    excitation model ``exc`` (:func:`shape_excitation`, ``colour`` as
    there), each frame straying from it along the shape components by
    :func:`shape_coefficients` (drawn from ``rng``, following
    ``deviations`` [F, D] where the model predicts from them); unchanged
    for a model without shapes."""
    if exc.residual_shape is None:
        return excitation
    variation = shape_variation(exc, shape_coefficients(exc, path, rng, deviations))
    return shape_excitation(excitation, exc.residual_shape, hop, index=path, variation=variation, colour=colour)
