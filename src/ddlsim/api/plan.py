"""Capacity planning: what ``ddlsim plan`` calls.

For a model and a training target, :func:`plan` enumerates GPU type x GPU count x
strategy, predicts the iteration time of each configuration as a job through
:func:`ddlsim.api.predict` with the plan's calibration (sync data parallelism for CNNs,
MLPs and encoders, memory checked first; for GPT, Llama and Nemotron decoders the
fastest fitting tp x pp x dp x micro-batch x recomputation of the layout search,
:mod:`ddlsim.api.layout_search`), turns the target into optimizer steps, and prices the
run:

    time_to_train_s = (steps x iteration_s + eval_s) / goodput
    cost_usd        = gpus x (time_to_train_s / 3600) x usd_per_gpu_hour

* **Steps.** A fixed amount of work (``epochs=``, ``samples=``, ``tokens=``) needs
  ``ceil(samples / global_batch)`` steps (``eval_s`` 0). ``quality`` is the MLPerf
  Training benchmark's target: steps MEASURED by MLCommons' reference convergence points
  at the configuration's global batch (:mod:`ddlsim.convergence.rcp`; below the published
  batch range the smallest batch's samples, flagged in the note; above it the
  configuration cannot be planned), plus the benchmark's evaluation passes (``eval_s``,
  see :mod:`ddlsim.api.time_to_train`). ``accuracy`` uses the statistical-efficiency
  MODEL of :mod:`ddlsim.convergence.stat_eff` (McCandlish et al. 2018 fitted to Goyal et
  al.'s 90-epoch ResNet-50 recipe), and the table says so.
* **Goodput** (``include_failures``): the expected fraction of wall time doing useful
  work when GPUs fail independently and the job restarts from its last checkpoint,
  with checkpoints every Young's optimum ``sqrt(2 C M)`` (see :func:`goodput_factor`).
* **Prices** are data (``ddlsim/data/prices.csv``: one row per device with its source,
  date and kind of pricing); a user CSV with the same columns replaces rows of the same
  device and adds new ones.
* **Memory.** A configuration that does not fit its GPUs' memory is kept in the table
  with its reason but is never feasible, on the frontier or chosen.

The result holds every configuration, the Pareto frontier of (time, cost), the cheapest
configuration meeting the deadline, the fastest within the budget, and an explanation
when none does. Targets and goodput live in :mod:`ddlsim.api.targets`, prices in
:mod:`ddlsim.api.prices`, the predictors in :mod:`ddlsim.api.plan_predict`, the frontier
and the choice in :mod:`ddlsim.api.plan_select`; their public names are re-exported here.
The headline and the human-unit table are rendered by :mod:`ddlsim.reports.plan`.
"""


from __future__ import annotations

import math
from dataclasses import dataclass, field

from ddlsim.api.plan_predict import (
    ConfigPrediction,
    Predictor,
    default_predictor,
    is_decoder,
    runnable,
)
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
    quality_notes,
    steps_and_eval,
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
    "gpu", "preset", "gpus", "nodes", "strategy", "layout", "tp", "pp", "dp", "micro_batch",
    "recompute", "dtype", "global_batch", "iteration_s", "samples_per_s", "tokens_per_s",
    "mfu", "bubble_fraction", "memory_GiB", "capacity_GiB", "fits", "steps", "steps_source",
    "evals", "eval_s", "goodput", "checkpoint_interval_s", "time_s", "hours", "days",
    "usd_per_gpu_hour", "pricing", "cost_usd", "feasible", "pareto", "meets_deadline",
    "within_budget", "note",
]


# --------------------------------------------------------------------------- options
@dataclass(frozen=True)
class PlanOptions:
    """Options of a capacity plan (SI units).

    ``model``: workload name; ``target``: ``epochs=N`` | ``samples=N`` | ``tokens=N`` |
    ``quality`` | ``accuracy`` (see :func:`parse_target`); ``deadline_s``: wall-time limit (s);
    ``budget_usd``: spending limit (USD); ``gpus``: device names (empty: every GPU with a
    cluster preset and a price); ``max_gpus`` / ``min_gpus``: counts tried are powers of
    two from ``min_gpus`` (default: one node of the preset) to ``max_gpus``;
    ``batch_per_gpu``: per-GPU batch of a data-parallel model (weak scaling: the global
    batch grows with the GPUs); ``micro_batch``: micro-batch of a decoder (None: chosen
    by the layout search among 1, 2, 4, 8); ``global_batch``: sequences per iteration of a
    decoder (fixed; Megatron-like 512); ``search_top``: decoder layouts (distinct tp x pp)
    predicted per GPU type and count after the cheap estimate; ``dataset_samples``:
    training-set size for ``epochs=``; ``dtype``: compute dtype (None: the GPU's mixed
    precision, bf16 where it has it); ``calibration``: as for :func:`ddlsim.api.predict`;
    ``prices_path``: CSV overriding/adding price rows;
    ``include_failures``: apply :func:`goodput_factor` with ``mtbf_gpu_hours`` (per
    GPU, hours), ``checkpoint_cost_s`` and ``restart_s`` (s); ``iterations``: simulated
    iterations per data-parallel configuration; ``lora_rank``: LoRA fine-tuning of that
    rank with the MLPerf recipe's targets and dropout (None: full training); ``seq``:
    sequence length of a sequence model (None: the zoo model's). A ``quality`` target of
    a LoRA benchmark (Llama-2 70B) plans the benchmark's recipe and sequence length.
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
    micro_batch: int | None = None
    search_top: int = 4
    dtype: str | None = None
    calibration: object = "stored"
    prices_path: str | None = None
    include_failures: bool = False
    mtbf_gpu_hours: float = LLAMA3_MTBF_GPU_HOURS
    checkpoint_cost_s: float = DEFAULT_CHECKPOINT_COST_S
    restart_s: float = DEFAULT_RESTART_S
    iterations: int = 3
    lora_rank: int | None = None
    seq: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_gpus", "batch_per_gpu", "micro_batch", "global_batch", "iterations",
                     "search_top"):
            v = getattr(self, name)
            if v is None and name == "micro_batch":
                continue
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
        self.workload()  # lora_rank / seq checked as a job's workload checks them

    def workload(self):
        """The :class:`~ddlsim.job.Workload` every configuration trains."""
        from ddlsim.job import Workload

        arch = (("seq", self.seq),) if self.seq is not None else ()
        return Workload(self.model, arch, lora_rank=self.lora_rank)


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
        """What the command prints, as one JSON-friendly record: the headline lines, the
        choice, the frontier (human units and SI), explanation, notes and prices."""
        from ddlsim.reports.plan import frontier_records, headline_lines

        c = self.choice
        choice = None if c is None else {
            "gpu": str(c["gpu"]), "gpus": int(c["gpus"]), "strategy": str(c["strategy"]),
            "layout": str(c["layout"]), "tp": int(c["tp"]), "pp": int(c["pp"]),
            "dp": int(c["dp"]), "micro_batch": None if c["micro_batch"] is None
            or c["micro_batch"] != c["micro_batch"] else int(c["micro_batch"]),
            "recompute": str(c["recompute"]), "dtype": str(c["dtype"]),
            "iteration_s": float(c["iteration_s"]), "time_s": float(c["time_s"]),
            "cost_usd": float(c["cost_usd"]), "memory_GiB": float(c["memory_GiB"]),
            "capacity_GiB": float(c["capacity_GiB"])}
        return {"model": self.options.model, "target": self.target.describe(),
                "headline": headline_lines(self),
                "configurations": int(len(self.table)),
                "frontier_size": int(len(self.frontier)),
                "choice": choice,
                "frontier": frontier_records(self),
                "notes": list(self.notes),
                "explanation": list(self.explanation),
                "prices": [dict(p) for p in self.prices.values()]}


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
        notes = [f"{d} ({presets[d]}) skipped: no sourced price row (add one with --prices)"
                 for d in skipped]
        unplanned = [d for d in prices if d not in presets]
        if unplanned:
            notes.append(f"priced but no cluster preset, not planned: {', '.join(unplanned)}")
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


def _row(gpu, preset, gpn, n, pred, target, stat_eff, price_row, opts) -> dict:
    steps, source, evals, eval_s, rcp_note = steps_and_eval(target, pred, stat_eff)
    g = (goodput_factor(n, opts.mtbf_gpu_hours, opts.checkpoint_cost_s, opts.restart_s)
         if opts.include_failures else None)
    factor = 1.0 if g is None else g.factor
    note, price = pred.note, price_row["usd_per_gpu_hour"]
    if rcp_note:
        note = (note + "; " if note else "") + rcp_note
    if runnable(pred) and factor > 0 and steps > 0:
        time_s = (steps * pred.iteration_s + eval_s) / factor
    else:
        time_s = math.inf
        if factor <= 0:
            note = (note + "; " if note else "") + "failures come faster than progress"
    cost = n * (time_s / HOUR_S) * price
    return {
        "gpu": gpu, "preset": preset, "gpus": n, "nodes": max(1, n // gpn),
        "strategy": pred.strategy, "layout": pred.layout or pred.strategy, "tp": pred.tp,
        "pp": pred.pp, "dp": pred.dp, "micro_batch": pred.micro_batch,
        "recompute": pred.recompute, "dtype": pred.dtype, "global_batch": pred.global_batch,
        "iteration_s": pred.iteration_s, "samples_per_s": pred.global_batch / pred.iteration_s,
        "tokens_per_s": pred.tokens_per_s, "mfu": pred.mfu,
        "bubble_fraction": pred.bubble_fraction, "memory_GiB": pred.memory_bytes / 2**30,
        "capacity_GiB": pred.capacity_bytes / 2**30, "fits": pred.fits, "steps": steps,
        "steps_source": source, "evals": evals, "eval_s": eval_s, "goodput": factor,
        "checkpoint_interval_s": math.nan if g is None else g.interval_s,
        "time_s": time_s, "hours": time_s / HOUR_S, "days": time_s / (24 * HOUR_S),
        "usd_per_gpu_hour": price, "pricing": price_row.get("pricing", ""), "cost_usd": cost,
        "feasible": math.isfinite(time_s) and math.isfinite(cost), "note": note,
    }


def _benchmark_recipe(opts: PlanOptions) -> tuple[PlanOptions, list[str]]:
    """A ``quality`` plan of a LoRA benchmark: the options with its recipe's rank and its
    sequence length (and a note); ConfigError for another rank. Others: unchanged."""
    from dataclasses import replace

    from ddlsim.api.time_to_train import lora_recipe, with_benchmark_recipe
    from ddlsim.convergence import rcp
    from ddlsim.job import Job

    bm = rcp.benchmark_for_model(opts.model)
    if str(opts.target).strip().lower() != "quality" or bm is None or bm.lora is None:
        return opts, []
    job, notes = with_benchmark_recipe(bm, Job(workload=opts.workload()))
    if job.workload.lora_settings() != lora_recipe(bm):
        raise ConfigError(f"lora_rank: the {bm.name} RCPs were measured with LoRA rank "
                          f"{bm.lora['rank']}, got {opts.lora_rank}")
    return replace(opts, lora_rank=job.workload.lora_rank,
                   seq=opts.seq or bm.sequence_length), notes


def plan(opts: PlanOptions, predictor: Predictor | None = None) -> PlanResult:
    """Enumerate, predict, price and choose (see the module docstring). ``predictor``
    replaces the simulators (tests); each (GPU, count) is predicted once."""
    import pandas as pd

    from ddlsim.sim.topology import PRESETS
    from ddlsim.sim.workloads import get_workload

    predictor = predictor or default_predictor
    opts, recipe_notes = _benchmark_recipe(opts)
    wl = get_workload(opts.model, 1, **dict(opts.workload().architecture))  # did-you-mean
    tps = wl.tokens_per_sample if wl.tokens_per_sample > 1 else None  # sequence models
    target = parse_target(opts.target, opts.model, opts.dataset_samples, tps)
    stat_eff = None
    if target.kind == "accuracy":
        from ddlsim.convergence.stat_eff import published_model

        stat_eff = published_model(STAT_EFF_MODELS[opts.model])
    if target.kind == "quality" and is_decoder(opts.model):
        target.convergence(opts.global_batch)  # a decoder's batch is fixed: refuse now
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
                             prices[gpu], opts))
    table = pd.DataFrame(rows)
    table["pareto"] = pareto_mask(table["time_s"], table["cost_usd"])
    table["meets_deadline"] = (table["time_s"] <= opts.deadline_s
                               if opts.deadline_s is not None else table["feasible"])
    table["within_budget"] = (table["cost_usd"] <= opts.budget_usd
                              if opts.budget_usd is not None else table["feasible"])
    table = table[TABLE_COLUMNS]
    frontier = table[table["pareto"]].sort_values(["time_s", "cost_usd"]).reset_index(drop=True)
    cheapest, fastest, lines = select(table, opts.deadline_s, opts.budget_usd)
    for gpu, grp in table[~table["feasible"]].groupby("gpu", sort=False):
        notes.append(f"{gpu} at {', '.join(str(n) for n in grp['gpus'])} GPUs cannot run "
                     f"(never proposed): {grp['note'].iloc[-1]}")
    if opts.deadline_s is None and opts.budget_usd is None:
        lines.append("no deadline or budget given: see the Pareto frontier")
    if stat_eff is not None:
        notes.append(f"steps to the target come from a MODEL: {stat_eff.label} "
                     f"({stat_eff.source})")
    if target.kind == "quality":
        notes += quality_notes(target, table["global_batch"]) + recipe_notes
    kinds = {g: prices[g]["pricing"] for g in gpus if prices[g]["pricing"] != "on_demand"}
    if kinds:
        notes.append("prices are on-demand except " + ", ".join(
            f"{g} ({k or 'unstated'})" for g, k in kinds.items()) + ": see the prices table")
    if is_decoder(opts.model):
        notes.append(f"decoder layouts: searched tp x pp x dp x micro-batch x recomputation "
                     f"(global batch {opts.global_batch} sequences, 1F1B, even block split, "
                     f"no ZeRO or sequence parallelism), memory-checked, best "
                     f"{opts.search_top} by a calibrated estimate predicted")
    if opts.include_failures:
        notes.append(f"goodput: independent GPU failures, per-GPU MTBF "
                     f"{opts.mtbf_gpu_hours:,.0f} h, checkpoint {opts.checkpoint_cost_s:g} s "
                     f"every sqrt(2 C MTBF_job) (Young 1974 / Daly 2006), restart "
                     f"{opts.restart_s:g} s")
    return PlanResult(opts, target, table, frontier, cheapest, fastest, lines, notes,
                      {g: prices[g] for g in gpus})
