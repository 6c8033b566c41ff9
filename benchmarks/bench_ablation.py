"""What each stage of fidelity-0 synthesis buys: every stage off in turn
against all on, on one model per corpus, the same seeds for every row.

    python benchmarks/bench_ablation.py /tmp/corpora/speech
    python benchmarks/bench_ablation.py /usr/share/games/etr/music/spunkyrace-ks.ogg --seconds 60 --runs 8
    python benchmarks/bench_ablation.py --etr --seconds 60 --runs 8

The corpus is read, held out and measured as benchmarks/bench_quality.py
does (the same yardsticks, at 16 kHz mono: pooled and median FMD against the
training audio, loudness spread, harmonicity, beat at the training's period,
dropouts). The model is trained once; a stage is turned off by taking its
fitted table out of the model's excitation model, which makes the model
generate as a checkpoint without that table does (each stage's fallback,
kept for older checkpoints). Each row is --runs generations with the
Karplus-Strong string, the seeds shared by all rows, so rows differ by the
stage alone. A stage pays its way when turning it off moves the figures
away from the training's on some corpus without bringing them closer on
another (docs/ablation.md).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

import bench_quality as bq
import ssgs

# stage -> the excitation-model fields whose absence turns it off
STAGES = {
    "chain ends": ("end",),
    "duration correction": ("mean_run",),
    "run-length quantiles": ("run_quantiles",),
    "silence retiming": ("silence_runs", "silence_rate"),
    "frame smoother": ("smoother",),
    "voicing calibration": ("voicing_offset",),
    "equaliser": ("equaliser",),
    "shape regression": ("shape_regression",),
    "shape variation": ("shape_components", "shape_spread", "shape_correlation", "shape_regression"),
    "residual shapes": ("residual_shape", "shape_components", "shape_spread", "shape_correlation",
                        "shape_regression"),
    "pitch leaps": ("pitch_leaps",),
    "pitch motion": ("pitch_motion", "pitch_leaps"),
}


def without(model, fields):
    """Take ``fields`` out of the model's excitation model; returns what to
    put back."""
    exc = model.excitation_model
    saved = {f: getattr(exc, f) for f in fields}
    for f in fields:
        setattr(exc, f, None)
    return saved


def put_back(model, saved):
    for f, value in saved.items():
        setattr(model.excitation_model, f, value)


def row(model, ref, lengths, seeds):
    """The yardsticks of ``len(seeds)`` runs (one clip per length each)."""
    rate = model.sample_rate
    mels, sets = [], []
    for seed in seeds:
        clips = [model.generate(n / rate, rate, fidelity=0.0, excitation_type="Karplus-Strong", seed=int(seed))
                 .astype(np.float64) for n in lengths]
        clips = bq.at_measure_rate(clips, rate)
        mels.append(bq.log_mel(clips))
        sets.append(bq.measures(clips, ref.lag))
    per_run = [bq.frechet(m, ref.mel) for m in mels]
    pooled = bq.frechet(np.concatenate(mels), ref.mel)
    median_beat, _ = bq.beat(None, sets)
    return dict(pooled=pooled, median=float(np.median(per_run)), loudness=bq.loudness_spread(None, sets),
                harmonicity=bq.harmonicity(None, sets), beat=median_beat,
                dropouts=bq.dropout_share(ref.floor_db, m=sets))


def show(label, r):
    print(f"{label:28s}{r['pooled']:9.1f}{r['median']:9.1f}{r['loudness']:9.1f} dB{r['harmonicity']:9.3f}"
          f"{r['beat']:8.2f}{100 * r['dropouts']:9.1f}%")


def ablate(name, files, args):
    train, held, _ = bq.load_corpus(files, args.rate)
    model = ssgs.SpectralStateGuidedSynthesis(n_states=args.n_states, seed=args.seed)
    model.train(train, args.rate, n_em_iterations=args.n_iterations)
    ref = bq.reference(train, args.rate)
    lengths = [len(h) for h in held] if args.seconds is None else [round(args.seconds * args.rate)] * len(held)
    seeds = np.random.default_rng(args.seed).integers(2**31, size=args.runs)
    print(f"\ncorpus: {name} ({len(files)} files, {sum(map(len, train)) / args.rate:.1f} s training); "
          f"{model.n_states} states at {args.rate} Hz; {args.runs} runs of "
          + ("the held-out lengths" if args.seconds is None else f"{args.seconds:g} s"))
    print(f"{'':28s}{'FMD':>9s}{'median':>9s}{'loudness':>12s}{'harmon.':>9s}{'beat':>8s}{'dropouts':>10s}")
    train_m = bq.measures(ref.train, ref.lag)
    show("training audio", dict(pooled=0.0, median=0.0, loudness=bq.loudness_spread(None, train_m),
                                harmonicity=bq.harmonicity(None, train_m), beat=bq.beat(None, train_m)[0],
                                dropouts=bq.dropout_share(ref.floor_db, m=train_m)))
    show("all stages", row(model, ref, lengths, seeds))
    for stage, fields in STAGES.items():
        if all(getattr(model.excitation_model, f) is None for f in fields):
            print(f"{'without ' + stage:28s}  (not fitted for this corpus)")
            continue
        saved = without(model, fields)
        try:
            show("without " + stage, row(model, ref, lengths, seeds))
        finally:
            put_back(model, saved)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="?", help="folder of audio, or one file (default: the demo corpus)")
    parser.add_argument("--etr", action="store_true", help="each extremetuxracer piece over 60 s")
    parser.add_argument("--n-states", type=int, default=34)
    parser.add_argument("--n-iterations", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--seconds", type=float, help="every clip this long (default: the held-out lengths)")
    parser.add_argument("--rate", type=int, default=bq.SR)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        qargs = argparse.Namespace(etr=args.etr, corpus=args.corpus)
        for name, files in bq.corpora(qargs, tmp):
            if name == "all-pieces":
                continue
            ablate(os.path.basename(name), files, args)


if __name__ == "__main__":
    main()
