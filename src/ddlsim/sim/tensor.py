"""Tensor parallelism (Megatron-LM) for GPT workloads, and per-stage costs for TP x PP x DP.

Megatron-style sharding over ``t`` GPUs (Shoeybi et al. 2019, arXiv 1909.08053, Sec. 3;
Korthikanti et al. 2022, arXiv 2205.05198, Sec. 4):

* attention: the QKV projection is column-parallel (each GPU ``3h/t`` outputs), the
  attention core runs ``a/t`` heads per GPU, the output projection is row-parallel
  (``h/t`` inputs) followed by an allreduce of the ``s b h`` output;
* MLP: fc1 column-parallel (``4h/t``), GeLU on the shard, fc2 row-parallel + allreduce;
* backward mirrors it: the input gradients of QKV and fc1 are allreduced. Per transformer
  layer: 2 allreduces of ``s b h`` elements forward and 2 backward;
* embedding and output head are vocabulary-parallel (``ceil(V/t)`` rows per GPU; the
  embedding output is allreduced forward, the head's input gradient backward; the
  vocabulary-parallel cross-entropy allreduces 3 values per token);
* layernorms, residual adds, biases of row-parallel layers and position embeddings are
  replicated;
* ``sequence_parallel``: the replicated regions are split along the sequence, each
  allreduce becomes a reduce-scatter plus an all-gather of the same total volume, and the
  activations of layernorms, residuals and dropouts are divided by ``t`` (Korthikanti et
  al. Sec. 4.2.2). The extra all-gather Megatron re-runs in backward is not modelled.

Tensor-parallel collectives are priced with the closed forms of
:mod:`ddlsim.sim.collectives` (uncontended ring over the group's link) and serialised
with compute, as Megatron-LM runs them on the compute stream. The GPUs of one TP group are
identical, so one of them is simulated (see :mod:`ddlsim.sim.pipeline`).

Model FLOPs (what "achieved TFLOP/s" counts): :func:`megatron_model_flops`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ddlsim.errors import ConfigError
from ddlsim.opspec import KernelCall, call
from ddlsim.sim.pipeline import StageCost
from ddlsim.sim.workloads import Layer
from ddlsim.units import dtype_bytes

#: fp32 elements the optimizer step reads + writes per parameter, expressed through the
#: ``sgd_update`` kernel (which moves 5 elements per parameter): SGD reads w, g and writes
#: w (3); momentum adds v read + write (5); Adam reads w, g, m, v and writes w, m, v (7)
#: (Kingma & Ba 2015, Algorithm 1).
OPTIMIZER_ELEMENTS = {"sgd": 3, "momentum": 5, "adam": 7}

TP_OPS = ("allreduce", "reduce_scatter", "all_gather")


@dataclass(frozen=True)
class Layout:
    """Rank layout of ``tp x pp x dp`` GPUs, Megatron-LM order: tensor-parallel ranks are
    consecutive, then data-parallel, then pipeline stages:
    ``rank = stage * (dp * tp) + replica * tp + tp_rank``."""

    tp: int
    pp: int
    dp: int

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "dp"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name}: must be an integer >= 1, got {value!r}")

    @property
    def num_gpus(self) -> int:
        return self.tp * self.pp * self.dp

    def rank(self, stage: int, replica: int = 0, tp_rank: int = 0) -> int:
        return (stage * self.dp + replica) * self.tp + tp_rank

    def tp_group(self, stage: int, replica: int = 0) -> list[int]:
        return [self.rank(stage, replica, r) for r in range(self.tp)]

    def dp_group(self, stage: int, tp_rank: int = 0) -> list[int]:
        return [self.rank(stage, d, tp_rank) for d in range(self.dp)]


def megatron_model_flops(batch: int, seq: int, layers: int, hidden: int, vocab: int,
                         recompute: bool = False) -> float:
    """FLOPs of one iteration of a GPT: ``72 B s l h^2 (1 + s/(6h) + V/(12 l h))``
    (published.csv FLOP-06), or with full activation recomputation
    ``96 B s l h^2 (1 + s/(6h) + V/(16 l h))`` (Narayanan et al. SC'21 eq. 3,
    published.csv FLOP-05)."""
    b, s, l, h, v = (float(x) for x in (batch, seq, layers, hidden, vocab))
    if recompute:
        return 96 * b * s * l * h * h * (1 + s / (6 * h) + v / (16 * l * h))
    return 72 * b * s * l * h * h * (1 + s / (6 * h) + v / (12 * l * h))


# --------------------------------------------------------------------------- sharding
def _linear(name: str, rows: int, n: int, k: int, params: int, act: int, out: int,
            bias_numel: int) -> Layer:
    fwd = [call("gemm", m=rows, n=n, k=k)]
    bwd = [call("gemm", m=rows, n=k, k=n), call("gemm", m=n, n=k, k=rows)]
    if bias_numel:
        fwd.append(call("add", numel=bias_numel))
        bwd.append(call("add", numel=bias_numel))
    return Layer(name, "linear", tuple(fwd), tuple(bwd), params, act, out)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class ShardedModel:
    """One GPU's share of a tensor-parallel GPT: ``layers`` (forward order) and, per layer,
    its TP collectives ``((phase, op, elements), ...)`` with phase ``fwd``/``bwd``."""

    layers: tuple[Layer, ...]
    tp_comm: tuple[tuple[tuple[str, str, int], ...], ...]
    tp: int
    sequence_parallel: bool


def shard_gpt(workload, tp: int, sequence_parallel: bool = False) -> ShardedModel:
    """Shard a GPT workload from :func:`ddlsim.sim.workloads.gpt` over ``tp`` GPUs.

    ``workload.batch`` is the micro-batch. ``tp`` must divide hidden, heads and the MLP
    width; the vocabulary is split into ``ceil(V/tp)`` rows per GPU. ``tp=1`` returns the
    workload's own layers with no collectives.
    """
    hp = workload.hyperparams
    need = ("hidden", "heads", "seq", "vocab", "layers")
    if any(k not in hp for k in need):
        raise ConfigError(f"workload {workload.name!r}: tensor parallelism needs a GPT "
                          f"workload (hyper {need}), got {sorted(hp)}")
    if not isinstance(tp, int) or tp < 1:
        raise ConfigError(f"tp: must be an integer >= 1, got {tp!r}")
    if tp == 1 and not sequence_parallel:
        return ShardedModel(workload.layers, tuple(() for _ in workload.layers), 1, False)
    h, a, s, v = hp["hidden"], hp["heads"], hp["seq"], hp["vocab"]
    ffn = hp.get("ffn_mult", 4) * h
    for label, value in (("hidden", h), ("heads", a), ("ffn", ffn)):
        if value % tp:
            raise ConfigError(f"tp: must divide {label}={value}, got {tp}")
    b = workload.batch
    rows = b * s
    sp = bool(sequence_parallel)
    r_loc = _ceil(rows, tp) if sp else rows  # rows of the replicated regions on one GPU
    vt = _ceil(v, tp)
    bh = b * a // tp
    numel = rows * h
    rep = r_loc * h  # replicated-region activation elements per GPU
    # collectives: allreduce, or with SP reduce-scatter (fwd) / all-gather pairs
    enter = (("fwd", "all_gather", numel), ("bwd", "reduce_scatter", numel)) if sp else \
        (("bwd", "allreduce", numel),)  # Megatron's "f": identity fwd, allreduce bwd
    leave = (("fwd", "reduce_scatter", numel), ("bwd", "all_gather", numel)) if sp else \
        (("fwd", "allreduce", numel),)  # Megatron's "g": allreduce fwd, identity bwd
    ln_f = (call("layernorm_fwd", rows=r_loc, cols=h),)
    ln_b = (call("layernorm_bwd", rows=r_loc, cols=h),)
    add = (call("add", numel=rep),)

    def block(prefix: str) -> list[tuple[Layer, tuple]]:
        d = h // a
        core_f = (call("bmm", b=bh, m=s, n=s, k=d), call("softmax_fwd", rows=bh * s, cols=s),
                  call("bmm", b=bh, m=s, n=d, k=s))
        core_b = (call("bmm", b=bh, m=s, n=s, k=d), call("bmm", b=bh, m=s, n=d, k=s),
                  call("softmax_bwd", rows=bh * s, cols=s), call("bmm", b=bh, m=s, n=d, k=s),
                  call("bmm", b=bh, m=s, n=d, k=s))
        ln_saved = rep + 2 * r_loc
        return [
            (Layer(f"{prefix}.ln1", "layernorm", ln_f, ln_b, 2 * h, ln_saved, rep), ()),
            (_linear(f"{prefix}.attn.qkv", rows, 3 * h // tp, h, 3 * h * h // tp + 3 * h // tp,
                     rep, rows * 3 * h // tp, rows * 3 * h // tp), enter),
            (Layer(f"{prefix}.attn.core", "attention", core_f, core_b, 0,
                   3 * numel // tp + bh * s * s, numel // tp), ()),
            (_linear(f"{prefix}.attn.proj", rows, h, h // tp, h * h // tp + h, numel // tp,
                     rep, rep), leave),
            (Layer(f"{prefix}.add1", "add", add, add, 0, 0, rep), ()),
            (Layer(f"{prefix}.ln2", "layernorm", ln_f, ln_b, 2 * h, ln_saved, rep), ()),
            (_linear(f"{prefix}.mlp.fc1", rows, ffn // tp, h, h * ffn // tp + ffn // tp, rep,
                     rows * ffn // tp, rows * ffn // tp), enter),
            (Layer(f"{prefix}.mlp.gelu", "gelu", (call("gelu_fwd", numel=rows * ffn // tp),),
                   (call("gelu_bwd", numel=rows * ffn // tp),), 0, rows * ffn // tp,
                   rows * ffn // tp), ()),
            (_linear(f"{prefix}.mlp.fc2", rows, h, ffn // tp, ffn * h // tp + h,
                     rows * ffn // tp, rep, rep), leave),
            (Layer(f"{prefix}.add2", "add", add, add, 0, 0, rep), ()),
        ]

    out: list[tuple[Layer, tuple]] = []
    for lay in workload.layers:
        name = lay.name
        if name == "embedding":
            emb = Layer("embedding", "embedding",
                        (call("embedding_fwd", tokens=rows, hidden=h, vocab=vt),
                         call("embedding_fwd", tokens=r_loc, hidden=h, vocab=s),
                         call("add", numel=rep)),
                        (call("embedding_bwd", tokens=rows, hidden=h, vocab=vt),
                         call("embedding_bwd", tokens=r_loc, hidden=h, vocab=s)),
                        vt * h + s * h, rows, rep)
            out.append((emb, leave))
        elif name.startswith("h.") and name.endswith(".ln1"):
            out.extend(block(name[: -len(".ln1")]))
        elif name.startswith("h."):
            continue  # emitted with its block
        elif name == "ln_f":
            out.append((Layer("ln_f", "layernorm", ln_f, ln_b, 2 * h, rep + 2 * r_loc, rep), ()))
        elif name == "lm_head":
            head = _linear("lm_head", rows, vt, h, lay.param_count // tp if lay.param_count
                           else 0, rep, rows * vt, 0)
            out.append((head, enter))
        elif name == "loss":
            xent = Layer("loss", "softmax_xent", (call("softmax_xent_fwd", n=rows, classes=vt),),
                         (call("softmax_xent_bwd", n=rows, classes=vt),), 0, rows * vt, rows)
            out.append((xent, (("fwd", "allreduce", 3 * rows),)))
        else:  # pragma: no cover - gpt() emits only the names above
            raise ConfigError(f"layer {name!r}: no tensor-parallel rule")
    layers = tuple(x for x, _ in out)
    return ShardedModel(layers, tuple(c for _, c in out), tp, sp)


# --------------------------------------------------------------------------- costs
TpTimeFn = Callable[[str, float], float]
EstimateFn = Callable[[KernelCall, str], float]


def layer_times(layers: Sequence[Layer], tp_comm: Sequence[tuple], estimate: EstimateFn,
                dtype: str, tp_time: TpTimeFn | None = None, gemm_dtype: str | None = None,
                comm_dtype: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-layer ``(fwd_s, bwd_s, fwd_compute_s)`` of one micro-batch on one GPU.

    ``estimate(call, dtype)`` prices kernels (gemm/bmm in ``gemm_dtype`` when given, e.g.
    fp8 GEMMs with bf16 elsewhere); ``tp_time(op, nbytes)`` prices a TP collective of
    ``nbytes`` (elements x ``comm_dtype`` bytes, default ``dtype``).
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
        for phase, op, elems in tp_comm[i] if tp_comm else ():
            t = tp_time(op, elems * cb) if tp_time is not None else 0.0
            if phase == "fwd":
                fwd[i] += t
            else:
                bwd[i] += t
    return fwd, bwd, fwd_c


def recompute_times(layers: Sequence[Layer], fwd_s: np.ndarray, recompute: str) -> np.ndarray:
    """Extra backward seconds per layer: ``full`` re-runs every forward (including its TP
    collectives), ``selective`` the attention cores only, ``none`` nothing."""
    if recompute == "full":
        return fwd_s.copy()
    if recompute == "selective":
        return np.array([f if lay.kind == "attention" else 0.0
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
