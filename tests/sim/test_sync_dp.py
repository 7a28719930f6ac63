"""Synchronous data parallelism: exact schedules on hand-computable cases, invariants."""

import numpy as np
import pytest

from ddlsim.errors import ConfigError
from ddlsim.sim.sync_dp import (
    NoiseSpec,
    StepCost,
    SyncDPConfig,
    make_buckets,
    simulate_sync_dp,
)


def two_layer_cost(scale: float = 1.0) -> StepCost:
    """Layer A (fwd 1.0 s, bwd 2.0 s, 10 B of grads), layer B (fwd 1.5, bwd 3.0, 20 B)."""
    return StepCost(
        layer_names=("A", "B"),
        fwd_s=np.array([1.0, 1.5]) * scale,
        fwd_bounds=np.array([0, 1, 2]),
        bwd_s=np.array([1.0, 2.0, 2.0]) * scale,  # backward order: B (1.0 + 2.0), then A (2.0)
        bwd_bounds=np.array([0, 2, 3]),
        bwd_grad_bytes=np.array([20.0, 10.0]),
        update_s=0.25 * scale,
    )


def fixed_allreduce(alpha_s: float = 0.5, s_per_byte: float = 0.1):
    """A collective of known cost: alpha + bytes * s_per_byte."""

    def allreduce(env, nbytes):
        yield env.timeout(alpha_s + nbytes * s_per_byte)

    return allreduce


def test_buckets_fill_in_backward_order():
    assert make_buckets(np.array([20.0, 10.0]), 15) == [(0, 20.0), (1, 10.0)]
    assert make_buckets(np.array([5.0, 0.0, 5.0, 5.0]), 10) == [(2, 10.0), (3, 5.0)]
    assert make_buckets(np.array([0.0, 0.0]), 10) == []


def test_exact_event_log_two_gpus_two_layers():
    cfg = SyncDPConfig(iterations=2, batch_per_gpu=4, bucket_bytes=15)
    cost = two_layer_cost()
    res = simulate_sync_dp([cost, cost], fixed_allreduce(), cfg)
    # iteration 0: fwd ends 2.5; B's grads ready 5.5 -> bucket 0 (20 B, 2.5 s) 5.5-8.0;
    # A's grads ready 7.5, stream busy until 8.0 -> bucket 1 (10 B, 1.5 s) 8.0-9.5;
    # update 9.5-9.75. Iteration 1 repeats the same pattern from 9.75.
    assert res.buckets == [
        (0, 0, 20.0, 5.5, 5.5, 8.0),
        (0, 1, 10.0, 7.5, 8.0, 9.5),
        (1, 0, 20.0, 15.25, 15.25, 17.75),
        (1, 1, 10.0, 17.25, 17.75, 19.25),
    ]
    assert res.iteration_end.tolist() == [9.75, 19.5]
    assert res.exposed_comm_s.tolist() == [2.0, 2.0]
    assert res.update_log == [(0, 9.75, -1, 0, 1, 0, 2), (1, 19.5, -1, 1, 2, 0, 2)]
    assert res.compute_busy_s.tolist() == [15.5, 15.5]
    assert res.samples_per_s == pytest.approx(2 * 4 * 2 / 19.5)


def test_without_overlap_iteration_is_the_sum_of_phases():
    cfg = SyncDPConfig(iterations=3, bucket_bytes=15, overlap=False)
    cost = two_layer_cost()
    res = simulate_sync_dp([cost] * 4, fixed_allreduce(), cfg)
    expected = 2.5 + 5.0 + (2.5 + 1.5) + 0.25  # fwd + bwd + both allreduces + update
    np.testing.assert_allclose(res.iteration_times_s, expected, rtol=1e-12)


def test_overlap_never_beats_compute_and_beats_no_overlap():
    cost = two_layer_cost()
    over = simulate_sync_dp([cost] * 2, fixed_allreduce(), SyncDPConfig(bucket_bytes=15))
    seq = simulate_sync_dp([cost] * 2, fixed_allreduce(),
                           SyncDPConfig(bucket_bytes=15, overlap=False))
    assert np.all(over.iteration_times_s >= cost.compute_s - 1e-12)
    assert over.makespan_s < seq.makespan_s


def test_straggler_sets_the_pace_and_others_idle():
    cost = two_layer_cost()
    cfg = SyncDPConfig(iterations=2, bucket_bytes=1e9, slow_gpus={1: 2.0})
    res = simulate_sync_dp([cost] * 4, fixed_allreduce(0.0, 0.0), cfg)
    # One bucket, free communication: every iteration waits for rank 1's doubled compute.
    np.testing.assert_allclose(res.iteration_times_s, 2 * cost.compute_s)
    assert res.compute_idle_s[0] > 0 and res.compute_idle_s[1] == pytest.approx(0.0)


def test_throughput_never_exceeds_n_times_single_gpu():
    cost = two_layer_cost()
    single = simulate_sync_dp([cost], fixed_allreduce(0.0, 0.0), SyncDPConfig(bucket_bytes=15))
    for n in (2, 8, 64):
        res = simulate_sync_dp([cost] * n, fixed_allreduce(), SyncDPConfig(bucket_bytes=15))
        assert res.samples_per_s <= n * single.samples_per_s * (1 + 1e-12)


def test_noise_is_seeded_and_slows_sync_training():
    cost = two_layer_cost()
    cfg = SyncDPConfig(iterations=20, bucket_bytes=15,
                       noise=NoiseSpec("lognormal", 0.2))
    a = simulate_sync_dp([cost] * 8, fixed_allreduce(), cfg, seed=7)
    b = simulate_sync_dp([cost] * 8, fixed_allreduce(), cfg, seed=7)
    c = simulate_sync_dp([cost] * 8, fixed_allreduce(), cfg, seed=8)
    quiet = simulate_sync_dp([cost] * 8, fixed_allreduce(), SyncDPConfig(iterations=20,
                                                                         bucket_bytes=15))
    assert a.iteration_end.tolist() == b.iteration_end.tolist()
    assert a.iteration_end.tolist() != c.iteration_end.tolist()
    # Waiting for the slowest of 8 noisy workers costs time on average.
    assert a.makespan_s > quiet.makespan_s


def test_data_loader_limit_makes_the_run_input_bound():
    cost = two_layer_cost()  # compute 7.75 s per step
    cfg = SyncDPConfig(iterations=10, batch_per_gpu=10, bucket_bytes=15,
                       loader_samples_per_s=1.0)  # 10 s per batch > the step time
    res = simulate_sync_dp([cost] * 2, fixed_allreduce(0.0, 0.0), cfg)
    # In steady state the loader sets the pace: one batch every 10 s.
    np.testing.assert_allclose(res.iteration_times_s[2:], 10.0, rtol=1e-12)


def test_host_to_device_copy_adds_to_each_step():
    cost = two_layer_cost()
    base = simulate_sync_dp([cost], fixed_allreduce(0, 0), SyncDPConfig(bucket_bytes=1e9))
    cfg = SyncDPConfig(bucket_bytes=1e9, batch_per_gpu=32, h2d_bytes_per_sample=1e6,
                       h2d_bw_bytes_per_s=32e6)  # 32 MB at 32 MB/s: 1 s per step
    res = simulate_sync_dp([cost], fixed_allreduce(0, 0), cfg)
    np.testing.assert_allclose(res.iteration_times_s - base.iteration_times_s, 1.0)


def test_trace_spans_cover_the_chosen_iteration():
    cost = two_layer_cost()
    cfg = SyncDPConfig(iterations=2, bucket_bytes=15, trace_iterations=(1,), trace_ranks=(0, 1))
    res = simulate_sync_dp([cost] * 2, fixed_allreduce(), cfg)
    tracks = {s[0] for s in res.spans}
    assert tracks == {"gpu0 compute", "gpu1 compute", "gpu0 comm", "gpu1 comm"}
    fwd_a = [s for s in res.spans if s[0] == "gpu0 compute" and s[1] == "fwd A"]
    assert fwd_a == [("gpu0 compute", "fwd A", 9.75, 1.0)]


@pytest.mark.parametrize("kwargs, field", [
    ({"iterations": 0}, "iterations"),
    ({"bucket_bytes": -1.0}, "bucket_bytes"),
    ({"loader_samples_per_s": 0.0}, "loader_samples_per_s"),
    ({"slow_gpus": {0: -2.0}}, "slow_gpus[0]"),
])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        SyncDPConfig(**kwargs)


def test_bad_noise_names_the_field():
    with pytest.raises(ConfigError, match="noise.distribution"):
        NoiseSpec("cauchy", 0.1)
    with pytest.raises(ConfigError, match="noise.cv"):
        NoiseSpec("normal", -0.1)


@pytest.mark.parametrize("dist", ["normal", "lognormal", "gamma"])
def test_noise_has_mean_one_and_the_requested_cv(dist):
    x = NoiseSpec(dist, 0.1).draw(np.random.default_rng(0), (200_000,))
    assert x.mean() == pytest.approx(1.0, abs=2e-3)
    assert x.std() / x.mean() == pytest.approx(0.1, rel=0.03)
    assert np.all(x >= 0)
