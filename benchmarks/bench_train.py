"""End-to-end `python -m ssgs.train` on a generated corpus of 44.1 kHz stereo MP3.

    python benchmarks/bench_train.py                 # 10 minutes of audio
    python benchmarks/bench_train.py --minutes 60    # one hour
    python benchmarks/bench_train.py --minutes 600   # ten hours (two-minute files
                                                     # joined from the hour's songs)
    python benchmarks/bench_train.py --minutes 18 --in-memory  # also the corpus held in memory
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
import struct
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


BASE_SONGS = 60  # beyond an hour, files are two of the hour's songs joined
_XING_FRAME = 417  # the first frame of libsndfile's MP3 (128 kbit/s at 44.1 kHz): the Xing header


def _xing(data):
    """(position of the Xing tag, frames it counts) in an MP3's first frame."""
    at = data.index(b"Xing", 0, _XING_FRAME)
    flags = struct.unpack(">I", data[at + 4:at + 8])[0]
    if flags & 3 != 3:
        raise ValueError("the Xing header does not count frames and bytes")
    return at, struct.unpack(">I", data[at + 8:at + 12])[0]


def join_mp3(parts):
    """MP3 files end to end as one stream: the first file's Xing header with
    the frames and bytes of all, then every file's audio frames (a decoder
    stops where the header's count says, so it must count them all)."""
    head = bytearray(parts[0][:_XING_FRAME])
    at, _ = _xing(head)
    body = b"".join(p[_XING_FRAME:] for p in parts)
    head[at + 8:at + 12] = struct.pack(">I", sum(_xing(p)[1] for p in parts))
    head[at + 12:at + 16] = struct.pack(">I", _XING_FRAME + len(body))
    return bytes(head) + body


def ensure_long_corpus(folder, minutes, cache):
    """Two-minute files, each two different songs of the hour's corpus joined
    (no pair twice), so every file is still decoded in full."""
    songs = ensure_corpus(os.path.join(cache, f"mp3_44k_stereo_{BASE_SONGS}min"), BASE_SONGS)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for j in range(int(np.ceil(minutes / 2))):
        a = j % BASE_SONGS
        b = (a + 1 + j // BASE_SONGS) % BASE_SONGS
        path = os.path.join(folder, f"joined_{j:04d}.mp3")
        if not os.path.exists(path):
            parts = [open(songs[k], "rb").read() for k in (a, b)]
            with open(path + ".part", "wb") as f:
                f.write(join_mp3(parts))
            os.replace(path + ".part", path)
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
    parser.add_argument("--in-memory", action="store_true",
                        help="also train with the corpus held in memory (--in-memory), in the same run")
    parser.add_argument("--no-decode", action="store_true", help="skip timing the decoding alone")
    args = parser.parse_args(argv)

    if args.corpus:
        folder = args.corpus
        paths = [os.path.join(folder, f) for f in sorted(os.listdir(folder))]
    else:
        folder = os.path.join(args.cache, f"mp3_44k_stereo_{args.minutes:g}min")
        t0 = time.perf_counter()
        paths = (ensure_corpus(folder, args.minutes) if args.minutes <= BASE_SONGS
                 else ensure_long_corpus(folder, args.minutes, args.cache))
        print(f"corpus: {len(paths)} MP3 files in {folder} (ready in {time.perf_counter() - t0:.1f} s)")

    decode = None if args.no_decode else min(decode_only(paths) for _ in range(2))
    for extra in ([], ["--in-memory"]) if args.in_memory else ([],):
        report(train(folder, args, extra), args, decode, extra)


def train(folder, args, extra):
    """Run the command once; (wall s, peak RSS KB, summary, checkpoint sizes)."""
    with tempfile.TemporaryDirectory() as out:
        summary = os.path.join(out, "summary.json")
        cmd = [sys.executable, "-m", "ssgs.train", "--folders", folder, "--n-states", str(args.n_states),
               "--n-iterations", str(args.n_iterations), "--tol", "0", "--seed", "0", "--checkpoint-dir",
               os.path.join(out, "models"), "--summary-json", summary, "-q", *extra]
        line = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True).stdout.split()
        rc, wall, rss_kb = int(line[0]), float(line[1]), int(line[2])
        if rc != 0:
            sys.exit(f"training failed with exit code {rc}")
        with open(summary) as f:
            info = json.load(f)
        sizes = {name: os.path.getsize(os.path.join(out, "models", name))
                 for name in os.listdir(os.path.join(out, "models"))}
    return wall, rss_kb, info, sizes


def report(result, args, decode, extra):
    wall, rss_kb, info, sizes = result
    audio_s = info["seconds_of_audio"]
    how = "corpus in memory (--in-memory)" if extra else "corpus on disk (--cache-dir, the default)"
    print(f"\npython -m ssgs.train, {how}: {audio_s / 60:.1f} min of 44.1 kHz stereo MP3, {info['frames']:,} "
          f"frames, {args.n_states} states, {info['iterations']} EM iterations")
    print(f"  wall time           {wall:8.2f} s   ({audio_s / wall:,.0f}x real time)")
    print(f"  peak memory (RSS)   {rss_kb / 1024:8.0f} MB")
    if decode is not None:
        print(f"  decoding alone      {decode:8.2f} s   (soundfile, same files, in this process)")
    for phase, sec in info["timings"].items():
        print(f"    {phase:<18s}{sec:8.2f} s")
    final = sizes.get("checkpoint_final.safetensors", 0)
    print(f"  checkpoint_final    {final / 1e6:8.1f} MB  ({final / audio_s / 1e3:.1f} KB per second of audio)")
    print(f"  checkpoints written {len([n for n in sizes if n.endswith('.safetensors')])}")

if __name__ == "__main__":
    main()
