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


def attention_calls(bh: int, q_len: int, kv_len: int, d: int
                    ) -> tuple[tuple[KernelCall, ...], tuple[KernelCall, ...]]:
    """Forward and backward kernels of ``bh`` attention heads of size ``d`` whose
    ``q_len`` queries attend to ``kv_len`` keys (full score block, masking folded into the
    softmax). ``q_len == kv_len`` gives :func:`ddlsim.sim.workloads._attention_calls`;
    context parallelism uses ``q_len = s/cp``, ``kv_len = s``."""
    def bmm(m: int, n: int, k: int) -> KernelCall:
        return call("bmm", b=bh, m=m, n=n, k=k)

    fwd = (bmm(q_len, kv_len, d),  # S = Q K^T
           call("softmax_fwd", rows=bh * q_len, cols=kv_len),
           bmm(q_len, d, kv_len))  # O = P V
    bwd = (bmm(q_len, kv_len, d),  # dP = dO V^T
           bmm(kv_len, d, q_len),  # dV = P^T dO
           call("softmax_bwd", rows=bh * q_len, cols=kv_len),
           bmm(q_len, d, kv_len),  # dQ = dS K
           bmm(kv_len, d, q_len))  # dK = dS^T Q
    return fwd, bwd


@dataclass(frozen=True)
class ShardedModel:
    """One GPU's share of a tensor- (and context-) parallel decoder: ``layers`` (forward
    order) and, per layer, its collectives ``((phase, op, elements), ...)`` with phase
    ``fwd``/``bwd`` and op one of :data:`TP_OPS` or ``cp_ring`` (elements sent per ring
    step of context-parallel attention, see :func:`layer_times`)."""

    layers: tuple[Layer, ...]
    tp_comm: tuple[tuple[tuple[str, str, int], ...], ...]
    tp: int
    sequence_parallel: bool
    cp: int = 1


#: Block layers (name after ``h.{i}.``) by Megatron's tensor-parallel role.
_COLUMN = frozenset({"attn.qkv", "mlp.fc1", "mlp.gate_up"})  # split outputs, "f" before
_ROW = frozenset({"attn.proj", "mlp.fc2", "mlp.down"})  # split inputs, "g" after
_ACTIVATION = frozenset({"mlp.gelu", "mlp.swiglu", "mlp.sqrelu"})  # elementwise on a shard
_NORMS = frozenset({"ln1", "ln2"})
_ADDS = frozenset({"add1", "add2"})

#: Hyperparameters every shardable decoder workload carries.
_NEED = ("hidden", "heads", "seq", "vocab", "layers")


def _check_degree(label: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{label}: must be an integer >= 1, got {value!r}")
    return value


@dataclass(frozen=True)
class _Geometry:
    """Per-GPU sizes of one tensor x context-parallel shard (elements, rows = tokens)."""

    tp: int
    cp: int
    sp: bool
    b: int  # micro-batch (sequences)
    s: int  # full sequence
    sq: int  # tokens of each sequence on this GPU (s / cp)
    h: int
    heads: int
    kv_heads: int
    vt: int  # vocabulary rows per GPU

    @property
    def rows(self) -> int:
        """Token rows a GEMM of this GPU sees (all of its ``b * s/cp`` tokens)."""
        return self.b * self.sq

    @property
    def r_loc(self) -> int:
        """Rows of the replicated regions (norms, residuals): split by ``tp`` with SP."""
        return _ceil(self.rows, self.tp) if self.sp else self.rows

    @property
    def rep(self) -> int:
        return self.r_loc * self.h

    def enter(self, numel: int) -> tuple:
        """Megatron's "f" before a column-parallel layer (all-gather with SP)."""
        return ((("fwd", "all_gather", numel), ("bwd", "reduce_scatter", numel)) if self.sp
                else (("bwd", "allreduce", numel),))

    def leave(self, numel: int) -> tuple:
        """Megatron's "g" after a row-parallel layer (reduce-scatter with SP)."""
        return ((("fwd", "reduce_scatter", numel), ("bwd", "all_gather", numel)) if self.sp
                else (("fwd", "allreduce", numel),))


def _gemm_shape(lay: Layer) -> tuple[int, int, bool]:
    """``(out, in, bias)`` of an unsharded linear layer from its forward GEMM."""
    p = lay.fwd[0].params
    return p["n"], p["k"], len(lay.fwd) > 1


def _shard_block_layer(lay: Layer, role: str, g: _Geometry) -> tuple[Layer, tuple]:
    """One GPU's copy of block layer ``lay`` (``role``: its name after ``h.{i}.``)."""
    tp, rows, rep, r_loc = g.tp, g.rows, g.rep, g.r_loc
    numel = rows * g.h
    if role in _NORMS:
        stats = (lay.activation_elems - lay.output_elems) // (lay.output_elems // g.h)
        return Layer(lay.name, "layernorm", (call("layernorm_fwd", rows=r_loc, cols=g.h),),
                     (call("layernorm_bwd", rows=r_loc, cols=g.h),), lay.param_count,
                     rep + stats * r_loc, rep), ()
    if role in _ADDS:
        add = (call("add", numel=rep),)
        return Layer(lay.name, "add", add, add, 0, 0, rep), ()
    if role in _COLUMN:
        out, k, bias = _gemm_shape(lay)
        n = out // tp
        return _linear(lay.name, rows, n, k, k * out // tp + (n if bias else 0), rep,
                       rows * n, rows * n if bias else 0), g.enter(numel)
    if role in _ROW:
        out, k, bias = _gemm_shape(lay)
        return _linear(lay.name, rows, out, k // tp, k * out // tp + (out if bias else 0),
                       rows * k // tp, r_loc * out, r_loc * out if bias else 0), g.leave(numel)
    if role in _ACTIVATION:
        scale = lay.fwd[0].params["numel"] // lay.output_elems  # 2 for SwiGLU's two halves
        width = lay.output_elems // (g.b * g.s)
        act_numel = rows * width * scale // tp
        return Layer(lay.name, lay.kind, (call(lay.fwd[0].op, numel=act_numel),),
                     (call(lay.bwd[0].op, numel=act_numel),), 0, act_numel,
                     rows * width // tp), ()
    if role == "attn.core":
        d = g.h // g.heads
        bh = g.b * g.heads // tp
        fwd, bwd = attention_calls(bh, g.sq, g.s, d)
        qkv = rows * (g.heads + 2 * g.kv_heads) * d // tp  # Q, K, V of this GPU's tokens
        comm: tuple = ()
        if g.cp > 1:  # K and V blocks of s/cp tokens circulate; backward adds dK, dV
            kv = 2 * g.b * g.sq * (g.kv_heads // tp) * d
            comm = (("fwd", "cp_ring", kv), ("bwd", "cp_ring", 2 * kv))
        return Layer(lay.name, "attention", fwd, bwd, 0, qkv + bh * g.sq * g.s,
                     rows * g.h // tp), comm
    raise ConfigError(f"layer {lay.name!r}: no tensor-parallel rule")


def _shard_outer_layer(lay: Layer, g: _Geometry) -> tuple[Layer, tuple]:
    """Embedding, final norm, output head and loss of one GPU."""
    rows, rep, r_loc, h, vt = g.rows, g.rep, g.r_loc, g.h, g.vt
    name = lay.name
    if name == "embedding":
        fwd = [call("embedding_fwd", tokens=rows, hidden=h, vocab=vt)]
        bwd = [call("embedding_bwd", tokens=rows, hidden=h, vocab=vt)]
        params = vt * h
        if any(kc.op == "add" for kc in lay.fwd):  # learned positions, summed (GPT)
            fwd += [call("embedding_fwd", tokens=r_loc, hidden=h, vocab=g.s),
                    call("add", numel=rep)]
            bwd.append(call("embedding_bwd", tokens=r_loc, hidden=h, vocab=g.s))
            params += g.s * h
        return Layer("embedding", "embedding", tuple(fwd), tuple(bwd), params, rows,
                     rep), g.leave(rows * h)
    if name == "ln_f":
        return _shard_block_layer(lay, "ln1", g)
    if name == "lm_head":
        params = vt * h if lay.param_count else 0  # tied heads own no weight
        return _linear("lm_head", rows, vt, h, params, rep, rows * vt, 0), g.enter(rows * h)
    if name == "loss":
        return Layer("loss", "softmax_xent", (call("softmax_xent_fwd", n=rows, classes=vt),),
                     (call("softmax_xent_bwd", n=rows, classes=vt),), 0, rows * vt,
                     rows), (("fwd", "allreduce", 3 * rows),)
    raise ConfigError(f"layer {name!r}: no tensor-parallel rule")


def shard_model(workload, tp: int, sequence_parallel: bool = False,
                cp: int = 1) -> ShardedModel:
    """Shard a decoder workload (:func:`~ddlsim.sim.workloads.gpt`,
    :func:`~ddlsim.sim.workloads.llama`, :func:`~ddlsim.sim.workloads.nemotron`) over
    ``tp`` tensor-parallel and ``cp`` context-parallel GPUs; one GPU's share.

    ``workload.batch`` is the micro-batch (sequences). Each block layer is sharded by its
    Megatron role: QKV, fc1 and SwiGLU's gate/up are column-parallel, the attention
    output projection, fc2 and down row-parallel, the attention core and the MLP
    activation run on ``heads/tp`` heads and ``ffn/tp`` columns, norms and residual adds
    are replicated (split along the sequence with ``sequence_parallel``); the embedding
    and untied output head are vocabulary-parallel (``ceil(V/tp)`` rows). ``tp`` must
    divide hidden, heads, kv_heads (Megatron-Core asserts ``num_query_groups % tp == 0``;
    replicated KV heads are not modelled) and the MLP width.

    Context parallelism (Megatron-Core / Transformer Engine ring attention): each GPU
    holds ``s/cp`` tokens of every sequence, so GEMMs, norms, activations and the TP
    collectives shrink by ``cp``; with causal load balancing (rank ``i`` holds chunks
    ``i`` and ``2cp-1-i``) its attention work is ``1/cp`` of the full attention, modelled
    as ``s/cp`` queries against ``s`` keys. The K/V blocks circulate in ``cp - 1`` ring
    steps: ``cp_ring`` entries give the elements one step sends (``2 b (s/cp)
    (kv_heads/tp) d`` forward; twice that backward, as dK and dV travel with K and V).
    ``cp`` must divide ``2 * seq`` chunks evenly (``seq % (2 cp) == 0``).

    ``tp=1, cp=1`` without sequence parallelism returns the workload's own layers.
    """
    hp = workload.hyperparams
    if any(k not in hp for k in _NEED):
        raise ConfigError(f"workload {workload.name!r}: tensor/context parallelism needs a "
                          f"decoder workload (hyper {_NEED}), got {sorted(hp)}")
    _check_degree("tp", tp)
    _check_degree("cp", cp)
    sp = bool(sequence_parallel)
    if tp == 1 and cp == 1 and not sp:
        return ShardedModel(workload.layers, tuple(() for _ in workload.layers), 1, False)
    h, a, s, v = hp["hidden"], hp["heads"], hp["seq"], hp["vocab"]
    kv = hp.get("kv_heads", a)
    ffn = hp.get("ffn", hp.get("ffn_mult", 4) * h)
    for label, value in (("hidden", h), ("heads", a), ("ffn", ffn)):
        if value % tp:
            raise ConfigError(f"tp: must divide {label}={value}, got {tp}")
    if kv % tp:
        raise ConfigError(f"tp: must divide kv_heads={kv} (Megatron-Core needs "
                          f"num_query_groups % tp == 0; replicated KV heads are not "
                          f"modelled), got {tp}")
    if s % (2 * cp):
        raise ConfigError(f"cp: seq={s} must split into 2 x cp = {2 * cp} equal chunks "
                          f"(causal load balancing), got cp={cp}")
    g = _Geometry(tp, cp, sp, workload.batch, s, s // cp, h, a, kv, _ceil(v, tp))
    out: list[tuple[Layer, tuple]] = []
    for lay in workload.layers:
        if lay.name.startswith("h."):
            out.append(_shard_block_layer(lay, lay.name.split(".", 2)[2], g))
        else:
            out.append(_shard_outer_layer(lay, g))
    return ShardedModel(tuple(x for x, _ in out), tuple(c for _, c in out), tp, sp, cp)


def shard_gpt(workload, tp: int, sequence_parallel: bool = False) -> ShardedModel:
    """Shard a GPT workload from :func:`ddlsim.sim.workloads.gpt` over ``tp`` GPUs
    (:func:`shard_model` without context parallelism, kept for callers of the GPT-only
    API)."""
    return shard_model(workload, tp, sequence_parallel)


# --------------------------------------------------------------------------- costs
TpTimeFn = Callable[[str, float], float]
EstimateFn = Callable[[KernelCall, str], float]


def layer_times(layers: Sequence[Layer], tp_comm: Sequence[tuple], estimate: EstimateFn,
                dtype: str, tp_time: TpTimeFn | None = None, gemm_dtype: str | None = None,
                comm_dtype: str | None = None, cp: int = 1
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
            t = tp_time(op, elems * cb) if tp_time is not None and op != "cp_ring" else 0.0
            if op == "cp_ring" and tp_time is not None and cp > 1:
                step_s = (fwd_c[i] if phase == "fwd" else cost(lay.bwd)) / cp
                t = (cp - 1) * max(0.0, tp_time("p2p", elems * cb) - step_s)
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
