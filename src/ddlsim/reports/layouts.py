"""The report of a layout search (``ddlsim search``): the ranked table and a picture of
every feasible layout, time against memory per GPU, with the chosen one marked."""

from __future__ import annotations

from pathlib import Path

from ddlsim.reports.files import atomic_dir
from ddlsim.reports.tables import markdown_table

RECOMPUTE_MARKERS = {"none": "o", "selective": "s", "full": "^"}


def ranked_frame(search):
    """The predicted layouts, fastest first, in human units."""
    import pandas as pd

    return pd.DataFrame([{
        "rank": i + 1, "layout": c.label, "precision": c.dtype,
        "time per iteration (s)": f"{c.iteration_s:.3g}",
        "fast path (s)": f"{c.proxy_s:.3g}",
        "tokens/s": f"{c.tokens_per_s:,.0f}", "MFU (%)": f"{100 * c.mfu:.1f}",
        "memory per GPU (GiB)": f"{c.memory_bytes / 2**30:.1f} of "
                                f"{c.capacity_bytes / 2**30:.0f}",
        "pipeline bubble (%)": f"{100 * c.bubble_fraction:.1f}"}
        for i, c in enumerate(search.layouts)])


def feasible_frame(search):
    """Every layout that fits (the fast path's memory and time), best estimate first."""
    import pandas as pd

    cols = ["tp", "pp", "dp", "cp", "vp", "zero", "micro_batch", "recompute", "memory_bytes",
            "estimate_s", "bubble_fraction"]
    return pd.DataFrame([{c: getattr(f, c) for c in cols} for f in search.feasible],
                        columns=cols)


def plot_layouts(ax, search) -> None:
    """Estimated time per iteration vs memory per GPU for every feasible layout (colour:
    tensor parallelism, marker: recomputation); the chosen layout (the best predicted) is
    ringed, at its fast-path estimate."""
    tps = sorted({f.tp for f in search.feasible})
    for i, tp in enumerate(tps):
        for rc, marker in RECOMPUTE_MARKERS.items():
            sel = [f for f in search.feasible if f.tp == tp and f.recompute == rc]
            if sel:
                ax.scatter([f.memory_bytes / 2**30 for f in sel], [f.estimate_s for f in sel],
                           color=f"C{i % 10}", marker=marker, s=14, alpha=0.55,
                           linewidths=0)
    for i, tp in enumerate(tps):  # legend entries: one per tp, one per recomputation
        ax.scatter([], [], color=f"C{i % 10}", marker="o", s=20, label=f"tp {tp}")
    for rc, marker in RECOMPUTE_MARKERS.items():
        ax.scatter([], [], color="grey", marker=marker, s=20, label=f"{rc} recompute")
    best = search.best
    if best is not None:
        ax.scatter([best.memory_bytes / 2**30], [best.proxy_s], s=220, facecolors="none",
                   edgecolors="black", linewidths=2,
                   label=f"chosen: {best.label}\n({best.iteration_s:.3g} s predicted)")
        ax.axvline(best.capacity_bytes / 2**30, color="red", linestyle="--", linewidth=1,
                   label="GPU memory")
    ax.set_xlabel("memory per GPU (GiB)")
    ax.set_ylabel("time per iteration (s, fast path)")
    ax.set_title(f"{len(search.feasible)} layouts that fit (every tp x cp x pp x dp x "
                 "micro-batch x recompute x vp x ZeRO)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def write_search_report(search, title: str, out_dir: str | Path) -> Path:
    """``report.md``, ``layouts.csv`` (every feasible layout) and ``layouts.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with atomic_dir(out_dir) as tmp:
        feasible_frame(search).to_csv(tmp / "layouts.csv", index=False, float_format="%.6g")
        fig, ax = plt.subplots(figsize=(10, 5.5))
        plot_layouts(ax, search)
        fig.tight_layout()
        fig.savefig(tmp / "layouts.png", dpi=110)
        plt.close(fig)
        md = [f"# {title}", "", search.note(), "", *markdown_table(ranked_frame(search)), "",
              "![layouts](layouts.png)", ""]
        (tmp / "report.md").write_text("\n".join(md))
    return Path(out_dir)
