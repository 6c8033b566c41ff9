"""Where the pulse of pulsed music is lost, stage by stage from the training
audio to fidelity 0 (issue 20's measurements; docs/musical-time.md reads
them).

    python benchmarks/bench_pulse.py                       # each extremetuxracer piece over 60 s
    python benchmarks/bench_pulse.py FILE [FILE ...] --rate 44100 --runs 4

Each file is one corpus, trained with the defaults (34 states, 20
iterations) on the parts before and after its middle fifth, as
bench_quality.py trains. Every row renders audio as long as the training
sequences and reads the beat (the onset envelope's normalised
autocorrelation at the training audio's own period, pooled;
bench_quality.py's measure) and the FMD against the training audio:

- training audio;
- white noise at each hop's residual level through the analysis filters
  (the LPC frames and levels alone, as the analysis has them);
- the renderer over white noise with the frames' own envelopes and levels
  (render(), as fidelity 0 renders), and the same without its per-hop level
  step (the synthesis kernel alone);
- copy-synthesis with the Karplus-Strong and noise excitations (the frames'
  own envelopes, levels, pitch, voicing and residual shapes;
  bench_quality.copy_synthesis);
- the training's decoded (Viterbi) state path rendered by the model as
  fidelity 0 renders (frames drawn from the states);
- fidelity 0: the model's own path;
- a trial metrical path: each training sequence's beat grid found from its
  frames' mel flux (Ellis's tempo and dynamic-programming beat tracker),
  8 positions per beat, and the per-frame chain of the duration-corrected
  transitions (with the chain ends) weighted by P(position | state) counted
  on the decoded paths, its clock at a training sequence's period. This
  is the path-level musical time the issue proposes; it is not in ssgs
  (docs/musical-time.md: what it bought and cost).
"""

from __future__ import annotations

import argparse
import bisect
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_quality as bq  # noqa: E402

import ssgs  # noqa: E402
from ssgs import kernels  # noqa: E402
from ssgs.features import rebuild_signal, reflection_from_lar  # noqa: E402
from ssgs.synthesis.fidelity import DecodedPaths  # noqa: E402
from ssgs.synthesis.paths import model_path, with_end  # noqa: E402
from ssgs.synthesis.voice import render_model  # noqa: E402

POSITIONS = 8  # clock positions per beat of the trial metrical path
PERIOD_SECONDS = (0.25, 1.5)
TIGHTNESS = 100.0


def beat_period(e, rate):
    """The lag (frames, whole) in PERIOD_SECONDS whose autocorrelation of
    the onset envelope ``e``, weighted by a log-normal preference around
    0.5 s (one octave), is the highest (Ellis 2007)."""
    lo, hi = int(PERIOD_SECONDS[0] * rate), int(PERIOD_SECONDS[1] * rate)
    ac = np.fft.irfft(np.abs(np.fft.rfft(e, 2 * len(e))) ** 2)[: hi + 1] / (len(e) - np.arange(hi + 1))
    lags = np.arange(lo, hi + 1)
    weight = np.exp(-0.5 * np.log2(lags / (0.5 * rate)) ** 2)
    return int(lags[np.argmax(ac[lo:] * weight)])


def track_beats(e, period):
    """Ellis's dynamic program: beat frames of the onset envelope ``e``."""
    score, back = e.copy(), np.full(len(e), -1)
    gaps = np.arange(max(1, period // 2), 2 * period + 1)
    cost = TIGHTNESS * np.log(gaps / period) ** 2
    for t in range(gaps[0], len(e)):
        ok = gaps <= t
        cand = score[t - gaps[ok]] - cost[ok]
        i = int(np.argmax(cand))
        if cand[i] > 0:
            score[t] += cand[i]
            back[t] = t - gaps[ok][i]
    beats = [len(e) - period + int(np.argmax(score[-period:]))]
    while back[beats[-1]] >= 0:
        beats.append(int(back[beats[-1]]))
    return np.array(beats[::-1])


def beat_positions(flux, rate):
    """(period in frames, each frame's clock position 0..POSITIONS-1 within
    its beat) of one sequence from its frames' mel flux."""
    e = (flux - flux.mean()) / max(flux.std(), 1e-12)
    period = beat_period(e, rate)
    beats = track_beats(e, period)
    t = np.arange(len(e), dtype=np.float64)
    count = np.interp(t, beats, np.arange(len(beats)), left=np.nan, right=np.nan)
    count = np.where(t < beats[0], (t - beats[0]) / period, count)
    count = np.where(t > beats[-1], len(beats) - 1 + (t - beats[-1]) / period, count)
    return period, (np.floor(np.mod(count, 1.0) * POSITIONS).astype(np.int64)) % POSITIONS


def metrical_path(voice, n, rng, weights, period):
    """The trial path: a per-frame chain of the duration-corrected
    transitions (with the end state, restarting from the start
    distribution at an end), each step's row weighted by ``weights``
    [POSITIONS, N] (P(position | state)) at the clock's position."""
    exc, N = voice.excitation, voice.params.n_states
    A = with_end(voice.transitions(), exc.end, exc.mean_run) if exc.end is not None else voice.transitions()
    K = A.shape[0]
    w = np.ones((POSITIONS, K))
    w[:, :N] = weights
    rows = [np.cumsum(A * w[m][None, :] / (A * w[m][None, :]).sum(1, keepdims=True), axis=1).tolist()
            for m in range(POSITIONS)]
    clock = (np.floor(np.arange(n) * POSITIONS / period).astype(np.int64) % POSITIONS).tolist()
    start = np.cumsum(voice.params.startprob).tolist()
    u = rng.random(n).tolist()
    out, s = np.empty(n, np.int64), N
    for t in range(n):
        s = bisect.bisect_left(start, u[t] * start[-1]) if s >= N else bisect.bisect_left(rows[clock[t]][s],
                                                                                         u[t] * rows[clock[t]][s][-1])
        s = min(s, K - 1)
        out[t] = s
    keep = out < N
    return out[keep] if keep.any() else out[:1] * 0


def rows(model, train, args):
    """(label, list of audio) per row."""
    c, hop, rate, p = model.corpus, model.hop_size, model.sample_rate, model.lpc_order
    voice, off = model.voice(), c.sequence_offsets
    rng = np.random.default_rng(args.seed)
    X, paths = c.data(), DecodedPaths(voice, c)
    n = [int(s) for s in c.sequence_samples]
    seqs = [slice(off[i], off[i + 1]) for i in range(len(n))]
    yield "training audio", train
    noise = [rng.standard_normal((r.stop - r.start, hop)) for r in seqs]
    yield "noise at residual level, analysis filters", [
        rebuild_signal(c.lpc_coefficients[r], w * np.sqrt(np.mean(c.residual_signals[r].astype(np.float64) ** 2, 1,
                                                                 keepdims=True)), k, hop)
        for r, w, k in zip(seqs, noise, n)]
    rendered, unlevelled = [], []
    for r, w, k in zip(seqs, noise, n):
        refl = np.clip(reflection_from_lar(X[r, :p]), -0.999999, 0.999999)
        y, _ = kernels.lpc_synthesis_smooth(w.reshape(-1), refl, X[r, p].astype(np.float64), hop, block=16)
        unlevelled.append(y[:k].copy())
        kernels.synth.level(y, X[r, p].astype(np.float64), hop, max_ratio=100.0, out=y)
        rendered.append(y[:k])
    yield "noise, synthesis kernel alone", unlevelled
    yield "noise, renderer (kernel + level step)", rendered
    yield "copy-synthesis, Karplus-Strong", bq.copy_synthesis(model)
    yield "copy-synthesis, noise", bq.copy_synthesis(model, "noise")
    for run in range(args.runs):
        g = np.random.default_rng([args.seed, run])
        yield "decoded path, model's frames", [render_model(voice, paths(i), "karplus-strong", g)[0][:k]
                                               for i, k in enumerate(n)]
        yield "fidelity 0", [render_model(voice, model_path(voice, -(-k // hop), g), "karplus-strong", g)[0][:k]
                             for k in n]
    flux = c.perceptual_features[:, -2].astype(np.float64)
    grids = [beat_positions(flux[r], rate / hop) for r in seqs]
    counts = np.ones((POSITIONS, model.n_states))
    for i, (_, pos) in enumerate(grids):
        np.add.at(counts, (pos, paths(i)), 1.0)
    weights = counts / counts.sum(axis=0, keepdims=True)
    for run in range(args.runs):
        g = np.random.default_rng([args.seed, run, 1])
        yield "trial metrical path", [
            render_model(voice, metrical_path(voice, -(-k // hop), g, weights, grids[int(g.integers(len(grids)))][0]),
                         "karplus-strong", g)[0][:k] for k in n]


def bench(path, args):
    train, _, _ = bq.load_corpus([path], args.rate)
    model = ssgs.SpectralStateGuidedSynthesis(seed=args.seed)
    model.train(train, args.rate, n_em_iterations=20)
    ref = bq.reference(train, args.rate)
    print(f"\n{os.path.basename(path)} at {args.rate} Hz (beat period {ref.lag * bq.HOP / bq.SR:.3f} s)")
    print(f"{'':44s}{'beat':>7s}{'FMD':>8s}")
    pooled = {}
    for label, audio in rows(model, train, args):
        audio = bq.at_measure_rate([np.asarray(a, np.float64) for a in audio], args.rate)
        m, mel = bq.measures(audio, ref.lag), bq.log_mel(audio)
        pooled.setdefault(label, []).append((m, mel))
    for label, runs in pooled.items():
        m = [r[0] for r in runs]
        fmd = bq.frechet(np.concatenate([r[1] for r in runs]), ref.mel)
        print(f"{label:44s}{bq.beat(None, m)[1]:7.2f}{fmd:8.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", help="audio files (default: each extremetuxracer piece over 60 s)")
    parser.add_argument("--rate", type=int, default=bq.SR)
    parser.add_argument("--runs", type=int, default=4, help="seeds of each generated row")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    files = args.files or [p for name, ps in bq.etr_corpora() if name != "all-pieces" for p in ps]
    for path in files:
        if not os.path.isfile(path):
            parser.error(f"no such file: {path}")
        bench(path, args)


if __name__ == "__main__":
    main()
