import os
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import ssgs.kernels

# One base seed for the whole run, printed in the header so any failure can be
# replayed with SSGS_TEST_SEED=<seed> pytest ...
SEED = int(os.environ.get("SSGS_TEST_SEED", "20261125"))

settings.register_profile(
    "ssgs", deadline=None, max_examples=60, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("SSGS_HYPOTHESIS_PROFILE", "ssgs"))


def pytest_report_header(config):
    return [f"ssgs test seed: SSGS_TEST_SEED={SEED}",
            f"ssgs kernels: OpenMP {'on' if ssgs.kernels.have_openmp() else 'off'}"]


@pytest.fixture
def rng(request):
    """A generator seeded from the base seed and the test's name."""
    return np.random.default_rng([SEED, zlib.crc32(request.node.nodeid.encode())])
