"""Parameter-server simulator: exact tiny log, closed forms, staleness laws, modes."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from ddlsim.errors import ConfigError
from ddlsim.sim.async_ps import (
    PSConfig,
    Shard,
    overlap_segments,
    plan_shards,
    shard_costs,
    simulate_ps,
)
from ddlsim.sim.network import Network
from ddlsim.sim.sync_dp import NoiseSpec, StepCost
from ddlsim.sim.topology import make_cluster
from ddlsim.sim.updates import UPDATE_LOG_COLUMNS

NIC = 1e6  # bytes/s of every NIC in these tests


def _cost(compute_s: float, grad_bytes: float = 1e6, kernels: int = 3) -> StepCost:
    """A one-layer step: ``compute_s`` seconds of fwd + bwd split over a few kernels."""
    f = np.full(kernels, compute_s / (3 * kernels))
    b = np.full(kernels, 2 * compute_s / (3 * kernels))
    return StepCost(("l",), f, np.array([0, kernels]), b, np.array([0, kernels]),
                    np.array([grad_bytes]), 0.0)


def _run(workers: int, cfg: PSConfig, compute_s: float = 3.0, apply_s: float = 0.5,
         nbytes: float = 1e6, seed: int = 0):
    """Workers on nodes 0..W-1 (one device each), one shard on its own host node W."""
    cluster = make_cluster("cpu-cluster", workers + 1, nic_bw_Bps=NIC, nic_latency_s=0.0,
                           switch_latency_s=0.0)
    net = Network(simpy.Environment(), cluster)
    shard = Shard(0, 0, 1, nbytes, (int(nbytes // 4),), endpoint=workers, apply_s=apply_s,
                  accumulate_s=0.0)
    return simulate_ps(net, [_cost(compute_s, nbytes)] * workers, list(range(workers)),
                       [shard], cfg, seed=seed)


def test_exact_log_two_workers_one_shard():
    # Pull 1 s (1 MB at 1 MB/s), compute 3 s, push 1 s, apply 0.5 s, FIFO server NIC:
    # w0 pull [0,1] compute [1,4] push [4,5] apply [5,5.5]; w1 pull [1,2] (read v0)
    # compute [2,5] push [5,6] apply [6,6.5]; w0 pull [5.5,6.5] (read v1) ... and so on.
    r = _run(2, PSConfig(mode="asp", updates=4, server_concurrency=1))
    assert [row[:5] for row in r.update_log] == [
        (0, pytest.approx(5.5), 0, 0, 1), (1, pytest.approx(6.5), 1, 0, 2),
        (2, pytest.approx(11.0), 0, 1, 3), (3, pytest.approx(12.0), 1, 2, 4)]
    assert [row[5] for row in r.update_log] == [0, 1, 1, 1]
    assert len(UPDATE_LOG_COLUMNS) == len(r.update_log[0])
    assert r.makespan_s == pytest.approx(12.0)
    np.testing.assert_allclose(r.compute_busy_s, [6.0, 6.0])
    nic_rx = next(rec for rec in r.server_links if rec["id"] == "nic2.rx")
    assert nic_rx["bytes_carried"] == pytest.approx(4e6)  # four pushes reached the server


def _steady_rate(r) -> float:
    """Updates per second over whole rounds of W updates in the second half of the log."""
    t = np.array([row[1] for row in r.update_log])
    half, w = len(t) // 2, r.num_workers
    n = (len(t) - 1 - half) // w * w
    return n / (t[half + n] - t[half])


@pytest.mark.parametrize("concurrency", [1, 0])
def test_asp_throughput_linear_then_server_bound(concurrency):
    compute_s, apply_s, nbytes = 3.0, 0.1, 1e6
    one = 1.0 / (compute_s + 2 * nbytes / NIC + apply_s)  # updates/s of one worker alone
    server = NIC / nbytes  # server NIC carries nbytes in and nbytes out per update
    # Below the knee (W x one < server rate): W x one worker's rate. FIFO staggers the
    # workers after the first round; fair sharing keeps identical workers in lock-step
    # (they pull and push together at half rate), so there it is slower.
    # (Lock-step bound: both transfers at half rate, applies back to back.)
    r2 = _run(2, PSConfig(updates=200, server_concurrency=concurrency), compute_s, apply_s)
    if concurrency == 1:
        assert _steady_rate(r2) == pytest.approx(2 * one, rel=1e-6)
    else:
        lockstep = 2 / (compute_s + 2 * 2 * nbytes / NIC + 2 * apply_s)
        assert lockstep <= _steady_rate(r2) < 0.95 * 2 * one
    # Well above it: the server NIC's closed form nbytes / bandwidth per update.
    r12 = _run(12, PSConfig(updates=600, server_concurrency=concurrency), compute_s, apply_s)
    assert 12 * one > 2 * server
    rx = next(rec for rec in r12.server_links if rec["id"] == "nic12.rx")
    if concurrency == 1:
        assert _steady_rate(r12) == pytest.approx(server, rel=2e-3)
        assert rx["utilization"] > 0.97
    else:
        # Fair sharing never beats the bound; identical workers whose pushes end together
        # then wait for the shard's applies one by one, idling the NIC meanwhile.
        assert 0.5 * server < _steady_rate(r12) <= server * (1 + 1e-9)
        assert rx["utilization"] <= 1 + 1e-9


def test_round_robin_staleness_is_w_minus_1():
    r = _run(4, PSConfig(updates=400, server_concurrency=1), compute_s=3.0, apply_s=0.1)
    s = r.staleness[len(r.staleness) // 2:]
    assert np.all(s == 3)
    workers = [row[2] for row in r.update_log[200:]]
    assert all(workers[i] == workers[i + 4] for i in range(len(workers) - 4))


def test_ssp_never_exceeds_bound_and_bites():
    cfg = PSConfig(mode="ssp", updates=300, staleness_bound=2, slow_workers={0: 3.0},
                   noise=NoiseSpec("lognormal", 0.3))
    r = _run(4, cfg, compute_s=1.0, apply_s=0.01, nbytes=1e4)
    assert r.max_clock_gap == 2
    # Without the bound the fast workers run far ahead of the straggler.
    asp = _run(4, PSConfig(mode="asp", updates=300, slow_workers={0: 3.0},
                           noise=NoiseSpec("lognormal", 0.3)), compute_s=1.0, apply_s=0.01,
               nbytes=1e4)
    assert asp.grads_applied.max() - asp.grads_applied.min() > 10
    assert r.grads_applied.max() - r.grads_applied.min() <= 3


def test_bsp_staleness_zero_and_all_gradients():
    r = _run(4, PSConfig(mode="bsp", updates=20), compute_s=1.0, apply_s=0.01, nbytes=1e4)
    assert np.all(r.staleness == 0)
    assert [row[3] for row in r.update_log] == list(range(20))
    assert all(row[2] == -1 and row[6] == 4 for row in r.update_log)
    assert r.grads_dropped.sum() == 0


def test_backup_drops_exactly_b_per_iteration():
    # Identical workers all compute on every version: exactly b of each iteration dropped.
    cfg = PSConfig(mode="backup", updates=30, backup_workers=2)
    r = _run(6, cfg, compute_s=1.0, apply_s=0.01, nbytes=1e4)
    assert all(row[6] == 4 for row in r.update_log)
    assert {v: n for v, n in r.dropped_per_iteration.items() if v < 30} == {
        v: 2 for v in range(30)}
    # A 1.5x straggler is always too late: its gradients are all dropped, never applied,
    # and it skips versions, so some iterations drop fewer than b.
    slow = _run(6, PSConfig(mode="backup", updates=30, backup_workers=2,
                            slow_workers={3: 1.5}), compute_s=1.0, apply_s=0.01, nbytes=1e4)
    assert all(row[6] == 4 for row in slow.update_log)
    assert slow.grads_applied[3] == 0 and slow.grads_dropped[3] >= 10
    assert all(1 <= n <= 2 for v, n in slow.dropped_per_iteration.items() if v < 30)


def test_straggler_hurts_bsp_more_than_asp_and_backup():
    def rate(mode, slow):
        cfg = PSConfig(mode=mode, updates=200 if mode in ("asp",) else 40, backup_workers=1,
                       slow_workers=slow)
        return _run(8, cfg, compute_s=1.0, apply_s=0.001, nbytes=1e4).samples_per_s

    slowdown = {m: rate(m, {}) / rate(m, {0: 3.0}) for m in ("bsp", "asp", "backup")}
    assert slowdown["bsp"] > 2.5  # every iteration waits for the 3x straggler
    assert slowdown["asp"] < 0.8 * slowdown["bsp"]
    assert slowdown["backup"] < 0.8 * slowdown["bsp"]


def test_same_seed_same_log_different_seed_differs():
    cfg = PSConfig(mode="asp", updates=100, noise=NoiseSpec("gamma", 0.2))
    a = _run(3, cfg, compute_s=1.0, apply_s=0.01, nbytes=1e5, seed=7)
    b = _run(3, cfg, compute_s=1.0, apply_s=0.01, nbytes=1e5, seed=7)
    c = _run(3, cfg, compute_s=1.0, apply_s=0.01, nbytes=1e5, seed=8)
    assert a.update_log == b.update_log
    assert a.update_log != c.update_log


def test_shards_split_by_bytes_and_costs():
    sizes = [0, 40, 0, 10, 10, 20, 0, 20]
    shards = plan_shards(sizes, 2, 1, endpoints=[5, 6])
    assert [(s.first_layer, s.end_layer) for s in shards] == [(0, 4), (4, 8)]
    assert [s.nbytes for s in shards] == [50, 50]
    assert shards[0].layer_numels == (40, 10) and shards[1].layer_numels == (10, 20, 20)
    assert [s.endpoint for s in shards] == [5, 6]
    five = plan_shards(sizes, 5, 1)
    assert sum(s.nbytes for s in five) == 100 and all(s.nbytes > 0 for s in five)
    priced = shard_costs(shards, lambda kc, dt: kc.params["numel"] * 1e-3, "float32")
    assert priced[0].apply_s == pytest.approx((40 + 10) * 1e-3)
    assert priced[0].accumulate_s == priced[0].apply_s
    with pytest.raises(ConfigError, match="num_shards"):
        plan_shards(sizes, 6, 1)


def test_multi_shard_colocated_runs_and_balances():
    cluster = make_cluster("cpu-cluster", 4, nic_bw_Bps=1e7)
    net = Network(simpy.Environment(), cluster)
    shards = plan_shards([1e5] * 8, 4, 4, endpoints=[0, 1, 2, 3])
    r = simulate_ps(net, [_cost(0.5, 8e5)] * 4, [0, 1, 2, 3], shards,
                    PSConfig(mode="asp", updates=40, server_concurrency=0))
    assert r.num_updates == 40 and r.num_shards == 4
    assert set(row[2] for row in r.update_log) == {0, 1, 2, 3}
    assert np.all(r.staleness >= 0)


def test_config_errors():
    with pytest.raises(ConfigError, match="did you mean 'ssp'"):
        PSConfig(mode="sp")
    with pytest.raises(ConfigError, match="staleness_bound"):
        PSConfig(staleness_bound=-1)
    with pytest.raises(ConfigError, match="backup_workers"):
        _run(2, PSConfig(mode="backup", backup_workers=2))


# --------------------------------------------------------------------------- overlap
def _layered_cost(fwd_layer_s, bwd_layer_s, grad_layer_bytes) -> StepCost:
    """One kernel per layer: forward seconds in forward order, backward seconds and
    gradient bytes in backward order."""
    n = len(fwd_layer_s)
    bounds = np.arange(n + 1)
    return StepCost(tuple(f"l{i}" for i in range(n)), np.asarray(fwd_layer_s, float), bounds,
                    np.asarray(bwd_layer_s, float), bounds, np.asarray(grad_layer_bytes, float),
                    0.0)


def _run_layers(workers: int, cfg: PSConfig, fwd, bwd, shard_bytes, apply_s: float):
    """Workers on nodes 0..W-1, shard j (layer j) on its own host node W + j."""
    S = len(fwd)
    cluster = make_cluster("cpu-cluster", workers + S, nic_bw_Bps=NIC, nic_latency_s=0.0,
                           switch_latency_s=0.0)
    net = Network(simpy.Environment(), cluster)
    shards = [Shard(j, j, j + 1, shard_bytes, (max(1, int(shard_bytes // 4)),),
                    endpoint=workers + j, apply_s=apply_s, accumulate_s=0.0)
              for j in range(S)]
    cost = _layered_cost(fwd, bwd, [shard_bytes] * S)
    return simulate_ps(net, [cost] * workers, list(range(workers)), shards, cfg)


def test_overlap_exact_log_two_workers_two_shards():
    # Layers l0, l1 = shards 0, 1 (hosts); fwd 1 s/layer, bwd 2 s/layer, 1 MB per shard at
    # 1 MB/s, apply 0.5 s, FIFO servers. w0's pulls share its NIC: both end at 2 (v0);
    # w1's then end at 4. w0: fwd [2,4], bwd l1 [4,6] -> push s1 [6,7] apply [7,7.5];
    # bwd l0 [6,8] -> push s0 [8,9] apply [9,9.5]: update 0 at 9.5 (read v0).
    # w1: fwd [4,6], bwd l1 [6,8] -> push s1 [8,9]+0.5, bwd l0 [8,10] -> push s0 [10,11]
    # apply [11,11.5]: update 1 at 11.5 (read v0). w0 pulls s1 at 8 (v0, its own s1
    # applied at 7.5), s0 at 9.5 (v1) -> [9.5,10.5]; fwd [10.5,12.5], bwd [12.5,16.5]:
    # push s1 [14.5,15.5]+0.5, s0 [16.5,17.5] apply [17.5,18]: update 2 at 18 (read v0).
    # w1 pulls s1 at 10 (v1), s0 at 11.5 (v2) -> [11.5,12.5]; fwd [12.5,14.5], bwd
    # [14.5,18.5]: push s0 [18.5,19.5] apply [19.5,20]: update 3 at 20 (read v1).
    r = _run_layers(2, PSConfig(mode="asp", updates=4, server_concurrency=1, overlap=True),
                    fwd=[1.0, 1.0], bwd=[2.0, 2.0], shard_bytes=1e6, apply_s=0.5)
    assert [row[:5] for row in r.update_log] == [
        (0, pytest.approx(9.5), 0, 0, 1), (1, pytest.approx(11.5), 1, 0, 2),
        (2, pytest.approx(18.0), 0, 0, 3), (3, pytest.approx(20.0), 1, 1, 4)]
    assert [row[5] for row in r.update_log] == [0, 1, 2, 2]
    assert r.makespan_s == pytest.approx(20.0)
    np.testing.assert_allclose(r.compute_busy_s, [12.0, 12.0])
    # Without overlap w0 would push both shards only after its backward (at 8).
    plain = _run_layers(2, PSConfig(mode="asp", updates=4, server_concurrency=1,
                                    overlap=False),
                        fwd=[1.0, 1.0], bwd=[2.0, 2.0], shard_bytes=1e6, apply_s=0.5)
    assert plain.update_log[0][1] > r.update_log[0][1]


@pytest.mark.parametrize("mode", ["asp", "ssp", "bsp", "backup"])
def test_overlap_free_communication_iteration_is_compute(mode):
    fwd, bwd = [0.3, 0.2, 0.5], [0.4, 0.6, 1.0]  # compute 3.0 s per step
    cfg = PSConfig(mode=mode, updates=12, backup_workers=1, staleness_bound=0, overlap=True)
    r = _run_layers(3, cfg, fwd, bwd, shard_bytes=0.0, apply_s=0.0)
    t = np.array([row[1] for row in r.update_log])
    if mode in ("asp", "ssp"):  # every worker finishes a step every 3 s, all together
        np.testing.assert_allclose(t, np.repeat(3.0 * np.arange(1, 5), 3))
    else:  # one combined update per 3 s iteration
        np.testing.assert_allclose(t, 3.0 * np.arange(1, 13))
    np.testing.assert_allclose(r.compute_busy_s, r.grads_computed * 3.0)


@pytest.mark.parametrize("mode,workers,concurrency,apply_s,hidden", [
    ("asp", 1, 1, 0.1, True), ("asp", 3, 1, 0.1, True), ("asp", 4, 0, 0.3, True),
    ("ssp", 3, 0, 0.1, True), ("bsp", 2, 1, 0.1, True), ("bsp", 4, 0, 0.05, False),
    ("backup", 4, 0, 0.05, False)])
def test_overlap_between_compute_and_no_overlap(mode, workers, concurrency, apply_s, hidden):
    # Servers on their own hosts (no link carries both a push and a pull of one shard).
    fwd, bwd = [0.2, 0.3, 0.5], [0.5, 0.7, 0.8]  # compute 3.0 s per step
    updates = 60 if mode in ("asp", "ssp") else 15

    def per_update(overlap):
        cfg = PSConfig(mode=mode, updates=updates, backup_workers=1, staleness_bound=1,
                       server_concurrency=concurrency, overlap=overlap)
        r = _run_layers(workers, cfg, fwd, bwd, shard_bytes=2e5, apply_s=apply_s)
        grads = sum(row[6] for row in r.update_log)
        return r.makespan_s / grads * workers  # seconds per gradient, per worker

    with_overlap, without = per_update(True), per_update(False)
    assert with_overlap <= without * (1 + 1e-9)
    assert with_overlap >= 3.0 * (1 - 1e-9)
    if hidden:  # communication really was hidden (the others are server-NIC bound)
        assert with_overlap < 0.99 * without


def test_overlap_segments_and_errors():
    cost = _layered_cost([1, 2, 3, 4], [40, 30, 20, 10], [1, 1, 1, 1])
    shards = plan_shards([1, 1, 1, 1], 2, 1)  # layers [0,2), [2,4)
    seg = overlap_segments(cost, shards)
    # Forward kernels 0..3, backward kernels 4..7 (layer 3 first): shard 1 = layers 2,3.
    assert seg.fwd_cuts.tolist() == [0, 2, 4] and seg.fwd_need == ((0,), (1,))
    assert seg.bwd_cuts.tolist() == [4, 6, 8] and seg.bwd_push == ((1,), (0,))
    one = overlap_segments(_cost(3.0), shards)
    assert one.fwd_need == ((0, 1),) and one.bwd_push == ((0, 1),)
    with pytest.raises(ConfigError, match="overlap needs one cost layer"):
        overlap_segments(_layered_cost([1, 1, 1], [1, 1, 1], [1, 1, 1]), shards)
    with pytest.raises(ConfigError, match="overlap"):
        PSConfig(overlap="yes")
