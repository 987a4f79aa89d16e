"""The kernel interface: one method per kernel, the same for every backend.

Every method takes arrays (numpy for host backends, cupy for ``cuda``) and a params object from
:mod:`pyengine.params`, and returns newly allocated arrays of the input's dtype. Inputs arrive
C-contiguous and already validated by :mod:`pyengine.functional`; kernels never see bad
arguments. Outputs should be allocated with :func:`new_output` so that ``PYENGINE_POISON=1``
fills them with NaN and tests catch elements a kernel never writes.

What each backward receives, said once for all backends:

- conv2d: ``backward_data(dy, w, x_shape)``, ``backward_weight(dy, x, w_shape)``,
  ``backward_bias(dy)``. (conv_transpose2d runs on these same three kernels, see
  ``functional/conv.py``.)
- max_pool2d: ``(dy, indices, x_shape)``; avg_pool2d and adaptive_avg_pool2d: ``(dy, x_shape)``.
- max_unpool2d: ``(dy, indices)``.
- softmax / log_softmax: ``(y, dy)`` -- the forward's output, never its input.
- cross_entropy: ``(dloss, logits, target, weight, lse)`` where ``lse`` is what the forward saved
  (log-sum-exp of each row).
- nll_loss: ``(dloss, target, weight, input_shape)``; mse/smooth_l1: ``(dloss, x, target)``.
- activations: ``(dy, x, y)``; linear: ``backward_data(dy, w)``, ``backward_weight(dy, x)``,
  ``backward_bias(dy)``; batch_norm: ``(dy, x, weight, mean, invstd, training)``.
- pad: ``(dy, x_shape)``.

Shape letters: N batch, C channels (classes for losses), K output channels, H W input plane,
R S kernel, P Q output plane, L flattened spatial extent, M rows of a GEMM.

A backend implements a subset: :meth:`Backend.supports` says which (op, dtype) pairs it runs
itself; dispatch (``pyengine.backends.dispatch``) falls through to the next backend otherwise.
"""
from __future__ import annotations

import os

import numpy as np

# Every kernel of the interface, grouped by op. ``coverage()`` and ``pyengine info`` report by
# these op names; each op lists the kernel methods that implement it.
OPS: dict[str, tuple[str, ...]] = {
    "conv2d": ("conv2d_forward", "conv2d_backward_data", "conv2d_backward_weight",
               "conv2d_backward_bias"),
    "max_pool2d": ("max_pool2d_forward", "max_pool2d_backward"),
    "avg_pool2d": ("avg_pool2d_forward", "avg_pool2d_backward"),
    "max_unpool2d": ("max_unpool2d_forward", "max_unpool2d_backward"),
    "adaptive_avg_pool2d": ("adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward"),
    "softmax": ("softmax_forward", "softmax_backward"),
    "log_softmax": ("log_softmax_forward", "log_softmax_backward"),
    "cross_entropy": ("cross_entropy_forward", "cross_entropy_backward"),
    "nll_loss": ("nll_loss_forward", "nll_loss_backward"),
    "mse_loss": ("mse_loss_forward", "mse_loss_backward"),
    "smooth_l1_loss": ("smooth_l1_loss_forward", "smooth_l1_loss_backward"),
    "activation": ("activation_forward", "activation_backward"),
    "linear": ("linear_forward", "linear_backward_data", "linear_backward_weight",
               "linear_backward_bias"),
    "batch_norm": ("batch_norm_forward_train", "batch_norm_forward_eval", "batch_norm_backward"),
    "pad": ("pad_forward", "pad_backward"),
}

KERNEL_TO_OP: dict[str, str] = {k: op for op, kernels in OPS.items() for k in kernels}


def poison_enabled() -> bool:
    """True when ``PYENGINE_POISON=1``: fresh kernel outputs are filled with NaN."""
    return os.environ.get("PYENGINE_POISON", "0") not in ("", "0")


def array_module(a):
    """numpy for host arrays, cupy for device arrays (without importing cupy otherwise)."""
    mod = type(a).__module__
    if mod.startswith("cupy"):
        import cupy
        return cupy
    return np


def new_output(shape, dtype, like=None):
    """Allocate a kernel output: uninitialised, or NaN-filled (integers: -1) under PYENGINE_POISON.

    ``like`` picks the array module (numpy or cupy); by default numpy.
    """
    xp = np if like is None else array_module(like)
    if poison_enabled():
        dt = np.dtype(dtype)
        return xp.full(shape, np.nan if dt.kind == "f" else -1, dtype=dt)
    return xp.empty(shape, dtype=dtype)


def kernels_from(*modules):
    """Class decorator: a backend whose kernels are plain functions, one module per op family.

    Every kernel of the interface that one of ``modules`` defines (same name as the Backend
    method) becomes a staticmethod of the decorated class; a kernel defined twice is an error.
    numpy_ref and numba_cpu are written this way, so their classes list modules, not kernels.
    """
    def attach(cls):
        seen = {}
        for module in modules:
            for kernel in KERNEL_TO_OP:
                fn = getattr(module, kernel, None)
                if fn is None:
                    continue
                if kernel in seen:
                    raise TypeError(f"{cls.__name__}: kernel {kernel} is defined in both "
                                    f"{seen[kernel].__name__} and {module.__name__}")
                seen[kernel] = module
                setattr(cls, kernel, staticmethod(fn))
        return cls
    return attach


class Backend:
    """Base of every backend. Subclasses implement some of the kernel methods below.

    ``name``: the name users pass to ``pe.set_backend``. ``dtypes``: the dtypes it computes in.
    ``array_kind``: 'host' (numpy arrays) or 'device' (cupy arrays).
    """

    name = "base"
    dtypes: tuple = (np.dtype(np.float32),)
    array_kind = "host"

    # -- what this backend implements ---------------------------------------------------------
    def implements(self, kernel: str) -> bool:
        """True if this backend defines ``kernel`` itself (not inherited from Backend)."""
        impl = getattr(type(self), kernel, None)
        return impl is not None and impl is not getattr(Backend, kernel, None)

    def supports(self, op: str, dtype) -> bool:
        """True if every kernel of ``op`` (an OPS key, or one kernel name) runs here for ``dtype``."""
        kernels = OPS.get(op, (op,))
        return np.dtype(dtype) in self.dtypes and all(self.implements(k) for k in kernels)

    def algorithms(self, op: str) -> tuple[str, ...]:
        """Algorithms this backend offers for ``op`` (conv ops take ``algo=``); 'auto' not listed."""
        return ("direct",) if self.implements(OPS.get(op, (op,))[0]) else ()

    def __repr__(self):
        return f"<pyengine backend {self.name!r}>"

    # -- convolution ---------------------------------------------------------------------------
    def conv2d_forward(self, x, w, b, p, algo="auto"):
        """y[N,K,P,Q] = sum_{c,r,s} x_pad[n, g*C/G + c, p*sh + r*dh, q*sw + s*dw] * w[k,c,r,s] + b[k].

        x: (N,C,H,W), w: (K,C/G,R,S), b: (K,) or None, p: Conv2dParams.
        """
        raise NotImplementedError

    def conv2d_backward_data(self, dy, w, x_shape, p, algo="auto"):
        """dx (x_shape) of conv2d_forward given dy (N,K,P,Q) and w; padding rows get no gradient."""
        raise NotImplementedError

    def conv2d_backward_weight(self, dy, x, w_shape, p, algo="auto"):
        """dw (w_shape) of conv2d_forward given dy (N,K,P,Q) and x."""
        raise NotImplementedError

    def conv2d_backward_bias(self, dy):
        """db (K,) = dy summed over N, P, Q."""
        raise NotImplementedError

    # -- pooling -------------------------------------------------------------------------------
    def max_pool2d_forward(self, x, p):
        """(y, indices) for x (N,C,H,W). indices int64: flat position h*W + w of the maximum in
        the unpadded plane; the first maximum in row-major window order wins ties; NaN propagates
        (a tap replaces the running maximum when it is greater or NaN, so the last NaN wins, as
        in PyTorch)."""
        raise NotImplementedError

    def max_pool2d_backward(self, dy, indices, x_shape, p):
        """dx: each input element gathers dy of the windows whose index points at it."""
        raise NotImplementedError

    def avg_pool2d_forward(self, x, p):
        """Mean over each window; divisor: divisor_override, else the window size clipped to the
        padded input (count_include_pad) or to the input itself."""
        raise NotImplementedError

    def avg_pool2d_backward(self, dy, x_shape, p):
        """dx of avg_pool2d_forward."""
        raise NotImplementedError

    def max_unpool2d_forward(self, x, indices, out_hw):
        """y (N,C,*out_hw) zero except y.flat_plane[indices] = x (indices valid, checked upstream)."""
        raise NotImplementedError

    def max_unpool2d_backward(self, dy, indices):
        """dx = dy gathered at indices (same shape as indices)."""
        raise NotImplementedError

    def adaptive_avg_pool2d_forward(self, x, out_hw):
        """Window i along an axis of length H spans [floor(i*H/P), ceil((i+1)*H/P))."""
        raise NotImplementedError

    def adaptive_avg_pool2d_backward(self, dy, x_shape):
        """dx of adaptive_avg_pool2d_forward."""
        raise NotImplementedError

    # -- softmax family ------------------------------------------------------------------------
    def softmax_forward(self, x, dim):
        """exp(x - max) / sum(exp(x - max)) along ``dim`` (non-negative)."""
        raise NotImplementedError

    def softmax_backward(self, y, dy, dim):
        """dx = y * (dy - sum(dy * y, dim))."""
        raise NotImplementedError

    def log_softmax_forward(self, x, dim):
        """x - max - log(sum(exp(x - max))) along ``dim``."""
        raise NotImplementedError

    def log_softmax_backward(self, y, dy, dim):
        """dx = dy - exp(y) * sum(dy, dim)."""
        raise NotImplementedError

    # -- losses --------------------------------------------------------------------------------
    def cross_entropy_forward(self, logits, target, weight, p):
        """Fused log-softmax + NLL on logits (N,C) -> (loss, lse).

        target: int64 (N,) class indices, or (N,C) probabilities of logits' dtype. weight: (C,) or
        None. p: LossParams (reduction, ignore_index, label_smoothing). loss: (N,) for 'none',
        else a 0-d array. lse: (N,) log-sum-exp of each row, saved for the backward.
        """
        raise NotImplementedError

    def cross_entropy_backward(self, dloss, logits, target, weight, lse, p):
        """dlogits (N,C). dloss: (N,) for reduction 'none', else 0-d."""
        raise NotImplementedError

    def nll_loss_forward(self, logp, target, weight, p):
        """-logp[n, target[n]] * weight[target[n]], reduced; logp (N,C), target int64 (N,)."""
        raise NotImplementedError

    def nll_loss_backward(self, dloss, target, weight, input_shape, p):
        """dlogp (input_shape)."""
        raise NotImplementedError

    def mse_loss_forward(self, x, target, p):
        """(x - target)^2, reduced; x and target have the same shape."""
        raise NotImplementedError

    def mse_loss_backward(self, dloss, x, target, p):
        """dx; the target's gradient is -dx."""
        raise NotImplementedError

    def smooth_l1_loss_forward(self, x, target, p):
        """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = x - target; beta 0: L1)."""
        raise NotImplementedError

    def smooth_l1_loss_backward(self, dloss, x, target, p):
        """dx; the target's gradient is -dx."""
        raise NotImplementedError

    # -- pointwise, linear, normalisation, padding --------------------------------------------
    def activation_forward(self, x, p):
        """y = act(x) for p.kind in relu, leaky_relu, sigmoid, tanh."""
        raise NotImplementedError

    def activation_backward(self, dy, x, y, p):
        """dx of activation_forward (relu'(0) = 0, as PyTorch)."""
        raise NotImplementedError

    def linear_forward(self, x, w, b):
        """y (M,N) = x (M,K) @ w(N,K)^T + b (N,) or no bias when b is None."""
        raise NotImplementedError

    def linear_backward_data(self, dy, w):
        """dx (M,K) = dy @ w."""
        raise NotImplementedError

    def linear_backward_weight(self, dy, x):
        """dw (N,K) = dy^T @ x."""
        raise NotImplementedError

    def linear_backward_bias(self, dy):
        """db (N,) = dy summed over rows."""
        raise NotImplementedError

    def batch_norm_forward_train(self, x, weight, bias, eps):
        """x (N,C,L) -> (y, mean (C,), invstd (C,)) with batch statistics (biased variance).
        weight/bias (C,) or None."""
        raise NotImplementedError

    def batch_norm_forward_eval(self, x, running_mean, running_var, weight, bias, eps):
        """x (N,C,L) normalised with the running statistics."""
        raise NotImplementedError

    def batch_norm_backward(self, dy, x, weight, mean, invstd, training):
        """(dx, dweight, dbias). training: mean/invstd are batch statistics and depend on x;
        otherwise they are constants (the running statistics)."""
        raise NotImplementedError

    def pad_forward(self, x, p):
        """x padded (or cropped, negative amounts) per PadParams, PyTorch's F.pad."""
        raise NotImplementedError

    def pad_backward(self, dy, x_shape, p):
        """dx of pad_forward: reflected/replicated/circular copies add their gradients back."""
        raise NotImplementedError
