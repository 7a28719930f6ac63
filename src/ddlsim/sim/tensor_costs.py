"""Seconds of a (sharded) decoder's layers and pipeline stages: per-layer compute plus
tensor- and context-parallel communication (:func:`layer_times`), recomputation, and one
:class:`~ddlsim.sim.pipeline.StageCost` per stage (:func:`stage_costs`) of Megatron's
block split (:func:`block_bounds`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ddlsim.errors import ConfigError
from ddlsim.opspec import KernelCall, call
from ddlsim.sim.pipeline import StageCost
from ddlsim.sim.tensor_shard import is_fused
from ddlsim.sim.workloads import Layer
from ddlsim.units import dtype_bytes

#: fp32 elements the optimizer step reads + writes per parameter, expressed through the
#: ``sgd_update`` kernel (which moves 5 elements per parameter): SGD reads w, g and writes
#: w (3); momentum adds v read + write (5); Adam reads w, g, m, v and writes w, m, v (7)
#: (Kingma & Ba 2015, Algorithm 1).
OPTIMIZER_ELEMENTS = {"sgd": 3, "momentum": 5, "adam": 7}


TpTimeFn = Callable[[str, float], float]
EstimateFn = Callable[[KernelCall, str], float]


def layer_times(layers: Sequence[Layer], tp_comm: Sequence[tuple], estimate: EstimateFn,
                dtype: str, tp_time: TpTimeFn | None = None, gemm_dtype: str | None = None,
                comm_dtype: str | None = None, cp: int = 1, tp_overlap: int = 0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-layer ``(fwd_s, bwd_s, fwd_compute_s)`` of one micro-batch on one GPU.

    ``estimate(call, dtype)`` prices kernels (gemm/bmm in ``gemm_dtype`` when given, e.g.
    fp8 GEMMs with bf16 elsewhere); ``tp_time(op, nbytes)`` prices a TP collective of
    ``nbytes`` (elements x ``comm_dtype`` bytes, default ``dtype``) and, for ``op='p2p'``,
    one point-to-point transfer between neighbouring context-parallel ranks.

    A ``cp_ring`` entry (context parallelism over ``cp`` GPUs) is ring attention: the
    layer's compute of that phase runs as ``cp`` equal steps, and while one step computes,
    the next K/V block (``elements`` per step) arrives, so each of the ``cp - 1``
    transfers costs only what it exceeds a step: ``(cp-1) max(0, t_p2p - t_compute/cp)``.

    ``tp_overlap = c >= 2`` overlaps the sequence-parallel all-gathers and reduce-scatters
    with the GEMMs of the same layer and phase, as Megatron-Core / Transformer Engine's
    ``tp-comm-overlap`` does: the collective is cut into ``c`` chunks (one per TP rank)
    pipelined against the GEMM's chunks, so a layer's phase with collectives ``t_c`` and
    GEMMs ``t_g`` exposes ``max(0, t_c - t_g) + t_c / c`` (the first chunk cannot hide).
    A plain allreduce (no sequence parallelism) is never overlapped.
    """
    cb = dtype_bytes(comm_dtype or dtype)
    gd = gemm_dtype or dtype
    memo: dict[tuple, float] = {}

    def cost(calls: tuple[KernelCall, ...]) -> float:
        if calls not in memo:
            memo[calls] = float(sum(estimate(kc, gd if kc.op in ("gemm", "bmm") else dtype)
                                    for kc in calls))
        return memo[calls]

    n = len(layers)
    fwd_c, fwd, bwd = np.zeros(n), np.zeros(n), np.zeros(n)
    for i, lay in enumerate(layers):
        fwd_c[i] = cost(lay.fwd)
        fwd[i] = fwd_c[i]
        bwd[i] = cost(lay.bwd)
        hidden = {"fwd": 0.0, "bwd": 0.0}  # seconds of overlappable SP collectives
        for phase, op, elems in tp_comm[i] if tp_comm else ():
            t = tp_time(op, elems * cb) if tp_time is not None and op != "cp_ring" else 0.0
            if op == "cp_ring" and tp_time is not None and cp > 1:
                step_s = (fwd_c[i] if phase == "fwd" else cost(lay.bwd)) / cp
                t = (cp - 1) * max(0.0, tp_time("p2p", elems * cb) - step_s)
            if tp_overlap >= 2 and op in ("all_gather", "reduce_scatter"):
                hidden[phase] += t
                continue
            if phase == "fwd":
                fwd[i] += t
            else:
                bwd[i] += t
        for phase, t_c in hidden.items():
            if t_c > 0:
                t_g = cost(tuple(kc for kc in getattr(lay, phase) if kc.op in ("gemm", "bmm")))
                exposed = max(0.0, t_c - t_g) + t_c / tp_overlap
                if phase == "fwd":
                    fwd[i] += exposed
                else:
                    bwd[i] += exposed
    return fwd, bwd, fwd_c


def recompute_times(layers: Sequence[Layer], fwd_s: np.ndarray, recompute: str) -> np.ndarray:
    """Extra backward seconds per layer: ``full`` re-runs every forward (including its TP
    collectives), ``selective`` the unfused attention cores only (a fused core keeps no
    score tensor, so selective recomputation has nothing to recompute there: Korthikanti
    et al. 2022 recompute exactly the ``5 a s / h`` tensors, which FlashAttention never
    stores), ``none`` nothing."""
    if recompute == "full":
        return fwd_s.copy()
    if recompute == "selective":
        return np.array([f if lay.kind == "attention" and not is_fused(lay) else 0.0
                         for lay, f in zip(layers, fwd_s, strict=True)])
    return np.zeros(len(layers))


def stage_costs(layers: Sequence[Layer], bounds: Sequence[int], fwd_s: np.ndarray,
                bwd_s: np.ndarray, dtype: str, estimate: EstimateFn, optimizer: str = "adam",
                grad_dtype: str | None = None, send_divisor: int = 1,
                input_elems: int = 0) -> list[StageCost]:
    """One :class:`StageCost` per stage ``[bounds[k], bounds[k+1])``.

    ``bwd_s`` should already include recomputation. ``send_divisor``: the activation a
    stage sends is split over that many GPU pairs (Megatron's scatter/gather over the TP
    group, SC'21 Sec. 4.1), so one pair carries ``1/send_divisor`` of it. ``dp_bytes`` is
    the stage's parameters in ``grad_dtype`` (default ``dtype``).
    """
    ab = dtype_bytes(dtype)
    gb = dtype_bytes(grad_dtype or dtype)
    out = []
    for k in range(len(bounds) - 1):
        a, b = int(bounds[k]), int(bounds[k + 1])
        params = sum(lay.param_count for lay in layers[a:b])
        update_s = 0.0
        if params:
            numel = math.ceil(params * OPTIMIZER_ELEMENTS[optimizer] / 5)
            update_s = estimate(call("sgd_update", numel=numel), "float32")
        in_elems = layers[a - 1].output_elems if a > 0 else input_elems
        out.append(StageCost(
            fwd_s=float(fwd_s[a:b].sum()), bwd_s=float(bwd_s[a:b].sum()),
            act_bytes=layers[b - 1].output_elems * ab / send_divisor,
            grad_bytes=in_elems * ab / send_divisor if a > 0 else 0.0,
            update_s=float(update_s), dp_bytes=float(params * gb)))
    return out


def block_bounds(names: Sequence[str], stages: int) -> tuple[int, ...]:
    """Megatron's split: the transformer blocks divided evenly (the first ``L mod p``
    stages take one more), the embedding on stage 0, the final layernorm, head and loss on
    the last stage."""
    blocks: list[int] = []  # index of each block's first layer
    for i, name in enumerate(names):
        if name.startswith("h.") and name.endswith(".ln1"):
            blocks.append(i)
    nb = len(blocks)
    if nb < stages:
        raise ConfigError(f"pp: {stages} stages need at least {stages} transformer blocks, "
                          f"got {nb}")
    per, extra = divmod(nb, stages)
    bounds, blk = [0], 0
    for k in range(stages - 1):
        blk += per + (1 if k < extra else 0)
        bounds.append(blocks[blk])
    bounds.append(len(names))
    return tuple(bounds)
