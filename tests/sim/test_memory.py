"""Memory model against Megatron-style closed forms (GPT) and hand counts (LeNet-5)."""

import pytest

from ddlsim.errors import ConfigError
from ddlsim.sim.memory import (
    MemoryConfig,
    in_flight,
    layer_memory,
    segment_ids,
    stage_memory,
)
from ddlsim.sim.workloads import gpt, lenet5

S, B, H, A, L = 128, 2, 64, 4, 3  # seq, micro-batch, hidden, heads, blocks


def small_gpt(attention="unfused"):
    """The Korthikanti closed forms below are those of unfused attention (the s x s
    tensors in memory); tests/sim/test_fused_attention.py checks the fused default."""
    return gpt(B, L, H, A, S, vocab=100, dtype="float16", attention=attention)


def block_bytes(mem, i):
    """Stored bytes of block h.{i}."""
    return sum(b for name, b in zip(mem.names, mem.stored, strict=True)
               if name.startswith(f"h.{i}."))


def korthikanti(s, b, h, a):
    """Activation bytes per transformer layer, fp16, no recomputation, no tensor
    parallelism: s*b*h*(34 + 5*a*s/h) (Korthikanti et al. 2022, arXiv 2205.05198, eq. 1)."""
    return s * b * h * (34 + 5 * a * s / h)


def test_gpt_block_matches_korthikanti_with_dropout():
    mem = layer_memory(small_gpt().layers, MemoryConfig(dtype="float16", dropout=True),
                       input_elems=S * B)
    ln_stats = 2 * (2 * S * B) * 2  # two layernorms keep mean and rstd per row (fp16 here)
    for i in range(L):
        assert block_bytes(mem, i) == korthikanti(S, B, H, A) + ln_stats


def test_gpt_block_without_dropout_drops_exactly_the_masks():
    mem = layer_memory(small_gpt().layers, MemoryConfig(dtype="float16"), input_elems=S * B)
    # no dropout: 2 sbh of residual masks and 3 a s^2 b (mask + dropped probs) are absent
    expected = S * B * H * (32 + 2 * A * S / H) + 2 * (2 * S * B) * 2
    assert block_bytes(mem, 0) == expected


def test_gpt_selective_recompute_keeps_34sbh():
    mem = layer_memory(small_gpt().layers,
                       MemoryConfig(dtype="float16", dropout=True, recompute="selective"),
                       input_elems=S * B)
    assert block_bytes(mem, 1) == 34 * S * B * H + 2 * (2 * S * B) * 2


def test_gpt_full_recompute_keeps_2sbh_per_block_and_one_block_transient():
    cfg = MemoryConfig(dtype="float16", dropout=True, recompute="full")
    mem = layer_memory(small_gpt().layers, cfg, input_elems=S * B)
    for i in range(L):
        assert block_bytes(mem, i) == 2 * S * B * H
    first = mem.names.index("h.0.ln1")
    last = mem.names.index(f"h.{L - 1}.add2") + 1
    # the recompute transient is one block's full activations (all blocks are equal)
    assert mem.recompute_peak(first, last) == korthikanti(S, B, H, A) + 2 * (2 * S * B) * 2


def test_mixed_precision_adam_is_16_bytes_per_param():
    # Rajbhandari et al. 2020 (ZeRO, arXiv 1910.02054) Sec. 3.1: 2 + 2 + 12 bytes/param.
    assert sum(MemoryConfig(dtype="float16", optimizer="adam").bytes_per_param()) == 16
    assert sum(MemoryConfig(dtype="bfloat16", optimizer="adam").bytes_per_param()) == 16
    assert MemoryConfig(dtype="float32", optimizer="sgd").bytes_per_param() == (4, 4, 0)
    assert MemoryConfig(dtype="float32", optimizer="momentum").bytes_per_param() == (4, 4, 4)
    wl = small_gpt()
    mem = layer_memory(wl.layers, MemoryConfig(dtype="float16"), input_elems=S * B)
    assert mem.static.sum() == 16 * wl.param_count


def lenet_hand_activations(n):
    """Elements LeNet-5 keeps for backward per the workloads convention, counted by hand."""
    per_sample = (
        1 * 32 * 32  # conv1 input
        + 6 * 28 * 28  # relu1 output
        + 6 * 28 * 28 + 6 * 14 * 14  # pool1 input + output (max-pool)
        + 6 * 14 * 14  # conv2 input
        + 16 * 10 * 10  # relu2 output
        + 16 * 10 * 10 + 16 * 5 * 5  # pool2 input + output
        + 400 + 120  # fc3 input, relu3 output
        + 120 + 84  # fc4 input, relu4 output
        + 84  # fc5 input
        + 10  # softmax probabilities
    )
    return n * per_sample


def test_lenet5_hand_count_and_stage_totals():
    n = 8
    wl = lenet5(n)
    cfg = MemoryConfig(dtype="float32", optimizer="momentum", workspace_bytes=1000.0)
    mem = layer_memory(wl.layers, cfg, input_elems=n * 32 * 32)
    assert mem.stored.sum() == 4 * lenet_hand_activations(n)
    assert mem.weights.sum() == 4 * 61706
    st = stage_memory(mem, 0, 0, len(wl.layers), in_flight_mb=3, capacity_bytes=1e9)
    assert st.total_bytes == 3 * 4 * 61706 + 3 * 4 * lenet_hand_activations(n) + 1000.0
    assert st.fits and st.over_bytes == 0
    tiny = stage_memory(mem, 0, 0, len(wl.layers), 3, capacity_bytes=st.total_bytes - 10)
    assert not tiny.fits and tiny.over_bytes == 10


def test_in_flight_by_schedule():
    assert [in_flight("1f1b", k, 4, 8) for k in range(4)] == [4, 3, 2, 1]
    assert [in_flight("1f1b", k, 4, 2) for k in range(4)] == [2, 2, 2, 1]
    assert in_flight("gpipe", 3, 4, 8) == 8
    assert in_flight("naive", 0, 4, 8) == 1
    with pytest.raises(ConfigError, match="did you mean '1f1b'"):
        in_flight("1fb1", 0, 4, 8)


def test_segments_group_transformer_blocks():
    ids = segment_ids(["embedding", "h.0.ln1", "h.0.add2", "h.1.ln1", "ln_f"])
    assert ids.tolist() == [0, 1, 1, 2, 3]


def test_bad_config_names_field():
    with pytest.raises(ConfigError, match="optimizer"):
        MemoryConfig(optimizer="adamw")
    with pytest.raises(ConfigError, match="recompute: unknown value 'ful'"):
        MemoryConfig(recompute="ful")
