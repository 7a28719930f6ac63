"""Tensor and context parallelism (Megatron-LM) of decoder workloads (GPT, Llama, Nemotron),
and per-stage costs for TP x CP x PP x DP.

Megatron-style sharding over ``t`` GPUs (Shoeybi et al. 2019, arXiv 1909.08053, Sec. 3;
Korthikanti et al. 2022, arXiv 2205.05198, Sec. 4):

* attention: the QKV projection is column-parallel (each GPU ``3h/t`` outputs; with
  grouped-query attention ``(a + 2 g) d / t``: ``a/t`` query and ``g/t`` key/value heads),
  the attention core runs ``a/t`` heads per GPU, the output projection is row-parallel
  (``h/t`` inputs) followed by an allreduce of the ``s b h`` output;
* MLP: fc1 column-parallel (``4h/t``; SwiGLU's fused gate/up ``2 f/t``; Nemotron's
  squared-ReLU fc1 ``f/t``), the activation on the shard, fc2 / down row-parallel +
  allreduce;
* backward mirrors it: the input gradients of QKV and fc1 are allreduced. Per transformer
  layer: 2 allreduces of ``s b h`` elements forward and 2 backward;
* embedding and output head are vocabulary-parallel (``ceil(V/t)`` rows per GPU; the
  embedding output is allreduced forward, the head's input gradient backward; the
  vocabulary-parallel cross-entropy allreduces 3 values per token);
* layernorms / RMSNorms, residual adds, biases of row-parallel layers and position
  embeddings are replicated;
* ``sequence_parallel``: the replicated regions are split along the sequence, each
  allreduce becomes a reduce-scatter plus an all-gather of the same total volume, and the
  activations of layernorms, residuals and dropouts are divided by ``t`` (Korthikanti et
  al. Sec. 4.2.2). The extra all-gather Megatron re-runs in backward is not modelled;
* context parallelism over ``c`` GPUs (ring attention, Megatron-Core / Transformer
  Engine): every GPU holds ``s/c`` tokens of each sequence; see :func:`shard_model`.

Tensor-parallel collectives are priced with the closed forms of
:mod:`ddlsim.sim.collectives` (uncontended ring over the group's link) and serialised
with compute, as Megatron-LM runs them on the compute stream. The GPUs of one TP group are
identical, so one of them is simulated (see :mod:`ddlsim.sim.pipeline`).

Model FLOPs (what "achieved TFLOP/s" counts): :func:`megatron_model_flops`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ddlsim.errors import ConfigError
from ddlsim.sim.tensor_costs import (
    OPTIMIZER_ELEMENTS,
    EstimateFn,
    TpTimeFn,
    block_bounds,
    layer_times,
    recompute_times,
    stage_costs,
)
from ddlsim.sim.tensor_shard import (
    TP_OPS,
    ShardedModel,
    attention_calls,
    shard_gpt,
    shard_model,
)

__all__ = [
    "OPTIMIZER_ELEMENTS", "TP_OPS", "EstimateFn", "Layout", "ShardedModel", "TpTimeFn",
    "attention_calls", "block_bounds", "layer_times", "megatron_model_flops",
    "recompute_times", "shard_gpt", "shard_model", "stage_costs",
]

@dataclass(frozen=True)
class Layout:
    """Rank layout of ``tp x cp x pp x dp`` GPUs in Megatron-Core's default order
    ``tp-cp-dp-pp``: tensor-parallel ranks are consecutive, then context-parallel, then
    data-parallel, then pipeline stages:
    ``rank = ((stage * dp + replica) * cp + cp_rank) * tp + tp_rank``
    (``cp=1`` is Megatron-LM's ``tp-dp-pp``)."""

    tp: int
    pp: int
    dp: int
    cp: int = 1

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "dp", "cp"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name}: must be an integer >= 1, got {value!r}")

    @property
    def num_gpus(self) -> int:
        return self.tp * self.cp * self.pp * self.dp

    def rank(self, stage: int, replica: int = 0, tp_rank: int = 0, cp_rank: int = 0) -> int:
        return ((stage * self.dp + replica) * self.cp + cp_rank) * self.tp + tp_rank

    def tp_group(self, stage: int, replica: int = 0, cp_rank: int = 0) -> list[int]:
        return [self.rank(stage, replica, r, cp_rank) for r in range(self.tp)]

    def dp_group(self, stage: int, tp_rank: int = 0, cp_rank: int = 0) -> list[int]:
        return [self.rank(stage, d, tp_rank, cp_rank) for d in range(self.dp)]

    def cp_group(self, stage: int, replica: int = 0, tp_rank: int = 0) -> list[int]:
        return [self.rank(stage, replica, tp_rank, c) for c in range(self.cp)]

    def grad_group(self, stage: int, tp_rank: int = 0) -> list[int]:
        """Ranks that allreduce one gradient shard: data- x context-parallel peers
        (context-parallel ranks hold the same weights and see different tokens)."""
        return [self.rank(stage, d, tp_rank, c) for d in range(self.dp) for c in range(self.cp)]


def megatron_model_flops(batch: int, seq: int, layers: int, hidden: int, vocab: int,
                         recompute: bool = False, heads: int | None = None,
                         kv_heads: int | None = None, ffn: int | None = None,
                         gated: bool = False) -> float:
    """FLOPs of one iteration as Megatron-LM counts them (``num_floating_point_operations``,
    NVIDIA/Megatron-LM ``megatron/training.py``, commit 2748e7c7d4; NeMo's model TFLOP/s
    use it):

    ``12 B s l h^2 [(1 + g/a + s/h) + (f/h)(3/2 if gated) + V/(2 l h)]`` with ``g/a`` the
    KV-head fraction (1 without GQA) and ``f`` the MLP width (``4h`` by default). For a GPT
    (``g = a``, ``f = 4h``) this is ``72 B s l h^2 (1 + s/(6h) + V/(12 l h))``. With full
    activation recomputation the block terms count 4 GEMM passes instead of 3 and the
    logit term is unchanged: ``96 B s l h^2 (1 + s/(6h) + V/(16 l h))`` for a GPT
    (Narayanan et al. SC'21 eq. 3). Attention scores count the full
    ``s x s`` block (no causal halving), as both formulas do.
    """
    b, s, l, h, v = (float(x) for x in (batch, seq, layers, hidden, vocab))
    if heads is None and kv_heads is None and ffn is None and not gated:
        if recompute:  # the published closed forms, kept verbatim for GPT
            return 96 * b * s * l * h * h * (1 + s / (6 * h) + v / (16 * l * h))
        return 72 * b * s * l * h * h * (1 + s / (6 * h) + v / (12 * l * h))
    kv_frac = 1.0 if heads is None or kv_heads is None else kv_heads / heads
    f = 4 * h if ffn is None else float(ffn)
    block = (1 + kv_frac + s / h) + f / h * (1.5 if gated else 1.0)
    passes = 16 if recompute else 12
    return passes * b * s * l * h * h * block + 12 * b * s * l * h * h * v / (2 * l * h)
