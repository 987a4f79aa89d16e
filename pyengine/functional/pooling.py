"""2-d pooling ops with torch.nn.functional's semantics: max_pool2d, avg_pool2d, max_unpool2d,
adaptive_avg_pool2d.

Each op checks its arguments here, once for every backend (as ATen's Pool.h does), builds the
params, and runs the kernels that dispatch picks on (N,C,H,W) arrays. Unbatched (C,H,W) input
is given a batch of one on the way in and loses it on the way out, so kernels only see 4-d
arrays; an empty batch never reaches a kernel.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..autograd import Function
from ..backends.base import array_module
from ..params import Pool2dParams
from ._common import (as_tensor, check_float, check_int, check_ndim, check_same_device,
                      contiguous, kernel, pair)


# -- argument checks ---------------------------------------------------------------------------
def _pool_input(input, fname: str, allow_empty_channels: bool = False):
    """The input as a float Tensor of 3 or 4 dims whose plane (and channels) are non-empty."""
    x = as_tensor(input, "input")
    check_float(x, "input")
    check_ndim(x, "input", (3, 4), "((C,H,W) or (N,C,H,W))")
    inner = x.shape[-2:] if allow_empty_channels else x.shape[-3:]
    if 0 in inner:
        what = "H and W" if allow_empty_channels else "C, H and W"
        raise ValueError(f"{fname}: input must have non-zero {what} (only the batch may be "
                         f"empty), got shape {x.shape}")
    return x


def _stride(stride, kernel_hw):
    # torch treats None and an empty sequence alike: the stride defaults to the kernel size.
    if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0):
        return kernel_hw
    return pair(stride, "stride", 1)


def _pool_params(fname, x, kernel_size, stride, padding, dilation=1, ceil_mode=False,
                 count_include_pad=True, divisor_override=0):
    """Checked Pool2dParams for input ``x``; ValueError if any output side is below 1."""
    k = pair(kernel_size, "kernel_size", 1)
    s = _stride(stride, k)
    pad = pair(padding, "padding", 0)
    d = pair(dilation, "dilation", 1)
    if pad[0] > k[0] // 2 or pad[1] > k[1] // 2:
        raise ValueError(f"{fname}: padding {pad} must be at most half of kernel_size {k}")
    p = Pool2dParams(kernel_h=k[0], kernel_w=k[1], stride_h=s[0], stride_w=s[1],
                     pad_h=pad[0], pad_w=pad[1], dilation_h=d[0], dilation_w=d[1],
                     ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad),
                     divisor_override=divisor_override)
    out_h, out_w = p.output_hw(*x.shape[-2:])
    if out_h < 1 or out_w < 1:
        raise ValueError(f"{fname}: output size {out_h}x{out_w} is too small for input shape "
                         f"{x.shape} with kernel_size {k}, stride {s}, padding {pad}, "
                         f"dilation {d}, ceil_mode={bool(ceil_mode)}")
    return p


# -- batching helpers used inside the Functions (on raw arrays) --------------------------------
def _as_batch(a):
    """``a`` as a C-contiguous 4-d array (an unbatched 3-d array gets a batch of one)."""
    return contiguous(a[None] if a.ndim == 3 else a)


def _unbatch(a, ndim):
    return a[0] if ndim == 3 else a


# -- max_pool2d --------------------------------------------------------------------------------
class _MaxPool2d(Function):
    differentiable_outputs = (0,)  # the indices are int64 and carry no gradient

    @staticmethod
    def forward(ctx, x, p, device):
        x4 = _as_batch(x)
        n, c, h, w = x4.shape
        ctx.p, ctx.device, ctx.ndim, ctx.x4_shape = p, device, x.ndim, x4.shape
        if n == 0:
            xp = array_module(x)
            shape = (0, c) + p.output_hw(h, w)
            y, idx = xp.empty(shape, dtype=x.dtype), xp.empty(shape, dtype=np.int64)
        else:
            y, idx = kernel("max_pool2d_forward", x.dtype, device)(x4, p)
        ctx.save_for_backward(idx)
        return _unbatch(y, ctx.ndim), _unbatch(idx, ctx.ndim)

    @staticmethod
    def backward(ctx, dy, _didx):
        (idx,) = ctx.saved
        if ctx.x4_shape[0] == 0:
            dx = array_module(dy).zeros(ctx.x4_shape, dtype=dy.dtype)
        else:
            dx = kernel("max_pool2d_backward", dy.dtype, ctx.device)(
                _as_batch(dy), idx, ctx.x4_shape, ctx.p)
        return _unbatch(dx, ctx.ndim)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max pooling over (N,C,H,W) or unbatched (C,H,W) input, as ``torch.nn.functional.max_pool2d``.

    ``stride`` defaults to ``kernel_size``; ``padding`` (implicit -inf, never chosen) may be at
    most half the kernel; ``ceil_mode`` rounds the output size up, keeping only windows that
    start inside the input or the left padding. The first maximum of a window (row-major) wins
    ties, and a NaN in a window is its maximum. With ``return_indices`` it returns
    ``(output, indices)``: int64 flat positions ``h*W + w`` in each input plane, what
    :func:`max_unpool2d` consumes.

    >>> import pyengine as pe, pyengine.functional as F
    >>> x = pe.tensor([[[[1.0, 2.0], [4.0, 3.0]]]])
    >>> y, idx = F.max_pool2d(x, 2, return_indices=True)
    >>> y.numpy().tolist(), idx.numpy().tolist()
    ([[[[4.0]]]], [[[[2]]]])
    """
    x = _pool_input(input, "max_pool2d")
    p = _pool_params("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    y, idx = _MaxPool2d.apply(x, p=p, device=x.device)
    return (y, idx) if return_indices else y


# -- avg_pool2d --------------------------------------------------------------------------------
class _AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, p, device):
        x4 = _as_batch(x)
        n, c, h, w = x4.shape
        ctx.p, ctx.device, ctx.ndim, ctx.x4_shape = p, device, x.ndim, x4.shape
        if n == 0:
            y = array_module(x).empty((0, c) + p.output_hw(h, w), dtype=x.dtype)
        else:
            y = kernel("avg_pool2d_forward", x.dtype, device)(x4, p)
        return _unbatch(y, ctx.ndim)

    @staticmethod
    def backward(ctx, dy):
        if ctx.x4_shape[0] == 0:
            dx = array_module(dy).zeros(ctx.x4_shape, dtype=dy.dtype)
        else:
            dx = kernel("avg_pool2d_backward", dy.dtype, ctx.device)(
                _as_batch(dy), ctx.x4_shape, ctx.p)
        return _unbatch(dx, ctx.ndim)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Average pooling over (N,C,H,W) or unbatched (C,H,W) input, as
    ``torch.nn.functional.avg_pool2d``.

    Each window's sum (zero padding) is divided by ``divisor_override`` when given (a non-zero
    int), else by the window size clipped to the padded input when ``count_include_pad``, else
    by the number of input elements in the window.

    >>> import pyengine as pe, pyengine.functional as F
    >>> x = pe.tensor([[[[1.0, 2.0], [3.0, 6.0]]]])
    >>> F.avg_pool2d(x, 2).numpy().tolist()
    [[[[3.0]]]]
    >>> F.avg_pool2d(x, 2, padding=1, count_include_pad=False).numpy().tolist()
    [[[[1.0, 2.0], [3.0, 6.0]]]]
    """
    x = _pool_input(input, "avg_pool2d")
    divisor = 0
    if divisor_override is not None:
        divisor = check_int(divisor_override, "divisor_override")
        if divisor == 0:
            raise ValueError("avg_pool2d: divisor_override must be non-zero, got 0")
    p = _pool_params("avg_pool2d", x, kernel_size, stride, padding, ceil_mode=ceil_mode,
                     count_include_pad=count_include_pad, divisor_override=divisor)
    return _AvgPool2d.apply(x, p=p, device=x.device)


# -- max_unpool2d ------------------------------------------------------------------------------
class _MaxUnpool2d(Function):
    @staticmethod
    def forward(ctx, x, indices, out_hw, device):
        x4, idx4 = _as_batch(x), _as_batch(indices)
        n, c = x4.shape[:2]
        ctx.device, ctx.ndim = device, x.ndim
        if n == 0:
            y = array_module(x).zeros((0, c) + tuple(out_hw), dtype=x.dtype)
        else:
            y = kernel("max_unpool2d_forward", x.dtype, device)(x4, idx4, tuple(out_hw))
        ctx.save_for_backward(idx4)
        return _unbatch(y, ctx.ndim)

    @staticmethod
    def backward(ctx, dy):
        (idx4,) = ctx.saved
        if idx4.shape[0] == 0:
            dx = array_module(dy).zeros(idx4.shape, dtype=dy.dtype)
        else:
            dx = kernel("max_unpool2d_backward", dy.dtype, ctx.device)(_as_batch(dy), idx4)
        return _unbatch(dx, ctx.ndim), None


def _unpool_output_size(x, k, s, pad, output_size):
    """The (H_out, W_out) of max_unpool2d: (H-1)*stride - 2*padding + kernel_size by default;
    a given output_size (2 entries, or 4 whose last 2 count) must lie strictly within one
    stride of that default, as torch requires."""
    h, w = x.shape[-2:]
    default = ((h - 1) * s[0] - 2 * pad[0] + k[0], (w - 1) * s[1] - 2 * pad[1] + k[1])
    if output_size is None:
        out = default
    else:
        if not isinstance(output_size, (list, tuple)):
            raise TypeError(f"max_unpool2d: output_size must be a sequence of 2 or 4 ints, "
                            f"got {output_size!r}")
        size = tuple(output_size)
        if len(size) == 4:
            size = size[2:]
        if len(size) != 2:
            raise ValueError(f"max_unpool2d: output_size must have 2 or 4 elements, got "
                             f"{tuple(output_size)}")
        out = tuple(check_int(v, "output_size") for v in size)
        for d in range(2):
            lo, hi = default[d] - s[d], default[d] + s[d]
            if not lo < out[d] < hi:
                raise ValueError(f"max_unpool2d: invalid output_size {tuple(output_size)} "
                                 f"(dim {d} must be strictly between {lo} and {hi} for input "
                                 f"shape {x.shape})")
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"max_unpool2d: output size {out[0]}x{out[1]} is smaller than 1 for "
                         f"input shape {x.shape}, kernel_size {k}, stride {s}, padding {pad}")
    return out


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of :func:`max_pool2d`: puts each value of ``input`` at the position
    its ``indices`` entry names in a zero plane, as ``torch.nn.functional.max_unpool2d``.

    ``indices``: int64 of ``input``'s shape, flat positions ``h*W_out + w`` (what
    ``max_pool2d(..., return_indices=True)`` returns). The output plane is
    ``(H-1)*stride - 2*padding + kernel_size`` per side unless ``output_size`` (2 or 4 entries)
    says otherwise; an index outside the output plane raises IndexError. Where several inputs
    of a plane name the same position, the last of them in row-major order wins, on every backend
    (PyTorch leaves the choice unspecified: its CPU kernel's answer changes with the machine).

    >>> import pyengine as pe, pyengine.functional as F
    >>> x = pe.tensor([[[[1.0, 2.0], [4.0, 3.0]]]])
    >>> y, idx = F.max_pool2d(x, 2, return_indices=True)
    >>> F.max_unpool2d(y, idx, 2).numpy().tolist()
    [[[[0.0, 0.0], [4.0, 0.0]]]]
    """
    x = _pool_input(input, "max_unpool2d")
    idx = as_tensor(indices, "indices")
    if idx.dtype != np.int64:
        raise TypeError(f"max_unpool2d: indices must be int64, got dtype {idx.dtype} "
                        f"(shape {idx.shape})")
    if idx.shape != x.shape:
        raise ValueError(f"max_unpool2d: indices must have the shape of input {x.shape}, got "
                         f"{idx.shape}")
    check_same_device(x, idx, "input", "indices")
    k = pair(kernel_size, "kernel_size", 1)
    s = _stride(stride, k)
    pad = pair(padding, "padding", 0)
    out_hw = _unpool_output_size(x, k, s, pad, output_size)
    plane = out_hw[0] * out_hw[1]
    if idx.numel():
        lo, hi = int(idx.data.min()), int(idx.data.max())
        if lo < 0 or hi >= plane:
            bad = lo if lo < 0 else hi
            raise IndexError(f"max_unpool2d: indices contains {bad}, out of range for an output "
                             f"plane of {out_hw[0]}x{out_hw[1]} (valid: 0 to {plane - 1}); "
                             f"input shape {x.shape}")
    return _MaxUnpool2d.apply(x, idx, out_hw=out_hw, device=x.device)


# -- adaptive_avg_pool2d -----------------------------------------------------------------------
class _AdaptiveAvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, out_hw, device):
        x4 = _as_batch(x)
        ctx.device, ctx.ndim, ctx.x4_shape = device, x.ndim, x4.shape
        out_shape = x4.shape[:2] + tuple(out_hw)
        if 0 in out_shape:
            y = array_module(x).empty(out_shape, dtype=x.dtype)
        else:
            y = kernel("adaptive_avg_pool2d_forward", x.dtype, device)(x4, tuple(out_hw))
        return _unbatch(y, ctx.ndim)

    @staticmethod
    def backward(ctx, dy):
        dy4 = _as_batch(dy)
        if dy4.size == 0:
            dx = array_module(dy).zeros(ctx.x4_shape, dtype=dy.dtype)
        else:
            dx = kernel("adaptive_avg_pool2d_backward", dy.dtype, ctx.device)(dy4, ctx.x4_shape)
        return _unbatch(dx, ctx.ndim)


def _adaptive_output_size(output_size, x):
    """(P, Q) from an int or a pair whose None entries keep the input's size."""
    h, w = x.shape[-2:]
    if isinstance(output_size, (list, tuple)):
        if len(output_size) != 2:
            raise ValueError(f"adaptive_avg_pool2d: output_size must be an int or 2 entries, "
                             f"got {tuple(output_size)}")
        size = tuple(d if v is None else v for v, d in zip(output_size, (h, w)))
    elif isinstance(output_size, numbers.Integral) and not isinstance(output_size, bool):
        size = (output_size, output_size)
    else:
        raise TypeError(f"adaptive_avg_pool2d: output_size must be an int or a pair of ints "
                        f"(or None), got {output_size!r}")
    return tuple(check_int(v, "output_size", 0) for v in size)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed output size, as ``torch.nn.functional.adaptive_avg_pool2d``.

    Output element i along an axis of length H averages input rows
    ``[floor(i*H/P), ceil((i+1)*H/P))``, so neighbouring windows may share a row when P does not
    divide H. ``output_size``: an int or a pair; a None entry keeps that input size.

    >>> import pyengine as pe, pyengine.functional as F
    >>> x = pe.tensor([[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]])
    >>> F.adaptive_avg_pool2d(x, (1, 2)).numpy().tolist()
    [[[[3.0, 4.0]]]]
    """
    x = _pool_input(input, "adaptive_avg_pool2d", allow_empty_channels=True)
    out_hw = _adaptive_output_size(output_size, x)
    return _AdaptiveAvgPool2d.apply(x, out_hw=out_hw, device=x.device)


__all__ = ["max_pool2d", "avg_pool2d", "max_unpool2d", "adaptive_avg_pool2d"]
