"""Built-in scenarios end to end: they resolve, and the demo scenario shows the trade-off
it is there to show."""

import math

import pytest

from ddlsim.api.run import RunOptions, resolve, run_scenario
from ddlsim.reports.run import write_run_report
from ddlsim.scenarios import builtin_names, load_scenario


@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_resolves_before_simulating(name):
    sc, label = load_scenario(name)
    plan = resolve(sc, label, RunOptions())
    assert [p[0] for p in plan] == [s.label for s in sc.strategies]


def test_demo_scenario_straggler_and_time_to_accuracy(tmp_path):
    sc, label = load_scenario("digits-sync-vs-async")
    run = run_scenario(sc, label)
    s = run.summary().set_index("strategy")
    # A 2x straggler: allreduce waits for it, ASP does not, SSP sits in between.
    assert s.loc["ps-asp", "samples_per_s"] > s.loc["ps-ssp", "samples_per_s"] \
        > s.loc["allreduce", "samples_per_s"]
    assert s.loc["ps-ssp", "staleness_mean"] < s.loc["ps-asp", "staleness_mean"]
    # Real training on every strategy's log learns the digits.
    assert (s["final_test_acc"] > 0.9).all()
    assert s.loc["allreduce", "tta_reached"] >= 1 and not math.isnan(
        s.loc["allreduce", "tta_median_s"])
    out = write_run_report(run, tmp_path / "r")
    for name in ("report.html", "convergence.png", "time_to_accuracy.png", "convergence.csv",
                 "ps-asp/staleness.png", "allreduce/trace.json"):
        assert (out / name).exists(), name


def test_learning_rate_scenario_shows_the_classic_trade_off(tmp_path):
    sc, label = load_scenario("digits-learning-rate")
    run = run_scenario(sc, label)
    sweep = {r.summary()["base_lr"]: r.summary() for r in run.results[0].lr_sweep}
    lrs = sorted(sweep)
    best = max(lrs, key=lambda lr: sweep[lr]["final_test_acc"])
    assert lrs[0] < best < lrs[-1]  # too small and too large both do worse
    assert sweep[lrs[-1]]["outcome"] == "diverged"
    assert sweep[lrs[0]]["final_test_acc"] < 0.8  # too small: slow
    out = write_run_report(run, tmp_path / "r")
    assert (out / "lr_sweep.png").exists() and (out / "lr_sweep.csv").exists()


def test_model_parallel_scenario_fits_and_1f1b_needs_less_memory():
    sc, label = load_scenario("gpt-model-parallel-split")
    s = run_scenario(sc, label).summary().set_index("strategy")
    assert bool(s.loc["gpipe", "fits"]) and bool(s.loc["1f1b", "fits"])
    assert s.loc["1f1b", "max_memory_bytes"] < s.loc["gpipe", "max_memory_bytes"]
