"""Report of a capacity plan: the headline (the answer first), the frontier in human units
(hours/days, USD, GPUs, layout), the time-vs-cost Pareto plot, CSV tables and a Markdown
page. Takes a :class:`ddlsim.api.plan.PlanResult` (duck-typed: ``table``, ``frontier``,
``options``, ``target``, ``explanation``, ``notes``, ``prices``, ``choice``)."""

from __future__ import annotations

import math
from pathlib import Path

from ddlsim.reports.files import atomic_dir

HOUR_S = 3600.0


def plot_pareto(ax, table, frontier, deadline_s: float | None = None,
                budget_usd: float | None = None, choice: dict | None = None) -> None:
    """Cost (USD) against time-to-train (hours), one marker colour per GPU type, the
    Pareto frontier as a highlighted step line, deadline (vertical) and budget
    (horizontal) lines, and the chosen configuration circled."""
    ok = table[table["feasible"]]
    for gpu, grp in ok.groupby("gpu", sort=True):
        ax.scatter(grp["hours"], grp["cost_usd"], s=28, alpha=0.75, label=str(gpu), zorder=2)
        for r in grp.itertuples(index=False):
            ax.annotate(str(r.gpus), (r.hours, r.cost_usd), textcoords="offset points",
                        xytext=(3, 3), fontsize=7, color="dimgray")
    if len(frontier):
        f = frontier.sort_values("hours")
        ax.step(f["hours"], f["cost_usd"], where="post", color="black", lw=1.6, zorder=3,
                label="Pareto frontier")
        ax.scatter(f["hours"], f["cost_usd"], s=60, facecolors="none", edgecolors="black",
                   zorder=4)
    if deadline_s is not None:
        ax.axvline(deadline_s / HOUR_S, color="tab:red", ls="--", lw=1,
                   label=f"deadline {deadline_s / HOUR_S:.4g} h")
    if budget_usd is not None:
        ax.axhline(budget_usd, color="tab:purple", ls="--", lw=1,
                   label=f"budget ${budget_usd:,.0f}")
    if choice is not None:
        ax.scatter([choice["hours"]], [choice["cost_usd"]], marker="*", s=220,
                   color="gold", edgecolors="black", zorder=5,
                   label=f"choice: {choice['gpus']} x {choice['gpu']}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("time to train (hours)")
    ax.set_ylabel("cost (USD)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def format_duration(seconds: float) -> str:
    """Human wall time: minutes under an hour, hours under two days, then days."""
    if not math.isfinite(seconds):
        return "-"
    if seconds < HOUR_S:
        return f"{seconds / 60:.3g} min"
    if seconds < 48 * HOUR_S:
        return f"{seconds / HOUR_S:.3g} h"
    days = seconds / (24 * HOUR_S)
    return f"{days:,.0f} days" if days >= 100 else f"{days:.3g} days"


def format_usd(usd: float) -> str:
    """``$123,456`` (cents under $100)."""
    if not math.isfinite(usd):
        return "-"
    return f"${usd:,.0f}" if usd >= 100 else f"${usd:,.2f}"


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _memory(r) -> str:
    used, cap = _num(r["memory_GiB"]), _num(r["capacity_GiB"])
    return f"{used:.0f}/{cap:.0f} GiB" if math.isfinite(used) and math.isfinite(cap) else "-"


def describe_row(r, model: str, target: str) -> str:
    """``64 x H100-SXM, llama2-70b, tp 8 pp 2 dp 4 mbs 1, bf16: 2.1 days, $123,000
    (tokens=2e12)``."""
    dtype = f", {r['dtype']}" if r.get("dtype") else ""
    return (f"{r['gpus']} x {str(r['gpu']).upper()}, {model}, {r['layout']}{dtype}: "
            f"{format_duration(_num(r['time_s']))}, {format_usd(_num(r['cost_usd']))} "
            f"({target})")


def headline_lines(result) -> list[str]:
    """The answer first: the chosen configuration for the deadline / budget (or, with
    neither, the fastest and the cheapest), else why nothing qualifies."""
    o, t = result.options, result.table
    model, target = o.model, o.target
    ok = t[t["feasible"]]
    if ok.empty:
        why = next((str(n) for n in t["note"][::-1] if str(n)), "see the note column")
        return [f"no configuration can run ({model}, {target}): {why}"]
    fast = ok.sort_values(["time_s", "cost_usd"]).iloc[0]
    cheap = ok.sort_values(["cost_usd", "time_s"]).iloc[0]
    c = result.choice
    if o.deadline_s is not None:
        limit = f"the deadline of {format_duration(o.deadline_s)}" + (
            "" if o.budget_usd is None else f" and the budget of {format_usd(o.budget_usd)}")
        if c is not None:
            return [f"cheapest within {limit}: {describe_row(c, model, target)}"]
        return [f"nothing meets {limit}; fastest: {describe_row(fast, model, target)}"]
    if o.budget_usd is not None:
        limit = f"the budget of {format_usd(o.budget_usd)}"
        if c is not None:
            return [f"fastest within {limit}: {describe_row(c, model, target)}"]
        return [f"nothing fits {limit}; cheapest: {describe_row(cheap, model, target)}"]
    lines = [f"fastest: {describe_row(fast, model, target)}"]
    if cheap.name != fast.name:
        lines.append(f"cheapest: {describe_row(cheap, model, target)}")
    return lines


def frontier_records(result) -> list[dict]:
    """The Pareto frontier, fastest first, in human units (and the SI numbers)."""
    out = []
    for r in result.frontier.to_dict(orient="records"):
        out.append({"gpu": str(r["gpu"]), "gpus": int(r["gpus"]), "layout": str(r["layout"]),
                    "dtype": str(r["dtype"]), "iteration_s": _num(r["iteration_s"]),
                    "time": format_duration(_num(r["time_s"])), "time_s": _num(r["time_s"]),
                    "cost": format_usd(_num(r["cost_usd"])), "cost_usd": _num(r["cost_usd"]),
                    "memory": _memory(r), "memory_GiB": _num(r["memory_GiB"]),
                    "capacity_GiB": _num(r["capacity_GiB"]), "mfu": _num(r["mfu"]),
                    "meets_deadline": bool(r["meets_deadline"]),
                    "within_budget": bool(r["within_budget"])})
    return out


def frontier_text(result) -> str:
    """The frontier as an aligned text table in human units."""
    head = ["GPU", "GPUs", "layout", "precision", "iteration", "time", "cost", "memory/GPU",
            "MFU"]
    rows = [[r["gpu"].upper(), f"{r['gpus']:,}", r["layout"], r["dtype"] or "-",
             f"{r['iteration_s']:.3g} s", r["time"], r["cost"], r["memory"],
             "-" if not math.isfinite(r["mfu"]) else f"{100 * r['mfu']:.0f} %"]
            for r in frontier_records(result)]
    if not rows:
        return "(empty: no configuration can run)"
    widths = [max(len(x[i]) for x in [head] + rows) for i in range(len(head))]
    right = {1, 4, 5, 6, 7, 8}
    fmt = [(lambda v, w: v.rjust(w)) if i in right else (lambda v, w: v.ljust(w))
           for i in range(len(head))]
    return "\n".join("  ".join(fmt[i](x[i], widths[i]) for i in range(len(head))).rstrip()
                     for x in [head] + rows)


def _fmt_row(r) -> str:
    mfu = _num(r.mfu)
    ev = _num(r.eval_s)
    ev = format_duration(ev) if math.isfinite(ev) and ev > 0 else "-"
    return (f"| {str(r.gpu).upper()} | {r.gpus} | {r.layout} | {r.dtype or '-'} | "
            f"{r.global_batch} | {r.iteration_s:.4g} | {r.steps:,} | {ev} | {r.goodput:.4f} | "
            f"{format_duration(r.time_s)} | {format_usd(r.cost_usd)} | "
            f"{_memory(r._asdict())} | {'-' if not math.isfinite(mfu) else f'{100 * mfu:.0f} %'}"
            f" | {'yes' if r.pareto else ''} | {r.note} |")


def plan_markdown(result) -> str:
    """The Markdown page: the headline, target, choice or explanation, frontier, every
    configuration, prices with sources, notes."""
    o = result.options
    head = ("| GPU | GPUs | layout | precision | global batch | iteration (s) | steps | "
            "evaluation | goodput | time | cost | memory/GPU | MFU | Pareto | note |\n"
            "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    lines = [f"# Capacity plan: {o.model}", ""]
    lines += [f"**{line}**" for line in headline_lines(result)]
    lines += ["", f"Target: {result.target.describe()}."
              + (f" Deadline {format_duration(o.deadline_s)}." if o.deadline_s else "")
              + (f" Budget {format_usd(o.budget_usd)}." if o.budget_usd else ""),
              "time = (steps x iteration + evaluation) / goodput; cost = GPUs x hours x USD "
              "per GPU-hour.",
              "", "## Result", ""]
    lines += [f"- {line}" for line in result.explanation]
    lines += ["", "## Pareto frontier (time vs cost)", "", head]
    lines += [_fmt_row(r) for r in result.frontier.itertuples(index=False)]
    lines += ["", "## All configurations", "", head]
    lines += [_fmt_row(r) for r in result.table.itertuples(index=False)]
    lines += ["", "## Prices", "", "| device | instance | USD/GPU-h | pricing | source | date |",
              "|---|---|---:|---|---|---|"]
    for p in result.prices.values():
        lines.append(f"| {p['device']} | {p['instance']} | {p['usd_per_gpu_hour']:g} | "
                     f"{p['pricing']} | {p['source']} | {p['date']} |")
    if result.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in result.notes]
    lines += ["", "Files: `plan.csv` (every configuration), `frontier.csv`, `prices.csv`, "
              "`pareto.png`.", ""]
    return "\n".join(lines)


def write_plan_files(result, folder: Path) -> None:
    """Write ``plan.csv``, ``frontier.csv``, ``prices.csv``, ``pareto.png`` and
    ``report.md`` into an existing ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    folder = Path(folder)
    result.table.to_csv(folder / "plan.csv", index=False, float_format="%.6g")
    result.frontier.to_csv(folder / "frontier.csv", index=False, float_format="%.6g")
    pd.DataFrame(list(result.prices.values())).to_csv(folder / "prices.csv", index=False)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    o = result.options
    plot_pareto(ax, result.table, result.frontier, o.deadline_s, o.budget_usd, result.choice)
    ax.set_title(f"{o.model}: time to train vs cost ({result.target.describe()})", fontsize=9)
    fig.tight_layout()
    fig.savefig(folder / "pareto.png", dpi=110)
    plt.close(fig)
    (folder / "report.md").write_text(plan_markdown(result))


def write_plan_report(result, out_dir: str | Path) -> Path:
    """Write the plan report atomically into ``out_dir``; returns the folder."""
    with atomic_dir(out_dir) as tmp:
        write_plan_files(result, tmp)
    return Path(out_dir)
