"""The fused-attention kernels (kernels.ops.attention) against attention written out
(scores, softmax, weighted sum) in float64, and their opspec FLOPs and bytes."""

from __future__ import annotations

import numpy as np
import pytest

from ddlsim import opspec
from ddlsim.kernels.ops import attention as att


def _reference(q, k, v, g):
    kk, vv = np.repeat(k, g, axis=0), np.repeat(v, g, axis=0)
    s = q @ kk.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return p @ vv


@pytest.mark.parametrize("g", [1, 2])
def test_forward_and_backward_match_written_out_attention(monkeypatch, g):
    monkeypatch.setattr(att, "BLOCK", 3)  # several key tiles, the last one partial
    rng = np.random.default_rng(0)
    b, sq, skv, d = 4, 5, 8, 6
    q = rng.standard_normal((b, sq, d))
    k, v = rng.standard_normal((b // g, skv, d)), rng.standard_normal((b // g, skv, d))
    o, lse = att.flash_attention_forward(q, k, v, g)
    np.testing.assert_allclose(o, _reference(q, k, v, g), rtol=1e-12, atol=1e-12)
    assert lse.shape == (b, sq)
    do = rng.standard_normal((b, sq, d))
    dq, dk, dv = att.flash_attention_backward(do, q, k, v, o, lse, g)

    def loss(qq, kk, vv):
        return float((_reference(qq, kk, vv, g) * do).sum())

    eps = 1e-6
    for arr, grad in ((q, dq), (k, dk), (v, dv)):
        idx = tuple(rng.integers(0, n) for n in arr.shape)
        plus, minus = arr.copy(), arr.copy()
        plus[idx] += eps
        minus[idx] -= eps
        args_p = [plus if a is arr else a for a in (q, k, v)]
        args_m = [minus if a is arr else a for a in (q, k, v)]
        numeric = (loss(*args_p) - loss(*args_m)) / (2 * eps)
        assert grad[idx] == pytest.approx(numeric, rel=1e-6, abs=1e-8)


def test_opspec_flops_are_the_unfused_matmuls_and_bytes_are_q_k_v_o():
    b, s, d, g = 12, 2048, 128, 1
    fwd = opspec.call("flash_attn_fwd", b=b, q=s, kv=s, d=d, g=g)
    bwd = opspec.call("flash_attn_bwd", b=b, q=s, kv=s, d=d, g=g)
    unfused_fwd = 2 * opspec.flops(opspec.call("bmm", b=b, m=s, n=s, k=d))
    assert opspec.flops(fwd) == unfused_fwd == 4 * b * s * s * d
    assert opspec.flops(bwd) == 2 * unfused_fwd
    # Q, K, V, O once each: 4 b s d elements (b s h per tensor with h = heads x d)
    assert opspec.bytes_moved(fwd, "bfloat16") == 4 * b * s * d * 2
    assert opspec.bytes_moved(bwd, "bfloat16") == 8 * b * s * d * 2
    # grouped-query attention: K and V of b/g heads
    gqa = opspec.call("flash_attn_fwd", b=8, q=s, kv=s, d=d, g=4)
    assert opspec.elements_moved(gqa) == 2 * 8 * s * d + 2 * 2 * s * d
