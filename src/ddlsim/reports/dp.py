"""Report of synchronous data-parallel predictions: CSV tables, a Markdown page, a plot,
and a Chrome trace. Takes prediction objects from :func:`ddlsim.api.predict_dp`."""

from __future__ import annotations

from pathlib import Path

from ddlsim import units
from ddlsim.reports.files import atomic_dir
from ddlsim.reports.trace import write_chrome_trace


def summary_frame(predictions):
    import pandas as pd

    return pd.DataFrame([p.summary() for p in predictions])


def iterations_frame(predictions):
    import pandas as pd

    rows = []
    for p in predictions:
        for i, (t, exp) in enumerate(zip(p.result.iteration_times_s, p.result.exposed_comm_s,
                                         strict=True)):
            rows.append({"gpus": p.result.num_gpus, "iteration": i, "iteration_s": t,
                         "exposed_comm_s": exp})
    return pd.DataFrame(rows)


def buckets_frame(predictions):
    import pandas as pd

    cols = ["iteration", "bucket", "bytes", "ready_s", "start_s", "end_s"]
    frames = [pd.DataFrame(p.result.buckets, columns=cols).assign(gpus=p.result.num_gpus)
              for p in predictions]
    return pd.concat(frames, ignore_index=True)


def update_log_frame(predictions):
    import pandas as pd

    from ddlsim.sim.updates import UPDATE_LOG_COLUMNS

    frames = [pd.DataFrame(p.result.update_log, columns=list(UPDATE_LOG_COLUMNS))
              .assign(gpus=p.result.num_gpus) for p in predictions]
    return pd.concat(frames, ignore_index=True)


def links_frame(prediction):
    import pandas as pd

    df = pd.DataFrame(prediction.link_stats)
    return df


def plot_scaling(ax, summary) -> None:
    """Throughput against GPUs, with the ideal linear line from the smallest run."""
    s = summary.sort_values("gpus")
    ax.plot(s["gpus"], s["samples_per_s"], "o-", label="predicted")
    base = s.iloc[0]
    ax.plot(s["gpus"], base["samples_per_s"] / base["gpus"] * s["gpus"], "--", color="grey",
            label="linear scaling")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("GPUs")
    ax.set_ylabel("samples/s")
    ax.grid(True, which="both", alpha=0.3)
    for g, eff, thr in zip(s["gpus"], s["scaling_efficiency"], s["samples_per_s"], strict=True):
        ax.annotate(f"{100 * eff:.0f}%", (g, thr), textcoords="offset points", xytext=(4, -12),
                    fontsize=8)
    ax.legend()


def plot_iteration_breakdown(ax, summary) -> None:
    """Stacked bars: compute part and exposed communication of the median iteration."""
    s = summary.sort_values("gpus")
    labels = [str(g) for g in s["gpus"]]
    compute = (s["iteration_s"] - s["exposed_comm_s"]) * 1e3
    ax.bar(labels, compute, label="compute (incl. overlapped comm)")
    ax.bar(labels, s["exposed_comm_s"] * 1e3, bottom=compute, label="exposed communication")
    ax.set_xlabel("GPUs")
    ax.set_ylabel("median iteration (ms)")
    ax.legend()


def plot_timeline(ax, spans) -> None:
    """One traced iteration per GPU: compute stream (forward, backward, optimizer) and
    communication stream (bucket allreduces) as horizontal bars, in milliseconds."""
    import matplotlib.patches as mpatches

    def order(track: str):
        gpu, _, stream = track.partition(" ")
        digits = "".join(ch for ch in gpu if ch.isdigit())
        return (int(digits) if digits else 0, stream != "compute", track)

    tracks = sorted(dict.fromkeys(track for track, *_ in spans), key=order)
    colours = {"fwd": "tab:blue", "bwd": "tab:green", "optimizer": "tab:purple",
               "h2d": "tab:grey", "allreduce": "tab:orange"}
    t0 = min(start for _, _, start, _ in spans)
    for row, track in enumerate(tracks):
        for tr, name, start, dur in spans:
            if tr == track:
                kind = next((k for k in colours if name.startswith(k)), "fwd")
                ax.broken_barh([((start - t0) * 1e3, dur * 1e3)], (row - 0.4, 0.8),
                               facecolors=colours[kind], edgecolor="white", linewidth=0.2)
    ax.set_yticks(range(len(tracks)), tracks)
    ax.invert_yaxis()
    ax.set_xlabel("time within the iteration (ms)")
    ax.set_title("Iteration timeline: compute vs communication per GPU")
    ax.legend(handles=[mpatches.Patch(color=c, label=k) for k, c in colours.items()],
              fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _markdown(predictions, summary, headlines=()) -> str:
    p0 = predictions[0]
    o = p0.options
    lines = [
        f"# Synchronous data parallelism: {o.model} on {o.cluster}",
        "", *(f"- **{h}**" for h in headlines), *([""] if headlines else []),
        f"Batch {o.batch_per_gpu} per GPU, {o.dtype}, {o.iterations} iterations, "
        f"buckets of {o.bucket_MB:g} MB, overlap {'on' if o.overlap else 'off'}, "
        f"noise {o.noise} (CV {o.noise_cv:g}), seed {o.seed}.",
        f"Kernel costs: {', '.join(f'{k}: {v}' for k, v in sorted(p0.cost_paths.items()))} "
        "(measured profile rows / interpolation / roofline x fitted efficiency).",
        "",
        "| GPUs | nodes | allreduce | iteration (median) | p10-p90 | samples/s | "
        "scaling eff. | exposed comm | GPU busy |",
        "|---:|---:|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in summary.itertuples(index=False):
        lines.append(
            f"| {r.gpus} | {r.nodes} | {r.algo} | {units.fmt_seconds(r.iteration_s)} | "
            f"{units.fmt_seconds(r.iteration_p10_s)} - {units.fmt_seconds(r.iteration_p90_s)} | "
            f"{r.samples_per_s:,.0f} | {100 * r.scaling_efficiency:.1f}% | "
            f"{units.fmt_seconds(r.exposed_comm_s)} | {100 * r.gpu_busy_frac:.1f}% |")
    lines += ["", "Files: `summary.csv`, `iterations.csv`, `buckets.csv`, `update_log.csv`, "
              "`links.csv` (largest run), `trace.json` (open in https://ui.perfetto.dev), "
              "`scaling.png`, `timeline.png`.", "", "![scaling](scaling.png)", "",
              "![timeline](timeline.png)", ""]
    return "\n".join(lines)


def write_dp_files(predictions, folder: Path, headlines=()) -> None:
    """Write the report files of one or more predictions into an existing ``folder``;
    ``headlines``: one answer sentence per prediction, shown first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    summary = summary_frame(predictions)
    summary.to_csv(folder / "summary.csv", index=False, float_format="%.6g")
    iterations_frame(predictions).to_csv(folder / "iterations.csv", index=False,
                                         float_format="%.9g")
    buckets_frame(predictions).to_csv(folder / "buckets.csv", index=False, float_format="%.9g")
    update_log_frame(predictions).to_csv(folder / "update_log.csv", index=False,
                                         float_format="%.9g")
    largest = max(predictions, key=lambda p: p.result.num_gpus)
    links_frame(largest).to_csv(folder / "links.csv", index=False, float_format="%.6g")
    spans = [s for p in predictions[-1:] for s in p.result.spans]
    write_chrome_trace(spans, folder / "trace.json")
    if spans:
        fig, ax = plt.subplots(figsize=(11, 1.2 + 0.5 * len({s[0] for s in spans})))
        plot_timeline(ax, spans)
        fig.tight_layout()
        fig.savefig(folder / "timeline.png", dpi=110)
        plt.close(fig)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    plot_scaling(ax1, summary)
    plot_iteration_breakdown(ax2, summary)
    fig.suptitle(f"{predictions[0].options.model} on {predictions[0].options.cluster}")
    fig.tight_layout()
    fig.savefig(folder / "scaling.png", dpi=110)
    plt.close(fig)
    (folder / "report.md").write_text(_markdown(predictions, summary, headlines))


def write_dp_report(predictions, out_dir: str | Path, headlines=()) -> Path:
    """Write the whole report for one or more predictions atomically; returns its folder."""
    with atomic_dir(out_dir) as tmp:
        write_dp_files(predictions, tmp, headlines)
    return Path(out_dir)
