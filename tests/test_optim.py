"""pyengine.optim against torch.optim: a small CNN (conv, batch norm, relu, pool, dropout off,
linear) built in both with the same weights trains to the same losses, gradients and
parameters under every optimizer configuration and scheduler; state_dict round trips (ours and
torch's layout); argument validation."""
import math

import numpy as np
import pytest
import torch

import pyengine as pe
from pyengine import nn, optim

from .helpers import assert_close

tnn = torch.nn

# float64 so that several steps of both libraries agree to ~1e-10: the update rules are
# compared, not float32 rounding. One float32 run checks the default dtype as well.
ATOL64, RTOL64 = 1e-10, 1e-8
ATOL32, RTOL32 = 1e-5, 1e-4
N_STEPS = 4


# No conv bias before the batch norm: its gradient would be rounding noise, which Adam scales
# up to full-size steps, so float32 runs would diverge for reasons that are not bugs.
def _pe_cnn():
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.0), nn.Linear(4 * 3 * 3, 3))


def _torch_cnn():
    return tnn.Sequential(tnn.Conv2d(2, 4, 3, padding=1, bias=False), tnn.BatchNorm2d(4),
                          tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(), tnn.Dropout(0.0),
                          tnn.Linear(4 * 3 * 3, 3))


def _pair(dtype=np.float64, seed=0):
    torch.manual_seed(seed)
    tm = _torch_cnn()
    pm = _pe_cnn()
    if dtype == np.float64:
        tm.double()
        pm.double()
    pm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    return pm, tm


def _batches(n, dtype=np.float64, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((4, 2, 6, 6)).astype(dtype), rng.integers(0, 3, 4))
            for _ in range(n)]


def _train_step(pm, tm, popt, topt, x, y, tol, check=True):
    atol, rtol = tol
    popt.zero_grad()
    topt.zero_grad()
    lp = nn.CrossEntropyLoss()(pm(pe.Tensor(x)), pe.tensor(y))
    lt = tnn.CrossEntropyLoss()(tm(torch.from_numpy(x)), torch.from_numpy(y))
    lp.backward()
    lt.backward()
    if check:
        assert_close(lp, lt, atol, rtol, name="loss")
        tparams = dict(tm.named_parameters())
        for name, p in pm.named_parameters():
            assert_close(p.grad, tparams[name].grad, atol, rtol, name=f"grad of {name}")
    popt.step()
    topt.step()


def _assert_same_params(pm, tm, tol, when=""):
    tstate = tm.state_dict()
    for name, v in pm.state_dict().items():
        assert_close(v, tstate[name], *tol, name=f"{name} {when}")


OPTIMIZERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.05, nesterov=True)),
    ("SGD", dict(lr=0.1, momentum=0.5, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, amsgrad=True, betas=(0.6, 0.9))),
]


def _ids(v):
    return v if isinstance(v, str) else ",".join(f"{k}={w}" for k, w in v.items()) or "default"


@pytest.mark.parametrize("name,kwargs", OPTIMIZERS, ids=_ids)
def test_training_matches_torch(name, kwargs):
    pm, tm = _pair()
    popt = getattr(optim, name)(pm.parameters(), **kwargs)
    topt = getattr(torch.optim, name)(tm.parameters(), **kwargs)
    for x, y in _batches(N_STEPS):
        _train_step(pm, tm, popt, topt, x, y, (ATOL64, RTOL64))
        _assert_same_params(pm, tm, (ATOL64, RTOL64), f"after a {name} step")
    # The optimizer state matches torch's too (names, values; 'step' as a number).
    tstate = topt.state_dict()["state"]
    pstate = popt.state_dict()["state"]
    assert sorted(pstate) == sorted(tstate)
    for i in tstate:
        assert sorted(pstate[i]) == sorted(tstate[i])
        for key, v in tstate[i].items():
            if key == "step":
                assert pstate[i][key] == float(v)
            else:
                assert_close(pstate[i][key], v, ATOL64, RTOL64, name=f"state {i} {key}")


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                         ("Adam", dict(lr=0.01)), ("AdamW", dict(lr=0.01))])
def test_training_matches_torch_float32(name, kwargs):
    pm, tm = _pair(np.float32)
    popt = getattr(optim, name)(pm.parameters(), **kwargs)
    topt = getattr(torch.optim, name)(tm.parameters(), **kwargs)
    for x, y in _batches(3, np.float32):
        _train_step(pm, tm, popt, topt, x, y, (ATOL32, RTOL32))
    _assert_same_params(pm, tm, (ATOL32, RTOL32), "after float32 steps")


def test_param_groups_with_their_own_options():
    pm, tm = _pair()
    p_groups = [{"params": list(pm[0].parameters()), "lr": 0.3, "momentum": 0.5},
                {"params": list(pm[1].parameters())}]
    t_groups = [{"params": list(tm[0].parameters()), "lr": 0.3, "momentum": 0.5},
                {"params": list(tm[1].parameters())}]
    popt = optim.SGD(p_groups, lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(t_groups, lr=0.1, momentum=0.9)
    popt.add_param_group({"params": pm[6].parameters(), "lr": 0.05, "nesterov": True})
    topt.add_param_group({"params": tm[6].parameters(), "lr": 0.05, "nesterov": True})
    for x, y in _batches(3):
        _train_step(pm, tm, popt, topt, x, y, (ATOL64, RTOL64))
    _assert_same_params(pm, tm, (ATOL64, RTOL64), "with param groups")
    for pg, tg in zip(popt.param_groups, topt.param_groups):
        for key in ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"):
            assert pg[key] == tg[key], key


def test_named_parameters_are_accepted():
    pm, tm = _pair()
    popt = optim.Adam(pm.named_parameters(), lr=0.01)
    topt = torch.optim.Adam(tm.named_parameters(), lr=0.01)
    assert popt.param_groups[0]["param_names"] == topt.param_groups[0]["param_names"]
    for x, y in _batches(2):
        _train_step(pm, tm, popt, topt, x, y, (ATOL64, RTOL64))
    _assert_same_params(pm, tm, (ATOL64, RTOL64))


SCHEDULERS = [
    ("StepLR", dict(step_size=2, gamma=0.5)),
    ("StepLR", dict(step_size=3)),
    ("CosineAnnealingLR", dict(T_max=3)),
    ("CosineAnnealingLR", dict(T_max=4, eta_min=0.01)),
]


@pytest.mark.parametrize("name,kwargs", SCHEDULERS, ids=_ids)
@pytest.mark.parametrize("opt_name,opt_kwargs", [("SGD", dict(lr=0.2, momentum=0.9)),
                                                 ("Adam", dict(lr=0.02))], ids=_ids)
def test_schedulers_match_torch(name, kwargs, opt_name, opt_kwargs):
    pm, tm = _pair()
    popt = getattr(optim, opt_name)(pm.parameters(), **opt_kwargs)
    topt = getattr(torch.optim, opt_name)(tm.parameters(), **opt_kwargs)
    psched = getattr(optim.lr_scheduler, name)(popt, **kwargs)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    assert psched.get_last_lr() == tsched.get_last_lr()
    for x, y in _batches(6):
        _train_step(pm, tm, popt, topt, x, y, (ATOL64, RTOL64), check=False)
        psched.step()
        tsched.step()
        assert psched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12, abs=1e-15)
        assert popt.param_groups[0]["lr"] == pytest.approx(topt.param_groups[0]["lr"],
                                                           rel=1e-12, abs=1e-15)
    _assert_same_params(pm, tm, (ATOL64, RTOL64), f"with {name}")


@pytest.mark.parametrize("name,kwargs", SCHEDULERS, ids=_ids)
def test_scheduler_lr_sequence_over_many_epochs(name, kwargs):
    """30 epochs, two groups: the cosine schedule goes down and back up, as torch's does."""
    pw = [nn.Parameter(pe.tensor([1.0])), nn.Parameter(pe.tensor([1.0]))]
    tw = [torch.nn.Parameter(torch.tensor([1.0])), torch.nn.Parameter(torch.tensor([1.0]))]
    popt = optim.SGD([{"params": [pw[0]]}, {"params": [pw[1]], "lr": 0.5}], lr=0.1)
    topt = torch.optim.SGD([{"params": [tw[0]]}, {"params": [tw[1]], "lr": 0.5}], lr=0.1)
    psched = getattr(optim.lr_scheduler, name)(popt, **kwargs)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    for _ in range(30):
        popt.step()
        topt.step()
        psched.step()
        tsched.step()
        assert psched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12, abs=1e-15)
    sd = psched.state_dict()
    assert "optimizer" not in sd
    assert sd["last_epoch"] == tsched.state_dict()["last_epoch"] == 30
    assert sd["base_lrs"] == tsched.state_dict()["base_lrs"]


def test_scheduler_state_dict_round_trip():
    def run(split):
        w = nn.Parameter(pe.tensor([1.0]))
        opt = optim.SGD([w], lr=1.0)
        sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5, eta_min=0.1)
        lrs = []
        for epoch in range(8):
            if epoch == split:
                opt_sd, sched_sd = opt.state_dict(), sched.state_dict()
                w2 = nn.Parameter(pe.tensor([1.0]))
                opt = optim.SGD([w2], lr=123.0)
                sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5, eta_min=0.1)
                opt.load_state_dict(opt_sd)
                sched.load_state_dict(sched_sd)
            opt.step()
            sched.step()
            lrs.append(sched.get_last_lr()[0])
        return lrs

    assert run(split=3) == run(split=-1)


def test_scheduler_step_with_epoch_uses_closed_form():
    w = nn.Parameter(pe.tensor([1.0]))
    opt = optim.SGD([w], lr=1.0)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    with pytest.warns(UserWarning, match="epoch parameter"):
        sched.step(5)
    assert sched.get_last_lr() == [0.25]


def test_scheduler_resume_needs_initial_lr():
    opt = optim.SGD([nn.Parameter(pe.tensor([1.0]))], lr=1.0)
    with pytest.raises(KeyError, match="initial_lr"):
        optim.lr_scheduler.StepLR(opt, step_size=2, last_epoch=3)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        optim.lr_scheduler.StepLR(object(), step_size=2)


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                         ("SGD", dict(lr=0.1)),
                                         ("Adam", dict(lr=0.01, amsgrad=True)),
                                         ("AdamW", dict(lr=0.01))], ids=_ids)
def test_optimizer_state_dict_round_trip(name, kwargs):
    """Save after 3 steps, load into a fresh model and optimizer, continue: the result equals
    an uninterrupted run."""
    batches = _batches(6)
    pm, tm = _pair()
    popt = getattr(optim, name)(pm.parameters(), **kwargs)
    topt = getattr(torch.optim, name)(tm.parameters(), **kwargs)  # the uninterrupted run
    for x, y in batches[:3]:
        _train_step(pm, tm, popt, topt, x, y, (ATOL64, RTOL64), check=False)
    saved = popt.state_dict()
    model_sd = {k: v.numpy().copy() for k, v in pm.state_dict().items()}
    fresh = _pe_cnn().double()
    fresh.load_state_dict(model_sd)
    fresh_opt = getattr(optim, name)(fresh.parameters(), lr=123.0)  # hyperparameters come back
    fresh_opt.load_state_dict(saved)
    assert fresh_opt.param_groups[0]["lr"] == kwargs["lr"]
    assert all(a is b for a, b in zip(fresh_opt.param_groups[0]["params"], fresh.parameters()))
    for x, y in batches[3:]:
        _train_step(fresh, tm, fresh_opt, topt, x, y, (ATOL64, RTOL64))
    _assert_same_params(fresh, tm, (ATOL64, RTOL64), "after resuming")


def test_state_dict_is_a_snapshot_in_torch_layout():
    pm, tm = _pair()
    popt = optim.Adam(pm.parameters(), lr=0.01)
    topt = torch.optim.Adam(tm.parameters(), lr=0.01)
    for x, y in _batches(2):
        _train_step(pm, tm, popt, topt, x, y, (ATOL64, RTOL64), check=False)
    ours, theirs = popt.state_dict(), topt.state_dict()
    assert set(ours) == {"state", "param_groups"}
    assert ours["param_groups"][0]["params"] == theirs["param_groups"][0]["params"]
    for key in ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"):
        assert ours["param_groups"][0][key] == theirs["param_groups"][0][key]
    before = ours["state"][0]["exp_avg"].numpy().copy()
    x, y = _batches(1, seed=9)[0]
    _train_step(pm, tm, popt, topt, x, y, (ATOL64, RTOL64), check=False)
    assert np.array_equal(ours["state"][0]["exp_avg"].numpy(), before)
    assert ours["state"][0]["step"] == 2.0


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.1, momentum=0.9)),
                                         ("Adam", dict(lr=0.01))], ids=_ids)
def test_loads_a_converted_torch_optimizer_state(name, kwargs):
    """torch's optimizer.state_dict() with tensors turned into numpy arrays loads directly."""
    pm, tm = _pair()
    topt = getattr(torch.optim, name)(tm.parameters(), **kwargs)
    batches = _batches(5)
    for x, y in batches[:2]:
        topt.zero_grad()
        tnn.CrossEntropyLoss()(tm(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        topt.step()
    pm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    tsd = topt.state_dict()
    converted = {"state": {i: {k: (v.numpy().copy() if isinstance(v, torch.Tensor) else v)
                               for k, v in s.items()} for i, s in tsd["state"].items()},
                 "param_groups": tsd["param_groups"]}
    popt = getattr(optim, name)(pm.parameters(), lr=1.0)
    popt.load_state_dict(converted)
    for x, y in batches[2:]:
        _train_step(pm, tm, popt, topt, x, y, (ATOL64, RTOL64))
    _assert_same_params(pm, tm, (ATOL64, RTOL64), "after loading torch's state")


def test_load_state_dict_mismatches():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    opt = optim.SGD(a.parameters(), lr=0.1, momentum=0.9)
    sd = opt.state_dict()
    two_groups = optim.SGD([{"params": [b.weight]}, {"params": [b.bias]}], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        two_groups.load_state_dict(sd)
    one = optim.SGD([b.weight], lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size"):
        one.load_state_dict(sd)


@pytest.mark.parametrize("target", ["float64", "cuda_emu"])
def test_module_to_after_optimizer_creation(target):
    """Module.to keeps Parameter identity, so an optimizer built before it still updates the
    model (the torch idiom model.to(device) after building the optimizer works)."""
    pm, tm = _pair(np.float32)
    popt = optim.SGD(pm.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9)
    if target == "float64":
        pm.double()
        tm.double()
        batches = _batches(2)
    else:
        pm.to("cuda_emu")
        batches = _batches(2, np.float32)
    for x, y in batches:
        popt.zero_grad()
        topt.zero_grad()
        xp = pe.tensor(x).to(target) if target == "cuda_emu" else pe.Tensor(x)
        yp = pe.tensor(y).to(target) if target == "cuda_emu" else pe.tensor(y)
        nn.CrossEntropyLoss()(pm(xp), yp).backward()
        tnn.CrossEntropyLoss()(tm(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        popt.step()
        topt.step()
    _assert_same_params(pm.cpu() if target == "cuda_emu" else pm, tm, (ATOL32, RTOL32))
    params = popt.param_groups[0]["params"]
    assert all(a is b for a, b in zip(params, pm.parameters()))
    if target == "float64":
        assert all(p.dtype == np.float64 for p in params)


def test_step_between_forward_and_backward_is_refused():
    """Like torch: the optimizer's in-place update bumps the parameter's version, so a backward
    through a graph that saved the old weight raises instead of returning a wrong gradient."""
    lin = nn.Linear(3, 2)
    opt = optim.SGD(lin.parameters(), lr=0.1)
    x = pe.Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    lin(x).sum().backward()
    pending = lin(x).sum()
    opt.step()
    with pytest.raises(RuntimeError, match="in-place"):
        pending.backward()


def test_zero_grad_and_closure():
    w = nn.Parameter(pe.tensor([1.0, -2.0]))
    opt = optim.SGD([w], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss) == 5.0
    assert w.tolist() == [0.0, 0.0]
    opt.zero_grad(set_to_none=False)
    assert w.grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert w.grad is None
    opt.step()  # no gradient: nothing happens
    assert w.tolist() == [0.0, 0.0]


def test_repr_like_torch():
    w = nn.Parameter(pe.tensor([1.0]))
    tw = torch.nn.Parameter(torch.tensor([1.0]))
    ours = repr(optim.SGD([w], lr=0.1, momentum=0.9))
    theirs = repr(torch.optim.SGD([tw], lr=0.1, momentum=0.9))
    keep = ("dampening", "lr", "maximize", "momentum", "nesterov", "weight_decay")
    filtered = "\n".join(line for line in theirs.split("\n")
                         if not line.startswith("    ") or line.split(":")[0].strip() in keep)
    assert ours == filtered


def test_argument_validation():
    p = [nn.Parameter(pe.tensor([1.0]))]
    with pytest.raises(ValueError, match="Invalid learning rate: -0.1"):
        optim.SGD(p, lr=-0.1)
    with pytest.raises(ValueError, match="Invalid momentum value"):
        optim.SGD(p, momentum=-0.5)
    with pytest.raises(ValueError, match="Invalid weight_decay value"):
        optim.SGD(p, weight_decay=-1)
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum and zero "
                                         "dampening"):
        optim.SGD(p, nesterov=True)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(p, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.Adam(p, lr=-1e-3)
    with pytest.raises(ValueError, match="Invalid epsilon value"):
        optim.Adam(p, eps=-1e-8)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0"):
        optim.Adam(p, betas=(1.0, 0.999))
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        optim.AdamW(p, betas=(0.9, -0.1))
    with pytest.raises(ValueError, match="Invalid weight_decay value"):
        optim.AdamW(p, weight_decay=-0.01)
    with pytest.raises(TypeError, match="lr must be a real number"):
        optim.SGD(p, lr="0.1")
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        optim.SGD(p[0], lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        optim.SGD([1.0], lr=0.1)
    x = pe.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([x * 2], lr=0.1)
    opt = optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": p})
    with pytest.raises(TypeError, match="param_group must be a dict"):
        opt.add_param_group(p)
    with pytest.raises(TypeError, match="ordered collections"):
        opt.add_param_group({"params": {nn.Parameter(pe.tensor([2.0]))}})
    with pytest.raises(ValueError, match="step_size"):
        optim.lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="T_max"):
        optim.lr_scheduler.CosineAnnealingLR(opt, T_max=0)
    assert math.isclose(optim.AdamW(p).defaults["weight_decay"], 1e-2)
    assert optim.SGD(p).defaults["lr"] == 1e-3


class _OutOfMemory(np.ndarray):
    """A gradient whose arithmetic fails as an allocation on a full device would."""

    def __array_ufunc__(self, *args, **kwargs):
        raise MemoryError("out of device memory (simulated)")


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True),
                                  lambda ps: optim.AdamW(ps, lr=0.1)],
                         ids=["SGD", "Adam", "AdamW"])
def test_a_failed_step_updates_nothing(make):
    """An error while a step computes (out of device memory) leaves every parameter and every
    state as before the step: never half-updated."""
    params = [nn.Parameter(pe.tensor(np.full(4, float(i + 1), np.float32))) for i in range(3)]
    opt = make(params)
    for p in params:
        p.grad = pe.tensor(np.ones(4, np.float32))
    opt.step()                                              # a first, good step: state exists
    before = [p.numpy().copy() for p in params]
    state_before = {i: {k: (v.numpy().copy() if hasattr(v, "numpy") else v)
                        for k, v in opt.state[p].items()} for i, p in enumerate(params)}
    versions = [p._version for p in params]
    params[2].grad = pe.Tensor(np.ones(4, np.float32).view(_OutOfMemory))
    with pytest.raises(MemoryError):
        opt.step()
    for i, p in enumerate(params):
        np.testing.assert_array_equal(p.numpy(), before[i])
        assert p._version == versions[i]
        for k, v in opt.state[p].items():
            np.testing.assert_array_equal(v.numpy() if hasattr(v, "numpy") else v,
                                          state_before[i][k])
