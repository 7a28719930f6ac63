"""Fused (FlashAttention-style) attention: activation memory against Korthikanti et al.
2022 (arXiv 2205.05198) with and without the 5 a s / h term, unchanged matmul FLOPs, the
traffic of Q, K, V and O only, and a faster iteration than unfused attention at long
sequences."""

import numpy as np
import pytest

from ddlsim.api.pipeline import PipelineOptions, predict_model_parallel
from ddlsim.errors import ConfigError
from ddlsim.opspec import bytes_moved, flops
from ddlsim.sim.memory import MemoryConfig, layer_memory
from ddlsim.sim.tensor import megatron_model_flops, recompute_times, shard_model
from ddlsim.sim.workloads import MATMUL_OPS, get_workload, gpt, llama

S, B, H, A, L, V = 128, 2, 64, 4, 3, 100  # seq, micro-batch, hidden, heads, blocks, vocab


def block_bytes(mem, i=0):
    return sum(b for n, b in zip(mem.names, mem.stored, strict=True) if n.startswith(f"h.{i}."))


def stored(attention, recompute="none"):
    wl = gpt(B, L, H, A, S, V, dtype="float16", attention=attention)
    cfg = MemoryConfig(dtype="float16", dropout=True, recompute=recompute)
    return layer_memory(wl.layers, cfg, input_elems=S * B)


LN_STATS = 2 * (2 * S * B) * 2  # two layernorms keep mean and rstd per row (fp16 here)
LSE = A * S * B * 2  # fused attention keeps one log-sum-exp per row and head


def test_activation_bytes_per_layer_match_korthikanti_with_and_without_the_5as_h_term():
    # Korthikanti et al. 2022 Table 2, no recomputation: s b h (34 + 5 a s / h) bytes
    unfused = S * B * H * (34 + 5 * A * S / H)
    fused = S * B * H * 34  # FlashAttention stores no score, softmax or dropout tensor
    for i in range(L):
        assert block_bytes(stored("unfused"), i) == unfused + LN_STATS
        assert block_bytes(stored("fused"), i) == fused + LN_STATS + LSE


def test_selective_recompute_has_nothing_left_to_recompute_with_fused_attention():
    assert block_bytes(stored("fused", "selective")) == block_bytes(stored("fused"))
    assert block_bytes(stored("unfused", "selective")) == 34 * S * B * H + LN_STATS
    for attention, extra in (("fused", 0.0), ("unfused", 1.0)):
        wl = gpt(B, L, H, A, S, V, attention=attention)
        fwd = np.ones(len(wl.layers))
        added = recompute_times(wl.layers, fwd, "selective")
        assert added.sum() == extra * L  # unfused: one attention core per block re-run


def matmul_flops(layers):
    return sum(flops(kc) for lay in layers for kc in lay.fwd + lay.bwd if kc.op in MATMUL_OPS)


@pytest.mark.parametrize("tp", [1, 2, 4])
def test_fused_attention_flops_are_unchanged(tp):
    fused = gpt(B, L, H, A, S, V)
    unfused = gpt(B, L, H, A, S, V, attention="unfused")
    assert fused.layer("h.0.attn.core").fwd[0].op == "flash_attn_fwd"
    a = shard_model(fused, tp).layers
    b = shard_model(unfused, tp).layers
    assert matmul_flops(a) == pytest.approx(matmul_flops(b), rel=1e-12)
    core_a = next(x for x in a if x.name == "h.0.attn.core")
    core_b = next(x for x in b if x.name == "h.0.attn.core")
    assert matmul_flops([core_a]) == matmul_flops([core_b])
    # and both equal Megatron's formula (full s x s block, no causal halving)
    assert tp * matmul_flops(a) == pytest.approx(megatron_model_flops(B, S, L, H, V), rel=1e-9)


def test_fused_core_moves_q_k_v_and_o_only():
    wl = gpt(B, L, H, A, S, V, dtype="bfloat16")
    core = wl.layer("h.0.attn.core")
    assert sum(bytes_moved(kc, "bfloat16") for kc in core.fwd) == 4 * B * S * H * 2
    unfused = gpt(B, L, H, A, S, V, attention="unfused").layer("h.0.attn.core")
    # the unfused kernels write and read the b a s^2 scores and probabilities
    assert sum(bytes_moved(kc, "bfloat16") for kc in unfused.fwd) > 4 * B * A * S * S * 2
    # grouped-query attention: K and V of the kv heads only
    ll = llama(1, 1, 512, 8, 2, 1024, 256, 100, dtype="bfloat16")
    kc = ll.layer("h.0.attn.core").fwd[0]
    d = 512 // 8
    assert bytes_moved(kc, "bfloat16") == (2 * 8 * 256 * d + 2 * 2 * 256 * d) * 2


def _iteration(attention, seq):
    opts = PipelineOptions(model="gpt3-1.3b", micro_batch=1, micro_batches=4, stages=2,
                           dtype="bfloat16", placement="blocks", cluster="dgx-a100",
                           model_overrides=(("layers", 4), ("seq", seq)), attention=attention)
    return predict_model_parallel(opts)


def test_fused_iteration_is_faster_than_unfused_for_long_sequences():
    fused, unfused = _iteration("fused", 8192), _iteration("unfused", 8192)
    assert fused.iteration_s < 0.9 * unfused.iteration_s
    assert fused.model_flops == unfused.model_flops  # the same work counted
    # visible in the 3D breakdown: the attention seconds of every stage, the setting
    for a, b in zip(fused.stages_frame_rows(), unfused.stages_frame_rows(), strict=True):
        assert a["attention_s"] < b["attention_s"]
    assert fused.summary()["attention"] == "fused"
    assert unfused.summary()["attention"] == "unfused"
    # and the s^2 activations are gone from the fullest GPU
    assert fused.summary()["max_memory_bytes"] < unfused.summary()["max_memory_bytes"]


def test_attention_option_is_checked_and_reaches_only_decoders():
    with pytest.raises(ConfigError, match="attention"):
        gpt(B, L, H, A, S, V, attention="flash")
    with pytest.raises(ConfigError, match="attention"):
        PipelineOptions(attention="flash")
    assert get_workload("llama2-7b", 1, layers=1, attention="unfused").layer(
        "h.0.attn.core").fwd[0].op == "bmm"
    # a CNN has no attention option: the engine leaves it out
    opts = PipelineOptions(model="resnet50", micro_batch=2, micro_batches=2, stages=2,
                           attention="unfused")
    assert predict_model_parallel(opts, simulate=False).fits in (True, False)
