"""ZeRO / distributed-optimizer communication (Rajbhandari et al. 2020, arXiv 1910.02054,
Sec. 7): what replaces the gradient allreduce of ``N`` bytes over ``d`` GPUs.

* stage 0: one allreduce, ``2 (d-1)/d N`` per GPU on a ring;
* stages 1-2 (Megatron's distributed optimizer, ZeRO-2): a reduce-scatter of the gradients
  (``(d-1)/d N``) and, after each GPU has stepped its optimizer shard, an all-gather of the
  updated weights (``(d-1)/d N_w``): the allreduce's volume when weights and gradients have
  the same element type;
* stage 3 (FSDP): the weights stay sharded; they are all-gathered before the forward and
  again before the backward, and the gradients are reduce-scattered: ``3 (d-1)/d N``, 1.5x
  the allreduce (the paper's ``3 Psi`` vs ``2 Psi``).

``weight_ratio``: bytes of weights per byte of gradients (bf16 weights with fp32 gradient
reduction: 0.5).
"""

from __future__ import annotations

from ddlsim.errors import ConfigError

ZERO_STAGES = (0, 1, 2, 3)


def check_zero(zero: object) -> int:
    if zero not in ZERO_STAGES:
        raise ConfigError(f"zero: must be 0, 1, 2 or 3, got {zero!r}")
    return int(zero)  # type: ignore[call-overload]


def zero_ops(zero: int, weight_ratio: float = 1.0) -> tuple[tuple[str, float], ...]:
    """The collectives of one iteration's gradient synchronisation under ZeRO stage
    ``zero``: ``(op, bytes per gradient byte)`` in order."""
    check_zero(zero)
    if zero == 0:
        return (("allreduce", 1.0),)
    gathers = 2 if zero == 3 else 1
    return (("reduce_scatter", 1.0),) + (("all_gather", weight_ratio),) * gathers


def ring_bytes_per_gpu(zero: int, d: int, grad_bytes: float, weight_ratio: float = 1.0
                       ) -> float:
    """Bytes each GPU sends in one iteration over a ring of ``d`` GPUs (closed form)."""
    if d <= 1:
        return 0.0
    passes = {"allreduce": 2, "reduce_scatter": 1, "all_gather": 1}
    return sum(passes[op] * (d - 1) / d * grad_bytes * f for op, f in zero_ops(zero,
                                                                              weight_ratio))
