"""Train with checkpoints along the way, then resume from one.

    python examples/train_and_resume.py [AUDIO_FOLDER] [--out models/]

Without a folder it trains on the built-in demo corpus.
"""

import argparse
import tempfile

import numpy as np

from ssgs import SpectralStateGuidedSynthesis
from ssgs.demo import write_demo_corpus
from ssgs.scan import scan_folders

parser = argparse.ArgumentParser()
parser.add_argument("folder", nargs="?")
parser.add_argument("--out", default="models")
parser.add_argument("--n-states", type=int, default=16)
args = parser.parse_args()

folder = args.folder or write_demo_corpus(tempfile.mkdtemp())[0].rsplit("/", 1)[0]
files = scan_folders([folder]).files

# Train for 6 iterations, saving a checkpoint every 3.
model = SpectralStateGuidedSynthesis(n_states=args.n_states, seed=1, tol=0)
model.extract_features_from_files(files, sample_rate=16000)
model.initialize_hmm_parameters()


def save_every_three(m, record):
    if m.iteration % 3 == 0:
        m.save_checkpoint(f"{args.out}/checkpoint_epoch_{m.iteration}.safetensors")


model.iterative_refinement(6, callback=save_every_three)

# Resume from iteration 3 (the audio is not needed: the checkpoint has the
# training artifacts) and run to 6 again: the result is bit-identical.
resumed = SpectralStateGuidedSynthesis.load_checkpoint(f"{args.out}/checkpoint_epoch_3.safetensors")
resumed.iterative_refinement(6 - resumed.iteration)
assert np.array_equal(resumed.state_covariances, model.state_covariances)
print(f"resumed from iteration 3 to {resumed.iteration}: identical to the uninterrupted run")
print(f"log-likelihood per frame: {resumed.training_history[-1]['log_likelihood']:.4f}")
