"""How close fidelity-0 generation comes to full scale, and whether it ever
flattens a peak.

    python benchmarks/bench_peaks.py /usr/share/games/etr/music/*.ogg   # each file its own corpus
    python benchmarks/bench_peaks.py --folders /tmp/corpora/speech     # a folder as one corpus
    python benchmarks/bench_peaks.py                                    # the demo corpus

For each corpus (16 kHz mono, the defaults: 34 states, 20 iterations) and
each excitation, --seeds generations of --seconds each, and:

- level-stage peak: the largest sample the rendering would make at the
  model's levels without its look-ahead limiter (the same seeds rendered
  with :func:`ssgs.synthesis.render.peak_limit` set aside): how far over
  full scale the levels alone would go; min / median / max over seeds;
- limited: the share of samples whose gain the limiter lowered (mean over seeds);
- level: the RMS with the limiter against the rendering without it, in
  dB (what the limiter costs in loudness; mean over seeds);
- output peak and the longest run of samples above 0.999 (a flattened
  peak; the issue's test is < 8), and beside it that run when the soft
  limiter alone has to catch the levels (the rendering without the
  look-ahead limiter, soft limited: what the previous release did).

Beside each corpus, the training audio's peak, RMS and crest factor.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

import ssgs
import ssgs.synthesis.render as render_module
from ssgs.audio import load_audio
from ssgs.demo import write_demo_corpus
from ssgs.scan import scan_folders

SR = 16000
KINDS = ("Karplus-Strong", "Wavelet", "Noise")


def longest_run(mask):
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return int(np.max(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1), initial=0))


def renderings(model, seconds, kind, seed):
    """(level stage without its limiter, with it) of the generation
    ``model.generate(seconds, excitation_type=kind, seed=seed)`` makes
    before its final soft limiter: the same path and excitation twice."""
    from ssgs.excitation_model import parse_excitation
    from ssgs.synthesis.paths import model_path
    from ssgs.synthesis.voice import render_model

    voice = model.voice()
    n = int(round(seconds * voice.sample_rate))
    out = []
    for limiter in (lambda y, width, ceiling=None: np.asarray(y, np.float64), render_module.peak_limit):
        keep, render_module.peak_limit = render_module.peak_limit, limiter
        try:
            rng = np.random.default_rng(seed)
            path = model_path(voice, -(-n // voice.hop), rng, "sample")
            out.append(render_model(voice, path, parse_excitation(kind), rng)[0][:n])
        finally:
            render_module.peak_limit = keep
    return out


def corpus_row(name, signals, args):
    x = np.concatenate(signals)
    rms = np.sqrt(np.mean(x ** 2))
    print(f"\n{name}: {len(x) / SR:.1f} s, training peak {np.abs(x).max():.3f}, RMS {rms:.3f}, "
          f"crest {20 * np.log10(np.abs(x).max() / rms):.1f} dB")
    model = ssgs.SpectralStateGuidedSynthesis(n_states=args.n_states, seed=0)
    model.train(signals, SR, n_em_iterations=args.n_iterations)
    print(f"  {'excitation':16s}{'level-stage peak min/median/max':>33s}{'limited':>10s}{'level':>10s}"
          f"{'output peak':>13s}{'run>0.999':>11s}{'soft limiter alone':>20s}")
    for kind in KINDS:
        peaks, limited, change, out_peak, runs, soft_runs = [], [], [], [], [], []
        for seed in range(args.seeds):
            raw, lim = renderings(model, args.seconds, kind, seed)
            y = model.generate(args.seconds, fidelity=0.0, excitation_type=kind, seed=seed).astype(np.float64)
            peaks.append(np.abs(raw).max())
            limited.append(np.mean(raw != lim))
            change.append(20 * np.log10(np.sqrt(np.mean(lim ** 2)) / np.sqrt(np.mean(raw ** 2))))
            out_peak.append(np.abs(y).max())
            runs.append(longest_run(np.abs(y) > 0.999))
            soft_runs.append(longest_run(np.abs(render_module.soft_limit(raw)) > 0.999))
        q = np.percentile(peaks, [0, 50, 100])
        print(f"  {kind:16s}{q[0]:>17.2f} {q[1]:6.2f} {q[2]:6.2f}   {100 * np.mean(limited):8.1f}%"
              f"{np.mean(change):7.2f} dB{np.max(out_peak):>13.3f}{max(runs):>11d}{max(soft_runs):>20d}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", help="audio files, each its own corpus")
    parser.add_argument("--folders", nargs="*", default=[], help="folders, each one corpus")
    parser.add_argument("--n-states", type=int, default=34)
    parser.add_argument("--n-iterations", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    corpora = [(os.path.basename(f), [load_audio(f, SR)]) for f in args.files]
    for folder in args.folders:
        files = scan_folders([folder], recursive=True).files
        corpora.append((folder, [load_audio(f, SR) for f in files]))
    with tempfile.TemporaryDirectory() as tmp:
        if not corpora:
            write_demo_corpus(tmp)
            corpora.append(("demo", [load_audio(f, SR) for f in scan_folders([tmp]).files]))
        for name, signals in corpora:
            corpus_row(name, [s.astype(np.float64) for s in signals], args)


if __name__ == "__main__":
    main()
