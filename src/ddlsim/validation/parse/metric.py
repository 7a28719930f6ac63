"""Precision and metric cells: compute/gradient dtypes (:func:`parse_precision`) and what a
published number measures, with the scale to SI (:func:`parse_metric`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ddlsim.validation.parse.text import cell_text, spaced


@dataclass(frozen=True)
class PrecisionParse:
    compute: str
    grad: str
    fp8: bool = False
    assumptions: tuple[str, ...] = ()


def parse_precision(text: str) -> PrecisionParse | None:
    """Precision text -> compute dtype, gradient dtype and whether GEMMs run in FP8.

    ``fp8`` means FP8 GEMMs with ``compute`` (bfloat16 unless fp16 is named) elsewhere.
    """
    raw = cell_text(text).strip()
    t = raw.lower()
    guess = re.search(r"not\s+stated\s*[(,:;-]?\s*(?:likely|probably|presumably|assumed?|"
                      r"maybe)\s+([^),;]+)", t)
    if guess:
        inner = parse_precision(guess.group(1))
        if inner is None:
            return None
        word = raw[guess.start(1):guess.end(1)].strip()
        return PrecisionParse(inner.compute, inner.grad, inner.fp8, (
            f"precision not stated; taken as the stated guess {word}", *inner.assumptions))
    notes: list[str] = []
    if re.search(r"(?<![a-z])(?:fp8|float8|e4m3|e5m2)(?![a-z0-9])", t):
        half = "float16" if re.search(r"\b(?:fp16|float16)\b", t) else "bfloat16"
        if not re.search(r"bf16|bfloat16|fp16|float16", t):
            notes.append("FP8 GEMMs with BF16 for every other op assumed (Transformer Engine "
                         "recipe)")
        return PrecisionParse(half, "float32", True, tuple(notes))
    if re.search(r"bf16|bfloat", t):
        return PrecisionParse("bfloat16", "float32")
    if re.search(r"\bamp\b|mixed|automatic[\s_-]*mixed", t):
        if not re.search(r"fp16|float16|half", t):
            notes.append("mixed precision without a half type: fp16 AMP assumed")
        return PrecisionParse("float16", "float32", False, tuple(notes))
    if re.search(r"(?<![a-z])tf32\b", t):
        return PrecisionParse("tf32", "float32")
    if re.search(r"(?<![a-z])(?:fp32|float32)\b|single[\s_-]*precision|full[\s_-]*precision", t):
        return PrecisionParse("float32", "float32")
    if re.search(r"(?<![a-z])(?:fp16|float16)\b|half[\s_-]*precision", t):
        return PrecisionParse("float16", "float16")
    return None


#: Words that name a training framework or launcher (not a number format).
_FRAMEWORK_WORDS = (r"fast\.?ai|pytorch|\btorch\b|tensorflow|\btf\s*\d|keras|horovod|mxnet|gluon|"
                    r"paddle|tensorpack|caffe|chainer|\bjax\b|ncluster|moxing|aiacc|deepspeed|"
                    r"megatron|\bnemo\b|cntk|mindspore|\bapex\b|\bnccl\b")


def framework_only(text: str) -> bool:
    """The precision cell names a framework (``"fastai / pytorch"``, ``"tensorpack 0.8.0"``)
    and no number format: the precision is not stated."""
    t = cell_text(text).lower()
    return parse_precision(t) is None and bool(re.search(_FRAMEWORK_WORDS, t))


def device_default_precision(device: str, cell: str = "") -> PrecisionParse:
    """The precision a run on ``device`` trains in when its table does not say: mixed
    precision on GPUs with tensor cores (V100 and later: bf16 where the GPU has it, else
    fp16, gradients reduced in fp32), fp32 on older GPUs (P100 and before, whose fp16 runs
    at most twice the fp32 rate). The assumption is recorded."""
    from ddlsim.sim.hardware import get_device

    peaks = get_device(device).peak_flops_per_s
    fp32 = peaks.get("float32", 0.0)
    if "bfloat16" in peaks:
        compute, label = "bfloat16", "bf16 mixed precision"
    elif peaks.get("float16", 0.0) >= 4 * fp32 > 0:
        compute, label = "float16", "fp16 mixed precision (tensor cores)"
    else:
        compute, label = "float32", "fp32 (no tensor cores)"
    said = f" (the cell names the framework: {cell.strip()!r})" if cell.strip() else ""
    return PrecisionParse(compute, "float32", False, (
        f"precision not stated{said}: {label}, the default training precision of "
        f"{device}, assumed",))


# --------------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class MetricParse:
    kind: str
    scale: float = 1.0
    per_gpu: bool = False
    peak_tflops: float | None = None
    baseline_gpus: int | None = None
    approx: bool = False
    stat: str = ""
    assumptions: tuple[str, ...] = ()


_NOT_PERF = (r"\b(?:acc|accuracy|top ?[15]|error|bleu|perplexity|ppl|loss|price|cost|usd|dollars?"
             r"|params?|parameters|gmacs?|macs|tdp|watts?|capacity|hbm|noise|requirement|"
             r"fraction|examples)\b|flops? per (?:iteration|token|image|sample|step)|\bpeak "
             r"(?:fp|bf|tf|int|tensor)|\bdense\b|datasheet|theoretical|line rate")
_TIME_UNITS = ((r"us|µs|usec|microsec\w*", 1e-6), (r"ms|msec|millisec\w*", 1e-3),
               (r"s|sec|secs|seconds?", 1.0), (r"min|mins|minutes?", 60.0),
               (r"h|hr|hrs|hours?", 3600.0), (r"d|days?", 86400.0))
_PREFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "p": 1e15, "e": 1e18}


def _time_scale(unit: str) -> float | None:
    return next((s for p, s in _TIME_UNITS if re.fullmatch(rf"(?:{p})\b.*", unit)), None)


def parse_metric(metric: str, unit: str) -> MetricParse | None:
    """Metric name and unit -> kind, the scale that turns a published value into the kind's
    unit (seconds, samples/s, TFLOP/s per GPU, PFLOP/s, GB/s, fractions for %), and flags.

    Kinds: iteration_s, samples_per_s, tokens_per_s, model_tflops_per_gpu,
    hardware_tflops_per_gpu, mfu, hfu, pct_of_peak (hardware TFLOP/s per GPU / peak_tflops),
    aggregate_pflops, speedup, scaling_efficiency, busbw_GBps, per_nic_busbw_GBps,
    time_to_train_s, backprop_s, epoch_s. None for anything that is not performance.
    """
    m, u_raw = spaced(metric), cell_text(unit).strip()
    u = u_raw.lower()
    notes: list[str] = []
    stat = ("median" if " median " in m else
            "mean" if re.search(r" (?:mean|avg|average) ", m) else "")
    flags = {"approx": bool(re.search(r"approx|~|≈|about", u) or " approx " in m),
             "per_gpu": bool(re.search(r"per (?:gpu|device|accelerator) |per_gpu", m)
                             or re.search(r"/\s*gpu\b", u)), "stat": stat}
    if " derived " in m:
        notes.append("value derived by the source from other published numbers")
    pct = 0.01 if u.startswith("%") else 1.0

    def out(kind: str, scale: float = 1.0, **kw: object) -> MetricParse:
        return MetricParse(kind, scale, **{**flags, **kw}, assumptions=tuple(notes))

    if re.search(r" speed ?up |x faster", m) or u in ("x", "×", "times", "fold"):
        return out("speedup")
    if re.search(_NOT_PERF, m) or re.search(r"usd|\$|^w$|^gb$|param|gmac|^flops?\b|tops", u):
        ttx = re.search(r"time to (?:accuracy|train|target)", m)
        if not (ttx and _time_scale(u or m.split()[-1]) is not None):
            return None
    if re.search(r"scaling|parallel efficiency", m):
        bm = re.search(r" (\d+) to \d+ gpus? | vs (\d+) ?gpus? ", m)
        base = int(bm.group(1) or bm.group(2)) if bm else None
        if " weak " in m:
            notes.append("weak scaling: per-GPU throughput at scale vs the baseline's")
        return out("scaling_efficiency", pct, baseline_gpus=base if base != 1 else None)
    peak = re.search(r"of\s*(\d+(?:\.\d+)?)\s*([tpg])flop", u)
    peak_tf = float(peak.group(1)) * {"t": 1, "p": 1e3, "g": 1e-3}[peak.group(2)] if peak else None
    if re.search(r" mfu | model flops? utili", m):
        return out("mfu", pct, peak_tflops=peak_tf)
    if re.search(r" hfu | hardware flops? utili", m):
        return out("hfu", pct, peak_tflops=peak_tf)
    if peak_tf or re.search(r" (?:pct|percent) of peak | of peak ", m):
        if peak_tf is None:
            notes.append("peak not stated: the device's peak for the precision assumed")
        return out("pct_of_peak", pct, peak_tflops=peak_tf)
    fu = re.search(r"\b([gtpe])flop(?:s\s*/\s*s|/s|s)\b", u) or re.search(r" ([gtpe])flops ", m)
    if fu:
        p = fu.group(1)
        if re.search(r" (?:aggregate|total|cluster|system|overall) ", m) or (
                p in "pe" and not flags["per_gpu"]):
            return out("aggregate_pflops", _PREFIX[p] / 1e15, per_gpu=False)
        if not flags["per_gpu"]:
            notes.append("FLOP/s taken per GPU")
        if " model " in m:
            return out("model_tflops_per_gpu", _PREFIX[p] / 1e12, per_gpu=True)
        if not re.search(r" (?:achieved|hardware|hw|measured|actual) ", m):
            notes.append("FLOP/s not said to be model or hardware: taken as achieved (hardware)")
        return out("hardware_tflops_per_gpu", _PREFIX[p] / 1e12, per_gpu=True)
    bu = re.search(r"\b([kmgt])(b|bit|bits|byte|bytes)\s*(?:/\s*s|ps)\b", u_raw, re.I)
    if bu and re.search(r" (?:busbw|bus ?bw|bus bandwidth|bw|bandwidth) ", m):
        bits = bu.group(2) == "b" or bu.group(2).lower().startswith("bit")
        scale = _PREFIX[bu.group(1).lower()] / 1e9 / (8 if bits else 1)
        if re.search(r" (?:memory|pcie|port|each|total|nvlink bandwidth) ", m):
            return None
        if re.search(r" algbw | algorithm bandwidth ", m) and "busbw" not in m:
            return None
        if not re.search(r"busbw|bus ?bw|bus bandwidth", m):
            notes.append("'bw' taken as the collective's bus bandwidth")
        if re.search(r" (?:peak|max|best) ", m):
            notes.append("the best of several message sizes or runs")
        kind = "per_nic_busbw_GBps" if " nic " in m else "busbw_GBps"
        return out(kind, scale)
    tu = re.search(r"\b(k)?\s*(tokens?|tok|images?|img|samples?|seqs?|sequences?|sentences?|"
                   r"examples?)\s*(?:/|per)\s*(s|sec|second|min|minute|h|hour)\b", u)
    if tu or re.search(r" (?:throughput|ips|(?:tokens?|images?|samples?|seqs?|sequences?) per "
                       r"(?:s|sec|second)) ", m):
        what = tu.group(2) if tu else m
        kind = "tokens_per_s" if re.search(r"tok", what) else "samples_per_s"
        if not tu:
            notes.append(f"throughput unit {u_raw!r} not understood: {kind} assumed")
            return out(kind)
        per = {"s": 1, "sec": 1, "second": 1, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
        return out(kind, (1e3 if tu.group(1) else 1.0) / per[tu.group(3)])
    ts = _time_scale(u) if u else None
    if ts is None and not u:
        sm = re.search(r" (hours|h|ms|s|sec|seconds|min|minutes|days) $", m)
        ts = _time_scale(sm.group(1)) if sm else None
    if ts is None:
        return None
    for kind, pattern in (
            ("time_to_train_s", r"time to (?:train|accuracy|solution|target|convergence)|"
                                r"train(?:ing)? time|\bttt\b|\btta\b|wall ?clock"),
            ("backprop_s", r"backprop|backward|\bbwd\b"), ("epoch_s", r"epoch"),
            ("iteration_s", r"\biter|\bstep|batch time|per batch|latency")):
        if re.search(pattern, m):
            return out(kind, ts)
    if " time " in m:
        kind = "time_to_train_s" if ts >= 60 else "iteration_s"
        notes.append(f"unqualified time in {u_raw!r} taken as {kind}")
        return out(kind, ts)
    return None
