"""Training on a Dask cluster: bit-identical to a local run, a lost worker changes nothing,
folders on S3 read by the workers, MLflow tracking."""

import os
import signal
import threading
import time

import numpy as np
import pytest
import soundfile as sf
from commands import command
from numpy.testing import assert_array_equal
from signals import music_like

from ssgs import SpectralStateGuidedSynthesis
from ssgs.checkpoint import read_header
from ssgs.distributed import DaskBackend

PARAMS = ("transition_matrix", "initial_probabilities", "state_means", "state_covariances")


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask_corpus")
    rng = np.random.default_rng(40)
    for i in range(4):
        sf.write(folder / f"f{i}.wav", music_like(rng, 2.0 + i), 16000)
    return folder, sorted(str(p) for p in folder.glob("*.wav"))


def train(paths, backend=None, iterations=5, on_iteration=None):
    m = SpectralStateGuidedSynthesis(n_states=6, seed=11, tol=0)
    m.extract_features_from_files(paths, 16000, backend=backend)
    m.initialize_hmm_parameters()
    m.iterative_refinement(iterations, callback=on_iteration)
    return m


def assert_same(a, b):
    for name in PARAMS:
        assert_array_equal(getattr(a, name), getattr(b, name))
    assert [r["log_likelihood"] for r in a.training_history] == [r["log_likelihood"] for r in b.training_history]


def test_dask_training_is_bit_identical_to_local(client, corpus):
    _, paths = corpus
    local = train(paths)
    backend = DaskBackend(client)
    remote = train(paths, backend)
    assert_same(local, remote)
    for name in ("observations", "residual_signals", "lpc_coefficients"):
        assert_array_equal(getattr(local, name), getattr(remote, name))
    # only parameters and statistics travel per iteration: well under a megabyte here
    assert len(backend.bytes_per_iteration) == 5 and max(backend.bytes_per_iteration) < 1_000_000


def test_a_worker_killed_mid_iteration_changes_nothing(client, corpus):
    _, paths = corpus
    local = train(paths, iterations=6)
    backend = DaskBackend(client)
    real_estep = backend.estep
    killed = []

    def estep_with_a_kill(params):
        if len(backend.bytes_per_iteration) == 2 and not killed:
            pids = client.run(os.getpid)
            victim = sorted(pids.values())[0]

            def kill():
                time.sleep(0.01)
                os.kill(victim, signal.SIGKILL)

            threading.Thread(target=kill).start()
            killed.append(victim)
        return real_estep(params)

    backend.estep = estep_with_a_kill
    remote = train(paths, backend, iterations=6)
    assert killed
    assert_same(local, remote)
    client.wait_for_workers(2, timeout=60)


run_train = command("ssgs.train", timeout=600)


def test_cli_with_s3_folders_read_by_the_workers_and_mlflow(corpus, tmp_path, s3_server):
    env, endpoint = s3_server
    folder, paths = corpus
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="us-east-1")
    for p in paths:
        s3.upload_file(p, "ssgs-test", f"audio/{os.path.basename(p)}")
    common = ["--n-states", "5", "--seed", "3", "--tol", "0", "--n-iterations", "4", "-q"]
    remote = run_train("--folders", "s3://ssgs-test/audio", "--dask-workers", "2", "--checkpoint-dir", tmp_path / "r",
                       "--mlflow", f"sqlite:///{tmp_path}/mlflow.db", *common, env=env)
    assert remote.returncode == 0, remote.stderr
    local = run_train("--folders", folder, "--checkpoint-dir", tmp_path / "l", *common)
    assert local.returncode == 0, local.stderr
    a, _ = read_header(tmp_path / "r" / "checkpoint_final.safetensors")
    b, _ = read_header(tmp_path / "l" / "checkpoint_final.safetensors")
    assert a["tensors_sha256"] == b["tensors_sha256"]
    assert '"path": "s3://ssgs-test/audio/f0.wav"' in a["sources"]

    from mlflow.tracking import MlflowClient

    tracking = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = tracking.get_experiment_by_name("ssgs")
    run = tracking.search_runs([experiment.experiment_id])[0]
    assert run.data.params["n_states"] == "5" and run.data.params["files"] == "4"
    history = tracking.get_metric_history(run.info.run_id, "log_likelihood")
    assert [m.step for m in history] == [1, 2, 3, 4]
    assert "checkpoint_final.safetensors" in [f.path for f in tracking.list_artifacts(run.info.run_id)]
    # beside the database, not in ./mlruns of whatever folder the run started from
    assert list((tmp_path / "artifacts").rglob("checkpoint_final.safetensors"))


def test_cli_resume_on_a_cluster_is_bit_identical(corpus, tmp_path):
    folder, _ = corpus
    common = ["--folders", folder, "--n-states", "5", "--seed", "9", "--tol", "0", "--checkpoint-interval", "2", "-q"]
    full = run_train(*common, "--n-iterations", "4", "--checkpoint-dir", tmp_path / "full")
    assert full.returncode == 0, full.stderr
    resumed = run_train("--resume", tmp_path / "full" / "checkpoint_epoch_2.safetensors", "--n-iterations", "4",
                        "--dask-workers", "2", "--checkpoint-dir", tmp_path / "resumed", "-q")
    assert resumed.returncode == 0, resumed.stderr
    a, _ = read_header(tmp_path / "full" / "checkpoint_final.safetensors")
    b, _ = read_header(tmp_path / "resumed" / "checkpoint_final.safetensors")
    assert a["tensors_sha256"] == b["tensors_sha256"]


def test_bad_cluster_options(tmp_path):
    proc = run_train("--demo", "--dask-workers", "0", "--checkpoint-dir", tmp_path)
    assert proc.returncode == 2 and "--dask-workers must be >= 1" in proc.stderr
    proc = run_train("--demo", "--scheduler", "tcp://127.0.0.1:1", "--checkpoint-dir", tmp_path,
                     env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    assert proc.returncode == 2 and "cannot reach the Dask scheduler" in proc.stderr
