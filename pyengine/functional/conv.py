"""conv2d and conv_transpose2d (torch.nn.functional semantics, NCHW, groups, unbatched input).

Shape letters: N batch, C input channels, K output channels, G groups, H W input plane,
R S kernel, P Q output plane.

Both ops run on the three conv kernels of the interface (forward, backward_data,
backward_weight, plus backward_bias). A transposed convolution of x (N, Cin, H, W) with weight
(Cin, Cout/G, R, S) is the data-gradient of an ordinary convolution that maps the
(N, Cout, Hout, Wout) space back onto x's space with that same weight, read as
(K=Cin, C/G=Cout/G, R, S). So:

    conv_transpose2d forward      = conv2d_backward_data(x, w)
    its input gradient            = conv2d_forward(dy, w)
    its weight gradient           = conv2d_backward_weight(x, dy)   (roles of dy and x swapped)
    its bias gradient             = conv2d_backward_bias(dy)

An empty batch is handled here rather than in every kernel. Inputs without channels are refused
(PyTorch returns a tensor with 0 output channels for them, whatever the weight says).
"""
from __future__ import annotations

from ..autograd import Function
from ..backends.base import array_module
from ..params import Conv2dParams, conv_transpose_output_size
from ._common import (as_tensor, check_float, check_int, check_ndim, check_same_device,
                      check_same_dtype, contiguous, kernel, pair)


# -- argument checks ------------------------------------------------------------------------
def _check_tensors(fname, input, weight, bias):
    x = as_tensor(input, "input")
    w = as_tensor(weight, "weight")
    b = None if bias is None else as_tensor(bias, "bias")
    check_ndim(x, "input", (3, 4), f"(unbatched (C,H,W) or batched (N,C,H,W)) for {fname}")
    check_ndim(w, "weight", (4,), f"for {fname}")
    check_float(x, "input")
    check_float(w, "weight")
    check_same_dtype(x, w, "input", "weight")
    check_same_device(x, w, "input", "weight")
    if b is not None:
        check_float(b, "bias")
        check_same_dtype(x, b, "input", "bias")
        check_same_device(x, b, "input", "bias")
    if w.shape[2] < 1 or w.shape[3] < 1:
        raise ValueError(f"{fname}: weight must have a kernel of at least 1 x 1, "
                         f"got weight of shape {w.shape}")
    return x, w, b


def _check_algo(algo):
    if not isinstance(algo, str):
        raise TypeError(f"algo must be a str (e.g. 'auto'), got {algo!r}")
    return algo


def _check_bias(b, n_out, w, fname):
    if b is not None and b.shape != (n_out,):
        raise ValueError(f"{fname}: bias must be 1-d with {n_out} elements (weight of shape "
                         f"{w.shape}), got bias of shape {b.shape}")


def _conv2d_padding(padding, stride, dilation, kernel_rs):
    """(top, bottom, left, right) for an int, a pair, 'valid' or 'same' (PyTorch's rules)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding='same' is not supported for strided convolutions, "
                                 f"got stride={stride}")
            sides = []
            for d, k in zip(dilation, kernel_rs):
                total = d * (k - 1)
                sides += [total // 2, total - total // 2]  # the odd extra at bottom/right
            return tuple(sides)
        raise ValueError(f"padding must be an int, a pair of ints, 'valid' or 'same', "
                         f"got {padding!r}")
    ph, pw = pair(padding, "padding", 0)
    return (ph, ph, pw, pw)


# -- autograd Functions ---------------------------------------------------------------------
class _Conv2d(Function):
    @staticmethod
    def forward(ctx, x, w, b, p, algo, device):
        ctx.unbatched = x.ndim == 3
        if ctx.unbatched:
            x = x[None]
        x, w = contiguous(x), contiguous(w)
        ctx.p, ctx.algo, ctx.device = p, algo, device
        ctx.save_for_backward(x, w)
        N, C, H, W = x.shape
        K, _, R, S = w.shape
        if N == 0:
            xp = array_module(x)
            P, Q = p.output_hw(H, W, R, S)
            y = xp.zeros((N, K, P, Q), x.dtype)
            if b is not None:
                y += b.reshape(1, K, 1, 1)
        else:
            y = kernel("conv2d_forward", x.dtype, device)(
                x, w, None if b is None else contiguous(b), p, algo)
        return y[0] if ctx.unbatched else y

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved
        p, algo, device = ctx.p, ctx.algo, ctx.device
        dy = contiguous(dy[None] if ctx.unbatched else dy)
        needs = ctx.needs_input_grad
        if x.shape[0] == 0:
            xp = array_module(dy)
            dx, dw = xp.zeros(x.shape, x.dtype), xp.zeros(w.shape, w.dtype)
            db = xp.zeros((dy.shape[1],), dy.dtype)
        else:
            dx = kernel("conv2d_backward_data", dy.dtype, device)(
                dy, w, x.shape, p, algo) if needs[0] else None
            dw = kernel("conv2d_backward_weight", dy.dtype, device)(
                dy, x, w.shape, p, algo) if needs[1] else None
            db = kernel("conv2d_backward_bias", dy.dtype, device)(dy) if needs[2] else None
        if ctx.unbatched and dx is not None:
            dx = dx[0]
        return (dx if needs[0] else None, dw if needs[1] else None, db if needs[2] else None)


class _ConvTranspose2d(Function):
    @staticmethod
    def forward(ctx, x, w, b, p, out_hw, algo, device):
        ctx.unbatched = x.ndim == 3
        if ctx.unbatched:
            x = x[None]
        x, w = contiguous(x), contiguous(w)
        N, Cin, H, W = x.shape
        _, Cout_g, R, S = w.shape
        K = Cout_g * p.groups
        Hout, Wout = out_hw
        xp = array_module(x)
        # The ordinary conv from (Hout, Wout) back to x's plane gives (P, Q) >= (H, W); it is
        # larger only when output_padding >= stride (allowed while < dilation). The extra
        # rows/columns of x are zeros: they touch nothing, so the kernels keep their contract.
        P, Q = p.output_hw(Hout, Wout, R, S)
        if (P, Q) != (H, W):
            x_fit = xp.zeros((N, Cin, P, Q), x.dtype)
            x_fit[:, :, :H, :W] = x
            x = x_fit
        ctx.p, ctx.algo, ctx.device, ctx.hw = p, algo, device, (H, W)
        ctx.save_for_backward(x, w)
        if N == 0:
            y = xp.zeros((N, K, Hout, Wout), x.dtype)
        else:
            y = kernel("conv2d_backward_data", x.dtype, device)(x, w, (N, K, Hout, Wout), p, algo)
        if b is not None:
            y += b.reshape(1, K, 1, 1)
        return y[0] if ctx.unbatched else y

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved  # x already fitted to (P, Q)
        p, algo, device = ctx.p, ctx.algo, ctx.device
        H, W = ctx.hw
        dy = contiguous(dy[None] if ctx.unbatched else dy)
        needs = ctx.needs_input_grad
        if x.shape[0] == 0:
            xp = array_module(dy)
            dx = xp.zeros((0,) + x.shape[1:2] + (H, W), x.dtype)
            dw = xp.zeros(w.shape, w.dtype)
            db = xp.zeros((dy.shape[1],), dy.dtype)
        else:
            dx = dw = db = None
            if needs[0]:
                dx = kernel("conv2d_forward", dy.dtype, device)(dy, w, None, p, algo)
                if dx.shape[2:] != (H, W):
                    dx = contiguous(dx[:, :, :H, :W])
            if needs[1]:
                dw = kernel("conv2d_backward_weight", dy.dtype, device)(x, dy, w.shape, p, algo)
            if needs[2]:
                db = kernel("conv2d_backward_bias", dy.dtype, device)(dy)
        if ctx.unbatched and dx is not None:
            dx = dx[0]
        return (dx if needs[0] else None, dw if needs[1] else None, db if needs[2] else None)


# -- public ops -----------------------------------------------------------------------------
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algo="auto"):
    """2-d convolution (cross-correlation) of ``input`` (N,C,H,W) or unbatched (C,H,W) with
    ``weight`` (K, C/groups, R, S), plus ``bias`` (K,) if given; as ``torch.nn.functional.conv2d``.

    ``stride``, ``dilation``: int or pair, >= 1. ``padding``: int or pair >= 0, ``'valid'``
    (none) or ``'same'`` (output as large as the input; stride 1 only; the odd extra row/column
    goes at the bottom/right). ``groups`` splits channels into independent convolutions
    (``groups=C``: depthwise). ``algo`` picks a backend's algorithm (``'auto'`` by default;
    ``pe.backends.get(name).algorithms('conv2d')`` lists them; the numpy reference ignores it).
    Output (N, K, P, Q) with P = floor((H + 2*pad - dilation*(R-1) - 1) / stride) + 1.

    >>> import numpy as np, pyengine as pe, pyengine.functional as F
    >>> x = pe.tensor(np.ones((1, 2, 5, 5), np.float32))
    >>> w = pe.tensor(np.ones((4, 2, 3, 3), np.float32))
    >>> y = F.conv2d(x, w, padding=1)
    >>> y.shape, y.numpy()[0, 0, 2, 2].item(), y.numpy()[0, 0, 0, 0].item()
    ((1, 4, 5, 5), 18.0, 8.0)
    """
    fname = "conv2d"
    x, w, b = _check_tensors(fname, input, weight, bias)
    groups = check_int(groups, "groups", 1)
    stride = pair(stride, "stride", 1)
    dilation = pair(dilation, "dilation", 1)
    algo = _check_algo(algo)
    K, Cg, R, S = w.shape
    C, H, W = x.shape[-3:]
    if K < groups or K % groups:
        raise ValueError(f"conv2d: weight's first dimension (K={K} output channels) must be a "
                         f"positive multiple of groups={groups}, got weight of shape {w.shape}")
    if C != Cg * groups:
        raise ValueError(f"conv2d: input of shape {x.shape} has {C} channels, but weight of "
                         f"shape {w.shape} with groups={groups} expects {Cg * groups}")
    if C == 0:
        # PyTorch returns a (N, 0, P, Q) tensor here whatever K is; refuse rather than copy that.
        raise ValueError(f"conv2d: input of shape {x.shape} has no channels (weight of shape "
                         f"{w.shape})")
    _check_bias(b, K, w, fname)
    pt, pb, pl, pr = _conv2d_padding(padding, stride, dilation, (R, S))
    p = Conv2dParams(stride_h=stride[0], stride_w=stride[1], pad_top=pt, pad_bottom=pb,
                     pad_left=pl, pad_right=pr, dilation_h=dilation[0], dilation_w=dilation[1],
                     groups=groups)
    P, Q = p.output_hw(H, W, R, S)
    if P < 1 or Q < 1:
        raise ValueError(
            f"conv2d: input of shape {x.shape} padded to {H + pt + pb} x {W + pl + pr} is smaller "
            f"than the dilated kernel {dilation[0] * (R - 1) + 1} x {dilation[1] * (S - 1) + 1} "
            f"(weight of shape {w.shape}, dilation {dilation}); the output would be {P} x {Q}")
    return _Conv2d.apply(x, w, b, p=p, algo=algo, device=x.device)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, algo="auto"):
    """2-d transposed convolution ("deconvolution") of ``input`` (N,Cin,H,W) or unbatched
    (Cin,H,W) with ``weight`` (Cin, Cout/groups, R, S), plus ``bias`` (Cout,) if given; as
    ``torch.nn.functional.conv_transpose2d`` (note its argument order: groups before dilation).

    It is the gradient of conv2d with respect to its input. Output (N, Cout, Hout, Wout) with
    Hout = (H-1)*stride - 2*padding + dilation*(R-1) + output_padding + 1. ``padding`` is an int
    or pair >= 0 (no strings, as in PyTorch); ``output_padding`` must be smaller than the stride
    or the dilation along each axis. ``algo`` as in :func:`conv2d`.

    >>> import numpy as np, pyengine as pe, pyengine.functional as F
    >>> x = pe.tensor(np.ones((1, 1, 2, 2), np.float32))
    >>> w = pe.tensor(np.ones((1, 1, 2, 2), np.float32))
    >>> F.conv_transpose2d(x, w, stride=2).numpy()[0, 0].tolist()[0]
    [1.0, 1.0, 1.0, 1.0]
    """
    fname = "conv_transpose2d"
    x, w, b = _check_tensors(fname, input, weight, bias)
    groups = check_int(groups, "groups", 1)
    stride = pair(stride, "stride", 1)
    dilation = pair(dilation, "dilation", 1)
    if isinstance(padding, str):
        raise TypeError(f"conv_transpose2d: padding must be an int or a pair of ints, got "
                        f"{padding!r} (string padding exists only for conv2d)")
    pad = pair(padding, "padding", 0)
    out_pad = pair(output_padding, "output_padding", 0)
    algo = _check_algo(algo)
    Cin_w, Cout_g, R, S = w.shape
    C, H, W = x.shape[-3:]
    if Cin_w < groups or Cin_w % groups:
        raise ValueError(f"conv_transpose2d: weight's first dimension ({Cin_w} input channels) "
                         f"must be a positive multiple of groups={groups}, got weight of shape "
                         f"{w.shape}")
    if Cout_g < 1:
        raise ValueError(f"conv_transpose2d: weight of shape {w.shape} has no output channels")
    if C != Cin_w:
        raise ValueError(f"conv_transpose2d: input of shape {x.shape} has {C} channels, but "
                         f"weight of shape {w.shape} expects {Cin_w}")
    K = Cout_g * groups
    _check_bias(b, K, w, fname)
    for op_, s_, d_ in zip(out_pad, stride, dilation):
        if op_ >= s_ and op_ >= d_:
            raise ValueError(f"conv_transpose2d: output_padding must be smaller than either "
                             f"stride or dilation, got output_padding={out_pad}, "
                             f"stride={stride}, dilation={dilation}")
    Hout = conv_transpose_output_size(H, R, stride[0], pad[0], dilation[0], out_pad[0])
    Wout = conv_transpose_output_size(W, S, stride[1], pad[1], dilation[1], out_pad[1])
    if Hout < 1 or Wout < 1:
        raise ValueError(f"conv_transpose2d: output size {Hout} x {Wout} is smaller than 1 "
                         f"(input of shape {x.shape}, weight of shape {w.shape}, stride {stride},"
                         f" padding {pad}, output_padding {out_pad}, dilation {dilation})")
    p = Conv2dParams(stride_h=stride[0], stride_w=stride[1], pad_top=pad[0], pad_bottom=pad[0],
                     pad_left=pad[1], pad_right=pad[1], dilation_h=dilation[0],
                     dilation_w=dilation[1], groups=groups)
    return _ConvTranspose2d.apply(x, w, b, p=p, out_hw=(Hout, Wout), algo=algo, device=x.device)


__all__ = ["conv2d", "conv_transpose2d"]
