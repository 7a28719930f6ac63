"""Megatron-style sharding of a decoder workload over tensor- and context-parallel GPUs
(see :mod:`ddlsim.sim.tensor`): one GPU's layers and the collectives each layer runs
(:func:`shard_model`)."""

from __future__ import annotations

from dataclasses import dataclass

from ddlsim.errors import ConfigError
from ddlsim.opspec import KernelCall, call
from ddlsim.sim.workloads import Layer
from ddlsim.sim.workloads.gpt_decoder import attention_core, block_attention_calls

TP_OPS = ("allreduce", "reduce_scatter", "all_gather")


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
    """Forward and backward kernels of ``bh`` unfused attention heads of size ``d`` whose
    ``q_len`` queries attend to ``kv_len`` keys (full score block, masking folded into the
    softmax). ``q_len == kv_len`` gives :func:`ddlsim.sim.workloads.gpt_decoder.attention_calls`;
    context parallelism uses ``q_len = s/cp``, ``kv_len = s``."""
    return block_attention_calls(bh, q_len, kv_len, d)


def is_fused(lay: Layer) -> bool:
    """Whether attention layer ``lay`` runs the fused (FlashAttention) kernel."""
    return any(kc.op == "flash_attn_fwd" for kc in lay.fwd)


@dataclass(frozen=True)
class ShardedModel:
    """One GPU's share of a tensor- (and context-) parallel decoder: ``layers`` (forward
    order) and, per layer, its collectives ``((phase, op, elements), ...)`` with phase
    ``fwd``/``bwd`` and op one of :data:`TP_OPS` or ``cp_ring`` (elements sent per ring
    step of context-parallel attention, see
    :func:`ddlsim.sim.tensor_costs.layer_times`)."""

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
        qkv = rows * (g.heads + 2 * g.kv_heads) * d // tp  # Q, K, V of this GPU's tokens
        comm: tuple = ()
        if g.cp > 1:  # K and V blocks of s/cp tokens circulate; backward adds dK, dV
            kv = 2 * g.b * g.sq * (g.kv_heads // tp) * d
            comm = (("fwd", "cp_ring", kv), ("bwd", "cp_ring", 2 * kv))
        return attention_core(lay.name, "fused" if is_fused(lay) else "unfused", bh, g.sq,
                              g.s, d, g.heads // g.kv_heads, qkv, rows * g.h // tp), comm
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
