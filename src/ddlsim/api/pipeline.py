"""Model parallelism: pipeline (``ddlsim pipeline``), placement (``ddlsim place``) and
tensor x pipeline x data parallelism (``ddlsim 3d``): the engine
:func:`predict_model_parallel` that :func:`ddlsim.api.predict` drives for pipeline and 3D
jobs.

One core serves all three: build the per-GPU layer list (a GPT sharded
over ``tp`` GPUs, or any workload's layers), price every layer with the cost model, model
memory, place layers on stages (Megatron's even block split, the memory-aware partitioner,
or the user's ranges), simulate one representative pipeline (SimPy, sends as flows over the
cluster's links) with the data-parallel allreduce of each stage, and report.

The options and result types live in :mod:`ddlsim.api.pipeline_types` and the torchgpipe
helpers in :mod:`ddlsim.api.torchgpipe`; both are re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ddlsim.api.pipeline_types import (
    PLACEMENTS,
    PipelineOptions,
    PipelinePrediction,
    ThreeDOptions,
)
from ddlsim.api.torchgpipe import (
    except_last_prediction,
    torchgpipe_layer_balance,
    torchgpipe_resnet_modules,
)
from ddlsim.errors import ConfigError

__all__ = [
    "PLACEMENTS", "PipelineOptions", "PipelinePrediction", "ThreeDOptions",
    "except_last_prediction", "predict_model_parallel", "torchgpipe_layer_balance",
    "torchgpipe_resnet_modules",
]


# --------------------------------------------------------------------------- core
def _workload(opts: PipelineOptions):
    import inspect

    from ddlsim.sim.workloads import WORKLOADS, get_workload

    extra = {}
    if opts.model in WORKLOADS and "attention" in inspect.signature(
            WORKLOADS[opts.model]).parameters:  # decoders: fused or unfused attention
        extra["attention"] = opts.attention
    return get_workload(opts.model, opts.micro_batch, dtype=opts.dtype,
                        **dict(opts.model_overrides), **extra)


def _cluster(opts: PipelineOptions):
    from ddlsim.api.dp import cluster_for

    cluster = cluster_for(opts.cluster, opts.num_gpus, opts.calibrated,
                           overrides=opts.cluster_overrides)
    if opts.devices:
        from ddlsim.sim.hardware import get_device
        from ddlsim.sim.tensor import Layout

        lay = Layout(opts.tp, opts.stages, opts.dp)
        devs = list(cluster.devices)
        for k, name in enumerate(opts.devices):
            key = get_device(name).name
            for d in range(opts.dp):
                for r in lay.tp_group(k, d):
                    devs[r] = key
        cluster = replace(cluster, devices=tuple(devs))
    return cluster


def _tp_time_fn(cluster, tp: int):
    from ddlsim.sim import collectives as col

    if tp == 1:
        return None
    same_node = tp <= cluster.gpus_per_node
    bw = cluster.intra_bw_Bps if same_node else cluster.nic_bw_Bps
    alpha = cluster.intra_latency_s if same_node else cluster.nic_latency_s
    fns = {"allreduce": col.ring_allreduce_time, "reduce_scatter": col.reduce_scatter_time,
           "all_gather": col.all_gather_time}
    return lambda op, nbytes: fns[op](tp, nbytes, bw, alpha)


def memory_parts(layers, opts, input_elems, recompute=None):
    """The engine's per-layer memory (``LayerMemory``) of ``layers`` under ``opts``."""
    from ddlsim.sim.memory import MemoryConfig, layer_memory
    from ddlsim.units import GiB

    cfg = MemoryConfig(dtype=opts.dtype, grad_dtype=opts.grad_dtype, optimizer=opts.optimizer,
                       recompute=recompute or opts.recompute, dropout=opts.dropout,
                       workspace_bytes=opts.workspace_GiB * GiB, zero=opts.zero,
                       zero_group=opts.dp * opts.cp)
    return layer_memory(layers, cfg, input_elems)


def _place(opts, names, mem, times, in_flight, caps):
    """(bounds, note): the split for ``opts.placement``, into ``stages x vp`` virtual
    stages in model order (virtual stage ``i`` on GPU ``i % stages``). ``times``: per-layer
    seconds on each GPU's device (one row per GPU); ``in_flight``: per virtual stage."""
    from ddlsim.sim.placement import manual_bounds, partition
    from ddlsim.sim.tensor import block_bounds

    p, v = opts.stages, opts.vp
    if opts.placement == "manual":
        balance = opts.balance
        if opts.balance_unit == "torchgpipe":
            balance = torchgpipe_layer_balance(balance, names)
        return manual_bounds(balance, len(names)), ""
    if opts.placement == "blocks":
        blocks = sum(1 for x in names if x.startswith("h.") and x.endswith(".ln1"))
        if v > 1 and blocks < p * v:
            raise ConfigError(f"vp: pp x vp = {p * v} model chunks need at least {p * v} "
                              f"transformer blocks, got {blocks}")
        return block_bounds(names, p * v), ""
    # interleaved: each chunk is placed as a stage of its own with 1/vp of its GPU
    fixed = (mem.config.workspace_bytes + mem.recompute_peak(0, len(names))) / v
    rows = [times[i % p] for i in range(p * v)]
    part = partition(rows, mem.static, mem.stored, in_flight,
                     [caps[i % p] / v for i in range(p * v)], fixed)
    return part.bounds, part.note


def _suggest(opts, layers, mem, times, caps, input_elems) -> list[str]:
    """What would fit: more stages, a smaller micro-batch, recomputation (memory only;
    interleaved, ``stages x vp`` chunks placed as :func:`_place` does)."""
    from ddlsim.sim.placement import partition

    n, v, m = len(layers), opts.vp, opts.micro_batches
    out = []

    def fits(memo, p, scale=1.0):
        if p * v > n or (v > 1 and m % p):  # interleaving needs m % p == 0
            return False
        infl = _in_flight(opts.schedule, p, m, v)[1]
        fixed = (memo.config.workspace_bytes + scale * memo.recompute_peak(0, n)) / v
        cap = caps[0] if len(set(caps)) == 1 else min(caps)
        part = partition(times[0], memo.static, memo.stored * scale, infl, cap / v, fixed,
                         stages=p * v)
        return part.fits

    for p in range(opts.stages + 1, min(n // v, 4 * opts.stages) + 1):
        if fits(mem, p):
            out.append(f"{p} pipeline stages (auto placement) fit")
            break
    else:
        out.append(f"no stage count up to {min(n // v, 4 * opts.stages)} fits at micro-batch "
                   f"{opts.micro_batch}")
    mb = opts.micro_batch // 2
    while mb >= 1:
        if fits(mem, opts.stages, mb / opts.micro_batch):
            out.append(f"micro-batch {mb} fits on {opts.stages} stages")
            break
        mb //= 2
    for rc in ("selective", "full"):
        memo = memory_parts(layers, opts, input_elems, rc)
        saves = memo.stored.sum() < mem.stored.sum()  # selective saves nothing when fused
        if rc != opts.recompute and saves and fits(memo, opts.stages):
            out.append(f"recompute={rc} fits on {opts.stages} stages")
            break
    return out


@dataclass(frozen=True)
class LayerPrices:
    """What the engine prices before placing (:func:`price_layers`): one GPU's ``layers``
    (sharded over tp / cp) and their collectives, the ``cluster``, the device of each
    stage, the cost ``models`` and, per device, ``(fwd_s, bwd_s, estimate)`` per layer of
    one micro-batch (backward without recomputation; :meth:`per_device` adds it)."""

    workload: object
    layers: tuple
    tp_comm: tuple
    cluster: object
    stage_devices: tuple[str, ...]
    models: dict
    prices: dict
    paths: dict

    def per_device(self, recompute: str) -> dict:
        """``{device: (fwd_s, bwd_s with recomputation, estimate)}`` per layer."""
        from ddlsim.sim.tensor import recompute_times

        return {d: (f, b + recompute_times(self.layers, f, recompute), e)
                for d, (f, b, e) in self.prices.items()}


def price_layers(opts: PipelineOptions, cost_model_factory=None) -> LayerPrices:
    """Per-layer seconds of ``opts`` on each stage's device, as :func:`predict_model_parallel`
    simulates them (the layout search's fast path reuses them, so the two agree)."""
    from ddlsim.api.dp import cost_models, counting_estimator, profile_rows
    from ddlsim.api.finetune import pipeline_lora_layers
    from ddlsim.sim.collectives import broadcast_time
    from ddlsim.sim.tensor import Layout, layer_times, shard_model

    wl = _workload(opts)
    layout = Layout(opts.tp, opts.stages, opts.dp, opts.cp)
    if opts.tp > 1 or opts.sequence_parallel or opts.cp > 1:
        sharded = shard_model(wl, opts.tp, opts.sequence_parallel, opts.cp)
        layers, tp_comm = sharded.layers, sharded.tp_comm
    else:
        layers, tp_comm = wl.layers, ()
    layers = pipeline_lora_layers(opts, wl, layers)  # LoRA: adapters on the frozen shard
    cluster = _cluster(opts)
    stage_dev = tuple(cluster.devices[layout.rank(k)] for k in range(opts.stages))
    models = (cost_model_factory or cost_models)(stage_dev, profile_rows(opts.profile))
    paths: dict[str, int] = {}
    tp_time = _tp_time_fn(cluster, opts.tp)
    if opts.cp > 1:
        # ring-attention p2p between neighbouring CP ranks (tp apart): NVLink while the
        # tp x cp group fits in a node, else the NIC; one transfer = alpha + N / B
        cp_local = opts.tp * opts.cp <= cluster.gpus_per_node
        cp_bw = cluster.intra_bw_Bps if cp_local else cluster.nic_bw_Bps
        cp_alpha = cluster.intra_latency_s if cp_local else cluster.nic_latency_s
        tp_only = tp_time

        def tp_time(op, nbytes):
            if op == "p2p":
                return broadcast_time(2, nbytes, cp_bw, cp_alpha)
            return tp_only(op, nbytes) if tp_only is not None else 0.0
    prices = {}
    for name, model in models.items():
        estimate = counting_estimator(model, paths)
        fwd, bwd, _ = layer_times(layers, tp_comm, estimate, opts.dtype, tp_time,
                                  opts.gemm_dtype, cp=opts.cp,
                                  tp_overlap=opts.tp if opts.tp_comm_overlap else 0)
        prices[name] = (fwd, bwd, estimate)
    return LayerPrices(wl, tuple(layers), tuple(tp_comm), cluster, stage_dev, models, prices,
                       paths)


def _predict(opts: PipelineOptions, simulate: bool = True,
             cost_model_factory=None, suggest: bool = True) -> PipelinePrediction:
    """``cost_model_factory(device_names, profile_rows) -> {name: model}`` replaces
    :func:`ddlsim.api.dp.cost_models` (validation passes calibrated models; each model has
    ``.device`` and ``.estimate(kc, dtype)``)."""
    import numpy as np
    import simpy

    from ddlsim.api.finetune import gather_scales, step_flops
    from ddlsim.sim.collectives import collective
    from ddlsim.sim.memory import interleaved_stage_memory, stage_memory
    from ddlsim.sim.network import Network
    from ddlsim.sim.pipeline import PipelineConfig, PipelineResult, simulate_pipeline
    from ddlsim.sim.tensor import Layout, stage_costs

    lp = price_layers(opts, cost_model_factory)
    wl, layers, cluster, stage_dev, models = (lp.workload, lp.layers, lp.cluster,
                                              lp.stage_devices, lp.models)
    paths, layout = lp.paths, Layout(opts.tp, opts.stages, opts.dp, opts.cp)
    names = tuple(lay.name for lay in layers)
    if opts.stages * opts.vp > len(layers):
        what = "stages" if opts.vp == 1 else "vp"
        need = opts.stages * opts.vp
        raise ConfigError(f"{what}: {need} {'stages' if opts.vp == 1 else 'model chunks'} "
                          f"need at least {need} layers, {opts.model} has {len(layers)}")
    per_dev = lp.per_device(opts.recompute)
    times = np.stack([per_dev[d][0] + per_dev[d][1] for d in stage_dev])
    input_elems = opts.micro_batch * math.prod(wl.input_shape)
    mem = memory_parts(layers, opts, input_elems)
    p, v = opts.stages, opts.vp
    caps = [models[d].device.memory_bytes for d in stage_dev]
    orders, infl = _in_flight(opts.schedule, p, opts.micro_batches, v)
    bounds, note = _place(opts, names, mem, times, infl, caps)
    if v == 1:
        memory = [stage_memory(mem, k, bounds[k], bounds[k + 1], infl[k], caps[k],
                               stage_dev[k]) for k in range(p)]
    else:
        memory = [interleaved_stage_memory(
            mem, k, [(bounds[c * p + k], bounds[c * p + k + 1]) for c in range(v)],
            orders[k], caps[k], stage_dev[k]) for k in range(p)]
    send_div = opts.tp if (opts.tp > 1 and not opts.sequence_parallel) else 1
    by_dev = {d: stage_costs(layers, bounds, per_dev[d][0], per_dev[d][1], opts.dtype,
                             per_dev[d][2], opts.optimizer, opts.grad_dtype, send_div,
                             input_elems) for d in set(stage_dev)}
    chunk_costs = [by_dev[stage_dev[i % p]][i] for i in range(p * v)]
    scales = gather_scales(layers, bounds, p, v) if opts.zero == 3 else [1.0] * p
    if opts.zero:  # each GPU steps the optimizer on its 1/(dp x cp) shard; ZeRO-3 gathers
        wr = weight_ratio(opts)
        chunk_costs = [replace(c, update_s=c.update_s / (opts.dp * opts.cp),
                               fwd_s=max(c.fwd_s, g), bwd_s=max(c.bwd_s, g))
                       for i, c in enumerate(chunk_costs)
                       for g in [opts.zero3_gather_s(cluster, c.dp_bytes * wr * scales[i % p])]]
    costs = [_gpu_cost(chunk_costs[k::p]) for k in range(p)]
    attn = np.array([lay.kind == "attention" for lay in layers], dtype=float)
    attention_s = []
    for k in range(p):
        per_layer = (per_dev[stage_dev[k]][0] + per_dev[stage_dev[k]][1]) * attn
        attention_s.append(float(sum(per_layer[bounds[c * p + k]:bounds[c * p + k + 1]].sum()
                                     for c in range(v))))
    suggestions = [] if not suggest or all(m.fits for m in memory) else _suggest(
        opts, layers, mem, times, caps, input_elems)

    model_flops, hw_flops = step_flops(opts, wl)

    env = simpy.Environment()
    net = Network(env, cluster)
    cfg = PipelineConfig(opts.schedule, opts.micro_batches, opts.iterations, opts.dp, v,
                         grad_bucket_bytes=opts.grad_bucket_bytes)
    p2p = opts.p2p
    if p2p == "auto":
        p2p = "links" if 2 * opts.micro_batches * (p * v - 1) > 20000 else "network"
    send = _sender(env, net, layout, p2p)
    shared_nics = cluster.nics_per_node < cluster.gpus_per_node
    groups_per_stage = opts.tp if shared_nics else 1

    from ddlsim.sim.zero import zero_ops

    ops = zero_ops(opts.zero, weight_ratio(opts))

    def reduce(ranks, nbytes, scale=1.0):
        if not opts.zero:
            algo = ("hierarchical" if len({x // cluster.gpus_per_node for x in ranks}) > 1
                    and cluster.gpus_per_node > 1 else "ring")
            yield from collective(env, net, "allreduce", ranks, nbytes, algo)
            return
        for op, factor in ops:  # ZeRO: reduce-scatter, weight all-gather(s), in sequence
            factor = factor * scale if op == "all_gather" and scale != 1.0 else factor
            yield from collective(env, net, op, ranks, nbytes * factor)

    def allreduce(env, stage, nbytes):
        # dp x cp peers (dp_group when cp = 1), one group per tp rank when NICs are shared
        yield env.all_of([env.process(reduce(layout.grad_group(stage, r), nbytes,
                                             scales[stage]))
                          for r in range(groups_per_stage)])

    if simulate:
        result = simulate_pipeline(chunk_costs, cfg, send,
                                   allreduce if opts.dp * opts.cp > 1 else None, env,
                                   max_events=opts.max_events)
    else:
        result = PipelineResult(opts.stages, opts.micro_batches, opts.schedule, [], vp=v)
    return PipelinePrediction(
        options=opts, cluster=cluster, layer_names=names, bounds=tuple(bounds),
        stage_devices=stage_dev, stage_costs=costs, memory=memory, result=result,
        model_flops=model_flops, hardware_flops=hw_flops, tokens_per_sample=wl.tokens_per_sample,
        suggestions=suggestions, cost_paths=paths, placement_note=note,
        chunk_costs=chunk_costs, stage_attention_s=tuple(attention_s))


def weight_ratio(opts) -> float:
    """Weight bytes per gradient byte (what a ZeRO all-gather carries per reduced byte)."""
    from ddlsim.units import dtype_bytes

    return dtype_bytes(opts.dtype) / dtype_bytes(opts.grad_dtype or opts.dtype)


def _in_flight(schedule: str, p: int, m: int, v: int):
    """(per-GPU interleaved orders or None, micro-batches in flight per virtual stage): the
    schedule's count per stage; interleaved, each chunk's live count at its GPU's peak
    (:func:`ddlsim.sim.memory.chunk_peak` over equal chunks)."""
    from ddlsim.sim.memory import chunk_peak, in_flight
    from ddlsim.sim.pipeline import interleaved_order

    if v == 1:
        return None, [in_flight(schedule, k, p, m) for k in range(p)]
    orders = [interleaved_order(k, p, m, v) for k in range(p)]
    live = [chunk_peak(orders[k], [1.0] * v)[1] for k in range(p)]
    return orders, [live[i % p][i // p] for i in range(p * v)]


def _gpu_cost(chunks):
    """One GPU's :class:`~ddlsim.sim.pipeline.StageCost` from its chunks' (sums; the sends
    of its first chunk)."""
    from ddlsim.sim.pipeline import StageCost

    first = chunks[0]
    return StageCost(fwd_s=sum(c.fwd_s for c in chunks), bwd_s=sum(c.bwd_s for c in chunks),
                     act_bytes=first.act_bytes, grad_bytes=first.grad_bytes,
                     update_s=sum(c.update_s for c in chunks),
                     dp_bytes=sum(c.dp_bytes for c in chunks))


def _sender(env, net, layout, p2p: str):
    """``send(env, src_stage, dst_stage, nbytes)`` between the representative pipeline's
    GPUs: a flow over the route's links (``network``), or a FIFO channel per stage pair at
    the route's bottleneck bandwidth plus its latency (``links``)."""
    import simpy

    paths: dict[tuple[int, int], object] = {}
    channels: dict[tuple[int, int], simpy.Resource] = {}

    def path(src, dst):
        key = (src, dst)
        if key not in paths:
            paths[key] = net.route(layout.rank(src), layout.rank(dst))
        return paths[key]

    def send_network(env, src, dst, nbytes):
        yield net.transfer(path(src, dst), nbytes)

    def send_links(env, src, dst, nbytes):
        pth = path(src, dst)
        key = (src, dst)
        if key not in channels:
            channels[key] = simpy.Resource(env, capacity=1)
        bw = float(min(net.links[i].capacity_Bps for i in pth.idx)) if pth.num_links else None
        with channels[key].request() as req:
            yield req
            yield env.timeout((nbytes / bw if bw else 0.0) + pth.latency_s)

    return send_network if p2p == "network" else send_links


def predict_model_parallel(opts: PipelineOptions, cost_model_factory=None,
                           simulate: bool = True, suggest: bool = True) -> PipelinePrediction:
    """The model-parallel engine: place, check memory and (``simulate``) run one pipeline
    (with TP, CP and DP). ``cost_model_factory(device_names, profile_rows) -> {name:
    model}``: the calibrated models of :func:`ddlsim.api.predict` (default: first-principles
    :func:`ddlsim.api.dp.cost_models`); ``simulate=False``: placement and memory only
    (``result`` empty); ``suggest``: when a stage does not fit, search what would."""
    return _predict(opts, simulate, cost_model_factory, suggest)
