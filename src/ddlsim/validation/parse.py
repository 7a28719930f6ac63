"""Free-text parsers for the cells of a reference measurement table, by meaning.

Each parser reads one cell (or a few) the way a reader would: by the words, numbers and
units it contains, never by a row's id or source. Each returns a small frozen dataclass, or
None when nothing is understood, and lists every guess it made in ``assumptions``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ddlsim.sim import hardware, workloads


def _text(value: object) -> str:
    """``value`` as text; None and NaN are empty."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def _spaced(value: object) -> str:
    """Lower case, every run of separators (space, ``_``, ``-``, ``/``, ``.``) one space."""
    return " " + re.sub(r"[\s_\-/.]+", " ", _text(value).lower()).strip() + " "


def _first(patterns: list[str], text: str) -> re.Match[str] | None:
    """The earliest match of any of ``patterns`` in ``text`` (case-insensitive)."""
    hits = [m for p in patterns if (m := re.search(p, text, re.I))]
    return min(hits, key=lambda m: m.start()) if hits else None


# --------------------------------------------------------------------------- models
@dataclass(frozen=True)
class ModelParse:
    zoo: str | None
    arch: dict[str, int] = field(default_factory=dict)
    family: str = ""
    params_b: float | None = None
    seq: int | None = None
    assumptions: tuple[str, ...] = ()


_FAMILIES = {"gpt": "gpt", "megatron": "gpt", "llama": "llama", "nemotron": "llama",
             "mistral": "llama", "mixtral": "llama", "bert": "bert", "roberta": "bert",
             "resnet": "cnn", "vgg": "cnn", "alexnet": "cnn", "lenet": "cnn",
             "inception": "cnn", "amoebanet": "cnn", "unet": "cnn", "cnn": "cnn"}
_NAME = re.compile(r"(?<![a-z])(?P<fam>[a-z]+)(?:[\s_-]*lm)?"
                   r"(?:[\s_-]*(?P<ver>\d+(?:\.\d+)?)(?![\d.]*\s*[bmt]\b))?"
                   r"(?:[\s_-]*v\d+(?:\.\d+)?)?"
                   r"(?:[\s_-]*(?P<size>\d+(?:\.\d+)?\s*[bmt]|large|base|small|medium|xl)\b)?")
_SIZE_WORDS = {("gpt", "xl"): 1.3}  # Brown et al. 2020 Table 2.1: GPT-3 XL is 1.3B


def _size(fam: str, size: str | None) -> float | str | None:
    if not size:
        return None
    if (fam, size) in _SIZE_WORDS:
        return _SIZE_WORDS[(fam, size)]
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bmt])", size)
    if not m:
        return size
    return round(float(m.group(1)) * {"b": 1.0, "m": 1e-3, "t": 1e3}[m.group(2)], 6)


def _name_parts(text: str) -> tuple[str, str | None, float | str | None] | None:
    m = _NAME.fullmatch(text)
    return (m["fam"], m["ver"], _size(m["fam"], m["size"])) if m else None


_ZOO = {k: p for k in workloads.WORKLOADS if (p := _name_parts(k.lower()))}

_ARCH: list[tuple[str, str]] = []  # (key, pattern), most specific first
for _key, _words, _letter, _plural in (
        ("ffn", r"ffn[\s_-]*hidden[\s_-]*size|ffn[\s_-]*(?:hidden|size|dim)|ffn|"
                r"intermediate[\s_-]*size|d[\s_-]*ff", "", ""),
        ("kv_heads", r"num[\s_-]*query[\s_-]*groups|query[\s_-]*groups|(?:num|n)[\s_-]*kv[\s_-]*"
                     r"heads|num[\s_-]*key[\s_-]*value[\s_-]*heads|kv[\s_-]*(?:heads|groups)|"
                     r"gqa|kv", "", r"query[\s_-]*groups|kv[\s_-]*(?:heads|groups)"),
        ("heads", r"num[\s_-]*attention[\s_-]*heads|attention[\s_-]*heads|(?:num|n)[\s_-]*"
                  r"heads?|heads?", "A", r"(?:attention[\s_-]*)?heads"),
        ("layers", r"num[\s_-]*layers|n[\s_-]*layers?|layers?", "[lL]",
                   r"(?:transformer[\s_-]*)?layers"),
        ("hidden", r"hidden[\s_-]*(?:size|dim)|d[\s_-]*model|model[\s_-]*dim|hidden", "[hH]", ""),
        ("seq", r"max[\s_-]*seq[\s_-]*len|seq(?:uence)?[\s_-]*len(?:gth)?|seqlen|"
                r"context[\s_-]*length|sequence|seq", "", ""),
        ("vocab", r"padded[\s_-]*vocab[\s_-]*size|vocab(?:ulary)?[\s_-]*size|vocab(?:ulary)?",
                  "V", "")):
    _VAL = r"(\d+(?:,\d{3})*)(?![\d.]*\d)(\s*k\b)?"
    _ARCH.append((_key, rf"(?i:(?<![\w/*.])(?:{_words}))(?:\s*[=:]\s*|\s+|(?=\d)){_VAL}"))
    if _letter:
        _ARCH.append((_key, rf"(?<![\w/*.^]){_letter}\s*=\s*{_VAL}"))
    if _plural:
        _ARCH.append((_key, rf"(?<![\w.,])(\d+)()\s*(?i:{_plural})\b"))


def _arch(texts: tuple[str, ...], notes: list[str]) -> dict[str, int]:
    found: dict[str, list[int]] = {}
    for text in texts:
        for key, pattern in _ARCH:
            for m in re.finditer(pattern, text):
                value = int(m.group(1).replace(",", ""))
                text = text[:m.start()] + " " * (m.end() - m.start()) + text[m.end():]
                if m.group(2) and key == "seq":
                    value *= 1024
                    notes.append(f"seq {m.group(0).strip()!r} taken as {value} (k = 1024)")
                elif m.group(2):
                    notes.append(f"{key} {m.group(0).strip()!r} is not exact: ignored")
                    continue
                found.setdefault(key, [])
                if value not in found[key]:
                    found[key].append(value)
    for key, values in found.items():
        if len(values) > 1:
            notes.append(f"several {key} values stated {tuple(values)}: the first, "
                         f"{values[0]}, taken")
    return {k: v[0] for k, v in found.items()}


def parse_model(model_text: str, *other_texts: str) -> ModelParse | None:
    """Model name (and dimensions stated in it or in ``other_texts``) -> :class:`ModelParse`.

    ``zoo`` is the workload-zoo key the name denotes (``"Llama-3.1 405B"`` -> ``llama3-405b``)
    or None; ``arch`` holds explicit dimensions (``hidden=4096``, ``24 layers``, ``h=12288``,
    ``gqa=8``, ``seq512``...); both are returned when both are found.
    """
    raw = _text(model_text)
    notes: list[str] = []
    name = re.sub(r"\(.*?\)", " ", raw.lower())
    zoo, fam = None, ""
    for m in _NAME.finditer(name):
        if m["fam"] not in _FAMILIES and not any(p[0] == m["fam"] for p in _ZOO.values()):
            continue
        fam = fam or m["fam"]
        ver, size = m["ver"], _size(m["fam"], m["size"])
        for key, (kfam, kver, ksize) in _ZOO.items():
            if kfam != m["fam"] or ksize != size:
                continue
            if kver == ver or kver is None:
                zoo = key
            elif ver and kver and "." not in kver and ver.split(".")[0] == kver:
                zoo = key
                notes.append(f"{m['fam']} {ver} taken as the zoo's {key} (same architecture "
                             f"as version {kver} assumed)")
            if zoo:
                break
        if zoo:
            break
    if zoo is None:
        zoo = next((k for k in workloads.WORKLOADS if f" {k} " in f" {name.strip()} "), None)
    arch = _arch((raw, *(_text(t) for t in other_texts)), notes)
    family = _FAMILIES.get(fam, "")
    if not family:
        words = re.sub(r"[\s_-]", "", " ".join((raw, *map(_text, other_texts))).lower())
        family = next((f for w, f in _FAMILIES.items() if re.search(rf"\b{w}", words)), "")
    pm = re.search(r"(?<![\w.])(\d+(?:\.\d+)?)\s*([bmt])\b", raw, re.I)
    params_b = _size("", pm.group(0).lower()) if pm else None
    if zoo is None and not arch and not family and params_b is None:
        return None
    return ModelParse(zoo=zoo, arch=arch, family=family,
                      params_b=params_b if isinstance(params_b, float) else None,
                      seq=arch.get("seq"), assumptions=tuple(notes))


# --------------------------------------------------------------------------- parallelism
@dataclass(frozen=True)
class ParallelismParse:
    tp: int | None = None
    pp: int | None = None
    dp: int | None = None
    cp: int | None = None
    vp: int | None = None
    mbs: int | None = None
    chunks: int | None = None
    mp: int | None = None
    ranks: int | None = None
    zero: int | None = None
    recompute: str = ""
    sequence_parallel: bool | None = None
    strategy: str = ""
    ps_mode: str = ""
    baseline: bool = False
    balance: tuple[int, ...] = ()
    assumptions: tuple[str, ...] = ()


_OF = r"(?:[\s_-]*(?:size|degree|width))?(?:\s*(?:of|=|:))?\s*(\d+)\b"
_PAR = {
    "mp": [r"\bmp\s*(?:=\s*tp\s*[*x]\s*pp\s*)?[=:]\s*(\d+)\b",
           r"(?<!tensor )(?<!tensor[_-])(?<!pipeline )(?<!pipeline[_-])\bmodel[\s_-]*"
           r"parallel(?:ism)?" + _OF],
    "tp": [r"\btp\s*[=:]?\s*(\d+)\b", r"tensor[\s_-]*(?:model[\s_-]*)?parallel(?:ism)?" + _OF],
    "pp": [r"\bpp\s*[=:]?\s*(\d+)\b", r"pipeline[\s_-]*(?:model[\s_-]*)?parallel(?:ism)?" + _OF,
           r"(?<!\w)(\d+)[\s-]*(?:pipeline[\s-]*)?stages?\b", r"\bpipeline[\s-](\d+)\b"],
    "dp": [r"\bdp\s*[=:]?\s*(\d+)\b", r"data[\s_-]*parallel(?:ism)?" + _OF],
    "cp": [r"\bcp\s*[=:]?\s*(\d+)\b", r"context[\s_-]*parallel(?:ism)?" + _OF],
    "vp": [r"\bvp\s*[=:]?\s*(\d+)\b", r"virtual[\s_-]*(?:pipeline[\s_-]*)?(?:model[\s_-]*"
           r"parallel[\s_-]*)?(?:stages?|chunks?|size)(?:\s*(?:of|=|:))?\s*(\d+)\b",
           r"\b(\d+)\s*virtual[\s_-]*(?:pipeline[\s_-]*)?(?:stages?|chunks?)",
           r"interleav\w*\s*\(?\s*(?:v\s*=\s*)?(\d+)\b"],
    "mbs": [r"\bmbs\s*[=:]?\s*(\d+)\b", r"micro[\s_-]*batch(?![\s_-]*es)" + _OF,
            r"\b(\d+)\s*(?:img|images|samples|seqs?|sequences)\s*/\s*gpu\b"],
    "chunks": [r"\bchunks\s*(?:\(\s*m\s*\))?\s*[=:]?\s*(\d+)\b", r"\bm\s*=\s*(\d+)\b",
               r"(?:num[\s_-]*)?micro[\s_-]*batches\s*[=:]?\s*(\d+)\b",
               r"\b(\d+)\s*micro[\s_-]*batches"],
    "ranks": [r"\b(\d+)\s*(?:mpi\s*)?ranks?\b", r"\branks?\s*[=:]\s*(\d+)\b"],
}
_PS = (r"parameter[\s_-]*servers?|param[\s_-]*server|\bps\b|ps[\s_-]*lite|dist[\s_-]*a?sync|"
       r"\basp\b|\bssp\b|\basync(?:hronous)?\b|hogwild")
_PS_MODE = (("ssp", r"\bssp\b|stale[\s_-]*synchronous"),
            ("asp", r"dist[\s_-]*async|\basync(?:hronous)?\b|\basp\b|hogwild"),
            ("bsp", r"dist[\s_-]*(?:device[\s_-]*)?sync|\bbsp\b|\bsync(?:hronous)?\b|"
                    r"bulk[\s_-]*synchronous"))
_PIPE = r"pipeline|gpipe|pipedream|\b1f1b\b|\bchunks\b"
_ALLREDUCE = (r"all[\s_-]*reduce|\bring\b|\bddp\b|horovod|data[\s_-]*parallel|dataparallel|"
              r"\bnccl\b")
_RECOMPUTE = (("none", r"\bno[\s_-]*(?:activation[\s_-]*)?(?:recomput|checkpoint)|without[\s_-]*"
                       r"(?:activation[\s_-]*)?(?:recomput|checkpoint)|checkpoint\s*=\s*never|"
                       r"recompute\w*\s*[=:]\s*(?:none|false|0)\b"),
              ("selective", r"selective[\s_-]*(?:activation[\s_-]*)?(?:recomput|checkpoint)|"
                            r"granularity\s*[=:]?\s*selective"),
              ("full", r"full[\s_-]*(?:activation[\s_-]*)?recomput|granularity\s*[=:]?\s*full"),
              ("full?", r"(?:activation|gradient)[\s_-]*checkpoint|checkpoint\s*=\s*\w+|"
                        r"recomput"))


def parse_parallelism(text: str) -> ParallelismParse:
    """Parallelism text -> :class:`ParallelismParse` (empty fields for what is not stated).

    ``recompute`` is ``""`` when not stated (``"none"`` only when it says so).
    """
    t = _text(text).lower()
    notes: list[str] = []
    v: dict[str, int] = {}
    for key, patterns in _PAR.items():
        m = _first(patterns, t)
        if key == "mp":  # "mp=tp*pp=16" names no tp or pp of its own
            t = re.sub(r"\bmp\s*=\s*tp\s*[*x]\s*pp\s*=", "mp=", t)
        if m:
            v[key] = int(m.group(1))
    zm = re.search(r"\bzero[\s_-]*(?:stage[\s_-]*)?[=:]?\s*([0-3])\b", t)
    zero = int(zm.group(1)) if zm else None
    if zero is None and re.search(r"\bfsdp\b|fully[\s_-]*sharded", t):
        zero = 2 if "shard_grad_op" in t else 3
        notes.append(f"FSDP taken as ZeRO-{zero} (sharded parameters, gradients, optimizer)")
    if zero is None and re.search(r"distributed[\s_-]*optimi[sz]er", t):
        zero = 1
        notes.append("distributed optimizer taken as ZeRO-1 (sharded optimizer state)")
    recompute = next((r for r, p in _RECOMPUTE if re.search(p, t)), "")
    if recompute == "full?":
        recompute = "full"
        notes.append("activation recomputation of unstated granularity taken as full")
    seq_par = (False if re.search(r"\bno[\s_-]*sequence[\s_-]*parallel|sequence[\s_-]*parallel"
                                  r"\w*\s*[=:]\s*(?:false|off|0|no)\b", t)
               else True if re.search(r"sequence[\s_-]*parallel", t) else None)
    modes = [(m.start(), mode) for mode, p in _PS_MODE if (m := re.search(p, t))]
    ps_mode = min(modes)[1] if modes else ""
    if len(modes) > 1:
        notes.append(f"several update modes named; the first, {ps_mode}, taken")
    bm = re.search(r"balance\s*[=:]?\s*[\[(]?\s*(\d+(?:\s*,\s*\d+)*)", t)
    balance = tuple(int(x) for x in re.findall(r"\d+", bm.group(1))) if bm else ()
    tp, pp = v.get("tp"), v.get("pp")
    if "mp" in v and tp and pp and tp * pp != v["mp"]:
        notes.append(f"model-parallel size {v['mp']} != tp*pp = {tp * pp}")
    big = any(v.get(k, 1) > 1 for k in ("tp", "cp", "mp", "vp"))
    if re.search(_PS, t):
        strategy = "ps"
        if re.search(_PIPE, t):
            notes.append("names both a parameter server and a pipeline; taken as ps")
    elif big or ((pp or 1) > 1 and tp is not None):
        strategy = "3d"
    elif re.search(_PIPE, t) or (pp or 1) > 1 or "chunks" in v:
        strategy = "pipeline"
    elif re.search(_ALLREDUCE, t) or "dp" in v:
        strategy = "allreduce"
    else:
        strategy = ""
    baseline = bool(re.search(r"baseline|single[\s_-]*(?:gpu|device|worker)|no[\s_-]*pipeline|"
                              r"\b1[\s_-]*gpu\b", t))
    return ParallelismParse(**v, zero=zero, recompute=recompute, sequence_parallel=seq_par,
                            strategy=strategy, ps_mode=ps_mode, baseline=baseline,
                            balance=balance, assumptions=tuple(notes))


# --------------------------------------------------------------------------- precision
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
    raw = _text(text).strip()
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
    m, u_raw = _spaced(metric), _text(unit).strip()
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


# --------------------------------------------------------------------------- GPUs
@dataclass(frozen=True)
class GpuParse:
    device: str | None
    family: str = ""
    form: str = ""
    memory_GB: int | None = None
    count: int | None = None
    per_node: int | None = None
    assumptions: tuple[str, ...] = ()


_GPU = (r"(?<![a-z0-9])(p100|p40|v100|a100|h100|h200|l4|l40s?|k80|t4|a10g?|gtx\s*\d+|"
        r"titan\s*(?:xp?|v|rtx)?|rtx\s*\d+|mi\d+x?)(?![a-z0-9])")
_MEM = {"p100": (16,), "p40": (24,), "v100": (16, 32), "a100": (40, 80), "h100": (80,),
        "h200": (141,), "l4": (24,)}
_INSTANCES = ((r"\bp3dn\b", "v100", 32), (r"\bp3\b", "v100", 16), (r"\bp4de\b", "a100", 80),
              (r"\bp4d\b", "a100", 40), (r"\bp5e", "h200", 141), (r"\bp5\b", "h100", 80),
              (r"\bnd40r?s v2\b", "v100", 32), (r"\bgn6e\b", "v100", 32),
              (r"\bgn6v\b", "v100", 16))
_PER_INSTANCE = {2: 1, 3: 1, 6: 2, 8: 4, 12: 4, 16: 8, 24: 8, 48: 8}


def parse_gpu(text: str) -> GpuParse | None:
    """GPU text -> catalog device (None for a GPU the catalog lacks), form, memory, count.

    ``memory_GB`` is the resolved part's memory (an assumption when not stated). ``count``
    is a total GPU count; a count said to be per node (or an instance type's) is ``per_node``.
    """
    raw = _text(text)
    t = raw.lower()
    notes: list[str] = []
    gm = re.search(_GPU, t)
    per_node = None
    if gm:
        fam = re.sub(r"\s+", " ", gm.group(1))
    else:
        sp = _spaced(raw)
        inst = next((x for x in _INSTANCES if re.search(x[0], sp)), None)
        if inst is None:
            return None
        fam, imem = inst[1], inst[2]
        size = re.search(r"(\d+)xlarge", t)
        per_node = 8 if " nd40" in sp else _PER_INSTANCE.get(int(size.group(1))) if size else None
        notes.append(f"instance type taken as {per_node or '?'} x {fam.upper()} {imem} GB")
        t = f"{fam} {imem}gb {t}"
    sxm3 = bool(re.search(r"sxm\s*3", t))
    form = ("pcie" if re.search(r"pci\s*-?e|\bpcie", t) or fam == "p40" else
            "sxm" if re.search(r"sxm|hgx|dgx|nvlink", t) else "")
    stated = [int(x) for x in re.findall(r"(\d+)\s*gb\b", t)]
    mem = next((x for x in stated if x in _MEM.get(fam, ())), None)
    if stated and mem is None and fam in _MEM:
        notes.append(f"{stated[0]} GB is not a {fam.upper()} memory size (host memory?): ignored")
    cm = _first([rf"(\d+)\s*[x×*]\s*(?:nvidia\s+|tesla\s+)?{re.escape(fam)}",
                 rf"{re.escape(fam)}\S*\s*[x×*]\s*(\d+)\b", rf"\b(\d+)\s+(?:nvidia\s+|tesla\s+)?"
                 rf"{re.escape(fam)}", r"\b(\d+)\s*gpus?\b"], t) if gm else None
    count = int(cm.group(1)) if cm else None
    pm = re.search(r"(\d+)\s*(?:gpus?\s*)?(?:/\s*|per\s+|each\s+|for\s+each\s+)(?:node|server|"
                   r"machine)", t)
    if cm and re.search(r"(?:each|per|/)\s*(?:node|server|machine)", t[cm.end():cm.end() + 40]):
        per_node, count = count, None
    elif pm:
        per_node = int(pm.group(1))
    device = None
    if (form == "pcie" and fam != "p40") or re.search(r"\bnvl\b", t):
        notes.append(f"{fam.upper()} PCIe/NVL card is not in the device catalog")
    elif fam == "v100" and sxm3:
        device, mem = ("v100-sxm3-32gb", 32) if mem in (None, 32) else (None, mem)
        notes.append("V100-SXM3 (DGX-2) is not in the device catalog: taken as the SXM2 "
                     "32 GB part's rates")
    elif fam in _MEM:
        sizes = _MEM[fam]
        if mem is None:
            mem = sizes[0]
            if len(sizes) > 1 or fam in ("h100",):
                notes.append(f"memory size not stated: {mem} GB part assumed")
        if form == "" and fam in ("p100", "v100", "a100", "h100"):
            notes.append("form factor not stated: SXM part assumed")
        key = {"p100": "p100-sxm2-16gb", "p40": "p40", "v100": f"v100-sxm2-{mem}gb",
               "a100": f"a100-{mem}gb", "h100": "h100-sxm", "h200": "h200", "l4": "l4"}[fam]
        device = key if key in hardware.CATALOG else hardware.resolve_device_name(raw)
    else:
        notes.append(f"{fam.upper()} is not in the device catalog")
    return GpuParse(device, fam, form, mem, count, per_node, tuple(notes))


# --------------------------------------------------------------------------- frameworks
_FRAMEWORKS = (("caffe2", r"\bcaffe ?2\b"), ("mxnet", r"\bmxnet|\bkvstore|\bgluon\b"),
               ("tensorflow", r"tensorflow|tensorpack|\bkeras\b|\btf(?!32)\d*\b"),
               ("pytorch", r"pytorch|\btorch|\bddp\b|\bnemo\b|megatron|fastai|deepspeed|"
                           r"dataparallel"))


def parse_framework(*texts: str) -> str:
    """Training framework named in ``texts`` (the first named wins): ``pytorch``,
    ``mxnet``, ``tensorflow-xla`` (TensorFlow with XLA, or XLA alone), ``tensorflow``,
    ``caffe2``, or ``""``."""
    t = _spaced(" ; ".join(_text(x) for x in texts)).replace("+", " ")
    hits = [(m.start(), name) for name, p in _FRAMEWORKS if (m := re.search(p, t))]
    name = min(hits)[1] if hits else ""
    if re.search(r"\bxla\b", t) and name in ("", "tensorflow"):
        return "tensorflow-xla"
    return name


# --------------------------------------------------------------------------- interconnects
@dataclass(frozen=True)
class InterconnectParse:
    system: str = ""
    intra: str = ""
    nvls: bool = False
    nics_per_node: int | None = None
    nic_Gbps: float | None = None
    fabric: str = ""
    assumptions: tuple[str, ...] = ()


_SYSTEMS = (("dgx-a100", r" (?:dgx|hgx) a100 | selene "), ("dgx-h100", r" (?:dgx|hgx) h100 "),
            ("dgx-2", r" dgx 2h? | hgx 2 "), ("dgx-1", r" dgx 1 "), ("big-basin", r" big basin "))
_NIC_WORDS = r"\b(?:ib|infiniband|connectx|mellanox|hdr|ndr|edr|nics?|hcas?|roce|efa|ethernet)\b"
_IB_GEN = {"xdr": 800.0, "ndr": 400.0, "hdr": 200.0, "edr": 100.0, "fdr": 56.0, "qdr": 40.0}


def parse_interconnect(text: str) -> InterconnectParse:
    """Interconnect text -> system preset, intra-node link, NICs per node, NIC line rate,
    fabric (only what is stated; empty fields otherwise)."""
    raw = _text(text)
    t = raw.lower()
    sp = " " + re.sub(r"[^a-z0-9]+", " ", t).strip() + " "
    notes: list[str] = []
    found = sorted((m.start(), s) for s, p in _SYSTEMS if (m := re.search(p, sp)))
    system = found[0][1] if found else ""
    if len(found) > 1:
        notes.append(f"several systems named; the first, {system}, taken")
    if system and re.search(r" hgx ", sp):
        notes.append(f"HGX board taken as a {system} node")
    nvls = bool(re.search(r"\bnvls\b|nvlink\s*sharp", t))
    if re.search(r"nvswitch", t) or nvls:
        intra = "nvswitch"
    elif re.search(r"nvlink", t):
        intra = "nvlink"
    elif re.search(r"\bpci\s*-?e", t):
        intra = "pcie"
    elif system:
        intra = "nvlink" if system in ("dgx-1", "big-basin") else "nvswitch"
        notes.append(f"intra-node link not stated: {intra} of a {system} assumed")
    elif re.search(r"\bhgx\b", t):
        intra = "nvswitch"
        notes.append("HGX board taken as NVSwitch-connected")
    else:
        intra = ""
    nics = None
    for m in re.finditer(r"(?<![\w.])(\d+)\s*[x×*]\s*", t):
        window = re.split(r"[,;()]", t[m.end():m.end() + 40])[0]
        if re.search(_NIC_WORDS, window) and not re.search(_GPU, window):
            nics = int(m.group(1))
            break
    rate = re.search(r"(\d+(?:\.\d+)?)\s*(?:g|gb|gbit|gbits|gbe)(?:\s*/\s*s|ps)?(?![a-z/])",
                     raw.replace("GB", "\0"), re.I)
    nic_gbps = float(rate.group(1)) if rate else None
    if nic_gbps is None:
        gen = re.search(r"\b(xdr|ndr|hdr|edr|fdr|qdr)\b", t)
        nic_gbps = _IB_GEN[gen.group(1)] if gen else None
    fabric = ("ethernet" if re.search(r"ethernet|roce|\bgbe\b|\befa\b", t) else
              "infiniband" if re.search(r"\bib\b|infiniband|\b(?:xdr|ndr|hdr|edr|fdr)\b", t)
              else "")
    if fabric == "ethernet" and re.search(r"\befa\b", t) and "ethernet" not in t:
        notes.append("EFA taken as an Ethernet fabric")
    return InterconnectParse(system, intra, nvls, nics, nic_gbps, fabric, tuple(notes))
