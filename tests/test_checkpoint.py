import json
import os

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from ssgs import CheckpointError, CheckpointNotFoundError, SpectralStateGuidedSynthesis
from ssgs import checkpoint as ckpt
from ssgs.excitation_model import KINDS
from ssgs.runs import RUN_QUANTILES

from excitation import excitation_tables
from signals import music_like

PARAMS = ("transition_matrix", "initial_probabilities", "state_means", "state_covariances")


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(11)
    audio = [music_like(rng, 4.0), music_like(rng, 6.0)]
    return SpectralStateGuidedSynthesis(n_states=34, seed=4).train(audio, 16000, n_em_iterations=3)


def assert_same_model(a, b, artifacts=True):
    for name in PARAMS:
        assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.config() == b.config()
    assert a.training_history == b.training_history
    assert a.iteration == b.iteration and a.converged == b.converged
    assert a.sources == b.sources
    if artifacts:
        for name in ("observations", "lpc_coefficients", "residual_signals", "sequence_lengths",
                     "sequence_samples", "perceptual_features"):
            assert_array_equal(getattr(a, name), getattr(b, name))
        for key in a.frame_metadata:
            assert_array_equal(a.frame_metadata[key], b.frame_metadata[key])


def test_round_trip_with_and_without_artifacts(trained, tmp_path):
    full = trained.save_checkpoint(tmp_path / "full.safetensors")
    back = SpectralStateGuidedSynthesis.load_checkpoint(full)
    assert_same_model(trained, back)
    assert trained.training_state()["rng_state"] is not None
    assert back.training_state()["rng_state"] == trained.training_state()["rng_state"]
    for s in range(2):
        assert_array_equal(back.rebuild_sequence(s), trained.rebuild_sequence(s))
    small = trained.save_checkpoint(tmp_path / "small.safetensors", include_training_artifacts=False)
    light = SpectralStateGuidedSynthesis.load_checkpoint(small)
    assert_same_model(trained, light, artifacts=False)
    assert light.residual_signals is None and not light.has_training_artifacts


def test_sizes(trained, tmp_path):
    seconds = trained.sequence_samples.sum() / 16000
    full = tmp_path / "full.safetensors"
    trained.save_checkpoint(full)
    assert os.path.getsize(full) / seconds <= 100_000
    small = tmp_path / "small.safetensors"
    trained.save_checkpoint(small, include_training_artifacts=False)
    assert os.path.getsize(small) < 100_000  # 34 states


def test_excitation_tables_in_float16_and_older_float32_tables_kept(trained, saved, tmp_path):
    """The residual shapes, their variation and the pitch histogram are
    stored in float16 (and held so in memory: a reload generates the same
    bytes); an older checkpoint's float32 tables load as they were written,
    not rounded to float16."""
    path, tensors, metadata = saved
    half = ("state_pitch_histogram", "state_residual_shape", "excitation_shape_components", "state_shape_spread",
            "state_pitch_log_f0")
    assert all(tensors[name].dtype == np.float16 for name in half)
    back = SpectralStateGuidedSynthesis.load_checkpoint(path)
    assert_array_equal(trained.generate(1.0, seed=2), back.generate(1.0, seed=2))
    rng = np.random.default_rng(3)
    for name in half:  # values float16 cannot hold
        noise = 1 + 1e-5 * rng.standard_normal(tensors[name].shape)
        tensors[name] = (tensors[name].astype(np.float32) * noise).astype(np.float32)
    older = tmp_path / "older.safetensors"
    write_raw(older, tensors, metadata)
    loaded = SpectralStateGuidedSynthesis.load_checkpoint(older)
    # and an npz export of it, at any precision, keeps them so
    loaded.export_model(tmp_path / "older.npz", precision=np.float64)
    exported = SpectralStateGuidedSynthesis.load_model(tmp_path / "older.npz")
    for exc in (loaded.excitation_model, exported.excitation_model):
        for field, name in (("pitch_histogram", half[0]), ("residual_shape", half[1]),
                            ("shape_components", half[2]), ("shape_spread", half[3]), ("pitch_log_f0", half[4])):
            assert getattr(exc, field).dtype == np.float32
            assert_array_equal(getattr(exc, field), tensors[name])


def test_leap_intervals_saved_and_older_checkpoints_without_them(trained, tmp_path):
    """The sizes of the training's pitch leaps are a checkpoint tensor; an
    older checkpoint without it loads, and its leaps draw from the states'
    histograms alone, as they did; a table of another length is refused."""
    leaps = trained.excitation_model.pitch_leaps
    assert leaps.shape == (49,) and leaps.sum() == pytest.approx(1.0)
    path = trained.save_checkpoint(tmp_path / "small.safetensors", include_training_artifacts=False)
    tensors, metadata = ckpt.read_checkpoint(path)
    tensors = {k: np.array(v) for k, v in tensors.items()}
    assert_array_equal(SpectralStateGuidedSynthesis.load_checkpoint(path).excitation_model.pitch_leaps, leaps)
    older = {k: v for k, v in tensors.items() if k != "excitation_pitch_leaps"}
    write_raw(tmp_path / "older.safetensors", older, metadata)
    loaded = SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "older.safetensors")
    assert loaded.excitation_model.pitch_leaps is None
    assert np.isfinite(loaded.generate(0.5, seed=1)).all()
    write_raw(tmp_path / "short.safetensors", dict(tensors, excitation_pitch_leaps=leaps[:12]), metadata)
    with pytest.raises(CheckpointError, match="excitation_pitch_leaps"):
        SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "short.safetensors")
    for share in ("excitation_pitch_leaps", "state_pitch_histogram"):  # a negative share: refused at load
        bad = tensors[share].copy()
        bad.flat[3] = -0.1
        write_raw(tmp_path / "negative.safetensors", dict(tensors, **{share: bad}), metadata)
        with pytest.raises(CheckpointError, match=f"'{share}' has negative values"):
            SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "negative.safetensors")


def test_smoother_rows_older_two_and_unknown(saved, tmp_path):
    """The drawn frames' smoother has 4 rows; an older checkpoint's 2 load and
    are used as they were (the distance from the states' means scaled);
    any other count is refused by name."""
    path, tensors, metadata = saved
    assert tensors["observation_smoother"].shape[0] == 4
    older = dict(tensors, observation_smoother=np.array([[0.5] * 14, [1.2] * 14]))
    write_raw(tmp_path / "older.safetensors", older, metadata)
    loaded = SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "older.safetensors")
    assert loaded.excitation_model.smoother.shape == (2, 14)
    assert np.isfinite(loaded.generate(0.5, seed=1)).all()
    write_raw(tmp_path / "odd.safetensors", dict(tensors, observation_smoother=tensors["observation_smoother"][:3]),
              metadata)
    with pytest.raises(CheckpointError, match="observation_smoother.*3 rows"):
        SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "odd.safetensors")


def test_metadata_describes_the_run(trained, tmp_path):
    path = trained.save_checkpoint(tmp_path / "c.safetensors")
    meta, tensors = ckpt.read_header(path)
    assert meta["format"] == "safetensors" and meta["ssgs_format_version"] == "2"  # 2: coded training audio
    assert json.loads(meta["config"])["n_states"] == 34
    state = json.loads(meta["training_state"])
    assert state["iteration"] == 3 and len(state["history"]) == 3 and state["rng_state"]
    sources = json.loads(meta["sources"])
    assert [s["n_frames"] for s in sources] == list(trained.sequence_lengths)
    assert len(meta["tensors_sha256"]) == 64 and meta["created"].endswith("Z")
    assert tensors["state_covariances"] == {"dtype": "F64", "shape": [34, 14, 14]}  # D = 12 LARs + gain + voicing
    assert tensors["training_audio"]["dtype"] == "U8" and "residual_signals" not in tensors
    bare = trained.save_checkpoint(tmp_path / "p.safetensors", include_training_artifacts=False)
    assert ckpt.read_header(bare)[0]["ssgs_format_version"] == "1"  # what older ssgs reads


def write_raw(path, tensors, metadata):
    """A file with valid digests over whatever we put in it."""
    meta = {k: v for k, v in metadata.items() if k not in ("tensors_sha256", "metadata_sha256")}
    ckpt.write_checkpoint(path, tensors, meta)


@pytest.fixture
def saved(trained, tmp_path):
    trained.excitation_model  # fitted before the save, as training's last checkpoint has it (whatever ran first)
    path = tmp_path / "ok.safetensors"
    trained.save_checkpoint(path)
    tensors, metadata = ckpt.read_checkpoint(path)
    return path, {k: np.array(v) for k, v in tensors.items()}, metadata


@pytest.mark.parametrize("cut", [0, 5, 8, 100, 0.5, -1])
def test_truncated_file(saved, tmp_path, cut):
    path, _, _ = saved
    data = path.read_bytes()
    n = int(len(data) * cut) if isinstance(cut, float) else (len(data) + cut if cut < 0 else cut)
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(data[:n])
    with pytest.raises(CheckpointError, match=str(bad)):
        SpectralStateGuidedSynthesis.load_checkpoint(bad)


def test_every_flipped_byte_is_caught(saved, tmp_path):
    path, _, _ = saved
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    header_len = int.from_bytes(data[:8], "little")
    positions = list(rng.integers(0, 8 + header_len, 40)) + list(rng.integers(8 + header_len, len(data), 60))
    for pos in positions:
        flipped = bytearray(data)
        flipped[pos] ^= 1 << int(rng.integers(8))
        bad = tmp_path / "flip.safetensors"
        bad.write_bytes(bytes(flipped))
        with pytest.raises(CheckpointError):
            SpectralStateGuidedSynthesis.load_checkpoint(bad)


def test_missing_tensor_is_named(saved, tmp_path):
    _, tensors, metadata = saved
    tensors2 = dict(tensors)  # a copy whole: only training_audio goes from it below
    del tensors["state_means"]
    write_raw(tmp_path / "m.safetensors", tensors, metadata)
    with pytest.raises(CheckpointError, match="missing tensor 'state_means'"):
        SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "m.safetensors")
    del tensors2["training_audio_offsets"]
    write_raw(tmp_path / "r.safetensors", tensors2, metadata)
    with pytest.raises(CheckpointError, match="missing tensor 'training_audio_offsets'"):
        SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "r.safetensors")


def test_shape_that_disagrees_with_the_config(saved, tmp_path):
    _, tensors, metadata = saved
    config = json.loads(metadata["config"])
    config["n_states"] = 33
    write_raw(tmp_path / "s.safetensors", tensors, {**metadata, "config": json.dumps(config)})
    with pytest.raises(CheckpointError, match=r"'transition_matrix' has shape \(34, 34\).*needs \(33, 33\)"):
        SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "s.safetensors")
    config["n_states"] = 34
    config["hop_size"] = 128
    write_raw(tmp_path / "h.safetensors", tensors, {**metadata, "config": json.dumps(config)})
    with pytest.raises(CheckpointError, match="'excitation_equaliser' has shape"):
        SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "h.safetensors")


@pytest.mark.parametrize("name", ["state_covariances", "transition_matrix", "training_audio_scale"])
def test_nan_or_inf_is_refused(saved, tmp_path, name):
    _, tensors, metadata = saved
    tensors[name].reshape(-1)[1] = np.nan if name != "transition_matrix" else np.inf
    write_raw(tmp_path / "n.safetensors", tensors, metadata)
    with pytest.raises(CheckpointError, match=f"'{name}' contains NaN or inf"):
        SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "n.safetensors")


def test_newer_format_is_refused(saved, tmp_path):
    _, tensors, metadata = saved
    write_raw(tmp_path / "v.safetensors", tensors, {**metadata, "ssgs_format_version": "3"})
    with pytest.raises(CheckpointError, match="format 3 by a newer ssgs; this ssgs reads up to format 2"):
        SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "v.safetensors")


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "t.safetensors").write_text("hello")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "t.safetensors")
    with pytest.raises(CheckpointNotFoundError, match="no such checkpoint"):
        SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "absent.safetensors")
    with pytest.raises(CheckpointNotFoundError, match="is a folder"):
        SpectralStateGuidedSynthesis.load_checkpoint(tmp_path)
    from safetensors.numpy import save_file

    save_file({"x": np.zeros(3)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="not an ssgs checkpoint"):
        SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "foreign.safetensors")


def test_verify_false_skips_only_the_digests(saved, tmp_path):
    path, _, _ = saved
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01  # a residual sample: structure intact, digest wrong
    bad = tmp_path / "b.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match its SHA-256"):
        SpectralStateGuidedSynthesis.load_checkpoint(bad)
    SpectralStateGuidedSynthesis.load_checkpoint(bad, verify=False)


def test_a_failed_write_leaves_the_previous_checkpoint_whole(trained, tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    trained.save_checkpoint(path)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        trained.save_checkpoint(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["c.safetensors"]  # no temporary left behind
    SpectralStateGuidedSynthesis.load_checkpoint(path)


def test_fsspec_urls(trained, tmp_path):
    for url in ("memory://ssgs-test/run/c.safetensors", f"file://{tmp_path}/d/c.safetensors"):
        trained.save_checkpoint(url)
        assert_same_model(trained, SpectralStateGuidedSynthesis.load_checkpoint(url))


def test_npz_export_round_trip(trained, tmp_path):
    # the defaults: compressed, float32, packed covariances, no artifacts
    small = tmp_path / "m.npz"
    trained.export_model(small)
    with np.load(small, allow_pickle=False) as data:
        assert {"transition_matrix", "state_covariances", "config", "export_format"} <= set(data.files)
        D = trained.n_features
        assert data["state_covariances"].shape == (34, D * (D + 1) // 2)
        assert data["state_means"].dtype == np.float32
        assert "residual_signals" not in data.files
    back = SpectralStateGuidedSynthesis.load_model(small)
    for name in PARAMS:
        assert_allclose(getattr(back, name), getattr(trained, name), rtol=1e-6, atol=1e-7)
    assert_allclose(back.state_covariances, back.state_covariances.transpose(0, 2, 1))
    assert back.config() == trained.config() and back.training_history == trained.training_history
    # the float16 tables come back float16 (not as an older model's float32), so a checkpoint saved
    # from the reloaded model is as small as one saved from the original
    assert back.excitation_model.residual_shape.dtype == np.float16
    assert_array_equal(back.excitation_model.residual_shape, trained.excitation_model.residual_shape)
    assert back.excitation_model.equaliser.dtype == np.float16
    assert_array_equal(back.excitation_model.equaliser, trained.excitation_model.equaliser)
    back.save_checkpoint(tmp_path / "again.safetensors", include_training_artifacts=False)
    trained.save_checkpoint(tmp_path / "first.safetensors", include_training_artifacts=False)
    assert (tmp_path / "again.safetensors").stat().st_size <= (tmp_path / "first.safetensors").stat().st_size + 512
    # exact, unpacked, uncompressed, with artifacts
    full = tmp_path / "full.npz"
    trained.export_model(full, use_compression=False, precision=np.float64, pack_covariances=False,
                         include_training_artifacts=True)
    exact = SpectralStateGuidedSynthesis.load_model(full)
    assert_same_model(trained, exact)
    assert_array_equal(exact.rebuild_sequence(1), trained.rebuild_sequence(1))
    assert (tmp_path / "m.npz").stat().st_size < full.stat().st_size
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable .npz model"):
        SpectralStateGuidedSynthesis.load_model(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="precision must be a floating-point dtype"):
        trained.export_model(tmp_path / "x.npz", precision=np.int32)



def test_npz_refuses_bad_tables(trained, tmp_path):
    """load_model checks an npz export as load_checkpoint checks a checkpoint:
    the excitation's tables and the artifacts, not only the parameters."""
    good = tmp_path / "good.npz"
    trained.export_model(good, include_training_artifacts=True)
    with np.load(good, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    N = trained.n_states
    cases = {
        "state_residual_shape": (np.zeros((N, 7), np.float16), "'state_residual_shape' has shape"),
        "state_silence": (-np.ones(N, np.float32), "'state_silence' has negative values"),
        "state_periodicity": (np.full(N, np.nan, np.float32), "'state_periodicity' contains NaN"),
        "state_run_quantiles": (np.tile(np.linspace(5, 1, 33, dtype=np.float32), (N, 1)), "state_run_quantiles"),
        "training_audio_bits": (np.array([16, 12]), "sequence 1's training audio has scale .* and 12 bits"),
        "sequence_samples": (arrays["sequence_samples"] + 4096, "'sequence_samples' disagrees"),
        "config": (np.array(json.dumps({"n_states": N})), "configuration lacks 'lpc_order'"),
    }
    for key, (value, message) in cases.items():
        path = tmp_path / f"bad_{key}.npz"
        np.savez(path, **dict(arrays, **{key: value}))
        with pytest.raises(CheckpointError, match=message):
            SpectralStateGuidedSynthesis.load_model(path)
    SpectralStateGuidedSynthesis.load_model(good)

def test_same_seed_same_checkpoint_tensors(tmp_path):
    rng = np.random.default_rng(3)
    audio = [music_like(rng, 3.0), music_like(rng, 4.0)]
    digests = []
    for nt in (1, 2):
        m = SpectralStateGuidedSynthesis(n_states=6, seed=8, n_threads=nt).train(audio, 16000, 4)
        meta, _ = ckpt.read_header(m.save_checkpoint(tmp_path / f"{nt}.safetensors"))
        digests.append((meta["tensors_sha256"], meta["config"], meta["sources"]))
    assert digests[0] == digests[1]


def test_files_are_standard_safetensors(trained, tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    path = trained.save_checkpoint(tmp_path / "c.safetensors")
    ours, meta = ckpt.read_checkpoint(path)
    theirs = load_file(str(path))
    assert set(theirs) == set(ours)
    for name in ours:
        assert theirs[name].dtype == ours[name].dtype
        assert_array_equal(theirs[name], ours[name])
    with safe_open(str(path), framework="numpy") as f:
        assert f.metadata() == meta
    assert (8 + int.from_bytes(path.read_bytes()[:8] if hasattr(path, "read_bytes") else open(path, "rb").read(8),
                               "little")) % 8 == 0


def saved_and_loaded(model, tmp_path):
    """The model saved without artifacts, and loaded back: (path, loaded model)."""
    path = model.save_checkpoint(tmp_path / "small.safetensors", include_training_artifacts=False)
    return path, SpectralStateGuidedSynthesis.load_checkpoint(path)


def without(tensors, metadata, name, tmp_path):
    """The model of a checkpoint like ``tensors`` but without tensor ``name`` (an older one)."""
    write_raw(tmp_path / "older.safetensors", {k: v for k, v in tensors.items() if k != name}, metadata)
    return SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "older.safetensors")

def test_run_quantiles_saved_and_checked(trained, tmp_path):
    """A state's run quantiles are a checkpoint tensor (loaded, a reload
    generates the same bytes); an older checkpoint without them loads with
    none (every state geometric); a row that is neither zeros nor increasing
    run lengths, or a table of the wrong shape, is refused by name."""
    q = np.zeros((trained.n_states, RUN_QUANTILES), np.float32)
    q[2] = np.linspace(1, 15, RUN_QUANTILES)
    with excitation_tables(trained, run_quantiles=q):
        path, back = saved_and_loaded(trained, tmp_path)
        assert_array_equal(back.excitation_model.run_quantiles, q)
        assert_array_equal(back.generate(2.0, seed=3), trained.generate(2.0, seed=3))
    tensors, metadata = ckpt.read_checkpoint(path)
    tensors = {k: np.array(v) for k, v in tensors.items()}
    assert without(tensors, metadata, "state_run_quantiles", tmp_path).excitation_model.run_quantiles is None
    for bad in (q[:, :5], q[:-1]):
        write_raw(tmp_path / "shape.safetensors", dict(tensors, state_run_quantiles=bad), metadata)
        with pytest.raises(CheckpointError, match="state_run_quantiles"):
            SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "shape.safetensors")
    for row in (np.linspace(0.5, 15, RUN_QUANTILES), np.linspace(15, 1, RUN_QUANTILES)):
        bad = q.copy()
        bad[4] = row
        write_raw(tmp_path / "bad.safetensors", dict(tensors, state_run_quantiles=bad), metadata)
        with pytest.raises(CheckpointError, match="'state_run_quantiles' has a row that is neither"):
            SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "bad.safetensors")


def test_shape_regression_saved_and_checked(trained, tmp_path):
    """How the shapes follow the frames is a checkpoint tensor (float16;
    a reload generates the same bytes); an older checkpoint without it loads
    with none; a table of the wrong shape, or regressing more components
    than the model has, is refused by name."""
    N, D = trained.n_states, trained.n_features
    reg = np.random.default_rng(5).normal(0, 0.3, (N, 2, D)).astype(np.float16)
    with excitation_tables(trained, shape_regression=reg):
        path, back = saved_and_loaded(trained, tmp_path)
        assert back.excitation_model.shape_regression.dtype == np.float16
        assert_array_equal(back.excitation_model.shape_regression, reg)
        with_reg = trained.generate(2.0, seed=3)
        assert_array_equal(back.generate(2.0, seed=3), with_reg)
    with excitation_tables(trained, shape_regression=None):
        assert not np.array_equal(trained.generate(2.0, seed=3), with_reg)  # it does move the shapes
    tensors, metadata = ckpt.read_checkpoint(path)
    tensors = {k: np.array(v) for k, v in tensors.items()}
    assert without(tensors, metadata, "state_shape_regression", tmp_path).excitation_model.shape_regression is None
    K = tensors["excitation_shape_components"].shape[0]
    for bad, message in ((reg[:, :, :3], "'state_shape_regression' has shape"),
                         (np.zeros((N, K + 1, D), np.float16), f"regresses {K + 1} shape components, but the model has {K}")):
        write_raw(tmp_path / "bad.safetensors", dict(tensors, state_shape_regression=bad), metadata)
        with pytest.raises(CheckpointError, match=message):
            SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "bad.safetensors")


def test_equaliser_saved_and_checked(trained, tmp_path):
    """The excitation kinds' equaliser is a checkpoint tensor (float16; a
    reload generates the same bytes); an older checkpoint without it loads
    with none, and generates without the correction. A table with fewer
    rows than kinds (a model older than a kind) loads, and the kinds it has
    no row for generate without the correction, the others with theirs; a
    table with more rows than kinds, or of the wrong width, is refused by
    name."""
    eq = trained.excitation_model.equaliser
    assert eq is not None and eq.shape == (3, trained.hop_size // 2 + 1) and eq.dtype == np.float16
    path, back = saved_and_loaded(trained, tmp_path)
    assert_array_equal(back.excitation_model.equaliser, eq)
    with_eq = trained.generate(2.0, seed=3, excitation_type="Wavelet")
    assert_array_equal(back.generate(2.0, seed=3, excitation_type="Wavelet"), with_eq)
    tensors, metadata = ckpt.read_checkpoint(path)
    tensors = {k: np.array(v) for k, v in tensors.items()}
    older = without(tensors, metadata, "excitation_equaliser", tmp_path)
    assert older.excitation_model.equaliser is None
    with excitation_tables(trained, equaliser=None):
        plain = trained.generate(2.0, seed=3, excitation_type="Wavelet")
    assert_array_equal(older.generate(2.0, seed=3, excitation_type="Wavelet"), plain)
    assert not np.array_equal(plain, with_eq)
    assert KINDS[2] == "noise"
    write_raw(tmp_path / "fewer.safetensors", dict(tensors, excitation_equaliser=eq[:2]), metadata)
    fewer = SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "fewer.safetensors")
    assert_array_equal(fewer.excitation_model.equaliser, eq[:2])
    assert_array_equal(fewer.generate(2.0, seed=3, excitation_type="Wavelet"), with_eq)  # its row kept
    with excitation_tables(trained, equaliser=None):
        plain_noise = trained.generate(2.0, seed=3, excitation_type="Noise")
    with_eq_noise = trained.generate(2.0, seed=3, excitation_type="Noise")
    assert not np.array_equal(plain_noise, with_eq_noise)
    assert_array_equal(fewer.generate(2.0, seed=3, excitation_type="Noise"), plain_noise)  # no row: no correction
    for bad, message in ((np.concatenate([eq, eq[:1]]), "'excitation_equaliser' has 4 rows, but ssgs knows 3"),
                         (eq[:, :-1], "'excitation_equaliser' has shape")):
        write_raw(tmp_path / "bad.safetensors", dict(tensors, excitation_equaliser=bad), metadata)
        with pytest.raises(CheckpointError, match=message):
            SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "bad.safetensors")
