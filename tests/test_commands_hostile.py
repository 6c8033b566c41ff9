"""ssgs train and ssgs generate against a user's mistakes and a hostile
environment (issue 18): destinations that cannot be written, a folder that
holds another run, options that contradict a checkpoint, closed pipes,
containers with their own sample formats. Each test makes its own audio
and runs the command as a user does."""

import errno
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from commands import run_module
from signals import music_like

from ssgs import SpectralStateGuidedSynthesis

TINY = ["--n-states", "3", "--seed", "4", "--tol", "0", "-q"]


def run_train(*args, env=None, timeout=300):
    return run_module("ssgs.train", *args, env=env, timeout=timeout)


def run_generate(*args, timeout=120):
    return run_module("ssgs.generate", *args, timeout=timeout)


def error_lines(proc):
    return [ln for ln in proc.stderr.splitlines() if "error:" in ln]


def assert_one_line_error(proc, expected, code=2):
    """Exit ``code`` and exactly one error line holding ``expected``, in words
    (no exception class name)."""
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    errors = error_lines(proc)
    assert len(errors) == 1 and expected in errors[0], proc.stderr
    assert not re.search(r"\b[A-Z][A-Za-z]*(Error|Exception)\b", errors[0]), errors[0]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two short clips (2.5 s and 2 s at 16 kHz)."""
    folder = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(18)
    sf.write(folder / "a.wav", music_like(rng, 2.5), 16000)
    sf.write(folder / "b.wav", music_like(rng, 2.0), 16000)
    return folder


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """A 3-state run of 2 iterations with a checkpoint after each: its folder."""
    out = tmp_path_factory.mktemp("trained")
    proc = run_train("--folders", corpus, *TINY, "--n-iterations", "2", "--checkpoint-interval", "1",
                     "--checkpoint-dir", out)
    assert proc.returncode == 0, proc.stderr
    return out


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ---------------------------------------------------------------- 8: errors in words

def test_an_unexpected_os_error_is_reported_in_words(capsys):
    from ssgs._cli import run_reporting_errors

    def run():
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/models/checkpoint_final.safetensors")

    assert run_reporting_errors("ssgs train", run) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [f"ssgs train: error: /data/models/checkpoint_final.safetensors: "
                                f"{os.strerror(errno.ENOSPC)} (run with -v for the traceback)"]


# ---------------------------------------------------------------- 11: generate's containers and limits

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    rng = np.random.default_rng(11)
    model = SpectralStateGuidedSynthesis(n_states=4, seed=1).train([music_like(rng, 3.0)], 16000, 2)
    return model.save_checkpoint(tmp_path_factory.mktemp("ckpt") / "m.safetensors")


@pytest.mark.parametrize("name,subtype", [("o.ogg", "VORBIS"), ("o.oga", "VORBIS"), ("o.opus", "OPUS"),
                                          ("o.wav", "PCM_24"), ("o.flac", "PCM_24")])
def test_generate_writes_each_container_in_its_own_format(checkpoint, tmp_path, name, subtype):
    out = tmp_path / name
    proc = run_generate(checkpoint, "-o", out, "--duration", "0.5", "--seed", "1", "-q")
    assert proc.returncode == 0, proc.stderr
    info = sf.info(out)
    assert info.subtype == subtype and info.samplerate == 16000
    assert abs(info.duration - 0.5) < 0.05


@pytest.mark.parametrize("case,expected", [
    ("extension", "supported endings: .wav .flac"),
    ("folder", "output folder {folder} does not exist"),
    ("subtype", "subtype PCM_24 cannot be written to .ogg"),
    ("opus_rate", ".opus needs a sample rate of"),
    ("huge", "memory"),
])
def test_generate_refuses_an_output_it_cannot_write_before_generating(checkpoint, tmp_path, case, expected):
    args = {"extension": ["-o", tmp_path / "o.xyz"],
            "folder": ["-o", tmp_path / "missing" / "o.wav"],
            "subtype": ["-o", tmp_path / "o.ogg", "--subtype", "PCM_24"],
            "opus_rate": ["-o", tmp_path / "o.opus", "--sample-rate", "22050"],
            "huge": ["-o", tmp_path / "o.wav", "--duration", "1e9"]}[case]
    t0 = time.monotonic()
    proc = run_generate(checkpoint, *args)
    assert_one_line_error(proc, expected.format(folder=tmp_path / "missing"))
    assert time.monotonic() - t0 < 60
    assert not [p for p in os.listdir(tmp_path) if p.startswith("o.")]


def test_generate_warns_that_start_is_unused_at_fidelity_0(checkpoint, tmp_path):
    proc = run_generate(checkpoint, "-o", tmp_path / "o.wav", "--duration", "0.3", "--start", "0:1.0")
    assert proc.returncode == 0, proc.stderr
    assert "warning: --start is unused at fidelity 0" in proc.stderr
    quiet = run_generate(checkpoint, "-o", tmp_path / "o.wav", "--duration", "0.3", "--fidelity", "0.5",
                         "--start", "0:1.0")
    assert quiet.returncode == 0 and "warning" not in quiet.stderr


def test_model_generate_refuses_an_infinite_or_unaffordable_duration(checkpoint):
    model = SpectralStateGuidedSynthesis.load_checkpoint(checkpoint)
    with pytest.raises(ValueError, match="duration_seconds must be finite, got inf"):
        model.generate(float("inf"))
    with pytest.raises(ValueError, match=r"duration_seconds 1e\+09 s would need about .* of memory; .* available"):
        model.generate(1e9)


# ---------------------------------------------------------------- 12: prog and closed pipes

@pytest.mark.parametrize("module,argv", [("ssgs.generate", ["missing.safetensors", "-o", "o.wav"])])
def test_errors_name_the_command_as_typed(module, argv, tmp_path, monkeypatch, capsys):
    import importlib

    monkeypatch.chdir(tmp_path)
    main = importlib.import_module(module).main
    assert main(argv, prog=f"ssgs {module.split('.')[1]}") == 2
    assert capsys.readouterr().err.startswith(f"ssgs {module.split('.')[1]}: error: ")
    with pytest.raises(SystemExit):
        main(["--no-such-option"], prog="ssgs x")
    assert capsys.readouterr().err.startswith("usage: ssgs x ")


def test_a_closed_pipe_ends_quietly_with_141(checkpoint):
    proc = subprocess.Popen([sys.executable, "-m", "ssgs.cli", "verify", *[checkpoint] * 3],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader (head -1) is gone before the first line is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == "", err


def test_a_shell_pipeline_into_head_keeps_the_first_line(checkpoint):
    proc = subprocess.run(["bash", "-o", "pipefail", "-c",
                           f"'{sys.executable}' -m ssgs.cli verify {' '.join([str(checkpoint)] * 400)} | head -1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.stdout.startswith("OK ") and proc.stdout.count("\n") == 1
    assert proc.returncode in (0, 141) and "Exception ignored" not in proc.stderr and proc.stderr == ""
