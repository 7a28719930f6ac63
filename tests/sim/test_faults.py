"""Failure model and checkpointing: drawn timelines against closed forms, exact small
cases, Young/Daly optima, determinism, budgets."""

import math

import numpy as np
import pytest

from ddlsim.errors import ConfigError, SimulationError
from ddlsim.sim.faults import (
    CheckpointPolicy,
    FailureModel,
    daly_interval_s,
    expected_async_run,
    expected_sync_run,
    mean_timeline,
    model_optimum_interval_s,
    simulate_async_run,
    simulate_runs,
    simulate_sync_run,
)


def test_component_counts_and_rates():
    fm = FailureModel(gpus=20, gpus_per_node=8, gpu_mtbf_s=1000.0, node_mtbf_s=500.0,
                      link_mtbf_s=250.0)
    assert fm.nodes == 3  # 8 + 8 + 4
    rates = fm.rates_per_s()
    assert rates == pytest.approx({"gpu": 20 / 1000, "node": 3 / 500, "link": 3 / 250})
    assert fm.job_mtbf_s == pytest.approx(1 / (0.02 + 0.006 + 0.012))
    assert fm.worker_rate_per_s == pytest.approx(1 / 1000 + 1 / 500 + 1 / 250)
    assert FailureModel(gpus=4).job_mtbf_s == math.inf


@pytest.mark.parametrize("kwargs", [dict(gpus=0), dict(gpus=4, gpus_per_node=0),
                                    dict(gpus=4, gpu_mtbf_s=-1.0),
                                    dict(gpus=4, node_mtbf_s=math.nan)])
def test_bad_failure_model_is_a_config_error(kwargs):
    with pytest.raises(ConfigError, match=next(iter(k for k in kwargs if kwargs[k] != 4))):
        FailureModel(**kwargs)


def test_bad_policy_is_a_config_error():
    with pytest.raises(ConfigError, match="interval_s: must be a finite number > 0"):
        CheckpointPolicy(interval_s=0.0, write_s=1.0)
    with pytest.raises(ConfigError, match="write_s"):
        CheckpointPolicy(interval_s=10.0, write_s=-1.0)


def test_no_failures_costs_exactly_the_checkpoints():
    fm = FailureModel(gpus=8)
    pol = CheckpointPolicy(interval_s=10.0, write_s=2.0, restart_s=5.0)
    # 35 s of work: intervals 10, 10, 10, 5; three checkpoints (none after the last).
    for tl in (expected_sync_run(35.0, fm, pol),
               simulate_sync_run(35.0, fm, pol, np.random.default_rng(0))):
        assert tl.wall_s == pytest.approx(41.0)
        assert tl.checkpoint_s == pytest.approx(6.0) and tl.checkpoints == 3
        assert tl.lost_s == 0 and tl.failures == 0
    tl = simulate_async_run(35.0, fm, pol, np.random.default_rng(0))
    assert tl.wall_s == pytest.approx(41.0) and tl.lost_s == 0


def test_sync_timeline_accounts_for_every_second():
    fm = FailureModel(gpus=64, gpu_mtbf_s=64 * 500.0)  # job MTBF 500 s
    pol = CheckpointPolicy(interval_s=100.0, write_s=10.0, restart_s=30.0)
    for tl in simulate_runs("sync", 5000.0, fm, pol, seed=3, trials=5):
        assert tl.wall_s == pytest.approx(tl.work_s + tl.checkpoint_s + tl.lost_s)
        assert tl.failures >= 1 and tl.restart_s <= 30.0 * tl.failures + 1e-9
        assert tl.checkpoints == 49  # 50 intervals, no checkpoint after the last
        assert sum(tl.failures_by_kind.values()) == tl.failures


def test_sync_monte_carlo_matches_daly_complete_model():
    """Mean of drawn timelines vs exp(lam R) (exp(lam L) - 1) / lam per interval; the
    tolerance is 4 standard errors of the mean."""
    fm = FailureModel(gpus=16, gpus_per_node=4, gpu_mtbf_s=16 * 2000.0, node_mtbf_s=4 * 4000.0,
                      link_mtbf_s=4 * 8000.0)
    pol = CheckpointPolicy(interval_s=300.0, write_s=20.0, restart_s=60.0)
    runs = simulate_runs("sync", 20_000.0, fm, pol, seed=11, trials=300)
    walls = np.array([r.wall_s for r in runs])
    exp = expected_sync_run(20_000.0, fm, pol)
    assert abs(walls.mean() - exp.wall_s) < 4 * walls.std() / math.sqrt(len(walls))
    mean = mean_timeline(runs)
    assert mean.failures == pytest.approx(exp.failures, rel=0.1)
    # Failures split by kind in proportion to the rates: gpu 1/2000, node 1/4000, link 1/8000.
    by = mean.failures_by_kind
    assert by["gpu"] / mean.failures == pytest.approx(4 / 7, abs=0.05)
    assert by["link"] / mean.failures == pytest.approx(1 / 7, abs=0.05)


def test_expected_sync_matches_first_order_for_rare_failures():
    """For C, R << M: wall/work ~ 1 + C/tau + (tau/2 + C + R)/M (Young's first order)."""
    m, c, r, tau = 1e6, 10.0, 30.0, 4000.0
    fm = FailureModel(gpus=1, gpu_mtbf_s=m)
    tl = expected_sync_run(4e6, fm, CheckpointPolicy(tau, c, r))
    assert tl.wall_s / 4e6 == pytest.approx(1 + c / tau + (tau / 2 + c + r) / m, rel=1e-4)


def test_optimum_intervals():
    c, m = 60.0, 3600.0
    young = math.sqrt(2 * c * m)
    daly = daly_interval_s(c, m)
    # Daly (2006) eq. 37 by hand: x = C/2M.
    x = c / (2 * m)
    assert daly == pytest.approx(young * (1 + math.sqrt(x) / 3 + x / 9) - c)
    opt = model_optimum_interval_s(c, m)
    # Daly's estimate is the optimum of this very model to higher order; Young's is first.
    assert opt == pytest.approx(daly, rel=1e-3)
    assert abs(opt - young) / young < 0.1
    assert daly_interval_s(100.0, 10.0) == 10.0  # C >= 2M: M


def test_async_keeps_going_with_fewer_workers():
    """Steady state: a worker is alive with probability exp(-lam_w D)."""
    fm = FailureModel(gpus=32, gpus_per_node=8, gpu_mtbf_s=5000.0, node_mtbf_s=20000.0)
    pol = CheckpointPolicy(interval_s=1e9, write_s=0.0, repair_s=400.0)
    runs = simulate_runs("async", 200_000.0, fm, pol, seed=5, trials=3)
    alive = math.exp(-fm.worker_rate_per_s * 400.0)
    exp = expected_async_run(200_000.0, fm, pol)
    assert exp.wall_s == pytest.approx(200_000.0 / alive)
    for tl in runs:
        assert tl.restart_s == 0.0 and tl.failures > 50
        assert tl.wall_s == pytest.approx(tl.work_s + tl.checkpoint_s + tl.lost_s)
        assert tl.work_s / tl.wall_s == pytest.approx(alive, abs=0.01)
    # A synchronous job on the same cluster loses much more.
    sync = expected_sync_run(200_000.0, fm, CheckpointPolicy(300.0, 10.0, 400.0))
    assert sync.wall_s > 1.2 * exp.wall_s


def test_async_node_failure_takes_the_whole_node_out():
    fm = FailureModel(gpus=16, gpus_per_node=8, node_mtbf_s=1.0)  # failures every 0.5 s
    pol = CheckpointPolicy(interval_s=1e9, write_s=0.0, repair_s=1e-3)
    tl = simulate_async_run(10.0, fm, pol, np.random.default_rng(0))
    # Each failure removes 8 of 16 workers for 1 ms: ~ failures x 0.5 x 1 ms lost.
    assert tl.failures_by_kind["node"] == tl.failures > 5
    assert tl.lost_work_s == pytest.approx(tl.failures * 0.5e-3, rel=1e-6)


def test_same_seed_same_timelines():
    fm = FailureModel(gpus=128, gpu_mtbf_s=128 * 300.0)
    pol = CheckpointPolicy(50.0, 5.0, 20.0, 20.0)
    for kind in ("sync", "async"):
        a = simulate_runs(kind, 3000.0, fm, pol, seed=7, trials=3)
        b = simulate_runs(kind, 3000.0, fm, pol, seed=7, trials=3)
        c = simulate_runs(kind, 3000.0, fm, pol, seed=8, trials=3)
        assert a == b and a != c


def test_hopeless_runs_stop_with_a_clear_message():
    fm = FailureModel(gpus=1024, gpu_mtbf_s=1024 * 1.0)  # a failure every second
    pol = CheckpointPolicy(interval_s=1000.0, write_s=10.0, restart_s=5.0)
    with pytest.raises(SimulationError, match="practically never completes"):
        expected_sync_run(1e5, fm, pol)
    with pytest.raises(SimulationError, match="exceeded 1,000 events"):
        simulate_sync_run(1e5, fm, pol, np.random.default_rng(0), max_events=1000)
    with pytest.raises(SimulationError, match="exceeded 100 events"):
        simulate_async_run(1e5, fm, pol, np.random.default_rng(0), max_events=100)
    with pytest.raises(ConfigError, match="kind"):
        simulate_runs("bsp", 1.0, fm, pol)
