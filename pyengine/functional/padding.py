"""pad (torch.nn.functional.pad): constant, reflect, replicate and circular padding, with
PyTorch's rules on which dimensions each mode pads and the errors for the rest.

``pad`` lists (before, after) amounts from the last dimension backwards: (left, right),
(left, right, top, bottom), ... Negative amounts crop. Constant mode pads up to every dimension;
the other modes pad the last 1, 2 or 3 dimensions of a tensor with 1 or 2 more dimensions
(unbatched or batched). Zero-size results are computed here rather than in every kernel.
"""
from __future__ import annotations

import numbers

from ..autograd import Function
from ..backends.base import array_module
from ..params import PadParams
from ._common import as_tensor, check_float, check_int, contiguous, kernel

MODES = ("constant", "reflect", "replicate", "circular")


class _Pad(Function):
    @staticmethod
    def forward(ctx, x, p, out_shape, device):
        ctx.p, ctx.device, ctx.x_shape = p, device, x.shape
        xp = array_module(x)
        if 0 in out_shape:
            return xp.empty(out_shape, dtype=x.dtype)
        if x.size == 0:  # constant mode only: nothing to copy, all padding
            return xp.full(out_shape, p.value, dtype=x.dtype)
        return kernel("pad_forward", x.dtype, device)(contiguous(x), p)

    @staticmethod
    def backward(ctx, dy):
        if dy.size == 0 or 0 in ctx.x_shape:
            return array_module(dy).zeros(ctx.x_shape, dtype=dy.dtype), None, None, None
        return kernel("pad_backward", dy.dtype, ctx.device)(contiguous(dy), ctx.x_shape, ctx.p), \
            None, None, None


def _check_pad_tuple(pad, ndim):
    if not isinstance(pad, (tuple, list)):
        raise TypeError(f"pad: pad must be a tuple of ints, got {pad!r}")
    pads = tuple(check_int(v, "pad") for v in pad)
    if len(pads) % 2:
        raise ValueError(f"pad: padding length must be divisible by 2, got pad={pads}")
    if len(pads) > 2 * ndim:
        raise ValueError(f"pad: padding length should be less than or equal to two times the "
                         f"input dimension but got padding length {len(pads)} and input of "
                         f"dimension {ndim}")
    return pads


def _padded(shape, pads):
    """[(dim, size, before, after)] for each padded dimension, last dimension first."""
    ndim = len(shape)
    return [(ndim - 1 - i, shape[ndim - 1 - i], pads[2 * i], pads[2 * i + 1])
            for i in range(len(pads) // 2)]


def _check_gather_mode(mode, shape, pads):
    """PyTorch's rules for reflect / replicate / circular."""
    ndim, k = len(shape), len(pads) // 2
    if k not in (1, 2, 3) or ndim not in (k + 1, k + 2):
        raise ValueError(
            f"pad: padding size {len(pads)} is not supported for {ndim}-d input (shape {shape}) "
            f"in mode {mode!r}; non-constant padding needs pad of length 2 for 2-d or 3-d "
            f"input, 4 for 3-d or 4-d input, 6 for 4-d or 5-d input")
    padded = _padded(shape, pads)
    if mode in ("reflect", "replicate"):
        # Only the batch dimension of batched input may be empty.
        first = 1 if ndim == k + 2 else 0
        if 0 in shape[first:]:
            raise ValueError(f"pad: mode {mode!r} expects a {k + 1}-d or {k + 2}-d (batch mode) "
                             f"tensor with possibly 0 batch size and other non-zero dimensions, "
                             f"got input of shape {shape}")
        for dim, size, before, after in padded:
            if mode == "reflect" and not (before < size and after < size):
                raise ValueError(f"pad: reflect padding must be less than the corresponding "
                                 f"input dimension, got padding ({before}, {after}) at "
                                 f"dimension {dim} of input shape {shape}")
            if size + before + after < 1:
                raise ValueError(f"pad: input of shape {shape} is too small for padding "
                                 f"({before}, {after}) at dimension {dim}: calculated output "
                                 f"size {size + before + after}")
    else:  # circular
        for dim, size, before, after in padded:
            if before > size or after > size:
                raise ValueError(f"pad: circular padding ({before}, {after}) at dimension {dim} "
                                 f"of input shape {shape} wraps around more than once")
            if size + before + after < 0:
                raise ValueError(f"pad: negative circular padding ({before}, {after}) at "
                                 f"dimension {dim} of input shape {shape} gives a negative "
                                 f"output size")
            # PyTorch crops first and wraps within what is left; wrapping more than that would
            # read elements it never wrote (an error or garbage in PyTorch), so refuse it.
            kept = size - max(-before, 0) - max(-after, 0)
            if max(before, 0) > kept or max(after, 0) > kept:
                raise ValueError(f"pad: circular padding ({before}, {after}) at dimension {dim} "
                                 f"of input shape {shape} wraps around more than the {kept} "
                                 f"elements left after cropping")


def pad(input, pad, mode="constant", value=None):
    """Pad (or crop, with negative amounts) the last len(pad)/2 dimensions of ``input``.

    ``pad``: (left, right[, top, bottom[, front, back]]), last dimension first. ``mode``:
    'constant' (fill with ``value``, default 0; any number of dimensions), 'reflect' (mirror
    without repeating the edge; amounts must be smaller than the dimension), 'replicate' (repeat
    the edge) or 'circular' (wrap around); the last three pad 1-3 trailing dimensions of a
    tensor with 1 or 2 leading ones and take no ``value``.

    >>> import pyengine as pe, pyengine.functional as F
    >>> F.pad(pe.tensor([[[1.0, 2.0, 3.0]]]), (2, 1), mode="reflect").tolist()
    [[[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]]
    """
    x = as_tensor(input, "input")
    check_float(x, "input")
    pads = _check_pad_tuple(pad, x.ndim)
    if not isinstance(mode, str):
        raise TypeError(f"pad: mode must be a str, got {mode!r}")
    if mode not in MODES:
        raise ValueError(f"pad: unknown padding mode {mode!r}; expected one of {MODES}")
    if value is not None and (isinstance(value, complex) or not isinstance(value, numbers.Number)):
        raise TypeError(f"pad: value must be a real number or None, got {value!r}")
    shape = x.shape
    if mode == "constant":
        for dim, size, before, after in _padded(shape, pads):
            if size + before + after < 0:
                raise ValueError(f"pad: the input size {size}, plus negative padding {before} "
                                 f"and {after} resulted in a negative output size at dimension "
                                 f"{dim} of input shape {shape}")
    else:
        if value is not None and value != 0:
            raise ValueError(f"pad: padding mode {mode!r} doesn't take in value argument, "
                             f"got value={value!r}")
        _check_gather_mode(mode, shape, pads)
    out_shape = list(shape)
    for dim, size, before, after in _padded(shape, pads):
        out_shape[dim] = size + before + after
    p = PadParams(pads, mode, 0.0 if value is None else float(value))
    return _Pad.apply(x, p, tuple(out_shape), x.device)


__all__ = ["pad"]
