"""Parallelism cells: degrees (tp, pp, dp, cp, vp, ...), ZeRO stage, recomputation,
sequence parallelism, the attention kernel and the strategy they describe
(:func:`parse_parallelism`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ddlsim.validation.parse.text import cell_text, first


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
    attention: str = ""  # "fused" | "unfused" where the text says so


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


_ATTENTION = (("unfused", r"\bunfused[\s_-]*(?:attention|attn|sdpa)|(?:no|without)[\s_-]*"
                          r"(?:flash|fused)[\s_-]*(?:attention|attn)|(?:standard|naive|eager|"
                          r"math)[\s_-]*(?:attention|sdpa)\b|(?:flash|fused)[\s_-]*(?:attention|"
                          r"attn)\w*\s*[=:]\s*(?:false|off|0|no)\b"),
              ("fused", r"flash[\s_-]*(?:attention|attn)|fused[\s_-]*(?:attention|attn)|"
                        r"\bsdpa\b|cudnn[\s_-]*(?:fused[\s_-]*)?attention"))


def parse_parallelism(text: str) -> ParallelismParse:
    """Parallelism text -> :class:`ParallelismParse` (empty fields for what is not stated).

    ``recompute`` is ``""`` when not stated (``"none"`` only when it says so).
    """
    t = cell_text(text).lower()
    notes: list[str] = []
    v: dict[str, int] = {}
    for key, patterns in _PAR.items():
        m = first(patterns, t)
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
    attention = next((a for a, p in _ATTENTION if re.search(p, t)), "")
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
                            balance=balance, assumptions=tuple(notes), attention=attention)
