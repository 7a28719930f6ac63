"""Pipeline schedules: closed-form bubbles, activations in flight, exact event logs."""

import pytest

from ddlsim.errors import ConfigError
from ddlsim.sim.pipeline import PipelineConfig, StageCost, simulate_pipeline, stage_order


def uniform(p, f=1.0, b=2.0, **kw):
    return [StageCost(f, b, **kw) for _ in range(p)]


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
@pytest.mark.parametrize("p,m", [(2, 1), (4, 4), (4, 16), (8, 3), (5, 7)])
def test_bubble_fraction_closed_form(schedule, p, m):
    res = simulate_pipeline(uniform(p), PipelineConfig(schedule, m))
    assert res.makespan_s == pytest.approx((m + p - 1) * 3.0)
    assert res.bubble_fraction == pytest.approx((p - 1) / (m + p - 1))


@pytest.mark.parametrize("p,m", [(4, 8), (6, 3), (3, 3)])
def test_activations_in_flight(p, m):
    gp = simulate_pipeline(uniform(p), PipelineConfig("gpipe", m))
    assert gp.peak_in_flight == [m] * p
    fb = simulate_pipeline(uniform(p), PipelineConfig("1f1b", m))
    assert fb.peak_in_flight == [min(p - k, m) for k in range(p)]
    assert max(fb.peak_in_flight) <= p


@pytest.mark.parametrize("p", [2, 4, 7])
def test_naive_utilisation_is_one_over_p(p):
    res = simulate_pipeline(uniform(p), PipelineConfig("naive", 3))
    busy = res.busy_s()
    assert sum(busy) / (p * res.makespan_s) == pytest.approx(1 / p)
    assert res.peak_in_flight == [1] * p


def fixed_send(delay):
    def send(env, src, dst, nbytes):
        yield env.timeout(delay)
    return send


def test_exact_event_log_gpipe_two_stages_two_micro_batches():
    costs = [StageCost(1.0, 2.0, act_bytes=1, grad_bytes=1, update_s=0.25),
             StageCost(1.0, 2.0, act_bytes=1, grad_bytes=1, update_s=0.25)]
    res = simulate_pipeline(costs, PipelineConfig("gpipe", 2), send=fixed_send(0.5))
    # stage 0: F0 0-1, F1 1-2; acts reach stage 1 at 1.5 and 2.5
    # stage 1: F0 1.5-2.5, F1 2.5-3.5, B0 3.5-5.5, B1 5.5-7.5; grads reach stage 0 at 6, 8
    # stage 0: B0 6-8, B1 8-10, update 10-10.25; stage 1 update 7.5-7.75
    assert sorted(res.ops, key=lambda r: (r[1], r[4])) == [
        (0, 0, "F", 0, 0.0, 1.0), (0, 0, "F", 1, 1.0, 2.0),
        (0, 0, "B", 0, 6.0, 8.0), (0, 0, "B", 1, 8.0, 10.0),
        (0, 1, "F", 0, 1.5, 2.5), (0, 1, "F", 1, 2.5, 3.5),
        (0, 1, "B", 0, 3.5, 5.5), (0, 1, "B", 1, 5.5, 7.5),
    ]
    assert sorted(res.sends, key=lambda r: r[5]) == [
        (0, 0, 1, "act", 0, 1.0, 1.5), (0, 0, 1, "act", 1, 2.0, 2.5),
        (0, 1, 0, "grad", 0, 5.5, 6.0), (0, 1, 0, "grad", 1, 7.5, 8.0),
    ]
    assert sorted(res.updates) == [(0, 0, 10.0, 10.25), (0, 1, 7.5, 7.75)]
    assert res.iteration_end == [10.25]
    assert res.update_log == [(0, 10.25, -1, 0, 1, 0, 1)]


def test_exact_event_log_1f1b_two_stages_two_micro_batches():
    costs = [StageCost(1.0, 2.0, act_bytes=1, grad_bytes=1)] * 2
    res = simulate_pipeline(costs, PipelineConfig("1f1b", 2), send=fixed_send(0.5))
    # stage 1 (no warm-up): F0 1.5-2.5, B0 2.5-4.5, F1 4.5-5.5 (act arrived 2.5), B1 5.5-7.5
    # stage 0 (1 warm-up): F0 0-1, F1 1-2, B0 5-7 (grad at 5.0), B1 8-10 (grad at 8.0)
    assert sorted(res.ops, key=lambda r: (r[1], r[4])) == [
        (0, 0, "F", 0, 0.0, 1.0), (0, 0, "F", 1, 1.0, 2.0),
        (0, 0, "B", 0, 5.0, 7.0), (0, 0, "B", 1, 8.0, 10.0),
        (0, 1, "F", 0, 1.5, 2.5), (0, 1, "B", 0, 2.5, 4.5),
        (0, 1, "F", 1, 4.5, 5.5), (0, 1, "B", 1, 5.5, 7.5),
    ]
    assert res.iteration_end == [10.0]


def test_dp_allreduce_after_last_backward_and_iterations_chain():
    costs = [StageCost(1.0, 1.0, dp_bytes=10.0, update_s=0.5)] * 2

    def allreduce(env, stage, nbytes):
        yield env.timeout(0.1 * nbytes)

    res = simulate_pipeline(costs, PipelineConfig("1f1b", 2, iterations=2, dp=4),
                            allreduce=allreduce)
    # one iteration: (m + p - 1) * 2 = 6 s of pipeline, stage 0 ends last at 6, +1 +0.5
    assert res.iteration_end == [7.5, 15.0]
    assert [r[6] for r in res.update_log] == [4, 4]
    assert sorted((r[1], r[3], r[4]) for r in res.allreduces if r[0] == 0) == [
        (0, 6.0, 7.0), (1, 5.0, 6.0)]


def test_orders_and_validation():
    assert stage_order("1f1b", 0, 3, 4) == [("F", 0), ("F", 1), ("F", 2), ("B", 0), ("F", 3),
                                             ("B", 1), ("B", 2), ("B", 3)]
    assert stage_order("naive", 1, 3, 2) == [("F", 0), ("B", 0), ("F", 1), ("B", 1)]
    with pytest.raises(ConfigError, match="micro_batches"):
        PipelineConfig("gpipe", 0)
    with pytest.raises(ConfigError, match="did you mean 'gpipe'"):
        PipelineConfig("gpip", 2)
    with pytest.raises(ConfigError, match="fwd_s"):
        StageCost(-1.0, 1.0)
