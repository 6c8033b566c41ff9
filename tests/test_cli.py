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
                 "artifacts  yes (the training audio, FLAC: 16-bit, 24 where a file needs it)", "adaptive statistics no"):
        assert text in proc.stdout, proc.stdout
    info = json.loads(run_ssgs("info", small, "--json").stdout)
    assert info["config"]["n_states"] == 6 and info["training"]["iteration"] == 4
    assert info["has_training_artifacts"] is False and info["sources"]["count"] == 2
    assert info["training_audio"] is None
    assert json.loads(run_ssgs("info", full, "--json").stdout)["training_audio"] == "coded"
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



def crafted(path, header, data=b""):
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


def test_verify_reports_every_file_and_carries_on_past_malformed_ones(checkpoints, tmp_path):
    """Malformed files of every kind between two whole ones: one line each,
    in order, and exit 1."""
    _, _, full, small = checkpoints
    shape = crafted(tmp_path / "shape.safetensors",
                    {"x": {"dtype": "F64", "shape": [2**40, 2**40], "data_offsets": [0, 0]}})
    huge = crafted(tmp_path / "huge.safetensors", {"x": {"dtype": "U8", "shape": [2**70], "data_offsets": [0, 0]}})
    nested = tmp_path / "nested.safetensors"
    nested.write_bytes((200_000).to_bytes(8, "little") + b"[" * 100_000 + b"]" * 100_000)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(open(full, "rb").read()[:-100])
    bad = [shape, huge, nested, cut]
    proc = run_ssgs("verify", full, *bad, small)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 6, (proc.stdout, proc.stderr)
    assert lines[0].startswith(f"OK      {full}") and lines[-1].startswith(f"OK      {small}")
    for line, path, fault in zip(lines[1:5], bad, ["0 bytes for shape", "0 bytes for shape", "corrupt header",
                                                    "truncated"]):
        assert line.startswith(f"FAILED  {path}: ") and fault in line, line
    assert proc.stderr == ""


def damaged_copies(full, folder):
    data = open(full, "rb").read()
    flipped = bytearray(data)
    flipped[-10] ^= 0x01  # a residual sample: the header is whole, the data's digest is not
    (folder / "flipped.safetensors").write_bytes(bytes(flipped))
    (folder / "cut.safetensors").write_bytes(data[:-100])
    return {"flipped": (folder / "flipped.safetensors", "tensor data does not match its SHA-256"),
            "cut": (folder / "cut.safetensors", "truncated")}


@pytest.mark.parametrize("damage", ["flipped", "cut"])
def test_info_on_a_damaged_file_says_so_and_exits_1(checkpoints, tmp_path, damage):
    """Without --force: one line naming the file and the fault, exit 1.
    With it: what the header holds, a line saying what is wrong, still 1."""
    _, _, full, _ = checkpoints
    path, fault = damaged_copies(full, tmp_path)[damage]
    proc = run_ssgs("info", path)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith(f"ssgs info: error: {path}: ") and fault in proc.stderr
    assert proc.stderr.count("\n") == 1 and "--force" in proc.stderr
    forced = run_ssgs("info", path, "--force")
    assert forced.returncode == 1, forced.stderr
    assert "6 states" in forced.stdout and "4 EM iteration(s)" in forced.stdout
    damaged = [line for line in forced.stdout.splitlines() if line.strip().startswith("DAMAGED")]
    assert len(damaged) == 1 and fault in damaged[0]
    as_json = run_ssgs("info", path, "--force", "--json")
    info = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and fault in info["damaged"] and info["config"]["n_states"] == 6
    whole = run_ssgs("info", full, "--force", "--json")
    assert whole.returncode == 0 and json.loads(whole.stdout)["damaged"] is None


def test_info_sizes_are_the_tensors_bytes(checkpoints):
    """The sizes by group add up to the data: the file less its header."""
    _, _, full, _ = checkpoints
    info = json.loads(run_ssgs("info", full, "--json").stdout)
    data = open(full, "rb").read()
    header = int.from_bytes(data[:8], "little")
    assert sum(info["tensor_bytes"].values()) == len(data) - 8 - header


@pytest.mark.parametrize("command, argv", [("train", ["--n-states", "0", "--checkpoint-dir", "x"]),
                                           ("generate", ["missing.safetensors", "-o", "o.wav"])])
def test_train_and_generate_errors_name_the_command_as_typed(command, argv, tmp_path):
    proc = run_ssgs(command, *[tmp_path / a if a.endswith(("x", ".safetensors")) else a for a in argv])
    assert proc.returncode == 2 and proc.stderr.startswith(f"ssgs {command}: error: "), proc.stderr
