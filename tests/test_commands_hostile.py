"""ssgs train and ssgs generate against a user's mistakes and a hostile
environment (issue 18): destinations that cannot be written, a folder that
holds another run, options that contradict a checkpoint, closed pipes,
containers with their own sample formats. Each test makes its own audio
and runs the command as a user does."""

import errno
import os
import re
import signal
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


# ---------------------------------------------------------------- 8: destination first

@pytest.mark.parametrize("case", ["file", "under_a_file"])
def test_a_destination_that_is_not_a_folder_fails_before_decoding(corpus, tmp_path, case):
    blocker = tmp_path / "models"
    blocker.write_text("my notes\n")
    dest = blocker if case == "file" else blocker / "run"
    proc = run_train("--folders", corpus, "--n-states", "3", "--n-iterations", "1", "--checkpoint-dir", dest)
    assert_one_line_error(proc, "is not a folder")
    assert str(blocker) in error_lines(proc)[0]
    assert "decoding" not in proc.stdout  # checked before any audio is read
    assert blocker.read_text() == "my notes\n"


def test_a_bucket_that_does_not_exist_fails_before_decoding(corpus, s3_server):
    env, _ = s3_server
    proc = run_train("--folders", corpus, "--n-states", "3", "--n-iterations", "1",
                     "--checkpoint-dir", "s3://no-such-bucket/run", env=env)
    assert_one_line_error(proc, "cannot write to s3://no-such-bucket/run")
    assert "decoding" not in proc.stdout


def test_an_unexpected_os_error_is_reported_in_words(capsys):
    from ssgs._cli import run_reporting_errors

    def run():
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/models/checkpoint_final.safetensors")

    assert run_reporting_errors("ssgs train", run) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [f"ssgs train: error: /data/models/checkpoint_final.safetensors: "
                                f"{os.strerror(errno.ENOSPC)} (run with -v for the traceback)"]

    def short_of_memory():
        raise MemoryError()

    assert run_reporting_errors("ssgs train", short_of_memory) == 1
    assert capsys.readouterr().err == "ssgs train: error: out of memory (run with -v for the traceback)\n"


# ---------------------------------------------------------------- 9: a folder holding another run

def test_training_into_another_runs_folder_needs_overwrite(corpus, tmp_path):
    out = tmp_path / "m"
    first = run_train("--folders", corpus, *TINY, "--n-iterations", "2", "--checkpoint-interval", "1",
                      "--checkpoint-dir", out)
    assert first.returncode == 0, first.stderr
    before = snapshot(out)
    refused = run_train("--folders", corpus, *TINY, "--n-iterations", "1", "--checkpoint-dir", out)
    assert_one_line_error(refused, "--overwrite")
    assert "already holds" in refused.stderr and "decoding" not in refused.stdout
    assert snapshot(out) == before
    again = run_train("--folders", corpus, *TINY, "--n-iterations", "1", "--checkpoint-interval", "0",
                      "--checkpoint-dir", out, "--overwrite")
    assert again.returncode == 0, again.stderr
    assert sorted(os.listdir(out)) == ["checkpoint_final.safetensors", "checkpoint_initial.safetensors",
                                       "model_final.npz", "test_generation.wav"]
    assert SpectralStateGuidedSynthesis.load_checkpoint(out / "checkpoint_final.safetensors").iteration == 1


def test_resuming_in_its_own_folder_needs_no_overwrite_and_clears_killed_writes(corpus, tmp_path):
    out = tmp_path / "m"
    first = run_train("--folders", corpus, *TINY, "--n-iterations", "2", "--checkpoint-interval", "1",
                      "--checkpoint-dir", out)
    assert first.returncode == 0, first.stderr
    stale = out / ".checkpoint_epoch_3.safetensors.k2j4h1x.tmp"  # what a killed atomic_write leaves
    stale.write_bytes(b"half a checkpoint")
    (out / "notes.txt").write_text("mine\n")
    proc = run_train("--resume", out / "checkpoint_epoch_1.safetensors", *TINY, "--n-iterations", "3",
                     "--checkpoint-interval", "1", "--checkpoint-dir", out)
    assert proc.returncode == 0, proc.stderr
    assert not stale.exists() and (out / "notes.txt").read_text() == "mine\n"
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]
    assert SpectralStateGuidedSynthesis.load_checkpoint(out / "checkpoint_final.safetensors").iteration == 3


def test_keep_last_keeps_only_the_newest_periodic_checkpoints(corpus, tmp_path):
    out = tmp_path / "m"
    proc = run_train("--folders", corpus, *TINY, "--n-iterations", "4", "--checkpoint-interval", "1",
                     "--keep-last", "2", "--checkpoint-dir", out)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p for p in os.listdir(out) if p.endswith(".safetensors")) == [
        "checkpoint_epoch_3.safetensors", "checkpoint_epoch_4.safetensors",
        "checkpoint_final.safetensors", "checkpoint_initial.safetensors"]
    bad = run_train("--folders", corpus, *TINY, "--keep-last", "0", "--checkpoint-dir", tmp_path / "n")
    assert_one_line_error(bad, "--keep-last must be >= 1")


def test_a_bucket_folder_is_refused_replaced_and_pruned_like_a_local_one(corpus, s3_server):
    import boto3

    env, endpoint = s3_server
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="us-east-1")

    def names():
        return sorted(o["Key"].split("/", 1)[1] for o in s3.list_objects_v2(Bucket="ssgs-test", Prefix="k/")["Contents"])

    url = "s3://ssgs-test/k"
    first = run_train("--folders", corpus, *TINY, "--n-iterations", "3", "--checkpoint-interval", "1",
                      "--keep-last", "1", "--checkpoint-dir", url, env=env)
    assert first.returncode == 0, first.stderr
    assert names() == ["checkpoint_epoch_3.safetensors", "checkpoint_final.safetensors",
                       "checkpoint_initial.safetensors", "model_final.npz", "test_generation.wav"]
    refused = run_train("--folders", corpus, *TINY, "--n-iterations", "1", "--checkpoint-dir", url, env=env)
    assert_one_line_error(refused, "--overwrite")
    again = run_train("--folders", corpus, *TINY, "--n-iterations", "1", "--checkpoint-interval", "0",
                      "--overwrite", "--checkpoint-dir", url, env=env)
    assert again.returncode == 0, again.stderr
    assert names() == ["checkpoint_final.safetensors", "checkpoint_initial.safetensors", "model_final.npz",
                       "test_generation.wav"]


# ---------------------------------------------------------------- 10: resume contradictions

@pytest.mark.parametrize("option,value,says", [
    ("--n-states", "10", "3 states"),
    ("--lpc-order", "8", "LPC order 12"),
    ("--frame-size", "512", "frame size 1024"),
    ("--hop-size", "128", "hop size 256"),
    ("--sample-rate", "22050", "sample rate 16000"),
    ("--seed", "99", "seed 4"),
])
def test_resume_refuses_an_option_that_contradicts_the_checkpoint(trained, tmp_path, option, value, says):
    proc = run_train("--resume", trained / "checkpoint_epoch_1.safetensors", option, value,
                     "--n-iterations", "2", "--checkpoint-dir", tmp_path / "r")
    assert_one_line_error(proc, f"{option} {value}")
    assert says in error_lines(proc)[0]
    assert not (tmp_path / "r").exists()


def test_resume_to_an_iteration_already_reached_is_an_error(trained):
    final = trained / "checkpoint_final.safetensors"
    before = final.read_bytes()
    proc = run_train("--resume", trained / "checkpoint_epoch_2.safetensors", "--n-iterations", "2",
                     "--checkpoint-dir", trained)
    assert_one_line_error(proc, "already at iteration 2")
    assert final.read_bytes() == before


def test_interrupt_names_the_checkpoint_and_the_command_that_resumes(corpus, tmp_path):
    out = tmp_path / "m"
    # Ctrl-C as a terminal gives it: a run started in the background of a
    # script inherits SIGINT ignored, and Python then keeps it ignored
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssgs.train", "--folders", str(corpus), "--n-states", "3", "--tol", "0",
         "--n-iterations", "100000", "--checkpoint-interval", "1", "--checkpoint-dir", str(out), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint_epoch_2.safetensors").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    match = re.fullmatch(r"python -m ssgs\.train: interrupted; resume with: python -m ssgs\.train --resume (\S+) "
                         r"--n-iterations 100000 --checkpoint-dir (\S+) --checkpoint-interval 1", err.strip())
    assert match, err
    named = match.group(1)
    newest = max(out.glob("checkpoint_epoch_*.safetensors"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    assert named == str(newest) and match.group(2) == str(out)
    SpectralStateGuidedSynthesis.load_checkpoint(named)


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

@pytest.mark.parametrize("module,argv", [("ssgs.train", ["--n-states", "0", "--checkpoint-dir", "x"]),
                                         ("ssgs.generate", ["missing.safetensors", "-o", "o.wav"])])
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


# ---------------------------------------------------------------- 13-15: what training says

def test_each_skipped_file_is_reported_once(corpus, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("a.wav", "b.wav"):
        (folder / name).write_bytes((corpus / name).read_bytes())
    (folder / "empty.wav").write_bytes(b"")
    (folder / "two\nlines.wav").write_text("not audio")
    proc = run_train("--folders", folder, "--n-states", "3", "--n-iterations", "1", "--checkpoint-dir",
                     tmp_path / "m")
    assert proc.returncode == 0, proc.stderr
    said = (proc.stdout + proc.stderr).splitlines()
    assert len([ln for ln in said if "empty.wav" in ln]) == 1
    named = [ln for ln in said if "lines.wav" in ln]  # the name escaped onto one line
    assert len(named) == 1 and named[0].startswith(f"skipped {folder}/two\\nlines.wav: cannot decode")
    assert "skipped: 2" in proc.stdout


def test_no_matching_files_names_the_endings_that_are_there(tmp_path):
    folder = tmp_path / "phone"
    folder.mkdir()
    for name in ("a.m4a", "b.m4a", "c.m4a", "d.aiff"):
        (folder / name).write_bytes(b"x")
    proc = run_train("--folders", folder, "--checkpoint-dir", tmp_path / "m")
    assert_one_line_error(proc, f"no audio files with endings .mp3 .wav .flac .ogg .oga .opus in {folder} "
                                "(found 3 .m4a and 1 .aiff files: add them with --extensions)")


def test_a_truncated_file_is_one_warning_line(corpus, tmp_path):
    folder = tmp_path / "cut"
    folder.mkdir()
    for name in ("a.wav", "b.wav"):
        (folder / name).write_bytes((corpus / name).read_bytes())
    sf.write(folder / "whole.flac", sf.read(corpus / "a.wav")[0], 16000)
    whole = (folder / "whole.flac").read_bytes()
    (folder / "whole.flac").unlink()
    (folder / "cut.flac").write_bytes(whole[: len(whole) // 2])  # the header still claims all of it
    proc = run_train("--folders", folder, "--n-states", "3", "--n-iterations", "1", "--checkpoint-dir",
                     tmp_path / "m")
    assert proc.returncode == 0, proc.stderr
    said = [ln for ln in proc.stderr.splitlines() if "cut.flac" in ln]
    assert len(said) == 1 and said[0].startswith("warning: ") and "truncated" in said[0], proc.stderr
    assert "AudioWarning" not in proc.stderr and "warnings.warn" not in proc.stderr


def test_training_ends_with_what_to_run_next(corpus, tmp_path):
    out = tmp_path / "m"
    proc = run_train("--folders", corpus, "--n-states", "3", "--n-iterations", "1", "--checkpoint-dir", out)
    assert proc.returncode == 0, proc.stderr
    final = out / "checkpoint_final.safetensors"
    lines = proc.stdout.strip().splitlines()
    assert lines[-2] == f"next: python -m ssgs.generate {final} -o out.wav --duration 10"
    assert lines[-1] == f"      python -m ssgs.cli report {final} -o report.png"


def test_more_states_than_the_frames_support_are_reduced_with_one_warning(corpus, tmp_path):
    proc = run_train("--folders", corpus, "--n-states", "400", "--n-iterations", "1", "--seed", "1",
                     "--checkpoint-dir", tmp_path / "m")
    assert proc.returncode == 0, proc.stderr
    final = tmp_path / "m" / "checkpoint_final.safetensors"
    model = SpectralStateGuidedSynthesis.load_checkpoint(final)
    frames = int(np.sum(model.sequence_lengths))
    assert model.n_states == frames // (model.n_features + 1) < 400
    warning = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warning) == 1, proc.stderr
    assert f"400 states asked for, but {frames} frames support only {model.n_states}" in warning[0]
    info = run_module("ssgs.cli", "info", final)
    assert f"400 states asked for; {frames} frames support {model.n_states}" in info.stdout, info.stdout
    fine = run_train("--folders", corpus, "--n-states", "3", "--n-iterations", "1", "--seed", "1",
                     "--checkpoint-dir", tmp_path / "n")
    assert fine.returncode == 0 and "warning" not in fine.stderr
    assert "asked for" not in run_module("ssgs.cli", "info", tmp_path / "n" / "checkpoint_final.safetensors").stdout


