"""Time to train an MLPerf Training benchmark to its quality target, every term reported.

:func:`time_to_train` takes a :class:`~ddlsim.job.Job` that trains a benchmark's model and
answers, from the MLCommons reference convergence points (:mod:`ddlsim.convergence.rcp`,
measured data) and the job's simulated iteration (:func:`ddlsim.api.predict`, the one
prediction path):

    total_s = startup_s + steps x iteration_s + evals x eval_pass_s

* ``steps``: samples to the target at the job's global batch ``B`` (the RCPs, interpolated
  between published batches, flagged below the published range, refused above it) / ``B``.
* ``iteration_s``: the simulated training step of the job with the given calibration.
* ``evals``: evaluation passes by the benchmark's rule (every 4 epochs for ResNet-50, every
  N samples for the LLMs, BERT's batch-dependent interval), the last one detecting the
  target. ASSUMPTION for their cost: one pass is a forward pass over the benchmark's
  evaluation samples at the simulated training rate, a forward pass costing one third of a
  training step's model FLOPs (forward 2N, forward + backward 6N FLOPs per parameter and
  token; Kaplan et al. 2020, arXiv 2001.08361, Sec. 2.1) on the hardware FLOP rate of the
  step (so recomputation, which the forward pass does not repeat, is excluded):
  ``eval_pass_s = eval_samples x iteration_s / B x model_flops / (3 hardware_flops)``.
* LoRA: a benchmark that fine-tunes adapters on a frozen base (``llama2_70b_lora``: the
  MLPerf recipe, rank 16 on the fused QKV and output projections,
  :mod:`ddlsim.sim.workloads.lora`) is predicted with its recipe: a job that names no
  LoRA gets it (with a note), a job with another rank, targets or dropout is refused (the
  RCPs were measured with the recipe). Its forward pass is about half a step (the frozen
  base computes no weight gradients), taken from the prediction's ``forward_flops``.
* ``startup_s``: 0 unless given. MLPerf's clock starts after up to 20 minutes of untimed
  model initialisation (MLPerf Training rules, "Run Results"), so a benchmark score has no
  start-up term; pass your own (data loading, checkpoint load) for wall-clock time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ddlsim.convergence import rcp
from ddlsim.errors import ConfigError
from ddlsim.job import Job

#: Where the start-up default comes from.
STARTUP_NOTE = ("start-up 0 s: MLPerf's clock starts after up to 20 minutes of untimed model "
                "initialisation (MLPerf Training rules, Run Results)")
#: The evaluation-cost assumption, for reports.
EVAL_ASSUMPTION = ("each evaluation pass is a forward pass over the evaluation samples at the "
                   "simulated training rate, a forward pass costing 1/3 of a training step's "
                   "model FLOPs (2N of 6N per parameter and token)")
#: The same for LoRA fine-tuning, whose step computes no weight gradients for the base.
EVAL_ASSUMPTION_LORA = ("each evaluation pass is a forward pass over the evaluation samples at "
                        "the simulated training rate, a LoRA step's forward FLOPs over its "
                        "hardware FLOPs (about 1/2: the frozen base computes no weight "
                        "gradients)")


def forward_fraction(model_flops: float | None = None, hardware_flops: float | None = None,
                     recompute: str = "none", forward_flops: float | None = None,
                     lora: bool = False) -> float:
    """Forward-pass time of a sample over its training-step time: ``forward / hardware``
    FLOPs when the forward's are known (LoRA), else ``model / (3 hardware)`` when both are
    known, else from the recomputation: full training none/selective 1/3, full 1/4 (the
    step runs the forward twice); LoRA (backward about one forward) 1/2 and 1/3."""
    if forward_flops and hardware_flops:
        return forward_flops / hardware_flops
    if model_flops and hardware_flops:
        return model_flops / (3.0 * hardware_flops)
    if lora:
        return 1.0 / 3.0 if recompute == "full" else 0.5
    return 0.25 if recompute == "full" else 1.0 / 3.0


@dataclass(frozen=True)
class TimeToTrain:
    """Time to the benchmark's target (s) and its terms: ``total_s = startup_s + train_s +
    eval_s`` with ``train_s = steps x iteration_s`` and ``eval_s = evals x eval_pass_s``.
    ``samples``: training samples to the target; ``in_range``: the global batch lies in the
    published RCP range; ``notes``: how each term was found; ``convergence`` /
    ``prediction``: the RCP lookup and the simulated job."""

    benchmark: str
    global_batch: int
    samples: float
    steps: int
    startup_s: float
    iteration_s: float
    train_s: float
    evals: int
    eval_pass_s: float
    eval_s: float
    total_s: float
    in_range: bool
    notes: tuple[str, ...] = ()
    convergence: rcp.Convergence | None = field(default=None, repr=False)
    prediction: object = field(default=None, repr=False)

    def summary(self) -> dict:
        """One flat record (SI units) for tables and JSON."""
        return {"benchmark": self.benchmark, "global_batch": self.global_batch,
                "samples": self.samples, "steps": self.steps, "startup_s": self.startup_s,
                "iteration_s": self.iteration_s, "train_s": self.train_s,
                "evals": self.evals, "eval_pass_s": self.eval_pass_s, "eval_s": self.eval_s,
                "total_s": self.total_s, "in_range": self.in_range, "notes": list(self.notes)}


def job_global_batch(job: Job) -> int:
    """Samples per optimizer step of ``job``: micro-batch x micro-batches x dp."""
    micro, n = job.resolve_batch()
    return micro * n * job.dp


def lora_recipe(bm: rcp.Benchmark) -> tuple[int, tuple[str, ...], float] | None:
    """``(rank, targets, dropout)`` of the benchmark's LoRA recipe (None: full training)."""
    r = bm.lora
    return None if r is None else (int(r["rank"]), tuple(r["targets"]), float(r["dropout"]))


def with_benchmark_recipe(bm: rcp.Benchmark, job: Job) -> tuple[Job, list[str]]:
    """``job`` with the benchmark's LoRA recipe applied when the benchmark fine-tunes
    with LoRA and the job names no LoRA (and a note saying so); unchanged otherwise."""
    from dataclasses import replace

    recipe = lora_recipe(bm)
    if recipe is None or job.workload.lora_rank is not None:
        return job, []
    rank, targets, dropout = recipe
    wl = replace(job.workload, lora_rank=rank, lora_targets=targets, lora_dropout=dropout)
    return replace(job, workload=wl), [
        f"LoRA recipe of the {bm.name} benchmark applied: rank {rank} (alpha "
        f"{bm.lora.get('alpha', '?')}) on {', '.join(targets)}, adapter dropout {dropout:g} "
        f"({bm.lora['source']})"]


def check_benchmark_job(bm: rcp.Benchmark, job: Job) -> list[str]:
    """ConfigError unless ``job`` trains the benchmark's model as the benchmark does (same
    zoo model, sequence length and dimensions; the vocabulary may differ, with a note);
    returns the notes."""
    from ddlsim.sim.workloads import get_workload

    model = job.workload.model
    if bm.not_plannable:
        raise ConfigError(f"benchmark: {bm.name} cannot be predicted: {bm.not_plannable}")
    if model != bm.zoo_model:
        raise ConfigError(f"workload.model: the {bm.name} benchmark trains {bm.zoo_model}, "
                          f"the job trains {model!r}")
    recipe, mine = lora_recipe(bm), job.workload.lora_settings()
    if recipe != mine:
        def say(s):
            return ("full training (every weight)" if s is None else
                    f"LoRA rank {s[0]} on {', '.join(s[1])}, adapter dropout {s[2]:g}")
        hint = (f"; use Workload({model!r}, lora_rank={recipe[0]})" if recipe and mine is None
                else "")
        raise ConfigError(f"workload.lora_rank: the {bm.name} RCPs were measured with "
                          f"{say(recipe)}, the job trains {say(mine)}{hint}")
    arch = dict(job.workload.architecture)
    other = sorted(k for k in arch if k not in ("seq", "vocab"))
    if other:
        raise ConfigError(f"workload.architecture: {', '.join(other)} changed; the {bm.name} "
                          f"benchmark trains {bm.zoo_model} as published")
    notes = list(bm.notes) if "vocab" not in arch else []
    if bm.sequence_length:
        seq = arch.get("seq", get_workload(model, 1).tokens_per_sample)
        if seq != bm.sequence_length:
            raise ConfigError(
                f"workload.architecture.seq: the {bm.name} benchmark trains sequences of "
                f"{bm.sequence_length:,} tokens, the job's {model} has {seq:,}; use "
                f"Workload({model!r}, (('seq', {bm.sequence_length}),))")
    return notes


def time_to_train(job: Job, benchmark: str | None = None, calibration="stored",
                  startup_s: float = 0.0, prediction=None) -> TimeToTrain:
    """Time for ``job`` to reach the quality target of the MLPerf Training ``benchmark``
    (default: the benchmark whose model the job trains; see
    :func:`ddlsim.convergence.rcp.list_benchmarks`). ``calibration``: as for
    :func:`ddlsim.api.predict`; ``startup_s``: added as is (s, default 0: see the module
    docstring); ``prediction``: an existing prediction of ``job`` (not predicted again).
    ConfigError (one line) for a job the benchmark's RCPs do not describe, a global batch
    above the published range, or a job that does not fit its GPUs."""
    if benchmark is None:
        bm = rcp.benchmark_for_model(job.workload.model)
        if bm is None:
            names = ", ".join(f"{b} ({rcp.load_benchmark(b).zoo_model})"
                              for b in rcp.list_benchmarks())
            raise ConfigError(f"benchmark: no MLPerf Training benchmark trains "
                              f"{job.workload.model!r} (benchmarks with RCPs: {names})")
    else:
        bm = rcp.load_benchmark(benchmark)
    if not (isinstance(startup_s, int | float) and math.isfinite(startup_s) and startup_s >= 0):
        raise ConfigError(f"startup_s: must be a finite number >= 0, got {startup_s!r}")
    job, recipe_notes = with_benchmark_recipe(bm, job)
    notes = check_benchmark_job(bm, job) + recipe_notes
    batch = job_global_batch(job)
    conv = rcp.converge_at(bm, batch)  # refuses above the range before simulating
    if prediction is None:
        from ddlsim.api.predict import predict

        prediction = predict(job, calibration)
    if prediction.fits is False:
        raise ConfigError(f"job: does not fit its GPUs ({prediction.memory_bytes / 2**30:.1f} "
                          f"GiB per GPU of {prediction.memory_capacity_bytes / 2**30:.0f}); "
                          "no time to train")
    it = float(prediction.iteration_s)
    frac = forward_fraction(prediction.model_flops, prediction.hardware_flops,
                            forward_flops=getattr(prediction, "forward_flops", None))
    eval_pass = (conv.eval_samples or 0) * it / batch * frac
    train_s, eval_s = conv.steps * it, conv.evals * eval_pass
    notes = [f"steps: {rcp.RCP_LABEL}, {bm.citation()}; {conv.note}",
             f"evaluation: {conv.evals} passes ({bm.evaluation.note}); "
             f"{EVAL_ASSUMPTION_LORA if bm.lora else EVAL_ASSUMPTION}",
             STARTUP_NOTE if startup_s == 0 else f"start-up {startup_s:g} s as given",
             *notes]
    if not conv.eval_samples:
        notes.append(f"evaluation cost not counted: {bm.name} states no evaluation-set size")
    return TimeToTrain(bm.name, batch, conv.samples, conv.steps, float(startup_s), it,
                       train_s, conv.evals, eval_pass, eval_s, startup_s + train_s + eval_s,
                       conv.in_range, tuple(notes), conv, prediction)


def benchmark_step_equivalents(job: Job, batch: int | None = None) -> tuple[float, str]:
    """(steps to the target + evaluation passes in step-equivalents, note) of the MLPerf
    benchmark whose model ``job`` trains, at global batch ``batch`` (default the job's),
    without simulating: ``steps x iteration_s`` is then train + evaluation time (the
    forward fraction from the job's recomputation). ConfigError as :func:`time_to_train`."""
    bm = rcp.benchmark_for_model(job.workload.model)
    if bm is None:
        raise ConfigError(f"benchmark: no MLPerf Training benchmark trains "
                          f"{job.workload.model!r}")
    notes = check_benchmark_job(bm, job)
    conv = rcp.converge_at(bm, job_global_batch(job) if batch is None else batch)
    extra = conv.eval_step_equivalents(forward_fraction(
        recompute=job.parallelism.recompute, lora=job.workload.lora_rank is not None))
    note = (f"steps to {bm.quality_target} from the MLPerf {bm.name} RCPs "
            f"({rcp.RCP_LABEL}): {conv.note}; {conv.steps:,} steps + {conv.evals} evaluation "
            f"passes ({extra:,.0f} step-equivalents)")
    return conv.steps + extra, "; ".join([note, *notes])


def phased_time_to_train(phases, calibration="stored", predictions=None
                         ) -> tuple[float, tuple[float, ...]]:
    """Training time (s) of a batch schedule and of each phase: ``phases`` are ``(job,
    steps)`` pairs, a phase taking ``steps x`` the simulated iteration of its job (its own
    batch); ``predictions``: job -> an existing prediction (not predicted again). No
    start-up or evaluation term: add them where the schedule states them."""
    from ddlsim.api.predict import predict

    known = dict(predictions or {})
    times = []
    for job, steps in phases:
        if not (isinstance(steps, int | float) and math.isfinite(steps) and steps >= 0):
            raise ConfigError(f"phases: steps must be a finite number >= 0, got {steps!r}")
        pred = known.get(job) or predict(job, calibration)
        known[job] = pred
        times.append(float(steps) * float(pred.iteration_s))
    return float(sum(times)), tuple(times)
