"""Max and average pooling on NumPy or CuPy arrays (square windows, NCHW), forward and
backward, without padded copies."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ddlsim.errors import ConfigError
from ddlsim.kernels.backend import array_module
from ddlsim.kernels.ops.conv import check_geometry

Array = Any  # numpy.ndarray or cupy.ndarray


def pool_dims(x_shape: tuple[int, ...], kernel: int, stride: int, pad: int) -> tuple[int, int]:
    """Output extent ``(p, q)`` of a pooling window over ``x_shape``; ConfigError for a
    window that does not fit."""
    if len(x_shape) != 4:
        raise ConfigError(f"pool: x must be 4-D NCHW, got shape {tuple(x_shape)}")
    if pad > kernel // 2:
        raise ConfigError(f"pad: must be <= kernel // 2 = {kernel // 2}, got {pad}")
    p = check_geometry("pool height", x_shape[2], kernel, stride, pad)
    q = check_geometry("pool width", x_shape[3], kernel, stride, pad)
    return p, q


def _offset_slices(i: int, stride: int, pad: int, size: int, out: int) -> tuple[slice, slice]:
    """For window offset ``i`` along one axis: (output slice, input slice) of the positions
    whose input index ``stride*a + i - pad`` falls inside ``[0, size)`` (no padded copy)."""
    a0 = max(0, -((i - pad) // stride))  # ceil((pad - i) / stride), clipped at 0
    a1 = min(out, (size - 1 + pad - i) // stride + 1)
    if a1 <= a0:
        return slice(0, 0), slice(0, 0)
    first = stride * a0 + i - pad
    return slice(a0, a1), slice(first, first + stride * (a1 - a0 - 1) + 1, stride)


def _pool_offsets(x_shape: tuple[int, ...], kernel: int, stride: int, pad: int, p: int, q: int):
    """Yield ``(offset, out_index, in_index)`` per window offset, skipping padding."""
    h, w = x_shape[2], x_shape[3]
    for i in range(kernel):
        oh, ih = _offset_slices(i, stride, pad, h, p)
        for j in range(kernel):
            ow, iw = _offset_slices(j, stride, pad, w, q)
            yield i * kernel + j, (Ellipsis, oh, ow), (Ellipsis, ih, iw)


def maxpool2d_forward(x: Array, kernel: int, stride: int, pad: int = 0) -> tuple[Array, Array]:
    """Max pooling of ``x[n, c, h, w]`` with a square window; padding never wins.

    Returns ``(y[n, c, p, q], argmax)``, where ``argmax`` (uint8, or int32 for windows
    over 255 elements) holds the window offset ``i*kernel + j`` of the first maximum.
    """
    xp = array_module(x)
    n, c, _, _ = x.shape
    p, q = pool_dims(x.shape, kernel, stride, pad)
    y = xp.full((n, c, p, q), -math.inf, dtype=x.dtype)
    argmax = xp.zeros(y.shape, dtype=np.uint8 if kernel * kernel <= 255 else np.int32)
    for offset, out_idx, in_idx in _pool_offsets(x.shape, kernel, stride, pad, p, q):
        win, ysub, asub = x[in_idx], y[out_idx], argmax[out_idx]
        better = win > ysub  # strict: ties keep the earlier offset
        xp.maximum(ysub, win, out=ysub)
        # asub = better ? offset : asub, as integer arithmetic (wraps exactly in uint8);
        # cheaper than a masked copy on NumPy
        step = argmax.dtype.type(offset) - asub
        step *= better
        asub += step
    return y, argmax


def maxpool2d_backward(dy: Array, argmax: Array, x_shape: tuple[int, int, int, int],
                       kernel: int, stride: int, pad: int = 0) -> Array:
    """Gradient of :func:`maxpool2d_forward`: route ``dy`` to each window's argmax."""
    xp = array_module(dy)
    p, q = pool_dims(tuple(x_shape), kernel, stride, pad)
    dx = xp.zeros(tuple(x_shape), dtype=dy.dtype)
    zero = xp.zeros((), dtype=dy.dtype)
    for offset, out_idx, in_idx in _pool_offsets(x_shape, kernel, stride, pad, p, q):
        sub = dx[in_idx]
        sub += xp.where(argmax[out_idx] == offset, dy[out_idx], zero)
    return dx


def avgpool2d_forward(x: Array, kernel: int, stride: int, pad: int = 0) -> Array:
    """Average pooling with ``count_include_pad=True``: every window divides by kernel**2.

    Padded positions count as zeros (PyTorch's default for ``AvgPool2d``).
    """
    xp = array_module(x)
    n, c, _, _ = x.shape
    p, q = pool_dims(x.shape, kernel, stride, pad)
    y = xp.zeros((n, c, p, q), dtype=x.dtype)
    for _, out_idx, in_idx in _pool_offsets(x.shape, kernel, stride, pad, p, q):
        sub = y[out_idx]
        sub += x[in_idx]
    y *= 1.0 / (kernel * kernel)
    return y


def avgpool2d_backward(dy: Array, x_shape: tuple[int, int, int, int], kernel: int,
                       stride: int, pad: int = 0) -> Array:
    """Gradient of :func:`avgpool2d_forward` (``count_include_pad=True``)."""
    xp = array_module(dy)
    p, q = pool_dims(tuple(x_shape), kernel, stride, pad)
    share = dy * (1.0 / (kernel * kernel))
    dx = xp.zeros(tuple(x_shape), dtype=dy.dtype)
    for _, out_idx, in_idx in _pool_offsets(x_shape, kernel, stride, pad, p, q):
        sub = dx[in_idx]
        sub += share[out_idx]
    return dx
