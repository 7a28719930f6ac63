"""Tensor and context parallelism: FLOP/parameter conservation (GPT, Llama, Nemotron),
collectives per layer, Korthikanti activation memory with TP (and sequence parallelism),
ring-attention bytes and overlap, Megatron FLOP formula, layout."""

import pytest

from ddlsim.errors import ConfigError
from ddlsim.opspec import flops
from ddlsim.sim.memory import MemoryConfig, layer_memory
from ddlsim.sim.tensor import (
    Layout,
    block_bounds,
    layer_times,
    megatron_model_flops,
    shard_gpt,
    shard_model,
)
from ddlsim.sim.workloads import (
    MATMUL_OPS,
    gpt,
    llama,
    llama_param_count,
    nemotron,
    nemotron_param_count,
)

S, B, H, A, L, V = 64, 2, 64, 8, 2, 96


def model(attention="fused"):
    return gpt(B, L, H, A, S, V, dtype="float16", attention=attention)


def matmul_flops(layers):
    return sum(flops(kc) for lay in layers for kc in lay.fwd + lay.bwd if kc.op in MATMUL_OPS)


@pytest.mark.parametrize("tp", [1, 2, 4, 8])
def test_matmul_flops_and_sharded_params_are_conserved(tp):
    wl = model()
    sh = shard_gpt(wl, tp)
    assert tp * matmul_flops(sh.layers) == pytest.approx(matmul_flops(wl.layers), rel=1e-12)
    h = H
    replicated = L * (2 * 2 * h + 2 * h) + (S * h) + 2 * h  # LNs, row-parallel biases, pos, ln_f
    sharded = wl.param_count - replicated
    assert sum(lay.param_count for lay in sh.layers) == sharded // tp + replicated


@pytest.mark.parametrize("sp", [False, True])
def test_two_collectives_forward_two_backward_per_block(sp):
    sh = shard_gpt(model(), 4, sequence_parallel=sp)
    block = [c for lay, comm in zip(sh.layers, sh.tp_comm, strict=True)
             if lay.name.startswith("h.0.") for c in comm]
    fwd = [op for phase, op, _ in block if phase == "fwd"]
    bwd = [op for phase, op, _ in block if phase == "bwd"]
    if sp:  # each allreduce becomes reduce-scatter + all-gather of the same volume
        assert sorted(fwd) == ["all_gather", "all_gather", "reduce_scatter", "reduce_scatter"]
        assert sorted(bwd) == ["all_gather", "all_gather", "reduce_scatter", "reduce_scatter"]
    else:
        assert fwd == ["allreduce", "allreduce"] and bwd == ["allreduce", "allreduce"]
    assert {e for _, _, e in block} == {S * B * H}


def block_bytes(layers, t, i=0):
    mem = layer_memory(layers, MemoryConfig(dtype="float16", dropout=True), input_elems=S * B)
    return sum(b for n, b in zip(mem.names, mem.stored, strict=True) if n.startswith(f"h.{i}."))


@pytest.mark.parametrize("t", [2, 4, 8])
def test_activation_memory_with_tp_matches_korthikanti(t):
    # Korthikanti et al. 2022 eq. 2: s b h (10 + 24/t + 5 a s / (h t)) bytes (fp16)
    want = S * B * H * (10 + 24 / t + 5 * A * S / (H * t)) + 2 * (2 * S * B) * 2
    unfused = shard_gpt(model("unfused"), t).layers
    assert block_bytes(unfused, t) == pytest.approx(want, rel=1e-12)
    # fused attention: the 5 a s / (h t) term goes; the per-row log-sum-exp of a/t heads
    fused = S * B * H * (10 + 24 / t) + 2 * (2 * S * B) * 2 + 2 * (A // t) * S * B
    assert block_bytes(shard_gpt(model(), t).layers, t) == pytest.approx(fused, rel=1e-12)


@pytest.mark.parametrize("t", [2, 4])
def test_activation_memory_with_sequence_parallel_matches_korthikanti(t):
    # Korthikanti et al. 2022 eq. 4: s b h / t (34 + 5 a s / h)
    want = S * B * H / t * (34 + 5 * A * S / H) + 2 * (2 * S * B // t) * 2
    sh = shard_gpt(model("unfused"), t, sequence_parallel=True)
    assert block_bytes(sh.layers, t) == pytest.approx(want, rel=1e-12)
    fused = S * B * H / t * 34 + 2 * (2 * S * B // t) * 2 + 2 * (A // t) * S * B
    sh = shard_gpt(model(), t, sequence_parallel=True)
    assert block_bytes(sh.layers, t) == pytest.approx(fused, rel=1e-12)


def test_megatron_flops_formula_matches_workload_matmuls():
    # FLOP-06: 72 B s l h^2 (1 + s/(6h) + V/(12 l h)) equals the workload's matmul FLOPs
    wl = gpt(4, 3, 128, 4, 256, 1000)
    assert megatron_model_flops(4, 256, 3, 128, 1000) == pytest.approx(
        matmul_flops(wl.layers), rel=1e-12)
    # with recompute the block term is 4/3 larger, the logit term unchanged (FLOP-05)
    full = megatron_model_flops(4, 256, 3, 128, 1000, recompute=True)
    logits = 6 * 4 * 256 * 128 * 1000
    assert full - logits == pytest.approx(4 / 3 * (megatron_model_flops(4, 256, 3, 128, 1000)
                                                   - logits))


def test_layout_and_block_bounds():
    lay = Layout(tp=8, pp=16, dp=8)
    assert lay.num_gpus == 1024
    assert lay.tp_group(0) == list(range(8))
    assert lay.dp_group(1) == [64 + 8 * d for d in range(8)]
    assert lay.rank(15, 7, 7) == 1023
    names = [lay.name for lay in model().layers]
    b = block_bounds(names, 2)
    assert names[b[1]] == "h.1.ln1" and b[0] == 0 and b[-1] == len(names)
    with pytest.raises(ConfigError, match="need at least 3 transformer blocks"):
        block_bounds(names, 3)
    with pytest.raises(ConfigError, match="tp: must divide heads=8"):
        shard_gpt(model(), 16)


# --------------------------------------------------------------------------- Llama / Nemotron
KV, FFN = 4, 160  # 8 query heads share 4 KV heads; SwiGLU / squared-ReLU width


def decoder(kind, kv=KV, batch=B, seq=S, attention="fused"):
    build = llama if kind == "llama" else nemotron
    return build(batch, L, H, A, kv, FFN, seq, V, dtype="bfloat16", attention=attention)


def replicated_params(kind):
    """Norm weights (and LayerNorm biases) every TP rank keeps whole."""
    per_norm = H if kind == "llama" else 2 * H  # RMSNorm: weight; layernorm1p: weight + bias
    return (2 * L + 1) * per_norm


@pytest.mark.parametrize("kind", ["llama", "nemotron"])
@pytest.mark.parametrize("tp", [1, 2, 4])
def test_decoder_tp_conserves_matmul_flops_and_params(kind, tp):
    wl = decoder(kind)
    sh = shard_model(wl, tp)
    assert tp * matmul_flops(sh.layers) == pytest.approx(matmul_flops(wl.layers), rel=1e-12)
    count = (llama_param_count if kind == "llama" else nemotron_param_count)(
        L, H, A, KV, FFN, V)
    assert wl.param_count == count
    rep = replicated_params(kind)
    assert sum(lay.param_count for lay in sh.layers) == (count - rep) // tp + rep


@pytest.mark.parametrize("kind", ["llama", "nemotron"])
@pytest.mark.parametrize("sp", [False, True])
def test_decoder_block_collectives_and_bytes(kind, sp):
    tp = 4
    sh = shard_model(decoder(kind), tp, sequence_parallel=sp)
    block = [(lay.name, c) for lay, comm in zip(sh.layers, sh.tp_comm, strict=True)
             if lay.name.startswith("h.1.") for c in comm]
    ops = sorted((phase, op) for _, (phase, op, _) in block)
    if sp:
        assert ops == sorted([("fwd", "all_gather")] * 2 + [("fwd", "reduce_scatter")] * 2
                             + [("bwd", "all_gather")] * 2 + [("bwd", "reduce_scatter")] * 2)
    else:
        assert ops == [("bwd", "allreduce")] * 2 + [("fwd", "allreduce")] * 2
    # every collective moves the b s h activation: 2 bytes per bf16 element
    seen = []

    def tp_time(op, nbytes):
        seen.append((op, nbytes))
        return 0.0

    one_block = [i for i, lay in enumerate(sh.layers) if lay.name.startswith("h.1.")]
    layer_times([sh.layers[i] for i in one_block], [sh.tp_comm[i] for i in one_block],
                lambda kc, dt: 0.0, "bfloat16", tp_time)
    assert len(seen) == 4 * (2 if sp else 1)
    assert {nbytes for _, nbytes in seen} == {B * S * H * 2}


def test_decoder_tp_splits_query_and_kv_heads_and_mlp():
    sh = shard_model(decoder("llama"), 4)
    d = H // A
    qkv = next(lay for lay in sh.layers if lay.name == "h.0.attn.qkv")
    assert qkv.fwd[0].params == {"m": B * S, "n": (A + 2 * KV) * d // 4, "k": H}
    gate_up = next(lay for lay in sh.layers if lay.name == "h.0.mlp.gate_up")
    assert gate_up.fwd[0].params["n"] == 2 * FFN // 4
    down = next(lay for lay in sh.layers if lay.name == "h.0.mlp.down")
    assert down.fwd[0].params == {"m": B * S, "n": H, "k": FFN // 4}
    core = next(lay for lay in sh.layers if lay.name == "h.0.attn.core")
    assert core.fwd[0].params["b"] == B * A // 4
    head = next(lay for lay in sh.layers if lay.name == "lm_head")
    assert head.param_count == V * H // 4  # untied, vocabulary-parallel


def test_tp_must_divide_kv_heads():
    with pytest.raises(ConfigError, match=r"tp: must divide kv_heads=2 .*got 4"):
        shard_model(decoder("llama", kv=2), 4)
    with pytest.raises(ConfigError, match="tp: must divide heads=8"):
        shard_model(decoder("nemotron", kv=8), 16)


# --------------------------------------------------------------------------- context parallel
def gemm_flops(layers):
    return sum(flops(kc) for lay in layers for kc in lay.fwd + lay.bwd if kc.op == "gemm")


def bmm_flops(layers):
    return sum(flops(kc) for lay in layers for kc in lay.fwd + lay.bwd if kc.op == "bmm")


def test_cp1_is_the_tensor_parallel_shard():
    for tp, sp in ((1, True), (2, False), (4, True)):
        a, b = shard_model(model(), tp, sp, cp=1), shard_gpt(model(), tp, sp)
        assert a.layers == b.layers and a.tp_comm == b.tp_comm
    lay = Layout(tp=2, pp=3, dp=4)  # cp=1: Megatron-LM's tp-dp-pp order, unchanged
    assert [lay.rank(k, d, t) for k in range(3) for d in range(4) for t in range(2)] == \
        list(range(24))


@pytest.mark.parametrize("kind", ["llama", "nemotron"])
@pytest.mark.parametrize("tp,cp", [(1, 2), (2, 2), (1, 4)])
def test_cp_divides_gemm_and_attention_flops(kind, tp, cp):
    wl = decoder(kind)
    sh = shard_model(wl, tp, cp=cp)
    assert tp * cp * gemm_flops(sh.layers) == pytest.approx(gemm_flops(wl.layers), rel=1e-12)
    assert tp * cp * bmm_flops(sh.layers) == pytest.approx(bmm_flops(wl.layers), rel=1e-12)
    # parameters are not split by cp
    assert sum(x.param_count for x in sh.layers) == \
        sum(x.param_count for x in shard_model(wl, tp).layers)


@pytest.mark.parametrize("tp,cp", [(1, 2), (2, 4)])
def test_cp_ring_bytes_closed_form(tp, cp):
    sh = shard_model(decoder("llama"), tp, cp=cp)
    d = H // A
    core = [c for lay, c in zip(sh.layers, sh.tp_comm, strict=True)
            if lay.name == "h.0.attn.core"][0]
    step = 2 * B * (S // cp) * (KV // tp) * d  # K and V of s/cp tokens, this GPU's KV heads
    assert core == (("fwd", "cp_ring", step), ("bwd", "cp_ring", 2 * step))
    seen = []

    def comm(op, nbytes):
        seen.append((op, nbytes))
        return 0.0

    i = sh.layers.index(next(x for x in sh.layers if x.name == "h.0.attn.core"))
    layer_times([sh.layers[i]], [core], lambda kc, dt: 1.0, "bfloat16", comm, cp=cp)
    assert seen == [("p2p", step * 2), ("p2p", 2 * step * 2)]


def test_cp_ring_exposed_comm_is_what_exceeds_each_compute_step():
    cp = 4
    sh = shard_model(decoder("llama", attention="unfused"), 1, cp=cp)
    i = next(k for k, x in enumerate(sh.layers) if x.name == "h.0.attn.core")
    lay, comm = sh.layers[i], sh.tp_comm[i]
    per_call = 1e-3  # every kernel 1 ms: unfused fwd compute 3 ms (3 calls), bwd 5 ms

    def run(p2p_s):
        return layer_times([lay], [comm], lambda kc, dt: per_call, "bfloat16",
                           lambda op, nbytes: p2p_s, cp=cp)

    fwd, bwd, fwd_c = run(1e-6)  # compute dominates: ring fully hidden
    assert fwd[0] == pytest.approx(3e-3) and bwd[0] == pytest.approx(5e-3)
    fwd, bwd, fwd_c = run(2e-3)  # each step exposes 2 ms minus its share of compute
    assert fwd[0] == pytest.approx(3e-3 + (cp - 1) * (2e-3 - 3e-3 / cp))
    assert bwd[0] == pytest.approx(5e-3 + (cp - 1) * (2e-3 - 5e-3 / cp))
    assert fwd_c[0] == pytest.approx(3e-3)


def test_cp_layout_and_errors():
    lay = Layout(tp=4, pp=2, dp=2, cp=2)
    assert lay.num_gpus == 32
    assert lay.tp_group(0, 0, 1) == [4, 5, 6, 7]  # tp fastest, then cp
    assert lay.cp_group(0, 1, 3) == [11, 15]
    assert lay.grad_group(1, 0) == [16, 20, 24, 28]  # dp x cp peers of one TP rank
    assert lay.rank(1, 1, 3, 1) == 31
    with pytest.raises(ConfigError, match="cp: must be an integer >= 1"):
        Layout(1, 1, 1, cp=0)
    with pytest.raises(ConfigError, match=r"cp: seq=64 must split into 2 x cp = 256"):
        shard_model(decoder("llama"), 1, cp=128)


@pytest.mark.parametrize("kind", ["llama", "nemotron"])
def test_general_megatron_flops_match_decoder_matmuls(kind):
    # FLOP-06 in Megatron's general form (GQA, gated MLP) counts exactly the GEMM + bmm work
    wl = decoder(kind)
    got = megatron_model_flops(B, S, L, H, V, heads=A, kv_heads=KV, ffn=FFN,
                               gated=kind == "llama")
    assert got == pytest.approx(matmul_flops(wl.layers), rel=1e-12)
    # and reduces to the GPT closed form for g = a, f = 4h, no gate
    assert megatron_model_flops(4, 256, 3, 128, 1000, heads=4, kv_heads=4, ffn=512) == \
        pytest.approx(megatron_model_flops(4, 256, 3, 128, 1000), rel=1e-12)
    assert megatron_model_flops(4, 256, 3, 128, 1000, recompute=True, heads=4, kv_heads=4,
                                ffn=512) == pytest.approx(
        megatron_model_flops(4, 256, 3, 128, 1000, recompute=True), rel=1e-12)
