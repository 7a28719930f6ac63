"""Synchronous data parallelism: what ``ddlsim dp`` calls."""

from __future__ import annotations

from dataclasses import dataclass

from ddlsim import units
from ddlsim.api.kernels import host_device_spec
from ddlsim.errors import ConfigError, unknown_name
from ddlsim.sim.budget import DEFAULT_MAX_EVENTS

# --------------------------------------------------------------------------- sync DP
ALLREDUCE_ALGOS = ("auto", "ring", "tree", "hierarchical")


@dataclass(frozen=True)
class DPOptions:
    """Options of a synchronous data-parallel prediction (``ddlsim dp``).

    ``gpus``: total GPUs (fills nodes of the preset's size; fewer than one node's worth
    uses a single partly filled node); ``bucket_MB``: DDP bucket size in MB (10^6 B);
    ``profile``: measured kernel profile CSV (rows for the cluster's devices are used
    first, then interpolation, then roofline); ``algo``: allreduce algorithm, ``auto`` =
    hierarchical across nodes, ring within one; ``calibrated``: apply the global NCCL
    efficiency constants of :mod:`ddlsim.sim.collectives`; ``zero``: ZeRO stage 0-3
    (:mod:`ddlsim.sim.zero`: ring reduce-scatter per bucket and weight all-gathers instead
    of the allreduce; the optimizer step on 1/gpus of the parameters); ``recompute``:
    activation recomputation ``none`` | ``selective`` | ``full``, priced as the
    model-parallel engine does (:func:`ddlsim.sim.tensor_costs.recompute_times`).
    """

    model: str = "resnet50"
    batch_per_gpu: int = 32
    cluster: str = "dgx-a100"
    gpus: int = 8
    dtype: str = "float32"
    grad_dtype: str | None = None
    iterations: int = 20
    algo: str = "auto"
    bucket_MB: float = 25.0
    overlap: bool = True
    noise: str = "none"
    noise_cv: float = 0.0
    slow_gpus: tuple[tuple[int, float], ...] = ()
    slow_links: tuple[tuple[str, float], ...] = ()
    cluster_overrides: tuple[tuple[str, float], ...] = ()
    model_overrides: tuple[tuple[str, int], ...] = ()
    loader_samples_per_s: float | None = None
    profile: str | None = None
    calibrated: bool = True
    seed: int = 0
    trace_iterations: tuple[int, ...] = ()
    trace_ranks: tuple[int, ...] = (0, 1)
    max_events: int = DEFAULT_MAX_EVENTS
    zero: int = 0
    lora: object = None  # LoraSpec: LoRA fine-tuning (ddlsim.sim.workloads.lora)
    recompute: str = "none"

    def __post_init__(self) -> None:
        from ddlsim.sim.memory import RECOMPUTE, check_name
        from ddlsim.sim.zero import check_zero

        check_zero(self.zero)
        check_name("recompute", self.recompute, RECOMPUTE)
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed: must be in [0, 2**32), got {self.seed}")
        if self.gpus < 1:
            raise ConfigError(f"gpus: must be >= 1, got {self.gpus}")
        if self.batch_per_gpu < 1:
            raise ConfigError(f"batch_per_gpu: must be >= 1, got {self.batch_per_gpu}")
        if self.algo not in ALLREDUCE_ALGOS:
            raise ConfigError(f"algo: must be one of {', '.join(ALLREDUCE_ALGOS)}, "
                              f"got {self.algo!r}")
        if not self.bucket_MB > 0:
            raise ConfigError(f"bucket_MB: must be > 0, got {self.bucket_MB!r}")


@dataclass
class DPPrediction:
    """A sync-DP run and what it is compared with."""

    options: DPOptions
    cluster: object  # ClusterSpec
    result: object  # SyncDPResult
    single_gpu_samples_per_s: float
    cost_paths: dict  # path -> number of distinct kernels priced that way
    link_stats: list  # per link records from the network
    algo: str
    backward_s: float = 0.0  # one GPU's backward pass (fastest device), seconds
    recompute_flops: float = 0.0  # one GPU's recomputed forward FLOPs per iteration

    @property
    def samples_per_s(self) -> float:
        return self.result.samples_per_s

    @property
    def scaling_efficiency(self) -> float:
        return self.samples_per_s / (self.result.num_gpus * self.single_gpu_samples_per_s)

    def summary(self) -> dict:
        """One flat record of the headline numbers (SI units)."""
        import numpy as np

        it = self.result.iteration_times_s
        return {
            "model": self.options.model, "cluster": self.options.cluster,
            "gpus": self.result.num_gpus, "nodes": self.cluster.nodes,
            "batch_per_gpu": self.options.batch_per_gpu, "algo": self.algo,
            "zero": self.options.zero,
            "iteration_s": float(np.median(it)), "iteration_p10_s": float(np.percentile(it, 10)),
            "iteration_p90_s": float(np.percentile(it, 90)),
            "samples_per_s": self.samples_per_s,
            "scaling_efficiency": self.scaling_efficiency,
            "exposed_comm_s": float(np.median(self.result.exposed_comm_s)),
            "gpu_busy_frac": float(np.mean(self.result.compute_busy_s) / self.result.makespan_s),
            # compute capacity idle because GPUs wait for the slowest one (stragglers)
            "straggler_loss_frac": float(1.0 - np.mean(self.result.compute_busy_s)
                                         / np.max(self.result.compute_busy_s)),
        }


#: Achievable fraction of a PCIe link's line rate (the pcie-8gpu preset: ~25 of 31.5 GB/s
#: per direction on PCIe 4.0 x16; an estimate, see topology.PRESETS), applied to a GPU's
#: own PCIe rate when a cluster puts another GPU behind PCIe.
PCIE_ACHIEVABLE = 25.0 / 31.5


def _device_links(preset: str, extra: dict) -> dict:
    """Intra-node bandwidth for a device that is not the preset's: an NVLink/NVSwitch node
    runs at the GPU's own NVLink rate, a PCIe node at the GPU's PCIe rate (achievable
    fraction) when slower than the preset's, unless the caller gave the bandwidth."""
    from ddlsim.sim.hardware import get_device
    from ddlsim.sim.topology import PRESETS

    if "device" not in extra or "intra_bw_Bps" in extra:
        return extra
    dev = get_device(extra["device"])
    link = extra.get("intra_link", PRESETS[preset]["intra_link"][0])
    base = PRESETS[preset]["intra_bw_Bps"][0]
    if link in ("nvlink", "nvswitch") and dev.nvlink_bw_bytes_per_s > 0:
        return {**extra, "intra_bw_Bps": dev.nvlink_bw_bytes_per_s}
    if link in ("nvlink", "nvswitch") or link == "pcie":
        return {**extra, "intra_link": "pcie",
                "intra_bw_Bps": min(base if link == "pcie" else float("inf"),
                                    dev.pcie_bw_bytes_per_s * PCIE_ACHIEVABLE)}
    return extra


def cluster_for(preset: str, gpus: int, calibrated: bool,
                slow_links: tuple[tuple[str, float], ...] = (),
                overrides: tuple[tuple[str, float], ...] = ()):
    """The preset's cluster holding ``gpus`` GPUs; ``overrides``: ClusterSpec fields in SI
    units (e.g. ``("nic_bw_Bps", 3.125e9)``), ``device`` and ``gpus_per_node`` included;
    ``slow_links``: (link id, slow-down factor). The one place a cluster is built."""
    from ddlsim.sim.collectives import nccl_calibrated
    from ddlsim.sim.topology import PRESETS, link_table, make_cluster, with_link_capacity

    if preset not in PRESETS:
        make_cluster(preset, 1)  # raises the did-you-mean ConfigError
    extra = dict(overrides)
    gpn = int(extra.pop("gpus_per_node", PRESETS[preset]["gpus_per_node"][0]))
    extra = _device_links(preset, extra)
    if gpus <= gpn:
        cluster = make_cluster(preset, 1, gpus_per_node=gpus, **extra)
    else:
        if gpus % gpn:
            raise ConfigError(f"gpus: must be a multiple of {preset}'s {gpn} GPUs per node "
                              f"when above one node, got {gpus}")
        cluster = make_cluster(preset, gpus // gpn, gpus_per_node=gpn, **extra)
    if calibrated:
        cluster = nccl_calibrated(cluster)
    capacity = {lid: cap for lid, _, cap, _ in link_table(cluster)}
    for link_id, factor in slow_links:
        if link_id not in capacity:
            raise unknown_name("slow_links", link_id, capacity, "link")
        if not factor > 0:
            raise ConfigError(f"slow_links[{link_id}]: factor must be > 0, got {factor!r}")
        cluster = with_link_capacity(cluster, link_id, capacity[link_id] / factor)
    return cluster


def profile_rows(path: str | None):
    """Profile CSV -> ProfileRow records; rows measured on this host's CPU are renamed to
    the host spec's name so the cost model matches them to ``host-cpu``."""
    if path is None:
        return []
    from ddlsim.kernels.host import detect_host
    from ddlsim.kernels.profile import load_profile
    from ddlsim.sim.costs import ProfileRow

    df = load_profile(path)
    host = detect_host().model
    return [ProfileRow(op=r.op, shape_key=r.shape, dtype=r.dtype,
                       device="host-cpu" if r.device == host else r.device,
                       median_s=float(r.median_s), p10_s=float(r.p10_s),
                       p90_s=float(r.p90_s), flops=float(r.flops), bytes=float(r.bytes))
            for r in df.itertuples(index=False)]


def default_profile_rows(device, search=None):
    """Profile rows measured on a real ``device`` (DeviceSpec) found in the repository:
    ``bench/gpu/results/**/*.csv`` (a checkout) and ``src/ddlsim/data/profiles/*gpu*.csv``,
    or the CSV files under the folders in ``search``. Only rows of that device are kept;
    they take precedence over the roofline in :func:`cost_models`."""
    from pathlib import Path

    from ddlsim.sim.costs import row_matches

    if search is None:
        pkg = Path(__file__).resolve().parents[1]
        files = sorted((pkg.parents[1] / "bench" / "gpu" / "results").glob("**/*.csv"))
        files += sorted((pkg / "data" / "profiles").glob("*gpu*.csv"))
    else:
        files = [f for d in search for f in sorted(Path(d).glob("**/*.csv"))]
    return [r for f in files for r in profile_rows(str(f)) if row_matches(r.device, device)]


def cost_models(device_names, rows):
    """One CostModel per distinct device name (``cpu-generic`` runs on this host's spec
    when the profile holds host rows). A device with no row in ``rows`` uses the GPU
    profile measured on it in the repository, if any (:func:`default_profile_rows`)."""
    from ddlsim.sim.costs import CostModel, row_matches
    from ddlsim.sim.hardware import get_device

    has_host_rows = any(r.device == "host-cpu" for r in rows)
    models = {}
    for name in dict.fromkeys(device_names):
        use_host = name == "cpu-generic" and has_host_rows
        spec = host_device_spec() if use_host else get_device(name)
        mine = spec.kind != "gpu" or any(row_matches(r.device, spec) for r in rows)
        models[name] = CostModel(spec, rows if mine else list(rows) + default_profile_rows(spec))
    return models


def counting_estimator(model, paths: dict[str, int]):
    """``estimate(call, dtype) -> seconds`` from ``model`` that also counts, in ``paths``,
    how many calls each cost path priced (measured / interpolated / roofline)."""
    def estimate(kc, dtype):
        est = model.estimate(kc, dtype)
        paths[est.path] = paths.get(est.path, 0) + 1
        return est.seconds
    return estimate


def recompute_flops(workload, recompute: str) -> float:
    """FLOPs one iteration of ``workload`` recomputes: the rule that prices its seconds
    (:func:`ddlsim.sim.tensor_costs.recompute_times`) applied to the layers' forward
    FLOPs (full: one more forward; selective: the unfused attention cores' forward)."""
    import numpy as np

    from ddlsim.sim.tensor_costs import recompute_times

    layers = list(workload.layers)
    fwd = np.array([lay.fwd_flops for lay in layers], dtype=float)
    return float(recompute_times(layers, fwd, recompute).sum())


def predict_dp(opts: DPOptions, cost_model_factory=None, overhead_s: float = 0.0
               ) -> DPPrediction:
    """Simulate synchronous data parallelism for ``opts`` and return the prediction.

    ``cost_model_factory(device_names, profile_rows) -> {name: model}`` (default
    :func:`cost_models`: roofline at the default efficiency); ``overhead_s``: seconds per
    iteration outside the kernels (the calibration's framework overhead)."""
    import simpy

    from ddlsim.sim.collectives import collective
    from ddlsim.sim.network import Network
    from ddlsim.sim.sync_dp import NoiseSpec, SyncDPConfig, simulate_sync_dp, step_cost
    from ddlsim.sim.workloads import get_workload

    workload = get_workload(opts.model, opts.batch_per_gpu, **dict(opts.model_overrides))
    if opts.lora is not None:  # adapters trained, the base frozen (sim.workloads.lora)
        from ddlsim.sim.workloads import apply_lora

        workload = apply_lora(workload, opts.lora)
    cluster = cluster_for(opts.cluster, opts.gpus, opts.calibrated, opts.slow_links,
                           opts.cluster_overrides)
    models = (cost_model_factory or cost_models)(cluster.devices, profile_rows(opts.profile))
    paths: dict[str, int] = {}
    costs_by_device = {name: step_cost(workload, counting_estimator(model, paths), opts.dtype,
                                       opts.grad_dtype, opts.recompute)
                       for name, model in models.items()}
    from dataclasses import replace

    shards = opts.gpus if opts.zero else 1  # ZeRO: each GPU steps its optimizer shard
    if overhead_s or shards > 1:
        costs_by_device = {k: replace(c, update_s=c.update_s / shards + overhead_s)
                           for k, c in costs_by_device.items()}
    costs = [costs_by_device[name] for name in cluster.devices]

    import math

    # Bytes copied to the GPU per sample: token ids are int64 (PyTorch's torch.long, the
    # dtype nn.Embedding takes); images arrive as float32 tensors.
    elem = 8.0 if workload.tokens_per_sample > 1 else 4.0
    input_bytes = float(math.prod(workload.input_shape)) * elem
    bucket_bytes = opts.bucket_MB * units.MB
    pcie = min(models[n].device.pcie_bw_bytes_per_s for n in models)
    weight_ratio = units.dtype_bytes(opts.dtype) / units.dtype_bytes(opts.grad_dtype
                                                                    or opts.dtype)
    if opts.zero == 3 and workload.frozen_param_count and workload.param_count:
        weight_ratio *= 1 + workload.frozen_param_count / workload.param_count  # LoRA base
    cfg = SyncDPConfig(
        iterations=opts.iterations, batch_per_gpu=opts.batch_per_gpu,
        bucket_bytes=bucket_bytes, overlap=opts.overlap,
        h2d_bytes_per_sample=input_bytes if pcie > 0 else 0.0,
        h2d_bw_bytes_per_s=pcie if pcie > 0 else 1.0,
        loader_samples_per_s=opts.loader_samples_per_s,
        noise=NoiseSpec(opts.noise, opts.noise_cv), slow_gpus=dict(opts.slow_gpus),
        trace_iterations=opts.trace_iterations, trace_ranks=opts.trace_ranks,
        zero=opts.zero, gather_bytes=float(costs[0].bwd_grad_bytes.sum()) * weight_ratio,
    )
    algo = opts.algo
    if algo == "auto":
        algo = "hierarchical" if cluster.nodes > 1 and cluster.gpus_per_node > 1 else "ring"
    env = simpy.Environment()
    net = Network(env, cluster)
    ranks = tuple(range(cluster.num_gpus))

    def allreduce(env, nbytes):
        if len(ranks) > 1 and opts.zero == 0:
            yield from collective(env, net, "allreduce", ranks, nbytes, algo)
        elif len(ranks) > 1:  # ZeRO-3: the backward's weight gather, then the gradients
            if opts.zero == 3:
                yield from collective(env, net, "all_gather", ranks, nbytes * weight_ratio)
            yield from collective(env, net, "reduce_scatter", ranks, nbytes)

    def gather(env, nbytes):
        if len(ranks) > 1:
            yield from collective(env, net, "all_gather", ranks, nbytes)

    result = simulate_sync_dp(costs, allreduce, cfg, seed=opts.seed, env=env,
                              max_events=opts.max_events, gather=gather)

    def no_comm(env, nbytes):
        return (yield env.timeout(0))

    single_cfg = SyncDPConfig(
        iterations=min(opts.iterations, 3), batch_per_gpu=opts.batch_per_gpu,
        bucket_bytes=cfg.bucket_bytes, h2d_bytes_per_sample=cfg.h2d_bytes_per_sample,
        h2d_bw_bytes_per_s=cfg.h2d_bw_bytes_per_s, loader_samples_per_s=opts.loader_samples_per_s)
    fastest = min(costs_by_device.values(), key=lambda c: c.compute_s)
    if shards > 1:  # one GPU steps the whole optimizer
        fastest = replace(fastest, update_s=(fastest.update_s - overhead_s) * shards
                          + overhead_s)
    single = simulate_sync_dp([fastest], no_comm, single_cfg)
    return DPPrediction(options=opts, cluster=cluster, result=result,
                        single_gpu_samples_per_s=single.samples_per_s, cost_paths=paths,
                        link_stats=net.link_stats(), algo=algo, backward_s=fastest.bwd_total_s,
                        recompute_flops=recompute_flops(workload, opts.recompute))
