"""A checkpoint is checked from its header before its data is read, and
every malformed file is a CheckpointError naming the file and the fault:
crafted headers (each one the safetensors library refuses too), files far
larger than their header says, things that are not regular files, and
parameters a model cannot generate from."""

import json
import os
import shutil
import struct
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from ssgs import CheckpointError, SpectralStateGuidedSynthesis
from ssgs import checkpoint as ckpt

DATA = Path(__file__).parent / "data"


def craft(path, header, data=b""):
    """A safetensors file written by hand: the 8-byte length, the header
    (a dict as JSON, or bytes as they are), the data."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def f64(begin, end, shape=None):
    return {"dtype": "F64", "shape": [(end - begin) // 8] if shape is None else shape, "data_offsets": [begin, end]}


# (header, data, what the message says)
CRAFTED = {
    "a 2**40 x 2**40 shape in no bytes": ({"x": f64(0, 0, [2**40, 2**40])}, b"", "0 bytes for shape"),
    "a dimension beyond int64": ({"x": {"dtype": "U8", "shape": [2**70], "data_offsets": [0, 0]}}, b"",
                                 "0 bytes for shape"),
    "a negative dimension": ({"x": f64(0, 16, [-2])}, bytes(16), "shape"),
    "a boolean dimension": ({"x": f64(0, 8, [True])}, bytes(8), "shape"),
    "a shape that is not a list": ({"x": f64(0, 8, 1)}, bytes(8), "shape"),
    "an unknown dtype": ({"x": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, bytes(16), "dtype"),
    "offsets backwards": ({"x": f64(0, 16) | {"data_offsets": [16, 0]}}, bytes(16), "data_offsets"),
    "offsets as floats": ({"x": f64(0, 16) | {"data_offsets": [0.0, 16.0]}}, bytes(16), "data_offsets"),
    "three offsets": ({"x": f64(0, 16) | {"data_offsets": [0, 8, 16]}}, bytes(16), "data_offsets"),
    "an entry that is not an object": ({"x": 5}, b"", "'x'"),
    "two tensors on the same bytes": ({"x": f64(0, 16), "y": f64(0, 16)}, bytes(16), "overlap"),
    "overlapping tensors": ({"x": f64(0, 16), "y": f64(8, 24)}, bytes(24), "overlap"),
    "a gap between tensors": ({"x": f64(0, 16), "y": f64(24, 40)}, bytes(40), "gap"),
    "bytes after the tensors": ({"x": f64(0, 16)}, bytes(24), "8 unexpected bytes after the tensors"),
    "data cut short": ({"x": f64(0, 16)}, bytes(8), "truncated"),
    "a header that is not an object": (b"[1, 2]", b"", "not a JSON object"),
    "metadata that is not strings": ({"__metadata__": {"a": 1}}, b"", "metadata"),
    "a header nested 100000 deep": (b"[" * 100_000 + b"]" * 100_000, b"", "corrupt header"),
    "a number of 5000 digits": (b'{"x": {"dtype": "F64", "shape": [1' + b"0" * 5000 + b'], "data_offsets": [0, 8]}}',
                                bytes(8), "corrupt header"),
    "a header that is not UTF-8": (b'{"\xff": 1}', b"", "corrupt header"),
}


@pytest.mark.parametrize("case", CRAFTED)
def test_a_crafted_header_is_refused_naming_the_file_and_the_fault(case, tmp_path):
    header, data, fault = CRAFTED[case]
    path = craft(tmp_path / "crafted.safetensors", header, data)
    for read in (lambda: ckpt.read_checkpoint(path, verify=False), lambda: ckpt.read_header(path),
                 lambda: SpectralStateGuidedSynthesis.load_checkpoint(path)):
        with pytest.raises(CheckpointError) as err:
            read()
        assert str(err.value).startswith(f"{path}: ") and fault in str(err.value), str(err.value)
    with pytest.raises(Exception):  # the safetensors library refuses it too
        with safe_open(str(path), framework="numpy") as f:
            [f.get_tensor(k) for k in f.keys()]


def test_hand_written_files_that_are_whole_are_read_as_the_safetensors_library_reads_them(tmp_path):
    """The crafting above writes files both readers accept when they are
    whole: zero-sized tensors, tensors in any order, empty metadata."""
    values = np.arange(5, dtype=np.float64)
    header = {"b": f64(0, 40), "empty": f64(40, 40, [0, 3]), "a": {"dtype": "I16", "shape": [2, 2],
                                                                   "data_offsets": [40, 48]},
              "__metadata__": {}}
    path = craft(tmp_path / "whole.safetensors", header, values.tobytes() + np.arange(4, dtype="<i2").tobytes())
    tensors, metadata = ckpt.read_checkpoint(path, verify=False)
    with safe_open(str(path), framework="numpy") as f:
        theirs = {k: f.get_tensor(k) for k in f.keys()}
    assert sorted(tensors) == sorted(theirs) == ["a", "b", "empty"] and metadata == {}
    for name, arr in theirs.items():
        assert tensors[name].dtype == arr.dtype and np.array_equal(tensors[name], arr)
    assert tensors["empty"].shape == (0, 3)


@pytest.mark.parametrize("length, fault", [(1000, "truncated inside the header"),
                                           (200_000_000, "not a safetensors file (header length 200000000)")])
def test_a_header_length_past_the_end_or_the_limit(tmp_path, length, fault):
    path = tmp_path / "long.safetensors"
    path.write_bytes(struct.pack("<Q", length) + b"{}")
    for read in (lambda: ckpt.read_checkpoint(path), lambda: ckpt.read_header(path)):
        with pytest.raises(CheckpointError, match=f"^{path}: .*{fault}".replace("(", r"\(").replace(")", r"\)")):
            read()


def test_a_sparse_six_gigabyte_file_is_refused_from_its_header(tmp_path):
    """A whole checkpoint followed by 6 GB of zeros: refused from its header
    and size alone, reading no more than the header into memory."""
    path = tmp_path / "sparse.safetensors"
    shutil.copy(DATA / "gaps-params.safetensors", path)
    whole = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(6 * 2**30)
    tracemalloc.start()
    try:
        for read in (lambda: SpectralStateGuidedSynthesis.load_checkpoint(path), lambda: ckpt.read_header(path)):
            with pytest.raises(CheckpointError, match=f"{6 * 2**30 - whole} unexpected bytes after the tensors"):
                read()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * whole + 1_000_000


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_is_not_a_regular_file():
    for read in (lambda: SpectralStateGuidedSynthesis.load_checkpoint("/dev/zero"),
                 lambda: ckpt.read_header("/dev/zero")):
        with pytest.raises(CheckpointError, match="^/dev/zero: not a regular file"):
            read()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes")
def test_a_named_pipe_is_refused_without_opening_it(tmp_path):
    """Opening a FIFO for reading would wait for a writer for ever: it is
    refused from what the path is."""
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    outcome = []

    def load():
        try:
            SpectralStateGuidedSynthesis.load_checkpoint(fifo)
        except Exception as exc:
            outcome.append(exc)

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(30)
    waited = reader.is_alive()
    if waited:  # a writer that closes at once lets a reader stuck in open() go
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(30)
    assert not waited, "load_checkpoint waited for a writer"
    assert len(outcome) == 1 and isinstance(outcome[0], CheckpointError), outcome
    assert str(outcome[0]) == f"{fifo}: not a regular file"


def test_a_remote_file_is_checked_from_its_header_too(tmp_path):
    """memory:// (any fsspec filesystem): whole files load, and a file with
    bytes after its tensors is refused as a local one is."""
    import fsspec

    fs = fsspec.filesystem("memory")
    whole = (DATA / "gaps-params.safetensors").read_bytes()
    fs.pipe_file("/ssgs-safety/whole.safetensors", whole)
    fs.pipe_file("/ssgs-safety/long.safetensors", whole + bytes(100))
    model = SpectralStateGuidedSynthesis.load_checkpoint("memory://ssgs-safety/whole.safetensors")
    local = SpectralStateGuidedSynthesis.load_checkpoint(DATA / "gaps-params.safetensors")
    assert np.array_equal(model.state_covariances, local.state_covariances)
    with pytest.raises(CheckpointError, match="long.safetensors: 100 unexpected bytes after the tensors"):
        SpectralStateGuidedSynthesis.load_checkpoint("memory://ssgs-safety/long.safetensors")


def golden_tensors():
    tensors, metadata = ckpt.read_checkpoint(DATA / "gaps-params.safetensors")
    meta = {k: v for k, v in metadata.items() if k not in ("tensors_sha256", "metadata_sha256")}
    return {k: np.array(v) for k, v in tensors.items()}, meta


def not_positive_definite(D, rng):
    """A symmetric matrix with a positive diagonal and one negative eigenvalue."""
    q, _ = np.linalg.qr(rng.standard_normal((D, D)))
    eig = np.linspace(1.0, 2.0, D)
    eig[0] = -1e-3
    c = (q * eig) @ q.T
    return (c + c.T) / 2


def broken(name):
    """Change one parameter of the golden model so that it cannot generate."""
    def change(t):
        if name == "zero covariance":
            t["state_covariances"][3] = 0.0
        elif name == "negative variance":
            t["state_covariances"][5][1, 1] = -0.5
        elif name == "indefinite covariance":
            t["state_covariances"][2] = not_positive_definite(t["state_covariances"].shape[1],
                                                              np.random.default_rng(0))
        elif name == "negative transition":
            t["transition_matrix"][4, 1] += t["transition_matrix"][4, 0] + 0.1  # the row still sums to 1
            t["transition_matrix"][4, 0] = -0.1
        elif name == "transition row off 1":
            t["transition_matrix"][6] *= 1.01
        elif name == "negative start":
            t["initial_probabilities"][1] = -0.25
            t["initial_probabilities"][0] += 0.25
        elif name == "start off 1":
            t["initial_probabilities"] *= 0.98
    return change


BROKEN = {"zero covariance": r"state_covariances\[3\] is not positive definite",
          "negative variance": r"state_covariances\[5\] is not positive definite",
          "indefinite covariance": r"state_covariances\[2\] is not positive definite",
          "negative transition": r"transition_matrix\[4\] has a negative probability",
          "transition row off 1": r"transition_matrix\[6\] sums to 1.01, not 1",
          "negative start": r"initial_probabilities\[1\] is negative",
          "start off 1": r"initial_probabilities sums to 0.98, not 1"}


@pytest.mark.parametrize("case", BROKEN)
def test_parameters_a_model_cannot_generate_from_are_refused_at_load(case, tmp_path):
    tensors, meta = golden_tensors()
    before = {k: v.copy() for k, v in tensors.items()}
    broken(case)(tensors)
    assert any(not np.array_equal(before[k], tensors[k]) for k in tensors)
    path = tmp_path / "broken.safetensors"
    ckpt.write_checkpoint(path, tensors, meta)
    ckpt.read_checkpoint(path)  # whole as a file: the digests match
    with pytest.raises(CheckpointError, match=f"^{path}: {BROKEN[case]}"):
        SpectralStateGuidedSynthesis.load_checkpoint(path)


def test_an_indefinite_covariance_is_what_numpy_calls_one():
    """The matrix the test above stores has a positive diagonal, so only a
    factorisation finds it out: numpy's eigenvalues say the same."""
    c = not_positive_definite(14, np.random.default_rng(0))
    assert (np.diag(c) > 0).all() and np.linalg.eigvalsh(c).min() < 0


@pytest.mark.parametrize("case", ["zero covariance", "negative start"])
def test_an_npz_export_with_such_parameters_is_refused_too(case, tmp_path):
    with np.load(DATA / "gaps.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    D = SpectralStateGuidedSynthesis.load_model(DATA / "gaps.npz").n_features
    if case == "zero covariance":
        arrays["state_covariances"] = arrays["state_covariances"].copy()
        arrays["state_covariances"][3] = 0.0
        assert arrays["state_covariances"].shape[1] == D * (D + 1) // 2  # packed, as exported
    else:
        arrays["initial_probabilities"] = arrays["initial_probabilities"].copy()
        arrays["initial_probabilities"][1] = -0.25
        arrays["initial_probabilities"][0] += 0.25
    path = tmp_path / "broken.npz"
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match=f"^{path}: {BROKEN[case]}"):
        SpectralStateGuidedSynthesis.load_model(path)


def test_float16_probabilities_still_load(tmp_path):
    """Rows rounded to float16 sum to 1 only within float16's precision: an
    export at that precision still loads (and is renormalised)."""
    model = SpectralStateGuidedSynthesis.load_checkpoint(DATA / "gaps-params.safetensors")
    path = model.export_model(tmp_path / "half.npz", precision=np.float16)
    with np.load(path) as data:
        off = np.abs(data["transition_matrix"].astype(np.float64).sum(axis=1) - 1).max()
    assert off > 1e-6  # not exactly normalised as stored
    back = SpectralStateGuidedSynthesis.load_model(path)
    assert np.allclose(back.transition_matrix.sum(axis=1), 1, atol=1e-12)


# (metadata entry, its value as JSON, what the message names)
BAD_ENTRIES = {
    "n_states as text": ("config", {"n_states": "many"}, "'n_states' is 'many', not a positive integer"),
    "lpc_order null": ("config", {"lpc_order": None}, "'lpc_order' is None, not a positive integer"),
    "hop_size 0": ("config", {"hop_size": 0}, "'hop_size' is 0, not a positive integer"),
    "sample_rate 1e30": ("config", {"sample_rate": 10**30}, "'sample_rate' is 1000000000000000000000000000000"),
    "training_state a list": ("training_state", [], "training_state is not a JSON object"),
    "iteration as text": ("training_state", {"iteration": "x"}, "training_state['iteration'] is 'x'"),
    "history a number": ("training_state", {"history": 5}, "training_state['history'] is 5, not a list"),
    "sources a number": ("sources", 5, "sources is not a JSON list"),
    "n_frames as text": ("sources", [{"path": "a.wav", "n_frames": "x"}], "sources[0]['n_frames'] is 'x'"),
}


@pytest.mark.parametrize("case", BAD_ENTRIES)
def test_metadata_entries_of_the_wrong_type_are_refused_naming_them(case, tmp_path):
    """Whole files (the digests match) whose JSON entries a model cannot
    take back: refused at load, not a TypeError at load or generate."""
    key, value, fault = BAD_ENTRIES[case]
    tensors, meta = golden_tensors()
    if key == "config":
        value = {**json.loads(meta["config"]), **value}
    path = tmp_path / "entries.safetensors"
    ckpt.write_checkpoint(path, tensors, {**meta, key: json.dumps(value)})
    with pytest.raises(CheckpointError) as err:
        SpectralStateGuidedSynthesis.load_checkpoint(path).generate(0.2, seed=0)
    assert str(err.value).startswith(f"{path}: ") and fault in str(err.value), str(err.value)


def test_flipped_header_bytes_are_checkpoint_errors_even_unverified(tmp_path):
    """Any byte of a real file's header changed, digests not checked: the
    file loads or is refused with a CheckpointError, nothing else."""
    data = (DATA / "gaps-params.safetensors").read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    rng = np.random.default_rng(5)
    path = tmp_path / "flip.safetensors"
    refused = 0
    for pos in rng.integers(0, 8 + n, 300):
        flipped = bytearray(data)
        flipped[pos] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(flipped))
        try:
            SpectralStateGuidedSynthesis.load_checkpoint(path, verify=False)
        except CheckpointError as exc:
            assert str(exc).startswith(f"{path}: ")
            refused += 1
    assert refused > 100


@pytest.mark.parametrize("key, value, fault", [
    ("export_format", np.array("5"), "'export_format' is not a JSON object"),
    ("state_covariances", np.array(["a", "b"]), "tensor 'state_covariances' is <U1, not floating point"),
    ("transition_matrix", np.eye(8, dtype=np.int64), "tensor 'transition_matrix' is int64, not floating point"),
    ("training_state", np.array("[]"), "training_state is not a JSON object"),
])
def test_an_npz_export_with_arrays_of_the_wrong_kind_is_refused(key, value, fault, tmp_path):
    with np.load(DATA / "gaps.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    assert key in arrays and arrays["transition_matrix"].shape == (8, 8)
    arrays[key] = value
    path = tmp_path / "kind.npz"
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError) as err:
        SpectralStateGuidedSynthesis.load_model(path)
    assert str(err.value) == f"{path}: {fault}"
