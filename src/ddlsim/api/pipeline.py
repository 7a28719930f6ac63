"""Model parallelism: pipeline (``ddlsim pipeline``), placement (``ddlsim place``) and
tensor x pipeline x data parallelism (``ddlsim 3d``): the engine
:func:`predict_model_parallel` that :func:`ddlsim.api.predict` drives for pipeline and 3D
jobs.

One core serves all three: build the per-GPU layer list (a GPT sharded
over ``tp`` GPUs, or any workload's layers), price every layer with the cost model, model
memory, place layers on stages (Megatron's even block split, the memory-aware partitioner,
or the user's ranges), simulate one representative pipeline (SimPy, sends as flows over the
cluster's links) with the data-parallel allreduce of each stage, and report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ddlsim.errors import ConfigError
from ddlsim.sim.budget import DEFAULT_MAX_EVENTS

PLACEMENTS = ("auto", "blocks", "manual")


@dataclass(frozen=True)
class PipelineOptions:
    """Options of a model-parallel prediction (SI units except where the name says).

    ``model``: workload name; ``micro_batch``: samples per micro-batch; ``micro_batches``:
    per iteration and replica (naive: use 1 and the whole batch as ``micro_batch``);
    ``schedule``: naive | gpipe | 1f1b; ``stages`` (pp), ``tp``, ``dp``, ``cp``: parallel
    degrees (``tp > 1`` or ``cp > 1`` needs a decoder model: GPT, Llama or Nemotron; ``cp``:
    context parallelism, ring attention over ``cp`` GPUs that each hold ``seq/cp`` tokens,
    gradients allreduced over ``dp x cp``); ``cluster``: topology preset; ``devices``: one device
    name per stage for heterogeneous pipelines (empty: the preset's); ``placement``: auto
    (memory-aware partitioner) | blocks (Megatron's even split of transformer blocks) |
    manual (``balance`` = layer counts per stage); ``dtype`` / ``gemm_dtype`` /
    ``grad_dtype``: activations, GEMM inputs (e.g. fp8), gradients allreduced;
    ``optimizer``: sgd | momentum | adam; ``recompute``: none | selective | full;
    ``sequence_parallel``; ``dropout``: count dropout masks in memory; ``workspace_GiB``;
    ``p2p``: ``network`` (flows sharing links) or ``links`` (each stage pair a FIFO channel
    at its route's bottleneck bandwidth; faster for very long pipelines); ``auto`` uses
    links above 20,000 sends.
    """

    model: str = "gpt-small"
    micro_batch: int = 4
    micro_batches: int = 8
    schedule: str = "1f1b"
    stages: int = 4
    tp: int = 1
    dp: int = 1
    cp: int = 1
    cluster: str = "dgx-a100"
    devices: tuple[str, ...] = ()
    placement: str = "auto"
    balance: tuple[int, ...] = ()
    dtype: str = "float32"
    gemm_dtype: str | None = None
    grad_dtype: str | None = None
    optimizer: str = "adam"
    recompute: str = "none"
    sequence_parallel: bool = False
    dropout: bool = False
    workspace_GiB: float = 1.0
    iterations: int = 1
    p2p: str = "auto"
    profile: str | None = None
    calibrated: bool = True
    model_overrides: tuple[tuple[str, int], ...] = ()
    max_events: int = DEFAULT_MAX_EVENTS
    cluster_overrides: tuple[tuple[str, float], ...] = ()  # ClusterSpec fields, SI units
    balance_unit: str = "layers"  # or "torchgpipe": modules of torchgpipe's flattened model

    def __post_init__(self) -> None:
        for name in ("micro_batch", "micro_batches", "stages", "tp", "dp", "cp", "iterations"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name}: must be an integer >= 1, got {value!r}")
        if self.placement not in PLACEMENTS:
            raise ConfigError(f"placement: must be one of {', '.join(PLACEMENTS)}, "
                              f"got {self.placement!r}")
        if self.placement == "manual" and len(self.balance) != self.stages:
            raise ConfigError(f"balance: manual placement needs {self.stages} layer counts, "
                              f"got {list(self.balance)}")
        if self.devices and self.cp > 1:
            raise ConfigError(f"devices: per-stage devices are not supported with context "
                              f"parallelism, got cp={self.cp}")
        if self.devices and len(self.devices) != self.stages:
            raise ConfigError(f"devices: needs one device per stage ({self.stages}), "
                              f"got {len(self.devices)}")
        if self.p2p not in ("auto", "network", "links"):
            raise ConfigError(f"p2p: must be auto, network or links, got {self.p2p!r}")
        if not self.workspace_GiB >= 0:
            raise ConfigError(f"workspace_GiB: must be >= 0, got {self.workspace_GiB!r}")

    @property
    def num_gpus(self) -> int:
        return self.tp * self.cp * self.stages * self.dp

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.micro_batches * self.dp


def ThreeDOptions(model: str = "gpt3-175b", tp: int = 8, pp: int = 16, dp: int = 8,  # noqa: N802
                  micro_batch: int = 1, global_batch: int = 512, cp: int = 1,
                  **kw) -> PipelineOptions:
    """Options for TP x CP x PP x DP of a decoder: ``global_batch`` sequences per iteration,
    split into ``global_batch / (dp * micro_batch)`` micro-batches per replica (the ``cp``
    GPUs of a replica share each micro-batch's sequences, ``seq/cp`` tokens each). Defaults follow
    Megatron-LM practice: 1F1B, even block split, mixed precision (bf16), Adam, fp32
    gradient allreduce, full recomputation off."""
    if global_batch % (dp * micro_batch):
        raise ConfigError(f"global_batch: must be a multiple of dp x micro_batch = "
                          f"{dp * micro_batch}, got {global_batch}")
    kw.setdefault("placement", "blocks")
    kw.setdefault("dtype", "bfloat16")
    kw.setdefault("grad_dtype", "float32")
    return PipelineOptions(model=model, micro_batch=micro_batch,
                           micro_batches=global_batch // (dp * micro_batch), stages=pp, tp=tp,
                           dp=dp, cp=cp, **kw)


@dataclass
class PipelinePrediction:
    """A model-parallel prediction: placement, memory per stage, the simulated pipeline."""

    options: PipelineOptions
    cluster: object
    layer_names: tuple[str, ...]
    bounds: tuple[int, ...]
    stage_devices: tuple[str, ...]
    stage_costs: list  # StageCost per stage
    memory: list  # StageMemory per stage
    result: object  # PipelineResult
    model_flops: float  # per iteration, whole job (no recompute)
    hardware_flops: float  # per iteration, whole job, counting recomputation
    tokens_per_sample: int
    suggestions: list[str] = field(default_factory=list)
    cost_paths: dict = field(default_factory=dict)
    placement_note: str = ""

    @property
    def fits(self) -> bool:
        return all(m.fits for m in self.memory)

    @property
    def iteration_s(self) -> float:
        return float(self.result.iteration_times_s[-1])

    def summary(self) -> dict:
        """One flat record of the headline numbers (SI units)."""
        o, t = self.options, self.iteration_s
        samples = o.global_batch / t
        gpus = o.num_gpus
        worst = max(self.memory, key=lambda m: m.total_bytes / m.capacity_bytes)
        return {
            "model": o.model, "cluster": o.cluster, "gpus": gpus, "tp": o.tp, "cp": o.cp,
            "pp": o.stages, "dp": o.dp, "schedule": o.schedule, "micro_batch": o.micro_batch,
            "micro_batches": o.micro_batches, "global_batch": o.global_batch,
            "recompute": o.recompute, "iteration_s": t, "samples_per_s": samples,
            "tokens_per_s": samples * self.tokens_per_sample,
            "model_tflops_per_gpu": self.model_flops / t / gpus / 1e12,
            "hardware_tflops_per_gpu": self.hardware_flops / t / gpus / 1e12,
            "bubble_fraction": self.result.bubble_fraction,
            "max_memory_bytes": max(m.total_bytes for m in self.memory),
            "fits": self.fits, "tightest_stage": worst.stage,
        }

    def stages_frame_rows(self) -> list[dict]:
        """Per-stage records: layers, time, memory breakdown, in-flight micro-batches
        (``busy_frac`` only when the pipeline was simulated)."""
        rows = []
        simulated = bool(self.result.iteration_end)
        busy = self.result.busy_s() if simulated else [0.0] * len(self.memory)
        for k, (cost, mem) in enumerate(zip(self.stage_costs, self.memory, strict=True)):
            a, b = self.bounds[k], self.bounds[k + 1]
            rows.append({
                "stage": k, "device": self.stage_devices[k], "first_layer": self.layer_names[a],
                "last_layer": self.layer_names[b - 1], "layers": b - a,
                "fwd_s": cost.fwd_s, "bwd_s": cost.bwd_s, "update_s": cost.update_s,
                "busy_frac": busy[k] / self.result.makespan_s if simulated else float("nan"),
                "in_flight": mem.micro_batches_in_flight,
                **{f"{k2}_bytes": v for k2, v in mem.breakdown().items()},
                "total_bytes": mem.total_bytes, "capacity_bytes": mem.capacity_bytes,
                "over_bytes": mem.over_bytes, "fits": mem.fits})
        return rows


# --------------------------------------------------------------------------- core
def _workload(opts: PipelineOptions):
    from ddlsim.sim.workloads import get_workload

    return get_workload(opts.model, opts.micro_batch, dtype=opts.dtype,
                        **dict(opts.model_overrides))


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


def _memory_parts(layers, opts, input_elems, recompute=None):
    from ddlsim.sim.memory import MemoryConfig, layer_memory
    from ddlsim.units import GiB

    cfg = MemoryConfig(dtype=opts.dtype, grad_dtype=opts.grad_dtype, optimizer=opts.optimizer,
                       recompute=recompute or opts.recompute, dropout=opts.dropout,
                       workspace_bytes=opts.workspace_GiB * GiB)
    return layer_memory(layers, cfg, input_elems)


def _place(opts, names, mem, times, in_flight, caps):
    """(bounds, note): the split for ``opts.placement``."""
    from ddlsim.sim.placement import manual_bounds, partition
    from ddlsim.sim.tensor import block_bounds

    if opts.placement == "manual":
        balance = opts.balance
        if opts.balance_unit == "torchgpipe":
            balance = torchgpipe_layer_balance(balance, names)
        return manual_bounds(balance, len(names)), ""
    if opts.placement == "blocks":
        return block_bounds(names, opts.stages), ""
    fixed = mem.config.workspace_bytes + mem.recompute_peak(0, len(names))
    part = partition(times, mem.static, mem.stored, in_flight, caps, fixed)
    return part.bounds, part.note


def _suggest(opts, layers, mem, times, caps, input_elems) -> list[str]:
    """What would fit: more stages, a smaller micro-batch, recomputation (memory only)."""
    from ddlsim.sim.memory import in_flight
    from ddlsim.sim.placement import partition

    n = len(layers)
    out = []

    def fits(memo, p, scale=1.0):
        infl = [in_flight(opts.schedule, k, p, opts.micro_batches) for k in range(p)]
        fixed = memo.config.workspace_bytes + scale * memo.recompute_peak(0, n)
        cap = caps[0] if len(set(caps)) == 1 else min(caps)
        if p > n:
            return False
        part = partition(times[0], memo.static, memo.stored * scale, infl, cap, fixed,
                         stages=p)
        return part.fits

    for p in range(opts.stages + 1, min(n, 4 * opts.stages) + 1):
        if fits(mem, p):
            out.append(f"{p} pipeline stages (auto placement) fit")
            break
    else:
        out.append(f"no stage count up to {min(n, 4 * opts.stages)} fits at micro-batch "
                   f"{opts.micro_batch}")
    mb = opts.micro_batch // 2
    while mb >= 1:
        if fits(mem, opts.stages, mb / opts.micro_batch):
            out.append(f"micro-batch {mb} fits on {opts.stages} stages")
            break
        mb //= 2
    for rc in ("selective", "full"):
        if rc != opts.recompute and fits(_memory_parts(layers, opts, input_elems, rc),
                                         opts.stages):
            out.append(f"recompute={rc} fits on {opts.stages} stages")
            break
    return out


def _predict(opts: PipelineOptions, simulate: bool = True,
             cost_model_factory=None, suggest: bool = True) -> PipelinePrediction:
    """``cost_model_factory(device_names, profile_rows) -> {name: model}`` replaces
    :func:`ddlsim.api.dp.cost_models` (validation passes calibrated models; each model has
    ``.device`` and ``.estimate(kc, dtype)``)."""
    import numpy as np
    import simpy

    from ddlsim.api.dp import cost_models, counting_estimator, profile_rows
    from ddlsim.sim.collectives import broadcast_time, collective
    from ddlsim.sim.memory import in_flight, stage_memory
    from ddlsim.sim.network import Network
    from ddlsim.sim.pipeline import PipelineConfig, PipelineResult, simulate_pipeline
    from ddlsim.sim.tensor import (
        Layout,
        layer_times,
        megatron_model_flops,
        recompute_times,
        shard_model,
        stage_costs,
    )

    wl = _workload(opts)
    layout = Layout(opts.tp, opts.stages, opts.dp, opts.cp)
    if opts.tp > 1 or opts.sequence_parallel or opts.cp > 1:
        sharded = shard_model(wl, opts.tp, opts.sequence_parallel, opts.cp)
        layers, tp_comm = sharded.layers, sharded.tp_comm
    else:
        layers, tp_comm = wl.layers, ()
    names = tuple(lay.name for lay in layers)
    if opts.stages > len(layers):
        raise ConfigError(f"stages: {opts.stages} stages need at least {opts.stages} layers, "
                          f"{opts.model} has {len(layers)}")
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
    per_dev = {}
    for name, model in models.items():
        estimate = counting_estimator(model, paths)
        fwd, bwd, _ = layer_times(layers, tp_comm, estimate, opts.dtype, tp_time,
                                  opts.gemm_dtype, cp=opts.cp)
        per_dev[name] = (fwd, bwd + recompute_times(layers, fwd, opts.recompute), estimate)
    times = np.stack([per_dev[d][0] + per_dev[d][1] for d in stage_dev])
    input_elems = opts.micro_batch * math.prod(wl.input_shape)
    mem = _memory_parts(layers, opts, input_elems)
    infl = [in_flight(opts.schedule, k, opts.stages, opts.micro_batches)
            for k in range(opts.stages)]
    caps = [models[d].device.memory_bytes for d in stage_dev]
    bounds, note = _place(opts, names, mem, times, infl, caps)
    memory = [stage_memory(mem, k, bounds[k], bounds[k + 1], infl[k], caps[k], stage_dev[k])
              for k in range(opts.stages)]
    send_div = opts.tp if (opts.tp > 1 and not opts.sequence_parallel) else 1
    costs = []
    for k in range(opts.stages):
        fwd, bwd, est = per_dev[stage_dev[k]]
        costs.append(stage_costs(layers, bounds, fwd, bwd, opts.dtype, est, opts.optimizer,
                                 opts.grad_dtype, send_div, input_elems)[k])
    suggestions = [] if not suggest or all(m.fits for m in memory) else _suggest(
        opts, layers, mem, times, caps, input_elems)

    hp = wl.hyperparams
    if {"hidden", "layers", "seq", "vocab"} <= set(hp):
        # Megatron-LM's num_floating_point_operations, NeMo's model TFLOP/s:
        # GPT closed form, or with GQA / MLP width / gating for Llama and Nemotron
        args = (opts.global_batch, hp["seq"], hp["layers"], hp["hidden"], hp["vocab"])
        arch = ({} if "kv_heads" not in hp else
                dict(heads=hp["heads"], kv_heads=hp["kv_heads"], ffn=hp["ffn"],
                     gated=bool(hp.get("gated_mlp", 1))))
        model_flops = megatron_model_flops(*args, **arch)
        hw_flops = megatron_model_flops(*args, recompute=opts.recompute == "full", **arch)
    else:
        model_flops = wl.train_flops / opts.micro_batch * opts.global_batch
        hw_flops = model_flops + (wl.fwd_flops / opts.micro_batch * opts.global_batch
                                  if opts.recompute == "full" else 0.0)

    env = simpy.Environment()
    net = Network(env, cluster)
    cfg = PipelineConfig(opts.schedule, opts.micro_batches, opts.iterations, opts.dp)
    p2p = opts.p2p
    if p2p == "auto":
        p2p = "links" if 2 * opts.micro_batches * (opts.stages - 1) > 20000 else "network"
    send = _sender(env, net, layout, p2p)
    shared_nics = cluster.nics_per_node < cluster.gpus_per_node
    groups_per_stage = opts.tp if shared_nics else 1

    def allreduce(env, stage, nbytes):
        procs = []
        for r in range(groups_per_stage):
            ranks = layout.grad_group(stage, r)  # dp x cp peers; dp_group when cp = 1
            algo = ("hierarchical" if len({x // cluster.gpus_per_node for x in ranks}) > 1
                    and cluster.gpus_per_node > 1 else "ring")
            procs.append(env.process(collective(env, net, "allreduce", ranks, nbytes, algo)))
        yield env.all_of(procs)

    if simulate:
        result = simulate_pipeline(costs, cfg, send,
                                   allreduce if opts.dp * opts.cp > 1 else None, env,
                                   max_events=opts.max_events)
    else:
        result = PipelineResult(opts.stages, opts.micro_batches, opts.schedule, [])
    return PipelinePrediction(
        options=opts, cluster=cluster, layer_names=names, bounds=tuple(bounds),
        stage_devices=stage_dev, stage_costs=costs, memory=memory, result=result,
        model_flops=model_flops, hardware_flops=hw_flops, tokens_per_sample=wl.tokens_per_sample,
        suggestions=suggestions, cost_paths=paths, placement_note=note)


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


# --------------------------------------------------------------------------- torchgpipe
# torchgpipe (kakaobrain) conventions: a partition ``balance`` counts modules of the
# flattened ``nn.Sequential``, and ``checkpoint='except_last'`` is its default.
def torchgpipe_resnet_modules(names) -> list[int]:
    """How many of the zoo's ResNet layers (``names``, in order) each module of torchgpipe's
    flattened ResNet holds (kakaobrain/torchgpipe benchmarks/models/resnet: stem conv1, bn1,
    relu, maxpool; per bottleneck ``identity`` (stash, no layer), conv1, bn1, relu1, conv2,
    bn2, relu2, conv3, bn3, ``residual`` (downsample conv + bn when present, and the add),
    relu3; then avgpool, flatten (no layer), fc). The loss runs after the last module on
    the last device, so it joins fc. ResNet-101 gives 370 modules."""
    out, i, n = [], 0, len(names)
    while i < n:
        name = names[i]
        if name.startswith("layer") and name.endswith(".conv1"):
            out.append(0)  # identity: stashes the block input for the residual
        if ".downsample.0" in name:
            out.append(3)  # residual: downsample conv, its bn, the add
            i += 3
        elif name == "avgpool":
            out += [1, 0]  # avgpool, flatten
            i += 1
        elif name == "fc":
            out.append(n - i)  # fc, then the loss
            i = n
        else:
            out.append(1)
            i += 1
    return out


def torchgpipe_layer_balance(balance, names) -> tuple[int, ...]:
    """torchgpipe's ``balance`` (modules per partition) as layer counts of the zoo's
    workload ``names`` (see :func:`torchgpipe_resnet_modules`)."""
    mods = torchgpipe_resnet_modules(names)
    if sum(balance) != len(mods):
        raise ConfigError(f"balance: torchgpipe balance {list(balance)} covers {sum(balance)} "
                          f"modules, the model has {len(mods)}")
    out, start = [], 0
    for count in balance:
        out.append(sum(mods[start:start + count]))
        start += count
    return tuple(out)


def except_last_prediction(opts: PipelineOptions, cost_model_factory=None):
    """Prediction of a torchgpipe pipeline with ``checkpoint='except_last'``: the
    recompute-everything (``opts``) and recompute-nothing runs on the same placement,
    iteration time blended as ``T_none + (m-1)/m (T_full - T_none)``; memory from the
    checkpointed run. Returns the checkpointed prediction with the blended result."""
    full = predict_model_parallel(opts, cost_model_factory)
    if opts.recompute != "full" or opts.micro_batches == 1:
        return full
    balance = tuple(b - a for a, b in zip(full.bounds[:-1], full.bounds[1:], strict=True))
    none = _predict(replace(opts, recompute="none", placement="manual", balance=balance,
                            balance_unit="layers"),
                    cost_model_factory=cost_model_factory)
    m = opts.micro_batches
    t_none, t_full = none.iteration_s, full.iteration_s
    t = t_none + (m - 1) / m * (t_full - t_none)
    times = list(full.result.iteration_times_s)
    times[-1] = t
    return replace(full, result=_Rescaled(full.result, times))


@dataclass
class _Rescaled:
    """A pipeline result whose iteration times were replaced (other fields delegate)."""

    base: object
    iteration_times_s: list

    def __getattr__(self, name):
        return getattr(self.base, name)


