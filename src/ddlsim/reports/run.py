"""The report of a scenario run: one folder with ``report.html`` (self-contained),
``report.md``, ``summary.csv``, a comparison plot, and one sub-folder per strategy with
its own tables, plots and Perfetto trace."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from ddlsim.reports.dp import write_dp_files
from ddlsim.reports.files import atomic_dir

SUMMARY_FORMATS = {"iteration_s": "{:.4g}", "samples_per_s": "{:,.0f}",
                   "scaling_efficiency": "{:.1%}", "exposed_comm_s": "{:.3g}",
                   "gpu_busy_frac": "{:.1%}"}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "strategy"


def plot_comparison(ax, summary) -> None:
    """Throughput per strategy, annotated with scaling efficiency."""
    bars = ax.bar(summary["strategy"], summary["samples_per_s"], color="tab:blue")
    for bar, eff in zip(bars, summary["scaling_efficiency"], strict=True):
        ax.annotate(f"{100 * eff:.0f}% eff.", (bar.get_x() + bar.get_width() / 2,
                                               bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("throughput (samples/s)")
    ax.set_title("Throughput by strategy")
    ax.tick_params(axis="x", rotation=20)


def _table_md(summary) -> str:
    cols = ["strategy", "gpus", "algo", "iteration_s", "samples_per_s", "scaling_efficiency",
            "exposed_comm_s", "gpu_busy_frac"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in summary[cols].itertuples(index=False):
        cells = [SUMMARY_FORMATS.get(c, "{}").format(v) for c, v in zip(cols, r, strict=True)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_run_report(run, out_dir: str | Path) -> Path:
    """Write the scenario report atomically; returns the folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sc = run.scenario
    summary = run.summary()
    with atomic_dir(out_dir) as tmp:
        summary.to_csv(tmp / "summary.csv", index=False, float_format="%.6g")
        (tmp / "scenario.yaml").write_text(_scenario_yaml(sc))
        subdirs = []
        for name, pred in zip(run.strategies, run.predictions, strict=True):
            sub = tmp / _slug(name)
            sub.mkdir()
            write_dp_files([pred], sub)
            subdirs.append(sub.name)
        fig, ax = plt.subplots(figsize=(7, 4))
        plot_comparison(ax, summary)
        fig.tight_layout()
        fig.savefig(tmp / "comparison.png", dpi=110)
        plt.close(fig)
        md = [f"# {sc.name}", "", sc.description.strip(), "",
              f"Scenario: `{run.label}`, seed {run.predictions[0].options.seed}, "
              f"{sc.iterations} iterations, {sc.cluster.gpus} GPUs on {sc.cluster.preset}.",
              "", _table_md(summary), "", "![comparison](comparison.png)", "",
              "Per strategy: " + ", ".join(f"[{d}]({d}/report.md)" for d in subdirs), ""]
        (tmp / "report.md").write_text("\n".join(md))
        (tmp / "report.html").write_text(_html(run, summary, tmp, subdirs))
    return Path(out_dir)


def _scenario_yaml(sc) -> str:
    import yaml

    return yaml.safe_dump(sc.model_dump(mode="json"), sort_keys=False)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _html(run, summary, folder: Path, subdirs: list[str]) -> str:
    sc = run.scenario
    view = summary.copy()
    for col, fmt in SUMMARY_FORMATS.items():
        view[col] = [fmt.format(v) for v in view[col]]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(sc.name)} - ddlsim</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:right}img{max-width:100%}</style></head><body>",
        f"<h1>{html.escape(sc.name)}</h1><p>{html.escape(sc.description)}</p>",
        f"<p>Scenario <code>{html.escape(run.label)}</code>; {sc.cluster.gpus} GPUs on "
        f"{html.escape(sc.cluster.preset)}; {sc.iterations} iterations.</p>",
        view.to_html(index=False, border=0), _img(folder / "comparison.png"),
    ]
    for name, sub in zip(run.strategies, subdirs, strict=True):
        parts += [f"<h2>{html.escape(name)}</h2>", _img(folder / sub / "scaling.png"),
                  f"<p>Trace: <code>{html.escape(sub)}/trace.json</code> (open in "
                  "ui.perfetto.dev)</p>"]
    parts.append("</body></html>")
    return "\n".join(parts)
