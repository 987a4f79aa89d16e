"""pytest-benchmark: every implementation of the conv2d family x its shapes x direction
(conftest.py; `pytest benchmarks/bench_conv2d.py --benchmark-only`)."""
from .conftest import family_benchmark

test_conv2d = family_benchmark("conv2d")
