"""Scenario runs: what ``ddlsim run`` calls.

A scenario is resolved into one options object per strategy *before* anything is
simulated, so a bad name or an impossible cluster fails at once with the file named.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ddlsim.api.dp import DPOptions, DPPrediction, _cluster_for, predict_dp
from ddlsim.errors import ConfigError


@dataclass(frozen=True)
class RunOptions:
    """Command-line overrides of ``ddlsim run``."""

    seed: int | None = None
    profile: str | None = None
    progress: bool = False


@dataclass
class ScenarioRun:
    """The scenario, its label (file or built-in name) and one prediction per strategy."""

    scenario: object
    label: str
    strategies: list[str]
    predictions: list[DPPrediction] = field(default_factory=list)

    def summary(self):
        import pandas as pd

        rows = []
        for name, pred in zip(self.strategies, self.predictions, strict=True):
            rows.append({"strategy": name, **pred.summary()})
        return pd.DataFrame(rows)


def resolve(scenario, label: str, opts: RunOptions = RunOptions()) -> list[tuple[str, DPOptions]]:
    """Turn a validated scenario into ``(strategy label, options)`` pairs, checking every
    name and the cluster shape; errors name the file."""
    sc = scenario
    out = []
    for i, strategy in enumerate(sc.strategies):
        try:
            dp = DPOptions(
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
            )
            _cluster_for(dp.cluster, dp.gpus, dp.calibrated, dp.slow_links)
            for rank, _ in dp.slow_gpus:
                if rank >= dp.gpus:
                    raise ConfigError(f"faults.slow_gpus: rank must be < {dp.gpus} GPUs, "
                                      f"got {rank}")
        except ConfigError as exc:
            raise ConfigError(f"{label}: strategies.{i} ({strategy.label}): {exc}") from None
        out.append((strategy.label, dp))
    return out


def run_scenario(scenario, label: str, opts: RunOptions = RunOptions()) -> ScenarioRun:
    """Simulate every strategy of ``scenario`` (all resolved first)."""
    from tqdm.auto import tqdm

    plan = resolve(scenario, label, opts)
    run = ScenarioRun(scenario=scenario, label=label, strategies=[name for name, _ in plan])
    for _name, dp in tqdm(plan, desc=f"simulating {scenario.name}", unit="strategy",
                          disable=not opts.progress, leave=False):
        run.predictions.append(predict_dp(dp))
    return run
