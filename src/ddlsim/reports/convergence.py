"""Convergence report pieces: tables of a replay and plots of loss and accuracy against
simulated wall-clock time, and of a learning-rate sweep.

Frames (pandas) come from :class:`ddlsim.convergence.replay.ReplayResult` objects; plots
take an axes and a frame (``plot_x(ax, df)``). A ``run`` column separates several
replays in one frame.
"""

from __future__ import annotations

import math

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
    """One row per replay of a learning-rate sweep (the replays' ``summary()``)."""
    import pandas as pd

    return pd.DataFrame([r.summary() for r in _named(results).values()])


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
    """Final test accuracy against learning rate (log axis); diverged runs are red
    crosses at 0%. ``df``: :func:`sweep_frame`."""
    d = df.sort_values("base_lr")
    ok = d[d["outcome"] != "diverged"]
    bad = d[d["outcome"] == "diverged"]
    ax.plot(ok["base_lr"], 100 * ok["final_test_acc"], "o-", label="trained")
    if len(bad):
        ax.plot(bad["base_lr"], [0.0] * len(bad), "rx", ms=9, label="diverged")
    ax.set_xscale("log")
    ax.set_xlabel("base learning rate")
    ax.set_ylabel("final test accuracy (%)")
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


def write_convergence_report(predictions: dict, out_dir, target: float | None = None,
                             title: str = "Convergence replay"):
    """Write summary.csv, history.csv, updates.csv, accuracy/loss plots and report.md for
    ``{strategy: ConvergencePrediction}`` atomically; returns the folder."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
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
        cols = [c for c in ("strategy", "outcome", "updates", "final_test_acc", "time_to_target_s",
                            "tta_reached", "tta_seeds", "tta_median_s", "tta_median_updates")
                if c in summary.columns]
        lines = [f"# {title}", "",
                 "Real training (ddlsim's own kernels, scikit-learn's 8x8 digits) that applies "
                 "exactly the updates each simulated strategy would apply, stale gradients "
                 "included; time is the simulated wall-clock time of each update.", "",
                 *markdown_table(summary, cols), "", "![convergence](convergence.png)", ""]
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
        fig, ax = plt.subplots(figsize=(6, 4))
        plot_lr_sweep(ax, df)
        ax.set_title("Learning-rate sweep")
        fig.tight_layout()
        fig.savefig(tmp / "lr_sweep.png", dpi=110)
        plt.close(fig)
        cols = [c for c in ("base_lr", "outcome", "final_test_acc", "final_test_loss")
                if c in df.columns]
        lines = ["# Learning-rate sweep", "",
                 "Too small a step converges slowly; too large oscillates or diverges "
                 "(divergence is an outcome of the run, not an error).", "",
                 *markdown_table(df, cols), "", "![sweep](lr_sweep.png)", ""]
        (tmp / "report.md").write_text("\n".join(lines))
    return Path(out_dir)
