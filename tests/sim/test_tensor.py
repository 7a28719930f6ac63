"""Tensor parallelism: FLOP/parameter conservation, collectives per layer, Korthikanti
activation memory with TP (and sequence parallelism), Megatron FLOP formula, layout."""

import pytest

from ddlsim.errors import ConfigError
from ddlsim.opspec import flops
from ddlsim.sim.memory import MemoryConfig, layer_memory
from ddlsim.sim.tensor import Layout, block_bounds, megatron_model_flops, shard_gpt
from ddlsim.sim.workloads import MATMUL_OPS, gpt

S, B, H, A, L, V = 64, 2, 64, 8, 2, 96


def model():
    return gpt(B, L, H, A, S, V, dtype="float16")


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
    assert block_bytes(shard_gpt(model(), t).layers, t) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("t", [2, 4])
def test_activation_memory_with_sequence_parallel_matches_korthikanti(t):
    # Korthikanti et al. 2022 eq. 4: s b h / t (34 + 5 a s / h)
    want = S * B * H / t * (34 + 5 * A * S / H) + 2 * (2 * S * B // t) * 2
    sh = shard_gpt(model(), t, sequence_parallel=True)
    assert block_bytes(sh.layers, t) == pytest.approx(want, rel=1e-12)


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
