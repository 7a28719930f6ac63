"""What would fit when a job does not: :func:`memory_advice`.

The alternatives are checked with the same memory model as :func:`ddlsim.api.predict`
(:func:`ddlsim.api.check_memory`, no simulation): a smaller batch per GPU, activation
recomputation, a ZeRO stage (distributed optimizer; data-parallel and 3D jobs), and for
decoders tensor x pipeline parallelism.
"""

from __future__ import annotations

from dataclasses import replace

from ddlsim.api.predict import check_memory, place
from ddlsim.errors import ConfigError
from ddlsim.job import Batch, Job, Parallelism, Strategy

GiB = 2**30


def _fits(job: Job) -> tuple[bool, float] | None:
    try:
        need, cap = check_memory(job)
    except ConfigError:
        return None
    return need <= cap, need


def _is_decoder(job: Job) -> bool:
    from ddlsim.sim.workloads import get_workload

    hp = get_workload(job.workload.model, 1, **dict(job.workload.architecture)).hyperparams
    return {"heads", "layers", "hidden"} <= set(hp)


def _data_parallel_advice(job: Job) -> list[str]:
    out = []
    micro, _ = job.resolve_batch()
    b = micro // 2
    while b >= 1:
        got = _fits(replace(job, batch=Batch(micro=b)))
        if got and got[0]:
            out.append(f"batch {b} per GPU fits ({got[1] / GiB:.1f} GiB)")
            break
        b //= 2
    if job.parallelism.recompute != "full":
        got = _fits(replace(job, parallelism=replace(job.parallelism, recompute="full")))
        if got and got[0]:
            out.append(f"full activation recomputation fits ({got[1] / GiB:.1f} GiB)")
    zero = _zero_advice(job)
    if zero:
        out.append(zero)
    if _is_decoder(job):
        out.append(_model_parallel_advice(job) or "no tp x pp split up to the GPU count fits")
    elif not out:
        out.append("even batch 1 per GPU does not fit: the weights, gradients and optimizer "
                   "state alone exceed one GPU")
    return out


def _zero_advice(job: Job) -> str | None:
    """The smallest ZeRO stage above the job's that fits (sharding over the gradient
    group: the GPUs of an allreduce job, dp x cp of a 3D job)."""
    group = job.cluster.gpus if job.strategy.kind == "allreduce" else job.dp * job.parallelism.cp
    if group < 2 or job.strategy.kind not in ("allreduce", "pipeline", "3d"):
        return None
    for z in range(job.parallelism.zero + 1, 4):
        got = _fits(replace(job, parallelism=replace(job.parallelism, zero=z)))
        if got and got[0]:
            return f"ZeRO-{z} (distributed optimizer) fits ({got[1] / GiB:.1f} GiB)"
    return None


def _model_parallel_advice(job: Job) -> str | None:
    """The smallest tp x pp (tp within 8 first) that fits, as Megatron would split."""
    gpus = job.cluster.gpus
    mp = 2
    while mp <= gpus:
        tp = min(mp, 8)
        pp = mp // tp
        if gpus % mp == 0:
            cand = replace(job, strategy=Strategy(kind="3d"),
                           parallelism=Parallelism(tp=tp, pp=pp, placement="blocks",
                                                   recompute=job.parallelism.recompute),
                           batch=Batch(global_batch=(job.resolve_batch()[0]) * gpus, micro=1))
            got = _fits(cand)
            if got and got[0]:
                return (f"tensor x pipeline parallelism tp {tp} x pp {pp} (ddlsim 3d) fits "
                        f"({got[1] / GiB:.1f} GiB)")
        mp *= 2
    return None


def memory_advice(job: Job) -> list[str]:
    """Alternatives that fit when ``job`` does not (empty when it fits): a smaller batch
    per GPU, recomputation, a ZeRO stage, model parallelism; for pipeline and 3D jobs a
    ZeRO stage, then the placement's own suggestions (more stages, a smaller micro-batch,
    recomputation)."""
    got = _fits(job)
    if got is None or got[0]:
        return []
    if job.strategy.kind in ("pipeline", "3d"):
        zero = _zero_advice(job)
        return [zero] * bool(zero) + list(place(job, "default", suggest=True).suggestions)
    return _data_parallel_advice(job)
