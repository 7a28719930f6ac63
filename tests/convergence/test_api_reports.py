"""api.convergence and reports.convergence: budgets, an end-to-end sync-DP replay, frames
and plots."""

from __future__ import annotations

import math

import matplotlib
import pytest

from ddlsim import api
from ddlsim.api.convergence import (
    ReplayOptions,
    budget_log,
    converge,
    lr_sweep_prediction,
    replay_prediction,
)
from ddlsim.convergence.replay import constant_staleness_log, sync_log
from ddlsim.errors import ConfigError
from ddlsim.reports.convergence import (
    history_frame,
    plot_accuracy_vs_time,
    plot_loss_vs_time,
    plot_lr_sweep,
    plot_lr_sweep_curves,
    plot_time_to_accuracy,
    sweep_frame,
    updates_frame,
    write_convergence_report,
)

matplotlib.use("Agg")


def test_budget_log_counts_samples_per_row():
    opts = ReplayOptions(batch_per_worker=10, epochs=2.0)
    assert len(budget_log(sync_log(3, workers=4), opts, 1000)) == math.ceil(2000 / 40)
    assert len(budget_log(constant_staleness_log(3, 1, workers=4), opts, 1000)) == 200


def test_converge_dp_replays_the_simulated_sync_log(digits):
    job = api.Job(workload=api.Workload("lenet-digits"), cluster=api.Cluster(gpus=4),
                  batch=api.Batch(micro=16), iterations=6)
    pred, conv = converge(job, ReplayOptions(model="lenet-digits", epochs=1.0), digits)
    log = pred.detail.result.update_log
    res = conv.result
    assert conv.simulated_rows == 6 and conv.replayed_rows == math.ceil(digits.n_train / 64)
    period = log[-1][1]
    # the replay's clock is the simulated one, tiled every `period` seconds
    assert res.update_time_s[6] == pytest.approx(period + log[0][1])
    assert set(res.staleness.tolist()) == {0}
    assert res.outcome in ("reached", "not reached")
    with pytest.raises(ConfigError, match="model"):
        converge(job, ReplayOptions(model="mlp"), digits)


def test_frames_and_plots(digits):
    import matplotlib.pyplot as plt

    runs = {f"s={s}": replay_prediction(constant_staleness_log(50, s),
                                        ReplayOptions(model="mlp", epochs=0.5, eval_every=5),
                                        digits).result for s in (0, 4)}
    h = history_frame(runs)
    assert list(h.columns) == ["run", "update", "time_s", "epochs", "train_loss",
                               "test_loss", "test_acc"]
    n = math.ceil(0.5 * digits.n_train / 32)
    evals = 1 + n // 5 + (1 if n % 5 else 0)  # the start, every 5 updates, the end
    assert h.groupby("run").size().tolist() == [evals] * 2
    u = updates_frame(runs)
    assert len(u) == 2 * n and u["staleness"].max() == 4
    sweep = lr_sweep_prediction(sync_log(5, 1), ReplayOptions(model="mlp", epochs=0.5),
                                [1e-3, 1e3], digits)
    sf = sweep_frame(sweep)
    assert sf["outcome"].tolist()[1] == "diverged"
    fig, axes = plt.subplots(1, 3)
    plot_loss_vs_time(axes[0], h)
    plot_accuracy_vs_time(axes[1], h, target=0.97)
    plot_lr_sweep(axes[2], sf)
    assert axes[1].get_xlabel() == "simulated time (s)"
    assert len(axes[0].get_lines()) == 4
    # one marker per rate, labelled with its regime (plus the grey line through them)
    assert sf["regime"].tolist()[1] == "diverging"
    assert {t.get_text() for t in axes[2].texts} == set(sf["regime"])
    assert len(axes[2].get_lines()) == 1 + len(sf)
    plt.close(fig)


def test_time_to_accuracy_spread_over_seeds(digits):
    pred = replay_prediction(sync_log(1, 1, iteration_s=0.5),
                             ReplayOptions(model="mlp", epochs=3, target_accuracy=0.9,
                                           seeds=(0, 1, 2), eval_every=5), digits)
    tta = pred.tta
    assert tta.reached == 3
    assert tta.min_s <= tta.median_s <= tta.max_s
    assert all(t == pytest.approx(0.5 * u) for t, u in zip(tta.times_s, tta.updates,
                                                              strict=True))
    assert pred.summary()["tta_reached"] == 3


def test_time_to_accuracy_plot_marks_every_seed_and_names_failures():
    import matplotlib.pyplot as plt
    import pandas as pd

    from ddlsim.reports import run as run_report

    summary = pd.DataFrame([
        {"strategy": "allreduce", "tta_times_s": "2,1.5,1.8",
         "tta_outcomes": "reached,reached,reached"},
        {"strategy": "asp", "tta_times_s": "3,nan,nan",
         "tta_outcomes": "reached,collapsed to chance,diverged"}])
    for plot in (plot_time_to_accuracy, run_report.plot_time_to_accuracy):
        fig, ax = plt.subplots()
        plot(ax, summary, 0.95)
        points = [(x, y) for line in ax.get_lines() if line.get_linestyle() == "None"
                  for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)]
        assert len(points) == 6  # one marker per seed, failing seeds included
        top = max(y for _, y in points)
        assert sorted(y for _, y in points if y < top) == [1.5, 1.8, 2, 3]
        assert sum(1 for _, y in points if y == top) == 2 and top > 3
        texts = {t.get_text() for t in ax.texts}
        assert texts == {"1/3 collapsed", "1/3 diverged"}
        colours = {line.get_color() for line in ax.get_lines()
                   if line.get_linestyle() == "None"}
        assert len(colours) == 2  # a colour per strategy
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels[:2] == ["allreduce", "asp"]
        assert "collapsed to chance" in labels and "diverged" in labels
        plt.close(fig)


def test_convergence_report_has_a_per_seed_time_to_accuracy_chart(digits, tmp_path):
    import matplotlib.pyplot as plt

    opts = ReplayOptions(model="mlp", epochs=1, target_accuracy=0.8, seeds=(0, 1),
                         eval_every=5)
    preds = {"sync": replay_prediction(sync_log(1, 1), opts, digits),
             "stale": replay_prediction(constant_staleness_log(4, 3), opts, digits)}
    out = write_convergence_report(preds, tmp_path / "c", 0.8)
    assert (out / "time_to_accuracy.png").stat().st_size > 0
    md = (out / "report.md").read_text()
    assert "tta_outcomes" in md and "collapsed to chance" in md  # the legend of outcomes
    fig, ax = plt.subplots()
    plot_lr_sweep_curves(ax, [p.result for p in preds.values()])
    assert all(":" in t.get_text() for t in ax.get_legend().get_texts())
    plt.close(fig)
