"""The report of a scenario run: one folder with ``report.html`` (self-contained),
``report.md``, ``summary.csv``, comparison plots, convergence tables and plots when the
scenario replays training, and one sub-folder per strategy with its own report."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from ddlsim.reports.files import atomic_dir
from ddlsim.reports.headline import duration, headline, human_table
from ddlsim.reports.tables import markdown_table

SUMMARY_COLUMNS = ["strategy", "kind", "device", "dtype", "gpus", "samples_per_s",
                   "tokens_per_s",
                   "iteration_s", "scaling_efficiency", "mfu", "memory_bytes", "fits",
                   "staleness_mean", "bubble_fraction", "goodput_fraction", "time_to_train_s",
                   "cost_usd", "convergence_outcome", "final_test_acc", "tta_outcomes",
                   "tta_median_s"]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "strategy"


def plot_throughput(ax, summary) -> None:
    """Throughput per strategy (samples/s)."""
    colours = [f"C{i % 10}" for i in range(len(summary))]  # one distinct colour per strategy
    ax.bar(summary["strategy"], summary["samples_per_s"], color=colours)
    ax.set_ylabel("throughput (samples/s)")
    ax.set_title("Throughput by strategy")
    ax.tick_params(axis="x", rotation=20)


def plot_time_to_accuracy(ax, summary, target: float) -> None:
    """Simulated time to the target accuracy per strategy, one marker per seed (colour by
    strategy): seeds that reached it at their time, seeds that did not (``not reached``,
    ``collapsed to chance``, ``diverged``) as labelled markers on a line at the top, and
    the median of the seeds that reached it as a bar;
    :func:`ddlsim.reports.convergence.plot_time_to_accuracy` draws it."""
    from ddlsim.reports.convergence import plot_time_to_accuracy as per_seed

    per_seed(ax, summary, target)


def _write_strategy(result, folder: Path) -> None:
    """Each kind's own report inside ``folder`` (created by the writer)."""
    from ddlsim.reports.headline import sentence

    heads = [sentence(result.predicted)]
    if result.kind == "allreduce":
        from ddlsim.reports.dp import write_dp_files

        folder.mkdir()
        write_dp_files([result.prediction], folder, heads)
    elif result.kind == "ps":
        from ddlsim.reports.async_ps import write_ps_report

        write_ps_report([result.prediction], folder, headlines=heads)
    else:
        from ddlsim.reports.pipeline import write_pipeline_report

        write_pipeline_report(result.prediction, folder, heads)


def write_run_report(run, out_dir: str | Path) -> Path:
    """Write the scenario report atomically; returns the folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sc = run.scenario
    summary = run.summary()
    replayed = [r for r in run.results if r.convergence is not None]
    with atomic_dir(out_dir) as tmp:
        summary.to_csv(tmp / "summary.csv", index=False, float_format="%.6g")
        (tmp / "scenario.yaml").write_text(_scenario_yaml(sc))
        if getattr(run, "profile_csv", None):
            import shutil

            shutil.copyfile(run.profile_csv, tmp / "kernel_profile.csv")
            sidecar = Path(run.profile_csv).with_name(Path(run.profile_csv).stem
                                                      + ".device.json")
            if sidecar.exists():
                shutil.copyfile(sidecar, tmp / "kernel_profile.device.json")
        subdirs = []
        for r in run.results:
            sub = tmp / _slug(r.name)
            _write_strategy(r, sub)
            subdirs.append(sub.name)
        plots = ["throughput.png"]
        fig, ax = plt.subplots(figsize=(7, 4))
        plot_throughput(ax, summary)
        fig.tight_layout()
        fig.savefig(tmp / "throughput.png", dpi=110)
        plt.close(fig)
        if replayed:
            plots += _write_convergence(run, replayed, summary, tmp)
        cols = [c for c in SUMMARY_COLUMNS if c in summary.columns]
        human = human_table(summary[cols])
        md = [f"# {sc.name}", "", *(f"- **{headline(r)}**" for r in summary.to_dict("records")),
              "", " ".join(sc.description.split()), "",
              f"Scenario: `{run.label}`, seed {sc.seed}, {sc.iterations} iterations, "
              f"{sc.cluster.gpus} GPUs on {sc.cluster.preset}, model {sc.workload.model}; "
              f"{_calibration(run)}.", "", *markdown_table(human), ""]
        bench = benchmark_frame(run)
        if bench is not None:
            md += [f"## Time to train: {sc.benchmark if sc.benchmark != 'auto' else 'the workload'}"
                   f"'s MLPerf target, and the replay check", "", BENCHMARK_NOTE, "",
                   *markdown_table(bench), ""]
        if replayed:
            proxy = sc.convergence.proxy
            model = "the model" if proxy is None else f"{proxy} (the proxy for {sc.workload.model})"
            md += [f"Convergence: real training of {model} on scikit-learn's 8x8 digits with "
                   "ddlsim's own kernels, replaying each strategy's simulated update log "
                   "(stale gradients included); time is simulated wall-clock time.", ""]
        md += [f"![{p}]({p})" for p in plots]
        md += ["", "Per strategy: " + ", ".join(f"[{d}]({d}/report.md)" for d in subdirs), ""]
        (tmp / "report.md").write_text("\n".join(md))
        (tmp / "report.html").write_text(_html(run, summary, human, tmp, plots, subdirs,
                                               bench))
    return Path(out_dir)


BENCHMARK_NOTE = (
    "Benchmark scale: steps to the benchmark's quality target from MLCommons' reference "
    "convergence points at the strategy's global batch, times the simulated iteration, plus "
    "the benchmark's evaluation passes. Replay: the same strategy's simulated update log "
    "replayed in real training here (the digits proxy when the workload is too big to "
    "train), the check of what the schedule (stale or synchronous updates) does to the "
    "updates needed.")


def benchmark_frame(run):
    """Per strategy, the benchmark-scale time to train next to the replay's time to
    accuracy (display strings), or None when the scenario asks for neither."""
    import pandas as pd

    rows = []
    for r in run.results:
        ttt, conv = r.time_to_train, r.convergence
        if ttt is None:
            continue
        row = {"strategy": r.name}
        if isinstance(ttt, str):
            row.update({"MLPerf steps": "-", "train": "-", "evaluation": "-",
                        "time to train": "-", "note": ttt})
        else:
            row.update({"MLPerf steps": f"{ttt.steps:,}", "train": duration(ttt.train_s),
                        "evaluation": duration(ttt.eval_s),
                        "time to train": duration(ttt.total_s),
                        "note": "" if ttt.in_range else "batch outside the RCP range"})
        if conv is not None:
            c = conv.summary()
            t = c.get("tta_median_s", c.get("time_to_target_s"))
            row.update({"replay": f"{c.get('outcome', '-')}, {c.get('updates', 0):,} updates",
                        "replay time to accuracy": "-" if t is None or t != t
                        else duration(t)})
        rows.append(row)
    return pd.DataFrame(rows) if rows else None


def _write_convergence(run, replayed, summary, tmp: Path) -> list[str]:
    import matplotlib.pyplot as plt

    from ddlsim.reports.convergence import (
        history_frame,
        plot_lr_sweep,
        save_convergence_figure,
        sweep_frame,
    )

    conv = run.scenario.convergence
    history = history_frame({r.name: r.convergence.result for r in replayed})
    history.to_csv(tmp / "convergence.csv", index=False, float_format="%.6g")
    save_convergence_figure(history, conv.target_accuracy, tmp / "convergence.png")
    plots = ["convergence.png"]
    if "tta_median_s" in summary.columns:
        fig, ax = plt.subplots(figsize=(7, 4))
        plot_time_to_accuracy(ax, summary[summary["strategy"].isin([r.name for r in replayed])],
                              conv.target_accuracy)
        fig.tight_layout()
        fig.savefig(tmp / "time_to_accuracy.png", dpi=110)
        plt.close(fig)
        plots.append("time_to_accuracy.png")
    swept = [r for r in replayed if r.lr_sweep]
    if swept:
        df = sweep_frame(swept[0].lr_sweep)
        df.to_csv(tmp / "lr_sweep.csv", index=False, float_format="%.6g")
        fig, ax = plt.subplots(figsize=(6, 4))
        plot_lr_sweep(ax, df)
        ax.set_title(f"Learning-rate sweep ({swept[0].name})")
        fig.tight_layout()
        fig.savefig(tmp / "lr_sweep.png", dpi=110)
        plt.close(fig)
        plots.append("lr_sweep.png")
    return plots


def _scenario_yaml(sc) -> str:
    import yaml

    return yaml.safe_dump(sc.model_dump(mode="json"), sort_keys=False)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _calibration(run) -> str:
    return (run.results[0].predicted.calibration.describe() if run.results
            else "calibration: none")


def _html(run, summary, human, folder: Path, plots: list[str], subdirs: list[str],
          bench=None) -> str:
    sc = run.scenario
    heads = "".join(f"<li><b>{html.escape(headline(r))}</b></li>"
                    for r in summary.to_dict("records"))
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(sc.name)} - ddlsim</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:3px 6px;text-align:right}.wide{overflow-x:auto}img{max-width:100%}"
        "</style></head><body>",
        f"<h1>{html.escape(sc.name)}</h1><ul>{heads}</ul><p>{html.escape(sc.description)}</p>",
        f"<p>Scenario <code>{html.escape(run.label)}</code>; {sc.cluster.gpus} GPUs on "
        f"{html.escape(sc.cluster.preset)}; model {html.escape(sc.workload.model)}; "
        f"{html.escape(_calibration(run))}.</p>",
        f"<div class='wide'>{human.to_html(index=False, border=0)}</div>",
    ]
    if bench is not None:
        parts += ["<h2>Time to train at benchmark scale, and the replay check</h2>",
                  f"<p>{html.escape(BENCHMARK_NOTE)}</p>",
                  f"<div class='wide'>{bench.to_html(index=False, border=0)}</div>"]
    parts += [
        *(_img(folder / p) for p in plots),
    ]
    for r, sub in zip(run.results, subdirs, strict=True):
        parts.append(f"<h2>{html.escape(r.name)} ({r.kind})</h2>")
        parts += [_img(png) for png in sorted((folder / sub).glob("*.png"))]
        if (folder / sub / "trace.json").exists():
            parts.append(f"<p>Trace: <code>{html.escape(sub)}/trace.json</code> (open in "
                         "ui.perfetto.dev)</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
