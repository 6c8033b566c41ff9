"""Synthesis: state paths, parameter trajectories, excitation, output gain.

This first version makes fidelity-0 audio only: a state path sampled from
the HMM, per-frame observations drawn from each state's Gaussian with
first-order smoothing (so the spectrum glides instead of jumping every hop),
white-noise excitation scaled by the modelled gain, through the all-pole
filter with state carried across frames, and a soft limiter only where a
sample would exceed full scale.
"""

from __future__ import annotations

import numpy as np

from ssgs import kernels
from ssgs.features import lpc_from_reflection, reflection_from_lar

__all__ = ["observation_trajectory", "render_observations", "soft_limit", "synthesize_model_only"]


def observation_trajectory(params, path, rng, smoothing=0.7):
    """Per-frame observations along a state path: the state's mean plus
    correlated Gaussian noise with the state's covariance.

    z_t = rho z_{t-1} + sqrt(1 - rho^2) eps_t keeps unit variance, so each
    frame's deviation has exactly the state's covariance while consecutive
    frames stay correlated.
    """
    D = params.means.shape[1]
    chol = np.linalg.cholesky(params.covars)
    eps = rng.standard_normal((len(path), D))
    z = np.empty_like(eps)
    prev = np.zeros(D)
    c = np.sqrt(1.0 - smoothing**2)
    for t in range(len(path)):
        prev = smoothing * prev + c * eps[t]
        z[t] = prev
    return params.means[path] + np.einsum("tij,tj->ti", chol[path], z)


def render_observations(obs, hop, rng):
    """Audio from per-frame observations (LARs and log gain): unit-RMS white
    noise per hop times exp(gain), through 1/A(z) with state carried."""
    p = obs.shape[1] - 1
    a = lpc_from_reflection(reflection_from_lar(obs[:, :p]))
    gain = np.exp(np.minimum(obs[:, p], 0.0))
    e = rng.standard_normal((obs.shape[0], hop))
    e /= np.sqrt(np.mean(e * e, axis=1, keepdims=True))
    e *= gain[:, None]
    y, _ = kernels.lpc_synthesis(e.reshape(-1), a, hop)
    return y


def soft_limit(y, threshold=0.9):
    """Leave samples below ``threshold`` untouched; compress the rest smoothly
    towards 1 (tanh knee), so nothing exceeds full scale."""
    y = np.asarray(y, dtype=np.float64)
    over = np.abs(y) > threshold
    if over.any():
        knee = 1.0 - threshold
        y = y.copy()
        y[over] = np.sign(y[over]) * (threshold + knee * np.tanh((np.abs(y[over]) - threshold) / knee))
    return y


def synthesize_model_only(params, hop, n_samples, seed):
    """Fidelity-0 audio of ``n_samples`` samples from the HMM alone (float32)."""
    rng = np.random.default_rng(seed)
    n_frames = -(-n_samples // hop)
    path = kernels.sample_states(params.startprob, params.transmat, n_frames, int(rng.integers(2**63)))
    obs = observation_trajectory(params, path, rng)
    y = render_observations(obs, hop, rng)[:n_samples]
    return soft_limit(y).astype(np.float32)
