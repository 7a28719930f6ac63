"""Report of parameter-server predictions: staleness histogram, comparison table (CSV and
Markdown), update log. Takes :class:`ddlsim.api.async_ps.PSPrediction` objects and the
DataFrame of :func:`ddlsim.api.async_ps.compare_strategies`."""

from __future__ import annotations

from pathlib import Path

from ddlsim.reports.files import atomic_dir


def update_log_frame(predictions):
    """All update logs, one row per applied update, tagged with the run's mode."""
    import pandas as pd

    from ddlsim.sim.updates import UPDATE_LOG_COLUMNS

    frames = [pd.DataFrame(p.result.update_log, columns=list(UPDATE_LOG_COLUMNS))
              .assign(mode=p.result.mode, workers=p.result.num_workers) for p in predictions]
    return pd.concat(frames, ignore_index=True)


def plot_staleness(ax, df) -> None:
    """Histogram of staleness (updates) per mode, from an update-log frame with a ``mode``
    column (or a single run's log without one)."""
    import numpy as np

    groups = df.groupby("mode") if "mode" in df.columns else [("run", df)]
    top = int(df["staleness"].max()) if len(df) else 0
    bins = np.arange(-0.5, top + 1.5, 1.0)
    for mode, g in groups:
        ax.hist(g["staleness"], bins=bins, alpha=0.6, label=f"{mode} (mean "
                f"{g['staleness'].mean():.1f})")
    ax.set_xlabel("staleness (updates applied between read and write)")
    ax.set_ylabel("updates")
    ax.legend()


def comparison_markdown(df, title: str = "Allreduce vs parameter server") -> str:
    """The :func:`compare_strategies` table as Markdown."""
    lines = [f"# {title}", "",
             "| straggler | strategy | samples/s | updates/s | staleness mean | p99 | "
             "dropped | worker util | server link util | slowdown |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in df.itertuples(index=False):
        link = "-" if r.server_link_util_max != r.server_link_util_max else \
            f"{100 * r.server_link_util_max:.0f}%"
        lines.append(f"| {r.straggler} | {r.strategy} | {r.samples_per_s:,.0f} | "
                     f"{r.updates_per_s:,.2f} | {r.staleness_mean:.2f} | {r.staleness_p99:.0f} | "
                     f"{r.dropped_grads} | {100 * r.worker_util_mean:.0f}% | {link} | "
                     f"{r.slowdown:.2f}x |")
    lines += ["", "slowdown: samples/s without the straggler / with it (1.00x = unaffected).",
              "staleness: model-level updates applied between a gradient's weight read and "
              "its own update (0 for synchronous strategies).", ""]
    return "\n".join(lines)


def write_ps_report(predictions, out_dir: str | Path, comparison=None, headlines=()) -> Path:
    """Write summary.csv, update_log.csv, links.csv, staleness.png, report.md (and
    comparison.csv when ``comparison`` is given) atomically; returns the folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    summary = pd.DataFrame([p.summary() for p in predictions])
    log = update_log_frame(predictions)
    with atomic_dir(out_dir) as tmp:
        summary.to_csv(tmp / "summary.csv", index=False, float_format="%.6g")
        log.to_csv(tmp / "update_log.csv", index=False, float_format="%.9g")
        links = pd.concat([pd.DataFrame(p.result.server_links).assign(mode=p.result.mode)
                           for p in predictions], ignore_index=True)
        links.to_csv(tmp / "links.csv", index=False, float_format="%.6g")
        fig, ax = plt.subplots(figsize=(7, 4))
        plot_staleness(ax, log)
        fig.tight_layout()
        fig.savefig(tmp / "staleness.png", dpi=110)
        plt.close(fig)
        o = predictions[0].options
        text = [f"# Parameter server: {o.model} on {o.cluster}", "",
                *(f"- **{h}**" for h in headlines), *([""] if headlines else []),
                f"{o.workers} workers, batch {o.batch_per_worker}, {o.shards} shard(s) "
                f"({o.placement}), seed {o.seed}.", "",
                "| mode | updates | samples/s | updates/s | staleness mean / p50 / p99 | "
                "dropped | worker util | server link util |",
                "|---|---:|---:|---:|---|---:|---:|---:|"]
        for r in summary.itertuples(index=False):
            text.append(f"| {r.strategy} | {r.updates} | {r.samples_per_s:,.0f} | "
                        f"{r.updates_per_s:,.2f} | {r.staleness_mean:.2f} / "
                        f"{r.staleness_p50:.0f} / {r.staleness_p99:.0f} | {r.dropped_grads} | "
                        f"{100 * r.worker_util_mean:.0f}% | "
                        f"{100 * r.server_link_util_max:.0f}% |")
        text.append("")
        if comparison is not None:
            comparison.to_csv(tmp / "comparison.csv", index=False, float_format="%.6g")
            text.append(comparison_markdown(comparison))
        text.append("Files: `summary.csv`, `update_log.csv`, `links.csv`, `staleness.png`"
                    + (", `comparison.csv`." if comparison is not None else "."))
        (tmp / "report.md").write_text("\n".join(text) + "\n")
    return Path(out_dir)
