"""pytest-benchmark: every implementation of the pool2d family x its shapes x direction
(conftest.py; `pytest benchmarks/bench_pool2d.py --benchmark-only`)."""
from .conftest import family_benchmark

test_pool2d = family_benchmark("pool2d")
