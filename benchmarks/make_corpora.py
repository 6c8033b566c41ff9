"""Write the corpora the quality figures in the README are measured on.

    python benchmarks/make_corpora.py OUT            # OUT/speech and OUT/songs
    python benchmarks/bench_quality.py OUT/speech
    python benchmarks/bench_quality.py OUT/songs
    python benchmarks/bench_quality.py /usr/share/sounds/alsa --n-states 8

speech: twelve sentences spoken by espeak-ng (``apt-get install espeak-ng``)
as two paragraphs of six, one read by a male voice (en-us), one by a female
voice (en-us+f3); 22.05 kHz mono wav, about 26 s each. Paragraphs, not a
file per sentence, so the held-out middle fifth of each file holds speech and
the pauses between sentences in about the proportion the rest does (a file
per sentence puts the trailing silence in the training part only, and the
held-out excerpts' FMD measures that instead: 684 against 40 here).
songs: the first four minutes of benchmarks/bench_train.py's MP3 corpus
(plucked melody, pad, drums and a sung line in every song), written as wav.
The alsa words come with Debian's alsa-utils.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

import soundfile as sf

SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "She sells sea shells by the sea shore every summer morning.",
    "A journey of a thousand miles begins with a single step forward.",
    "Please call Stella and ask her to bring these things from the store.",
    "The rain in Spain stays mainly in the plain, or so they say.",
    "Six thick thistle sticks were stacked beside the old wooden fence.",
    "We measured the distance twice before we cut the long copper wire.",
    "Bright sunlight poured through the window onto the kitchen table.",
    "How much wood would a woodchuck chuck if a woodchuck could chuck wood?",
    "Every autumn the geese fly south in long and noisy formations.",
    "The orchestra tuned their instruments while the audience waited quietly.",
    "Never judge a book by its cover, but do read the first page.",
)
VOICES = ("en-us", "en-us+f3")


def write_speech(folder):
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is not installed (apt-get install espeak-ng)")
    os.makedirs(folder, exist_ok=True)
    half = len(SENTENCES) // len(VOICES)
    for i, voice in enumerate(VOICES):
        path = os.path.join(folder, f"paragraph_{i}.wav")
        text = " ".join(SENTENCES[i * half:(i + 1) * half])
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", path, text], check=True)


def write_songs(folder, minutes=4):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_train import SONG_SECONDS, make_song

    os.makedirs(folder, exist_ok=True)
    for i in range(int(minutes * 60 // SONG_SECONDS)):
        sf.write(os.path.join(folder, f"song_{i:03d}.wav"), make_song(i), 44100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="folder to write speech/ and songs/ into")
    args = parser.parse_args(argv)
    write_speech(os.path.join(args.out, "speech"))
    write_songs(os.path.join(args.out, "songs"))
    print(f"wrote {args.out}/speech and {args.out}/songs")


if __name__ == "__main__":
    main()
