"""GEMMs and the other non-convolution ops on NumPy or CuPy arrays: elementwise activations,
batch and layer norm, softmax and cross-entropy, embedding, linear layers and the SGD
step."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from ddlsim.kernels.backend import array_module, scatter_add

Array = Any  # numpy.ndarray or cupy.ndarray

_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715


def gemm(a: Array, b: Array) -> Array:
    """``a[m, k] @ b[k, n] -> [m, n]``."""
    return a @ b


def bmm(a: Array, b: Array) -> Array:
    """Batched GEMM: ``a[b, m, k] @ b[b, k, n] -> [b, m, n]``."""
    return array_module(a, b).matmul(a, b)


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
