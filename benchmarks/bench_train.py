"""End-to-end `python -m ssgs.train` on a generated corpus of 44.1 kHz stereo MP3.

    python benchmarks/bench_train.py                 # 10 minutes of audio
    python benchmarks/bench_train.py --minutes 60    # one hour
    python benchmarks/bench_train.py --corpus DIR    # your own folder

Reports wall time, peak resident memory of the training process, its time per
phase, and beside them the time to merely decode the same MP3 files (the floor
any trainer pays). Figures, never pass/fail. The corpus is cached in
--cache (default: ~/.cache/ssgs-bench) so a second run skips the encoding.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile as sf

from ssgs import demo

SONG_SECONDS = 60


def make_song(seed, sr=44100, seconds=SONG_SECONDS):
    """A minute of music-like stereo: plucked melody, pad, drums and a sung line."""
    rng = np.random.default_rng(seed)
    plucked = demo.plucked(rng, sr, seconds)
    pad = demo.pad(rng, sr, seconds)
    drums = demo.drums(rng, sr, seconds)
    voice = demo.voice(rng, sr, seconds)
    n = min(len(plucked), len(pad), len(drums), len(voice))
    gains = rng.uniform(0.4, 1.0, 4)
    left = gains[0] * plucked[:n] + gains[1] * pad[:n, 0] + gains[2] * drums[:n] + 0.6 * gains[3] * voice[:n]
    right = gains[0] * np.roll(plucked[:n], 300) + gains[1] * pad[:n, 1] + gains[2] * drums[:n] + 0.4 * gains[3] * voice[:n]
    out = np.stack([left, right], axis=1)
    return (0.8 * out / np.abs(out).max()).astype(np.float32)


def ensure_corpus(folder, minutes):
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(int(np.ceil(minutes * 60 / SONG_SECONDS))):
        path = os.path.join(folder, f"song_{i:03d}.mp3")
        if not os.path.exists(path):
            tmp = path + ".part.mp3"
            sf.write(tmp, make_song(i), 44100)
            os.replace(tmp, path)
        paths.append(path)
    return paths


def decode_only(paths):
    t0 = time.perf_counter()
    for p in paths:
        sf.read(p, dtype="float32")
    return time.perf_counter() - t0


MEASURE = """
import resource, subprocess, sys, time
t0 = time.perf_counter()
rc = subprocess.run(sys.argv[1:]).returncode
wall = time.perf_counter() - t0
print(rc, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--corpus", help="train on this folder instead of the generated corpus")
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/ssgs-bench"))
    parser.add_argument("--n-states", type=int, default=34)
    parser.add_argument("--n-iterations", type=int, default=20)
    args = parser.parse_args(argv)

    if args.corpus:
        folder = args.corpus
        paths = [os.path.join(folder, f) for f in sorted(os.listdir(folder))]
    else:
        folder = os.path.join(args.cache, f"mp3_44k_stereo_{args.minutes:g}min")
        t0 = time.perf_counter()
        paths = ensure_corpus(folder, args.minutes)
        print(f"corpus: {len(paths)} MP3 files in {folder} (ready in {time.perf_counter() - t0:.1f} s)")

    decode = min(decode_only(paths) for _ in range(2))
    with tempfile.TemporaryDirectory() as out:
        summary = os.path.join(out, "summary.json")
        cmd = [sys.executable, "-m", "ssgs.train", "--folders", folder, "--n-states", str(args.n_states),
               "--n-iterations", str(args.n_iterations), "--tol", "0", "--seed", "0", "--checkpoint-dir",
               os.path.join(out, "models"), "--summary-json", summary, "-q"]
        line = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True).stdout.split()
        rc, wall, rss_kb = int(line[0]), float(line[1]), int(line[2])
        if rc != 0:
            sys.exit(f"training failed with exit code {rc}")
        with open(summary) as f:
            info = json.load(f)
        sizes = {name: os.path.getsize(os.path.join(out, "models", name))
                 for name in os.listdir(os.path.join(out, "models"))}

    audio_s = info["seconds_of_audio"]
    print(f"\npython -m ssgs.train: {audio_s / 60:.1f} min of 44.1 kHz stereo MP3, {info['frames']:,} frames, "
          f"{args.n_states} states, {info['iterations']} EM iterations")
    print(f"  wall time           {wall:8.2f} s   ({audio_s / wall:,.0f}x real time)")
    print(f"  peak memory (RSS)   {rss_kb / 1024:8.0f} MB")
    print(f"  decoding alone      {decode:8.2f} s   (soundfile, same files, in this process)")
    for phase, sec in info["timings"].items():
        print(f"    {phase:<18s}{sec:8.2f} s")
    final = sizes.get("checkpoint_final.safetensors", 0)
    print(f"  checkpoint_final    {final / 1e6:8.1f} MB  ({final / audio_s / 1e3:.1f} KB per second of audio)")


if __name__ == "__main__":
    main()
