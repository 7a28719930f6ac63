"""The parallel layout of a decoder, chosen by a search (``ddlsim search``, ``ddlsim plan``).

For a decoder job template (workload, cluster with its GPU count, precision, global batch)
:func:`search_layouts` enumerates Megatron-style layouts

* ``tp``: powers of two up to the GPUs of one node that divide the attention heads and the
  key/value heads (tensor parallelism stays on NVLink);
* ``cp``: context parallelism, powers of two up to 8 splitting the sequence into ``2 cp``
  equal chunks, searched for sequences of 8,192 tokens or more (ring attention is for long
  contexts; below that its sends only add time), else 1, unless ``cps`` is given;
* ``pp``: powers of two up to the number of transformer blocks (Megatron's block split:
  the first ``L mod pp`` stages take one block more);
* ``dp = gpus / (tp x cp x pp)``, which must divide the global batch (kept fixed);
* ``micro_batch``: 1, 2, 4, 8 dividing ``global_batch / dp`` (or the template's);
* ``recompute``: none, selective, full;
* ``vp``: virtual stages per GPU (interleaved 1F1B), the divisors of the blocks per stage,
  only with ``pp > 1`` and the micro-batches a multiple of ``pp`` (Megatron's rules);
* ``zero``: ZeRO stage 0-3 (distributed optimizer), 1-3 only when ``dp x cp > 1``;

evaluates every one with the analytic fast path (:class:`ddlsim.api.layout_fast.FastModel`:
memory per GPU and time per iteration in closed form from the event simulation's own
per-layer costs, thousands of layouts per second), keeps those that fit, ranks them by
the estimate, predicts the best layout of each of the ``predict_top`` best distinct
tp x cp x pp (and the first fit of the rule the planner used before the search, so the
search is never worse than it) with :func:`ddlsim.api.predict`, and returns the
predicted layouts that fit, fastest first. The prediction is authoritative: a layout
is only proposed when the event simulation says it fits.

Fast path against the event simulation (``tests/test_layout_fast.py``, ``docs/search.md``):
within 0.2 % without interleaving on the tests' sample, 1.7 % with it (the engine's
overlapped gradient buckets share links with the sends), memory identical.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from ddlsim.api.layout_fast import DEFAULT_GLOBAL_BATCH, FastModel, layout_job
from ddlsim.errors import ConfigError
from ddlsim.job import RECOMPUTE, Batch, Job, Parallelism, Strategy

__all__ = ["DEFAULT_GLOBAL_BATCH", "DTYPE_NAMES", "MICRO_BATCHES", "Feasible", "LayoutChoice",
           "LayoutSearch", "best_layouts", "candidate_layouts", "candidate_splits",
           "decoder_dims", "decoder_template", "search_layouts"]

MICRO_BATCHES = (1, 2, 4, 8)
ZERO_STAGES = (0, 1, 2, 3)
LONG_CONTEXT = 8192  # tokens: from here on cp > 1 is searched by default
DTYPE_NAMES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "fp8": "fp8"}


def layout_label(tp: int, pp: int, dp: int, mb: int, rc: str, vp: int = 1, zero: int = 0,
                 cp: int = 1) -> str:
    """``tp 8 pp 4 dp 2 mbs 1`` (then cp, vp, the ZeRO stage, the recomputation)."""
    out = f"tp {tp} pp {pp} dp {dp} mbs {mb}"
    out += f" cp {cp}" * (cp > 1) + f" vp {vp}" * (vp > 1) + f", ZeRO-{zero}" * (zero > 0)
    return out + ("" if rc == "none" else f", {rc} recompute")


@dataclass(frozen=True)
class LayoutChoice:
    """One predicted layout: degrees, micro-batch, recomputation, virtual stages, ZeRO stage
    and the prediction's headline numbers (SI units): ``iteration_s``, ``tokens_per_s``,
    ``mfu`` (fraction), ``memory_bytes`` / ``capacity_bytes`` on the fullest GPU,
    ``bubble_fraction`` of the pipeline, ``proxy_s`` (the fast-path estimate that ranked
    it) and ``why``."""

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
    vp: int = 1
    zero: int = 0
    cp: int = 1

    @property
    def label(self) -> str:
        return layout_label(self.tp, self.pp, self.dp, self.micro_batch, self.recompute,
                            self.vp, self.zero, self.cp)

    def summary(self) -> dict:
        return {"layout": self.label, "tp": self.tp, "pp": self.pp, "dp": self.dp,
                "cp": self.cp, "vp": self.vp, "zero": self.zero,
                "micro_batch": self.micro_batch, "recompute": self.recompute,
                "dtype": self.dtype, "iteration_s": self.iteration_s,
                "tokens_per_s": self.tokens_per_s, "mfu": self.mfu,
                "memory_bytes": self.memory_bytes, "capacity_bytes": self.capacity_bytes,
                "bubble_fraction": self.bubble_fraction, "proxy_s": self.proxy_s,
                "why": self.why}


@dataclass(frozen=True)
class Feasible:
    """A layout that fits by the fast path: its degrees and ``memory_bytes`` (fullest
    GPU), ``estimate_s`` (time per iteration) and ``bubble_fraction`` estimated."""

    tp: int
    pp: int
    dp: int
    micro_batch: int
    recompute: str
    vp: int
    zero: int
    cp: int
    memory_bytes: float
    estimate_s: float
    bubble_fraction: float

    @property
    def key(self) -> tuple:
        return (self.tp, self.pp, self.dp, self.micro_batch, self.recompute, self.vp,
                self.zero, self.cp)

    @property
    def label(self) -> str:
        return layout_label(*self.key)


@dataclass
class LayoutSearch:
    """What :func:`search_layouts` did: ``layouts`` (predicted, fitting, fastest first),
    ``enumerated`` layouts in the search space, ``checked`` of them evaluated by the fast
    path in ``fast_s`` seconds, ``fitting`` found to fit, ``predicted`` simulations,
    ``rejected`` reasons (a sample, the closest miss last), ``feasible``: every layout that
    fits, best estimate first."""

    layouts: list[LayoutChoice]
    enumerated: int
    checked: int
    fitting: int
    predicted: int
    rejected: list[str] = field(default_factory=list)
    feasible: list[Feasible] = field(default_factory=list)
    fast_s: float = 0.0

    @property
    def best(self) -> LayoutChoice | None:
        return self.layouts[0] if self.layouts else None

    @property
    def layouts_per_s(self) -> float:
        """Layouts the fast path evaluated per second (this search, caches cold)."""
        return self.checked / self.fast_s if self.fast_s > 0 else math.inf

    def note(self) -> str:
        """One line: how the layout was chosen, or why none was."""
        head = (f"{self.enumerated} layouts enumerated, {self.checked} estimated "
                f"({self.layouts_per_s:,.0f}/s), {self.fitting} fit, {self.predicted} "
                "predicted")
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
    return decoder_hyper(job)[:3]


def decoder_hyper(job: Job) -> tuple[int, int, int, int]:
    """(blocks, heads, key/value heads, sequence length) of the job's decoder."""
    from ddlsim.sim.workloads import GPT_PRESETS, LLAMA_PRESETS, NEMOTRON_PRESETS, get_workload

    model = job.workload.model
    if model not in {**GPT_PRESETS, **LLAMA_PRESETS, **NEMOTRON_PRESETS}:
        raise ConfigError(f"workload.model: the layout search needs a decoder (GPT, Llama or "
                          f"Nemotron preset), got {model!r}")
    hp = get_workload(model, 1, **dict(job.workload.architecture)).hyperparams
    return (int(hp["layers"]), int(hp["heads"]), int(hp.get("kv_heads", hp["heads"])),
            int(hp["seq"]))


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


def candidate_layouts(gpus: int, gpus_per_node: int, layers: int, heads: int, kv_heads: int,
                      global_batch: int, micro_batches=MICRO_BATCHES, recomputes=RECOMPUTE,
                      cps=(1,), zeros=ZERO_STAGES) -> list[tuple]:
    """Every ``(tp, pp, dp, micro_batch, recompute, vp, zero, cp)`` of the search space
    (see the module docstring), in a fixed order."""
    out = []
    for tp, pp in candidate_splits(gpus, gpus_per_node, layers, heads, kv_heads):
        for cp in cps:
            if gpus % (tp * pp * cp):
                continue
            dp = gpus // (tp * pp * cp)
            per_stage = layers // pp if layers % pp == 0 else 0
            for mb in micro_batches:
                if global_batch % (dp * mb):
                    continue
                m = global_batch // (dp * mb)
                vps = [1] + [v for v in range(2, per_stage + 1) if per_stage % v == 0
                             and pp > 1 and m % pp == 0]
                out += [(tp, pp, dp, mb, rc, vp, z, cp) for rc in recomputes for vp in vps
                        for z in zeros if z == 0 or dp * cp > 1]
    return out


def _gpus_per_node(job: Job) -> int:
    from ddlsim.sim.topology import PRESETS, make_cluster

    if job.cluster.gpus_per_node is not None:
        return job.cluster.gpus_per_node
    if job.cluster.preset not in PRESETS:
        make_cluster(job.cluster.preset, 1)  # raises the did-you-mean ConfigError
    return int(PRESETS[job.cluster.preset]["gpus_per_node"][0])


def _default_cps(seq: int, gpus: int) -> tuple[int, ...]:
    if seq < LONG_CONTEXT:
        return (1,)
    return tuple(c for c in (1, 2, 4, 8) if seq % (2 * c) == 0 and c <= gpus)


def _evaluate_all(fast: FastModel, layouts: list[tuple], rejected: list[str]):
    """(feasible layouts, best estimate first; layouts estimated) by the fast path, a
    (tp, cp) at a time by increasing micro-batch: when no layout of a micro-batch fits, the
    larger micro-batches of that (tp, cp) are skipped (memory grows with the micro-batch,
    nothing else changes)."""
    feasible, closest, estimated = [], None, 0
    groups: dict[tuple, list[tuple]] = {}
    for lay in layouts:
        groups.setdefault((lay[0], lay[7], lay[3]), []).append(lay)
    dead: set[tuple[int, int]] = set()
    for (tp, cp, mb), group in sorted(groups.items()):
        if (tp, cp) in dead:
            continue
        fits = False
        for lay in group:
            try:
                est = fast.evaluate(*lay[:7], cp=cp)
            except ConfigError as err:
                rejected.append(f"tp {tp} cp {cp} mbs {mb}: {err}")
                break
            estimated += 1
            if est.fits:
                fits = True
                feasible.append(Feasible(*lay, est.memory_bytes, est.iteration_s,
                                         est.bubble_fraction))
            elif closest is None or est.memory_bytes / est.capacity_bytes < closest[0]:
                closest = (est.memory_bytes / est.capacity_bytes,
                           f"{layout_label(*lay)}: {est.memory_bytes / 2**30:.1f} GiB per "
                           f"GPU of {est.capacity_bytes / 2**30:.0f}")
        if not fits:
            dead.add((tp, cp))
    if closest is not None:
        rejected.append(f"closest to fitting: {closest[1]}")
    feasible.sort(key=lambda f: (f.estimate_s, f.tp * f.pp * f.cp, f.key))
    return feasible, estimated


def search_layouts(template: Job, calibration="stored", predict_top: int = 4,
                   micro_batches: tuple[int, ...] | None = None,
                   recomputes: tuple[str, ...] | None = None,
                   cps: tuple[int, ...] | None = None,
                   zeros: tuple[int, ...] | None = None) -> LayoutSearch:
    """Search the layouts of ``template`` (a decoder job: workload, cluster and its GPU
    count, precision, ``batch.global_batch`` (default 512) and optionally ``batch.micro``,
    which then stays fixed); predict the best layout of each of the ``predict_top`` best
    distinct tp x cp x pp by the fast path with ``calibration`` and return them (see the
    module docstring). ``cps``, ``zeros``: restrict those degrees."""
    from ddlsim.api.calibration import load_calibration
    from ddlsim.api.predict import predict

    if predict_top < 1:
        raise ConfigError(f"predict_top: must be >= 1, got {predict_top!r}")
    calib = load_calibration(calibration)
    layers, heads, kv_heads, seq = decoder_hyper(template)
    gpus, gpn = template.cluster.gpus, _gpus_per_node(template)
    gb = template.batch.global_batch or DEFAULT_GLOBAL_BATCH
    mbs_all = micro_batches or ((template.batch.micro,) if template.batch.micro
                                else MICRO_BATCHES)
    rcs = tuple(r for r in RECOMPUTE if r in (recomputes or RECOMPUTE))
    space = candidate_layouts(gpus, gpn, layers, heads, kv_heads, gb, mbs_all, rcs,
                              cps or _default_cps(seq, gpus),
                              ZERO_STAGES if zeros is None else zeros)
    rejected: list[str] = []
    if not space:
        rejected.append(f"global batch {gb} is not divisible by dp x micro-batch for any "
                        "layout")
    t0 = time.perf_counter()
    fast = FastModel(template, calib)
    feasible, checked = _evaluate_all(fast, space, rejected)
    fast_s = time.perf_counter() - t0
    if not feasible:
        return LayoutSearch([], len(space), checked, 0, 0, rejected, [], fast_s)
    chosen: list[Feasible] = []
    splits: set[tuple[int, int, int]] = set()
    for f in feasible:
        if (f.tp, f.pp, f.cp) not in splits and len(splits) < predict_top:
            splits.add((f.tp, f.pp, f.cp))
            chosen.append(f)
    # the first fit of the rule the planner used before the search: the smallest tp x pp
    # with tp = min(tp x pp, GPUs per node), micro-batch 1 (or the given one), no recompute
    old = [f for f in feasible if f.micro_batch == mbs_all[0] and f.recompute == "none"
           and (f.vp, f.zero, f.cp) == (1, 0, 1) and f.tp == min(f.tp * f.pp, gpn)]
    if old:
        first = min(old, key=lambda f: f.tp * f.pp)
        if first not in chosen:
            chosen.append(first)
    out = []
    for f in chosen:
        job = layout_job(template, f.tp, f.pp, f.dp, f.micro_batch, f.recompute, gb, f.vp,
                         f.zero, f.cp)
        pred = predict(job, calib)
        if not pred.fits:  # the authoritative check: never propose what does not fit
            rejected.append(f"{f.label}: does not fit when predicted")
            continue
        bubble = float(pred.detail.summary()["bubble_fraction"])
        out.append(LayoutChoice(
            f.tp, f.pp, f.dp, f.micro_batch, f.recompute, pred.iteration_s,
            pred.tokens_per_s, pred.mfu, float(pred.memory_bytes),
            float(pred.memory_capacity_bytes), bubble, f.estimate_s,
            DTYPE_NAMES.get(pred.dtype, pred.dtype),
            f"bubble {100 * bubble:.1f} %, {pred.memory_bytes / 2**30:.1f} of "
            f"{pred.memory_capacity_bytes / 2**30:.0f} GiB, estimate {f.estimate_s:.3g} s",
            job, vp=f.vp, zero=f.zero, cp=f.cp))
    out.sort(key=lambda lc: (lc.iteration_s if math.isfinite(lc.iteration_s) else math.inf,
                             lc.tp * lc.pp * lc.cp, lc.label))
    return LayoutSearch(out, len(space), checked, len(feasible), len(chosen), rejected,
                        feasible, fast_s)


def best_layouts(template: Job, top: int = 3, calibration="stored", predict_top: int = 4,
                 **kw) -> list[LayoutChoice]:
    """The ``top`` fastest predicted layouts of ``template`` that fit (see
    :func:`search_layouts`; ``kw``: ``micro_batches``, ``recomputes``, ``cps``, ``zeros``)."""
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
