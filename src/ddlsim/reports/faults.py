"""Report of a checkpoint-interval sweep: goodput against the interval with Young's
``sqrt(2 C M)`` and Daly's higher-order optimum marked, a CSV table and a Markdown page.

Takes a :class:`ddlsim.api.faults.IntervalSweep` (duck-typed: ``frame()``,
``best_interval_s``, ``young_daly_interval_s``, ``daly_interval_s``, ``model_optimum_s``,
``resolution``); this module does not import :mod:`ddlsim.api`.
"""

from __future__ import annotations

from pathlib import Path

from ddlsim.reports.files import atomic_dir

SWEEP_COLUMNS = ("checkpoint_interval_s", "goodput_samples_per_s", "goodput_fraction",
                 "time_to_train_s", "checkpoint_s", "lost_to_failures_s", "failures")


def plot_goodput_vs_interval(ax, df, young_daly_s: float, best_s: float | None = None,
                             daly_s: float | None = None) -> None:
    """Goodput (samples/s) against the checkpoint interval (s, log axis); vertical lines
    at Young's optimum (and Daly's when given); the best grid point circled.

    ``df``: one row per interval with ``checkpoint_interval_s`` and
    ``goodput_samples_per_s``."""
    d = df.sort_values("checkpoint_interval_s")
    ax.plot(d["checkpoint_interval_s"], d["goodput_samples_per_s"], marker="o", ms=3,
            lw=1.4, label="goodput")
    ax.axvline(young_daly_s, color="tab:red", ls="--", lw=1,
               label=f"Young sqrt(2CM) = {young_daly_s:.4g} s")
    if daly_s is not None:
        ax.axvline(daly_s, color="tab:purple", ls=":", lw=1, label=f"Daly = {daly_s:.4g} s")
    if best_s is not None:
        best = d.loc[(d["checkpoint_interval_s"] - best_s).abs().idxmin()]
        ax.scatter([best["checkpoint_interval_s"]], [best["goodput_samples_per_s"]], s=90,
                   facecolors="none", edgecolors="black", zorder=4,
                   label=f"best of sweep = {best_s:.4g} s")
    ax.set_xscale("log")
    ax.set_xlabel("checkpoint interval (s of work)")
    ax.set_ylabel("goodput (useful samples/s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def sweep_markdown(sweep) -> str:
    """A Markdown page: the optima and the table."""
    df = sweep.frame()
    lines = [
        "# Goodput vs checkpoint interval", "",
        f"- best interval of the sweep: {sweep.best_interval_s:.4g} s "
        f"(grid resolution x{sweep.resolution:.3g})",
        f"- Young (1974) sqrt(2 C M): {sweep.young_daly_interval_s:.4g} s",
        f"- Daly (2006) higher order: {sweep.daly_interval_s:.4g} s",
        f"- exact optimum of the model: {sweep.model_optimum_s:.4g} s", "",
        "| interval (s) | goodput (samples/s) | fraction | time to train (h) | "
        "checkpoints (s) | lost to failures (s) | failures |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in df.itertuples(index=False):
        lines.append(f"| {r.checkpoint_interval_s:.4g} | {r.goodput_samples_per_s:.6g} | "
                     f"{r.goodput_fraction:.4f} | {r.time_to_train_s / 3600:.4g} | "
                     f"{r.checkpoint_s:.4g} | {r.lost_to_failures_s:.4g} | "
                     f"{r.failures:.3g} |")
    return "\n".join(lines) + "\n"


def write_faults_report(sweep, out_dir: str | Path) -> Path:
    """Write ``goodput_vs_interval.png``, ``sweep.csv`` and ``report.md`` into
    ``out_dir`` atomically; returns the folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = sweep.frame()
    with atomic_dir(out_dir) as tmp:
        df.loc[:, list(SWEEP_COLUMNS)].to_csv(tmp / "sweep.csv", index=False,
                                               float_format="%.6g")
        (tmp / "report.md").write_text(sweep_markdown(sweep))
        fig, ax = plt.subplots(figsize=(7, 4.2))
        try:
            plot_goodput_vs_interval(ax, df, sweep.young_daly_interval_s,
                                     sweep.best_interval_s, sweep.daly_interval_s)
            fig.tight_layout()
            fig.savefig(tmp / "goodput_vs_interval.png", dpi=110)
        finally:
            plt.close(fig)
    return Path(out_dir)
