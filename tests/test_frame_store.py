"""The corpus on disk (ssgs.frame_store): the same model as in memory,
checkpoints streamed from the files, one-line errors for a folder that
cannot take it, and run folders of killed processes cleared."""

import os
import signal
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from ssgs import SpectralStateGuidedSynthesis, checkpoint
from ssgs.errors import SSGSError
from ssgs.frame_store import FrameStore, default_cache_dir
from ssgs.train import main as train_main

from signals import music_like


@pytest.fixture
def files(tmp_path, rng):
    folder = tmp_path / "audio"
    folder.mkdir()
    out = []
    for i in range(3):
        path = folder / f"piece{i}.wav"
        sf.write(str(path), 0.5 * music_like(rng, 3.0 + i), 16000, subtype="FLOAT")
        out.append(str(path))
    return out


def _trained(files, cache_dir):
    model = SpectralStateGuidedSynthesis(n_states=6, seed=5)
    model.extract_features_from_files(files, 16000, cache_dir=cache_dir)
    model.initialize_hmm_parameters()
    model.iterative_refinement(3)
    model.fit_excitation_model()
    return model


def test_a_corpus_on_disk_trains_the_model_memory_trains(files, tmp_path):
    held, stored = _trained(files, None), _trained(files, tmp_path / "cache")
    assert isinstance(stored.corpus.observations, np.memmap)
    assert not isinstance(held.corpus.observations, np.memmap)
    for name in ("state_means", "state_covariances", "transition_matrix", "initial_probabilities"):
        assert np.array_equal(getattr(held, name), getattr(stored, name)), name
    for name in ("f0", "periodicity", "lpc_coefficients", "perceptual_features"):
        assert np.array_equal(getattr(held.corpus, name), getattr(stored.corpus, name)), name
    assert np.array_equal(held.corpus.frame_shapes(), stored.corpus.frame_shapes())
    for fidelity in (0.0, 0.5, 1.0):
        assert np.array_equal(held.generate(2.0, fidelity=fidelity, seed=3),
                              stored.generate(2.0, fidelity=fidelity, seed=3)), fidelity
    a, b = tmp_path / "held.safetensors", tmp_path / "stored.safetensors"
    held.save_checkpoint(str(a))
    stored.save_checkpoint(str(b))
    ta, ma = checkpoint.read_checkpoint(str(a))
    tb, mb = checkpoint.read_checkpoint(str(b))
    assert ma["tensors_sha256"] == mb["tensors_sha256"]
    assert sorted(ta) == sorted(tb)


def test_the_run_folder_lives_with_its_store(files, tmp_path):
    model = _trained(files, tmp_path / "cache")
    folder = model.corpus.store.folder
    assert os.path.dirname(folder) == str(tmp_path / "cache") and os.path.isdir(folder)
    model.corpus.store.remove()
    assert not os.path.exists(folder)


def test_a_checkpoint_streams_the_training_audio_from_disk(files, tmp_path, monkeypatch):
    """The corpus's tensors are written with a few kilobytes held, not the
    audio's size, and read back as the same bytes; the whole checkpoint
    loads and replays the same audio."""
    model = _trained(files, tmp_path / "cache")
    tensors = model.corpus.tensors()
    audio = b"".join(bytes(a.data) for a in model.corpus.audio)
    assert tensors["training_audio"].nbytes == len(audio) > 100_000
    monkeypatch.setattr(checkpoint, "_CHUNK", 1 << 12)
    path = tmp_path / "corpus.safetensors"
    tracemalloc.start()
    checkpoint.write_checkpoint(str(path), tensors, {})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < len(audio) / 4, (peak, len(audio))
    stored, _ = checkpoint.read_checkpoint(str(path))
    assert stored["training_audio"].tobytes() == audio
    whole = tmp_path / "model.safetensors"
    model.save_checkpoint(str(whole))
    loaded = SpectralStateGuidedSynthesis.load_checkpoint(str(whole))
    for i in range(len(files)):
        assert np.array_equal(loaded.rebuild_sequence(i), model.rebuild_sequence(i))


def test_the_default_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SSGS_CACHE_DIR", str(tmp_path / "a"))
    assert default_cache_dir() == str(tmp_path / "a")
    monkeypatch.delenv("SSGS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == os.path.join(str(tmp_path / "x"), "ssgs")


def test_a_cache_folder_that_is_a_file_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SSGSError, match=f"cache folder {blocker}"):
        FrameStore(blocker / "cache")


def test_an_unwritable_cache_folder_is_a_one_line_error(tmp_path):
    """A folder this user cannot write in (for root, who writes anywhere
    else, sysfs, where making a folder is not permitted)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    target = "/sys/ssgs-cache" if os.geteuid() == 0 else str(folder / "cache")
    try:
        with pytest.raises(SSGSError, match=f"cache folder {target}: not writable") as caught:
            FrameStore(target)
        assert "\n" not in str(caught.value)
    finally:
        folder.chmod(0o700)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_a_one_line_error_and_the_checkpoints_stay(files, tmp_path, monkeypatch, capsys):
    """The disk fills while the corpus is written (its file is /dev/full,
    where every write fails with ENOSPC): a one-line error, and the
    checkpoint folder as it was."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "keep.txt").write_text("earlier work")
    made = []
    real_init = FrameStore.__init__

    def full_disk_init(self, cache_dir=None):
        real_init(self, cache_dir)
        os.symlink("/dev/full", os.path.join(self.folder, "observations"))
        made.append(self.folder)

    monkeypatch.setattr(FrameStore, "__init__", full_disk_init)
    code = train_main(["--folders", os.path.dirname(files[0]), "--n-states", "4", "--n-iterations", "1",
                       "--checkpoint-dir", str(models), "--cache-dir", str(tmp_path / "cache"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1 and "disk is full" in err[0] and str(tmp_path / "cache") in err[0], err
    assert sorted(os.listdir(models)) == ["keep.txt"]


def test_cache_dir_and_in_memory_exclude_each_other(tmp_path, capsys):
    code = train_main(["--demo", "--cache-dir", str(tmp_path), "--in-memory", "--checkpoint-dir",
                       str(tmp_path / "m"), "-q"])
    assert code != 0
    assert "--cache-dir and --in-memory exclude each other" in capsys.readouterr().err


_HOLD = textwrap.dedent("""
    import sys, time
    import numpy as np
    from ssgs.frame_store import FrameStore
    from ssgs.training_audio import encode
    store = FrameStore(sys.argv[1])
    store.append({"observations": np.zeros((4, 3), np.float32)}, 1024, encode(np.ones(1024) * 0.1, 16000))
    print(store.folder, flush=True)
    time.sleep(600)
""")


def _holder(cache):
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(cache)], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def test_a_killed_runs_folder_goes_and_a_live_ones_stays(tmp_path):
    cache = tmp_path / "cache"
    killed, killed_folder = _holder(cache)
    live, live_folder = _holder(cache)
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert os.path.isdir(killed_folder)  # nothing ran at the kill
        store = FrameStore(cache)
        assert not os.path.exists(killed_folder)
        assert os.path.isdir(live_folder)
        store.remove()
    finally:
        live.kill()
        live.wait()


def test_sequence_batches_cover_every_frame_once_in_whole_sequences(rng):
    from ssgs.runs import sequence_batches

    lengths = rng.integers(1, 50, size=40)
    for limit in (1, 30, 100, 10_000):
        batches = sequence_batches(lengths, limit)
        frames = np.concatenate([np.arange(r.start, r.stop) for r, _ in batches])
        assert np.array_equal(frames, np.arange(lengths.sum()))
        sequences = np.concatenate([np.arange(s.start, s.stop) for _, s in batches])
        assert np.array_equal(sequences, np.arange(lengths.size))
        for rows, seqs in batches:
            assert rows.stop - rows.start == lengths[seqs].sum()
            assert lengths[seqs].sum() <= limit or seqs.stop - seqs.start == 1
    assert len(sequence_batches(lengths, 10_000)) == 1


def test_an_excitation_fit_in_batches_is_the_whole_fit_to_rounding(files, tmp_path, monkeypatch):
    """Batches of a sequence or two (as a long corpus has) sum what one
    batch sums: every table within 1e-9 of the one-batch fit."""
    from ssgs import excitation_model, runs

    model = _trained(files, tmp_path / "cache")
    whole, labels = excitation_model.fit(model.corpus, model.params)
    monkeypatch.setattr(runs, "BATCH_FRAMES", int(model.corpus.sequence_lengths.max()))
    assert len(runs.sequence_batches(model.corpus.sequence_lengths)) == len(files)
    batched, batched_labels = excitation_model.fit(model.corpus, model.params)
    assert np.array_equal(labels, batched_labels)
    a, b = whole.tensors(), batched.tensors()
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-9, atol=1e-12, err_msg=name)


class _RecordingBackend:
    """Stands for a Dask backend: records what it is given, computes nothing."""

    def __init__(self):
        self.attached = None

    def attach(self, observations, lengths):
        self.attached = (np.asarray(observations).copy(), np.asarray(lengths).copy())


def test_a_resumed_run_on_a_cluster_keeps_its_corpus_on_disk_and_its_cluster(files, tmp_path):
    """Resuming with artifacts, the corpus goes to the cache folder and the
    frames to the cluster, both: neither choice hides the other."""
    from ssgs import train
    from ssgs.train_options import build_parser

    model = _trained(files, None)
    path = tmp_path / "c.safetensors"
    model.save_checkpoint(str(path))
    args = build_parser().parse_args(["--resume", str(path), "--n-iterations", "9", "--cache-dir",
                                      str(tmp_path / "cache"), "-q"])
    args.backend, args.prog = _RecordingBackend(), "ssgs train"
    resumed, _ = train._resumed_model(args, train.Reporter(True), {})
    assert resumed.backend is args.backend
    assert resumed.corpus.store is not None
    assert os.path.dirname(resumed.corpus.store.folder) == str(tmp_path / "cache")
    observations, lengths = args.backend.attached
    assert np.array_equal(observations, model.corpus.observations)
    assert np.array_equal(lengths, model.corpus.sequence_lengths)


def test_a_store_refuses_a_sequence_unlike_the_first_and_writes_nothing(tmp_path):
    from ssgs.training_audio import encode

    store = FrameStore(tmp_path)
    audio = encode(np.full(512, 0.1), 16000)
    store.append({"observations": np.zeros((4, 3), np.float32), "f0": np.zeros(4, np.float32)}, 1024, audio)
    sizes = {"observations": 4 * 3 * 4, "f0": 4 * 4}  # the first sequence's bytes
    for arrays in ({"observations": np.zeros((4, 2), np.float32), "f0": np.zeros(4, np.float32)},
                   {"observations": np.zeros((4, 3), np.float32)},
                   {"observations": np.zeros((4, 3), np.float32), "f0": np.zeros(5, np.float32)}):
        with pytest.raises(ValueError):
            store.append(arrays, 1024, audio)
    store.close()
    assert {name: os.path.getsize(os.path.join(store.folder, name)) for name in sizes} == sizes
    assert store.arrays()["observations"].shape == (4, 3)
    store.remove()


def test_a_memory_mapped_tensor_is_written_as_its_own_bytes(tmp_path, monkeypatch):
    """A map of part of a file, read in chunks smaller than it: its bytes,
    not the file's from its start."""
    data = np.arange(1000, dtype=np.uint8)
    data.tofile(tmp_path / "raw")
    mapped = np.memmap(tmp_path / "raw", dtype=np.uint8, mode="r", shape=(1000,))
    monkeypatch.setattr(checkpoint, "_CHUNK", 64)
    checkpoint.write_checkpoint(str(tmp_path / "c.safetensors"), {"part": mapped[100:700], "whole": mapped}, {})
    stored, _ = checkpoint.read_checkpoint(str(tmp_path / "c.safetensors"))
    assert np.array_equal(stored["part"], data[100:700])
    assert np.array_equal(stored["whole"], data)


def test_an_unwritable_default_cache_folder_falls_back_to_the_temporary_folder(monkeypatch, tmp_path):
    """A default that cannot be written (a read-only home: for root,
    sysfs) gives way to the temporary folder; one asked for never does."""
    import tempfile

    from ssgs.frame_store import usable_cache_dir

    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    monkeypatch.setenv("SSGS_CACHE_DIR", str(blocker / "cache"))
    assert usable_cache_dir() == os.path.join(tempfile.gettempdir(), "ssgs-cache")
    monkeypatch.setenv("SSGS_CACHE_DIR", str(tmp_path / "fine"))
    assert usable_cache_dir() == str(tmp_path / "fine")
