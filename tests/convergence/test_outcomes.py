"""Outcomes and regimes named honestly: collapse to chance is not 'completed', an
oscillating loss is not a divergence, every seed's outcome is reported, and the default
learning-rate sweep shows its four regimes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ddlsim.api.convergence import ReplayOptions, lr_sweep_prediction, replay_prediction
from ddlsim.convergence.outcomes import (
    CHANCE_ACCURACY_MARGIN,
    OSCILLATION_MIN_SWING,
    OUTCOMES,
    is_collapsed,
    oscillation,
    outcome_of,
    regime_of,
)
from ddlsim.convergence.replay import (
    ReplayConfig,
    TimeToAccuracy,
    constant_staleness_log,
    replay,
    sync_log,
    time_to_accuracy,
)
from ddlsim.convergence.train import LRSchedule


def test_outcome_rule_numbers():
    assert OUTCOMES == ("diverged", "collapsed to chance", "reached", "not reached")
    chance = 0.1
    assert is_collapsed(chance + CHANCE_ACCURACY_MARGIN, 10)
    assert not is_collapsed(chance + CHANCE_ACCURACY_MARGIN + 0.01, 10)
    assert not is_collapsed(math.nan, 10)
    assert not is_collapsed(0.6, 2) and is_collapsed(0.54, 2)  # chance is 1/classes
    assert outcome_of(False, 0.09, 10, reached=False) == "collapsed to chance"
    assert outcome_of(False, 0.60, 10, reached=False) == "not reached"
    assert outcome_of(False, 0.98, 10, reached=True) == "reached"
    # named for where it ended: reached the target, then fell back to chance
    assert outcome_of(False, 0.10, 10, reached=True) == "collapsed to chance"
    assert outcome_of(True, 0.10, 10, reached=True) == "diverged"


def test_a_run_that_collapses_to_chance_is_labelled_so(digits):
    # LeNet, momentum 0.9 and a rate 10x the good one: the ReLUs die within a few
    # updates and the network predicts one class; the loss settles at ln 10.
    res = replay(sync_log(100, workers=1), ReplayConfig(schedule=LRSchedule(0.3),
                                                         eval_every=10), digits)
    assert res.outcome == "collapsed to chance"
    assert res.final_accuracy <= 0.15 and res.diverged_at_update is None
    assert res.test_loss[-1] == pytest.approx(math.log(10), abs=0.1)
    s = res.summary()
    assert s["outcome"] == "collapsed to chance" and s["chance_accuracy"] == 0.1
    assert s["regime"] == "collapsed to chance"
    # stale gradients: the MLP ends confidently wrong (loss far above ln 10), still chance
    stale = replay(constant_staleness_log(100, 4), ReplayConfig(
        model="mlp", schedule=LRSchedule(0.3), eval_every=10), digits)
    assert stale.outcome == "collapsed to chance" and stale.test_loss[-1] > 3


def test_oscillation_measure_on_constructed_curves():
    k = np.arange(40)
    smooth = 2.3 * np.exp(-k / 8) + 0.05 + 0.003 * np.sin(2.1 * k)  # converging, tiny wiggle
    zigzag = 0.8 + 0.3 * (-1.0) ** k * np.linspace(1, 0.5, 40)      # swings, never settles
    flat = math.log(10) + 0.002 * (-1.0) ** k                        # at chance, flat
    assert not oscillation(smooth).oscillating
    osc = oscillation(zigzag)
    assert osc.oscillating and osc.sign_changes == 1.0 and osc.swing > OSCILLATION_MIN_SWING
    assert not oscillation(flat).oscillating  # flips sign, but swings by 0.004 nats
    assert not oscillation(np.append(zigzag, np.inf)).oscillating
    assert not oscillation(zigzag[:8]).oscillating  # too few evaluations to judge
    assert regime_of("not reached", zigzag) == "oscillating"
    assert regime_of("diverged", zigzag) == "diverging"
    assert regime_of("reached", smooth) == "good" and regime_of("not reached", smooth) == "slow"


def test_default_lr_sweep_shows_slow_good_oscillating_diverging(digits):
    # the digits-learning-rate scenario and the lr-sweep defaults: allreduce over 4 x 16,
    # momentum 0.9, rates per 16 samples scaled with the global batch, 10 epochs
    opts = ReplayOptions(batch_per_worker=16, workers=4, epochs=10, momentum=0.9,
                         reference_batch=16, target_accuracy=0.95)
    slow, good, osc, huge = lr_sweep_prediction(sync_log(16, 4), opts,
                                                [0.0001, 0.01, 0.04, 10], digits)
    assert [r.regime for r in (slow, good, osc, huge)] == [
        "slow", "good", "oscillating", "diverging"]
    assert slow.outcome == "not reached" and 0.3 < slow.final_accuracy < 0.8
    assert good.outcome == "reached"
    # oscillating, not diverged: finite, trained the whole budget, swings up and down
    assert osc.outcome == "not reached" and osc.diverged_at_update is None
    assert osc.updates_applied == good.updates_applied and np.all(np.isfinite(osc.loss))
    assert osc.oscillation.swing > 3 * good.oscillation.swing
    assert osc.final_accuracy > 0.5  # it learned; it just does not settle
    assert huge.outcome == "diverged"


def test_per_seed_outcomes_in_the_summary(digits):
    pred = replay_prediction(sync_log(1, 1, iteration_s=0.5),
                             ReplayOptions(model="mlp", epochs=2, target_accuracy=0.9,
                                           seeds=(0, 1, 2), eval_every=5), digits)
    s = pred.summary()
    assert s["tta_outcomes"] == "reached,reached,reached" and s["tta_reached"] == 3
    assert [float(t) for t in s["tta_times_s"].split(",")] == pytest.approx(
        list(pred.tta.times_s), rel=1e-5)
    collapsed = replay_prediction(sync_log(1, 1), ReplayOptions(
        epochs=1, lr=0.3, seeds=(0, 1), eval_every=10), digits).summary()
    assert collapsed["outcome"] == "collapsed to chance"
    assert collapsed["tta_outcomes"] == "collapsed to chance,collapsed to chance"
    assert collapsed["tta_reached"] == 0 and math.isnan(collapsed["tta_median_s"])
    mixed = TimeToAccuracy(0.9, (0, 1, 2), (1.0, math.nan, math.nan), (10, -1, -1),
                           ("reached", "collapsed to chance", "diverged")).summary()
    assert mixed["outcomes"] == "reached,collapsed to chance,diverged"
    assert mixed["times_s"] == "1,nan,nan" and mixed["reached"] == 1 and mixed["median_s"] == 1


def test_time_to_accuracy_reuses_the_full_replay_of_its_seed(digits, monkeypatch):
    import importlib

    mod = importlib.import_module("ddlsim.convergence.replay")  # the module, not the function

    cfg = ReplayConfig(model="mlp", schedule=LRSchedule(0.05), eval_every=5,
                       target_accuracy=0.9)
    log = sync_log(120, 1)
    full = replay(log, cfg, digits)
    fresh = time_to_accuracy(log, cfg, 0.9, (0, 1), digits)
    seeds_replayed = []
    real = mod.replay
    monkeypatch.setattr(mod, "replay", lambda lg, c, d: seeds_replayed.append(c.seed)
                        or real(lg, c, d))
    reused = time_to_accuracy(log, cfg, 0.9, (0, 1), digits, known=full)
    assert seeds_replayed == [1]  # seed 0 read from the full replay
    assert reused.outcomes == fresh.outcomes == ("reached", "reached")
    assert reused.times_s == fresh.times_s and reused.updates == fresh.updates
