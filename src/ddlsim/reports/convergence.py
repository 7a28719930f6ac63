"""Convergence report pieces: tables of a replay and plots of loss and accuracy against
simulated wall-clock time, and of a learning-rate sweep.

Frames (pandas) come from :class:`ddlsim.convergence.replay.ReplayResult` objects; plots
take an axes and a frame (``plot_x(ax, df)``). A ``run`` column separates several
replays in one frame.
"""

from __future__ import annotations

import math


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
