"""pyengine.nn against torch.nn: every layer's forward and backward with the same weights, the
state_dict names and shapes, the Module machinery (registration, traversal, to(), train/eval,
load_state_dict and its errors, repr), nn.init and clip_grad_norm_."""
import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch

import pyengine as pe
from pyengine import nn

from .helpers import assert_close
from .tolerances import tolerance

tnn = torch.nn


def _numpy_state(tmodule):
    return {k: v.detach().numpy().copy() for k, v in tmodule.state_dict().items()}


def _same_state_layout(pm, tm):
    ps, ts = pm.state_dict(), tm.state_dict()
    assert list(ps) == list(ts)
    for k in ts:
        assert ps[k].shape == tuple(ts[k].shape), k
        assert ps[k].dtype == np.dtype(str(ts[k].dtype).replace("torch.", "")), k


def _distinct(shape, rng, dtype):
    """Values with no ties (max pooling picks the same element in both libraries)."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) / n - 0.5).astype(dtype)


def check_layer(pm, tm, x, op, dtype=np.float32, extra_inputs=(), seed=0):
    """Copy tm's state into pm, run both on x, compare output, input and parameter gradients
    and the buffers afterwards."""
    _same_state_layout(pm, tm)
    result = pm.load_state_dict(_numpy_state(tm))
    assert result.missing_keys == [] and result.unexpected_keys == []
    atol, rtol = tolerance(op, dtype)
    xp = pe.Tensor(x.copy(), requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yp = pm(xp, *extra_inputs[0]) if extra_inputs else pm(xp)
    yt = tm(xt, *extra_inputs[1]) if extra_inputs else tm(xt)
    assert_close(yp, yt, atol, rtol, name=f"{op} forward")
    g = np.random.default_rng(seed).standard_normal(tuple(yt.shape)).astype(dtype)
    yp.backward(pe.tensor(g))
    yt.backward(torch.from_numpy(g))
    assert_close(xp.grad, xt.grad, atol, rtol, name=f"{op} input grad")
    tparams = dict(tm.named_parameters())
    for name, p in pm.named_parameters():
        assert_close(p.grad, tparams[name].grad, atol, rtol, name=f"{op} grad of {name}")
    tbufs = dict(tm.named_buffers())
    for name, b in pm.named_buffers():
        assert_close(b, tbufs[name], atol, rtol, name=f"{op} buffer {name}")
    return yp, yt


CONV_CASES = [
    (dict(in_channels=3, out_channels=4, kernel_size=3), (2, 3, 7, 6)),
    (dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=(2, 1), padding=(1, 2),
          dilation=(1, 2), groups=2, bias=False), (2, 4, 9, 8)),
    (dict(in_channels=2, out_channels=3, kernel_size=4, padding="same", dilation=2), (1, 2, 9, 7)),
    (dict(in_channels=2, out_channels=3, kernel_size=(4, 2), padding="same"), (2, 2, 6, 5)),
    (dict(in_channels=2, out_channels=3, kernel_size=3, padding="valid"), (2, 2, 5, 6)),
    (dict(in_channels=2, out_channels=3, kernel_size=3, padding=1, padding_mode="reflect"),
     (2, 2, 5, 6)),
    (dict(in_channels=2, out_channels=3, kernel_size=3, padding=(2, 1), stride=2,
          padding_mode="replicate"), (2, 2, 5, 6)),
    (dict(in_channels=2, out_channels=3, kernel_size=3, padding=1, padding_mode="circular"),
     (2, 2, 5, 6)),
    (dict(in_channels=2, out_channels=3, kernel_size=4, padding="same",
          padding_mode="reflect"), (1, 2, 6, 7)),
    (dict(in_channels=3, out_channels=2, kernel_size=3), (3, 6, 5)),  # unbatched
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's own
@pytest.mark.parametrize("kwargs,x_shape", CONV_CASES)
def test_conv2d_matches_torch(kwargs, x_shape):
    torch.manual_seed(0)
    tm = tnn.Conv2d(**kwargs)
    pm = nn.Conv2d(**kwargs)
    x = np.random.default_rng(1).standard_normal(x_shape).astype(np.float32)
    check_layer(pm, tm, x, "conv2d")
    assert repr(pm) == repr(tm)


def test_conv2d_float64():
    torch.manual_seed(0)
    tm = tnn.Conv2d(3, 5, 3, stride=2, padding=1).double()
    pm = nn.Conv2d(3, 5, 3, stride=2, padding=1, dtype=pe.float64)
    x = np.random.default_rng(1).standard_normal((2, 3, 7, 7))
    check_layer(pm, tm, x, "conv2d", np.float64)


@pytest.mark.parametrize("kwargs,x_shape,output_size", [
    (dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, output_padding=1,
          groups=2), (2, 4, 4, 5), None),
    (dict(in_channels=3, out_channels=2, kernel_size=(2, 3), dilation=2, bias=False),
     (1, 3, 4, 4), None),
    (dict(in_channels=3, out_channels=2, kernel_size=3, stride=3), (2, 3, 3, 4), (10, 13)),
    (dict(in_channels=3, out_channels=2, kernel_size=3, stride=2), (2, 3, 3, 4),
     (2, 2, 8, 10)),
])
def test_conv_transpose2d_matches_torch(kwargs, x_shape, output_size):
    torch.manual_seed(0)
    tm = tnn.ConvTranspose2d(**kwargs)
    pm = nn.ConvTranspose2d(**kwargs)
    x = np.random.default_rng(1).standard_normal(x_shape).astype(np.float32)
    extra = (((output_size,),) * 2) if output_size is not None else ()
    check_layer(pm, tm, x, "conv_transpose2d", extra_inputs=extra)
    assert repr(pm) == repr(tm)


def test_conv_transpose2d_bad_output_size():
    pm = nn.ConvTranspose2d(2, 2, 3, stride=2)
    x = pe.Tensor(np.zeros((1, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="valid sizes range from 7 to 8"):
        pm(x, output_size=(9, 9))


@pytest.mark.parametrize("pm,tm,x_shape", [
    (nn.MaxPool2d(2), tnn.MaxPool2d(2), (2, 3, 6, 7)),
    (nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
     tnn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 2, 7, 8)),
    (nn.MaxPool2d((2, 3), stride=1, dilation=2), tnn.MaxPool2d((2, 3), stride=1, dilation=2),
     (1, 2, 7, 8)),
    (nn.AvgPool2d(2), tnn.AvgPool2d(2), (2, 3, 6, 7)),
    (nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
     tnn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 2, 7, 8)),
    (nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, divisor_override=4),
     tnn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, divisor_override=4), (1, 2, 6, 5)),
    (nn.AdaptiveAvgPool2d((3, 2)), tnn.AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5)),
    (nn.AdaptiveAvgPool2d((None, 3)), tnn.AdaptiveAvgPool2d((None, 3)), (1, 2, 4, 7)),
    (nn.AdaptiveAvgPool2d(1), tnn.AdaptiveAvgPool2d(1), (2, 3, 5, 5)),
    (nn.Flatten(), tnn.Flatten(), (2, 3, 4, 5)),
    (nn.Flatten(0, 2), tnn.Flatten(0, 2), (2, 3, 4, 5)),
    (nn.Identity(54, unused=1), tnn.Identity(54, unused=1), (2, 3)),
    (nn.ReLU(), tnn.ReLU(), (3, 4, 5)),
    (nn.LeakyReLU(0.2), tnn.LeakyReLU(0.2), (3, 4, 5)),
    (nn.LeakyReLU(), tnn.LeakyReLU(), (3, 4)),
    (nn.Sigmoid(), tnn.Sigmoid(), (3, 4, 5)),
    (nn.Tanh(), tnn.Tanh(), (3, 4, 5)),
    (nn.Softmax(dim=1), tnn.Softmax(dim=1), (3, 4, 5)),
    (nn.Softmax(dim=-1), tnn.Softmax(dim=-1), (3, 4, 5)),
    (nn.LogSoftmax(dim=1), tnn.LogSoftmax(dim=1), (3, 4, 5)),
], ids=lambda v: repr(v) if isinstance(v, (nn.Module, tuple)) else None)
def test_parameterless_layers_match_torch(pm, tm, x_shape):
    x = _distinct(x_shape, np.random.default_rng(2), np.float32) * 8
    op = {"Softmax": "softmax", "LogSoftmax": "log_softmax", "AvgPool2d": "avg_pool2d",
          "MaxPool2d": "max_pool2d"}.get(type(pm).__name__, type(pm).__name__)
    check_layer(pm, tm, x, op)
    assert repr(pm) == repr(tm)


def test_maxpool_indices_and_unpool_match_torch():
    x = _distinct((2, 3, 6, 7), np.random.default_rng(3), np.float32)
    pool_p, pool_t = nn.MaxPool2d(2, return_indices=True), tnn.MaxPool2d(2, return_indices=True)
    yp, ip = pool_p(pe.Tensor(x))
    yt, it = pool_t(torch.from_numpy(x))
    assert np.array_equal(ip.numpy(), it.numpy())
    unp, unt = nn.MaxUnpool2d(2), tnn.MaxUnpool2d(2)
    assert repr(unp) == repr(unt)
    check_layer(unp, unt, yt.numpy(), "max_unpool2d",
                extra_inputs=((ip, (2, 3, 6, 7)), (it, (2, 3, 6, 7))))


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias):
    torch.manual_seed(0)
    tm, pm = tnn.Linear(6, 5, bias=bias), nn.Linear(6, 5, bias=bias)
    x = np.random.default_rng(4).standard_normal((4, 3, 6)).astype(np.float32)
    check_layer(pm, tm, x, "linear")
    assert repr(pm) == repr(tm)


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(momentum=None),
    dict(momentum=0.3, eps=1e-3),
    dict(affine=False),
    dict(track_running_stats=False),
    dict(affine=False, track_running_stats=False),
    dict(bias=False),
])
def test_batchnorm2d_train_and_eval_match_torch(kwargs):
    tm, pm = tnn.BatchNorm2d(3, **kwargs), nn.BatchNorm2d(3, **kwargs)
    assert repr(pm) == repr(tm)
    rng = np.random.default_rng(5)
    with torch.no_grad():  # non-trivial affine parameters
        if tm.weight is not None:
            tm.weight.uniform_(0.5, 1.5)
        if tm.bias is not None:
            tm.bias.uniform_(-0.5, 0.5)
    for step in range(3):  # several batches: running statistics and the cumulative average
        x = (rng.standard_normal((4, 3, 5, 4)) * (step + 1) + step).astype(np.float32)
        if step == 0:
            check_layer(pm, tm, x, "batch_norm")
        else:
            yp, yt = pm(pe.Tensor(x)), tm(torch.from_numpy(x))
            assert_close(yp, yt, *tolerance("batch_norm", np.float32))
    for name, b in tm.named_buffers():
        assert_close(getattr(pm, name), b, *tolerance("batch_norm", np.float32), name=name)
    pm.eval()
    tm.eval()
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    check_layer(pm, tm, x, "batch_norm")


def test_batchnorm2d_buffers_like_torch():
    pm, tm = nn.BatchNorm2d(4), tnn.BatchNorm2d(4)
    _same_state_layout(pm, tm)
    assert pm.num_batches_tracked.dtype == np.int64 and pm.num_batches_tracked.shape == ()
    pm(pe.Tensor(np.random.default_rng(0).standard_normal((2, 4, 3, 3)).astype(np.float32)))
    assert pm.num_batches_tracked.item() == 1
    assert list(nn.BatchNorm2d(4, track_running_stats=False).state_dict()) == ["weight", "bias"]
    with pytest.raises(ValueError, match="expected 4D input"):
        pm(pe.Tensor(np.zeros((2, 4), np.float32)))


def test_dropout_train_and_eval():
    drop = nn.Dropout(0.25)
    assert repr(drop) == repr(tnn.Dropout(0.25))
    x = pe.Tensor(np.ones((200, 50), np.float32), requires_grad=True)
    y = drop(x)
    kept = y.numpy() != 0
    assert 0.70 < kept.mean() < 0.80
    assert np.allclose(y.numpy()[kept], 1 / 0.75)
    y.sum().backward()
    assert np.allclose(x.grad.numpy(), kept / 0.75)
    drop.eval()
    assert np.array_equal(drop(x).numpy(), x.numpy())
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_train_eval_switch_every_submodule():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.5),
                        nn.Sequential(nn.Dropout(0.1)))
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(ValueError, match="boolean"):
        net.train("yes")
    # In eval mode the network is deterministic and BatchNorm stops updating its statistics.
    x = pe.Tensor(np.random.default_rng(0).standard_normal((2, 1, 5, 5)).astype(np.float32))
    net.eval()
    before = net[1].running_mean.numpy().copy()
    a, b = net(x).numpy(), net(x).numpy()
    assert np.array_equal(a, b)
    assert np.array_equal(net[1].running_mean.numpy(), before)
    assert net[1].num_batches_tracked.item() == 0


LOSS_CASES = [
    ("cross_entropy", lambda L, w: L.CrossEntropyLoss(), "class"),
    ("cross_entropy", lambda L, w: L.CrossEntropyLoss(weight=w, reduction="sum"), "class"),
    ("cross_entropy", lambda L, w: L.CrossEntropyLoss(ignore_index=1, reduction="none"),
     "class"),
    ("cross_entropy", lambda L, w: L.CrossEntropyLoss(label_smoothing=0.2), "class"),
    ("cross_entropy", lambda L, w: L.CrossEntropyLoss(), "prob"),
    ("nll_loss", lambda L, w: L.NLLLoss(), "logprob"),
    ("nll_loss", lambda L, w: L.NLLLoss(weight=w, ignore_index=0), "logprob"),
    ("mse_loss", lambda L, w: L.MSELoss(), "real"),
    ("mse_loss", lambda L, w: L.MSELoss(reduction="sum"), "real"),
    ("smooth_l1_loss", lambda L, w: L.SmoothL1Loss(beta=0.5), "real"),
    ("smooth_l1_loss", lambda L, w: L.SmoothL1Loss(reduction="none"), "real"),
]


@pytest.mark.parametrize("op,make,kind", LOSS_CASES)
def test_losses_match_torch(op, make, kind):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 4, 3)).astype(np.float32)
    w = rng.uniform(0.5, 2.0, 4).astype(np.float32)
    pm, tm = make(nn, pe.tensor(w)), make(tnn, torch.from_numpy(w))
    assert repr(pm) == repr(tm)
    if kind == "class" or kind == "logprob":
        target = rng.integers(0, 4, (5, 3))
        tp, tt = pe.tensor(target), torch.from_numpy(target)
        if kind == "logprob":
            x = np.log(rng.dirichlet(np.ones(4), size=(5, 3)).transpose(0, 2, 1)).astype(np.float32)
    elif kind == "prob":
        target = rng.dirichlet(np.ones(4), size=(5, 3)).transpose(0, 2, 1).astype(np.float32)
        tp, tt = pe.tensor(target), torch.from_numpy(target)
    else:
        target = rng.standard_normal(x.shape).astype(np.float32)
        tp, tt = pe.tensor(target), torch.from_numpy(target)
    _same_state_layout(pm, tm)
    check_layer(pm, tm, x, op, extra_inputs=((tp,), (tt,)))


def test_loss_weight_is_a_buffer():
    w = np.array([1.0, 2.0, 3.0], np.float32)
    pm, tm = nn.CrossEntropyLoss(weight=pe.tensor(w)), tnn.CrossEntropyLoss(weight=torch.tensor(w))
    _same_state_layout(pm, tm)
    assert list(pm.state_dict()) == ["weight"]
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="average")


# -- the Module machinery ------------------------------------------------------------------------
class _PeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU())
        self.heads = nn.ModuleList([nn.Linear(3, 2), nn.Linear(3, 1, bias=False)])
        self.scale = nn.Parameter(pe.tensor([1.5]))
        self.register_buffer("step_count", pe.tensor(np.zeros((), np.int64)))
        self.register_buffer("scratch", pe.tensor(np.zeros(2, np.float32)), persistent=False)

    def forward(self, x):
        h = self.body(x).mean(dim=(2, 3))
        return self.heads[0](h) * self.scale


class _TorchNet(tnn.Module):
    def __init__(self):
        super().__init__()
        self.body = tnn.Sequential(tnn.Conv2d(2, 3, 3), tnn.BatchNorm2d(3), tnn.ReLU())
        self.heads = tnn.ModuleList([tnn.Linear(3, 2), tnn.Linear(3, 1, bias=False)])
        self.scale = tnn.Parameter(torch.tensor([1.5]))
        self.register_buffer("step_count", torch.zeros((), dtype=torch.int64))
        self.register_buffer("scratch", torch.zeros(2), persistent=False)

    def forward(self, x):
        h = self.body(x).mean(dim=(2, 3))
        return self.heads[0](h) * self.scale


def test_names_and_traversal_match_torch():
    pm, tm = _PeNet(), _TorchNet()
    assert [n for n, _ in pm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [n for n, _ in pm.named_buffers()] == [n for n, _ in tm.named_buffers()]
    assert [n for n, _ in pm.named_modules()] == [n for n, _ in tm.named_modules()]
    assert [n for n, _ in pm.named_children()] == [n for n, _ in tm.named_children()]
    assert [n for n, _ in pm.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in pm.body.named_parameters(prefix="body")] == \
        [n for n, _ in tm.body.named_parameters(prefix="body")]
    assert len(list(pm.parameters())) == len(list(tm.parameters()))
    assert len(list(pm.buffers())) == len(list(tm.buffers()))
    assert len(list(pm.children())) == 2 and len(list(pm.modules())) == len(list(tm.modules()))
    _same_state_layout(pm, tm)  # 'scratch' is not persistent, in either
    assert "scratch" not in pm.state_dict()
    assert repr(pm).replace("_PeNet", "_TorchNet") == repr(tm)
    assert pm.get_submodule("body.1") is pm.body[1]


def test_shared_parameters_are_listed_once():
    lin = nn.Linear(2, 2)
    net = nn.Sequential(lin, nn.ReLU(), lin)
    tlin = tnn.Linear(2, 2)
    tnet = tnn.Sequential(tlin, tnn.ReLU(), tlin)
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in tnet.named_parameters()]
    assert list(net.state_dict()) == list(tnet.state_dict())


def test_forward_and_backward_of_a_composite_module():
    tm = _TorchNet()
    pm = _PeNet()
    pm.load_state_dict(_numpy_state(tm))
    x = np.random.default_rng(7).standard_normal((2, 2, 5, 5)).astype(np.float32)
    check_layer(pm, tm, x, "batch_norm")


def test_setattr_registration_rules():
    m = nn.Module()
    m.w = nn.Parameter(pe.tensor([1.0]))
    m.sub = nn.Linear(1, 1)
    m.plain = pe.tensor([2.0])  # a plain tensor is just an attribute, as in torch
    assert list(m.state_dict()) == ["w", "sub.weight", "sub.bias"]
    with pytest.raises(TypeError, match="parameter 'w'"):
        m.w = pe.tensor([1.0])
    m.w = None
    assert list(m.state_dict()) == ["sub.weight", "sub.bias"]
    with pytest.raises(TypeError, match="child module 'sub'"):
        m.sub = 3
    del m.sub
    assert list(m.state_dict()) == []
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("plain", pe.tensor([0.0]))
    with pytest.raises(KeyError, match="must not contain"):
        m.register_parameter("a.b", None)
    with pytest.raises(TypeError, match="pe.Tensor or None"):
        m.register_buffer("buf", [1, 2])
    m.register_buffer("buf", pe.tensor([1.0]))
    m.buf = pe.tensor([5.0])  # assigning a tensor to a buffer name replaces the buffer
    assert m.state_dict()["buf"].tolist() == [5.0]
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        m.missing

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(pe.tensor([1.0]))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


def test_parameter_is_a_leaf_tensor():
    p = nn.Parameter(pe.tensor([1.0, 2.0]))
    assert isinstance(p, pe.Tensor) and p.requires_grad and p.is_leaf
    assert repr(p).startswith("Parameter containing:")
    assert not nn.Parameter(pe.tensor([1.0]), requires_grad=False).requires_grad
    x = pe.tensor([1.0], requires_grad=True)
    assert nn.Parameter(x * 2).is_leaf


def test_zero_grad():
    lin = nn.Linear(3, 2)
    x = pe.Tensor(np.ones((2, 3), np.float32))
    lin(x).sum().backward()
    lin.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in lin.parameters())
    lin.zero_grad()
    assert all(p.grad is None for p in lin.parameters())


def test_sequential_and_modulelist_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    tseq = tnn.Sequential(tnn.Linear(2, 3), tnn.ReLU(), tnn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    assert isinstance(seq[1:], nn.Sequential) and list(seq[1:]._modules) == ["1", "2"]
    with pytest.raises(IndexError):
        seq[3]
    seq.append(nn.Sigmoid())
    tseq.append(tnn.Sigmoid())
    assert repr(seq) == repr(tseq)
    del seq[1]
    del tseq[1]
    assert list(seq.state_dict()) == list(tseq.state_dict())
    named = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 1, 1)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["conv.weight", "conv.bias"]
    ml = nn.ModuleList([nn.Linear(1, 1)])
    ml.append(nn.Linear(1, 2))
    ml += [nn.Linear(2, 2)]
    assert len(ml) == 3 and ml[-1].out_features == 2
    assert list(ml.state_dict())[:2] == ["0.weight", "0.bias"]
    with pytest.raises(NotImplementedError):
        ml(pe.tensor([1.0]))


def test_state_dict_values_are_detached_views():
    lin = nn.Linear(2, 2)
    sd = lin.state_dict()
    assert not sd["weight"].requires_grad and sd["weight"].is_leaf
    lin.weight.data[0, 0] = 42.0  # shares memory with the module, like torch
    assert sd["weight"].numpy()[0, 0] == 42.0
    assert lin.state_dict(keep_vars=True)["weight"] is lin.weight


def test_load_state_dict_from_pe_tensors_and_arrays():
    src, dst = nn.Linear(3, 2), nn.Linear(3, 2)
    dst.load_state_dict(src.state_dict())
    assert np.array_equal(dst.weight.numpy(), src.weight.numpy())
    assert dst.weight.data is not src.weight.data  # copied, not aliased
    w = np.arange(6, dtype=np.float64).reshape(2, 3)  # float64 arrays are cast to float32
    dst.load_state_dict({"weight": w, "bias": np.zeros(2)})
    assert dst.weight.dtype == np.float32 and dst.weight.numpy().tolist() == w.tolist()


def test_load_state_dict_errors_like_torch():
    pm, tm = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm2d(2)), \
        tnn.Sequential(tnn.Linear(3, 2), tnn.BatchNorm2d(2))
    good = _numpy_state(tm)
    before = pm[0].weight.numpy().copy()

    bad = dict(good, **{"0.weight": np.zeros((3, 3), np.float32)})
    with pytest.raises(RuntimeError, match=r"size mismatch for 0\.weight: copying a param with "
                                           r"shape \(3, 3\).*current model is \(2, 3\)"):
        pm.load_state_dict(bad)
    with pytest.raises(RuntimeError, match="size mismatch"):
        pm.load_state_dict(bad, strict=False)
    assert np.array_equal(pm[0].weight.numpy(), before)  # a failed load changes nothing

    partial = {k: v for k, v in good.items() if k != "1.running_var"}
    partial["extra.weight"] = np.zeros(1)
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "1\.running_var"'):
        pm.load_state_dict(partial)
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "extra\.weight"'):
        pm.load_state_dict(partial)
    assert np.array_equal(pm[0].weight.numpy(), before)

    ours = pm.load_state_dict(partial, strict=False)
    theirs = tm.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in partial.items()},
                                strict=False)
    assert ours.missing_keys == theirs.missing_keys
    assert ours.unexpected_keys == theirs.unexpected_keys
    assert np.array_equal(pm[0].weight.numpy(), good["0.weight"])
    with pytest.raises(TypeError, match="dict-like"):
        pm.load_state_dict([("0.weight", good["0.weight"])])


def test_deepcopy_and_pickle():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    twin = copy.deepcopy(net)
    again = pickle.loads(pickle.dumps(net))
    for other in (twin, again):
        assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in other.parameters())
        assert all(p is not q for p, q in zip(other.parameters(), net.parameters()))
        for (k, a), (_, b) in zip(other.state_dict().items(), net.state_dict().items()):
            assert a.dtype == b.dtype and np.array_equal(a.numpy(), b.numpy()), k
    twin[0].weight.data[...] = 0  # independent copies
    assert net[0].weight.numpy().any()


def test_to_keeps_parameter_identity():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    params = list(net.parameters())
    ids = [id(p) for p in params]
    x = pe.Tensor(np.random.default_rng(0).standard_normal((2, 1, 5, 5)).astype(np.float32))
    net(x).sum().backward()
    assert net.to(pe.float64) is net
    assert [id(p) for p in net.parameters()] == ids
    assert all(p.dtype == np.float64 and isinstance(p, nn.Parameter) for p in params)
    assert all(p.grad.dtype == np.float64 for p in params)
    assert net[1].running_mean.dtype == np.float64
    assert net[1].num_batches_tracked.dtype == np.int64  # only floating tensors are cast
    y64 = net(x.double())
    assert y64.dtype == np.float64
    net.float()
    assert all(p.dtype == np.float32 for p in params)
    net.to("cuda_emu")
    assert [id(p) for p in net.parameters()] == ids
    assert all(p.device == "cuda_emu" for p in net.parameters())
    assert all(b.device == "cuda_emu" for b in net.buffers())
    net.to("cpu", pe.float64)
    assert all(p.device == "cpu" and p.dtype == np.float64 for p in net.parameters())
    with pytest.raises(TypeError, match="floating point"):
        net.to(pe.int64)
    with pytest.raises(ValueError, match="unknown device"):
        net.to("tpu")


def test_to_cuda_emu_runs_forward():
    torch.manual_seed(0)
    tm = tnn.Sequential(tnn.Conv2d(1, 2, 3, padding=1), tnn.ReLU(), tnn.Flatten(),
                        tnn.Linear(2 * 4 * 4, 3))
    pm = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(),
                       nn.Linear(2 * 4 * 4, 3))
    pm.load_state_dict(_numpy_state(tm))
    pm.to("cuda_emu")
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    y = pm(pe.tensor(x).to("cuda_emu"))
    assert y.device == "cuda_emu"
    assert_close(y.cpu(), tm(torch.from_numpy(x)), *tolerance("conv2d", np.float32))


def test_apply_and_requires_grad():
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "ReLU", "Linear", "Sequential"]
    net.apply(lambda m: nn.init.ones_(m.weight) if isinstance(m, nn.Linear) else None)
    assert all(m.weight.numpy().all() for m in net if isinstance(m, nn.Linear))
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_layer_argument_errors():
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="out_channels must be divisible by groups"):
        nn.Conv2d(4, 3, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(1, 1, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="Invalid padding string"):
        nn.Conv2d(1, 1, 3, padding="full")
    with pytest.raises(ValueError, match='Only "zeros" padding mode'):
        nn.ConvTranspose2d(1, 1, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="num_features"):
        nn.BatchNorm2d(0)
    with pytest.raises(TypeError, match="kernel_size"):
        nn.Conv2d(1, 1, 2.5)


# -- init ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,param", [("linear", None), ("conv2d", None), ("sigmoid", None),
                                        ("tanh", None), ("relu", None), ("leaky_relu", None),
                                        ("leaky_relu", 0.2), ("selu", None)])
def test_calculate_gain_matches_torch(name, param):
    assert nn.init.calculate_gain(name, param) == pytest.approx(
        tnn.init.calculate_gain(name, param), rel=1e-12)


@pytest.mark.parametrize("shape", [(4, 3), (8, 4, 3, 3), (6, 2, 5, 1)])
def test_fans_match_torch(shape):
    ours = nn.init._calculate_fan_in_and_fan_out(pe.Tensor(np.zeros(shape, np.float32)))
    theirs = tnn.init._calculate_fan_in_and_fan_out(torch.zeros(shape))
    assert ours == theirs
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(pe.Tensor(np.zeros(3, np.float32)))


def test_initialisers_follow_their_distributions():
    big = (256, 64, 3, 3)  # fan_in 576, fan_out 2304
    t = pe.Tensor(np.zeros(big, np.float32))
    bound = 1 / np.sqrt(576)
    w = nn.init.kaiming_uniform_(t, a=np.sqrt(5)).numpy()
    assert w.dtype == np.float32 and np.abs(w).max() <= bound
    assert np.std(w) == pytest.approx(bound / np.sqrt(3), rel=0.02)
    w = nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu").numpy()
    assert np.std(w) == pytest.approx(np.sqrt(2 / 2304), rel=0.02)
    w = nn.init.xavier_uniform_(t, gain=2.0).numpy()
    assert np.abs(w).max() <= 2.0 * np.sqrt(6 / (576 + 2304))
    w = nn.init.xavier_normal_(t).numpy()
    assert np.std(w) == pytest.approx(np.sqrt(2 / (576 + 2304)), rel=0.02)
    w = nn.init.normal_(t, 3.0, 0.5).numpy()
    assert np.mean(w) == pytest.approx(3.0, abs=0.01) and np.std(w) == pytest.approx(0.5, rel=0.02)
    w = nn.init.uniform_(t, -2.0, -1.0).numpy()
    assert w.min() >= -2.0 and w.max() <= -1.0
    assert nn.init.constant_(t, 0.25).numpy().min() == 0.25
    assert not nn.init.zeros_(t).numpy().any()
    assert nn.init.ones_(t).numpy().min() == 1.0
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        nn.init.kaiming_uniform_(t, mode="fan_avg")
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        nn.init.kaiming_uniform_(t, nonlinearity="gelu")


def test_default_init_is_torchs_scheme_and_seeded():
    conv = nn.Conv2d(8, 16, 3, groups=2)  # fan_in = 4 * 9
    bound = 1 / 6
    assert np.abs(conv.weight.numpy()).max() <= bound
    assert np.abs(conv.bias.numpy()).max() <= bound
    assert np.std(conv.weight.numpy()) == pytest.approx(bound / np.sqrt(3), rel=0.15)
    lin = nn.Linear(100, 50)
    assert np.abs(lin.weight.numpy()).max() <= 0.1 and np.abs(lin.bias.numpy()).max() <= 0.1
    pe.manual_seed(123)
    a = nn.Linear(4, 4).weight.numpy().copy()
    pe.manual_seed(123)
    b = nn.Linear(4, 4).weight.numpy().copy()
    assert np.array_equal(a, b)
    g = np.random.default_rng(5)
    w1 = nn.init.uniform_(pe.Tensor(np.zeros(4, np.float32)), generator=g).numpy().copy()
    w2 = nn.init.uniform_(pe.Tensor(np.zeros(4, np.float32)),
                          generator=np.random.default_rng(5)).numpy()
    assert np.array_equal(w1, w2)


# -- clip_grad_norm_ -----------------------------------------------------------------------------
@pytest.mark.parametrize("max_norm,norm_type", [(1.0, 2.0), (100.0, 2.0), (0.5, 1.0),
                                                (0.3, float("inf")), (2.0, 3.0)])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    rng = np.random.default_rng(8)
    shapes = [(3, 4), (5,), (2, 2, 3)]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    pp = [nn.Parameter(pe.Tensor(np.zeros(s, np.float32))) for s in shapes]
    tp = [torch.zeros(s, requires_grad=True) for s in shapes]
    for p, t, g in zip(pp, tp, grads):
        p.grad = pe.Tensor(g.copy())
        t.grad = torch.from_numpy(g.copy())
    tp.append(torch.zeros(2, requires_grad=True))  # parameters without a gradient are skipped
    pp.append(nn.Parameter(pe.Tensor(np.zeros(2, np.float32))))
    ours = nn.utils.clip_grad_norm_(pp, max_norm, norm_type)
    theirs = tnn.utils.clip_grad_norm_(tp, max_norm, norm_type)
    assert ours.dtype == np.float32 and ours.shape == ()
    assert_close(ours, theirs, 1e-6, 1e-6, name="total norm")
    for p, t in zip(pp[:3], tp[:3]):
        assert_close(p.grad, t.grad, 1e-7, 1e-6, name="clipped grad")
    assert pe.nn.clip_grad_norm_ is nn.utils.clip_grad_norm_


def test_clip_grad_norm_single_tensor_empty_and_nonfinite():
    p = nn.Parameter(pe.tensor([3.0, 4.0]))
    assert float(nn.utils.clip_grad_norm_(p, 1.0)) == 0.0  # no gradient yet
    p.grad = pe.tensor([3.0, 4.0])
    assert float(nn.utils.clip_grad_norm_(p, 10.0)) == pytest.approx(5.0)
    p.grad = pe.tensor([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    p.grad = pe.tensor([-3.0, 0.5])
    nn.utils.clip_grad_value_([p], 1.0)
    assert p.grad.tolist() == [-1.0, 0.5]
