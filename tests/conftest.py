import os
import socket
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import ssgs.kernels

# One base seed for the whole run, printed in the header so any failure can be
# replayed with SSGS_TEST_SEED=<seed> pytest ...
SEED = int(os.environ.get("SSGS_TEST_SEED", "20261125"))

# derandomize: every run (CI included) tries the same examples, so a run that
# passes once passes again; new examples come from changing the tests
settings.register_profile(
    "ssgs", deadline=None, max_examples=60, print_blob=True, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", deadline=None, max_examples=500, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("SSGS_HYPOTHESIS_PROFILE", "ssgs"))


def pytest_report_header(config):
    return [f"ssgs test seed: SSGS_TEST_SEED={SEED}",
            f"ssgs kernels: OpenMP {'on' if ssgs.kernels.have_openmp() else 'off'}"]


@pytest.fixture(autouse=True, scope="session")
def _cache_dir(tmp_path_factory):
    """Training's on-disk corpora go to a folder of the test run's (the
    commands it runs in subprocesses inherit the variable), never to the
    user's cache; a test that checks them sets its own."""
    folder = str(tmp_path_factory.mktemp("ssgs-cache"))
    saved = os.environ.get("SSGS_CACHE_DIR")
    os.environ["SSGS_CACHE_DIR"] = folder
    yield folder
    if saved is None:
        os.environ.pop("SSGS_CACHE_DIR", None)
    else:
        os.environ["SSGS_CACHE_DIR"] = saved


@pytest.fixture
def rng(request):
    """A generator seeded from the base seed and the test's name."""
    return np.random.default_rng([SEED, zlib.crc32(request.node.nodeid.encode())])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_server():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": endpoint, "FSSPEC_S3_ENDPOINT_URL": endpoint}
    import boto3

    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                 region_name="us-east-1").create_bucket(Bucket="ssgs-test")
    yield env, endpoint
    server.stop()
