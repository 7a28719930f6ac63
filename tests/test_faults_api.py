"""api.faults: goodput of real predictions under failures, the Young/Daly optimum found by
a sweep, scenario files with a failures section, and the sweep report."""

import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddlsim.api.faults import (
    FaultOptions,
    checkpoint_interval_sweep,
    predict_goodput,
    scenario_fault_options,
)
from ddlsim.api.plan import LLAMA3_MTBF_GPU_HOURS, goodput_factor
from ddlsim.errors import ConfigError

# 512 GPUs at 1,000 samples/s in all, job MTBF 2 h, 60 s checkpoints, 1,000 h of work.
JOB = {"strategy": "allreduce-ring", "samples_per_s": 1000.0, "gpus": 512, "nodes": 64,
       "model": "resnet50"}
SWEEP_OPTS = FaultOptions(gpu_mtbf_hours=512 * 2.0, checkpoint_GB=60.0, storage_GBps=1.0,
                          restart_s=120.0, train_samples=1000 * 3600 * 1000.0,
                          method="simulate")
YOUNG_S = math.sqrt(2 * 60.0 * 7200.0)


@pytest.fixture(scope="module")
def dp():
    from ddlsim.api.dp import DPOptions, predict_dp

    return predict_dp(DPOptions(model="resnet50", gpus=64, cluster="dgx-a100", iterations=3))


def test_goodput_of_a_dp_prediction_accounts_for_every_second(dp):
    opts = FaultOptions(gpu_mtbf_hours=2000.0, restart_s=300.0, trials=10, method="simulate")
    g = predict_goodput(dp, opts)
    assert g.kind == "sync" and g.gpus == 64 and g.samples_per_s == dp.samples_per_s
    # Defaults: 90 ImageNet epochs; checkpoint = 12 B x 25.6 M parameters at 2 GB/s.
    assert g.train_samples == 90 * 1_281_167
    assert g.checkpoint_write_s == pytest.approx(12 * 25.557e6 / 2e9, rel=0.01)
    assert g.job_mtbf_s == pytest.approx(2000.0 * 3600 / 64)
    assert g.wall_s == pytest.approx(g.work_s + g.checkpoint_s + g.lost_to_failures_s)
    assert g.work_s == pytest.approx(g.train_samples / dp.samples_per_s)
    assert g.goodput_samples_per_s < dp.samples_per_s
    assert g.time_to_train_s == g.wall_s
    assert g.checkpoint_interval_s == pytest.approx(
        math.sqrt(2 * g.checkpoint_write_s * g.job_mtbf_s))


def test_drawn_goodput_matches_the_closed_form_and_plan():
    sim = predict_goodput(JOB, SWEEP_OPTS)
    exp = predict_goodput(JOB, FaultOptions(**{**SWEEP_OPTS.__dict__, "method": "expected"}))
    assert sim.goodput_fraction == pytest.approx(exp.goodput_fraction, abs=2e-3)
    assert sim.failures == pytest.approx(exp.failures, rel=0.05)
    # plan.goodput_factor (Young's first order) agrees to first order: C/M = 1/120.
    first = goodput_factor(512, 1024.0, 60.0, 120.0).factor
    assert exp.first_order_goodput == pytest.approx(first)
    assert exp.goodput_fraction == pytest.approx(first, abs=0.01)


@pytest.mark.parametrize("method,trials", [("expected", 1), ("simulate", 8)])
def test_sweep_finds_the_young_daly_optimum_within_its_resolution(method, trials):
    """A grid that does not contain Young's interval (1.25x steps from 100 s): the best
    grid point is within one step of sqrt(2 C M), and of Daly's estimate."""
    opts = FaultOptions(**{**SWEEP_OPTS.__dict__, "method": method, "trials": trials})
    grid = [100.0 * 1.25 ** i for i in range(18)]  # 100 s .. 4.4 ks
    sweep = checkpoint_interval_sweep(JOB, opts, intervals_s=grid)
    assert sweep.young_daly_interval_s == pytest.approx(YOUNG_S)
    assert sweep.resolution == pytest.approx(1.25)
    assert sweep.within_resolution(YOUNG_S), (sweep.best_interval_s, YOUNG_S)
    assert sweep.within_resolution(sweep.daly_interval_s)
    goodputs = [r.goodput_samples_per_s for r in sweep.results]
    best = goodputs.index(max(goodputs))
    assert 0 < best < len(grid) - 1  # an interior optimum: too often and too rarely both lose
    assert goodputs[0] < goodputs[best] and goodputs[-1] < goodputs[best]


def test_default_sweep_is_centred_on_young_and_reports_daly():
    sweep = checkpoint_interval_sweep(JOB, FaultOptions(**{**SWEEP_OPTS.__dict__,
                                                          "method": "expected"}), points=9)
    assert len(sweep.results) == 9
    assert sweep.intervals_s[4] == pytest.approx(YOUNG_S)
    assert sweep.model_optimum_s == pytest.approx(sweep.daly_interval_s, rel=1e-3)
    assert sweep.frame().shape[0] == 9


def test_async_ps_keeps_going_with_fewer_workers():
    job = {**JOB, "strategy": "ps-asp"}
    opts = FaultOptions(gpu_mtbf_hours=512 * 2.0, checkpoint_GB=60.0, storage_GBps=1.0,
                        restart_s=120.0, train_samples=1e9, method="expected")
    a = predict_goodput(job, opts)
    s = predict_goodput(JOB, opts)
    assert a.kind == "async" and a.restart_s == 0.0
    # Each worker out 120 s after each of its failures: alive fraction exp(-120 / 1024 h).
    alive = math.exp(-120.0 / (1024 * 3600.0))
    assert a.wall_s - a.checkpoint_s == pytest.approx(a.work_s / alive)
    assert a.goodput_samples_per_s > s.goodput_samples_per_s
    with pytest.raises(ConfigError, match="asynchronous PS"):
        checkpoint_interval_sweep(job, opts)


def test_no_failures_means_no_loss():
    g = predict_goodput(JOB, FaultOptions(gpu_mtbf_hours=None, checkpoint_GB=1.0,
                                          train_samples=1e6))
    assert g.job_mtbf_s == math.inf and g.lost_to_failures_s == 0
    assert g.goodput_samples_per_s == pytest.approx(1000.0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(gpu_mtbf_hours=-1.0), "gpu_mtbf_hours: must be a finite number > 0"),
    (dict(storage_GBps=0.0), "storage_GBps"),
    (dict(restart_s=math.nan), "restart_s"),
    (dict(trials=0), "trials: must be an integer >= 1"),
    (dict(method="mc"), "method: must be one of"),
])
def test_bad_options_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        FaultOptions(**kwargs)


@pytest.mark.parametrize("source,match", [
    ({"samples_per_s": 0.0, "gpus": 8}, "samples_per_s"),
    ({"samples_per_s": 10.0}, "gpus"),
    ({"samples_per_s": 10.0, "gpus": 8, "model": "lenet5"}, "train_samples"),
    (42, "source"),
])
def test_bad_sources_are_config_errors(source, match):
    with pytest.raises(ConfigError, match=match):
        predict_goodput(source, FaultOptions(checkpoint_GB=1.0))


# --------------------------------------------------------------------------- scenarios
SCENARIO = {
    "name": "f", "workload": {"model": "resnet50", "batch_per_gpu": 32},
    "cluster": {"preset": "dgx-a100", "gpus": 16}, "iterations": 2,
    "strategies": [{"kind": "allreduce", "name": "ring", "algo": "ring"}],
    "faults": {"failures": {"gpu_mtbf_hours": 500, "checkpoint_GB": 20, "storage_GBps": 1,
                            "restart_s": 300, "method": "simulate", "trials": 4}},
}


def test_run_scenario_adds_goodput_columns():
    from ddlsim.api.run import run_scenario
    from ddlsim.scenarios.loader import parse_scenario

    sc = parse_scenario(yaml.safe_dump(SCENARIO), "f.yaml")
    row = run_scenario(sc, "f.yaml").summary().iloc[0]
    assert row["goodput_samples_per_s"] < row["samples_per_s"]
    assert row["young_daly_interval_s"] == pytest.approx(math.sqrt(2 * 20 * 500 * 3600 / 16))
    plain = parse_scenario(yaml.safe_dump({**SCENARIO, "faults": {}}), "g.yaml")
    assert "goodput_samples_per_s" not in run_scenario(plain, "g.yaml").summary().columns


def test_scenario_options_default_to_llama3_rate():
    from ddlsim.scenarios.loader import parse_scenario

    doc = {**SCENARIO, "faults": {"failures": {}}}
    opts = scenario_fault_options(parse_scenario(yaml.safe_dump(doc), "f.yaml"))
    assert opts.gpu_mtbf_hours == LLAMA3_MTBF_GPU_HOURS and opts.node_mtbf_hours is None
    doc = {**SCENARIO, "faults": {"failures": {"node_mtbf_hours": 100}}}
    opts = scenario_fault_options(parse_scenario(yaml.safe_dump(doc), "f.yaml"))
    assert opts.gpu_mtbf_hours is None and opts.node_mtbf_hours == 100


def test_failures_section_errors_name_the_key():
    from ddlsim.scenarios.loader import parse_scenario

    bad = {**SCENARIO, "faults": {"failures": {"gpu_mtbf_h": 10}}}
    with pytest.raises(ConfigError, match="faults.failures.gpu_mtbf_h: unknown key 'gpu_mtbf_h'; "
                                          "did you mean 'gpu_mtbf_hours'"):
        parse_scenario(yaml.safe_dump(bad), "f.yaml")
    neg = {**SCENARIO, "faults": {"failures": {"restart_s": -1}}}
    with pytest.raises(ConfigError, match="faults.failures.restart_s"):
        parse_scenario(yaml.safe_dump(neg), "f.yaml")


values = st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() \
    | st.text(max_size=8) | st.lists(st.integers(), max_size=2)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(["gpu_mtbf_hours", "node_mtbf_hours", "checkpoint_interval_s",
                            "checkpoint_GB", "storage_GBps", "restart_s", "repair_s",
                            "train_samples", "method", "trials", "bogus"]), value=values)
def test_any_failures_value_loads_or_is_a_config_error(key, value):
    from ddlsim.scenarios.loader import parse_scenario

    doc = {**SCENARIO, "faults": {"failures": {key: value}}}
    try:
        sc = parse_scenario(yaml.safe_dump(doc), "f.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("f.yaml: ") and "\n" not in str(exc)
        return
    scenario_fault_options(sc)  # what loads builds valid options


# --------------------------------------------------------------------------- report
def test_report_marks_the_optimum(tmp_path):
    from ddlsim.reports.faults import write_faults_report

    sweep = checkpoint_interval_sweep(JOB, FaultOptions(**{**SWEEP_OPTS.__dict__,
                                                          "method": "expected"}), points=7)
    out = write_faults_report(sweep, tmp_path / "faults")
    assert (out / "goodput_vs_interval.png").stat().st_size > 1000
    md = (out / "report.md").read_text()
    assert f"{YOUNG_S:.4g} s" in md and md.count("\n| ") == 8  # header + 7 rows
    import pandas as pd

    df = pd.read_csv(out / "sweep.csv")
    assert len(df) == 7 and df["goodput_samples_per_s"].idxmax() == 3
