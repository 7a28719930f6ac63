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
    sweep_frame,
    updates_frame,
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
    assert len(axes[0].get_lines()) == 4 and len(axes[2].get_lines()) == 2
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
