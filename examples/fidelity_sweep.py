"""Write the same passage at fidelity 0, 0.25, 0.5, 0.75 and 1 to wav files.

    python examples/fidelity_sweep.py CHECKPOINT [--out sweep/] [--seconds 4]

The checkpoint needs its training artifacts (fidelity > 0 follows the
training audio); python -m ssgs.train writes such checkpoints by default.
"""

import argparse
import os

import soundfile as sf

from ssgs import SpectralStateGuidedSynthesis

parser = argparse.ArgumentParser()
parser.add_argument("checkpoint")
parser.add_argument("--out", default="sweep")
parser.add_argument("--seconds", type=float, default=4.0)
parser.add_argument("--seed", type=int, default=1)
args = parser.parse_args()

model = SpectralStateGuidedSynthesis.load_checkpoint(args.checkpoint)
os.makedirs(args.out, exist_ok=True)
start = (0, 0.0)  # the first training file, from its beginning
for fidelity in (0.0, 0.25, 0.5, 0.75, 1.0):
    audio, details = model.generate(args.seconds, fidelity=fidelity, start=start, seed=args.seed,
                                    return_details=True)
    path = os.path.join(args.out, f"fidelity_{fidelity:.2f}.wav")
    sf.write(path, audio, model.sample_rate)
    where = f" from {details.source_path}" if details.source_path else ""
    print(f"{path}: {len(audio) / model.sample_rate:.1f} s{where}")
