"""pytest-benchmark: every implementation of the softmax family x its shapes x direction
(conftest.py; `pytest benchmarks/bench_softmax.py --benchmark-only`)."""
from .conftest import family_benchmark

test_softmax = family_benchmark("softmax")
