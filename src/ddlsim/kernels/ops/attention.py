"""Fused attention (FlashAttention-style) on NumPy or CuPy arrays: the ``flash_attn_fwd`` /
``flash_attn_bwd`` ops of :mod:`ddlsim.opspec`.

``O = softmax(Q K^T / sqrt(d)) V`` for ``b`` query heads of ``q`` queries against ``kv``
keys of head size ``d``; K and V hold ``b / g`` heads, each shared by ``g`` query heads
(grouped-query attention; ``g = 1`` is multi-head attention). No mask (the cost model
counts the full score block, as Megatron's FLOP formula does).

The computation runs over blocks of keys with the running-maximum ("online") softmax of
Dao et al. 2022 (arXiv 2205.14135, Algorithm 1): the full ``q x kv`` score matrix is never
held, only one ``q x block`` tile per head. The forward returns the row-wise log-sum-exp
that FlashAttention saves for the backward, which recomputes the scores tile by tile
(Algorithm 2 there). Accumulation is in float32 (float64 for float64 inputs). This is a
reference implementation written with array operations, not one on-chip kernel: a
measured row times this implementation on this machine.
"""

from __future__ import annotations

import math
from typing import Any

from ddlsim.kernels.backend import array_module

Array = Any  # numpy.ndarray or cupy.ndarray

#: Keys per tile.
BLOCK = 512


def _acc(xp, a: Array):
    return xp.float64 if a.dtype == xp.float64 else xp.float32


def _expand(xp, a: Array, g: int) -> Array:
    """K or V heads repeated for their ``g`` query heads (``[b/g, n, d] -> [b, n, d]``)."""
    return a if g == 1 else xp.repeat(a, g, axis=0)


def flash_attention_forward(q: Array, k: Array, v: Array, g: int = 1) -> tuple[Array, Array]:
    """``q[b, sq, d]``, ``k, v[b/g, skv, d]`` -> ``(o[b, sq, d], lse[b, sq])``."""
    xp = array_module(q, k, v)
    acc = _acc(xp, q)
    b, sq, d = q.shape
    scale = 1.0 / math.sqrt(d)
    qa = q.astype(acc)
    ka, va = _expand(xp, k, g).astype(acc), _expand(xp, v, g).astype(acc)
    skv = ka.shape[1]
    m = xp.full((b, sq), -xp.inf, dtype=acc)
    lsum = xp.zeros((b, sq), dtype=acc)
    out = xp.zeros((b, sq, d), dtype=acc)
    for j0 in range(0, skv, BLOCK):
        s = xp.matmul(qa, ka[:, j0:j0 + BLOCK].transpose(0, 2, 1)) * scale
        m_new = xp.maximum(m, s.max(axis=-1))
        p = xp.exp(s - m_new[..., None])
        corr = xp.exp(m - m_new)
        lsum = lsum * corr + p.sum(axis=-1)
        out = out * corr[..., None] + xp.matmul(p, va[:, j0:j0 + BLOCK])
        m = m_new
    return (out / lsum[..., None]).astype(q.dtype), m + xp.log(lsum)


def flash_attention_backward(do: Array, q: Array, k: Array, v: Array, o: Array, lse: Array,
                             g: int = 1) -> tuple[Array, Array, Array]:
    """Gradients ``(dq, dk, dv)`` of :func:`flash_attention_forward` for the output
    gradient ``do``; ``o`` and ``lse`` are the forward's outputs."""
    xp = array_module(do, q, k, v)
    acc = _acc(xp, q)
    b, sq, d = q.shape
    scale = 1.0 / math.sqrt(d)
    qa, doa = q.astype(acc), do.astype(acc)
    ka, va = _expand(xp, k, g).astype(acc), _expand(xp, v, g).astype(acc)
    lse_a = lse.astype(acc)
    skv = ka.shape[1]
    delta = (doa * o.astype(acc)).sum(axis=-1)  # rowsum(dO * O)
    dq = xp.zeros((b, sq, d), dtype=acc)
    dk = xp.zeros((b, skv, d), dtype=acc)
    dv = xp.zeros((b, skv, d), dtype=acc)
    for j0 in range(0, skv, BLOCK):
        kj, vj = ka[:, j0:j0 + BLOCK], va[:, j0:j0 + BLOCK]
        p = xp.exp(xp.matmul(qa, kj.transpose(0, 2, 1)) * scale - lse_a[..., None])
        dv[:, j0:j0 + BLOCK] = xp.matmul(p.transpose(0, 2, 1), doa)
        ds = p * (xp.matmul(doa, vj.transpose(0, 2, 1)) - delta[..., None])
        dq += xp.matmul(ds, kj) * scale
        dk[:, j0:j0 + BLOCK] = xp.matmul(ds.transpose(0, 2, 1), qa) * scale
    if g > 1:  # each K/V head collects the gradients of its g query heads
        dk = dk.reshape(b // g, g, skv, d).sum(axis=1)
        dv = dv.reshape(b // g, g, skv, d).sum(axis=1)
    return dq.astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype)
