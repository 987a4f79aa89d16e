"""Optimizer: the base class of SGD, Adam and AdamW (torch.optim.Optimizer's interface).

``param_groups`` is a list of dicts, each with 'params' (a list of Parameters) and that group's
hyperparameters (missing ones filled from ``defaults``). ``state`` maps each Parameter to a
dict of its buffers (pe.Tensors) and counters. ``state_dict()`` has torch's layout:
``{'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]}``, indices counting
the parameters of all groups in order.

Updates compute on arrays through the parameters' array module (numpy or cupy) under
``no_grad`` and write into the parameters with in-place ops (``sub_``, ``mul_``), which keeps
the Parameter objects and bumps their version counts as torch's optimizers do.
"""
from __future__ import annotations

import copy
import numbers
import warnings
from collections import defaultdict

import numpy as np

from ..backends.base import array_module
from ..device import move_array
from ..tensor import Tensor


class _RequiredParameter:
    """Marks a hyperparameter every param group must give (e.g. a required lr)."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def check_nonnegative(value, name: str, message: str) -> None:
    """TypeError unless ``value`` is a real number, ValueError ``message`` if it is negative."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not value >= 0.0:
        raise ValueError(message)


def _as_state_array(value, param: Tensor, key: str):
    """A fresh array for a loaded state entry: on ``param``'s device, floating values in its
    dtype (torch's policy), a copy so that the loaded optimizer never aliases the source."""
    arr = value.data if isinstance(value, Tensor) else value
    if not hasattr(arr, "shape"):
        arr = np.asarray(arr)
    arr = move_array(arr, param.device)
    xp = array_module(arr)
    dtype = param.dtype if arr.dtype.kind == "f" else arr.dtype
    return Tensor(xp.array(arr, dtype=dtype, copy=True), device=param.device)


class Optimizer:
    """Base class: holds param groups and per-parameter state; subclasses define ``step``.

    ``params`` is an iterable of Parameters, of (name, Parameter) pairs (as
    ``module.named_parameters()`` yields), or of dicts (param groups with their own options).
    """

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {type(params).__name__}")
        groups = list(params)
        if len(groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # -- groups --------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own hyperparameters (defaults fill the rest).

        >>> import pyengine as pe
        >>> a, b = pe.nn.Linear(2, 2), pe.nn.Linear(2, 2)
        >>> opt = pe.optim.SGD(a.parameters(), lr=0.1)
        >>> opt.add_param_group({"params": b.parameters(), "lr": 0.01})
        >>> [g["lr"] for g in opt.param_groups]
        [0.1, 0.01]
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        else:
            params = list(params)
        names = None
        if params and isinstance(params[0], tuple):
            if not all(isinstance(p, tuple) and len(p) == 2 for p in params):
                raise ValueError("all optimizer params should be (name, tensor) pairs or all "
                                 "plain tensors")
            names = [n for n, _ in params]
            params = [p for _, p in params]
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        group["params"] = params
        if names is not None:
            group["param_names"] = names
        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise ValueError("parameter group didn't specify a value of required "
                                 f"optimization parameter {key}")
            group.setdefault(key, default)
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; "
                          "in future, this will cause an error", UserWarning, stacklevel=3)
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if taken & set(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # -- all-or-nothing updates ---------------------------------------------------------------
    def _commit(self, updates) -> None:
        """Apply planned updates: ``updates`` holds, per parameter, (param, new array, {state
        key: new value}). A ``step`` computes every new array out of place first and commits
        them here, where nothing is allocated: an error while planning (out of device memory,
        say) leaves every parameter and every state as it was, never half-updated."""
        for p, new, state in updates:
            p.data[...] = new
            p._vc.value += 1   # an in-place change of the parameter, as p.sub_ would count
            if not state:
                continue
            mine = self.state[p]
            for key, value in state.items():
                old = mine.get(key)
                if isinstance(old, Tensor) and old.shape == value.shape:
                    old.data[...] = value
                else:
                    mine[key] = Tensor(value, device=p.device) if hasattr(value, "shape") \
                        else value

    # -- gradients -----------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter: to None (default) or to zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    def step(self, closure=None):
        """Update the parameters (subclasses implement it)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement step()")

    def _evaluate_closure(self, closure):
        if closure is None:
            return None
        from ..autograd import enable_grad
        with enable_grad():
            return closure()

    # -- state dict ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The optimizer's state in torch's layout (see the module docstring).

        State tensors are copies (torch returns references), so a saved dict is a snapshot
        that later steps do not change.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state and index[id(p)] not in state:
                    state[index[id(p)]] = {
                        k: (Tensor(v._xp.array(v.data, copy=True), device=v.device)
                            if isinstance(v, Tensor) else copy.deepcopy(v))
                        for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a dict from :meth:`state_dict` (or torch's, with tensors converted to arrays).

        Group hyperparameters are replaced by the saved ones (options the dict lacks keep their
        current values); state arrays are copied onto each parameter's device, floating ones
        cast to its dtype; a 'step' counter becomes a float.
        """
        if not isinstance(state_dict, dict) or "state" not in state_dict \
                or "param_groups" not in state_dict:
            raise ValueError("optimizer state_dict must be a dict with 'state' and "
                             "'param_groups' entries")
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups "
                             f"({len(saved_groups)}) than the optimizer "
                             f"({len(self.param_groups)})")
        for i, (g, s) in enumerate(zip(self.param_groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"loaded state dict contains a parameter group that doesn't "
                                 f"match the size of optimizer's group: group {i} has "
                                 f"{len(s['params'])} parameters in the state dict, "
                                 f"{len(g['params'])} in the optimizer")
        id_map = {}
        for g, s in zip(self.param_groups, saved_groups):
            for saved_index, p in zip(s["params"], g["params"]):
                id_map[int(saved_index)] = p
        state = defaultdict(dict)
        for key, values in state_dict["state"].items():
            k = int(key)  # JSON round trips turn the indices into strings
            if k not in id_map:
                continue
            param = id_map[k]
            entry = {}
            for name, value in values.items():
                if name == "step":
                    entry[name] = float(value.item() if hasattr(value, "item") else value)
                elif isinstance(value, Tensor) or hasattr(value, "shape"):
                    entry[name] = _as_state_array(value, param, name)
                else:
                    entry[name] = copy.deepcopy(value)
            state[param] = entry
        new_groups = []
        for g, s in zip(self.param_groups, saved_groups):
            for key, default in self.defaults.items():
                # Dicts saved by older versions (or other libraries) may lack newer options.
                s.setdefault(key, g.get(key, default))
            s["params"] = g["params"]
            if "param_names" in g:
                s["param_names"] = g["param_names"]
            new_groups.append(s)
        self.state = state
        self.param_groups = new_groups

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines) + "\n)"


__all__ = ["Optimizer", "required"]
