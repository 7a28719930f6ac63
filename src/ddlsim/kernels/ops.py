"""Training ops on NumPy or CuPy arrays: the kernels ddlsim times and trains with.

Every op takes arrays of one backend and picks the array module with
:func:`~ddlsim.kernels.backend.array_module`, so the same code runs on the CPU and on a
GPU. Layout is NCHW; convolution weights are ``[k, c, r, s]`` (out channels, in channels,
kernel height, kernel width); linear weights are ``[out, in]``. Results keep the input
dtype (float32 normally; float16, and bfloat16 where the backend has it).

Shapes in docstrings are array shapes (element counts, dimensionless); ``stride``, ``pad``
and ``kernel`` are in elements; learning rates and ``eps`` are dimensionless.

:func:`make_inputs` and :func:`run` map each op of :data:`ddlsim.opspec.OP_PARAMS` onto
these functions, so the timing harness times exactly what training runs.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from ddlsim.errors import ConfigError
from ddlsim.kernels.backend import array_module, scatter_add
from ddlsim.opspec import KernelCall, conv_out

Array = Any  # numpy.ndarray or cupy.ndarray

#: Bytes of im2col columns built at a time. On the CPU a column block that stays in cache
#: keeps the convolution close to its GEMM: on the 2-core dev VM (Xeon, OpenBLAS 0.3.31,
#: memory copies ~2.4 GB/s) 4 MiB blocks gave ResNet-50 3x3 forward convs (n=16/32,
#: stride 1 and 2) 0.52-0.78 of the FLOP rate of the GEMM with the same m, n, k. On a GPU,
#: large blocks mean fewer, bigger GEMMs.
COL_BLOCK_BYTES = {"numpy": 4 * 2**20, "cupy": 256 * 2**20}

_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715


# --------------------------------------------------------------------------- GEMM


def gemm(a: Array, b: Array) -> Array:
    """``a[m, k] @ b[k, n] -> [m, n]``."""
    return a @ b


def bmm(a: Array, b: Array) -> Array:
    """Batched GEMM: ``a[b, m, k] @ b[b, k, n] -> [b, m, n]``."""
    return array_module(a, b).matmul(a, b)


# --------------------------------------------------------------------------- convolution


def _check_geometry(name: str, size: int, kernel: int, stride: int, pad: int) -> int:
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


def _padded(x: Array, pad: int, fill: float = 0.0) -> Array:
    """``x[n, c, h, w]`` padded by ``pad`` on both spatial sides with ``fill``."""
    if pad == 0:
        return x
    xp = array_module(x)
    n, c, h, w = x.shape
    out = xp.full((n, c, h + 2 * pad, w + 2 * pad), fill, dtype=x.dtype)
    out[:, :, pad:pad + h, pad:pad + w] = x
    return out


def _window(xpad: Array, i: int, j: int, stride: int, p: int, q: int) -> Array:
    """Strided view ``xpad[:, :, i + stride*a, j + stride*b]`` for a < p, b < q."""
    return xpad[:, :, i:i + stride * (p - 1) + 1:stride, j:j + stride * (q - 1) + 1:stride]


def _block(n: int, per_image_bytes: int, xp: Any) -> int:
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


def _conv_dims(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: int,
               pad: int) -> tuple[int, int]:
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ConfigError(f"conv2d: x and w must be 4-D (NCHW, KCRS), got {x_shape}, {w_shape}")
    if x_shape[1] != w_shape[1]:
        raise ConfigError(f"conv2d: w in-channels must equal x channels, got w {w_shape} "
                          f"for x {x_shape}")
    p = _check_geometry("conv2d height", x_shape[2], w_shape[2], stride, pad)
    q = _check_geometry("conv2d width", x_shape[3], w_shape[3], stride, pad)
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
    nb = _block(n, c * r * s * p * q * x.itemsize, xp)
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
    p, q = _conv_dims(x.shape, w.shape, stride, pad)
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
    p, q = _conv_dims(tuple(x_shape), w.shape, stride, pad)
    if tuple(dy.shape) != (n, k, p, q):
        raise ConfigError(f"dy: expected shape {(n, k, p, q)}, got {tuple(dy.shape)}")
    w2t = w.reshape(k, c * r * s).T
    nb = _block(n, c * r * s * p * q * dy.itemsize, xp)
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
    p, q = _conv_dims(x.shape, tuple(w_shape), stride, pad)
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


# --------------------------------------------------------------------------- pooling


def _pool_dims(x_shape: tuple[int, ...], kernel: int, stride: int, pad: int) -> tuple[int, int]:
    if len(x_shape) != 4:
        raise ConfigError(f"pool: x must be 4-D NCHW, got shape {tuple(x_shape)}")
    if pad > kernel // 2:
        raise ConfigError(f"pad: must be <= kernel // 2 = {kernel // 2}, got {pad}")
    p = _check_geometry("pool height", x_shape[2], kernel, stride, pad)
    q = _check_geometry("pool width", x_shape[3], kernel, stride, pad)
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
    p, q = _pool_dims(x.shape, kernel, stride, pad)
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
    p, q = _pool_dims(tuple(x_shape), kernel, stride, pad)
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
    p, q = _pool_dims(x.shape, kernel, stride, pad)
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
    p, q = _pool_dims(tuple(x_shape), kernel, stride, pad)
    share = dy * (1.0 / (kernel * kernel))
    dx = xp.zeros(tuple(x_shape), dtype=dy.dtype)
    for _, out_idx, in_idx in _pool_offsets(x_shape, kernel, stride, pad, p, q):
        sub = dx[in_idx]
        sub += share[out_idx]
    return dx


# --------------------------------------------------------------------------- elementwise


def relu_forward(x: Array) -> Array:
    """``max(x, 0)``."""
    return array_module(x).maximum(x, x.dtype.type(0))


def relu_backward(dy: Array, x: Array) -> Array:
    """``dy`` where ``x > 0``, else 0."""
    xp = array_module(dy, x)
    return xp.where(x > 0, dy, xp.zeros((), dtype=dy.dtype))


def gelu_forward(x: Array) -> Array:
    """GELU, tanh approximation: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``."""
    xp = array_module(x)
    t = xp.tanh(_GELU_C * (x + _GELU_A * x * x * x))
    return 0.5 * x * (1.0 + t)


def gelu_backward(dy: Array, x: Array) -> Array:
    """Gradient of :func:`gelu_forward` times ``dy``."""
    xp = array_module(dy, x)
    x2 = x * x
    t = xp.tanh(_GELU_C * (x + _GELU_A * x2 * x))
    dt = _GELU_C * (1.0 + 3.0 * _GELU_A * x2)
    return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * dt)


def add(a: Array, b: Array) -> Array:
    """``a + b`` with broadcasting (residual add, bias add)."""
    return a + b


# --------------------------------------------------------------------------- normalisation


class NormCache(NamedTuple):
    """What batch/layer norm backward needs: normalised input, scale, 1/std per group."""

    xhat: Array
    gamma: Array
    invstd: Array


def batchnorm_forward(x: Array, gamma: Array, beta: Array,
                      eps: float = 1e-5) -> tuple[Array, NormCache]:
    """Training-mode batch norm of ``x[n, c, h, w]`` with statistics over N, H, W.

    Uses the biased batch variance (as PyTorch does for normalisation). Returns
    ``(y, cache)``; ``gamma`` and ``beta`` are ``[c]``.
    """
    xp = array_module(x, gamma, beta)
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    xc = x - mean
    var = (xc * xc).mean(axis=(0, 2, 3), keepdims=True)
    invstd = 1.0 / xp.sqrt(var + eps)
    xhat = xc * invstd
    y = xhat * gamma.reshape(1, -1, 1, 1) + beta.reshape(1, -1, 1, 1)
    return y, NormCache(xhat, gamma, invstd)


def batchnorm_backward(dy: Array, cache: NormCache) -> tuple[Array, Array, Array]:
    """Gradients ``(dx, dgamma, dbeta)`` of :func:`batchnorm_forward`."""
    xhat, gamma, invstd = cache
    count = dy.shape[0] * dy.shape[2] * dy.shape[3]
    dbeta = dy.sum(axis=(0, 2, 3))
    dgamma = (dy * xhat).sum(axis=(0, 2, 3))
    scale = gamma.reshape(1, -1, 1, 1) * invstd * (1.0 / count)
    dx = scale * (count * dy - dbeta.reshape(1, -1, 1, 1) - xhat * dgamma.reshape(1, -1, 1, 1))
    return dx, dgamma, dbeta


def layernorm_forward(x: Array, gamma: Array, beta: Array,
                      eps: float = 1e-5) -> tuple[Array, NormCache]:
    """Layer norm over the last axis of ``x[..., cols]``; ``gamma``, ``beta`` are ``[cols]``."""
    xp = array_module(x, gamma, beta)
    mean = x.mean(axis=-1, keepdims=True)
    xc = x - mean
    var = (xc * xc).mean(axis=-1, keepdims=True)
    invstd = 1.0 / xp.sqrt(var + eps)
    xhat = xc * invstd
    return xhat * gamma + beta, NormCache(xhat, gamma, invstd)


def layernorm_backward(dy: Array, cache: NormCache) -> tuple[Array, Array, Array]:
    """Gradients ``(dx, dgamma, dbeta)`` of :func:`layernorm_forward`."""
    xhat, gamma, invstd = cache
    cols = dy.shape[-1]
    lead = tuple(range(dy.ndim - 1))
    dbeta = dy.sum(axis=lead)
    dgamma = (dy * xhat).sum(axis=lead)
    g = dy * gamma
    dx = (invstd * (1.0 / cols)) * (cols * g - g.sum(axis=-1, keepdims=True)
                                     - xhat * (g * xhat).sum(axis=-1, keepdims=True))
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------- softmax / loss


def softmax_forward(x: Array) -> Array:
    """Softmax over the last axis, shifted by the row max for stability."""
    xp = array_module(x)
    e = xp.exp(x - x.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def softmax_backward(dy: Array, y: Array) -> Array:
    """Gradient of :func:`softmax_forward` given its output ``y``: ``y (dy - <dy, y>)``."""
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def softmax_cross_entropy_forward(logits: Array, labels: Array) -> tuple[Array, Array]:
    """Mean cross-entropy of ``softmax(logits[n, classes])`` against integer ``labels[n]``.

    Returns ``(loss, probs)``; ``loss`` is a 0-d array of the logits' backend (call
    ``float()`` on it; kept on the device so timing does not synchronise).
    """
    xp = array_module(logits, labels)
    n = logits.shape[0]
    z = logits - logits.max(axis=-1, keepdims=True)
    e = xp.exp(z)
    sums = e.sum(axis=-1, keepdims=True)
    probs = e / sums
    picked = z[xp.arange(n), labels]
    loss = (xp.log(sums[:, 0]) - picked).mean()
    return loss, probs


def softmax_cross_entropy_backward(probs: Array, labels: Array) -> Array:
    """Gradient of the *mean* loss w.r.t. the logits: ``(probs - onehot(labels)) / n``."""
    xp = array_module(probs, labels)
    n = probs.shape[0]
    d = probs.copy()
    d[xp.arange(n), labels] -= 1.0
    d *= 1.0 / n
    return d


# --------------------------------------------------------------------------- embedding


def embedding_forward(table: Array, ids: Array) -> Array:
    """Gather rows: ``table[vocab, hidden]``, integer ``ids[...] -> [..., hidden]``."""
    return array_module(table, ids).take(table, ids, axis=0)


def embedding_backward(dy: Array, ids: Array, vocab: int) -> Array:
    """Scatter-add ``dy[..., hidden]`` into a ``[vocab, hidden]`` gradient table."""
    xp = array_module(dy, ids)
    hidden = dy.shape[-1]
    dtable = xp.zeros((vocab, hidden), dtype=dy.dtype)
    flat_ids = ids.reshape(-1)
    rows = dy.reshape(-1, hidden)
    scatter_add(xp, dtable, flat_ids, rows)
    return dtable


# --------------------------------------------------------------------------- linear


def linear_forward(x: Array, w: Array, b: Array | None = None) -> Array:
    """``x[..., in] @ w[out, in].T + b[out]``."""
    y = x @ w.T
    if b is not None:
        y += b
    return y


def linear_backward(dy: Array, x: Array, w: Array) -> tuple[Array, Array, Array]:
    """Gradients ``(dx, dw, db)`` of :func:`linear_forward`."""
    x2 = x.reshape(-1, x.shape[-1])
    dy2 = dy.reshape(-1, dy.shape[-1])
    dx = dy @ w
    dw = dy2.T @ x2
    db = dy2.sum(axis=0)
    return dx, dw, db


# --------------------------------------------------------------------------- optimiser


def sgd_momentum_update(w: Array, g: Array, v: Array, lr: float, momentum: float,
                        weight_decay: float = 0.0, nesterov: bool = False) -> None:
    """One SGD step with momentum, in place on ``w`` and ``v`` (PyTorch semantics).

    ``d = g + weight_decay*w``; ``v = momentum*v + d``; ``w -= lr*v``, or with Nesterov
    ``w -= lr*(d + momentum*v)``. A zero-initialised ``v`` reproduces PyTorch's first step.
    """
    d = g + weight_decay * w if weight_decay else g
    v *= momentum
    v += d
    if nesterov:
        w -= lr * (d + momentum * v)
    else:
        w -= lr * v


def grad_sum(acc: Array, g: Array) -> Array:
    """In place ``acc += g`` (the reduction step of an allreduce); returns ``acc``."""
    acc += g
    return acc


# --------------------------------------------------------------------------- harness glue

#: Hyper-parameters used when the harness times an op that needs them.
SGD_LR = 0.01
SGD_MOMENTUM = 0.9
SGD_WEIGHT_DECAY = 1e-4
NORM_EPS = 1e-5


def _conv_shapes(p: dict[str, int]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    x_shape = (p["n"], p["c"], p["h"], p["w"])
    w_shape = (p["k"], p["c"], p["r"], p["s"])
    oh, ow = _conv_dims(x_shape, w_shape, p["stride"], p["pad"])
    return x_shape, w_shape, (p["n"], p["k"], oh, ow)


def make_inputs(kc: KernelCall, xp: Any, dtype: Any, rng: np.random.Generator) -> tuple:
    """Random inputs for one call of ``kc`` as arrays of ``xp`` in ``dtype``.

    Floats are standard normal (drawn on the host from ``rng``, then copied); index arrays
    are int64. Ops whose backward needs forward state (pooling argmax, norm caches,
    softmax probabilities) get it by running the forward op once here. The result is a
    flat tuple of arrays that :func:`run` consumes.
    """
    p = kc.params

    def f(*shape: int) -> Array:
        host = rng.standard_normal(shape, dtype=np.float32)
        return xp.asarray(host).astype(dtype)

    def ints(high: int, *shape: int) -> Array:
        return xp.asarray(rng.integers(0, max(high, 1), size=shape, dtype=np.int64))

    op = kc.op
    if op == "gemm":
        return f(p["m"], p["k"]), f(p["k"], p["n"])
    if op == "bmm":
        return f(p["b"], p["m"], p["k"]), f(p["b"], p["k"], p["n"])
    if op.startswith("conv2d"):
        x_shape, w_shape, y_shape = _conv_shapes(p)
        if op == "conv2d_fwd":
            return f(*x_shape), f(*w_shape)
        if op == "conv2d_bwd_data":
            return f(*y_shape), f(*w_shape)
        return f(*y_shape), f(*x_shape)
    if op in ("maxpool_fwd", "avgpool_fwd"):
        return (f(p["n"], p["c"], p["h"], p["w"]),)
    if op == "maxpool_bwd":
        y, argmax = maxpool2d_forward(f(p["n"], p["c"], p["h"], p["w"]), p["kernel"],
                                      p["stride"], p["pad"])
        return f(*y.shape), argmax
    if op == "avgpool_bwd":
        oh, ow = _pool_dims((p["n"], p["c"], p["h"], p["w"]), p["kernel"], p["stride"], p["pad"])
        return (f(p["n"], p["c"], oh, ow),)
    if op in ("relu_fwd", "gelu_fwd"):
        return (f(p["numel"]),)
    if op in ("relu_bwd", "gelu_bwd", "add", "grad_sum"):
        return f(p["numel"]), f(p["numel"])
    if op.startswith("batchnorm"):
        x, gamma, beta = f(p["n"], p["c"], p["h"], p["w"]), f(p["c"]), f(p["c"])
        if op == "batchnorm_fwd":
            return x, gamma, beta
        return (f(*x.shape), *batchnorm_forward(x, gamma, beta, NORM_EPS)[1])
    if op.startswith("layernorm"):
        x, gamma, beta = f(p["rows"], p["cols"]), f(p["cols"]), f(p["cols"])
        if op == "layernorm_fwd":
            return x, gamma, beta
        return (f(*x.shape), *layernorm_forward(x, gamma, beta, NORM_EPS)[1])
    if op == "softmax_fwd":
        return (f(p["rows"], p["cols"]),)
    if op == "softmax_bwd":
        return f(p["rows"], p["cols"]), softmax_forward(f(p["rows"], p["cols"]))
    if op == "softmax_xent_fwd":
        return f(p["n"], p["classes"]), ints(p["classes"], p["n"])
    if op == "softmax_xent_bwd":
        return softmax_forward(f(p["n"], p["classes"])), ints(p["classes"], p["n"])
    if op == "embedding_fwd":
        return f(p["vocab"], p["hidden"]), ints(p["vocab"], p["tokens"])
    if op == "embedding_bwd":
        return f(p["tokens"], p["hidden"]), ints(p["vocab"], p["tokens"])
    if op == "sgd_update":
        return f(p["numel"]), f(p["numel"]), xp.zeros(p["numel"], dtype=dtype)
    raise AssertionError(f"make_inputs: no inputs for op {op!r}")  # pragma: no cover


def run(kc: KernelCall, inputs: tuple) -> Any:
    """Execute exactly the op ``kc.op`` on ``inputs`` from :func:`make_inputs`.

    Returns the op's result (``None`` for the in-place ``sgd_update``). Does not
    synchronise a GPU: the caller does (see ``Backend.synchronize``).
    """
    p = kc.params
    op = kc.op
    if op == "gemm":
        return gemm(*inputs)
    if op == "bmm":
        return bmm(*inputs)
    if op.startswith("conv2d"):
        x_shape, w_shape, _ = _conv_shapes(p)
        if op == "conv2d_fwd":
            return conv2d_forward(inputs[0], inputs[1], p["stride"], p["pad"])
        if op == "conv2d_bwd_data":
            return conv2d_backward_data(inputs[0], inputs[1], x_shape, p["stride"], p["pad"])
        return conv2d_backward_filter(inputs[0], inputs[1], w_shape, p["stride"], p["pad"])
    if op.endswith("pool_fwd") or op.endswith("pool_bwd"):
        geom = (p["kernel"], p["stride"], p["pad"])
        x_shape = (p["n"], p["c"], p["h"], p["w"])
        if op == "maxpool_fwd":
            return maxpool2d_forward(inputs[0], *geom)
        if op == "maxpool_bwd":
            return maxpool2d_backward(inputs[0], inputs[1], x_shape, *geom)
        if op == "avgpool_fwd":
            return avgpool2d_forward(inputs[0], *geom)
        return avgpool2d_backward(inputs[0], x_shape, *geom)
    simple = {
        "relu_fwd": relu_forward, "relu_bwd": relu_backward, "gelu_fwd": gelu_forward,
        "gelu_bwd": gelu_backward, "add": add, "grad_sum": grad_sum,
        "softmax_fwd": softmax_forward, "softmax_bwd": softmax_backward,
        "softmax_xent_fwd": softmax_cross_entropy_forward,
        "softmax_xent_bwd": softmax_cross_entropy_backward,
        "embedding_fwd": embedding_forward,
    }
    if op in simple:
        return simple[op](*inputs)
    if op == "batchnorm_fwd":
        return batchnorm_forward(*inputs, NORM_EPS)
    if op == "batchnorm_bwd":
        return batchnorm_backward(inputs[0], NormCache(*inputs[1:]))
    if op == "layernorm_fwd":
        return layernorm_forward(*inputs, NORM_EPS)
    if op == "layernorm_bwd":
        return layernorm_backward(inputs[0], NormCache(*inputs[1:]))
    if op == "embedding_bwd":
        return embedding_backward(inputs[0], inputs[1], p["vocab"])
    if op == "sgd_update":
        return sgd_momentum_update(*inputs, SGD_LR, SGD_MOMENTUM, SGD_WEIGHT_DECAY)
    raise AssertionError(f"run: no kernel for op {op!r}")  # pragma: no cover

