"""numba padding (PyTorch's F.pad): constant, reflect, replicate, circular, and their gradients.

Shape letters: B the unpadded leading dimensions flattened, D H W the last three dimensions
(a padded tensor of one or two padded dimensions is viewed with D = 1, or D = H = 1).

Every mode is one gather: along each padded dimension, output position o reads input position
idx[o], or the constant value where idx[o] is -1 (constant mode). The index maps are the
reference's (:func:`pyengine.backends.numpy_ref.pad.source_index` for the gather modes, and the
shift-and-crop of constant mode), so both backends agree on which element goes where by
construction; numba replaces numpy's one-pass-per-dimension copies with one parallel pass.
The backward is a gather too: each input element sums the output positions that copied it,
listed by the inverse maps (``_inverse``), so no two tasks write the same element.

Constant padding of more than three dimensions (PyTorch allows it) runs numpy_ref's kernel:
it is rare and has no speed-up to gain.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from ..base import new_output
from ..numpy_ref import pad as pad_ref
from ._common import like, pjit, threaded


def _dim_map(n, before, after, mode):
    """int64 (n + before + after,): the input position each output position reads, -1 for
    the constant value."""
    if mode != "constant":
        return pad_ref.source_index(n, before, after, mode).astype(np.int64)
    i = np.arange(n + before + after, dtype=np.int64) - before
    return np.where((i >= 0) & (i < n), i, -1)


def _inverse(idx, n):
    """(offsets (n+1,), positions): the output positions reading input position k are
    positions[offsets[k]:offsets[k+1]], in increasing order."""
    keep = np.nonzero(idx >= 0)[0]
    order = np.argsort(idx[keep], kind="stable")
    positions = keep[order].astype(np.int64)
    counts = np.bincount(idx[keep], minlength=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets, positions


def _view4(shape, npad):
    """(B, D, H, W) view of ``shape`` whose last ``npad`` (<= 3) dimensions are padded."""
    padded = tuple(shape[len(shape) - npad:])
    lead = int(np.prod(shape[:len(shape) - npad], dtype=np.int64))
    return (lead,) + (1,) * (3 - npad) + padded


def _maps(shape, p):
    """The three per-dimension maps (D, H, W order) of the padded view."""
    npad = len(p.pads) // 2
    maps = []
    for axis in range(3):               # D, H, W of the (B, D, H, W) view
        k = 2 - axis                    # PyTorch's order: last dimension first
        if k < npad:
            n = shape[len(shape) - 1 - k]
            maps.append(_dim_map(n, int(p.pads[2 * k]), int(p.pads[2 * k + 1]), p.mode))
        else:
            maps.append(np.zeros(1, dtype=np.int64))
    return maps


@pjit
def _pad_forward(x, y, md, mh, mw, value):
    """y[b, d, h, w] = x[b, md[d], mh[h], mw[w]], or value where a map says -1."""
    B, Do, Ho, Wo = y.shape
    for task in prange(B * Do * Ho):
        b = task // (Do * Ho)
        dh = task - b * (Do * Ho)
        d = dh // Ho
        h = dh - d * Ho
        out = y[b, d, h]
        sd = md[d]
        sh = mh[h]
        if sd < 0 or sh < 0:
            for w in range(Wo):
                out[w] = value
            continue
        src = x[b, sd, sh]
        for w in range(Wo):
            sw = mw[w]
            out[w] = src[sw] if sw >= 0 else value


@pjit
def _pad_backward(dy, dx, od, pd, oh, ph, ow, pw):
    """dx[b, i, j, k] = sum of dy over the output positions whose maps read (i, j, k)."""
    B, D, H, W = dx.shape
    for task in prange(B * D * H):
        b = task // (D * H)
        ij = task - b * (D * H)
        i = ij // H
        j = ij - i * H
        out = dx[b, i, j]
        for k in range(W):
            acc = like(0, dx)
            for a in range(od[i], od[i + 1]):
                for c in range(oh[j], oh[j + 1]):
                    row = dy[b, pd[a], ph[c]]
                    for e in range(ow[k], ow[k + 1]):
                        acc += row[pw[e]]
            out[k] = acc


@threaded
def pad_forward(x, p):
    """x padded (negative amounts: cropped) per PadParams ``p``; a new array."""
    npad = len(p.pads) // 2
    if npad > 3:
        return pad_ref.pad_forward(x, p)
    md, mh, mw = _maps(x.shape, p)
    out_shape = list(x.shape)
    for k in range(npad):
        axis = len(x.shape) - 1 - k
        out_shape[axis] = x.shape[axis] + int(p.pads[2 * k]) + int(p.pads[2 * k + 1])
    y = new_output(tuple(out_shape), x.dtype)
    v = _view4(x.shape, npad)
    _pad_forward(x.reshape(v), y.reshape((v[0], md.size, mh.size, mw.size)), md, mh, mw,
                 x.dtype.type(p.value))
    return y


@threaded
def pad_backward(dy, x_shape, p):
    """dx (x_shape): copies made by reflect/replicate/circular add their gradients back;
    cropped positions get zero."""
    npad = len(p.pads) // 2
    if npad > 3:
        return pad_ref.pad_backward(dy, x_shape, p)
    v = _view4(x_shape, npad)
    md, mh, mw = _maps(x_shape, p)
    (od, pd), (oh, ph), (ow, pw) = (_inverse(m, n) for m, n in zip((md, mh, mw), v[1:]))
    dx = new_output(tuple(x_shape), dy.dtype)
    _pad_backward(dy.reshape((v[0], md.size, mh.size, mw.size)), dx.reshape(v),
                  od, pd, oh, ph, ow, pw)
    return dx
