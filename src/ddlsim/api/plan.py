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
when none does.
"""

from __future__ import annotations

import csv
import importlib.resources
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ddlsim.errors import ConfigError, unknown_name

HOUR_S = 3600.0

#: Per-GPU mean time between job-interrupting failures, in GPU-hours: Meta's Llama 3
#: 405B pre-training saw 419 unexpected interruptions in a 54-day snapshot on 16,384
#: H100 GPUs (Dubey et al. 2024, "The Llama 3 Herd of Models", arXiv 2407.21783,
#: Sec. 3.3.4, Table 5): 54 x 24 h x 16,384 / 419 = 50,678 GPU-hours. All components
#: (GPU, HBM, network, host) are charged to the GPUs, which is what a job sees.
LLAMA3_MTBF_GPU_HOURS = 54 * 24 * 16384 / 419

#: Checkpoint write time (s) and restart time (s): ASSUMPTIONS (no published source used
#: here; they depend on model size and storage), to be overridden per job.
DEFAULT_CHECKPOINT_COST_S = 60.0
DEFAULT_RESTART_S = 300.0

#: Training-set sizes for ``epochs=`` targets (samples).
DATASET_SAMPLES = {
    # ImageNet-1k train split (Russakovsky et al. 2015, IJCV, Table 2); the same number as
    # ddlsim.convergence.stat_eff.IMAGENET_TRAIN_IMAGES.
    "resnet50": 1_281_167, "vgg16": 1_281_167, "alexnet": 1_281_167,
}

#: Workload -> statistical-efficiency model for the ``accuracy`` target.
STAT_EFF_MODELS = {"resnet50": "resnet50-imagenet"}

PRICE_COLUMNS = ("device", "instance", "usd_per_gpu_hour", "pricing", "source", "date")

TABLE_COLUMNS = [
    "gpu", "preset", "gpus", "nodes", "strategy", "tp", "pp", "dp", "global_batch",
    "iteration_s", "samples_per_s", "steps", "steps_source", "goodput",
    "checkpoint_interval_s", "time_s", "hours", "usd_per_gpu_hour", "cost_usd", "feasible",
    "pareto", "meets_deadline", "within_budget", "note",
]


# --------------------------------------------------------------------------- parsing
_DURATION_UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": HOUR_S, "hr": HOUR_S,
                   "d": 24 * HOUR_S, "day": 24 * HOUR_S, "days": 24 * HOUR_S,
                   "w": 7 * 24 * HOUR_S}


def parse_duration(text: str) -> float:
    """``"24h"``, ``"3d"``, ``"90min"``, ``"45s"``, ``"1.5 w"`` -> seconds (a unit is required)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?\d+)?)\s*([a-zA-Z]+)\s*", str(text))
    if not m or m.group(2).lower() not in _DURATION_UNITS:
        raise ConfigError(f"deadline: must be a number and a unit "
                          f"({', '.join(_DURATION_UNITS)}), e.g. 24h, got {text!r}")
    value = float(m.group(1)) * _DURATION_UNITS[m.group(2).lower()]
    if not value > 0:
        raise ConfigError(f"deadline: must be > 0, got {text!r}")
    return value


def parse_money(text: str) -> float:
    """``"5000USD"``, ``"$5000"``, ``"5e3 usd"``, ``"5000"`` -> US dollars."""
    m = re.fullmatch(r"\s*\$?\s*([0-9]*\.?[0-9]+(?:[eE][+-]?\d+)?)\s*(usd)?\s*", str(text),
                     flags=re.IGNORECASE)
    if not m:
        raise ConfigError(f"budget: must be an amount in USD, e.g. 5000USD or $5000, "
                          f"got {text!r}")
    value = float(m.group(1))
    if not value > 0:
        raise ConfigError(f"budget: must be > 0, got {text!r}")
    return value


@dataclass(frozen=True)
class Target:
    """What training must achieve. ``kind``: epochs | samples | tokens | accuracy;
    ``value``: the number given (None for accuracy); ``samples``: training samples for
    a fixed amount of work (None for accuracy)."""

    kind: str
    value: float | None
    samples: float | None

    def steps(self, global_batch: int, stat_eff=None) -> tuple[int, str]:
        """(optimizer steps, where the number comes from) at ``global_batch`` samples."""
        if self.kind == "accuracy":
            return (math.ceil(stat_eff.steps(global_batch)),
                    f"{stat_eff.label}; {stat_eff.name}")
        return math.ceil(self.samples / global_batch), "fixed work: samples / global batch"

    def describe(self) -> str:
        if self.kind == "accuracy":
            return "the model's target accuracy (statistical-efficiency model)"
        return f"{self.kind}={self.value:g} ({self.samples:.4g} samples)"


TARGET_KINDS = ("epochs", "samples", "tokens", "accuracy")


def parse_target(text: str, model: str, dataset_samples: int | None = None,
                 tokens_per_sample: int | None = None) -> Target:
    """Parse ``epochs=90`` | ``samples=1.15e8`` | ``tokens=3e11`` | ``accuracy``.

    ``dataset_samples``: training-set size for ``epochs`` (default: the model's known data
    set); ``tokens_per_sample``: sequence length of a GPT, needed for ``tokens``.
    """
    s = str(text).strip().lower()
    if s == "accuracy":
        if model not in STAT_EFF_MODELS:
            raise ConfigError(f"target: 'accuracy' needs a statistical-efficiency model; "
                              f"{model!r} has none (models with one: "
                              f"{', '.join(STAT_EFF_MODELS)}); use epochs=, samples= or "
                              "tokens=")
        return Target("accuracy", None, None)
    m = re.fullmatch(r"([a-z]+)\s*=\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)", s)
    if not m or m.group(1) not in TARGET_KINDS:
        kind = m.group(1) if m else s.split("=")[0].strip()
        if kind not in TARGET_KINDS:
            raise unknown_name("target", kind, TARGET_KINDS, "target kind")
        raise ConfigError(f"target: must be epochs=N, samples=N, tokens=N or accuracy, "
                          f"got {text!r}")
    kind, value = m.group(1), float(m.group(2))
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"target: {kind} must be a finite number > 0, got {text!r}")
    if kind == "samples":
        return Target(kind, value, value)
    if kind == "tokens":
        if not tokens_per_sample:
            raise ConfigError(f"target: tokens= needs a sequence model; {model!r} has no "
                              "tokens per sample (use epochs= or samples=)")
        return Target(kind, value, value / tokens_per_sample)
    if dataset_samples is not None and dataset_samples < 1:
        raise ConfigError(f"dataset_samples: must be >= 1, got {dataset_samples}")
    n = dataset_samples if dataset_samples is not None else DATASET_SAMPLES.get(model)
    if not n:
        raise ConfigError(f"dataset_samples: epochs= needs the training-set size of "
                          f"{model!r} (pass dataset_samples), got {dataset_samples!r}")
    return Target(kind, value, value * n)


# --------------------------------------------------------------------------- failures
@dataclass(frozen=True)
class Goodput:
    """Expected useful fraction of wall time under failures (``factor``), the checkpoint
    interval used (``interval_s``, work seconds between checkpoints) and the job's MTBF
    (``job_mtbf_s``)."""

    factor: float
    interval_s: float
    job_mtbf_s: float


def young_daly_interval_s(checkpoint_cost_s: float, mtbf_s: float) -> float:
    """Young's optimum checkpoint interval ``sqrt(2 C M)`` (s): J. W. Young, "A first
    order approximation to the optimum checkpoint interval", CACM 17(9), 1974; the
    first-order term of J. T. Daly, "A higher order estimate of the optimum checkpoint
    interval for restart dumps", FGCS 22(3), 2006. ``checkpoint_cost_s`` C and the job's
    ``mtbf_s`` M in seconds."""
    return math.sqrt(2.0 * checkpoint_cost_s * mtbf_s)


def goodput_factor(gpus: int, mtbf_gpu_hours: float, checkpoint_cost_s: float,
                   restart_s: float = 0.0) -> Goodput:
    """Expected goodput of a synchronous job on ``gpus`` GPUs that fail independently
    (exponential, per-GPU MTBF ``mtbf_gpu_hours`` in hours; the job's MTBF is
    ``M = mtbf / gpus``), checkpointing every ``tau = sqrt(2 C M)`` seconds of work
    (``checkpoint_cost_s`` C) and losing, per failure, half an interval plus the
    ``restart_s`` R (first-order model of Young 1974 / Daly 2006):

        wall = work (1 + C / tau) / (1 - (tau / 2 + R) / M),  goodput = work / wall

    For C, R << M this is ``1 - sqrt(2 C / M) - R / M``. ``factor`` is 0 when failures
    come faster than the job can progress.
    """
    for name, v in (("mtbf_gpu_hours", mtbf_gpu_hours),
                    ("checkpoint_cost_s", checkpoint_cost_s)):
        if not (v > 0 and math.isfinite(v)):
            raise ConfigError(f"{name}: must be a finite number > 0, got {v!r}")
    if not (restart_s >= 0 and math.isfinite(restart_s)):
        raise ConfigError(f"restart_s: must be a finite number >= 0, got {restart_s!r}")
    if gpus < 1:
        raise ConfigError(f"gpus: must be >= 1, got {gpus!r}")
    m = mtbf_gpu_hours * HOUR_S / gpus
    tau = young_daly_interval_s(checkpoint_cost_s, m)
    useful = 1.0 - (tau / 2.0 + restart_s) / m
    factor = max(useful, 0.0) / (1.0 + checkpoint_cost_s / tau)
    return Goodput(factor, tau, m)


# --------------------------------------------------------------------------- prices
def _read_price_rows(text: str, where: str) -> dict[str, dict]:
    from ddlsim.sim.hardware import get_device

    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in PRICE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError(f"{where}: missing columns {missing} (needs "
                          f"{', '.join(PRICE_COLUMNS)})")
    rows: dict[str, dict] = {}
    for i, row in enumerate(reader, start=2):
        at = f"{where} line {i}"
        try:
            device = get_device((row["device"] or "").strip()).name
        except ConfigError as err:
            raise ConfigError(f"{at}: device: {err}") from None
        try:
            price = float(row["usd_per_gpu_hour"])
        except (TypeError, ValueError):
            price = float("nan")
        if not (price > 0 and math.isfinite(price)):
            raise ConfigError(f"{at}: usd_per_gpu_hour: must be a finite number > 0, "
                              f"got {row['usd_per_gpu_hour']!r}")
        if not (row["source"] or "").strip():
            raise ConfigError(f"{at}: source: every price needs a source, got an empty cell")
        if device in rows:
            raise ConfigError(f"{at}: device: {device!r} appears twice (one price per device)")
        rows[device] = {"device": device, "instance": row["instance"] or "",
                        "usd_per_gpu_hour": price, "pricing": row["pricing"] or "",
                        "source": row["source"].strip(), "date": row["date"] or ""}
    return rows


def load_prices(path: str | Path | None = None) -> dict[str, dict]:
    """Device -> price row: the packaged table, with the rows of ``path`` (same columns)
    replacing those of the same device and adding new ones."""
    text = importlib.resources.files("ddlsim").joinpath("data/prices.csv").read_text()
    rows = _read_price_rows(text, "ddlsim/data/prices.csv")
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"prices_path: no such file {str(p)!r}")
        rows.update(_read_price_rows(p.read_text(), str(p)))
    return rows


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


# --------------------------------------------------------------------------- frontier
def pareto_mask(time_s, cost_usd) -> list[bool]:
    """True where no other point is at least as fast and as cheap and strictly better in
    one (minimising both); NaN/inf points are never on the frontier. Exact duplicates
    of a frontier point are all kept."""
    pts = [(float(t), float(c)) for t, c in zip(time_s, cost_usd, strict=True)]
    ok = [math.isfinite(t) and math.isfinite(c) for t, c in pts]
    mask = []
    for i, (t, c) in enumerate(pts):
        dominated = any(ok[j] and t2 <= t and c2 <= c and (t2 < t or c2 < c)
                        for j, (t2, c2) in enumerate(pts) if j != i)
        mask.append(ok[i] and not dominated)
    return mask


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


def select(table, deadline_s: float | None, budget_usd: float | None):
    """(cheapest meeting the deadline and budget, fastest within the budget and deadline,
    explanation lines) over the rows of ``table`` (columns time_s, cost_usd)."""
    ok = table[table["feasible"]]
    lines: list[str] = []
    in_deadline = ok if deadline_s is None else ok[ok["time_s"] <= deadline_s]
    in_budget = ok if budget_usd is None else ok[ok["cost_usd"] <= budget_usd]
    both = in_deadline[in_deadline.index.isin(in_budget.index)]
    cheapest = fastest = None
    if ok.empty:
        lines.append("no configuration can run (see the note column)")
        return None, None, lines
    if deadline_s is not None:
        if both.empty:
            fast = ok.sort_values(["time_s", "cost_usd"]).iloc[0]
            if in_deadline.empty:
                lines.append(f"no configuration meets the deadline of {deadline_s / HOUR_S:.4g} h:"
                             f" the fastest is {fast.gpus} x {fast.gpu} at {fast.hours:.4g} h "
                             f"(${fast.cost_usd:,.0f}); allow more GPUs (max_gpus) or time")
            else:
                cheap = in_deadline.sort_values(["cost_usd", "time_s"]).iloc[0]
                lines.append(f"configurations meet the deadline but none within the budget of "
                             f"${budget_usd:,.0f}: the cheapest that meets it costs "
                             f"${cheap.cost_usd:,.0f} ({cheap.gpus} x {cheap.gpu})")
        else:
            best = both.sort_values(["cost_usd", "time_s"]).iloc[0]
            cheapest = best.to_dict()
            lines.append(f"cheapest meeting the deadline of {deadline_s / HOUR_S:.4g} h"
                         + ("" if budget_usd is None else f" and the budget of ${budget_usd:,.0f}")
                         + f": {best.gpus} x {best.gpu}, {best.strategy}, "
                         f"{best.hours:.4g} h, ${best.cost_usd:,.0f}")
    if budget_usd is not None:
        if both.empty:
            if in_budget.empty:
                cheap = ok.sort_values(["cost_usd", "time_s"]).iloc[0]
                lines.append(f"no configuration fits the budget of ${budget_usd:,.0f}: the "
                             f"cheapest costs ${cheap.cost_usd:,.0f} ({cheap.gpus} x "
                             f"{cheap.gpu}, {cheap.hours:.4g} h)")
            elif deadline_s is not None:
                f = in_budget.sort_values(["time_s", "cost_usd"]).iloc[0]
                lines.append(f"within the budget the fastest takes {f.hours:.4g} h "
                             f"({f.gpus} x {f.gpu}), past the deadline")
        else:
            best = both.sort_values(["time_s", "cost_usd"]).iloc[0]
            fastest = best.to_dict()
            lines.append(f"fastest within the budget of ${budget_usd:,.0f}"
                         + ("" if deadline_s is None else " and the deadline")
                         + f": {best.gpus} x {best.gpu}, {best.strategy}, "
                         f"{best.hours:.4g} h, ${best.cost_usd:,.0f}")
    return cheapest, fastest, lines


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
