"""Time-to-train rows: the optimizer steps a row's run took to its target.

A row states its training as epochs (a batch schedule of ``{batch_size, epochs}`` phases,
or one batch and the epoch it reached the target at: ``"reached 93.04 at epoch 27"``) over
a data set of known size, or says it ran MLPerf's recipe (the MLCommons reference
convergence points then give the steps, :mod:`ddlsim.convergence.rcp`). Each phase is the
row's job at that phase's batch; its time is ``epochs x samples / batch`` steps of the
simulated iteration (:func:`ddlsim.api.time_to_train.phased_time_to_train`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from ddlsim.errors import ConfigError
from ddlsim.job import Batch, Job
from ddlsim.validation import parse as P

#: One phase of a row's run: the job at the phase's batch and its optimizer steps.
PhaseRun = tuple[Job, float]


def _text(row: Mapping[str, object], *cols: str) -> str:
    return " ; ".join(str(row.get(c, "") or "") for c in cols)


def schedule_of(row: Mapping[str, object]) -> tuple[tuple[P.Phase, ...] | None, str]:
    """(phases, "") of a time-to-train row's batch cell, (None, "") when the cell is not a
    schedule of several phases, or (None, reason) for a schedule that states no epochs."""
    sched = P.parse_batch_schedule(row.get("global_batch", ""), row.get("micro_batch", ""))
    if sched is None or (len(sched) == 1 and sched[0].epochs is None):
        return None, ""
    if any(p.epochs is None for p in sched):
        batches = ", ".join(f"{p.batch:,}" for p in sched)
        return None, (f"a batch schedule of {len(sched)} phases ({batches}) without the epochs "
                      "or steps of each phase")
    return sched, ""


def _dataset(row, job: Job) -> tuple[str | None, int | None, str]:
    """(data-set key, training samples, reason)."""
    from ddlsim.sim.workloads import get_workload

    key = P.parse_dataset(_text(row, "model"), _text(row, "notes"))
    if key is None:
        names = ", ".join(v[0] for v in P.DATASETS.values())
        return None, None, (f"the row names no data set of known size ({names}): no sample "
                            "count for its epochs")
    side = get_workload(job.workload.model, 1).input_shape[-1]
    want = P.RESOLUTION[key]
    if side != want:
        return None, None, (f"the zoo's {job.workload.model} reads {side}x{side} images; the "
                            f"row trains on {P.DATASETS[key][0]} ({want}x{want})")
    return key, P.DATASETS[key][1], ""


def _phase_job(job: Job, batch: int) -> Job | str:
    if job.strategy.kind not in ("allreduce", "ps"):
        return "batch schedules are read for data-parallel runs only"
    if batch % job.dp:
        return f"a phase's global batch {batch:,} does not divide over {job.dp} GPUs"
    return replace(job, batch=Batch(micro=batch // job.dp), assumptions=())


def steps_to_target(row: Mapping[str, object], job: Job, schedule=None
                    ) -> tuple[float | None, tuple[PhaseRun, ...], str]:
    """``(steps, (), note)`` for a run of one batch, ``(None, phases, note)`` for a batch
    schedule, or ``(None, (), reason)``."""
    from ddlsim.api.time_to_train import job_global_batch

    epochs = P.parse_target_epoch(_text(row, "model"), _text(row, "notes"))
    glob = job_global_batch(job)
    if schedule is None:
        stated = P.parse_batch_schedule(row.get("global_batch", ""))
        if stated is None or len(stated) != 1 or stated[0].batch != glob:
            return None, (), ("global batch not stated as one number equal to GPUs x batch "
                              "per GPU")
        if epochs is None:
            steps, why = _rcp_route(row, job, glob)
            return (steps, (), why) if steps is not None else (None, (), why)
        schedule = (P.Phase(glob, epochs),)
    key, samples, why = _dataset(row, job)
    if key is None:
        return None, (), why
    notes = []
    if epochs is not None and len(schedule) > 1:
        schedule, cut = P.truncate(schedule, epochs)
        notes += [cut] if cut else []
    phases: list[PhaseRun] = []
    for i, p in enumerate(schedule):
        pj = (replace(job, assumptions=()) if i == 0 and p.batch == glob
              else _phase_job(job, p.batch))
        if isinstance(pj, str):
            return None, (), pj
        phases.append((pj, p.epochs * samples / p.batch))
    total = sum(p.epochs for p in schedule)
    label = P.DATASETS[key][0]
    if len(phases) == 1:
        notes.insert(0, f"{total:g} epochs of {label} ({samples:,} samples) at global batch "
                        f"{glob:,}: {phases[0][1]:,.0f} steps")
    else:
        parts = " + ".join(f"{p.epochs:g} at {p.batch:,}" for p in schedule)
        notes.insert(0, f"batch schedule of {len(phases)} phases over {label} ({samples:,} "
                        f"samples), epochs at global batch: {parts}; each phase simulated at "
                        "its own batch")
    if epochs is not None and re.search(r"\bat\s+epoch\b", _text(row, "notes").lower()):
        notes.append(f"the target came at epoch {epochs:g}: {epochs:g} epochs trained "
                     "(epochs counted from 1)")
    notes.append("evaluation passes and start-up not counted (the row does not state them)")
    if P.low_resolution(_text(row, "notes"), _text(row, "model")):
        side = P.RESOLUTION[key]
        notes.append(f"the row's notes mention progressive resizing / low-resolution images; "
                     f"the prediction assumes full-resolution {side}x{side} images throughout "
                     "(an overestimate of time where the run used smaller ones)")
    note = "; ".join(notes)
    if len(phases) == 1:
        return phases[0][1], (), note
    return None, tuple(phases), note


def _rcp_route(row, job: Job, glob: int) -> tuple[float | None, str]:
    text = _text(row, "model").lower()
    notes = _text(row, "notes").lower()
    if "mlperf" not in f"{text} {notes} {_text(row, 'metric').lower()}":
        return None, ("steps to the target not stated; the MLCommons reference convergence "
                      "points describe MLPerf's recipe, and the row does not say it ran it")
    return rcp_steps(row, job, glob)


def rcp_steps(row, job: Job, glob: int) -> tuple[float | None, str]:
    """RCP steps + evaluation step-equivalents (:mod:`ddlsim.convergence.rcp`)."""
    from ddlsim.api.time_to_train import benchmark_step_equivalents
    from ddlsim.convergence import rcp

    text = _text(row, "model", "notes").lower()
    bm = rcp.benchmark_for_model(job.workload.model)
    if bm is None:
        return None, (f"steps to the target not stated, and {job.workload.model} is not the "
                      "model of an MLPerf Training benchmark (no reference convergence points)")
    if bm.unit == "epochs" and "imagenet" not in text:
        return None, f"the {bm.name} RCPs are ImageNet epochs; the row names another data set"
    if "checkpoint" in bm.starts_from and re.search(r"phase\s*-?\s*1|from scratch", text):
        return None, (f"the row trains from scratch; the MLPerf {bm.name} benchmark starts from "
                      f"{bm.starts_from}, and its RCPs cover only that part")
    try:
        return benchmark_step_equivalents(job, glob)
    except ConfigError as exc:
        return None, str(exc)
