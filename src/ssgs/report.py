"""A one-page PNG report of a model (``ssgs report``; needs matplotlib)."""

from __future__ import annotations

import numpy as np

__all__ = ["render_report"]


def _spectrogram(ax, x, sr, title, vmin, vmax):
    n_fft, hop = 1024, 256
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    idx = np.arange(n_fft)[None, :] + hop * np.arange(1 + (len(x) - n_fft) // hop)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft), axis=1)) ** 2
    db = 10 * np.log10(np.maximum(spec, 1e-12)).T
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
              extent=[0, len(x) / sr, 0, sr / 2000])
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("seconds")
    ax.set_ylabel("kHz")


def _history_panel(ax, model):
    history = [r for r in model.training_history if "log_likelihood" in r]
    if history:
        its = [r["iteration"] for r in history]
        ll = [r["log_likelihood"] for r in history]
        ax.plot(its, ll, "o-", color="#2a6f97")
        reseeded = [r["iteration"] for r in history if r.get("reseeded")]
        if reseeded:
            ax.plot(reseeded, [ll[its.index(i)] for i in reseeded], "x", color="#c1121f", label="state re-seeded")
            ax.legend(fontsize=8)
        ax.set_xlabel("EM iteration")
    else:
        ax.text(0.5, 0.5, "no training history", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(f"log-likelihood per frame ({'converged' if model.converged else 'not converged'})",
                 fontsize=10)
    ax.grid(alpha=0.3)


def _occupancy_panel(ax, model):
    occupancy = model.excitation_model.occupancy
    order = np.argsort(occupancy)[::-1]
    ax.bar(np.arange(len(order)), 100 * occupancy[order], color="#4d908e")
    ax.set_xticks(np.arange(len(order)))
    ax.set_xticklabels([str(j) for j in order], fontsize=6, rotation=90)
    ax.set_xlabel("state (by occupancy)")
    ax.set_ylabel("% of training frames")
    ax.set_title(f"state occupancy ({model.n_states} states)", fontsize=10)


def _transition_panel(fig, ax, model):
    from matplotlib.colors import LogNorm

    trans = np.maximum(model.transition_matrix, 1e-6)
    im = ax.imshow(trans, cmap="viridis", norm=LogNorm(vmin=1e-4, vmax=1.0))
    ax.set_xlabel("to state")
    ax.set_ylabel("from state")
    ax.set_title("transition probabilities", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8)


def _training_excerpt(model, n, sr):
    """(n samples from the middle of the longest training sequence, its
    label), or (None, None) without training artifacts."""
    if not model.has_training_artifacts:
        return None, None
    longest = int(np.argmax(model.sequence_samples))
    audio = model.rebuild_sequence(longest)
    start = max(0, (len(audio) - n) // 2)
    label = f"training audio ({model.sources[longest]['path'].split('/')[-1]}, from {start / sr:.1f} s)"
    return audio[start : start + n], label


def _audio_panels(fig, grid, model, seconds, seed, sr):
    generated = model.generate(seconds, sample_rate=sr, fidelity=0.0, seed=seed).astype(np.float64)
    training, label = _training_excerpt(model, int(seconds * sr), sr)
    peak = max(np.abs(generated).max(), np.abs(training).max() if training is not None else 0, 1e-9)
    vmax = 20 * np.log10(peak) + 30
    ax = fig.add_subplot(grid[1, 0:3])
    if training is not None:
        _spectrogram(ax, training, sr, label, vmax - 90, vmax)
    else:
        ax.text(0.5, 0.5, "no training artifacts in this checkpoint", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
    ax = fig.add_subplot(grid[1, 3:6])
    _spectrogram(ax, generated, sr, f"generated at fidelity 0 (Karplus-Strong, seed {seed})", vmax - 90, vmax)


def render_report(model, path, seconds=6.0, seed=0, title=None):
    """Write a PNG: log-likelihood per EM iteration, state occupancy, the
    transition matrix, and a stretch of training audio beside audio generated
    at fidelity 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sr = int(model.sample_rate or 16000)
    fig = plt.figure(figsize=(15, 9), constrained_layout=True)
    grid = fig.add_gridspec(2, 6)
    fig.suptitle(title or "ssgs model", fontsize=12)
    _history_panel(fig.add_subplot(grid[0, 0:2]), model)
    _occupancy_panel(fig.add_subplot(grid[0, 2:4]), model)
    _transition_panel(fig, fig.add_subplot(grid[0, 4:6]), model)
    _audio_panels(fig, grid, model, seconds, seed, sr)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return str(path)
