"""A reference row -> the :class:`~ddlsim.job.Job` it measured and what it measured.

Every rule reads the row's columns and free text (model, gpu, interconnect, precision,
parallelism, notes, and the source text for framework keywords only); none looks at a
row's id or at who published it. Each guess is recorded in the job's ``assumptions``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from ddlsim.errors import ConfigError
from ddlsim.job import Batch, Cluster, Job, Parallelism, Precision, Strategy, Workload
from ddlsim.validation import parse as P
from ddlsim.validation import row_cluster as C
from ddlsim.validation import time_rows as T

#: Training images of ImageNet-1k (ILSVRC 2012), for epoch counts of ImageNet rows.
IMAGENET_TRAIN_IMAGES = 1_281_167
#: Metrics that need a model of the optimiser's progress, not of throughput.
_LLM_METRICS = ("model_tflops_per_gpu", "hardware_tflops_per_gpu", "mfu", "hfu",
                "aggregate_pflops", "pct_of_peak")


@dataclass(frozen=True)
class RowRun:
    """A row read into a job: ``metric`` (kind, scale, ...), ``published`` in the metric's
    unit after ``scale``, ``baseline``: the job the metric compares with (scaling
    efficiency, speed-up), ``steps``: optimizer steps to the target (time to train);
    ``phases``: ``(job, steps)`` per phase of a batch schedule (time to train; ``job`` is
    the first phase's, ``steps`` None)."""

    job: Job
    metric: P.MetricParse
    published: float
    baseline: Job | None = None
    steps: float | None = None
    phases: tuple[tuple[Job, float], ...] = ()


def _text(row: Mapping[str, object], *cols: str) -> str:
    return " ; ".join(str(row.get(c, "") or "") for c in cols)


_FAMILY_OF = {"gpt": ("gpt",), "llama": ("llama", "nemotron")}


def _zoo_match(family: str, arch: dict, params_b: float | None) -> tuple[str | None, str]:
    """The zoo decoder of ``family`` with exactly the stated dimensions, else (no
    dimensions) the one whose parameter count is within 3 % of the stated size."""
    from ddlsim.sim.workloads import get_workload, list_workloads

    best = None
    for name in list_workloads():
        wl = get_workload(name, 1)
        hyper = wl.hyperparams
        kind = "llama" if "kv_heads" in hyper else "gpt" if "heads" in hyper else ""
        if kind != family or "vocab" not in hyper or name.startswith("bert"):
            continue
        if arch and all(hyper.get(k) == v for k, v in arch.items()):
            return name, ""
        if not arch and params_b:
            n = sum(lay.param_count for lay in wl.layers) / 1e9
            err = abs(n - params_b) / params_b
            if err < 0.03 and (best is None or err < best[0]):
                best = (err, name, n)
    if best:
        return best[1], (f"{params_b:g}B {family.upper()} taken as the zoo's {best[1]} "
                         f"({best[2]:.2f}B parameters)")
    return None, ""


def _workload(row, notes: list[str]) -> tuple[Workload | None, str, str]:
    """(workload, family, reason)."""
    mp = P.parse_model(str(row["model"]), str(row.get("parallelism", "")),
                       str(row.get("notes", "")))
    if mp is None:
        return None, "", f"model {row['model']!r} not in the zoo and no dimensions given"
    notes += list(mp.assumptions)
    arch = dict(mp.arch)
    from ddlsim.sim.workloads import get_workload

    if mp.zoo is not None:
        zoo_hyper = dict(get_workload(mp.zoo, 1).hyperparams) if arch else {}
        over = {k: v for k, v in arch.items() if k in zoo_hyper and zoo_hyper[k] != v}
        return Workload(mp.zoo, tuple(sorted(over.items()))), mp.family, ""
    if mp.family in _FAMILY_OF:
        name, note = _zoo_match(mp.family, arch, mp.params_b)
        if name:
            notes += [note] if note else []
            return Workload(name), mp.family, ""
    template = {"llama": "llama2-7b", "gpt": "gpt-small"}.get(mp.family)
    need = ("layers", "hidden", "heads")
    if template is None or any(k not in arch for k in need):
        return None, mp.family, (f"model {row['model']!r} not in the zoo, and its dimensions "
                                 f"(layers, hidden, heads) are not all in the row")
    hyper = dict(get_workload(template, 1).hyperparams)
    over = {k: v for k, v in arch.items() if k in hyper}
    if template == "llama2-7b":
        over.setdefault("kv_heads", over["heads"])
        if "ffn" not in over:
            over["ffn"] = 4 * over["hidden"]
            notes.append(f"ffn not stated: 4 x hidden = {over['ffn']} assumed")
    for k in ("seq", "vocab"):
        if k not in over:
            notes.append(f"{k} not stated: the {template} template's {hyper[k]} assumed")
    return Workload(template, tuple(sorted(over.items()))), mp.family, ""


def _strategy(row, metric: P.MetricParse, par: P.ParallelismParse, family: str,
              framework: str) -> str:
    cat = str(row.get("category", ""))
    if metric.kind in ("busbw_GBps", "per_nic_busbw_GBps") or cat == "collectives":
        return "collective"
    if par.strategy == "ps":
        return "ps"
    if (par.tp or 1) > 1 or (par.cp or 1) > 1 or ((par.pp or 1) > 1
                                                   and family in ("gpt", "llama")):
        return "3d"
    if (par.pp or 1) > 1 or (par.chunks or 1) > 1 or framework == "torchgpipe":
        return "pipeline"
    if par.strategy == "pipeline":
        return "unknown pipeline"
    if family in ("gpt", "llama"):
        return "3d"  # decoders train Megatron-style: micro-batches, gradient accumulation
    return "allreduce"


def _collective(row, job_cluster: Cluster, notes: list[str]) -> Strategy:
    from ddlsim.api.collectives import nccl_sweep

    text = _text(row, "model", "parallelism", "notes").lower()
    op = "allreduce"
    for pat, name in ((r"all[_\s-]?gather", "all_gather"), (r"reduce[_\s-]?scatter",
                      "reduce_scatter"), (r"all[_\s-]?to[_\s-]?all", "alltoall"),
                      (r"broadcast", "broadcast")):
        if re.search(pat, text):
            op = name
    if "non-allreduce" in text and op == "allreduce":
        op = "all_gather"
        notes.append("'non-allreduce collectives': all_gather taken as their representative")
    algo = "ring" if re.search(r"nccl_algo\s*=\s*ring", text) else "auto"
    sizes = [4 * 2**30]

    def size(tok: str) -> float:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)([kmgt]?)", tok.lower())
        return float(m.group(1)) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30,
                                    "t": 2**40}[m.group(2)]
    lo = re.search(r"-b\s+(\d+(?:\.\d+)?[kmgtKMGT]?)\b", text)
    hi = re.search(r"-e\s+(\d+(?:\.\d+)?[kmgtKMGT]?)\b", text)
    metric = str(row["metric"]).lower()
    stat = "mean" if re.search(r"\bavg|mean", metric) else "peak"
    if hi:
        sizes = [size(hi.group(1))]
        if stat == "mean":
            sizes = nccl_sweep(size(lo.group(1)) if lo else 8.0, size(hi.group(1)))
    else:
        notes.append("message size not stated: peak bus bandwidth at 4 GiB (nccl-tests -e 4G)")
    return Strategy(kind="collective", op=op, algo=algo, sizes_bytes=tuple(sizes),
                    size_stat=stat, per_nic="per_nic" in P.parse_metric(
                        str(row["metric"]), str(row["unit"])).kind)


def read_row(row: Mapping[str, object]) -> tuple[RowRun | None, str]:
    """A reference row -> ``(RowRun, "")`` or ``(None, one-line reason)``."""
    metric = P.parse_metric(str(row["metric"]), str(row["unit"]))
    if metric is None:
        return None, f"metric {row['metric']!r} ({row['unit']}) is not a performance metric"
    if re.search(r"bad[_\s-]?config|misconfigur", _text(row, "metric", "unit").lower()):
        return None, "a misconfigured system's measurement: nothing to predict"
    try:
        published = float(str(row["value"]).strip()) * metric.scale
    except ValueError:
        return None, f"value {row['value']!r} is not a number"
    notes: list[str] = []
    sp = P.parse_system(str(row["gpu"]), str(row.get("interconnect", "")))
    gp = sp.gpu
    if gp is None or gp.device is None:
        return None, f"GPU {row['gpu']!r} not in the device catalog"
    stated_gpus = C.whole_number(row.get("num_gpus"))
    if sp.reason and (stated_gpus is None or sp.conflict):
        return None, sp.reason
    notes += list(gp.assumptions) + list(sp.assumptions[:1 if stated_gpus else None])
    par = P.parse_parallelism(_text(row, "parallelism", "notes"))
    ic = P.parse_interconnect(str(row.get("interconnect", "")))
    if not (sp.preset or ic.system or ic.intra or ic.nic_Gbps or ic.fabric) and re.search(
            r"nvlink|nvswitch|infiniband|\bib\b|ethernet|pci\s*-?e|\bgb(?:it|e|ps)\b",
            str(row["gpu"]).lower()):  # the links are described in the GPU cell
        ic = P.parse_interconnect(f"{row.get('interconnect', '')} ; {row['gpu']}")
    notes += list(ic.assumptions)
    if ic.reason:
        return None, ic.reason
    framework = P.parse_framework(_text(row, "source", "precision", "parallelism"))
    if re.search(r"torchgpipe", _text(row, "source", "parallelism", "notes").lower()):
        framework = "torchgpipe"
    gpus = stated_gpus or sp.gpus or par.ranks
    if gpus is None and metric.kind == "per_nic_busbw_GBps":
        nodes = C.whole_number(row.get("nodes")) or 2
        gpus = 8 * nodes
        row = {**row, "nodes": str(nodes)}
        notes.append(f"GPU count not stated: {nodes} nodes of 8 GPUs assumed")
    if gpus is None:
        return None, "number of GPUs not stated"
    strategy = "collective" if metric.kind.endswith("busbw_GBps") else None
    if strategy is None:
        wl, family, why = _workload(row, notes)
        if wl is None:
            return None, why
        pr = P.parse_precision(str(row["precision"]))
        if pr is None and P.framework_only(str(row["precision"])):
            pr = P.device_default_precision(gp.device, str(row["precision"]))
        if pr is None:
            return None, f"precision {row['precision']!r} not understood"
        notes += list(pr.assumptions)
        precision = Precision(pr.compute, pr.grad, pr.fp8)
        strategy = _strategy(row, metric, par, family, framework)
        if strategy == "unknown pipeline":
            return None, (f"pipeline {row.get('parallelism', '')!r}: stages and micro-batches "
                          "not stated")
    else:
        wl, precision = Workload("resnet50"), Precision()
    cluster, why = C.cluster_of(row, gp.device, gpus, ic, notes, sp)
    if cluster is None:
        return None, why
    schedule = None
    if metric.kind == "time_to_train_s":
        schedule, why = T.schedule_of(row)
        if why:
            return None, why
        if schedule:  # the job of the first phase; the others follow from it
            row = {**row, "global_batch": str(schedule[0].batch), "micro_batch": ""}
    try:
        job = _job(row, strategy, wl, cluster, precision, par, framework, notes, metric)
    except ConfigError as exc:
        return None, str(exc)
    if isinstance(job, str):
        return None, job
    baseline = None
    if metric.kind in ("scaling_efficiency", "speedup"):
        base = metric.baseline_gpus or 1
        baseline = _baseline(job, base)
    steps, phases = None, ()
    if metric.kind == "time_to_train_s":
        steps, phases, why = T.steps_to_target(row, job, schedule)
        if steps is None and not phases:
            return None, why
        if why:
            job = job.with_assumptions(why)
    return RowRun(job, metric, published, baseline, steps, phases), ""


def _job(row, strategy, wl, cluster, precision, par, framework, notes, metric) -> Job | str:
    glob, micro = C.whole_number(row.get("global_batch")), C.whole_number(row.get("micro_batch"))
    if par.mbs:
        micro = par.mbs
    if strategy == "collective":
        st = _collective(row, cluster, notes)
        return Job(workload=wl, cluster=cluster, strategy=st, batch=Batch(micro=1),
                   assumptions=tuple(notes))
    tp, pp, cp = par.tp or 1, par.pp or 1, par.cp or 1
    if strategy == "pipeline":
        chunks = par.chunks or 1
        if glob is None and micro is None:
            return "batch not stated"
        if glob is not None and micro is not None and chunks > 1:
            # torch.chunk: pieces of ceil(batch / chunks); ``chunks`` full micro-batches
            micro = math.ceil(glob / chunks)
        glob = (micro or glob // chunks) * chunks * max(1, cluster.gpus // (tp * pp * cp))
        micro = micro or glob // chunks
    if strategy in ("3d", "pipeline") and micro is None:
        micro = 1
        notes.append("micro-batch not stated: 1 assumed")
    if strategy in ("allreduce", "ps") and micro is None:
        if glob is None or glob % cluster.gpus:
            return "batch per GPU not stated"
        micro = glob // cluster.gpus
    schedule = "gpipe" if strategy == "pipeline" and (par.chunks or framework == "torchgpipe") \
        else "1f1b"
    balance = tuple(par.balance or ())
    placement = "manual" if balance else ("blocks" if strategy == "3d" else "auto")
    unit = "torchgpipe" if framework == "torchgpipe" and balance else "layers"
    parallel = Parallelism(tp=tp, pp=pp, cp=cp, vp=par.vp or 1,
                           sequence_parallel=bool(par.sequence_parallel),
                           zero=par.zero or 0, recompute=par.recompute or "none",
                           schedule=schedule, placement=placement, balance=balance,
                           balance_unit=unit)
    if par.attention:  # stated in the row; otherwise the Job's default (fused)
        wl = replace(wl, attention=par.attention)
    st = Strategy(kind=strategy, ps_mode=par.ps_mode or "asp")
    batch = Batch(global_batch=glob if strategy in ("3d", "pipeline") else None, micro=micro)
    job = Job(workload=wl, cluster=cluster, precision=precision, parallelism=parallel,
              batch=batch, strategy=st, framework=framework, iterations=5,
              assumptions=tuple(notes))
    job.resolve_batch()
    if strategy == "3d" and glob is not None and par.dp and par.dp != job.dp:
        return f"dp={par.dp} does not match the GPUs left by tp x cp x pp ({job.dp})"
    return job


def _baseline(job: Job, gpus: int) -> Job:
    """The same job on ``gpus`` GPUs of one replica (the per-GPU throughput it scales from)."""
    from dataclasses import replace

    par = replace(job.parallelism, tp=1, pp=1, cp=1, placement="auto", balance=(),
                  balance_unit="layers")
    micro = job.resolve_batch()[0]
    cl = replace(job.cluster, gpus=gpus,
                 gpus_per_node=min(gpus, job.cluster.gpus_per_node or gpus))
    kind = "allreduce" if job.strategy.kind in ("pipeline", "3d") else job.strategy.kind
    return replace(job, cluster=cl, parallelism=par, strategy=replace(job.strategy, kind=kind),
                   batch=Batch(micro=micro), framework=job.framework)
