"""The ``ssgs generate`` command (``python -m ssgs.generate``), run as a user runs it."""

import os

import corpora
import numpy as np
import pytest
import soundfile as sf
from commands import command

SR = 16000


@pytest.fixture(scope="module")
def audio():
    return corpora.music_audio()


@pytest.fixture(scope="module")
def model(audio):
    return corpora.music_model(audio)


def snr_db(ref, est):
    return 10 * np.log10(np.sum(ref**2) / max(np.sum((ref - est) ** 2), 1e-300))


run_generate = command("ssgs.generate", timeout=120)


def test_generate_cli(model, audio, tmp_path):
    ckpt = tmp_path / "m.safetensors"
    model.save_checkpoint(ckpt)
    out = tmp_path / "out.wav"
    proc = run_generate(ckpt, "-o", out, "--duration", "1.5", "--fidelity", "1", "--start", "1:0.5", "--seed", "1",
                        "--subtype", "FLOAT")
    assert proc.returncode == 0, proc.stderr
    assert "audio[1] at 0.50 s" in proc.stdout
    y, sr = sf.read(out)
    assert sr == SR and len(y) == int(1.5 * SR)
    assert snr_db(audio[1][SR // 2 : SR // 2 + len(y)], y) >= 60
    proc = run_generate(ckpt, "-o", tmp_path / "syn.flac", "--duration", "1", "--excitation", "wavelet", "--seed", "3",
                        "--sample-rate", "22050")
    assert proc.returncode == 0, proc.stderr
    assert sf.info(tmp_path / "syn.flac").samplerate == 22050


def test_replayed_audio_over_full_scale_is_written_exactly(tmp_path):
    """Fidelity 1 on a source over full scale (1.06, as MP3 decoders give):
    a .wav is written as float, so the file holds it exactly; a .flac
    (integer samples) is written with a warning that it clips."""
    rng = np.random.default_rng(3)
    x = np.tanh(2 * sum(corpora.music_like(rng, 4.0) for _ in range(3)))
    x = 1.06 * x / np.abs(x).max()
    from ssgs import SpectralStateGuidedSynthesis

    ckpt = SpectralStateGuidedSynthesis(n_states=4, seed=1).train([x], SR, n_em_iterations=2).save_checkpoint(
        tmp_path / "loud.safetensors")
    proc = run_generate(ckpt, "-o", tmp_path / "out.wav", "--duration", "3.5", "--fidelity", "1", "--start", "0:0")
    assert proc.returncode == 0, proc.stderr
    assert "written as 32-bit float" in proc.stderr
    y, _ = sf.read(tmp_path / "out.wav")
    assert sf.info(tmp_path / "out.wav").subtype == "FLOAT"
    kept = SpectralStateGuidedSynthesis.load_checkpoint(ckpt).rebuild_sequence(0)[: len(y)]
    assert np.array_equal(y, kept.astype(np.float32)) and np.abs(y).max() > 1.05  # the kept audio, as it is
    assert snr_db(x[: len(y)], y) >= 80
    proc = run_generate(ckpt, "-o", tmp_path / "out.flac", "--duration", "3.5", "--fidelity", "1", "--start", "0:0")
    assert proc.returncode == 0 and "PCM_24 clips it" in proc.stderr


@pytest.mark.parametrize("case,code,message", [
    ("missing", 2, "no such checkpoint"),
    ("excitation", 2, "excitation_type must be one of"),
    ("fidelity", 2, r"fidelity must be in"),
    ("start", 2, "expected FILE_INDEX:SECONDS"),
    ("no_artifacts", 2, "training artifacts"),
    ("corrupt", 1, "does not match its SHA-256"),
    ("output", 2, "output folder"),
])
def test_generate_cli_errors(model, tmp_path, case, code, message):
    ckpt = tmp_path / "m.safetensors"
    model.save_checkpoint(ckpt, include_training_artifacts=case != "no_artifacts")
    args = [ckpt, "-o", tmp_path / "o.wav", "--duration", "0.5"]
    if case == "missing":
        args[0] = tmp_path / "nope.safetensors"
    elif case == "excitation":
        args += ["--excitation", "sine"]
    elif case == "fidelity":
        args += ["--fidelity", "2"]
    elif case == "start":
        args += ["--start", "zero"]
    elif case == "no_artifacts":
        args += ["--fidelity", "0.5"]
    elif case == "corrupt":
        data = bytearray(ckpt.read_bytes())
        data[-5] ^= 0x01
        ckpt.write_bytes(bytes(data))
    elif case == "output":
        args[2] = tmp_path / "no" / "such" / "dir" / "o.wav"
    proc = run_generate(*args)
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert message in proc.stderr or (case == "start" and message in proc.stderr), proc.stderr
    assert not os.path.exists(tmp_path / "o.wav")
