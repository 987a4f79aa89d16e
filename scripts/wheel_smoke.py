"""Smoke check of an installed pyengine wheel, run from a fresh virtual environment away from the
source tree (scripts/wheel_smoke.sh): import, `pyengine info`, a conv forward/backward on the
native backend against the numpy reference, one training step. Exits non-zero on any failure."""
import os
import subprocess
import sys

import numpy as np

import pyengine as pe
import pyengine.functional as F

here = os.path.dirname(os.path.abspath(pe.__file__))
assert "site-packages" in here, f"pyengine imported from {here}, not from the installed wheel"
available = pe.backends.available()
assert "cpu" in available, f"the native module did not load: {pe.backends.unavailable()}"
assert "cuda_emu" in available, f"the emulator module did not load: {pe.backends.unavailable()}"

info = subprocess.run([sys.executable, "-m", "pyengine", "info"], capture_output=True, text=True,
                      check=True).stdout
assert "backends available" in info and "CUDA:" in info, info
print(info.splitlines()[0])


def conv(backend):
    rng = np.random.default_rng(0)
    x = pe.tensor(rng.standard_normal((2, 3, 9, 8), dtype=np.float32), requires_grad=True)
    w = pe.tensor(rng.standard_normal((4, 3, 3, 3), dtype=np.float32), requires_grad=True)
    with pe.use_backend(backend):
        y = F.conv2d(x, w, stride=2, padding=1)
        y.backward(pe.ones_like(y))
    return y.numpy(), x.grad.numpy(), w.grad.numpy()


for got, want in zip(conv("cpu"), conv("numpy")):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
print("conv2d forward/backward on the native backend matches the numpy reference")

pe.manual_seed(0)
model = pe.models.simple_cnn()
opt = pe.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
rng = np.random.default_rng(1)
x = pe.tensor(rng.standard_normal((16, 1, 28, 28), dtype=np.float32))
y = pe.tensor(rng.integers(0, 10, 16))
before = [p.numpy().copy() for p in model.parameters()]
loss = F.cross_entropy(model(x), y)
opt.zero_grad()
loss.backward()
opt.step()
assert np.isfinite(loss.item())
assert all(not np.array_equal(b, p.numpy()) for b, p in zip(before, model.parameters()))
after = F.cross_entropy(model(x), y).item()
assert after < loss.item(), (loss.item(), after)
print(f"one training step of simple_cnn: loss {loss.item():.4f} -> {after:.4f}")
print("wheel smoke check passed")
