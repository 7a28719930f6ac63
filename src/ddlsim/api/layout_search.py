"""The parallel layout of a decoder, chosen by a search (what ``ddlsim plan`` uses).

For a decoder job template (workload, cluster with its GPU count, precision, global batch)
:func:`search_layouts` enumerates Megatron-style layouts

* ``tp``: powers of two up to the GPUs of one node that divide the attention heads and the
  key/value heads (tensor parallelism stays on NVLink);
* ``pp``: powers of two up to the number of transformer blocks (even block split, 1F1B);
* ``dp = gpus / (tp x pp)``, which must divide the global batch (kept fixed);
* ``micro_batch``: 1, 2, 4, 8 dividing ``global_batch / dp`` (or the template's);
* ``recompute``: none, selective, full;

keeps those whose memory fits (:func:`ddlsim.api.check_memory`, no simulation), ranks them
by a cheap calibrated estimate, predicts the best few (and the first-fit layout of the old
rule, so the search is never worse than it) with :func:`ddlsim.api.predict`, and returns
the predicted layouts that fit, fastest first.

Pruning, each step safe by construction of the memory model except the last, which is a
monotonicity the model has (more stages never need more memory per GPU):

* memory grows with the micro-batch, so the micro-batches of a (tp, pp, recompute) are
  checked from the smallest and stop at the first that does not fit;
* a recomputation is only tried at micro-batches where a cheaper one did not fit (same
  memory fit, more compute: dominated);
* for each tp, pp is tried from the largest down and stops at the first pp whose most
  frugal layout (smallest micro-batch, full recomputation) does not fit.

The estimate (``proxy_s``) is the 1F1B makespan ``(m + pp - 1) x slowest stage (forward +
backward with recomputation) + optimizer step`` from :func:`ddlsim.api.place` with the
calibration: it ignores the data-parallel gradient allreduce and the p2p sends, which the
prediction adds; hence several layouts (distinct tp x pp) are predicted, not one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ddlsim.errors import ConfigError
from ddlsim.job import RECOMPUTE, Batch, Job, Parallelism, Strategy

MICRO_BATCHES = (1, 2, 4, 8)
DEFAULT_GLOBAL_BATCH = 512  # sequences per iteration (Megatron-LM-like)
DTYPE_NAMES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "fp8": "fp8"}


@dataclass(frozen=True)
class LayoutChoice:
    """One predicted layout: degrees, micro-batch, recomputation and the prediction's
    headline numbers (SI units): ``iteration_s``, ``tokens_per_s``, ``mfu`` (fraction),
    ``memory_bytes`` / ``capacity_bytes`` on the fullest GPU, ``bubble_fraction`` of the
    pipeline, ``proxy_s`` (the cheap estimate that ranked it) and ``why``."""

    tp: int
    pp: int
    dp: int
    micro_batch: int
    recompute: str
    iteration_s: float
    tokens_per_s: float
    mfu: float
    memory_bytes: float
    capacity_bytes: float
    bubble_fraction: float
    proxy_s: float
    dtype: str = ""
    why: str = ""
    job: Job | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        """``tp 8 pp 4 dp 2 mbs 1`` (and the recomputation when there is one)."""
        rc = "" if self.recompute == "none" else f", {self.recompute} recompute"
        return f"tp {self.tp} pp {self.pp} dp {self.dp} mbs {self.micro_batch}{rc}"

    def summary(self) -> dict:
        return {"layout": self.label, "tp": self.tp, "pp": self.pp, "dp": self.dp,
                "micro_batch": self.micro_batch, "recompute": self.recompute,
                "dtype": self.dtype, "iteration_s": self.iteration_s,
                "tokens_per_s": self.tokens_per_s, "mfu": self.mfu,
                "memory_bytes": self.memory_bytes, "capacity_bytes": self.capacity_bytes,
                "bubble_fraction": self.bubble_fraction, "proxy_s": self.proxy_s,
                "why": self.why}


@dataclass
class LayoutSearch:
    """What :func:`search_layouts` did: ``layouts`` (predicted, fitting, fastest first),
    ``enumerated`` layouts in the search space, ``checked`` memory checks, ``fitting``
    layouts found to fit, ``predicted`` simulations, ``rejected`` reasons (a sample)."""

    layouts: list[LayoutChoice]
    enumerated: int
    checked: int
    fitting: int
    predicted: int
    rejected: list[str] = field(default_factory=list)
    #: every layout that fits: (tp, pp, dp, micro_batch, recompute, memory bytes, estimate s)
    feasible: list[tuple] = field(default_factory=list)

    @property
    def best(self) -> LayoutChoice | None:
        return self.layouts[0] if self.layouts else None

    def note(self) -> str:
        """One line: how the layout was chosen, or why none was."""
        head = (f"{self.enumerated} layouts enumerated, {self.checked} memory checks, "
                f"{self.fitting} fit, {self.predicted} predicted")
        if not self.layouts:
            return head + ("; " + "; ".join(self.rejected[-2:]) if self.rejected else "")
        b = self.best
        out = (f"{head}; fastest {b.label}: bubble {100 * b.bubble_fraction:.1f} %, "
               f"{b.memory_bytes / 2**30:.1f} of {b.capacity_bytes / 2**30:.0f} GiB")
        if len(self.layouts) > 1:
            r = self.layouts[1]
            out += (f"; next {r.label} is {100 * (r.iteration_s / b.iteration_s - 1):.1f} % "
                    "slower")
        return out


def decoder_dims(job: Job) -> tuple[int, int, int]:
    """(transformer blocks, attention heads, key/value heads) of the job's decoder;
    ConfigError for a workload that is not a GPT, Llama or Nemotron decoder."""
    from ddlsim.sim.workloads import GPT_PRESETS, LLAMA_PRESETS, NEMOTRON_PRESETS, get_workload

    model = job.workload.model
    if model not in {**GPT_PRESETS, **LLAMA_PRESETS, **NEMOTRON_PRESETS}:
        raise ConfigError(f"workload.model: the layout search needs a decoder (GPT, Llama or "
                          f"Nemotron preset), got {model!r}")
    hp = get_workload(model, 1, **dict(job.workload.architecture)).hyperparams
    return int(hp["layers"]), int(hp["heads"]), int(hp.get("kv_heads", hp["heads"]))


def _powers_of_two(limit: int) -> list[int]:
    out, v = [], 1
    while v <= limit:
        out.append(v)
        v *= 2
    return out


def candidate_splits(gpus: int, gpus_per_node: int, layers: int, heads: int,
                     kv_heads: int) -> list[tuple[int, int]]:
    """(tp, pp) pairs of the search space for ``gpus`` GPUs (see the module docstring)."""
    tps = [t for t in _powers_of_two(min(gpus_per_node, gpus))
           if heads % t == 0 and kv_heads % t == 0]
    return [(t, p) for t in tps for p in _powers_of_two(layers)
            if t * p <= gpus and gpus % (t * p) == 0]


def _gpus_per_node(job: Job) -> int:
    from ddlsim.sim.topology import PRESETS, make_cluster

    if job.cluster.gpus_per_node is not None:
        return job.cluster.gpus_per_node
    if job.cluster.preset not in PRESETS:
        make_cluster(job.cluster.preset, 1)  # raises the did-you-mean ConfigError
    return int(PRESETS[job.cluster.preset]["gpus_per_node"][0])


def _layout_job(template: Job, tp: int, pp: int, dp: int, mb: int, rc: str,
                global_batch: int) -> Job:
    par = replace(template.parallelism, tp=tp, pp=pp, dp=dp, cp=1, vp=1, recompute=rc,
                  schedule="1f1b", placement="blocks", balance=())
    return replace(template, parallelism=par, batch=Batch(global_batch=global_batch, micro=mb),
                   strategy=Strategy(kind="3d"))


def _proxy_s(job: Job, calib) -> float:
    """Calibrated 1F1B estimate without simulation (see the module docstring)."""
    from ddlsim.api.predict import place

    pl = place(job, calib, suggest=False)
    m = pl.options.micro_batches
    stage = max(c.fwd_s + c.bwd_s for c in pl.stage_costs)
    return (m + pl.options.stages - 1) * stage + max(c.update_s for c in pl.stage_costs)


def search_layouts(template: Job, calibration="stored", predict_top: int = 4,
                   micro_batches: tuple[int, ...] | None = None,
                   recomputes: tuple[str, ...] | None = None) -> LayoutSearch:
    """Search the layouts of ``template`` (a decoder job: workload, cluster and its GPU
    count, precision, ``batch.global_batch`` (default 512) and optionally ``batch.micro``,
    which then stays fixed); predict the ``predict_top`` best distinct tp x pp by the
    estimate with ``calibration`` and return them (see the module docstring)."""
    from ddlsim.api.calibration import load_calibration
    from ddlsim.api.predict import check_memory, predict

    if predict_top < 1:
        raise ConfigError(f"predict_top: must be >= 1, got {predict_top!r}")
    calib = load_calibration(calibration)
    layers, heads, kv_heads = decoder_dims(template)
    gpus, gpn = template.cluster.gpus, _gpus_per_node(template)
    gb = template.batch.global_batch or DEFAULT_GLOBAL_BATCH
    mbs_all = micro_batches or ((template.batch.micro,) if template.batch.micro
                                else MICRO_BATCHES)
    rcs = [r for r in RECOMPUTE if r in (recomputes or RECOMPUTE)]
    splits = candidate_splits(gpus, gpn, layers, heads, kv_heads)
    enumerated = sum(len([m for m in mbs_all if gb % (gpus // (t * p)) == 0
                          and (gb // (gpus // (t * p))) % m == 0]) * len(rcs)
                     for t, p in splits)
    rejected: list[str] = []
    memo: dict[tuple, bool] = {}
    need_of: dict[tuple, float] = {}

    def fits(tp, pp, dp, mb, rc) -> bool:
        key = (tp, pp, mb, rc)
        if key not in memo:
            need, cap = check_memory(_layout_job(template, tp, pp, dp, mb, rc, gb))
            memo[key], need_of[key] = need <= cap, need
            if need > cap:
                rejected.append(f"tp {tp} pp {pp} mbs {mb} {rc} recompute: "
                                f"{need / 2**30:.1f} GiB per GPU of {cap / 2**30:.0f}")
        return memo[key]

    fitting: list[tuple[int, int, int, int, str]] = []
    for tp in sorted({t for t, _ in splits}):
        for pp in sorted((p for t, p in splits if t == tp), reverse=True):
            dp = gpus // (tp * pp)
            mbs = [m for m in mbs_all if gb % dp == 0 and (gb // dp) % m == 0]
            if not mbs:
                rejected.append(f"tp {tp} pp {pp}: global batch {gb} not divisible by dp "
                                f"{dp} x micro-batch")
                continue
            try:
                if not fits(tp, pp, dp, mbs[0], rcs[-1]):
                    break  # fewer stages need more memory: nothing below fits either
                start = 0
                for rc in rcs:
                    for i in range(start, len(mbs)):
                        if not fits(tp, pp, dp, mbs[i], rc):
                            break
                        fitting.append((tp, pp, dp, mbs[i], rc))
                        start = i + 1
            except ConfigError as err:
                rejected.append(f"tp {tp} pp {pp}: {err}")
    if not fitting:
        return LayoutSearch([], enumerated, len(memo), 0, 0, rejected)
    ranked = sorted((_proxy_s(_layout_job(template, *c, gb), calib), c) for c in fitting)
    feasible = [(*c, need_of[(c[0], c[1], c[3], c[4])], proxy) for proxy, c in ranked]
    chosen, pairs = [], set()
    for proxy, c in ranked:
        if (c[0], c[1]) not in pairs and len(pairs) < predict_top:
            pairs.add((c[0], c[1]))
            chosen.append((proxy, c))
    # the first fit of the rule the planner used before the search: the smallest tp x pp
    # with tp = min(tp x pp, GPUs per node), micro-batch 1 (or the given one), no recompute
    old = [(p, c) for p, c in ranked if c[3] == mbs_all[0] and c[4] == "none"
           and c[0] == min(c[0] * c[1], gpn)]
    if old:
        first = min(old, key=lambda pc: pc[1][0] * pc[1][1])
        if first not in chosen:
            chosen.append(first)
    out = []
    for proxy, (tp, pp, dp, mb, rc) in chosen:
        job = _layout_job(template, tp, pp, dp, mb, rc, gb)
        pred = predict(job, calib)
        if not pred.fits:  # the authoritative check: never propose what does not fit
            rejected.append(f"tp {tp} pp {pp} mbs {mb}: does not fit when predicted")
            continue
        bubble = float(pred.detail.summary()["bubble_fraction"])
        out.append(LayoutChoice(
            tp, pp, dp, mb, rc, pred.iteration_s, pred.tokens_per_s, pred.mfu,
            float(pred.memory_bytes), float(pred.memory_capacity_bytes), bubble, proxy,
            DTYPE_NAMES.get(pred.dtype, pred.dtype),
            f"bubble {100 * bubble:.1f} %, {pred.memory_bytes / 2**30:.1f} of "
            f"{pred.memory_capacity_bytes / 2**30:.0f} GiB, estimate {proxy:.3g} s", job))
    out.sort(key=lambda lc: (lc.iteration_s if math.isfinite(lc.iteration_s) else math.inf,
                             lc.tp * lc.pp))
    return LayoutSearch(out, enumerated, len(memo), len(fitting), len(chosen), rejected,
                        feasible)


def best_layouts(template: Job, top: int = 3, calibration="stored", predict_top: int = 4,
                 **kw) -> list[LayoutChoice]:
    """The ``top`` fastest predicted layouts of ``template`` that fit (see
    :func:`search_layouts`; ``kw``: ``micro_batches``, ``recomputes``)."""
    return search_layouts(template, calibration, max(top, predict_top), **kw).layouts[:top]


def decoder_template(model: str, preset: str, gpus: int, dtype: str | None = None,
                     global_batch: int = DEFAULT_GLOBAL_BATCH,
                     micro_batch: int | None = None) -> Job:
    """A decoder job template for :func:`search_layouts`."""
    from ddlsim.job import Cluster, Precision, Workload

    return Job(workload=Workload(model), cluster=Cluster(preset, gpus),
               precision=Precision(dtype), parallelism=Parallelism(placement="blocks"),
               batch=Batch(global_batch=global_batch, micro=micro_batch),
               strategy=Strategy(kind="3d"))
