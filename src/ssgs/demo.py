"""The built-in demo corpus: a minute of audio ssgs synthesises itself.

Four clips of different character, the same bytes of audio every time, at
rates and channel counts that exercise the decoding path:

- ``plucked.wav``: a Karplus-Strong string melody, 44.1 kHz stereo;
- ``voice.flac``: a sung vowel sequence (glottal pulses with vibrato
  through moving formant resonators), 22.05 kHz mono;
- ``drums.mp3``: kick, snare and hi-hat patterns of filtered noise and
  swept sines, 44.1 kHz mono;
- ``pad.wav``: a slow chord progression of detuned partials, 32 kHz stereo.

Each clip maker (:func:`plucked`, :func:`voice`, :func:`drums`, :func:`pad`)
takes ``(rng, sr, seconds)``: a numpy Generator every random choice draws
from, the sample rate in Hz and the length in seconds, and returns float64
[n] (:func:`pad`: [n, 2], stereo).
"""

from __future__ import annotations

import os

import numpy as np
import scipy.signal
import soundfile as sf

__all__ = ["CLIP_SECONDS", "make_clips", "write_demo_corpus"]

CLIP_SECONDS = 15.0


def _midi(note):
    return 440.0 * 2 ** ((note - 69) / 12)


def plucked(rng, sr, seconds):
    """A Karplus-Strong string melody."""
    out = np.zeros(int(sr * seconds))
    notes = [57, 60, 64, 67, 69, 67, 64, 60, 62, 65, 69, 72, 71, 67, 64, 59]
    step = len(out) // len(notes)
    for i, note in enumerate(notes):
        period = sr / _midi(note)
        L = int(period)
        burst = rng.uniform(-1, 1, L)
        excitation = np.zeros(min(step * 2, len(out) - i * step))
        excitation[: min(L, len(excitation))] = burst[: len(excitation)]
        # y[n] = x[n] + g/2 (y[n-L] + y[n-L-1]): the Karplus-Strong loop as an IIR filter
        a = np.zeros(L + 2)
        a[0], a[L], a[L + 1] = 1.0, -0.498, -0.498
        tone = scipy.signal.lfilter([1.0], a, excitation)
        out[i * step : i * step + len(tone)] += 0.35 * tone
    return out


def voice(rng, sr, seconds):
    """A sung vowel sequence: glottal pulses with vibrato through formant resonators."""
    n = int(sr * seconds)
    t = np.arange(n) / sr
    f0 = _midi(57) * (1 + 0.012 * np.sin(2 * np.pi * 5.5 * t)) * np.interp(
        t, [0, seconds / 3, 2 * seconds / 3, seconds], [1.0, 1.122, 0.891, 1.0])
    phase = np.cumsum(f0 / sr)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    glottal = scipy.signal.lfilter([1.0], [1.0, -0.97], pulses) + 0.02 * rng.standard_normal(n)
    vowels = {"a": (730, 1090, 2440), "i": (270, 2290, 3010), "u": (300, 870, 2240), "e": (530, 1840, 2480)}
    order = ["a", "i", "u", "e", "a", "u"]
    seg = n // len(order)
    out = np.zeros(n)
    for k, v in enumerate(order):
        lo, hi = k * seg, n if k == len(order) - 1 else (k + 1) * seg
        y = glottal[lo:hi]
        for fc, bw in zip(vowels[v], (80, 90, 120)):
            r = np.exp(-np.pi * bw / sr)
            y = scipy.signal.lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * fc / sr), r * r], y)
        env = np.minimum(1.0, np.minimum(np.arange(hi - lo), np.arange(hi - lo)[::-1]) / (0.05 * sr))
        out[lo:hi] = y * env
    return 0.5 * out / np.abs(out).max()


def drums(rng, sr, seconds):
    """Kick, snare and hi-hat patterns of filtered noise and swept sines."""
    n = int(sr * seconds)
    out = np.zeros(n)
    beat = int(sr * 60 / 110 / 2)
    pattern = "K.H.S.H.K.KHS.HH"
    for i in range(n // beat):
        hit = pattern[i % len(pattern)]
        start = i * beat
        length = min(beat * 2, n - start)
        tt = np.arange(length) / sr
        if hit == "K":
            sound = np.sin(2 * np.pi * (50 * tt + 60 * (1 - np.exp(-tt * 30)) / 30)) * np.exp(-tt * 12)
        elif hit == "S":
            noise = scipy.signal.lfilter(*scipy.signal.butter(2, [1200, 5000], "bandpass", fs=sr),
                                         rng.standard_normal(length))
            sound = (0.6 * noise + 0.5 * np.sin(2 * np.pi * 190 * tt)) * np.exp(-tt * 20)
        elif hit == "H":
            noise = scipy.signal.lfilter(*scipy.signal.butter(2, 7000, "highpass", fs=sr),
                                         rng.standard_normal(length))
            sound = 0.4 * noise * np.exp(-tt * 60)
        else:
            continue
        out[start : start + length] += sound
    return 0.6 * out / np.abs(out).max()


def pad(rng, sr, seconds):
    """A slow chord progression of detuned partials, stereo: float64 [n, 2]."""
    n = int(sr * seconds)
    t = np.arange(n) / sr
    chords = [(48, 55, 64, 67), (45, 52, 60, 64), (41, 48, 57, 60), (43, 50, 59, 62)]
    seg = n // len(chords)
    left, right = np.zeros(n), np.zeros(n)
    for k, chord in enumerate(chords):
        lo, hi = k * seg, min(n, (k + 1) * seg + seg // 4)
        tt = t[lo:hi] - t[lo]
        env = np.sin(np.pi * np.clip(tt / (tt[-1] + 1e-9), 0, 1)) ** 2
        for note in chord:
            f = _midi(note)
            for h, amp in ((1, 1.0), (2, 0.4), (3, 0.2), (4, 0.1)):
                for detune, side in ((0.997, left), (1.003, right)):
                    ph = rng.uniform(0, 2 * np.pi)
                    side[lo:hi] += 0.05 * amp * env * np.sin(2 * np.pi * f * h * detune * tt + ph)
    return np.stack([left, right], axis=1)


def make_clips(seed=0, seconds=CLIP_SECONDS):
    """The demo clips as (file name, samples, sample rate): float32, mono 1-D
    or stereo [n, 2]. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    melody = plucked(rng, 44100, seconds)
    stereo = np.stack([melody, np.roll(melody, 441)], axis=1)
    return [
        ("plucked.wav", stereo.astype(np.float32), 44100),
        ("voice.flac", voice(rng, 22050, seconds).astype(np.float32), 22050),
        ("drums.mp3", drums(rng, 44100, seconds).astype(np.float32), 44100),
        ("pad.wav", pad(rng, 32000, seconds).astype(np.float32), 32000),
    ]


def write_demo_corpus(folder, seed=0, seconds=CLIP_SECONDS):
    """Write the demo clips into ``folder`` (created if needed); returns their paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name, samples, sr in make_clips(seed, seconds):
        path = os.path.join(folder, name)
        sf.write(path, samples, sr)
        paths.append(path)
    return paths
