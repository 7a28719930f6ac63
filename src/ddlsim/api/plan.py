"""Capacity planning: what ``ddlsim plan`` calls.

For a model and a training target, :func:`plan` enumerates GPU type x GPU count x
strategy, predicts the iteration time of each configuration as a job through
:func:`ddlsim.api.predict` with the stored calibration (sync data parallelism for CNNs and
MLPs, 3D parallelism for decoders), turns the target into optimizer steps, and prices the
run:

    time_to_train_s = steps x iteration_s / goodput
    cost_usd        = gpus x (time_to_train_s / 3600) x usd_per_gpu_hour

* **Steps.** A fixed amount of work (``epochs=``, ``samples=``, ``tokens=``) needs
  ``ceil(samples / global_batch)`` steps. ``accuracy`` uses the statistical-efficiency
  MODEL of :mod:`ddlsim.convergence.stat_eff` (steps to the target grow less than
  linearly as the global batch shrinks; McCandlish et al. 2018), and the table says so.
* **Goodput** (``include_failures``): the expected fraction of wall time doing useful
  work when GPUs fail independently and the job restarts from its last checkpoint,
  with checkpoints every Young's optimum ``sqrt(2 C M)`` (see :func:`goodput_factor`).
* **Prices** are data (``ddlsim/data/prices.csv``: one row per device with its source
  and date); a user CSV with the same columns replaces rows of the same device and adds
  new ones.

The result holds every configuration, the Pareto frontier of (time, cost), the cheapest
configuration meeting the deadline, the fastest within the budget, and an explanation
when none does. Targets and goodput live in :mod:`ddlsim.api.targets`, prices in
:mod:`ddlsim.api.prices`, the frontier and the choice in :mod:`ddlsim.api.plan_select`;
their public names are re-exported here.
"""


from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ddlsim.api.plan_select import pareto_mask, select
from ddlsim.api.prices import PRICE_COLUMNS, load_prices, parse_money
from ddlsim.api.targets import (
    DATASET_SAMPLES,
    DEFAULT_CHECKPOINT_COST_S,
    DEFAULT_RESTART_S,
    HOUR_S,
    LLAMA3_MTBF_GPU_HOURS,
    STAT_EFF_MODELS,
    TARGET_KINDS,
    Goodput,
    Target,
    goodput_factor,
    parse_duration,
    parse_target,
    young_daly_interval_s,
)
from ddlsim.errors import ConfigError

__all__ = [
    "DATASET_SAMPLES", "DEFAULT_CHECKPOINT_COST_S", "DEFAULT_RESTART_S", "HOUR_S",
    "LLAMA3_MTBF_GPU_HOURS", "PRICE_COLUMNS", "STAT_EFF_MODELS", "TABLE_COLUMNS",
    "TARGET_KINDS", "ConfigPrediction", "Goodput", "PlanOptions", "PlanResult", "Predictor",
    "Target", "default_predictor", "goodput_factor", "gpu_counts", "load_prices",
    "pareto_mask", "parse_duration", "parse_money", "parse_target", "plan", "select",
    "young_daly_interval_s",
]

TABLE_COLUMNS = [
    "gpu", "preset", "gpus", "nodes", "strategy", "tp", "pp", "dp", "global_batch",
    "iteration_s", "samples_per_s", "steps", "steps_source", "goodput",
    "checkpoint_interval_s", "time_s", "hours", "usd_per_gpu_hour", "cost_usd", "feasible",
    "pareto", "meets_deadline", "within_budget", "note",
]


# --------------------------------------------------------------------------- options
@dataclass(frozen=True)
class PlanOptions:
    """Options of a capacity plan (SI units).

    ``model``: workload name; ``target``: ``epochs=N`` | ``samples=N`` | ``tokens=N`` |
    ``accuracy`` (see :func:`parse_target`); ``deadline_s``: wall-time limit (s);
    ``budget_usd``: spending limit (USD); ``gpus``: device names (empty: every GPU with a
    cluster preset and a price); ``max_gpus`` / ``min_gpus``: counts tried are powers of
    two from ``min_gpus`` (default: one node of the preset) to ``max_gpus``;
    ``batch_per_gpu``: per-GPU batch of a data-parallel model (weak scaling: the global
    batch grows with the GPUs); ``micro_batch``: micro-batch of a GPT (Megatron's default
    1); ``global_batch``: sequences per iteration of a GPT (fixed); ``dataset_samples``:
    training-set size for ``epochs=``; ``dtype``: compute dtype (None: the GPU's mixed
    precision, bf16 where it has it); ``calibration``: as for :func:`ddlsim.api.predict`;
    ``prices_path``: CSV overriding/adding price rows;
    ``include_failures``: apply :func:`goodput_factor` with ``mtbf_gpu_hours`` (per
    GPU, hours), ``checkpoint_cost_s`` and ``restart_s`` (s); ``iterations``: simulated
    iterations per data-parallel configuration.
    """

    model: str = "resnet50"
    target: str = "epochs=90"
    deadline_s: float | None = None
    budget_usd: float | None = None
    gpus: tuple[str, ...] = ()
    max_gpus: int = 64
    min_gpus: int | None = None
    batch_per_gpu: int = 32
    global_batch: int = 512
    dataset_samples: int | None = None
    micro_batch: int = 1
    dtype: str | None = None
    calibration: object = "stored"
    prices_path: str | None = None
    include_failures: bool = False
    mtbf_gpu_hours: float = LLAMA3_MTBF_GPU_HOURS
    checkpoint_cost_s: float = DEFAULT_CHECKPOINT_COST_S
    restart_s: float = DEFAULT_RESTART_S
    iterations: int = 3

    def __post_init__(self) -> None:
        for name in ("max_gpus", "batch_per_gpu", "micro_batch", "global_batch", "iterations"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name}: must be an integer >= 1, got {v!r}")
        if self.min_gpus is not None and (not isinstance(self.min_gpus, int)
                                          or not 1 <= self.min_gpus <= self.max_gpus):
            raise ConfigError(f"min_gpus: must be an integer in [1, max_gpus={self.max_gpus}],"
                              f" got {self.min_gpus!r}")
        for name in ("deadline_s", "budget_usd"):
            v = getattr(self, name)
            if v is not None and not (v > 0 and math.isfinite(v)):
                raise ConfigError(f"{name}: must be a finite number > 0 or None, got {v!r}")
        if isinstance(self.gpus, str):
            raise ConfigError(f"gpus: must be a tuple of device names, got {self.gpus!r}")
        if self.include_failures:
            goodput_factor(1, self.mtbf_gpu_hours, self.checkpoint_cost_s, self.restart_s)


# --------------------------------------------------------------------------- predictions
@dataclass(frozen=True)
class ConfigPrediction:
    """One simulated configuration: its strategy, iteration time (s) and global batch
    (samples), or ``iteration_s`` NaN with a ``note`` when it cannot run (memory)."""

    strategy: str
    iteration_s: float
    global_batch: int
    tp: int = 1
    pp: int = 1
    dp: int = 1
    note: str = ""


#: ``predictor(model, preset, gpus, opts) -> ConfigPrediction`` (tests inject toys).
Predictor = Callable[[str, str, int, PlanOptions], ConfigPrediction]


def _is_gpt(model: str) -> bool:
    from ddlsim.sim.workloads import GPT_PRESETS

    return model in GPT_PRESETS


def _job(model: str, preset: str, gpus: int, opts: PlanOptions, **kw):
    from ddlsim.job import Cluster, Job, Precision, Workload

    return Job(workload=Workload(model), cluster=Cluster(preset, gpus),
               precision=Precision(opts.dtype), **kw)


def _predict_dp(model: str, preset: str, gpus: int, opts: PlanOptions) -> ConfigPrediction:
    from ddlsim.api.predict import predict
    from ddlsim.job import Batch, Strategy

    pred = predict(_job(model, preset, gpus, opts, batch=Batch(micro=opts.batch_per_gpu),
                        strategy=Strategy(kind="allreduce"), iterations=opts.iterations),
                   opts.calibration)
    strategy = f"sync DP allreduce ({pred.detail.algo})"
    if pred.fits is False:
        return ConfigPrediction(strategy, float("nan"), opts.batch_per_gpu * gpus, dp=gpus,
                                note=f"does not fit: {pred.memory_bytes / 2**30:.1f} GiB per "
                                     f"GPU of {pred.memory_capacity_bytes / 2**30:.0f}")
    return ConfigPrediction(strategy, pred.iteration_s, opts.batch_per_gpu * gpus, dp=gpus)


def _splits(gpus: int, gpus_per_node: int):
    """(tp, pp) candidates in order of growing model-parallel size: TP up to one node
    first (fast NVLink), then pipeline stages."""
    mp = 1
    while mp <= gpus:
        tp = min(mp, gpus_per_node)
        yield tp, mp // tp
        mp *= 2


def _predict_gpt(model: str, preset: str, gpus: int, opts: PlanOptions) -> ConfigPrediction:
    """The smallest TP x PP (TP within a node first) whose even block split fits memory
    (:func:`ddlsim.api.check_memory`), the rest data parallel, predicted as a 3D job."""
    from ddlsim.api.predict import check_memory, predict
    from ddlsim.job import Batch, Parallelism, Strategy
    from ddlsim.sim.topology import PRESETS

    gpn = int(PRESETS[preset]["gpus_per_node"][0])
    mb = opts.micro_batch
    tried = []
    for tp, pp in _splits(gpus, gpn):
        dp = gpus // (tp * pp)
        label = f"tp{tp} pp{pp} dp{dp}"
        if opts.global_batch % (dp * mb):
            tried.append(f"{label}: global batch not divisible")
            continue
        try:
            job = _job(model, preset, gpus, opts, strategy=Strategy(kind="3d"),
                       parallelism=Parallelism(tp=tp, pp=pp, dp=dp, placement="blocks"),
                       batch=Batch(global_batch=opts.global_batch, micro=mb))
            need, cap = check_memory(job)
        except ConfigError as err:
            tried.append(f"{label}: {err}")
            continue
        if need > cap:
            tried.append(f"{label}: does not fit memory")
            continue
        pred = predict(job, opts.calibration)
        if not pred.fits:  # the authoritative check disagrees: treat as not fitting
            tried.append(f"{label}: does not fit memory")
            continue
        return ConfigPrediction(f"3D {label} (1F1B)", pred.iteration_s, opts.global_batch,
                                tp, pp, dp)
    return ConfigPrediction("3D (none fits)", float("nan"), opts.global_batch,
                            note="no TP x PP split fits: " + "; ".join(tried[-2:]))


def default_predictor(model: str, preset: str, gpus: int, opts: PlanOptions) -> ConfigPrediction:
    """Sync DP for CNN/MLP workloads, 3D parallelism for GPT presets."""
    if _is_gpt(model):
        return _predict_gpt(model, preset, gpus, opts)
    return _predict_dp(model, preset, gpus, opts)


# --------------------------------------------------------------------------- plan
@dataclass
class PlanResult:
    """A capacity plan. ``table``: every configuration (columns :data:`TABLE_COLUMNS`);
    ``frontier``: the Pareto-optimal rows sorted by time; ``cheapest_in_deadline`` /
    ``fastest_in_budget``: the chosen rows (dicts) or None; ``explanation``: why (or why
    nothing qualifies); ``notes``: GPU types skipped and model labels; ``prices``: the
    price rows used."""

    options: PlanOptions
    target: Target
    table: object  # pandas DataFrame
    frontier: object  # pandas DataFrame
    cheapest_in_deadline: dict | None
    fastest_in_budget: dict | None
    explanation: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    prices: dict = field(default_factory=dict)

    @property
    def choice(self) -> dict | None:
        """The recommended row: cheapest meeting the deadline (and budget, if given);
        with only a budget, the fastest within it."""
        if self.options.deadline_s is not None:
            return self.cheapest_in_deadline
        return self.fastest_in_budget

    def summary(self) -> dict:
        """Headline record (JSON-friendly)."""
        c = self.choice
        return {"model": self.options.model, "target": self.target.describe(),
                "configurations": int(len(self.table)),
                "frontier": int(len(self.frontier)),
                "choice": None if c is None else {
                    "gpu": str(c["gpu"]), "gpus": int(c["gpus"]),
                    "strategy": str(c["strategy"]), "time_s": float(c["time_s"]),
                    "cost_usd": float(c["cost_usd"])},
                "notes": list(self.notes),
                "explanation": list(self.explanation)}


def _gpu_presets() -> dict[str, str]:
    """GPU device -> the first cluster preset built from it."""
    from ddlsim.sim.hardware import get_device
    from ddlsim.sim.topology import PRESETS

    out: dict[str, str] = {}
    for preset, fields_ in PRESETS.items():
        dev = fields_["device"][0]
        if get_device(dev).kind == "gpu":
            out.setdefault(dev, preset)
    return out


def _resolve_gpus(opts: PlanOptions, prices: dict) -> tuple[list[str], list[str]]:
    """(device keys to plan, notes about skipped ones)."""
    from ddlsim.sim.hardware import get_device

    presets = _gpu_presets()
    if not opts.gpus:
        chosen = [d for d in presets if d in prices]
        skipped = [d for d in presets if d not in prices]
        notes = [f"{d} ({presets[d]}) skipped: no price row (add one with --prices)"
                 for d in skipped]
        return chosen, notes
    chosen = []
    for name in opts.gpus:
        try:
            key = get_device(name).name
        except ConfigError as err:
            raise ConfigError(f"gpus: {err}") from None
        if key not in presets:
            raise ConfigError(f"gpus: no cluster preset is built from {key!r} (GPUs with one: "
                              f"{', '.join(presets)})")
        if key not in prices:
            raise ConfigError(f"gpus: no price for {key!r} in the price table (priced: "
                              f"{', '.join(prices)}); add a row with prices_path/--prices")
        if key not in chosen:
            chosen.append(key)
    return chosen, []


def gpu_counts(gpus_per_node: int, max_gpus: int, min_gpus: int | None = None) -> list[int]:
    """Powers of two from ``min_gpus`` (default one node, capped at ``max_gpus``) to
    ``max_gpus``; counts above one node are whole nodes."""
    lo = min(gpus_per_node, max_gpus) if min_gpus is None else min_gpus
    counts, n = [], 1
    while n <= max_gpus:
        if n >= lo and (n <= gpus_per_node or n % gpus_per_node == 0):
            counts.append(n)
        n *= 2
    return counts


def _row(gpu, preset, gpn, n, pred, target, stat_eff, price, opts) -> dict:
    steps, source = target.steps(pred.global_batch, stat_eff)
    g = (goodput_factor(n, opts.mtbf_gpu_hours, opts.checkpoint_cost_s, opts.restart_s)
         if opts.include_failures else None)
    factor = 1.0 if g is None else g.factor
    note = pred.note
    if math.isfinite(pred.iteration_s) and factor > 0:
        time_s = steps * pred.iteration_s / factor
    else:
        time_s = math.inf
        if factor <= 0:
            note = (note + "; " if note else "") + "failures come faster than progress"
    cost = n * (time_s / HOUR_S) * price
    return {
        "gpu": gpu, "preset": preset, "gpus": n, "nodes": max(1, n // gpn),
        "strategy": pred.strategy, "tp": pred.tp, "pp": pred.pp, "dp": pred.dp,
        "global_batch": pred.global_batch, "iteration_s": pred.iteration_s,
        "samples_per_s": pred.global_batch / pred.iteration_s, "steps": steps,
        "steps_source": source, "goodput": factor,
        "checkpoint_interval_s": math.nan if g is None else g.interval_s,
        "time_s": time_s, "hours": time_s / HOUR_S, "usd_per_gpu_hour": price,
        "cost_usd": cost, "feasible": math.isfinite(time_s), "note": note,
    }


def plan(opts: PlanOptions, predictor: Predictor | None = None) -> PlanResult:
    """Enumerate, predict, price and choose (see the module docstring). ``predictor``
    replaces the simulators (tests); each (GPU, count) is predicted once."""
    import pandas as pd

    from ddlsim.sim.topology import PRESETS
    from ddlsim.sim.workloads import get_workload

    predictor = predictor or default_predictor
    wl = get_workload(opts.model, 1)
    tps = getattr(wl, "tokens_per_sample", None) if _is_gpt(opts.model) else None
    target = parse_target(opts.target, opts.model, opts.dataset_samples, tps)
    stat_eff = None
    if target.kind == "accuracy":
        from ddlsim.convergence.stat_eff import published_model

        stat_eff = published_model(STAT_EFF_MODELS[opts.model])
    prices = load_prices(opts.prices_path)
    gpus, notes = _resolve_gpus(opts, prices)
    if not gpus:
        raise ConfigError("gpus: no GPU type has both a cluster preset and a price; pass "
                          "--prices with a row for one of " + ", ".join(_gpu_presets()))
    presets = _gpu_presets()
    rows, cache = [], {}
    for gpu in gpus:
        preset = presets[gpu]
        gpn = int(PRESETS[preset]["gpus_per_node"][0])
        for n in gpu_counts(gpn, opts.max_gpus, opts.min_gpus):
            key = (opts.model, preset, n)
            if key not in cache:
                cache[key] = predictor(opts.model, preset, n, opts)
            rows.append(_row(gpu, preset, gpn, n, cache[key], target, stat_eff,
                             prices[gpu]["usd_per_gpu_hour"], opts))
    table = pd.DataFrame(rows)
    table["pareto"] = pareto_mask(table["time_s"], table["cost_usd"])
    table["meets_deadline"] = (table["time_s"] <= opts.deadline_s
                               if opts.deadline_s is not None else table["feasible"])
    table["within_budget"] = (table["cost_usd"] <= opts.budget_usd
                              if opts.budget_usd is not None else table["feasible"])
    table = table[TABLE_COLUMNS]
    frontier = table[table["pareto"]].sort_values(["time_s", "cost_usd"]).reset_index(drop=True)
    cheapest, fastest, lines = select(table, opts.deadline_s, opts.budget_usd)
    if opts.deadline_s is None and opts.budget_usd is None:
        lines.append("no deadline or budget given: see the Pareto frontier")
    if stat_eff is not None:
        notes.append(f"steps to the target come from a MODEL: {stat_eff.label} "
                     f"({stat_eff.source})")
    if opts.include_failures:
        notes.append(f"goodput: independent GPU failures, per-GPU MTBF "
                     f"{opts.mtbf_gpu_hours:,.0f} h, checkpoint {opts.checkpoint_cost_s:g} s "
                     f"every sqrt(2 C MTBF_job) (Young 1974 / Daly 2006), restart "
                     f"{opts.restart_s:g} s")
    return PlanResult(opts, target, table, frontier, cheapest, fastest, lines, notes,
                      {g: prices[g] for g in gpus})
