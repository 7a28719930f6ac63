"""Report of a capacity plan: the time-vs-cost Pareto plot, CSV tables and a Markdown
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


def _fmt_row(r) -> str:
    hours = f"{r.hours:.4g}" if math.isfinite(r.hours) else "-"
    cost = f"{r.cost_usd:,.0f}" if math.isfinite(r.cost_usd) else "-"
    return (f"| {r.gpu} | {r.gpus} | {r.strategy} | {r.global_batch} | {r.iteration_s:.4g} | "
            f"{r.steps:,} | {r.goodput:.4f} | {hours} | {cost} | "
            f"{'yes' if r.pareto else ''} | {r.note} |")


def plan_markdown(result) -> str:
    """The Markdown page: target, choice or explanation, frontier, every configuration,
    prices with sources, notes."""
    o = result.options
    head = ("| GPU | GPUs | strategy | global batch | iteration (s) | steps | goodput | "
            "hours | cost (USD) | Pareto | note |\n|---|---:|---|---:|---:|---:|---:|---:|"
            "---:|---|---|")
    lines = [f"# Capacity plan: {o.model}", "",
             f"Target: {result.target.describe()}."
             + (f" Deadline {o.deadline_s / HOUR_S:.4g} h." if o.deadline_s else "")
             + (f" Budget ${o.budget_usd:,.0f}." if o.budget_usd else ""),
             "time = steps x iteration / goodput; cost = GPUs x hours x USD per GPU-hour.",
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
