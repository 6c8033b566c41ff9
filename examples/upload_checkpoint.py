"""Save a checkpoint to object storage and load it back, through an fsspec URL.

    python examples/upload_checkpoint.py CHECKPOINT URL

URL is anything fsspec understands: s3://bucket/key.safetensors (pip install
"ssgs[s3]"; credentials and endpoint from the usual AWS variables),
gs://..., memory://... The write is verified before the upload, and the
upload is a single put, so readers never see half a file.
"""

import argparse

import numpy as np

from ssgs import SpectralStateGuidedSynthesis

parser = argparse.ArgumentParser()
parser.add_argument("checkpoint")
parser.add_argument("url")
args = parser.parse_args()

model = SpectralStateGuidedSynthesis.load_checkpoint(args.checkpoint)
model.save_checkpoint(args.url)
back = SpectralStateGuidedSynthesis.load_checkpoint(args.url)  # verified on load
assert np.array_equal(back.state_means, model.state_means)
print(f"uploaded {args.checkpoint} to {args.url} and read it back: {back.n_states} states, "
      f"iteration {back.iteration}")
