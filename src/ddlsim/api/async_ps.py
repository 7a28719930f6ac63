"""The parameter-server engine (ASP, SSP, BSP, backup workers) that
:func:`ddlsim.api.predict` drives for ``strategy.kind = "ps"`` jobs.

Network note: PS traffic (ps-lite / gRPC over TCP) is not NCCL, so the PS clusters use the
presets' line rates, not :func:`ddlsim.sim.collectives.nccl_calibrated`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ddlsim.errors import ConfigError
from ddlsim.sim.budget import DEFAULT_MAX_EVENTS

PLACEMENTS = ("colocated", "hosts")


@dataclass(frozen=True)
class PSOptions:
    """Options of a parameter-server prediction (``ddlsim ps``).

    ``workers``: worker GPUs (filled into nodes as for ``ddlsim dp``); ``mode``: ``asp``,
    ``ssp``, ``bsp`` or ``backup``; ``updates``: model-level updates simulated (async: one
    per gradient; sync: one per iteration); ``shards``: server shards (parameters split by
    bytes into contiguous layer ranges); ``placement``: ``colocated`` (shards on worker
    GPUs, spread over nodes, updates on the GPU) or ``hosts`` (``server_hosts`` extra nodes,
    default one per shard, updates on ``server_device``); ``server_nic_Gbps``: NIC line rate
    of a server host (default: the preset's); ``server_concurrency``: transfers a shard
    serves at once per direction (0: no limit, max-min fair sharing as TCP; 1: FIFO, fastest
    to simulate, see :mod:`ddlsim.sim.async_ps`); ``overlap``: push each shard as soon as
    backward produced its gradients and start each shard's forward once its pull arrived
    (False: pull all, compute, push all); ``slow_workers``: (worker, time factor) pairs.
    """

    model: str = "resnet50"
    batch_per_worker: int = 32
    cluster: str = "dgx-a100"
    workers: int = 8
    dtype: str = "float32"
    grad_dtype: str | None = None
    mode: str = "asp"
    updates: int = 200
    staleness_bound: int = 3
    backup_workers: int = 1
    shards: int = 1
    placement: str = "colocated"
    server_hosts: int | None = None
    server_device: str = "cpu-generic"
    server_nic_Gbps: float | None = None
    server_concurrency: int = 0
    overlap: bool = False
    noise: str = "none"
    noise_cv: float = 0.0
    slow_workers: tuple[tuple[int, float], ...] = ()
    profile: str | None = None
    seed: int = 0
    max_events: int = DEFAULT_MAX_EVENTS
    cluster_overrides: tuple[tuple[str, float], ...] = ()  # ClusterSpec fields, SI units

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed: must be in [0, 2**32), got {self.seed}")
        for name in ("workers", "batch_per_worker", "updates", "shards"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: must be an integer >= 1, got {value!r}")
        if self.placement not in PLACEMENTS:
            raise ConfigError(f"placement: must be one of {', '.join(PLACEMENTS)}, "
                              f"got {self.placement!r}")
        if self.server_hosts is not None and self.server_hosts < 1:
            raise ConfigError(f"server_hosts: must be >= 1, got {self.server_hosts!r}")
        if self.server_nic_Gbps is not None and not self.server_nic_Gbps > 0:
            raise ConfigError(f"server_nic_Gbps: must be > 0, got {self.server_nic_Gbps!r}")
        self.ps_config()  # validates mode, bounds and factors

    def ps_config(self, updates: int | None = None):
        """The simulator's :class:`~ddlsim.sim.async_ps.PSConfig` for these options."""
        from ddlsim.sim.async_ps import PSConfig
        from ddlsim.sim.sync_dp import NoiseSpec

        return PSConfig(mode=self.mode, updates=updates or self.updates,
                        batch_per_worker=self.batch_per_worker,
                        staleness_bound=self.staleness_bound,
                        backup_workers=self.backup_workers if self.mode == "backup" else 0,
                        noise=NoiseSpec(self.noise, self.noise_cv),
                        slow_workers=dict(self.slow_workers),
                        server_concurrency=self.server_concurrency, overlap=self.overlap)


@dataclass
class PSPrediction:
    """A parameter-server run and what it is compared with."""

    options: PSOptions
    cluster: object  # ClusterSpec
    result: object  # PSResult
    shards: list  # sim.async_ps.Shard
    compute_only_samples_per_s: float  # one worker, fwd + bwd only, no communication
    cost_paths: dict

    def summary(self) -> dict:
        """One flat record of the headline numbers (SI units)."""
        import numpy as np

        r = self.result
        st = r.staleness_stats()
        util = [rec["utilization"] for rec in r.server_links if rec["kind"].startswith("nic")]
        util = util or [rec["utilization"] for rec in r.server_links]
        return {
            "strategy": f"ps-{r.mode}", "model": self.options.model,
            "cluster": self.options.cluster, "workers": r.num_workers, "shards": r.num_shards,
            "placement": self.options.placement, "updates": r.num_updates,
            "makespan_s": r.makespan_s, "samples_per_s": r.samples_per_s,
            "updates_per_s": r.updates_per_s,
            "ideal_samples_per_s": r.num_workers * self.compute_only_samples_per_s,
            "staleness_mean": st["mean"], "staleness_p50": st["p50"],
            "staleness_p99": st["p99"], "staleness_max": st["max"],
            "dropped_grads": int(r.grads_dropped.sum()),
            "worker_util_mean": float(np.mean(r.worker_utilization)),
            "worker_util_min": float(np.min(r.worker_utilization)),
            "server_link_util_max": float(max(util)) if util else 0.0,
        }


# --------------------------------------------------------------------------- building
def _worker_cluster(opts: PSOptions):
    from ddlsim.api.dp import cluster_for

    return cluster_for(opts.cluster, opts.workers, calibrated=False,
                       overrides=opts.cluster_overrides)


def _build_cluster(opts: PSOptions):
    """Cluster, worker GPU indices and shard endpoints for ``opts``."""
    from ddlsim.sim.topology import make_cluster

    base = _worker_cluster(opts)
    gpn, nodes = base.gpus_per_node, base.nodes
    workers = list(range(opts.workers))
    if opts.placement == "colocated":
        endpoints = [(j % nodes) * gpn + (j // nodes) % gpn for j in range(opts.shards)]
        return base, workers, endpoints
    hosts = opts.server_hosts or opts.shards
    devices = tuple(base.devices) + (opts.server_device,) * (hosts * gpn)
    overrides = {}
    extra = dict(opts.cluster_overrides)
    probe = make_cluster(opts.cluster, nodes + hosts, gpus_per_node=gpn, devices=devices,
                         **extra)
    endpoints_h = [(nodes + h) * gpn for h in range(hosts)]
    if opts.server_nic_Gbps is not None:
        bw = opts.server_nic_Gbps * 1e9 / 8.0
        for ep in endpoints_h:
            nic = probe.nic_of(ep)
            overrides.update({f"nic{nic}.tx": bw, f"nic{nic}.rx": bw})
    cluster = make_cluster(opts.cluster, nodes + hosts, gpus_per_node=gpn, devices=devices,
                           link_overrides=overrides, **extra)
    return cluster, workers, [endpoints_h[j % hosts] for j in range(opts.shards)]


def _costs(opts: PSOptions, cluster, endpoints, cost_model_factory=None):
    from ddlsim.api.dp import cost_models, profile_rows
    from ddlsim.sim.async_ps import plan_shards, shard_costs
    from ddlsim.sim.sync_dp import step_cost
    from ddlsim.sim.workloads import get_workload
    from ddlsim.units import dtype_bytes

    workload = get_workload(opts.model, opts.batch_per_worker)
    worker_devs = [cluster.devices[g] for g in range(opts.workers)]
    server_devs = [cluster.devices[e] for e in endpoints]
    models = (cost_model_factory or cost_models)(worker_devs + server_devs,
                                                 profile_rows(opts.profile))
    paths: dict[str, int] = {}

    def estimator(model):
        def estimate(kc, dtype):
            est = model.estimate(kc, dtype)
            paths[est.path] = paths.get(est.path, 0) + 1
            return est.seconds
        return estimate

    by_dev = {d: step_cost(workload, estimator(models[d]), opts.dtype, opts.grad_dtype)
              for d in dict.fromkeys(worker_devs)}
    ref = by_dev[worker_devs[0]]
    grad_dtype = opts.grad_dtype or opts.dtype
    shards = plan_shards(ref.bwd_grad_bytes[::-1], opts.shards, dtype_bytes(grad_dtype),
                         endpoints)
    priced = []
    for s in shards:
        dev = cluster.devices[s.endpoint]
        upd_dtype = grad_dtype if grad_dtype in models[dev].device.peak_flops_per_s else "float32"
        priced.append(shard_costs([s], estimator(models[dev]), upd_dtype)[0])
    return [by_dev[d] for d in worker_devs], priced, paths


def predict_ps(opts: PSOptions, cost_model_factory=None) -> PSPrediction:
    """Simulate a parameter-server job for ``opts`` and return the prediction
    (``cost_model_factory``: as for :func:`ddlsim.api.dp.predict_dp`)."""
    import simpy

    from ddlsim.sim.async_ps import simulate_ps
    from ddlsim.sim.network import Network

    cluster, workers, endpoints = _build_cluster(opts)
    costs, shards, paths = _costs(opts, cluster, endpoints, cost_model_factory)
    if opts.mode == "backup" and not opts.backup_workers < opts.workers:
        raise ConfigError(f"backup_workers: must be < workers ({opts.workers}), "
                          f"got {opts.backup_workers}")
    net = Network(simpy.Environment(), cluster)
    result = simulate_ps(net, costs, workers, shards, opts.ps_config(), seed=opts.seed,
                         max_events=opts.max_events)
    fastest = min(c.fwd_total_s + c.bwd_total_s for c in costs)
    return PSPrediction(options=opts, cluster=cluster, result=result, shards=shards,
                        compute_only_samples_per_s=opts.batch_per_worker / fastest,
                        cost_paths=paths)
