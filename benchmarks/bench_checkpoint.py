"""Checkpoints with training artifacts: the coded training audio (FLAC) that
ssgs stores against the float32 residuals and per-frame tables it stored
before, side by side on the same trained models.

    python benchmarks/bench_checkpoint.py                  # every corpus, 16 and 44.1 kHz
    python benchmarks/bench_checkpoint.py --rates 16000 --corpora music

Corpora: extremetuxracer's music (``apt-get install extremetuxracer-data``),
alsa-utils' spoken words (``/usr/share/sounds/alsa``) and ssgs's demo corpus.
Per corpus and rate: audio seconds; KB per audio-second of a checkpoint in
each form (and without artifacts); how far the kept audio is from the float
source (its worst file); whether fidelity 1 replays the kept audio exactly;
time to save, and to load and replay one second at fidelity 1 (the coded form
analyses its audio then). Figures, never pass/fail.
"""

from __future__ import annotations

import argparse
import glob
import os
import tempfile
import time

import numpy as np

from ssgs import SpectralStateGuidedSynthesis, demo
from ssgs.audio import load_audio
from ssgs.corpus import Corpus

ETR_MUSIC = "/usr/share/games/etr/music"
ALSA_SPEECH = "/usr/share/sounds/alsa"


def corpora(names, scratch):
    """name -> list of audio files, for each corpus asked for that is here."""
    found = {}
    if "music" in names:
        found["music"] = sorted(glob.glob(os.path.join(ETR_MUSIC, "*.ogg")))
    if "speech" in names:
        found["speech"] = sorted(p for p in glob.glob(os.path.join(ALSA_SPEECH, "*.wav")) if "Noise" not in p)
    if "demo" in names:
        found["demo"] = sorted(demo.write_demo_corpus(os.path.join(scratch, "demo")))
    for name, paths in list(found.items()):
        if not paths:
            print(f"{name}: no files here; skipped")
            del found[name]
    return found


def snr_db(ref, est):
    ref = np.asarray(ref, np.float64)
    noise = np.sum((ref - np.asarray(est, np.float64)) ** 2)
    return float("inf") if noise == 0 else 10 * np.log10(np.sum(ref * ref) / noise)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def replay(path):
    """Load a checkpoint and replay its first second at fidelity 1."""
    model = SpectralStateGuidedSynthesis.load_checkpoint(path)
    return model.generate(1.0, sample_rate=model.sample_rate, fidelity=1.0, start=(0, 0.0))


def measure(paths, rate, folder):
    sources = [load_audio(p, rate) for p in paths]
    model = SpectralStateGuidedSynthesis(n_states=34, seed=0).train(sources, rate, n_em_iterations=3)
    seconds = sum(len(x) for x in sources) / rate
    kept = [model.rebuild_sequence(i) for i in range(len(sources))]
    worst = min(snr_db(x, y) for x, y in zip(sources, kept))
    exact = all(np.array_equal(model.generate(len(y) / rate, sample_rate=rate, fidelity=1.0, start=(i, 0.0)),
                               y.astype(np.float32)) for i, y in enumerate(kept))
    bits = sorted({a.bits for a in model.corpus.audio})  # each file's
    coded = os.path.join(folder, "coded.safetensors")
    _, save_coded = timed(lambda: model.save_checkpoint(coded))
    bare = model.save_checkpoint(os.path.join(folder, "bare.safetensors"), include_training_artifacts=False)
    kept, c = model.corpus, model.corpus
    model.corpus = Corpus(c.config, c.observations, c.lpc_coefficients, c.residual_signals, c.sequence_samples,
                          c.frame_metadata, c.perceptual_features, c.f0, c.periodicity)  # the form ssgs wrote before
    residual = os.path.join(folder, "residual.safetensors")
    _, save_residual = timed(lambda: model.save_checkpoint(residual))
    model.corpus = kept
    y_coded, load_coded = timed(lambda: replay(coded))
    y_residual, load_residual = timed(lambda: replay(residual))
    kb = {name: os.path.getsize(p) / 1000 / seconds for name, p in
          (("coded", coded), ("residual", residual), ("bare", bare))}
    return {"seconds": seconds, "kb": kb, "snr": worst, "bits": bits, "exact": exact,
            "replay_snr": snr_db(y_coded, y_residual), "save": (save_coded, save_residual),
            "load": (load_coded, load_residual)}


def report(name, rate, r):
    kb = r["kb"]
    print(f"{name:7s} {rate:6d} Hz {r['seconds']:7.1f} s  KB/s: coded {kb['coded']:6.1f}  residuals "
          f"{kb['residual']:6.1f} ({kb['residual'] / kb['coded']:.1f}x)  no artifacts {kb['bare']:5.2f}  |  "
          f"kept {'/'.join(map(str, r['bits']))}-bit, worst file {r['snr']:.1f} dB from source, fidelity 1 "
          f"{'exact' if r['exact'] else 'NOT EXACT'}  |  save {r['save'][0]:.2f} s vs {r['save'][1]:.2f} s, "
          f"load+replay {r['load'][0]:.2f} s vs {r['load'][1]:.2f} s", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", nargs="+", type=int, default=[16000, 44100])
    parser.add_argument("--corpora", nargs="+", default=["music", "speech", "demo"],
                        choices=["music", "speech", "demo"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        found = corpora(args.corpora, scratch)
        for rate in args.rates:
            for name, paths in found.items():
                report(name, rate, measure(paths, rate, scratch))


if __name__ == "__main__":
    main()
