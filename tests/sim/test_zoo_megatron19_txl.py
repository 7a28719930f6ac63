"""Megatron-LM 2019 GPT-2 presets and Transformer-XL (DeepLearningExamples) workloads."""

from __future__ import annotations

import pytest

from ddlsim.opspec import flops
from ddlsim.sim.workloads import get_workload
from ddlsim.sim.workloads.transformer_xl import (
    TXL_PRESETS,
    rel_attention_calls,
    transformer_xl,
    transformer_xl_param_count,
    zipf_cluster_fractions,
)


@pytest.mark.parametrize(("name", "billions"), [
    ("gpt2-1.2b", 1.2), ("gpt2-2.5b", 2.5), ("gpt2-4.2b", 4.2), ("gpt2-8.3b", 8.3)])
def test_megatron_2019_presets_match_table_1_sizes(name: str, billions: float) -> None:
    # Shoeybi et al. 2019 Table 1: the stated sizes, within 2 %.
    wl = get_workload(name, 1)
    assert abs(wl.param_count / 1e9 - billions) / billions < 0.02
    hp = wl.hyperparams
    assert hp["hidden"] // hp["heads"] == 96 and hp["seq"] == 1024 and hp["vocab"] == 51200


def test_txl_original_base_matches_paper_151m() -> None:
    # Dai et al. 2019 Table 1 (WikiText-103, "Transformer-XL Standard", 151M): the original
    # base of the DLE README (d_model 410, 10 heads of 41, d_inner 2100, 16 layers, div_val 1).
    wl = transformer_xl(1, 16, 410, 10, 41, 2100, 150, 150)
    assert abs(wl.param_count / 151e6 - 1) < 0.02
    assert wl.param_count == transformer_xl_param_count(16, 410, 10, 41, 2100)


@pytest.mark.parametrize("name", list(TXL_PRESETS))
def test_txl_preset_params_equal_closed_form(name: str) -> None:
    p = TXL_PRESETS[name]
    wl = get_workload(name, 2)
    assert wl.param_count == transformer_xl_param_count(
        p.layers, p.d_model, p.heads, p.d_head, p.d_inner, div_val=p.div_val)


def test_txl_large_param_count_versus_published_257m() -> None:
    # The DLE code's parameters for the large configuration (div_val 4) count 285.2M;
    # the paper's WikiText-103 table states 257M. The gap (11 %) is recorded, not hidden.
    n = get_workload("transformer-xl-large", 1).param_count
    assert n == 285_167_482
    assert 0.10 < n / 257e6 - 1 < 0.12


def test_txl_attention_shapes_by_hand() -> None:
    # Base: batch 2, 8 heads of 64, tgt 192 queries against 192 + 192 keys.
    b, h, d, t, m = 2, 8, 64, 192, 192
    k = t + m
    wl = transformer_xl(b, 16, 512, h, d, 2048, t, m)
    core = wl.layer("h.0.attn.core")
    bmm_f = [c for c in core.fwd if c.op == "bmm"]
    assert [(c.params["b"], c.params["m"], c.params["n"], c.params["k"]) for c in bmm_f] == [
        (b * h, t, k, d),  # AC = (Q + u) K^T
        (b * h, t, k, d),  # BD = (Q + v) R^T, the same size
        (b * h, t, d, k)]  # P V
    # Hand count: three forward products of 2*t*k*d FLOPs per head, seven backward
    # (dP, dV, dQ, dK for the content term; dQ, dR for the position term: six of that size).
    per = 2 * t * k * d * b * h
    assert sum(flops(c) for c in bmm_f) == 3 * per
    assert sum(flops(c) for c in core.bwd if c.op == "bmm") == 6 * per
    # qkv runs over memory + segment; r over the klen positions only, no input gradient.
    qkv = wl.layer("h.0.attn.qkv")
    assert qkv.fwd[0].params == {"m": b * k, "n": 3 * h * d, "k": 512}
    r = wl.layer("h.0.attn.r")
    assert r.fwd[0].params == {"m": k, "n": h * d, "k": 512} and len(r.bwd) == 1
    assert wl.layer("h.0.attn.proj").fwd[0].params == {"m": b * t, "n": 512, "k": h * d}


def test_txl_backward_products_have_forward_sizes() -> None:
    fwd, bwd = rel_attention_calls(16, 8, 192, 384, 64)
    f = sum(flops(c) for c in fwd if c.op == "bmm")
    assert sum(flops(c) for c in bwd if c.op == "bmm") == 2 * f


def test_txl_adaptive_softmax_runs_tails_over_their_tokens() -> None:
    b, t = 4, 192
    wl = get_workload("transformer-xl-base", b)
    rows = b * t
    fr = zipf_cluster_fractions((19997, 39997, 199997), 267735)
    assert abs(sum(fr) - 1) < 1e-9
    head = wl.layer("lm_head").fwd[0].params
    assert head == {"m": rows, "n": 19997 + 3, "k": 512}
    sizes = (20000, 160000, 67738)
    for i, size in enumerate(sizes, start=1):
        g = wl.layer(f"lm_tail.{i}").fwd[0].params
        assert g == {"m": round(rows * fr[i]), "n": size, "k": 512}  # div_val 1: full width
    assert wl.tokens_per_sample == t


def test_txl_large_div_val_4_cluster_widths() -> None:
    wl = get_workload("transformer-xl-large", 1)
    assert [wl.layer(f"lm_tail.{i}").fwd[0].params["k"] for i in (1, 2, 3)] == [256, 64, 16]
    assert wl.layer("lm_head.proj").param_count == 1024 * 1024  # tie_projs[0] is False
    assert wl.layer("lm_tail.1.proj").param_count == 0  # shared with the embedding's


def test_txl_bad_cutoffs_raise() -> None:
    from ddlsim.errors import ConfigError

    with pytest.raises(ConfigError, match="cutoffs"):
        transformer_xl(1, 2, 64, 2, 32, 128, 8, 8, vocab=100, cutoffs=(50, 20))
