"""Report of model-parallel predictions: a pipeline timeline (Gantt per stage), memory per
GPU, CSV tables and a Markdown page. Takes :class:`ddlsim.api.pipeline.PipelinePrediction`."""

from __future__ import annotations

from pathlib import Path

from ddlsim import units
from ddlsim.reports.files import atomic_dir
from ddlsim.reports.trace import write_chrome_trace


def ops_frame(pred):
    """One row per compute operation: iteration, stage, kind (F/B), micro_batch, start_s,
    end_s."""
    import pandas as pd

    return pd.DataFrame(pred.result.ops, columns=["iteration", "stage", "kind", "micro_batch",
                                                  "start_s", "end_s"])


def sends_frame(pred):
    import pandas as pd

    return pd.DataFrame(pred.result.sends, columns=["iteration", "src", "dst", "kind",
                                                    "micro_batch", "start_s", "end_s"])


def stages_frame(pred):
    """Per-stage placement, time and memory breakdown."""
    import pandas as pd

    return pd.DataFrame(pred.stages_frame_rows())


def summary_frame(predictions):
    import pandas as pd

    return pd.DataFrame([p.summary() for p in predictions])


def plot_timeline(ax, ops) -> None:
    """Gantt chart: one row per stage, forward (light) and backward (dark) boxes labelled
    with the micro-batch, time in ms."""
    colors = {"F": "#7fb3e6", "B": "#1f4e8c"}
    for r in ops.itertuples(index=False):
        width = (r.end_s - r.start_s) * 1e3
        ax.broken_barh([(r.start_s * 1e3, width)], (r.stage - 0.4, 0.8),
                       facecolors=colors[r.kind], edgecolor="white", linewidth=0.3)
        if len(ops) <= 200:
            ax.text(r.start_s * 1e3 + width / 2, r.stage, str(r.micro_batch), ha="center",
                    va="center", fontsize=6, color="white" if r.kind == "B" else "black")
    stages = sorted(ops["stage"].unique()) if len(ops) else []
    ax.set_yticks(stages)
    ax.set_yticklabels([f"stage {s}" for s in stages])
    ax.invert_yaxis()
    ax.set_xlabel("time (ms)")
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=colors["F"], label="forward"),
                       Patch(color=colors["B"], label="backward")], loc="lower right",
              fontsize=7)


def plot_memory(ax, stages) -> None:
    """Stacked bars of memory per stage GPU (GiB) with each GPU's capacity marked."""
    parts = ["weights", "grads", "optimizer", "activations", "recompute", "workspace"]
    bottom = [0.0] * len(stages)
    x = list(stages["stage"])
    for part in parts:
        vals = list(stages[f"{part}_bytes"] / units.GiB)
        ax.bar(x, vals, bottom=bottom, label=part)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.scatter(x, stages["capacity_bytes"] / units.GiB, marker="_", s=400, color="red",
               label="capacity", zorder=3)
    ax.set_xlabel("stage")
    ax.set_ylabel("GiB per GPU")
    ax.legend(fontsize=7)


def _markdown(pred, stages, headlines=()) -> str:
    o, s = pred.options, pred.summary()
    lines = [
        f"# Model parallelism: {o.model} on {o.cluster}",
        "", *(f"**{h}**" for h in headlines), *([""] if headlines else []),
        f"TP {o.tp} x PP {o.stages} x DP {o.dp} = {o.num_gpus} GPUs; schedule {o.schedule}, "
        f"{o.micro_batches} micro-batches of {o.micro_batch}; {o.dtype}"
        f"{' (GEMMs ' + o.gemm_dtype + ')' if o.gemm_dtype else ''}, optimizer {o.optimizer}, "
        f"recompute {o.recompute}, placement {o.placement}.",
        "",
        f"* iteration: {units.fmt_seconds(s['iteration_s'])}; {s['samples_per_s']:,.1f} "
        f"samples/s; {s['tokens_per_s']:,.0f} tokens/s",
        f"* model TFLOP/s per GPU: {s['model_tflops_per_gpu']:.1f} (with recomputation: "
        f"{s['hardware_tflops_per_gpu']:.1f})",
        f"* pipeline bubble: {100 * s['bubble_fraction']:.1f}%",
        f"* memory: {'fits' if pred.fits else 'DOES NOT FIT'}; largest "
        f"{units.fmt_bytes(s['max_memory_bytes'])}",
    ]
    for m in pred.memory:
        if not m.fits:
            parts = ", ".join(f"{k} {units.fmt_bytes(v)}" for k, v in m.breakdown().items())
            lines.append(f"  * stage {m.stage} ({m.device}) is {units.fmt_bytes(m.over_bytes)} "
                         f"over {units.fmt_bytes(m.capacity_bytes)}: {parts}")
    for text in pred.suggestions:
        lines.append(f"  * would fit: {text}")
    if pred.placement_note:
        lines.append(f"* placement: {pred.placement_note}")
    lines += ["", "| stage | device | layers | first | last | in flight | memory | fits |",
              "|---:|---|---:|---|---|---:|---:|---|"]
    for r in stages.itertuples(index=False):
        lines.append(f"| {r.stage} | {r.device} | {r.layers} | {r.first_layer} | "
                     f"{r.last_layer} | {r.in_flight} | {units.fmt_bytes(r.total_bytes)} | "
                     f"{'yes' if r.fits else 'no'} |")
    lines += ["", "Files: `summary.csv`, `stages.csv`, `ops.csv`, `sends.csv`, `trace.json`, "
              "`timeline.png`, `memory.png`.", ""]
    return "\n".join(lines)


def write_pipeline_report(pred, out_dir: str | Path, headlines=()) -> Path:
    """Write the report of one prediction atomically; returns its folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = stages_frame(pred)
    ops = ops_frame(pred)
    with atomic_dir(out_dir) as tmp:
        summary_frame([pred]).to_csv(tmp / "summary.csv", index=False, float_format="%.6g")
        stages.to_csv(tmp / "stages.csv", index=False, float_format="%.6g")
        ops.to_csv(tmp / "ops.csv", index=False, float_format="%.9g")
        sends_frame(pred).to_csv(tmp / "sends.csv", index=False, float_format="%.9g")
        spans = [(f"stage{r.stage} compute", f"{r.kind}{r.micro_batch}", r.start_s,
                  r.end_s - r.start_s) for r in ops.itertuples(index=False)]
        write_chrome_trace(spans, tmp / "trace.json")
        if len(ops):
            fig, ax = plt.subplots(figsize=(11, 0.5 + 0.4 * pred.options.stages))
            plot_timeline(ax, ops[ops["iteration"] == ops["iteration"].max()])
            fig.tight_layout()
            fig.savefig(tmp / "timeline.png", dpi=110)
            plt.close(fig)
        fig, ax = plt.subplots(figsize=(7, 4))
        plot_memory(ax, stages)
        fig.tight_layout()
        fig.savefig(tmp / "memory.png", dpi=110)
        plt.close(fig)
        (tmp / "report.md").write_text(_markdown(pred, stages, headlines))
    return Path(out_dir)
