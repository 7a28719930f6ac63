"""Training targets and wall time for :mod:`ddlsim.api.plan` (and
:mod:`ddlsim.api.faults`): durations (``24h``), targets (``epochs=90``, ``tokens=3e11``,
``quality``, ``accuracy``) turned into samples or steps, and the goodput of a job under
independent GPU failures with Young's optimum checkpoint interval.

Two targets are reached rather than fixed amounts of work, and they differ in kind:

* ``quality``: the MLPerf Training benchmark's quality target (75.9 % top-1 for
  ResNet-50, log perplexity 2.69 for GPT-3 175B, ...). Steps come from MEASUREMENTS: the
  MLCommons reference convergence points at the plan's global batch
  (:mod:`ddlsim.convergence.rcp`), and the benchmark's evaluation passes are added.
* ``accuracy`` (ResNet-50 only): the accuracy of Goyal et al.'s 90-epoch recipe, steps
  from a MODEL - McCandlish et al.'s critical batch size fitted to that paper's rows
  (:mod:`ddlsim.convergence.stat_eff`). Kept for plans of that recipe.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

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

#: Label of the ``accuracy`` target's steps (a model, not a measurement).
ACCURACY_LABEL = ("MODEL: McCandlish et al. 2018 critical batch fitted to Goyal et al. 2017's "
                  "90-epoch ResNet-50 recipe")


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



@dataclass(frozen=True)
class Target:
    """What training must achieve. ``kind``: epochs | samples | tokens | quality |
    accuracy; ``value``: the number given (None for quality and accuracy); ``samples``:
    training samples for a fixed amount of work (None otherwise); ``benchmark``: the MLPerf
    benchmark of a ``quality`` target (:mod:`ddlsim.convergence.rcp`)."""

    kind: str
    value: float | None
    samples: float | None
    benchmark: str | None = None

    def convergence(self, global_batch: int):
        """The RCP lookup of a ``quality`` target at ``global_batch`` (may raise
        :class:`ddlsim.convergence.rcp.OutsideRCPRange`)."""
        from ddlsim.convergence import rcp

        return rcp.converge_at(self.benchmark, global_batch)

    def steps(self, global_batch: int, stat_eff=None) -> tuple[int, str]:
        """(optimizer steps, where the number comes from) at ``global_batch`` samples."""
        if self.kind == "quality":
            from ddlsim.convergence.rcp import RCP_LABEL

            conv = self.convergence(global_batch)
            return conv.steps, f"{RCP_LABEL} ({conv.benchmark}): {conv.method}"
        if self.kind == "accuracy":
            return (math.ceil(stat_eff.steps(global_batch)),
                    f"{stat_eff.label}; {stat_eff.name}")
        return math.ceil(self.samples / global_batch), "fixed work: samples / global batch"

    def describe(self) -> str:
        if self.kind == "quality":
            from ddlsim.convergence.rcp import load_benchmark

            bm = load_benchmark(self.benchmark)
            return (f"the MLPerf {bm.name} quality target, {bm.quality_target} (steps "
                    "measured: MLCommons reference convergence points)")
        if self.kind == "accuracy":
            return f"Goyal et al.'s 90-epoch ResNet-50 accuracy ({ACCURACY_LABEL})"
        return f"{self.kind}={self.value:g} ({self.samples:.4g} samples)"


TARGET_KINDS = ("epochs", "samples", "tokens", "quality", "accuracy")


def quality_target(model: str, tokens_per_sample: int | None = None) -> Target:
    """The ``quality`` target of ``model``: the MLPerf Training benchmark that trains it,
    when the planner can express that benchmark's training step; ConfigError (one line,
    saying why) otherwise."""
    from ddlsim.convergence import rcp

    bm = rcp.benchmark_for_model(model)
    if bm is None:
        with_rcp = [b.zoo_model for b in map(rcp.load_benchmark, rcp.list_benchmarks())
                    if not b.not_plannable]
        raise ConfigError(f"target: 'quality' needs an MLPerf Training benchmark of the model; "
                          f"{model!r} has none (models with one: {', '.join(with_rcp)}); use "
                          "epochs=, samples= or tokens=")
    if bm.not_plannable:
        raise ConfigError(f"target: 'quality' for {model} is the MLPerf {bm.name} benchmark, "
                          f"which ddlsim cannot plan: {bm.not_plannable}; use tokens=N for "
                          "full training")
    if bm.sequence_length and tokens_per_sample != bm.sequence_length:
        raise ConfigError(f"target: 'quality' for {model} is MLPerf's {bm.name} at sequences "
                          f"of {bm.sequence_length:,} tokens, the planner's {model} has "
                          f"{tokens_per_sample}; use ddlsim.api.time_to_train with a job whose "
                          f"workload sets seq={bm.sequence_length}")
    return Target("quality", None, None, bm.name)


def parse_target(text: str, model: str, dataset_samples: int | None = None,
                 tokens_per_sample: int | None = None) -> Target:
    """Parse ``epochs=90`` | ``samples=1.15e8`` | ``tokens=3e11`` | ``quality`` |
    ``accuracy``.

    ``dataset_samples``: training-set size for ``epochs`` (default: the model's known data
    set); ``tokens_per_sample``: sequence length of a sequence model, needed for ``tokens``
    (and checked against the benchmark's for ``quality``).
    """
    s = str(text).strip().lower()
    if s == "quality":
        return quality_target(model, tokens_per_sample)
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
        raise ConfigError(f"target: must be epochs=N, samples=N, tokens=N, quality or "
                          f"accuracy, got {text!r}")
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



def steps_and_eval(target: Target, pred, stat_eff=None) -> tuple[int, str, int, float, str]:
    """(steps, their source, evaluation passes, evaluation seconds, note) of one planned
    configuration ``pred`` (a :class:`ddlsim.api.plan_predict.ConfigPrediction`); a
    ``quality`` target without an RCP at its batch gives 0 steps and the reason."""
    if target.kind != "quality":
        steps, source = target.steps(pred.global_batch, stat_eff)
        return steps, source, 0, 0.0, ""
    from ddlsim.api.time_to_train import forward_fraction
    from ddlsim.convergence.rcp import RCP_LABEL, OutsideRCPRange

    try:
        conv = target.convergence(pred.global_batch)
    except OutsideRCPRange as exc:
        return 0, RCP_LABEL, 0, math.nan, str(exc).removeprefix("global batch: ")
    from ddlsim.convergence.rcp import load_benchmark

    frac = forward_fraction(recompute=pred.recompute,
                            lora=load_benchmark(conv.benchmark).lora is not None)
    eval_s = conv.eval_step_equivalents(frac) * pred.iteration_s
    note = "" if conv.in_range else (f"below the RCP batch range: samples at "
                                     f"{conv.neighbours[0]:,} used")
    return conv.steps, f"{RCP_LABEL} ({conv.benchmark}): {conv.method}", conv.evals, eval_s, note


def quality_notes(target: Target, global_batches) -> list[str]:
    """What a ``quality`` plan's steps and evaluation terms rest on, and how many of the
    ``global_batches`` planned lie outside the published RCP range."""
    from ddlsim.api.time_to_train import EVAL_ASSUMPTION, EVAL_ASSUMPTION_LORA, STARTUP_NOTE
    from ddlsim.convergence import rcp

    bm = rcp.load_benchmark(target.benchmark)
    assumption = EVAL_ASSUMPTION_LORA if bm.lora else EVAL_ASSUMPTION
    lo, hi = bm.batch_range
    out = [f"steps to the target are MEASURED: {rcp.describe(bm)}; between published batches "
           "interpolated linearly in samples to converge (olympic means, as MLCommons' RCP "
           "checker)",
           f"evaluation: {bm.evaluation.note}; {assumption}", STARTUP_NOTE, *bm.notes]
    below = sum(1 for b in global_batches if b < lo)
    above = sum(1 for b in global_batches if b > hi)
    if below:
        out.append(f"{below} configurations have a global batch below {lo:,}: the samples to "
                   f"converge at {lo:,} are used (flagged in the note column)")
    if above:
        out.append(f"{above} configurations have a global batch above {hi:,}: no RCP, not "
                   "planned (ddlsim does not extrapolate convergence)")
    return out


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
