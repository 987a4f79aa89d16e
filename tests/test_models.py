"""pyengine.models: simple_cnn has the parameter names and shapes of the equivalent torch
network, loads its (numpy-converted) state_dict in one call and then computes torch's outputs
and gradients; the model registry."""
from collections import OrderedDict

import numpy as np
import pytest
import torch

import pyengine as pe
from pyengine import models, nn, optim

from .helpers import assert_close
from .tolerances import tolerance

tnn = torch.nn


def torch_simple_cnn(num_classes=10, in_channels=1, side=7):
    """The torch network simple_cnn mirrors, as one nn.Sequential."""
    return tnn.Sequential(OrderedDict(
        features=tnn.Sequential(
            tnn.Conv2d(in_channels, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(32, 64, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2)),
        classifier=tnn.Sequential(
            tnn.Flatten(), tnn.Linear(64 * side * side, 128), tnn.ReLU(),
            tnn.Linear(128, num_classes))))


EXPECTED_KEYS = ["features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias",
                 "classifier.1.weight", "classifier.1.bias", "classifier.3.weight",
                 "classifier.3.bias"]


@pytest.mark.parametrize("num_classes,in_channels", [(10, 1), (7, 3)])
def test_simple_cnn_state_dict_layout_matches_torch(num_classes, in_channels):
    pm = models.simple_cnn(num_classes=num_classes, in_channels=in_channels)
    tm = torch_simple_cnn(num_classes, in_channels)
    ps, ts = pm.state_dict(), tm.state_dict()
    assert list(ps) == list(ts) == EXPECTED_KEYS
    for k in ts:
        assert ps[k].shape == tuple(ts[k].shape) and ps[k].dtype == np.float32, k
    assert ps["classifier.1.weight"].shape == (128, 3136)
    # Same layers, same repr (only the outer class name differs).
    assert repr(pm).replace("SimpleCNN(", "Sequential(", 1) == repr(tm)


def test_simple_cnn_loads_torch_weights_and_matches_outputs_and_grads():
    torch.manual_seed(0)
    tm = torch_simple_cnn()
    pm = models.simple_cnn()
    result = pm.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    target = np.array([3, 7])
    yp = pm(pe.Tensor(x))
    yt = tm(torch.from_numpy(x))
    atol, rtol = tolerance("conv2d", np.float32)
    assert yp.shape == (2, 10)
    assert_close(yp, yt, atol, rtol, name="logits")
    lp = nn.CrossEntropyLoss()(yp, pe.tensor(target))
    lt = tnn.CrossEntropyLoss()(yt, torch.from_numpy(target))
    lp.backward()
    lt.backward()
    assert_close(lp, lt, atol, rtol, name="loss")
    tparams = dict(tm.named_parameters())
    for name, p in pm.named_parameters():
        assert_close(p.grad, tparams[name].grad, atol, rtol, name=f"grad of {name}")


def test_simple_cnn_sgd_step_matches_torch():
    torch.manual_seed(1)
    tm = torch_simple_cnn()
    pm = models.get_model("simple_cnn")
    pm.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    popt = optim.SGD(pm.parameters(), lr=0.05, momentum=0.9)
    topt = torch.optim.SGD(tm.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(1)
    for _ in range(2):
        x = rng.standard_normal((2, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, 2)
        for model, opt, loss in ((pm, popt, nn.CrossEntropyLoss()(pm(pe.Tensor(x)), pe.tensor(y))),
                                 (tm, topt, tnn.CrossEntropyLoss()(tm(torch.from_numpy(x)),
                                                                   torch.from_numpy(y)))):
            opt.zero_grad()
            loss.backward()
            opt.step()
    tstate = tm.state_dict()
    for k, v in pm.state_dict().items():
        assert_close(v, tstate[k], 1e-5, 1e-4, name=k)


def test_simple_cnn_other_sizes():
    pm = models.simple_cnn(num_classes=4, in_channels=3, input_size=16)
    tm = torch_simple_cnn(4, 3, side=4)
    pm.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((3, 3, 16, 16)).astype(np.float32)
    assert_close(pm(pe.Tensor(x)), tm(torch.from_numpy(x)), *tolerance("conv2d", np.float32))


def test_registry():
    assert models.MODELS["simple_cnn"] is models.simple_cnn
    assert "simple_cnn" in models.list_models()
    m = models.get_model("simple_cnn", num_classes=5)
    assert isinstance(m, nn.Module) and m.classifier[3].out_features == 5
    with pytest.raises(KeyError, match="unknown model 'resnet9000'.*simple_cnn"):
        models.get_model("resnet9000")
    with pytest.raises(ValueError, match="num_classes"):
        models.simple_cnn(num_classes=0)
    with pytest.raises(TypeError):
        models.get_model("simple_cnn", depth=3)
