"""Training audio, and the models trained on it, that several generation
test modules use. Each module trains its own (module-scoped fixtures), so
no module sees another's changes to a model."""

import numpy as np
import scipy.signal
from signals import music_like

from ssgs import SpectralStateGuidedSynthesis

SR = 16000


def music_audio():
    """Three music-like clips (5, 4 and 6 s; the second 6 dB down)."""
    rng = np.random.default_rng(31)
    return [music_like(rng, 5.0), music_like(rng, 4.0) * 0.5, music_like(rng, 6.0)]


def music_model(audio):
    """An 8-state model of ``audio`` (8 EM iterations)."""
    return SpectralStateGuidedSynthesis(n_states=8, seed=2).train(audio, SR, n_em_iterations=8)


def gapped():
    """Noise bursts (through a fixed resonance) separated by digital silence:
    about 40% of the frames are exact zeros. (audio, 6-state model of it)."""
    rng = np.random.default_rng(7)
    sr, pieces = 16000, []
    for i in range(16):
        burst = scipy.signal.lfilter([0.3], [1.0, -1.2, 0.8], rng.standard_normal(int(sr * rng.uniform(0.3, 0.6))))
        pieces += [burst * np.hanning(len(burst)) ** 0.1, np.zeros(int(sr * rng.uniform(0.2, 0.4)))]
    x = np.concatenate(pieces)
    model = SpectralStateGuidedSynthesis(n_states=6, seed=1).train([x], sr, n_em_iterations=6)
    return x, model
