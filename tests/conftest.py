"""pytest configuration: markers, and a fixed seed per test."""
import numpy as np
import pytest

import pyengine as pe


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a real NVIDIA GPU (run with -m gpu)")
    config.addinivalue_line("markers", "slow: slower tests (still part of the default run)")


@pytest.fixture(autouse=True)
def _seed():
    pe.manual_seed(0)
    np.random.seed(0)
    yield
