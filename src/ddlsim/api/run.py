"""Scenario runs: what ``ddlsim run`` calls.

A scenario is resolved into one options object per strategy *before* anything is
simulated, so a bad name or an impossible cluster fails at once with the file named.
Strategies that apply weight updates (allreduce, parameter servers) can then be replayed
on real data (the scenario's ``convergence`` section) for time-to-accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ddlsim.api.dp import DPOptions, _cluster_for, predict_dp
from ddlsim.errors import ConfigError


@dataclass(frozen=True)
class RunOptions:
    """Command-line overrides of ``ddlsim run``."""

    seed: int | None = None
    profile: str | None = None
    progress: bool = False
    max_events: int | None = None  # None: the simulators' default budget


@dataclass
class StrategyResult:
    """One strategy's prediction, and its convergence replay when the scenario asks."""

    name: str
    kind: str
    prediction: object
    convergence: object | None = None  # ConvergencePrediction
    lr_sweep: list | None = None  # ReplayResults of the learning-rate sweep
    goodput: object | None = None  # GoodputResult, when the scenario has faults.failures

    @property
    def update_log(self):
        return getattr(self.prediction.result, "update_log", None)

    def summary(self) -> dict:
        row = {"strategy": self.name, "kind": self.kind, **self.prediction.summary()}
        row.pop("model", None)
        if "workers" in row and "gpus" not in row:
            row["gpus"] = row["workers"]
        if self.convergence is not None:
            c = self.convergence.summary()
            row.update({"final_test_acc": c["final_test_acc"], "updates": c["updates"],
                        "time_to_target_s": c["time_to_target_s"]})
            row.update({k: v for k, v in c.items() if k.startswith("tta_")})
        if self.goodput is not None:  # faults.failures: goodput under failures
            from ddlsim.api.faults import goodput_columns

            row.update(goodput_columns(self.goodput))
        return row


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


def _budget(opts: RunOptions) -> dict:
    return {} if opts.max_events is None else {"max_events": opts.max_events}


def _cluster_overrides(sc) -> tuple[tuple[str, float], ...]:
    """The scenario's cluster keys (units in the names) as ClusterSpec fields in SI."""
    from ddlsim import units

    out = []
    if sc.cluster.nic_bandwidth_Gbps is not None:
        out.append(("nic_bw_Bps", sc.cluster.nic_bandwidth_Gbps * units.Gbps))
    if sc.cluster.intra_bandwidth_GBps is not None:
        out.append(("intra_bw_Bps", sc.cluster.intra_bandwidth_GBps * units.GBps))
    return tuple(out)


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


def _dp_options(sc, strategy, opts: RunOptions) -> DPOptions:
    return DPOptions(
        model=sc.workload.model, batch_per_gpu=sc.workload.batch_per_gpu,
        cluster=sc.cluster.preset, gpus=sc.cluster.gpus, dtype=sc.workload.dtype,
        grad_dtype=sc.workload.grad_dtype, iterations=sc.iterations, algo=strategy.algo,
        bucket_MB=strategy.bucket_MB, overlap=strategy.overlap,
        noise=sc.noise.distribution, noise_cv=sc.noise.cv,
        slow_gpus=tuple(sorted(sc.faults.slow_gpus.items())),
        slow_links=tuple(sorted(sc.faults.slow_links.items())),
        loader_samples_per_s=sc.faults.loader_samples_per_s,
        profile=opts.profile or sc.profile, calibrated=sc.cluster.calibrated,
        seed=sc.seed if opts.seed is None else opts.seed,
        trace_iterations=(sc.iterations - 1,) if sc.outputs.trace else (),
        cluster_overrides=_cluster_overrides(sc), **_budget(opts))


def _ps_options(sc, strategy, opts: RunOptions):
    from ddlsim.api.async_ps import PSOptions

    gpus = sc.cluster.gpus
    updates = strategy.updates or sc.iterations * (gpus if strategy.mode in ("asp", "ssp")
                                                   else 1)
    return PSOptions(
        model=sc.workload.model, batch_per_worker=sc.workload.batch_per_gpu,
        cluster=sc.cluster.preset, workers=gpus, dtype=sc.workload.dtype,
        grad_dtype=sc.workload.grad_dtype, mode=strategy.mode, updates=updates,
        staleness_bound=strategy.staleness_bound, backup_workers=strategy.backup_workers,
        shards=strategy.shards, placement=strategy.placement,
        server_nic_Gbps=strategy.server_nic_Gbps, noise=sc.noise.distribution,
        noise_cv=sc.noise.cv, slow_workers=tuple(sorted(sc.faults.slow_gpus.items())),
        profile=opts.profile or sc.profile, seed=sc.seed if opts.seed is None else opts.seed,
        cluster_overrides=_cluster_overrides(sc), **_budget(opts))


def _pipeline_options(sc, strategy, opts: RunOptions):
    from ddlsim.api.pipeline import PipelineOptions

    return PipelineOptions(
        model=sc.workload.model, micro_batch=strategy.micro_batch,
        micro_batches=strategy.micro_batches, schedule=strategy.schedule,
        stages=strategy.stages, tp=strategy.tp, dp=strategy.dp, cluster=sc.cluster.preset,
        devices=tuple(strategy.devices), placement=strategy.placement,
        balance=tuple(strategy.balance), dtype=sc.workload.dtype,
        grad_dtype=sc.workload.grad_dtype, optimizer=strategy.optimizer,
        recompute=strategy.recompute, sequence_parallel=strategy.sequence_parallel,
        iterations=min(sc.iterations, 3), profile=opts.profile or sc.profile,
        calibrated=sc.cluster.calibrated, cluster_overrides=_cluster_overrides(sc),
        **_budget(opts))


def resolve(scenario, label: str, opts: RunOptions = RunOptions()) -> list[tuple[str, str, object]]:
    """Turn a validated scenario into ``(strategy label, kind, options)`` triples, checking
    every name and the cluster shape; errors name the file and the strategy."""
    sc = scenario
    out = []
    for i, strategy in enumerate(sc.strategies):
        try:
            _unsupported(sc, strategy.kind)
            if strategy.kind == "allreduce":
                o = _dp_options(sc, strategy, opts)
                _cluster_for(o.cluster, o.gpus, o.calibrated, o.slow_links)
                for rank, _ in o.slow_gpus:
                    if rank >= o.gpus:
                        raise ConfigError(f"faults.slow_gpus: rank must be < {o.gpus} GPUs, "
                                          f"got {rank}")
            elif strategy.kind == "ps":
                o = _ps_options(sc, strategy, opts)
            else:
                o = _pipeline_options(sc, strategy, opts)
        except ConfigError as exc:
            raise ConfigError(f"{label}: strategies.{i} ({strategy.label}): {exc}") from None
        out.append((strategy.label, strategy.kind, o))
    return out


def _predict(kind: str, options):
    if kind == "allreduce":
        return predict_dp(options)
    if kind == "ps":
        from ddlsim.api.async_ps import predict_ps

        return predict_ps(options)
    from ddlsim.api.pipeline import predict_pipeline

    return predict_pipeline(options)


def _replay(sc, result: StrategyResult, seed: int, with_sweep: bool,
            progress: bool = False) -> None:
    from ddlsim.api.convergence import ReplayOptions, lr_sweep_prediction, replay_prediction

    conv = sc.convergence
    ropts = ReplayOptions(model=sc.workload.model, batch_per_worker=sc.workload.batch_per_gpu,
                          workers=sc.cluster.gpus, epochs=conv.epochs, lr=conv.lr,
                          lr_policy=conv.lr_policy, momentum=conv.momentum,
                          staleness_aware=conv.staleness_aware,
                          target_accuracy=conv.target_accuracy, seed=seed,
                          seeds=tuple(conv.seeds), reference_batch=sc.workload.batch_per_gpu,
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

    from ddlsim.api.faults import predict_goodput, scenario_fault_options

    plan = resolve(scenario, label, opts)
    run = ScenarioRun(scenario=scenario, label=label)
    seed = scenario.seed if opts.seed is None else opts.seed
    try:
        fault_opts = scenario_fault_options(scenario, seed)
    except ConfigError as exc:
        raise ConfigError(f"{label}: faults.failures: {exc}") from None
    first_replay = True
    for name, kind, options in tqdm(plan, desc=f"simulating {scenario.name}", unit="strategy",
                                    disable=not opts.progress, leave=False):
        result = StrategyResult(name, kind, _predict(kind, options))
        if fault_opts is not None:
            result.goodput = predict_goodput(result, fault_opts)
        if scenario.convergence is not None and kind in ("allreduce", "ps"):
            _replay(scenario, result, seed, with_sweep=first_replay, progress=opts.progress)
            first_replay = False
        run.results.append(result)
    return run
