"""Module, the base class of layers and models, and the containers Sequential and ModuleList.

A Module owns three ordered dicts -- ``_parameters``, ``_buffers`` and ``_modules`` -- filled by
attribute assignment (``self.weight = Parameter(...)``, ``self.conv = Conv2d(...)``) or by the
``register_*`` methods. Everything else (``parameters()``, ``state_dict()``, ``to()``, ``train()``,
``repr``) walks those dicts, so names and order are PyTorch's: a model written the same way in
both libraries has the same ``state_dict`` keys, and a converted PyTorch checkpoint
``{k: v.numpy() for k, v in torch_model.state_dict().items()}`` loads in one call.
"""
from __future__ import annotations

import collections.abc
import numbers
from collections import OrderedDict, namedtuple
from typing import Iterator, Mapping

import numpy as np

from ..autograd import no_grad
from ..device import check_device
from ..tensor import Tensor, parse_to_args
from .parameter import Parameter

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
IncompatibleKeys.__doc__ = "What ``load_state_dict`` returns: keys it missed and keys it ignored."


def _check_name(name, kind: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
    if name == "":
        raise KeyError(f'{kind} name must not be the empty string ""')
    if "." in name:
        raise KeyError(f'{kind} name must not contain ".", got: {name}')


def _replace_payload(t: Tensor, moved: Tensor) -> None:
    """Make ``t`` hold ``moved``'s array and device, keeping the object (and so its identity)."""
    t.data = moved.data
    t._device = moved.device  # the Tensor has no public setter: moving in place is nn's job


def _add_indent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


def _state_array(value, key: str):
    """The array inside a state_dict value (pe.Tensor, numpy/cupy array, or array-like)."""
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "__cuda_array_interface__") and hasattr(value, "shape"):
        return value
    if hasattr(value, "__array__") or isinstance(value, (numbers.Number, list, tuple)):
        return np.asarray(value)
    raise TypeError(f"while copying the parameter named {key!r}, expected a pe.Tensor or an "
                    f"array in the state_dict, got {type(value).__name__}")


class Module:
    """Base class of every layer and model (``torch.nn.Module``'s interface).

    Subclasses call ``super().__init__()`` first, assign Parameters, buffers and sub-modules as
    attributes, and define ``forward``; calling the module runs ``forward``.

    >>> import pyengine as pe
    >>> class Affine(pe.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.scale = pe.nn.Parameter(pe.tensor([2.0]))
    ...     def forward(self, x):
    ...         return x * self.scale
    >>> m = Affine()
    >>> list(m.state_dict())
    ['scale']
    >>> m(pe.tensor([3.0])).tolist()
    [6.0]
    """

    training: bool

    def __init__(self):
        # object.__setattr__: our __setattr__ needs these dicts to exist already.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", OrderedDict())

    # -- calling -------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        """The computation of the module; subclasses define it."""
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required '
                                  f'"forward" function')

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- registration --------------------------------------------------------------------------
    def register_parameter(self, name: str, param) -> None:
        """Add a Parameter (or None, a declared but absent parameter such as a disabled bias)."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name(name, "parameter")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter "
                            f"'{name}' (pe.nn.Parameter or None required)")
        if param is not None and not param.is_leaf:
            raise ValueError(f"cannot assign a non-leaf Tensor to parameter '{name}'; model "
                             f"parameters must be created explicitly (detach() it first)")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Add a buffer: state that is not learned (running statistics, counters).

        Persistent buffers are part of ``state_dict()``; ``persistent=False`` ones are not.
        """
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name(name, "buffer")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                            f"(pe.Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module) -> None:
        """Add a child module (or None) under ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        _check_name(name, "module")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> "Module":
        """The sub-module at the dotted path ``target`` ('' is self)."""
        mod = self
        if target == "":
            return mod
        for item in target.split("."):
            if not isinstance(mod, Module) or item not in mod._modules:
                raise AttributeError(f"{type(mod).__name__} has no submodule `{item}` "
                                     f"(looking up {target!r})")
            mod = mod._modules[item]
        return mod

    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name)
            self.register_parameter(name, value)
            return
        if params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                f"(pe.nn.Parameter or None expected)")
            params[name] = None
            return
        modules = self.__dict__.get("_modules")
        if isinstance(value, Module):
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name)
            modules[name] = value
            return
        if modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module "
                                f"'{name}' (pe.nn.Module or None expected)")
            modules[name] = None
            return
        buffers = self.__dict__.get("_buffers")
        if buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                f"(pe.Tensor or None expected)")
            buffers[name] = value
            return
        object.__setattr__(self, name, value)

    def _forget(self, name):
        """Drop ``name`` from every registry and the instance dict before it is re-registered."""
        self.__dict__.pop(name, None)
        for d in ("_parameters", "_buffers", "_modules"):
            self.__dict__[d].pop(name, None)
        self._non_persistent_buffers_set.discard(name)

    def __getattr__(self, name):
        # Only called when normal lookup fails; read the registries through __dict__ so that
        # half-built objects (during unpickling) do not recurse.
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            reg = d.get(registry)
            if reg is not None and name in reg:
                return reg[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            reg = self.__dict__.get(registry)
            if reg is not None and name in reg:
                del reg[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    # -- traversal -----------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        """Yield (dotted name, module) for self and every descendant, each module once."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self) -> Iterator["Module"]:
        """Self and every descendant module."""
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        """Yield (name, module) for the direct children."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator["Module"]:
        """The direct child modules."""
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse \
            else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, value in getattr(mod, registry).items():
                if value is None:
                    continue
                if remove_duplicate:
                    # id(): Tensor.__eq__ is elementwise, so sets of tensors would misbehave.
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                yield mod_prefix + ("." if mod_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True):
        """Yield (dotted name, Parameter), e.g. ('features.0.weight', ...), each once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """The Parameters of self (and of descendants when ``recurse``)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True):
        """Yield (dotted name, buffer) for every buffer, persistent or not."""
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """The buffers of self (and of descendants when ``recurse``)."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # -- modes and gradients -------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Set training mode on self and every descendant (BatchNorm, Dropout behave
        differently); returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {mode!r}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        """``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Set ``requires_grad`` on every parameter; returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter: to None (default) or to zeros."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.zero_()

    def apply(self, fn) -> "Module":
        """Call ``fn`` on every descendant (children first) and then on self; returns self.

        >>> import pyengine as pe
        >>> net = pe.nn.Sequential(pe.nn.Linear(2, 2), pe.nn.Linear(2, 1))
        >>> def zero_bias(m):
        ...     if isinstance(m, pe.nn.Linear):
        ...         pe.nn.init.zeros_(m.bias)
        >>> net.apply(zero_bias) is net
        True
        """
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- devices and dtypes --------------------------------------------------------------------
    def _apply_to_tensors(self, convert) -> "Module":
        """Replace the array of every parameter, gradient and buffer by ``convert(tensor)``'s,
        in place, so the Parameter objects an optimizer holds stay the same."""
        with no_grad():
            for m in self.modules():
                for p in m._parameters.values():
                    if p is None:
                        continue
                    _replace_payload(p, convert(p))
                    if p.grad is not None:
                        _replace_payload(p.grad, convert(p.grad))
                for b in m._buffers.values():
                    if b is not None:
                        _replace_payload(b, convert(b))
        return self

    def to(self, *args, device=None, dtype=None, non_blocking: bool = False) -> "Module":
        """Move parameters and buffers to a device and/or cast the floating ones to a dtype,
        in place (Parameter identity is kept, like torch); returns self.

        Accepts ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)`` and the
        keywords ``device=``, ``dtype=``, ``non_blocking=`` (ignored).

        >>> import pyengine as pe
        >>> lin = pe.nn.Linear(2, 2)
        >>> w = lin.weight
        >>> lin.to(pe.float64).weight is w, str(w.dtype)
        (True, 'float64')
        """
        device, dtype = parse_to_args(args, device, dtype)
        if device is not None:
            check_device(device)
        if dtype is not None:
            try:
                dtype = np.dtype(dtype)
            except TypeError:
                raise TypeError(f"to(): {dtype!r} is neither a device nor a dtype") from None
            if dtype.kind != "f":
                raise TypeError(f"Module.to only accepts floating point dtypes, but got "
                                f"desired dtype={dtype}")

        def convert(t: Tensor) -> Tensor:
            out = t.detach()
            if dtype is not None and t.dtype.kind == "f":
                out = out.to(dtype=dtype)
            if device is not None:
                out = out.to(device)
            return out

        return self._apply_to_tensors(convert)

    def float(self) -> "Module":
        """Cast floating parameters and buffers to float32."""
        return self.to(np.float32)

    def double(self) -> "Module":
        """Cast floating parameters and buffers to float64."""
        return self.to(np.float64)

    def cpu(self) -> "Module":
        """Move parameters and buffers to the host."""
        return self.to("cpu")

    def cuda(self) -> "Module":
        """Move parameters and buffers to the GPU."""
        return self.to("cuda")

    # -- state dict ----------------------------------------------------------------------------
    def _local_state(self):
        """(name, tensor) of the parameters and persistent buffers this module saves itself."""
        for name, p in self._parameters.items():
            if p is not None:
                yield name, p
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                yield name, b

    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False):
        """An OrderedDict of parameters and persistent buffers under PyTorch's dotted names.

        Values are detached pe.Tensors sharing memory with the module (``keep_vars=True``
        gives the Parameters themselves), as in torch: copy them to snapshot a checkpoint.
        """
        if destination is None:
            destination = OrderedDict()
        for name, t in self._local_state():
            destination[prefix + name] = t if keep_vars else t.detach()
        for name, child in self._modules.items():
            if child is not None:
                child.state_dict(destination=destination, prefix=prefix + name + ".",
                                 keep_vars=keep_vars)
        return destination

    def load_state_dict(self, state_dict: Mapping, strict: bool = True) -> IncompatibleKeys:
        """Copy parameters and buffers from ``state_dict`` into this module, in place.

        Values may be pe.Tensors or numpy/cupy arrays (so ``{k: v.numpy() for k, v in
        torch_sd.items()}`` loads directly); they are cast to each parameter's dtype and moved
        to its device. Returns ``(missing_keys, unexpected_keys)``. With ``strict`` (default)
        any missing or unexpected key raises RuntimeError; a shape mismatch always does.
        Everything is checked before anything is copied, so a failed load changes nothing.
        """
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        targets = OrderedDict()
        for mod_prefix, mod in self.named_modules(remove_duplicate=False):
            for name, t in mod._local_state():
                targets[mod_prefix + ("." if mod_prefix else "") + name] = t
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        errors, copies = [], []
        for key, target in targets.items():
            if key not in state_dict:
                continue
            src = _state_array(state_dict[key], key)
            if tuple(src.shape) != target.shape:
                errors.append(f"size mismatch for {key}: copying a param with shape "
                              f"{tuple(src.shape)} from checkpoint, the shape in current model "
                              f"is {target.shape}.")
                continue
            copies.append((target, src))
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: " +
                              ", ".join(f'"{k}"' for k in unexpected) + ". ")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: " +
                              ", ".join(f'"{k}"' for k in missing) + ". ")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        with no_grad():
            for target, src in copies:
                if src is target.data:
                    continue  # loading a module's own state_dict into itself
                target.copy_(src)
        return IncompatibleKeys(missing, unexpected)

    # -- printing ------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside the parentheses of ``repr`` (layers override it)."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({key}): " + _add_indent(repr(module), 2)
                       for key, module in self._modules.items()]
        lines = extra_lines + child_lines
        body = ""
        if len(extra_lines) == 1 and not child_lines:
            body = extra_lines[0]
        elif lines:
            body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{self._get_name()}({body})"

    def __dir__(self):
        keys = list(super().__dir__())
        keys += list(self._parameters) + list(self._buffers) + list(self._modules)
        return sorted(set(keys))


class _ModuleSequence(Module):
    """What Sequential and ModuleList share: children addressed by position (negative indices
    and slices too), appended, inserted and deleted with the positions re-numbered 0..n-1."""

    def _key(self, idx) -> str:
        """The child name at position ``idx`` (TypeError / IndexError as torch)."""
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
            raise TypeError(f"{type(self).__name__} indices must be integers or slices, "
                            f"not {type(idx).__name__}")
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for {type(self).__name__} of length {n}")
        return list(self._modules)[idx % n]

    def _renumber(self, modules) -> None:
        self._modules.clear()
        for i, m in enumerate(modules):
            self.add_module(str(i), m)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return self._from_items(list(self._modules.items())[idx])
        return self._modules[self._key(idx)]

    def __setitem__(self, idx, module):
        self.add_module(self._key(idx), module)

    def __delitem__(self, idx):
        keys = list(self._modules)[idx] if isinstance(idx, slice) else [self._key(idx)]
        for k in keys:
            del self._modules[k]
        self._renumber(list(self._modules.values()))  # indices stay 0..n-1, as in torch

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        """Append every module of ``modules``; returns self."""
        if not isinstance(modules, collections.abc.Iterable):
            raise TypeError(f"{type(self).__name__}.extend should be called with an iterable "
                            f"of modules, got {type(modules).__name__}")
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module):
        """Insert ``module`` before position ``index``; returns self."""
        items = list(self._modules.values())
        n = len(items)
        if not -n <= index <= n:
            raise IndexError(f"index {index} is out of range for insert into length {n}")
        items.insert(index if index >= 0 else index + n, module)
        self._renumber(items)
        return self


class Sequential(_ModuleSequence):
    """A chain of modules run in order; children are named '0', '1', ... (or by the keys of an
    OrderedDict), which is where state_dict names like ``features.0.weight`` come from.

    >>> import pyengine as pe
    >>> net = pe.nn.Sequential(pe.nn.Linear(4, 3), pe.nn.ReLU(), pe.nn.Linear(3, 2))
    >>> len(net), type(net[1]).__name__, list(net.state_dict())[:2]
    (3, 'ReLU', ['0.weight', '0.bias'])
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for key, module in args[0].items():
                self.add_module(key, module)
        else:
            for idx, module in enumerate(args):
                self.add_module(str(idx), module)

    @classmethod
    def _from_items(cls, items):
        return cls(OrderedDict(items))

    def forward(self, input):
        """Run each child on the previous child's output."""
        for module in self:
            input = module(input)
        return input


class ModuleList(_ModuleSequence):
    """A list of modules registered as children '0', '1', ... (no forward of its own).

    >>> import pyengine as pe
    >>> blocks = pe.nn.ModuleList([pe.nn.Linear(2, 2) for _ in range(3)])
    >>> len(list(blocks.parameters()))
    6
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    @classmethod
    def _from_items(cls, items):
        return cls([m for _, m in items])

    def __iadd__(self, modules):
        return self.extend(modules)


__all__ = ["Module", "Sequential", "ModuleList", "IncompatibleKeys"]
