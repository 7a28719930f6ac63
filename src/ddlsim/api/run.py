"""Scenario runs: what ``ddlsim run`` calls.

A scenario is resolved into one options object per strategy *before* anything is
simulated, so a bad name or an impossible cluster fails at once with the file named.
Strategies that apply weight updates (allreduce, parameter servers) can then be replayed
on real data (the scenario's ``convergence`` section) for time-to-accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ddlsim.api.predict import Prediction, predict
from ddlsim.errors import ConfigError
from ddlsim.job import Batch, Cluster, Job, Parallelism, Precision, Strategy, Workload


@dataclass(frozen=True)
class RunOptions:
    """Command-line overrides of ``ddlsim run``."""

    seed: int | None = None
    profile: str | None = None
    progress: bool = False
    max_events: int | None = None  # None: the simulators' default budget
    calibration: object = None  # as for ddlsim.api.predict; None: the scenario's


@dataclass
class StrategyResult:
    """One strategy's prediction, and its convergence replay when the scenario asks."""

    name: str
    kind: str
    predicted: Prediction  # the headline numbers; .detail is the engine's prediction
    convergence: object | None = None  # ConvergencePrediction
    time_to_train: object | None = None  # TimeToTrain, or the one-line reason there is none
    lr_sweep: list | None = None  # ReplayResults of the learning-rate sweep
    goodput: object | None = None  # GoodputResult, when the scenario has faults.failures

    @property
    def prediction(self):
        """The engine's prediction (DP, PS or pipeline), for the per-strategy reports."""
        return self.predicted.detail

    @property
    def update_log(self):
        return getattr(self.prediction.result, "update_log", None)

    def summary(self) -> dict:
        p = self.predicted
        row = {"strategy": self.name, "kind": self.kind, **self.prediction.summary()}
        row.pop("model", None)
        row.update(gpus=p.gpus, device=p.device, dtype=p.dtype, iteration_s=p.iteration_s,
                   samples_per_s=p.samples_per_s, mfu=p.mfu,
                   tokens_per_s=p.tokens_per_s if p.tokens_per_sample > 1 else float("nan"),
                   memory_bytes=p.memory_bytes, fits=p.fits, calibration=p.calibration.label)
        if self.convergence is not None:
            c = self.convergence.summary()
            row.update({"convergence_outcome": c.get("outcome"),
                        "final_test_acc": c["final_test_acc"], "updates": c["updates"],
                        "time_to_target_s": c["time_to_target_s"]})
            row.update({k: v for k, v in c.items() if k.startswith("tta_")})
        if self.time_to_train is not None:
            row.update(benchmark_columns(self.time_to_train, p.device, p.gpus))
        if self.goodput is not None:  # faults.failures: goodput under failures
            from ddlsim.api.faults import goodput_columns

            row.update(goodput_columns(self.goodput))
            row.update(_cost(p.device, p.gpus, row["time_to_train_s"]))
        return row


def benchmark_columns(ttt, device: str, gpus: int) -> dict:
    """``benchmark_*`` columns of a strategy: MLPerf steps to the target, train and
    evaluation seconds, total and cost; or ``benchmark_note``, why there is no time."""
    if isinstance(ttt, str):
        return {"benchmark_note": ttt}
    cost = _cost(device, gpus, ttt.total_s)
    return {"benchmark": ttt.benchmark, "benchmark_steps": ttt.steps,
            "benchmark_train_s": ttt.train_s, "benchmark_eval_s": ttt.eval_s,
            "benchmark_time_to_train_s": ttt.total_s,
            "benchmark_cost_usd": cost["cost_usd"],
            "benchmark_note": "" if ttt.in_range else "global batch outside the RCP range"}


def _benchmark_time(sc, job, kind: str, calib, result):
    """The strategy's time to the benchmark's target, or why there is none (one line)."""
    from ddlsim.api.time_to_train import time_to_train

    if kind != "allreduce":
        return (f"{kind}: MLCommons' convergence points are synchronous SGD's; the "
                f"replay shows what this schedule does to the updates to the target")
    try:
        return time_to_train(job, None if sc.benchmark == "auto" else sc.benchmark, calib,
                             prediction=result.predicted)
    except ConfigError as exc:
        return str(exc)


def _cost(device: str, gpus: int, seconds: float) -> dict:
    """``cost_usd`` of ``gpus`` x ``device`` for ``seconds`` at the packaged price table's
    rate (its ``usd_per_gpu_hour`` and source), or the reason there is none."""
    from ddlsim.api.prices import load_prices

    price = load_prices().get(device)
    if price is None:
        return {"cost_usd": float("nan"), "price_source": f"no price row for {device}"}
    return {"cost_usd": seconds / 3600 * gpus * float(price["usd_per_gpu_hour"]),
            "price_source": f"{price['usd_per_gpu_hour']} USD per GPU-hour, "
                            f"{price['instance']} ({price['source']}, {price['date']})"}


@dataclass
class ScenarioRun:
    """The scenario, its label (file or built-in name) and one result per strategy."""

    scenario: object
    label: str
    results: list[StrategyResult] = field(default_factory=list)
    profile_csv: str | None = None  # the kernel profile used, copied into the report

    @property
    def strategies(self) -> list[str]:
        return [r.name for r in self.results]

    def summary(self):
        import pandas as pd

        return pd.DataFrame([r.summary() for r in self.results])


def scenario_cluster(sc) -> Cluster:
    """The scenario's cluster as a job :class:`~ddlsim.job.Cluster` (units converted
    once, here)."""
    from ddlsim import units

    c = sc.cluster
    scale = lambda v, k: None if v is None else v * k  # noqa: E731
    return Cluster(preset=c.preset, gpus=c.gpus, device=c.device,
                   gpus_per_node=c.gpus_per_node, nics_per_node=c.nics_per_node,
                   nic_bw_Bps=scale(c.nic_bandwidth_Gbps, units.Gbps),
                   nic_latency_s=scale(c.nic_latency_us, 1e-6),
                   intra_bw_Bps=scale(c.intra_bandwidth_GBps, units.GBps),
                   intra_latency_s=scale(c.intra_latency_us, 1e-6),
                   slow_links=tuple(sorted(sc.faults.slow_links.items())),
                   nccl_calibrated=c.calibrated)


def _unsupported(sc, kind: str) -> None:
    """Scenario settings a strategy kind does not model are errors, not silently dropped."""
    used = {
        "noise": sc.noise.distribution != "none" and sc.noise.cv > 0,
        "faults.slow_gpus": bool(sc.faults.slow_gpus),
        "faults.slow_links": bool(sc.faults.slow_links),
        "faults.loader_samples_per_s": sc.faults.loader_samples_per_s is not None,
    }
    modelled = {"allreduce": set(used), "ps": {"noise", "faults.slow_gpus"},
                "pipeline": set()}[kind]
    for key, on in used.items():
        if on and key not in modelled:
            raise ConfigError(f"{key}: not modelled for {kind} strategies; remove it or run "
                              "that strategy in a scenario of its own")


def strategy_job(sc, strategy, opts: RunOptions = RunOptions()) -> Job:
    """One scenario strategy as a :class:`~ddlsim.job.Job` (what :func:`predict` runs)."""
    wl = sc.workload
    common = dict(
        workload=Workload(wl.model, lora_rank=wl.lora_rank, lora_dropout=wl.lora_dropout,
                          lora_targets=None if wl.lora_targets is None
                          else tuple(wl.lora_targets)),
        precision=Precision(wl.dtype, wl.grad_dtype, wl.fp8),
        iterations=sc.iterations, seed=sc.seed if opts.seed is None else opts.seed,
        noise=sc.noise.distribution, noise_cv=sc.noise.cv,
        slow_gpus=tuple(sorted(sc.faults.slow_gpus.items())),
        profile=opts.profile or sc.profile)
    cluster = scenario_cluster(sc)
    if strategy.kind == "allreduce":
        return Job(cluster=cluster, batch=Batch(micro=wl.batch_per_gpu),
                   strategy=Strategy(kind="allreduce", algo=strategy.algo,
                                     bucket_bytes=strategy.bucket_MB * 1e6,
                                     overlap=strategy.overlap),
                   loader_samples_per_s=sc.faults.loader_samples_per_s, **common)
    if strategy.kind == "ps":
        gpus = sc.cluster.gpus
        updates = strategy.updates or sc.iterations * (
            gpus if strategy.mode in ("asp", "ssp") else 1)
        return Job(cluster=cluster, batch=Batch(micro=wl.batch_per_gpu), strategy=Strategy(
            kind="ps", ps_mode=strategy.mode, updates=updates,
            staleness_bound=strategy.staleness_bound, backup_workers=strategy.backup_workers,
            shards=strategy.shards, ps_placement=strategy.placement,
            server_nic_bw_Bps=None if strategy.server_nic_Gbps is None
            else strategy.server_nic_Gbps * 1e9 / 8), **common)
    from dataclasses import replace

    par = Parallelism(tp=strategy.tp, pp=strategy.stages, dp=strategy.dp,
                      recompute=strategy.recompute, schedule=strategy.schedule,
                      sequence_parallel=strategy.sequence_parallel,
                      tp_comm_overlap=strategy.tp_comm_overlap,
                      overlap_grad_reduce=strategy.overlap_grad_reduce,
                      placement=strategy.placement, balance=tuple(strategy.balance))
    dp = strategy.dp or max(1, sc.cluster.gpus // (strategy.tp * strategy.stages))
    batch = Batch(global_batch=strategy.micro_batch * strategy.micro_batches * dp,
                  micro=strategy.micro_batch)
    return Job(cluster=replace(cluster, stage_devices=tuple(strategy.devices)),
               parallelism=par, batch=batch, strategy=Strategy(kind="pipeline"),
               optimizer=strategy.optimizer, **{**common, "iterations": 1})


def resolve(scenario, label: str, opts: RunOptions = RunOptions()) -> list[tuple[str, str, Job]]:
    """Turn a validated scenario into ``(strategy label, kind, job)`` triples, checking
    every name, the cluster shape, the batch split and the precision before anything is
    simulated; errors name the file and the strategy."""
    from ddlsim.api.dp import cluster_for
    from ddlsim.api.predict import cluster_overrides, resolve_precision

    sc = scenario
    out = []
    if sc.benchmark not in (None, "auto"):
        from ddlsim.convergence.rcp import load_benchmark

        try:
            load_benchmark(sc.benchmark)
        except ConfigError as exc:
            raise ConfigError(f"{label}: {exc}") from None
    for i, strategy in enumerate(sc.strategies):
        try:
            _unsupported(sc, strategy.kind)
            job = strategy_job(sc, strategy, opts)
            resolve_precision(job)
            job.resolve_batch()
            if strategy.kind == "allreduce":
                c = job.cluster
                cluster_for(c.preset, c.gpus, c.nccl_calibrated, c.slow_links,
                            cluster_overrides(job))
            for rank, _ in job.slow_gpus:
                if rank >= job.cluster.gpus:
                    raise ConfigError(f"faults.slow_gpus: rank must be < {job.cluster.gpus} "
                                      f"GPUs, got {rank}")
        except ConfigError as exc:
            raise ConfigError(f"{label}: strategies.{i} ({strategy.label}): {exc}") from None
        out.append((strategy.label, strategy.kind, job))
    return out


def _replay(sc, result: StrategyResult, seed: int, with_sweep: bool,
            progress: bool = False) -> None:
    from ddlsim.api.convergence import ReplayOptions, lr_sweep_prediction, replay_prediction

    conv = sc.convergence
    batch = sc.workload.batch_per_gpu if conv.proxy is None else conv.proxy_batch
    ropts = ReplayOptions(model=conv.proxy or sc.workload.model, batch_per_worker=batch,
                          workers=sc.cluster.gpus, epochs=conv.epochs, lr=conv.lr,
                          lr_policy=conv.lr_policy, momentum=conv.momentum,
                          staleness_aware=conv.staleness_aware,
                          target_accuracy=conv.target_accuracy, seed=seed,
                          seeds=tuple(conv.seeds), reference_batch=batch,
                          progress=progress)
    result.convergence = replay_prediction(result.update_log, ropts)
    if with_sweep and conv.lrs:
        from dataclasses import replace

        result.lr_sweep = lr_sweep_prediction(result.update_log, replace(ropts, seeds=()),
                                              conv.lrs)


def run_scenario(scenario, label: str, opts: RunOptions = RunOptions()) -> ScenarioRun:
    """Simulate every strategy of ``scenario`` (all resolved first), then replay the
    update logs on real data when the scenario has a ``convergence`` section."""
    from tqdm.auto import tqdm

    from ddlsim.api.calibration import load_calibration
    from ddlsim.api.faults import predict_goodput, scenario_fault_options

    plan = resolve(scenario, label, opts)
    calib = load_calibration(opts.calibration if opts.calibration is not None
                             else scenario.calibration)
    run = ScenarioRun(scenario=scenario, label=label)
    seed = scenario.seed if opts.seed is None else opts.seed
    try:
        fault_opts = scenario_fault_options(scenario, seed)
    except ConfigError as exc:
        raise ConfigError(f"{label}: faults.failures: {exc}") from None
    first_replay = True
    trace = ((scenario.iterations - 1,), (0, 1)) if scenario.outputs.trace else None
    for name, kind, job in tqdm(plan, desc=f"simulating {scenario.name}", unit="strategy",
                                disable=not opts.progress, leave=False):
        result = StrategyResult(name, kind, predict(job, calib, max_events=opts.max_events,
                                                    trace=trace if kind == "allreduce"
                                                    else None))
        if fault_opts is not None:
            result.goodput = predict_goodput(result, fault_opts)
        if scenario.convergence is not None and kind in ("allreduce", "ps"):
            _replay(scenario, result, seed, with_sweep=first_replay, progress=opts.progress)
            first_replay = False
        if scenario.benchmark is not None:
            result.time_to_train = _benchmark_time(scenario, job, kind, calib, result)
        run.results.append(result)
    return run
