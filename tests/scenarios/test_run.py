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


def _scenario(extra: str):
    from ddlsim.scenarios.loader import parse_scenario

    return parse_scenario("name: t\nworkload: {model: vgg16, batch_per_gpu: 32}\n"
                          "strategies: [{kind: allreduce, algo: ring}]\niterations: 3\n" + extra,
                          "t.yaml")


def test_cluster_bandwidth_keys_change_the_prediction():
    slow = run_scenario(_scenario("cluster: {preset: cloud-25gbe, gpus: 16, "
                                  "nic_bandwidth_Gbps: 10}"), "t").summary()
    fast = run_scenario(_scenario("cluster: {preset: cloud-25gbe, gpus: 16, "
                                  "nic_bandwidth_Gbps: 100}"), "t").summary()
    assert slow["iteration_s"][0] > fast["iteration_s"][0]


def test_settings_a_strategy_does_not_model_are_errors():
    from ddlsim.errors import ConfigError

    sc = _scenario("faults: {slow_links: {nic0.tx: 2}}\n").model_copy(update={})
    doc = sc.model_dump(mode="json")
    doc["strategies"] = [{"kind": "pipeline", "stages": 2}]
    doc["workload"]["model"] = "gpt-small"
    from ddlsim.scenarios.schema import Scenario

    with pytest.raises(ConfigError, match="faults.slow_links: not modelled for pipeline"):
        resolve(Scenario.model_validate(doc), "t.yaml")
