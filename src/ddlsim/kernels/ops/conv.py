"""Convolution on NumPy or CuPy arrays: im2col over cache-sized blocks of images, one GEMM
per block, forward and both backward passes (layout as in :mod:`ddlsim.kernels.ops`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ddlsim.errors import ConfigError
from ddlsim.kernels.backend import array_module
from ddlsim.opspec import conv_out

Array = Any  # numpy.ndarray or cupy.ndarray

#: Bytes of im2col columns built at a time. On the CPU a column block that stays in cache
#: keeps the convolution close to its GEMM: on the 2-core dev VM (Xeon, OpenBLAS 0.3.31,
#: memory copies ~2.4 GB/s) 4 MiB blocks gave ResNet-50 3x3 forward convs (n=16/32,
#: stride 1 and 2) 0.52-0.78 of the FLOP rate of the GEMM with the same m, n, k. On a GPU,
#: large blocks mean fewer, bigger GEMMs.
COL_BLOCK_BYTES = {"numpy": 4 * 2**20, "cupy": 256 * 2**20}


def check_geometry(name: str, size: int, kernel: int, stride: int, pad: int) -> int:
    """Output extent along one axis; ConfigError when the window does not fit."""
    if stride < 1:
        raise ConfigError(f"stride: must be >= 1, got {stride}")
    if pad < 0:
        raise ConfigError(f"pad: must be >= 0, got {pad}")
    out = conv_out(size, kernel, stride, pad)
    if kernel < 1 or out < 1:
        raise ConfigError(f"{name}: window {kernel} with pad {pad} does not fit input extent "
                          f"{size}, got output extent {out}")
    return out


def _window(xpad: Array, i: int, j: int, stride: int, p: int, q: int) -> Array:
    """Strided view ``xpad[:, :, i + stride*a, j + stride*b]`` for a < p, b < q."""
    return xpad[:, :, i:i + stride * (p - 1) + 1:stride, j:j + stride * (q - 1) + 1:stride]


def block(n: int, per_image_bytes: int, xp: Any) -> int:
    """Images per im2col block so that a block's columns take about COL_BLOCK_BYTES."""
    budget = COL_BLOCK_BYTES["cupy" if xp is not np else "numpy"]
    return max(1, min(n, budget // max(per_image_bytes, 1)))


def _im2col(xpad: Array, cols: Array, r: int, s: int, stride: int) -> None:
    """Fill ``cols[c, r, s, m, p, q]`` from the padded block ``xpad[m, c, hp, wp]``.

    One strided copy per kernel offset: vectorised, and identical on NumPy and CuPy.
    """
    _, _, _, _, p, q = cols.shape
    for i in range(r):
        for j in range(s):
            cols[:, i, j] = _window(xpad, i, j, stride, p, q).transpose(1, 0, 2, 3)


def _col2im(cols: Array, dxpad: Array, stride: int) -> None:
    """Scatter-add ``cols[c, r, s, m, p, q]`` back into ``dxpad[m, c, hp, wp]`` (in place)."""
    _, r, s, _, p, q = cols.shape
    for i in range(r):
        for j in range(s):
            win = _window(dxpad, i, j, stride, p, q)
            win += cols[:, i, j].transpose(1, 0, 2, 3)


def conv_dims(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: int,
               pad: int) -> tuple[int, int]:
    """Output extent ``(p, q)`` of a convolution of ``x_shape`` by ``w_shape``; ConfigError
    for shapes that do not fit."""
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ConfigError(f"conv2d: x and w must be 4-D (NCHW, KCRS), got {x_shape}, {w_shape}")
    if x_shape[1] != w_shape[1]:
        raise ConfigError(f"conv2d: w in-channels must equal x channels, got w {w_shape} "
                          f"for x {x_shape}")
    p = check_geometry("conv2d height", x_shape[2], w_shape[2], stride, pad)
    q = check_geometry("conv2d width", x_shape[3], w_shape[3], stride, pad)
    return p, q


class _PaddedBlocks:
    """Zero-padded copies of image blocks ``x[n0:n0+m]``, built in one reused buffer.

    Padding a block at a time (instead of the whole batch) keeps the source of the im2col
    copies cache-resident and avoids touching a second full-size array.
    """

    def __init__(self, x: Array, nb: int, pad: int) -> None:
        self.x, self.pad = x, pad
        if pad:
            n, c, h, w = x.shape
            xp = array_module(x)
            self.buf = xp.zeros((nb, c, h + 2 * pad, w + 2 * pad), dtype=x.dtype)

    def get(self, n0: int, m: int) -> Array:
        """The padded block of images ``n0 .. n0+m-1``, shape ``[m, c, h+2pad, w+2pad]``."""
        if not self.pad:
            return self.x[n0:n0 + m]
        _, _, h, w = self.x.shape
        pad = self.pad
        blk = self.buf[:m]
        blk[:, :, pad:pad + h, pad:pad + w] = self.x[n0:n0 + m]
        return blk


def _column_blocks(x: Array, r: int, s: int, p: int, q: int, stride: int, pad: int):
    """Yield ``(n0, m, cols)`` for consecutive blocks of ``m`` images starting at ``n0``:
    ``cols[c, r, s, m, p, q]`` is the im2col of that block (padding applied per block; the
    buffer is reused, so use it before asking for the next block)."""
    xp = array_module(x)
    n, c = x.shape[0], x.shape[1]
    nb = block(n, c * r * s * p * q * x.itemsize, xp)
    blocks = _PaddedBlocks(x, nb, pad)
    cols = xp.empty((c, r, s, nb, p, q), dtype=x.dtype)
    for n0 in range(0, n, nb):
        m = min(nb, n - n0)
        cb = cols if m == nb else xp.empty((c, r, s, m, p, q), dtype=x.dtype)
        _im2col(blocks.get(n0, m), cb, r, s, stride)
        yield n0, m, cb


def conv2d_forward(x: Array, w: Array, stride: int = 1, pad: int = 0) -> Array:
    """Cross-correlation ``x[n, c, h, w] * w[k, c, r, s] -> y[n, k, p, q]`` (no bias).

    im2col over blocks of images, one GEMM ``w[k, c*r*s] @ cols[c*r*s, m*p*q]`` per block.
    """
    xp = array_module(x, w)
    n, c, _, _ = x.shape
    k, _, r, s = w.shape
    p, q = conv_dims(x.shape, w.shape, stride, pad)
    w2 = w.reshape(k, c * r * s)
    y = xp.empty((n, k, p, q), dtype=x.dtype)
    for n0, m, cb in _column_blocks(x, r, s, p, q, stride, pad):
        yb = w2 @ cb.reshape(c * r * s, m * p * q)
        y[n0:n0 + m] = yb.reshape(k, m, p, q).transpose(1, 0, 2, 3)
    return y


def conv2d_backward_data(dy: Array, w: Array, x_shape: tuple[int, int, int, int],
                         stride: int = 1, pad: int = 0) -> Array:
    """Gradient of :func:`conv2d_forward` w.r.t. ``x``: ``dy[n, k, p, q] -> dx[x_shape]``."""
    xp = array_module(dy, w)
    n, c, h, wd = x_shape
    k, _, r, s = w.shape
    p, q = conv_dims(tuple(x_shape), w.shape, stride, pad)
    if tuple(dy.shape) != (n, k, p, q):
        raise ConfigError(f"dy: expected shape {(n, k, p, q)}, got {tuple(dy.shape)}")
    w2t = w.reshape(k, c * r * s).T
    nb = block(n, c * r * s * p * q * dy.itemsize, xp)
    if pad == 0:
        dx = xp.zeros((n, c, h, wd), dtype=dy.dtype)
    else:
        dx = xp.empty((n, c, h, wd), dtype=dy.dtype)
        dxpad = xp.empty((nb, c, h + 2 * pad, wd + 2 * pad), dtype=dy.dtype)
    for n0 in range(0, n, nb):
        m = min(nb, n - n0)
        dyb = dy[n0:n0 + m].transpose(1, 0, 2, 3).reshape(k, m * p * q)
        cols = (w2t @ dyb).reshape(c, r, s, m, p, q)
        if pad == 0:
            _col2im(cols, dx[n0:n0 + m], stride)
        else:
            blk = dxpad[:m]
            blk.fill(0)
            _col2im(cols, blk, stride)
            dx[n0:n0 + m] = blk[:, :, pad:pad + h, pad:pad + wd]
    return dx


def conv2d_backward_filter(dy: Array, x: Array, w_shape: tuple[int, int, int, int],
                           stride: int = 1, pad: int = 0) -> Array:
    """Gradient of :func:`conv2d_forward` w.r.t. ``w``: ``dy, x -> dw[w_shape]``."""
    xp = array_module(dy, x)
    n, c, _, _ = x.shape
    k, _, r, s = w_shape
    p, q = conv_dims(x.shape, tuple(w_shape), stride, pad)
    if tuple(dy.shape) != (n, k, p, q):
        raise ConfigError(f"dy: expected shape {(n, k, p, q)}, got {tuple(dy.shape)}")
    dw = xp.zeros((k, c * r * s), dtype=x.dtype)
    for n0, m, cb in _column_blocks(x, r, s, p, q, stride, pad):
        dyb = dy[n0:n0 + m].transpose(1, 0, 2, 3).reshape(k, m * p * q)
        dw += dyb @ cb.reshape(c * r * s, m * p * q).T
    return dw.reshape(k, c, r, s)


def bias_add(y: Array, bias: Array) -> Array:
    """``y[n, k, ...] + bias[k]`` broadcast over the spatial axes (conv bias)."""
    return y + bias.reshape((1, -1) + (1,) * (y.ndim - 2))
