"""The report of a sweep: ``sweep.csv`` (every point), ``report.md`` and ``report.html``
(the table and the plots), ``throughput.png`` (throughput vs the first numeric axis, one
line per combination of the other axes) and, when ``cluster.gpus`` is an axis,
``scaling_efficiency.png`` (efficiency vs GPUs against the ideal 100 %).

Takes a sweep result duck-typed (``table``, ``axes``, ``scenario``, ``label``) so this
module does not import :mod:`ddlsim.api`.
"""

from __future__ import annotations

import base64
import html
import numbers
from pathlib import Path

from ddlsim.reports.files import atomic_dir

GPUS_AXIS = "cluster.gpus"
THROUGHPUT = "samples_per_s"
EFFICIENCY = "scaling_efficiency"
TABLE_COLUMNS = ("strategy", "iteration_s", "samples_per_s", "scaling_efficiency",
                 "exposed_comm_s", "gpu_busy_frac")
FORMATS = {"iteration_s": "{:.4g}", "samples_per_s": "{:,.0f}", "scaling_efficiency": "{:.1%}",
           "exposed_comm_s": "{:.3g}", "gpu_busy_frac": "{:.1%}"}
# unit suffixes of scenario keys (see ddlsim.scenarios.schema) -> axis-label units
UNIT_SUFFIXES = {"MB": "MB", "GB": "GB", "GiB": "GiB", "Gbps": "Gb/s", "GBps": "GB/s",
                 "us": "µs", "ms": "ms", "s": "s", "per_s": "1/s"}
KNOWN_LABELS = {"cluster.gpus": "GPUs", "workload.batch_per_gpu": "batch per GPU (samples)",
                "iterations": "iterations", "seed": "seed", "noise.cv": "noise CV"}
CSV_FLOAT_FORMAT = "%.10g"


def sweep_csv_text(table) -> str:
    """CSV text of a sweep table: no index, floats as ``%.10g``, ``\\n`` line ends, so
    equal sweeps give byte-identical files."""
    return table.to_csv(index=False, float_format=CSV_FLOAT_FORMAT, lineterminator="\n")


def axis_label(path: str) -> str:
    """A readable axis label with its unit, from a scenario path
    (``strategies.0.bucket_MB`` -> ``strategies.0.bucket (MB)``)."""
    if path in KNOWN_LABELS:
        return KNOWN_LABELS[path]
    for suffix in sorted(UNIT_SUFFIXES, key=len, reverse=True):
        if path.endswith("_" + suffix):
            return f"{path[:-len(suffix) - 1]} ({UNIT_SUFFIXES[suffix]})"
    return path


def _is_numeric(values) -> bool:
    return all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)


def numeric_axis(result) -> str | None:
    """The first axis whose values are all numbers (the x of the throughput plot)."""
    for path, values in result.axes:
        if len(values) > 1 and _is_numeric(values):
            return path
    return None


def _series_keys(result, x: str) -> list[str]:
    """Columns that split the lines: the other axes, and the strategy when several
    strategies run per point."""
    keys = [p for p, vals in result.axes if p != x and len(vals) > 1]
    table = result.table
    if "strategy" not in keys and "strategy" in table and table["strategy"].nunique() > 1:
        keys.append("strategy")
    return keys


def _lines(result, x: str, y: str):
    """``(legend label, xs, ys)`` per combination of the other axes, in point order."""
    table = result.table
    keys = _series_keys(result, x)
    if not keys:
        yield "", table[x].tolist(), table[y].tolist()
        return
    for combo, group in table.groupby(keys, sort=False, dropna=False):
        combo = combo if isinstance(combo, tuple) else (combo,)
        name = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in zip(keys, combo, strict=True))
        yield name, group[x].tolist(), group[y].tolist()


def _spans(values, ratio: float = 16.0) -> bool:
    """True when the positive ``values`` span at least ``ratio`` (a log scale reads better)."""
    pos = [float(v) for v in values if v > 0]
    return bool(pos) and max(pos) / min(pos) >= ratio


def _log_x(ax, xs) -> bool:
    """Log2 x scale for wide numeric axes (GPU counts); returns whether it was set."""
    if _spans(xs):
        ax.set_xscale("log", base=2)
        return True
    return False


def plot_throughput(ax, result) -> bool:
    """Throughput (samples/s) vs the first numeric axis, one line per other-axis
    combination; bars per point when no axis is numeric. Returns False when the table
    has no throughput column."""
    table = result.table
    if THROUGHPUT not in table:
        return False
    x = numeric_axis(result)
    if x is None:
        first = result.axes[0][0]
        keys = [p for p, _ in result.axes]
        names = [", ".join(str(r[k]) for k in keys) for _, r in table.iterrows()]
        ax.bar(range(len(table)), table[THROUGHPUT], color="tab:blue")
        ax.set_xticks(range(len(table)), names, rotation=30, ha="right", fontsize=8)
        ax.set_xlabel(", ".join(axis_label(k) for k in keys) if len(keys) > 1
                      else axis_label(first))
    else:
        for name, xs, ys in _lines(result, x, THROUGHPUT):
            ax.plot(xs, ys, marker="o", label=name or None)
        if _log_x(ax, table[x]) and _spans(table[THROUGHPUT]):
            ax.set_yscale("log")
        ax.set_xlabel(axis_label(x))
        if len(ax.get_lines()) > 1:
            ax.legend(fontsize=8)
    ax.set_ylabel("throughput (samples/s)")
    ax.set_title(f"Throughput of {result.scenario.name}")
    ax.grid(True, alpha=0.3)
    return True


def plot_scaling_efficiency(ax, result) -> bool:
    """Scaling efficiency (%) vs GPUs per other-axis combination, with the ideal 100 %
    line. Returns False unless ``cluster.gpus`` is a numeric axis and the table has a
    scaling-efficiency column."""
    table = result.table
    axes = dict(result.axes)
    if GPUS_AXIS not in axes or EFFICIENCY not in table or not _is_numeric(axes[GPUS_AXIS]):
        return False
    for name, xs, ys in _lines(result, GPUS_AXIS, EFFICIENCY):
        ax.plot(xs, [100.0 * y for y in ys], marker="o", label=name or None)
    ax.axhline(100.0, color="black", linestyle="--", linewidth=1, label="ideal")
    _log_x(ax, table[GPUS_AXIS])
    ax.set_xlabel(axis_label(GPUS_AXIS))
    ax.set_ylabel("scaling efficiency (% of ideal)")
    ax.set_ylim(0, 105)
    ax.set_title(f"Scaling efficiency of {result.scenario.name}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return True


def _fmt(col: str, value) -> str:
    if isinstance(value, float) and col in FORMATS:
        return FORMATS[col].format(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table_columns(result) -> list[str]:
    """Columns shown in the Markdown/HTML table: point, axes, headline numbers."""
    axes = [p for p, _ in result.axes]
    return ["point", *axes, *(c for c in TABLE_COLUMNS
                              if c in result.table and c not in axes)]


def sweep_markdown(result, plots: list[str]) -> str:
    """The Markdown report: what was swept, the table and the plots."""
    sc = result.scenario
    cols = table_columns(result)
    axes = "; ".join(f"`{p}` = {', '.join(map(str, vals))}" for p, vals in result.axes)
    md = [f"# Sweep of {sc.name}", "", " ".join(str(sc.description).split()), "",
          f"Scenario: `{result.label}`; {len(result.points)} points over {axes}.", "",
          "Every row is one point (and strategy); `sweep.csv` holds every column in SI "
          "units with each point's cache hash.", "",
          "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in result.table[cols].itertuples(index=False):
        md.append("| " + " | ".join(_fmt(c, v) for c, v in zip(cols, row, strict=True))
                  + " |")
    md.append("")
    md += [f"![{p}]({p})" for p in plots]
    md.append("")
    return "\n".join(md)


def _html(result, folder: Path, plots: list[str]) -> str:
    sc = result.scenario
    cols = table_columns(result)
    view = result.table[cols].copy()
    for col in cols:
        view[col] = [_fmt(col, v) for v in view[col]]
    imgs = [f'<img alt="{html.escape(p)}" src="data:image/png;base64,'
            f'{base64.b64encode((folder / p).read_bytes()).decode("ascii")}">' for p in plots]
    return "\n".join([
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Sweep of {html.escape(sc.name)} - ddlsim</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:right}img{max-width:100%}</style></head><body>",
        f"<h1>Sweep of {html.escape(sc.name)}</h1>",
        f"<p>{html.escape(str(sc.description))}</p>",
        f"<p>Scenario <code>{html.escape(result.label)}</code>; {len(result.points)} "
        "points.</p>",
        view.to_html(index=False, border=0), *imgs, "</body></html>"])


def write_sweep_report(result, out_dir: str | Path) -> Path:
    """Write the sweep report atomically into ``out_dir`` (replaced as a whole);
    returns the folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with atomic_dir(out_dir) as tmp:
        (tmp / "sweep.csv").write_text(sweep_csv_text(result.table), encoding="utf-8")
        plots = []
        for name, plot in (("throughput.png", plot_throughput),
                           ("scaling_efficiency.png", plot_scaling_efficiency)):
            fig, ax = plt.subplots(figsize=(7, 4.5))
            if plot(ax, result):
                fig.tight_layout()
                fig.savefig(tmp / name, dpi=110)
                plots.append(name)
            plt.close(fig)
        (tmp / "report.md").write_text(sweep_markdown(result, plots), encoding="utf-8")
        (tmp / "report.html").write_text(_html(result, tmp, plots), encoding="utf-8")
    return Path(out_dir)
