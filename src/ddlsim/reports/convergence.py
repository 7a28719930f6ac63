"""Convergence report pieces: tables of a replay and plots of loss and accuracy against
simulated wall-clock time, and of a learning-rate sweep.

Frames (pandas) come from :class:`ddlsim.convergence.replay.ReplayResult` objects; plots
take an axes and a frame (``plot_x(ax, df)``). A ``run`` column separates several
replays in one frame.
"""

from __future__ import annotations

import math
import statistics

from ddlsim.convergence.outcomes import (
    CHANCE_ACCURACY_MARGIN,
    OSCILLATION_MIN_SIGN_CHANGES,
    OSCILLATION_MIN_SWING,
)
from ddlsim.reports.tables import markdown_table


def _named(results) -> dict:
    if isinstance(results, dict):
        return results
    if isinstance(results, list | tuple):
        return {f"run{i}": r for i, r in enumerate(results)}
    return {"run": results}


def history_frame(results):
    """One row per test evaluation: ``run, update, time_s, epochs, train_loss`` (mean
    batch loss since the previous evaluation; nan at update 0), ``test_loss, test_acc``."""
    import numpy as np
    import pandas as pd

    rows = []
    for name, r in _named(results).items():
        prev = 0
        for u, t, e, tl, ta in zip(r.eval_update, r.eval_time_s, r.eval_epochs, r.test_loss,
                                   r.test_acc, strict=True):
            seg = r.loss[prev:u]
            rows.append({"run": name, "update": int(u), "time_s": float(t), "epochs": float(e),
                         "train_loss": float(np.mean(seg)) if seg.size else math.nan,
                         "test_loss": float(tl), "test_acc": float(ta)})
            prev = int(u)
    return pd.DataFrame(rows)


def updates_frame(results):
    """One row per applied update: ``run, update, time_s, loss, lr, staleness``."""
    import pandas as pd

    frames = [pd.DataFrame({"run": name, "update": range(r.updates_applied),
                            "time_s": r.update_time_s, "loss": r.loss, "lr": r.lr,
                            "staleness": r.staleness})
              for name, r in _named(results).items()]
    return pd.concat(frames, ignore_index=True)


def sweep_frame(results):
    """One row per replay of a learning-rate sweep (the replays' ``summary()``, with its
    ``outcome`` and ``regime``)."""
    import pandas as pd

    return pd.DataFrame([r.summary() for r in _named(results).values()])


#: marker of a seed that did not reach the target, by outcome
FAILED_MARKERS = {"not reached": "v", "collapsed to chance": "X", "diverged": "^"}
#: colour of each learning-rate regime in the sweep plots
REGIME_COLOURS = {"slow": "tab:blue", "good": "tab:green", "oscillating": "tab:orange",
                  "collapsed to chance": "tab:purple", "diverging": "tab:red"}


def _per_seed(row) -> list[tuple[float, str]]:
    """``(time_s, outcome)`` per seed of one summary row (``tta_times_s`` and
    ``tta_outcomes``; a row without them: its median as one seed)."""
    def text(key):
        v = row.get(key)
        return v if isinstance(v, str) and v else None

    times, outs = text("tta_times_s"), text("tta_outcomes")
    if times is not None and outs is not None:
        return list(zip((float(t) for t in times.split(",")), outs.split(","), strict=True))
    med = float(row.get("tta_median_s", math.nan))
    return [(med, "reached" if math.isfinite(med) else "not reached")]


def plot_time_to_accuracy(ax, summary, target: float) -> None:
    """Simulated time to the target accuracy, one marker per seed and strategy (colour by
    strategy, tab10 by index): a seed that reached the target at its time, one that did
    not (``not reached``, ``collapsed to chance``, ``diverged``) as its own marker on a
    line above the others, labelled; a short bar marks the median of the seeds that
    reached it. ``summary``: rows with ``strategy``, ``tta_times_s``, ``tta_outcomes``
    (:meth:`ConvergencePrediction.summary`, or a scenario run's summary)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    rows = summary.to_dict("records") if hasattr(summary, "to_dict") else list(summary)
    seeds = [_per_seed(r) for r in rows]
    ok = [t for per in seeds for t, o in per if o == "reached" and math.isfinite(t)]
    top = 1.15 * max(ok) if ok else 1.0
    colours = plt.get_cmap("tab10")
    failed_seen = set()
    for i, per in enumerate(seeds):
        c = colours(i % 10)
        n = len(per)
        xs = [i + (0.5 * j / (n - 1) - 0.25 if n > 1 else 0.0) for j in range(n)]
        reached = [(x, t) for x, (t, o) in zip(xs, per, strict=True)
                   if o == "reached" and math.isfinite(t)]
        if reached:
            ax.plot([x for x, _ in reached], [t for _, t in reached], "o", color=c, ms=7,
                    ls="none")
            ax.hlines(statistics.median(t for _, t in reached), i - 0.35, i + 0.35,
                      color=c, lw=2)
        failed: dict[str, int] = {}
        for x, (t, o) in zip(xs, per, strict=True):
            if o == "reached" and math.isfinite(t):
                continue
            ax.plot([x], [top], FAILED_MARKERS.get(o, "s"), color=c, ms=9, mec="black",
                    ls="none")
            failed[o] = failed.get(o, 0) + 1
        for k, (o, count) in enumerate(failed.items()):
            ax.annotate(f"{count}/{n} {o.removesuffix(' to chance')}", (i, top),
                        textcoords="offset points", xytext=(0, 9 + 10 * k), ha="center",
                        va="bottom", fontsize=7)
        failed_seen.update(failed)
    if failed_seen:
        ax.axhline(top, color="grey", ls=":", lw=1)
    ax.set_ylim(0, top * 1.35 if failed_seen else top * 1.1)
    ax.set_xticks(range(len(rows)), [str(r.get("strategy", i)) for i, r in enumerate(rows)])
    ax.tick_params(axis="x", rotation=20)
    handles = [Line2D([], [], marker="o", ls="none", color=colours(i % 10),
                      label=str(r.get("strategy", i))) for i, r in enumerate(rows)]
    handles.append(Line2D([], [], color="grey", lw=2, label="median of seeds that reached"))
    handles += [Line2D([], [], marker=m, ls="none", color="grey", mec="black", label=o)
                for o, m in FAILED_MARKERS.items() if o in failed_seen]
    ax.legend(handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_ylabel("simulated time to target (s)")
    ax.set_title(f"Time to {100 * target:g}% test accuracy, each seed (failures on top)")


def plot_loss_vs_time(ax, df) -> None:
    """Loss against simulated time per run: test loss (solid) and, where the frame has it,
    mean training loss (dashed). ``df``: :func:`history_frame`."""
    for name, g in df.groupby("run", sort=False):
        (line,) = ax.plot(g["time_s"], g["test_loss"], label=f"{name} test")
        if "train_loss" in g:
            ax.plot(g["time_s"], g["train_loss"], "--", color=line.get_color(),
                    label=f"{name} train")
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("cross-entropy loss")
    ax.set_yscale("log")
    ax.legend(fontsize="small")


def plot_accuracy_vs_time(ax, df, target: float | None = None) -> None:
    """Test accuracy (%) against simulated time per run, with the target as a line."""
    for name, g in df.groupby("run", sort=False):
        ax.plot(g["time_s"], 100 * g["test_acc"], label=str(name))
    if target is not None:
        ax.axhline(100 * target, color="grey", ls=":", label=f"target {100 * target:g}%")
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize="small")


def plot_lr_sweep(ax, df) -> None:
    """Final test accuracy against learning rate (log axis), each point coloured and
    labelled with its regime (``slow``, ``good``, ``oscillating``, ``collapsed to
    chance``, ``diverging``); diverged runs are crosses at 0%. ``df``: :func:`sweep_frame`
    (a frame without ``regime``: by outcome only)."""
    d = df.sort_values("base_lr")
    ok = d[d["outcome"] != "diverged"]
    ax.plot(ok["base_lr"], 100 * ok["final_test_acc"], "-", color="lightgrey", zorder=1)
    regimes = d["regime"] if "regime" in d else d["outcome"].map(
        lambda o: "diverging" if o == "diverged" else "trained")
    seen = set()
    for (_, row), regime in zip(d.iterrows(), regimes, strict=True):
        diverged = row["outcome"] == "diverged"
        y = 0.0 if diverged else 100 * row["final_test_acc"]
        colour = REGIME_COLOURS.get(regime, "tab:blue")
        ax.plot([row["base_lr"]], [y], "x" if diverged else "o", color=colour,
                ms=9 if diverged else 7, ls="none", zorder=2,
                label=None if regime in seen else regime)
        seen.add(regime)
        ax.annotate(regime, (row["base_lr"], y), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize=7, color=colour)
    ax.set_xscale("log")
    ax.set_ylim(-5, 110)
    ax.set_xlabel("base learning rate")
    ax.set_ylabel("final test accuracy (%)")
    ax.legend(fontsize="small", loc="lower left")


def plot_lr_sweep_curves(ax, results) -> None:
    """Test loss at each evaluation against updates for each run of a sweep, labelled
    ``lr=...: regime`` (colour by regime); a diverged run, stopped before its next
    evaluation, shows its per-update training loss (dashed, ending where it diverged)."""
    import numpy as np

    for r in _named(results).values():
        regime = r.regime
        label = f"lr={r.config.schedule.base_lr:g}: {regime}"
        if r.outcome == "diverged":
            ax.plot(np.arange(r.updates_applied), np.minimum(r.loss, 1e30), "--", marker="x",
                    color=REGIME_COLOURS.get(regime), label=f"{label} (training loss)")
        else:
            ax.plot(r.eval_update, r.test_loss, "-", color=REGIME_COLOURS.get(regime),
                    label=label)
    ax.set_yscale("log")
    ax.set_xlabel("updates applied")
    ax.set_ylabel("cross-entropy loss")
    ax.legend(fontsize="small")


def save_convergence_figure(history, target: float | None, path) -> None:
    """Accuracy and loss against simulated time, side by side, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    plot_accuracy_vs_time(ax1, history, target)
    ax1.set_title("Test accuracy vs simulated time")
    plot_loss_vs_time(ax2, history)
    ax2.set_title("Loss vs simulated time")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


#: columns of the convergence report's table (and of ``ddlsim converge``)
CONVERGENCE_COLUMNS = ("strategy", "outcome", "updates", "final_test_acc", "final_test_loss",
                       "time_to_target_s", "tta_seeds", "tta_reached", "tta_median_s",
                       "tta_outcomes")
#: columns of the learning-rate sweep's table (and of ``ddlsim lr-sweep``)
SWEEP_COLUMNS = ("base_lr", "regime", "outcome", "final_test_acc", "final_test_loss",
                 "loss_sign_changes", "loss_swing")

OUTCOME_NOTE = (
    "Outcomes: *reached* (test accuracy reached the target), *not reached* (trained the "
    "budget and learned, never reached the target), *collapsed to chance* (final test "
    f"accuracy at most {CHANCE_ACCURACY_MARGIN:g} above chance, 1/classes = 10 % on the "
    "digits; its loss sits near ln 10 = 2.30 nats, a uniform guess), *diverged* (loss "
    "non-finite or above 1000x the first update's). `tta_outcomes` gives each seed's "
    "outcome and `tta_times_s` its time, in seed order.")
REGIME_NOTE = (
    "Regimes: *slow* (learned, did not reach the target), *good* (reached it), "
    "*oscillating* (over the second half of the run's evaluations at least "
    f"{100 * OSCILLATION_MIN_SIGN_CHANGES:g} % of the test loss's successive differences "
    f"change sign and their median size is at least {OSCILLATION_MIN_SWING:g} nats: "
    "`loss_sign_changes`, `loss_swing`), *collapsed to chance*, *diverging*.")


def write_convergence_report(predictions: dict, out_dir, target: float | None = None,
                             title: str = "Convergence replay"):
    """Write summary.csv, history.csv, updates.csv, accuracy/loss plots and report.md for
    ``{strategy: ConvergencePrediction}`` atomically; returns the folder."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from ddlsim.reports.files import atomic_dir

    results = {name: p.result for name, p in predictions.items()}
    summary = pd.DataFrame([{"strategy": name, **p.summary()}
                            for name, p in predictions.items()])
    history = history_frame(results)
    with atomic_dir(out_dir) as tmp:
        summary.to_csv(tmp / "summary.csv", index=False, float_format="%.6g")
        history.to_csv(tmp / "history.csv", index=False, float_format="%.6g")
        updates_frame(results).to_csv(tmp / "updates.csv", index=False, float_format="%.6g")
        save_convergence_figure(history, target, tmp / "convergence.png")
        plots = ["convergence.png"]
        if "tta_outcomes" in summary.columns:
            fig, ax = plt.subplots(figsize=(7, 4))
            plot_time_to_accuracy(ax, summary, target if target is not None
                                  else float(summary["tta_target"].iloc[0]))
            fig.tight_layout()
            fig.savefig(tmp / "time_to_accuracy.png", dpi=110)
            plt.close(fig)
            plots.append("time_to_accuracy.png")
        cols = [c for c in CONVERGENCE_COLUMNS if c in summary.columns]
        lines = [f"# {title}", "",
                 "Real training (ddlsim's own kernels, scikit-learn's 8x8 digits) that applies "
                 "exactly the updates each simulated strategy would apply, stale gradients "
                 "included; time is the simulated wall-clock time of each update.", "",
                 OUTCOME_NOTE, "", *markdown_table(summary, cols), "",
                 *(f"![{png}]({png})" for png in plots), ""]
        (tmp / "report.md").write_text("\n".join(lines))
    return Path(out_dir)


def write_lr_sweep_report(results, out_dir):
    """Write sweep.csv, lr_sweep.png and report.md for a learning-rate sweep."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ddlsim.reports.files import atomic_dir

    df = sweep_frame(results)
    with atomic_dir(out_dir) as tmp:
        df.to_csv(tmp / "sweep.csv", index=False, float_format="%.6g")
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
        plot_lr_sweep(ax1, df)
        ax1.set_title("Final test accuracy by learning rate")
        plot_lr_sweep_curves(ax2, results)
        ax2.set_title("Loss curves, labelled with their regime")
        fig.tight_layout()
        fig.savefig(tmp / "lr_sweep.png", dpi=110)
        plt.close(fig)
        cols = [c for c in SWEEP_COLUMNS if c in df.columns]
        lines = ["# Learning-rate sweep", "",
                 "Too small a step converges slowly; too large oscillates or diverges "
                 "(divergence is an outcome of the run, not an error).", "", REGIME_NOTE, "",
                 *markdown_table(df, cols), "", "![sweep](lr_sweep.png)", ""]
        (tmp / "report.md").write_text("\n".join(lines))
    return Path(out_dir)
