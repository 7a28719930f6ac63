"""LoRA fine-tuning (sim.workloads.lora) against hand counts: adapter parameters, the kernel
calls of adapted and frozen layers, FLOPs, memory per GPU and the gradient volume."""

from __future__ import annotations

import pytest

from ddlsim.errors import ConfigError
from ddlsim.job import Workload as JobWorkload
from ddlsim.opspec import call, flops
from ddlsim.sim import workloads as W
from ddlsim.sim.memory import DROPOUT_MASK_BYTES, MemoryConfig, layer_memory
from ddlsim.sim.sync_dp import step_cost
from ddlsim.sim.tensor import shard_model

# a toy Llama: 2 blocks, h=64, 4 query heads of d=16, 2 K/V heads (kv width 32), ffn 128
B, L, H, A, KV, F, S, V = 2, 2, 64, 4, 2, 128, 16, 100
ROWS = B * S  # 32 token rows
KVW = KV * (H // A)  # 32
QKV = H + 2 * KVW  # 128: the fused projection's output
R = 4


def toy():
    return W.llama(B, L, H, A, KV, F, S, V)


def lora(targets=("qkv", "o"), rank=R, dropout=0.1, wl=None):
    return W.apply_lora(wl or toy(), W.LoraSpec(rank, targets, dropout))


def gemm(m, n, k):
    return call("gemm", m=m, n=n, k=k)


# --------------------------------------------------------------------------- parameters
def test_trainable_parameters_are_the_adapters_r_times_din_plus_dout():
    base = toy()
    w = lora()
    per_block = R * (H + QKV) + R * (H + H)  # qkv: 64 -> 128, o: 64 -> 64
    assert w.param_count == L * per_block == 2560
    assert w.frozen_param_count == base.param_count == W.llama_param_count(L, H, A, KV, F, V)
    sep = lora(("q", "k", "v", "o", "gate", "up", "down"))
    per_block = R * ((H + H) + 2 * (H + KVW) + (H + H) + 2 * (H + F) + (F + H))
    assert sep.param_count == L * per_block
    assert sep.param_count == W.lora_param_count(
        L, H, A, KV, F, W.LoraSpec(R, ("q", "k", "v", "o", "gate", "up", "down")))
    for layer in w.layers:  # every base weight is frozen, only adapters train
        assert layer.param_count == 0 or layer.name.endswith(("attn.qkv", "attn.proj"))


def test_llama2_70b_mlperf_recipe_trains_44_6_million_parameters():
    # 80 blocks x 16 x [(8192 + 10240) fused QKV + (8192 + 8192) output]; PEFT on the unfused
    # q, k, v, o projections: 80 x 16 x (16384 + 2 x 9216 + 16384) = 65,536,000
    p = W.LLAMA_PRESETS["llama2-70b"]
    assert W.lora_param_count(p.layers, p.hidden, p.heads, p.kv_heads, p.ffn,
                              W.MLPERF_LORA) == 44_564_480
    qkvo = W.LoraSpec(16, ("q", "k", "v", "o"))
    assert W.lora_param_count(p.layers, p.hidden, p.heads, p.kv_heads, p.ffn,
                              qkvo) == 65_536_000
    wl = W.apply_lora(W.get_workload("llama2-70b", 1, layers=2), W.MLPERF_LORA)
    assert wl.param_count == 2 * 16 * (8192 + 10240 + 8192 + 8192)


# --------------------------------------------------------------------------- kernel calls
def test_an_adapted_layer_runs_the_base_gemm_plus_two_adapter_gemms_and_their_backward():
    q = lora().layer("h.1.attn.qkv")
    drop = ROWS * H
    assert q.fwd == (gemm(ROWS, QKV, H), call("relu_fwd", numel=drop), gemm(ROWS, R, H),
                     gemm(ROWS, QKV, R), call("add", numel=ROWS * QKV))
    assert q.bwd == (gemm(ROWS, H, QKV),  # base data gradient, no weight gradient
                     gemm(QKV, R, ROWS), gemm(ROWS, R, QKV), gemm(R, H, ROWS),  # dB, dH, dA
                     gemm(ROWS, H, R), call("relu_bwd", numel=drop),  # adapter dX, dropout
                     call("add", numel=ROWS * H))  # summed into the base's dX
    assert (q.param_count, q.frozen_params) == (R * (H + QKV), H * QKV)
    # kept: the input (as in full training), the adapter's H and the dropped-out input
    assert q.activation_elems == ROWS * H + ROWS * R + drop and q.mask_elems == drop


def test_frozen_linear_layers_run_only_their_data_gradient():
    base, w = toy(), lora()
    down = w.layer("h.1.mlp.down")
    assert down.bwd == (gemm(ROWS, F, H),) and down.fwd == base.layer("h.1.mlp.down").fwd
    assert (down.param_count, down.frozen_params) == (0, F * H)
    assert down.bwd_flops == down.fwd_flops  # backward ~ 1x forward instead of 2x
    assert base.layer("h.1.mlp.down").bwd_flops == 2 * down.fwd_flops
    head = w.layer("lm_head")
    assert head.bwd == (gemm(ROWS, H, V),) and head.param_count == 0


def test_nothing_before_the_first_adapter_runs_a_backward():
    w = lora()
    assert w.layer("embedding").bwd == () and w.layer("embedding").activation_elems == 0
    assert w.layer("h.0.ln1").bwd == () and w.layer("h.0.ln1").activation_elems == 0
    q0 = w.layer("h.0.attn.qkv")  # adapter weight gradients only: no dgrad, no adapter dX
    assert q0.bwd == (gemm(QKV, R, ROWS), gemm(ROWS, R, QKV), gemm(R, H, ROWS))
    assert w.layer("h.0.attn.core").bwd == toy().layer("h.0.attn.core").bwd
    # with only the output projection adapted, block 0's attention needs no backward
    o_only = lora(("o",))
    assert o_only.layer("h.0.attn.core").bwd == () and o_only.layer("h.0.attn.qkv").bwd == ()
    assert o_only.layer("h.1.attn.core").bwd != ()


def test_forward_flops_are_the_base_plus_the_adapters():
    base, w = toy(), lora(dropout=0.0)
    adapters = L * sum(2 * ROWS * R * (d_in + d_out) + flops(call("add", numel=ROWS * d_out))
                       for d_in, d_out in ((H, QKV), (H, H)))
    assert w.fwd_flops == pytest.approx(base.fwd_flops + adapters, rel=1e-12)
    # backward: full training's minus every weight gradient and the embedding's, plus the
    # adapters' (about twice their forward) - well under full training's
    assert w.bwd_flops < 0.6 * base.bwd_flops


# --------------------------------------------------------------------------- memory
def test_memory_frozen_base_in_16_bit_adapters_with_fp32_master_adam_and_grads():
    w = lora()
    cfg = MemoryConfig(dtype="bfloat16", grad_dtype="float32", optimizer="adam")
    mem = layer_memory(w.layers, cfg, ROWS)
    pt, pf = w.param_count, w.frozen_param_count
    assert mem.weights.sum() == 2 * (pt + pf)  # bf16, no fp32 copy of the base
    assert mem.grads.sum() == 4 * pt  # gradients of the adapters only
    assert mem.optimizer.sum() == 12 * pt  # fp32 master + Adam m, v of the adapters only
    i = w.layers.index(w.layer("h.1.attn.qkv"))
    drop = ROWS * H
    assert mem.full[i] == 2 * (ROWS * H + ROWS * R + drop) + DROPOUT_MASK_BYTES * drop
    z3 = layer_memory(w.layers, MemoryConfig(dtype="bfloat16", zero=3, zero_group=4), ROWS)
    assert z3.weights.sum() == 2 * (pt + pf) / 4  # FSDP shards the frozen base too


def test_the_gradient_allreduce_carries_only_the_adapters():
    w = lora()
    cost = step_cost(w, lambda kc, dtype: 1e-6, "bfloat16", "float32")
    assert cost.bwd_grad_bytes.sum() == 4 * w.param_count
    assert [kc.params["numel"] for kc in w.update] == [R * (H + QKV), R * (H + H)] * L


# --------------------------------------------------------------------------- tensor parallel
@pytest.mark.parametrize("targets", [("qkv", "o"), ("q", "k", "v", "o", "gate", "up", "down")])
def test_tensor_parallel_gpus_each_hold_one_tp_th_of_every_adapter(targets):
    base, spec = toy(), W.LoraSpec(R, targets)
    sharded = shard_model(base, 2)
    per_gpu = W.lora_layers(sharded.layers, base.hyperparams, spec, tp=2)
    assert 2 * sum(x.param_count for x in per_gpu) == W.apply_lora(base, spec).param_count
    assert [x.name for x in per_gpu] == [x.name for x in sharded.layers]
    same = W.lora_layers(base.layers, base.hyperparams, spec, tp=1)
    assert same == W.apply_lora(base, spec).layers


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("kw, match", [
    (dict(lora_rank=0), "lora_rank: must be a positive integer, got 0"),
    (dict(lora_rank=-4), "must be a positive integer"),
    (dict(lora_rank=True), "must be a positive integer"),
    (dict(lora_rank=2.5), "must be a positive integer"),
    (dict(lora_rank=8, lora_targets=("qv",)), "did you mean 'qkv'"),
    (dict(lora_rank=8, lora_targets=()), "at least one of"),
    (dict(lora_rank=8, lora_targets=("qkv", "q")), "excludes 'q'"),
    (dict(lora_rank=8, lora_targets=("o", "o")), "must not repeat"),
    (dict(lora_rank=8, lora_dropout=1.0), r"lora_dropout: must be a number in \[0, 1\)"),
    (dict(lora_targets=("q",)), "needs workload.lora_rank"),
])
def test_bad_lora_settings_are_one_line_config_errors(kw, match):
    with pytest.raises(ConfigError, match=match) as exc:
        JobWorkload("llama2-7b", **kw)
    assert "\n" not in str(exc.value)


def test_lora_refuses_models_and_targets_it_cannot_adapt():
    with pytest.raises(ConfigError, match="resnet50 has conv layers"):
        W.apply_lora(W.get_workload("resnet50", 2), W.MLPERF_LORA)
    with pytest.raises(ConfigError, match="gpt-small has no layer for gate"):
        W.apply_lora(W.get_workload("gpt-small", 1), W.LoraSpec(4, ("gate",)))
    with pytest.raises(ConfigError, match="already has LoRA adapters"):
        W.apply_lora(lora(), W.MLPERF_LORA)
    gpt = W.apply_lora(W.get_workload("gpt-small", 1), W.LoraSpec(4, ("q", "v")))
    assert gpt.param_count == 12 * 2 * 4 * (768 + 768)  # 12 blocks, q and v: 768 -> 768
