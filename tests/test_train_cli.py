"""python -m ssgs.train end to end, in subprocesses, as users run it."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from commands import run_module
from numpy.testing import assert_array_equal
from signals import music_like

from ssgs import SpectralStateGuidedSynthesis
from ssgs.frame_store import FrameStore

PARAMS = ("transition_matrix", "initial_probabilities", "state_means", "state_covariances")


def run_train(*args, env=None, timeout=300):
    return run_module("ssgs.train", *args, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(21)
    for i, (ext, sr) in enumerate([(".wav", 16000), (".flac", 22050), (".wav", 44100)]):
        x = music_like(rng, 3.0 + i, sr)
        sf.write(folder / f"clip{i}{ext}", x, sr)
    return folder


def load(path):
    return SpectralStateGuidedSynthesis.load_checkpoint(path)


def assert_same_params(a, b):
    for name in PARAMS:
        assert_array_equal(getattr(a, name), getattr(b, name))


def test_demo_writes_everything(tmp_path):
    out = tmp_path / "models"
    proc = run_train("--demo", "--n-iterations", "2", "--checkpoint-dir", out, "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    names = sorted(os.listdir(out))
    assert names == ["checkpoint_final.safetensors", "checkpoint_initial.safetensors",
                     "model_final.npz", "test_generation.wav"]
    info = sf.info(out / "test_generation.wav")
    assert info.samplerate == 16000 and info.frames == 48000
    y, _ = sf.read(out / "test_generation.wav")
    assert np.isfinite(y).all() and 0 < np.abs(y).max() <= 1.0
    for word in ("files used: 4", "frames:", "log-likelihood per frame", "time:", "written:"):
        assert word in proc.stdout
    assert proc.stdout.strip().splitlines()[-2:] == [  # where the files went, then what to run next
        f"next: python -m ssgs.generate {out / 'checkpoint_final.safetensors'} -o out.wav --duration 10",
        f"      python -m ssgs.cli report {out / 'checkpoint_final.safetensors'} -o report.png"]
    model = load(out / "checkpoint_final.safetensors")
    assert model.iteration == 2 and len(model.sources) == 4
    assert {os.path.splitext(s["path"])[1] for s in model.sources} == {".wav", ".flac", ".mp3"}


def test_resume_is_bit_identical_and_needs_no_audio(corpus, tmp_path):
    common = ["--n-states", "5", "--seed", "7", "--tol", "0", "--checkpoint-interval", "3", "-q"]
    a = run_train("--folders", corpus, "--n-iterations", "6", "--checkpoint-dir", tmp_path / "a", *common)
    assert a.returncode == 0, a.stderr
    # a second run of the same command, then continue it from iteration 3 with the audio gone
    moved = tmp_path / "moved"
    b = run_train("--folders", corpus, "--n-iterations", "3", "--checkpoint-dir", tmp_path / "b", *common)
    assert b.returncode == 0, b.stderr
    os.rename(corpus, moved)
    try:
        c = run_train("--resume", tmp_path / "b" / "checkpoint_epoch_3.safetensors", "--n-iterations", "6",
                      "--checkpoint-dir", tmp_path / "c", *common)
    finally:
        os.rename(moved, corpus)
    assert c.returncode == 0, c.stderr
    full, resumed = load(tmp_path / "a" / "checkpoint_final.safetensors"), load(tmp_path / "c" / "checkpoint_final.safetensors")
    assert resumed.iteration == full.iteration == 6
    assert_same_params(full, resumed)
    assert [r["log_likelihood"] for r in full.training_history] == [r["log_likelihood"] for r in resumed.training_history]
    assert_same_params(load(tmp_path / "a" / "checkpoint_epoch_6.safetensors"),
                       load(tmp_path / "c" / "checkpoint_epoch_6.safetensors"))


def test_thread_count_does_not_change_the_checkpoint(corpus, tmp_path):
    from ssgs.checkpoint import read_header

    digests = []
    for threads in ("1", "2"):
        proc = run_train("--folders", corpus, "--n-states", "6", "--n-iterations", "3", "--seed", "2", "-q",
                         "--threads", threads, "--workers", threads, "--checkpoint-dir", tmp_path / threads)
        assert proc.returncode == 0, proc.stderr
        meta, _ = read_header(tmp_path / threads / "checkpoint_final.safetensors")
        digests.append((meta["tensors_sha256"], meta["config"], meta["sources"]))
    assert digests[0] == digests[1]


def test_resume_without_artifacts_rereads_the_audio_and_refuses_changed_files(corpus, tmp_path):
    common = ["--folders", corpus, "--n-states", "4", "--seed", "3", "--tol", "0", "--no-artifacts",
              "--checkpoint-interval", "2", "-q"]
    a = run_train(*common, "--n-iterations", "4", "--checkpoint-dir", tmp_path / "a")
    assert a.returncode == 0, a.stderr
    small = tmp_path / "a" / "checkpoint_epoch_2.safetensors"
    assert load(small).residual_signals is None
    b = run_train("--resume", small, "--n-iterations", "4", "--checkpoint-dir", tmp_path / "b", "-q")
    assert b.returncode == 0, b.stderr
    assert_same_params(load(tmp_path / "a" / "checkpoint_final.safetensors"),
                       load(tmp_path / "b" / "checkpoint_final.safetensors"))
    changed = corpus / "clip0.wav"
    original = changed.read_bytes()
    try:
        x, sr = sf.read(changed)
        sf.write(changed, x * 0.5, sr)
        c = run_train("--resume", small, "--n-iterations", "4", "--checkpoint-dir", tmp_path / "c")
    finally:
        changed.write_bytes(original)
    assert c.returncode == 2
    assert "has changed since the checkpoint (sha256 differs)" in c.stderr
    assert len(c.stderr.strip().splitlines()) == 1


def test_bad_files_are_skipped_each_with_a_reason(corpus, tmp_path):
    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    good = music_like(np.random.default_rng(0), 3.0)
    sf.write(folder / "good.wav", good, 16000)
    sf.write(folder / "eight_k.wav", good[::2], 8000)
    sf.write(folder / "sub" / "hi_rate.flac", np.repeat(good, 12)[: 192000 * 2], 192000)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "text.wav").write_text("not audio\n" * 50)
    sf.write(folder / "truncated.flac", good, 16000)
    (folder / "truncated.flac").write_bytes((folder / "truncated.flac").read_bytes()[:40])
    sf.write(folder / "silent.wav", np.zeros(32000), 16000)
    sf.write(folder / "short.wav", good[:500], 16000)
    nan = good.copy()
    nan[1000] = np.nan
    sf.write(folder / "nan.wav", nan, 16000, subtype="FLOAT")
    sf.write(folder / "surround.wav", np.tile(good[:32000, None], (1, 6)), 16000)
    os.symlink(folder / "good.wav", folder / "sub" / "again.wav")
    os.symlink(folder, folder / "sub" / "loop")
    proc = run_train("--folders", folder, "--recursive", "--extensions", ".wav", ".flac", "--n-states", "4",
                     "--n-iterations", "2", "--checkpoint-dir", tmp_path / "m", "--seed", "0")
    assert proc.returncode == 0, proc.stderr
    reasons = {
        "empty.wav": "empty file", "text.wav": "cannot decode", "truncated.flac": "",
        "silent.wav": "silent", "short.wav": "shorter than one frame", "nan.wav": "NaN",
        "surround.wav": "6 channels", "again.wav": "same file as",
    }
    for name, reason in reasons.items():
        lines = [ln for ln in proc.stderr.splitlines() if f"{name}:" in ln and ln.startswith("skipped")]
        assert lines and reason in lines[0], (name, proc.stderr)
    model = load(tmp_path / "m" / "checkpoint_final.safetensors")
    used = sorted(os.path.basename(s["path"]) for s in model.sources)
    assert used == ["eight_k.wav", "good.wav", "hi_rate.flac"]
    assert "files used: 3   skipped: 8" in proc.stdout


@pytest.mark.parametrize("case", ["missing", "empty", "all_bad", "bad_option", "resume_missing", "too_short"])
def test_bad_input_exits_2_with_one_line(tmp_path, case):
    folder = tmp_path / "f"
    folder.mkdir()
    args = ["--folders", folder, "--checkpoint-dir", tmp_path / "m"]
    if case == "missing":
        args = ["--folders", tmp_path / "nowhere", "--checkpoint-dir", tmp_path / "m"]
        expect = "no audio files"
    elif case == "empty":
        expect = "no audio files"
    elif case == "all_bad":
        (folder / "a.wav").write_bytes(b"")
        (folder / "b.wav").write_text("nope")
        expect = "no usable audio"
    elif case == "bad_option":
        args += ["--n-states", "0"]
        expect = "--n-states must be >= 1"
    elif case == "resume_missing":
        args = ["--resume", tmp_path / "none.safetensors"]
        expect = "no such checkpoint"
    else:
        sf.write(folder / "a.wav", music_like(np.random.default_rng(0), 0.03), 16000)
        expect = "shorter than one frame (480 samples < frame_size 1024"
    proc = run_train(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    errors = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
    assert len(errors) == 1 and expect in errors[0], proc.stderr
    assert not (tmp_path / "m").exists() or not os.listdir(tmp_path / "m")


def test_corrupt_resume_checkpoint_exits_1(corpus, tmp_path):
    proc = run_train("--folders", corpus, "--n-states", "3", "--n-iterations", "1", "--checkpoint-dir", tmp_path, "-q")
    assert proc.returncode == 0
    path = tmp_path / "checkpoint_final.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10
    path.write_bytes(bytes(data))
    proc = run_train("--resume", path, "--checkpoint-dir", tmp_path / "again")
    assert proc.returncode == 1
    assert "does not match its SHA-256" in proc.stderr


def test_killed_training_always_leaves_a_loadable_checkpoint(corpus, tmp_path):
    """Every checkpoint on disk after a SIGKILL is whole; each run's corpus
    folder left in the cache by the kill is removed by the next run."""
    rng = np.random.default_rng(99)
    out, cache = tmp_path / "m", tmp_path / "cache"
    env = dict(os.environ, SSGS_CACHE_DIR=str(cache))
    kills = 0
    for attempt in range(6):
        # odd attempts resume the newest checkpoint (in their own folder); even ones start a new run over it
        resume = ["--resume", str(newest(out))] if attempt % 2 and newest(out) else ["--seed", str(attempt),
                                                                                     "--overwrite"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "ssgs.train", "--folders", str(corpus), "--n-states", "8", "--tol", "0",
             "--n-iterations", "100000", "--checkpoint-interval", "1", "--checkpoint-dir", str(out), "-q", *resume],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(float(rng.uniform(1.0, 3.0)))
        assert proc.poll() is None, "training ended before the kill: the test needs a longer run"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        checkpoints = sorted(out.glob("checkpoint_*.safetensors"))
        assert checkpoints, "nothing was written before the kill"
        for path in checkpoints:  # every checkpoint on disk is whole, the newest included
            load(path)
        assert len(list(cache.glob("run-*"))) == 1  # the killed run's; the runs before it removed theirs
    assert kills == 6
    FrameStore(cache).remove()
    assert list(cache.glob("run-*")) == []


def newest(folder):
    paths = list(folder.glob("checkpoint_*.safetensors")) if folder.exists() else []
    return max(paths, key=os.path.getmtime) if paths else None


def test_checkpoints_to_s3_and_resume_from_the_bucket(corpus, tmp_path, s3_server, monkeypatch):
    env, endpoint = s3_server
    common = ["--n-states", "4", "--seed", "5", "--tol", "0", "--checkpoint-interval", "2", "-q"]
    a = run_train("--folders", corpus, "--n-iterations", "4", "--checkpoint-dir", "s3://ssgs-test/run", *common, env=env)
    assert a.returncode == 0, a.stderr
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="us-east-1")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="ssgs-test", Prefix="run/")["Contents"])
    assert keys == ["run/checkpoint_epoch_2.safetensors", "run/checkpoint_epoch_4.safetensors",
                    "run/checkpoint_final.safetensors", "run/checkpoint_initial.safetensors",
                    "run/model_final.npz", "run/test_generation.wav"]
    b = run_train("--resume", "s3://ssgs-test/run/checkpoint_epoch_2.safetensors", "--n-iterations", "4",
                  "--checkpoint-dir", "s3://ssgs-test/resumed", *common, env=env)
    assert b.returncode == 0, b.stderr
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    import fsspec

    fsspec.config.conf.setdefault("s3", {})["endpoint_url"] = endpoint
    try:
        assert_same_params(load("s3://ssgs-test/run/checkpoint_final.safetensors"),
                           load("s3://ssgs-test/resumed/checkpoint_final.safetensors"))
    finally:
        fsspec.config.conf["s3"].pop("endpoint_url", None)


def test_augmented_training_resumes_without_artifacts(corpus, tmp_path):
    common = ["--folders", corpus, "--n-states", "4", "--seed", "6", "--tol", "0", "--no-artifacts", "--augment",
              "--checkpoint-interval", "1", "-q"]
    a = run_train(*common, "--n-iterations", "2", "--checkpoint-dir", tmp_path / "a")
    assert a.returncode == 0, a.stderr
    first = load(tmp_path / "a" / "checkpoint_epoch_1.safetensors")
    assert len(first.sources) == 15 and sum(1 for s in first.sources if s.get("augmentation")) == 12
    b = run_train("--resume", tmp_path / "a" / "checkpoint_epoch_1.safetensors", "--n-iterations", "2",
                  "--checkpoint-dir", tmp_path / "b", "-q")
    assert b.returncode == 0, b.stderr
    assert_same_params(load(tmp_path / "a" / "checkpoint_final.safetensors"),
                       load(tmp_path / "b" / "checkpoint_final.safetensors"))


def test_auto_n_states_from_the_command_line(corpus, tmp_path):
    proc = run_train("--folders", corpus, "--auto-n-states", "2", "3", "--n-iterations", "1", "--seed", "1",
                     "--checkpoint-dir", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "states by BIC: 2:" in proc.stdout
    model = load(tmp_path / "checkpoint_final.safetensors")
    assert model.n_states in (2, 3) and model.training_history[0]["n_states_selection"]


def test_audio_bits_option_is_kept_and_resumed(corpus, tmp_path):
    """--audio-bits 24 keeps 24-bit training audio, recorded in the
    checkpoint, and a resume that contradicts it is refused; a 16-bit WAV
    at the model's rate is kept as its samples either way."""
    proc = run_train("--folders", corpus, "--n-states", "4", "--n-iterations", "2", "--seed", "3", "-q",
                     "--audio-bits", "24", "--checkpoint-dir", tmp_path / "m")
    assert proc.returncode == 0, proc.stderr
    model = load(tmp_path / "m" / "checkpoint_final.safetensors")
    assert model.audio_bits == 24
    index = [os.path.basename(s["path"]) for s in model.sources].index("clip0.wav")
    x, _ = sf.read(corpus / "clip0.wav", dtype="float32")  # written as 16-bit PCM at 16 kHz
    assert_array_equal(model.rebuild_sequence(index).astype(np.float32), x)
    again = run_train("--resume", tmp_path / "m" / "checkpoint_final.safetensors", "--n-iterations", "3",
                      "--audio-bits", "16", "--checkpoint-dir", tmp_path / "r")
    assert again.returncode == 2 and "--audio-bits 16 contradicts" in again.stderr
    assert "24-bit training audio" in again.stderr
    bad = run_train("--folders", corpus, "--audio-bits", "12", "--checkpoint-dir", tmp_path / "b")
    assert bad.returncode == 2 and "--audio-bits" in bad.stderr
