"""Every script in examples/ runs (on tiny data)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from ssgs import SpectralStateGuidedSynthesis

from signals import music_like

EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "examples")


def run(script, *args, env=None):
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), *map(str, args)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(1)
    for i in range(2):
        sf.write(folder / f"a{i}.wav", music_like(rng, 2.5), 16000)
    ckpt = folder / "m.safetensors"
    model = SpectralStateGuidedSynthesis(n_states=4, seed=0).train([str(p) for p in sorted(folder.glob("*.wav"))],
                                                                    16000, 3)
    model.save_checkpoint(ckpt)
    return folder, ckpt


def test_train_and_resume(tiny, tmp_path):
    folder, _ = tiny
    out = run("train_and_resume.py", folder, "--out", tmp_path / "models", "--n-states", "4")
    assert "identical to the uninterrupted run" in out
    assert (tmp_path / "models" / "checkpoint_epoch_6.safetensors").exists()


def test_fidelity_sweep(tiny, tmp_path):
    _, ckpt = tiny
    out = run("fidelity_sweep.py", ckpt, "--out", tmp_path / "sweep", "--seconds", "1")
    files = sorted((tmp_path / "sweep").glob("*.wav"))
    assert len(files) == 5 and "fidelity_1.00.wav" in out
    assert all(sf.info(f).frames == 16000 for f in files)


def test_upload_checkpoint(tiny):
    _, ckpt = tiny
    out = run("upload_checkpoint.py", ckpt, "memory://examples/model.safetensors")
    assert "read it back: 4 states" in out


def test_upload_checkpoint_to_s3(tiny, s3_server):
    env, _ = s3_server
    _, ckpt = tiny
    out = run("upload_checkpoint.py", ckpt, "s3://ssgs-test/examples/model.safetensors", env=env)
    assert "read it back: 4 states" in out
