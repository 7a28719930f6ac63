"""How much training an MLPerf Training benchmark needs: its reference convergence points.

This module holds MEASUREMENTS, not a model. MLCommons publishes, for every benchmark of
MLPerf Training, reference convergence points (RCPs): for several global batch sizes, the
hyper-parameters and how far each of many reference runs trained before it reached the
benchmark's quality target (epochs, samples or tokens). ddlsim ships them as package data
(``ddlsim/data/rcp/<benchmark>.json``, each citing its source file and commit in
mlcommons/logging, Apache-2.0; see the README there) and reads them the way MLCommons' RCP
checker (``mlperf_logging/rcp_checker/rcp_checker.py``) does:

* the convergence point of a batch size is the **olympic mean** of its runs (the fastest
  and the slowest dropped);
* between two published batch sizes it is **interpolated linearly** in (global batch,
  samples to converge) - epochs and tokens are samples times a constant, so the rule is the
  same in every unit;
* **below** the smallest published batch the smallest batch's samples are used, flagged
  ``in_range=False`` (an upper bound where samples grow with the batch, as they do at the
  low end of every file here but BERT's); **above** the largest batch the lookup refuses
  (:class:`OutsideRCPRange`), as the checker does ("Missing RCP"). Nothing is
  extrapolated.

Steps to the target at global batch ``B`` are ``ceil(samples / B)``. Evaluation passes
follow each benchmark's rule (``evaluation`` of its file: every N epochs, every N samples,
or BERT's batch-dependent interval, rounded up to a whole batch): ``ceil(samples /
interval)`` passes over ``evaluation.samples`` samples each, the last being the one that
detects the target.
"""

from __future__ import annotations

import importlib.resources
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ddlsim.errors import ConfigError, unknown_name

RCP_LABEL = "measured: MLCommons reference convergence points (MLPerf Training RCPs)"
UNITS = ("epochs", "samples", "tokens")
_DATA = "data/rcp"


class OutsideRCPRange(ConfigError):
    """A global batch above every batch size with a published RCP (no extrapolation)."""


@dataclass(frozen=True)
class RCPPoint:
    """One published batch size: ``batch`` (global, samples), ``mean`` (olympic mean of
    the runs, in the benchmark's unit), ``runs`` (how many), ``record`` (its key)."""

    batch: int
    mean: float
    runs: int
    record: str
    hyperparams: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class EvalRule:
    """When and how much a benchmark evaluates: every ``every_epochs`` epochs, every
    ``every_samples`` samples, or BERT's ``floor(fraction (per_batch B + base) /
    round_down_to) round_down_to`` samples (``formula``); ``samples`` per pass (None:
    not stated)."""

    every_epochs: float | None = None
    every_samples: float | None = None
    formula: dict | None = field(default=None, compare=False)
    samples: int | None = None
    note: str = ""
    source: str = ""

    def interval_samples(self, batch: int, dataset_samples: int | None) -> float:
        """Training samples between evaluations at global batch ``batch``, rounded up to a
        whole number of batches (the training rules allow the evaluation point so)."""
        if self.every_epochs is not None:
            raw = self.every_epochs * float(dataset_samples)
        elif self.every_samples is not None:
            raw = float(self.every_samples)
        else:
            f = self.formula
            step = float(f["round_down_to"])
            raw = math.floor(f["fraction"] * (f["per_batch"] * batch + f["base"]) / step) * step
        return math.ceil(raw / batch) * batch


@dataclass(frozen=True)
class Benchmark:
    """One MLPerf Training benchmark and its RCPs (sorted by batch). ``unit``: what the
    convergence points count (:data:`UNITS`); ``dataset_samples``: training-set size for
    ``epochs``; ``sequence_length``: tokens per sample of a sequence model;
    ``not_plannable``: why ddlsim cannot express its training step ("" when it can);
    ``lora``: the LoRA fine-tuning recipe of a benchmark that trains adapters on a frozen
    base (``rank``, ``alpha``, ``dropout``, ``targets``, ``source``; None: every weight is
    trained)."""

    name: str
    title: str
    zoo_model: str
    quality_target: str
    unit: str
    points: tuple[RCPPoint, ...]
    evaluation: EvalRule
    source: dict = field(compare=False)
    dataset_samples: int | None = None
    sequence_length: int | None = None
    starts_from: str = ""
    not_plannable: str = ""
    notes: tuple[str, ...] = ()
    lora: dict | None = field(default=None, compare=False)

    @property
    def batch_range(self) -> tuple[int, int]:
        return self.points[0].batch, self.points[-1].batch

    @property
    def samples_per_unit(self) -> float:
        """Samples in one unit of the convergence points."""
        if self.unit == "epochs":
            return float(self.dataset_samples)
        if self.unit == "tokens":
            return 1.0 / self.sequence_length
        return 1.0

    def citation(self) -> str:
        s = self.source
        return (f"{s['repository']} {s['path']} @ {s['commit'][:12]} ({s['license']})")


@dataclass(frozen=True)
class Convergence:
    """Training needed to reach the benchmark's target at one global batch.

    ``value``: in the benchmark's ``unit``; ``samples`` / ``steps``: training samples and
    optimizer steps (``ceil(samples / batch)``); ``method``: ``published`` | ``interpolated``
    | ``clamped``; ``in_range``: the batch lies in the published range; ``neighbours``: the
    published batches used; ``evals``: evaluation passes, ``eval_samples``: samples per pass
    (None: not stated); ``note``: what was done, in one line."""

    benchmark: str
    batch: int
    value: float
    unit: str
    samples: float
    steps: int
    method: str
    in_range: bool
    neighbours: tuple[int, ...]
    evals: int
    eval_samples: int | None
    note: str
    label: str = RCP_LABEL

    def eval_step_equivalents(self, forward_fraction: float) -> float:
        """Evaluation work in training steps of this batch: passes x samples per pass x
        (forward cost of a sample / training-step cost of a sample) / batch."""
        if not self.eval_samples:
            return 0.0
        return self.evals * self.eval_samples * forward_fraction / self.batch


def olympic_mean(values) -> float:
    """Mean without the smallest and the largest value (the RCP checker's "olympic
    mean"); needs at least three values."""
    v = sorted(float(x) for x in values)
    if len(v) < 3:
        raise ConfigError(f"rcp: an olympic mean needs >= 3 runs, got {len(v)}")
    return float(np.mean(v[1:-1]))


# --------------------------------------------------------------------------- loading
def _files() -> dict[str, str]:
    root = importlib.resources.files("ddlsim").joinpath(_DATA)
    return {p.name.removesuffix(".json"): p.read_text() for p in root.iterdir()
            if p.name.endswith(".json")}


def _parse(name: str, doc: dict) -> Benchmark:
    unit = doc["unit"]
    if unit not in UNITS:
        raise ConfigError(f"rcp/{name}.json: unit must be one of {', '.join(UNITS)}, "
                          f"got {unit!r}")
    points = []
    for key, rec in doc["rcps"].items():
        runs = next(v for k, v in rec.items() if k.lower().endswith("to converge"))
        points.append(RCPPoint(int(rec["BS"]), olympic_mean(runs), len(runs), key,
                               dict(rec.get("Hyperparams", {}))))
    points.sort(key=lambda p: p.batch)
    if len({p.batch for p in points}) != len(points) or not points:
        raise ConfigError(f"rcp/{name}.json: needs one record per batch size")
    ev = doc["evaluation"]
    rule = EvalRule(ev.get("every_epochs"), ev.get("every_samples"),
                    ev.get("every_samples_formula"), ev.get("samples"), ev.get("note", ""),
                    ev.get("source", ""))
    notes = tuple(doc[k] for k in ("vocab_note",) if doc.get(k))
    return Benchmark(name, doc["title"], doc["zoo_model"], doc["quality_target"], unit,
                     tuple(points), rule, dict(doc["source"]), doc.get("dataset_samples"),
                     doc.get("sequence_length"), doc.get("starts_from", ""),
                     doc.get("not_plannable", ""), notes, _lora(name, doc.get("lora")))


def _lora(name: str, rec: dict | None) -> dict | None:
    """The file's LoRA recipe with ``targets`` as a tuple (None when it has none)."""
    if rec is None:
        return None
    if not {"rank", "targets", "dropout", "source"} <= set(rec):
        raise ConfigError(f"rcp/{name}.json: lora needs rank, targets, dropout and source")
    return {**rec, "targets": tuple(rec["targets"])}


@lru_cache(maxsize=1)
def _benchmarks() -> dict[str, Benchmark]:
    return {name: _parse(name, json.loads(text)) for name, text in sorted(_files().items())}


def list_benchmarks() -> tuple[str, ...]:
    """Names of the benchmarks with shipped RCPs (``resnet``, ``bert``, ``gpt3``, ...)."""
    return tuple(_benchmarks())


def load_benchmark(name: str) -> Benchmark:
    """The benchmark ``name`` (see :func:`list_benchmarks`); ConfigError with a
    suggestion for unknown names."""
    found = _benchmarks()
    if name not in found:
        raise unknown_name("benchmark", name, found, "MLPerf benchmark")
    return found[name]


def benchmark_for_model(zoo_model: str) -> Benchmark | None:
    """The benchmark whose model is the zoo's ``zoo_model`` (None when none is)."""
    return next((b for b in _benchmarks().values() if b.zoo_model == zoo_model), None)


# --------------------------------------------------------------------------- lookup
def converge_at(benchmark: str | Benchmark, batch: int) -> Convergence:
    """Training to the benchmark's target at global batch ``batch`` (samples): the
    published point, the linear interpolation between the two published neighbours, or,
    below the range, the smallest published batch's samples (flagged). Raises
    :class:`OutsideRCPRange` above the range and ConfigError for a non-positive batch."""
    bm = load_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    if isinstance(batch, bool) or not isinstance(batch, int | np.integer) or batch < 1:
        raise ConfigError(f"global batch: must be an integer >= 1, got {batch!r}")
    batch = int(batch)
    lo, hi = bm.batch_range
    rng = f"{lo:,}-{hi:,}"
    batches = [p.batch for p in bm.points]
    means = [p.mean for p in bm.points]
    if batch > hi:
        raise OutsideRCPRange(
            f"global batch: {batch:,} is above the largest batch with a published RCP for "
            f"{bm.name} ({rng}); ddlsim does not extrapolate convergence (MLCommons' checker "
            "refuses such a batch too): use a global batch <= " f"{hi:,}")
    if batch < lo:
        value, method, used, in_range = means[0], "clamped", (lo,), False
        trend = (f"an upper bound if samples keep growing with the batch, as from {lo:,} "
                 f"to {batches[1]:,}" if len(means) > 1 and means[1] >= means[0]
                 else "no smaller batch is published")
        note = (f"global batch {batch:,} is below the published range {rng} of {bm.name}: "
                f"the samples to converge at {lo:,} used ({trend})")
    elif batch in batches:
        i = batches.index(batch)
        value, method, used, in_range = means[i], "published", (batch,), True
        note = f"published RCP at {batch:,} ({bm.points[i].runs} runs, olympic mean)"
    else:
        j = int(np.searchsorted(batches, batch))
        value = float(np.interp(batch, batches[j - 1:j + 1], means[j - 1:j + 1]))
        method, used, in_range = "interpolated", (batches[j - 1], batches[j]), True
        note = (f"interpolated linearly between the published RCPs at {batches[j - 1]:,} "
                f"and {batches[j]:,}")
    samples = value * bm.samples_per_unit
    steps = math.ceil(samples / batch - 1e-9)
    interval = bm.evaluation.interval_samples(batch, bm.dataset_samples)
    evals = max(1, math.ceil(samples / interval - 1e-9))
    return Convergence(bm.name, batch, value, bm.unit, samples, steps, method, in_range, used,
                       evals, bm.evaluation.samples, note)


def describe(benchmark: str | Benchmark) -> str:
    """One line for reports: the benchmark, its target, its batch range and source."""
    bm = load_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    lo, hi = bm.batch_range
    return (f"{bm.title}: to {bm.quality_target}; RCPs at global batch {lo:,}-{hi:,} "
            f"({len(bm.points)} batch sizes, {bm.unit}); {bm.citation()}")
