"""The answer first: a headline sentence per strategy and the summary table in human
units (unit in every column name, percentages as percentages, an explanation instead of
an empty cell)."""

from __future__ import annotations

import math

from ddlsim import units


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def sentence(pred) -> str:
    """The answer of one :class:`ddlsim.api.Prediction` in a sentence: GPUs x device,
    model, precision, time per iteration, throughput, model TFLOP/s per GPU and MFU,
    scaling, memory on the fullest GPU and whether it fits."""
    job = pred.job
    parts = [f"{pred.gpus} x {pred.device}, {job.workload.model}, {pred.dtype}:",
             f"{pred.iteration_s:.3g} s per iteration,"]
    if pred.tokens_per_sample > 1:
        parts.append(f"{pred.tokens_per_s:,.0f} tokens/s,")
    else:
        parts.append(f"{pred.samples_per_s:,.0f} samples/s,")
    parts.append(f"{pred.model_tflops_per_gpu:.1f} model TFLOP/s per GPU "
                 f"(MFU {_pct(pred.mfu)} %)")
    if pred.scaling_efficiency is not None:
        parts[-1] += f", {100 * pred.scaling_efficiency:.1f} % scaling"
    if pred.memory_bytes is not None:
        verdict = "fits" if pred.fits else (
            f"does NOT fit: {(pred.memory_bytes - pred.memory_capacity_bytes) / 2**30:.1f} GiB "
            "over")
        parts[-1] += (f", {pred.memory_bytes / 2**30:.1f} of "
                      f"{pred.memory_capacity_bytes / 2**30:.0f} GiB on the fullest GPU "
                      f"({verdict})")
    return " ".join(parts)


def headline(row: dict) -> str:
    """One sentence: GPUs x device, precision, throughput, time per iteration, scaling,
    MFU and memory of one summary row (the SI records of ``ScenarioRun.summary``)."""
    parts = [f"{row.get('strategy')}: {row.get('gpus')} x {row.get('device')}, "
             f"{row.get('dtype')}"]
    sps, it = _num(row.get("samples_per_s")), _num(row.get("iteration_s"))
    tps = _num(row.get("tokens_per_s"))
    if tps is not None and sps is not None and tps > sps:
        parts.append(f"{tps:,.0f} tokens/s")
    elif sps is not None:
        parts.append(f"{sps:,.0f} samples/s")
    if it is not None:
        parts.append(f"{units.fmt_seconds(it)} per iteration")
    scale, mfu = _num(row.get("scaling_efficiency")), _num(row.get("mfu"))
    if scale is not None:
        parts.append(f"{100 * scale:.0f} % scaling")
    if mfu is not None:
        parts.append(f"MFU {_pct(mfu)} %")
    mem = _num(row.get("memory_bytes"))
    if mem is not None:
        verdict = {True: "fits", False: "does NOT fit"}.get(row.get("fits"), "")
        parts.append(f"{mem / 2**30:.1f} GiB per GPU {verdict}".rstrip())
    ttt, cost = _num(row.get("time_to_train_s")), _num(row.get("cost_usd"))
    if ttt is not None:
        parts.append(f"trains in {duration(ttt)}"
                     + (f" for ${cost:,.0f}" if cost is not None else ""))
    tta, seeds, reached = (_num(row.get(k)) for k in ("tta_median_s", "tta_seeds",
                                                       "tta_reached"))
    if tta is not None and seeds and reached is not None:
        parts.append(f"target accuracy reached by {reached:.0f} of {seeds:.0f} seeds, "
                     f"median {units.fmt_seconds(tta)}")
    elif "tta_median_s" in row and tta is None:
        parts.append("target accuracy not reached by any seed")
    return ", ".join(parts)


def duration(seconds: float) -> str:
    """A wall time in the unit a planner thinks in: s, min, h or days."""
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _pct(v: float) -> str:
    """A fraction as a percentage, two significant digits below 1 %."""
    return f"{100 * v:.2g}" if abs(v) < 0.01 else f"{100 * v:.1f}"


#: summary column -> (human column name, formatter, text for a missing value)
HUMAN_COLUMNS = {
    "strategy": ("strategy", str, ""),
    "device": ("device", str, ""),
    "dtype": ("precision", str, ""),
    "gpus": ("GPUs", lambda v: f"{int(v):,}", ""),
    "samples_per_s": ("throughput (samples/s)", lambda v: f"{v:,.3g}" if v < 100
                      else f"{v:,.0f}", ""),
    "tokens_per_s": ("tokens/s", lambda v: f"{v:,.0f}", "n/a (not a language model)"),
    "iteration_s": ("time per iteration", units.fmt_seconds, ""),
    "scaling_efficiency": ("scaling vs 1 GPU (%)", _pct, "not computed"),
    "mfu": ("MFU (%)", _pct, "n/a"),
    "memory_bytes": ("memory per GPU (GiB)", lambda v: f"{v / 2**30:.1f}", "not modelled"),
    "fits": ("fits in memory", lambda v: "yes" if v else "NO", "unknown"),
    "staleness_mean": ("mean staleness (updates)", lambda v: f"{v:.2f}", "0 (sync)"),
    "bubble_fraction": ("pipeline bubble (%)", lambda v: f"{100 * v:.1f}", "no pipeline"),
    "goodput_fraction": ("goodput after failures (%)", _pct, "not modelled"),
    "time_to_train_s": ("time to train", duration, "no training target"),
    "cost_usd": ("cost (USD)", lambda v: f"{v:,.0f}", "no price"),
    "convergence_outcome": ("outcome", str, "not trained"),
    "tta_outcomes": ("per seed", lambda v: str(v).replace(",", ", "), "not trained"),
    "final_test_acc": ("final test accuracy (%)", lambda v: f"{100 * v:.1f}", "not trained"),
    "tta_reached": ("seeds reaching target", lambda v: f"{int(v)}", "not trained"),
    "tta_median_s": ("time to target (median)", units.fmt_seconds, "not reached"),
}


#: columns left out when no row has a value (a CNN-only table has no tokens/s)
DROP_WHEN_EMPTY = {"tokens_per_s"}


def human_table(summary):
    """``summary`` (SI records) as a DataFrame of display strings with human column
    names, in :data:`HUMAN_COLUMNS` order; columns absent from ``summary`` are left out."""
    import pandas as pd

    out = {}
    for col, (name, fmt, missing) in HUMAN_COLUMNS.items():
        if col not in summary.columns:
            continue
        if col in DROP_WHEN_EMPTY and summary[col].isna().all():
            continue
        cells = []
        for v in summary[col]:
            if v is None or (isinstance(v, float) and math.isnan(v)):
                cells.append(missing)
            else:
                cells.append(fmt(v))
        out[name] = cells
    return pd.DataFrame(out)
