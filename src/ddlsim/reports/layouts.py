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
        "tokens/s": f"{c.tokens_per_s:,.0f}", "MFU (%)": f"{100 * c.mfu:.1f}",
        "memory per GPU (GiB)": f"{c.memory_bytes / 2**30:.1f} of "
                                f"{c.capacity_bytes / 2**30:.0f}",
        "pipeline bubble (%)": f"{100 * c.bubble_fraction:.1f}"}
        for i, c in enumerate(search.layouts)])


def plot_layouts(ax, search) -> None:
    """Estimated time per iteration vs memory per GPU for every feasible layout (colour:
    tp x pp, marker: recomputation); the predicted best is marked."""
    splits = sorted({(f[0], f[1]) for f in search.feasible})
    colour = {s: f"C{i % 10}" for i, s in enumerate(splits)}
    for (tp, pp) in splits:
        pts = [f for f in search.feasible if (f[0], f[1]) == (tp, pp)]
        for rc, marker in RECOMPUTE_MARKERS.items():
            sel = [f for f in pts if f[4] == rc]
            if sel:
                ax.scatter([f[5] / 2**30 for f in sel], [f[6] for f in sel],
                           color=colour[(tp, pp)], marker=marker, s=28,
                           label=f"tp {tp} pp {pp}" if rc == pts[0][4] else None)
    best = search.best
    if best is not None:
        ax.scatter([best.memory_bytes / 2**30], [best.iteration_s], s=220, facecolors="none",
                   edgecolors="black", linewidths=2, label=f"chosen: {best.label}")
        ax.axvline(best.capacity_bytes / 2**30, color="red", linestyle="--", linewidth=1,
                   label="GPU memory")
    ax.set_xlabel("memory per GPU (GiB)")
    ax.set_ylabel("time per iteration (s; estimate, chosen: predicted)")
    ax.set_title("Feasible layouts (o none, s selective, ^ full recomputation)")
    ax.legend(fontsize=7, loc="best")


def write_search_report(search, title: str, out_dir: str | Path) -> Path:
    """``report.md``, ``layouts.csv`` (every feasible layout) and ``layouts.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    with atomic_dir(out_dir) as tmp:
        pd.DataFrame(search.feasible, columns=["tp", "pp", "dp", "micro_batch", "recompute",
                                               "memory_bytes", "estimate_s"]).to_csv(
            tmp / "layouts.csv", index=False, float_format="%.6g")
        fig, ax = plt.subplots(figsize=(8, 5))
        plot_layouts(ax, search)
        fig.tight_layout()
        fig.savefig(tmp / "layouts.png", dpi=110)
        plt.close(fig)
        md = [f"# {title}", "", search.note(), "", *markdown_table(ranked_frame(search)), "",
              "![layouts](layouts.png)", ""]
        (tmp / "report.md").write_text("\n".join(md))
    return Path(out_dir)
