"""The ssgs command: info, verify, report, and the train/generate pass-through."""

import json
import subprocess
import sys

import numpy as np
import pytest
from commands import command
from signals import music_like

from ssgs import SpectralStateGuidedSynthesis

run_ssgs = command("ssgs.cli")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    rng = np.random.default_rng(8)
    model = SpectralStateGuidedSynthesis(n_states=6, seed=4).train([music_like(rng, 4.0), music_like(rng, 3.0)],
                                                                     16000, 4)
    full = model.save_checkpoint(folder / "full.safetensors")
    small = model.save_checkpoint(folder / "small.safetensors", include_training_artifacts=False)
    return model, folder, full, small


def test_info_human_and_json(checkpoints):
    model, folder, full, small = checkpoints
    proc = run_ssgs("info", full)
    assert proc.returncode == 0, proc.stderr
    for text in ("6 states", "LPC order 12", "4 EM iteration(s)", "2 sequence(s), 7.0 s of audio",
                 "artifacts  yes", "adaptive statistics no"):
        assert text in proc.stdout, proc.stdout
    info = json.loads(run_ssgs("info", small, "--json").stdout)
    assert info["config"]["n_states"] == 6 and info["training"]["iteration"] == 4
    assert info["has_training_artifacts"] is False and info["sources"]["count"] == 2
    assert len(info["training"]["log_likelihood_per_frame"]) == 4
    assert info["tensor_bytes"]["training artifacts"] == 0 and info["tensor_bytes"]["parameters"] > 0
    assert info["file_bytes"] == (folder / "small.safetensors").stat().st_size


def test_verify_exit_codes(checkpoints, tmp_path):
    _, folder, full, small = checkpoints
    ok = run_ssgs("verify", full, small)
    assert ok.returncode == 0 and ok.stdout.count("OK") == 2
    bad = tmp_path / "bad.safetensors"
    data = bytearray(open(full, "rb").read())
    data[len(data) // 2] ^= 0x04
    bad.write_bytes(bytes(data))
    proc = run_ssgs("verify", full, bad, tmp_path / "missing.safetensors")
    assert proc.returncode == 1
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("OK") and lines[1].startswith("FAILED")
    assert "SHA-256" in lines[1] and "no such checkpoint" in lines[2]


def test_report_png(checkpoints, tmp_path):
    _, _, full, small = checkpoints
    for ckpt in (full, small):
        out = tmp_path / (ckpt.split("/")[-1] + ".png")
        proc = run_ssgs("report", ckpt, "-o", out, "--seconds", "2")
        assert proc.returncode == 0, proc.stderr
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000


def test_pass_through_and_errors(checkpoints, tmp_path):
    _, folder, full, _ = checkpoints
    proc = run_ssgs("generate", full, "-o", tmp_path / "g.wav", "--duration", "0.5", "--seed", "1")
    assert proc.returncode == 0 and "wrote" in proc.stdout
    assert run_ssgs("train", "--help").returncode == 0
    assert run_ssgs("info", tmp_path / "none.safetensors").returncode == 2
    assert run_ssgs("info", tmp_path).returncode == 2  # a folder: a mistake in the command, like a missing file
    assert run_ssgs().returncode == 2
    assert run_ssgs("bogus").returncode == 2


def test_the_console_script_is_installed():
    import os
    import shutil

    script = shutil.which("ssgs") or os.path.join(os.path.dirname(sys.executable), "ssgs")
    proc = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "info" in proc.stdout and "verify" in proc.stdout

