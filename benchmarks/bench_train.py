"""pytest-benchmark: one SGD training step of simple_cnn (batch 64, 28x28 inputs) on every
host backend of pyengine and in PyTorch, from the same initial weights and batch
(``pytest benchmarks/bench_train.py --benchmark-only``)."""
import numpy as np
import pytest

from .train_vs_torch import _rename, torch_model

BATCH = 64


def _batch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 1, 28, 28), dtype=np.float32)
    return x, rng.integers(0, 10, BATCH).astype(np.int64)


def _torch_step():
    import torch
    import torch.nn.functional as TF
    torch.manual_seed(0)
    model = torch_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = (torch.from_numpy(a) for a in _batch())

    def step():
        loss = TF.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss)
    return step, {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _pyengine_step(backend, weights):
    import pyengine as pe
    import pyengine.functional as F
    model = pe.models.simple_cnn()
    model.load_state_dict(_rename(weights))
    opt = pe.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = (pe.tensor(a) for a in _batch())

    def step():
        with pe.use_backend(backend):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return float(loss.item())
    return step


def _impls():
    import pyengine as pe
    host = [b for b in pe.backends.AUTO_ORDER["cpu"] if b in pe.backends.available()]
    return ["torch"] + [f"pe:{b}" for b in host]


@pytest.mark.parametrize("impl", _impls())
def test_train_step(benchmark, impl):
    torch_step, weights = _torch_step()
    if impl == "torch":
        step = torch_step
    else:
        step = _pyengine_step(impl.split(":")[1], weights)
        # The first step's loss matches PyTorch's from the same weights and batch.
        np.testing.assert_allclose(step(), torch_step(), rtol=1e-4)
    benchmark.extra_info["images"] = BATCH
    benchmark.pedantic(step, rounds=3 if impl == "pe:numpy" else 10, warmup_rounds=1)
