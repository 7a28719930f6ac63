"""Collectives: closed forms, contention, slow links, and a fine-grained reference model."""

import math

import pytest
import simpy

from ddlsim.errors import ConfigError
from ddlsim.sim import collectives as C
from ddlsim.sim.network import Network
from ddlsim.sim.topology import make_cluster

GB = 1e9
B = 10 * GB  # bytes/s of every link in the flat cluster
ALPHA = 5e-6  # s per hop in the flat cluster


def flat(p, bw=B, alpha=ALPHA, **kw):
    """p nodes x 1 device, uniform links, one leaf: the closed forms' assumptions."""
    return make_cluster("cpu-cluster", p, nic_bw_Bps=bw, nic_latency_s=alpha,
                        switch_latency_s=0.0, nodes_per_leaf=p, **kw)


def run(cluster, gen_fn, *args, **kw):
    env = simpy.Environment()
    net = Network(env, cluster)
    proc = env.process(gen_fn(env, net, *args, **kw))
    env.run(until=proc)
    return proc.value, net


# -- closed forms on an uncontended topology ---------------------------------------------------

SIZES = [1e3, 1e6, 256e6]


@pytest.mark.parametrize("p", [2, 3, 5, 8, 16])
@pytest.mark.parametrize("n", SIZES)
def test_ring_ops_match_closed_forms(p, n):
    ranks = range(p)
    cases = [(C.allreduce_ring, C.ring_allreduce_time), (C.reduce_scatter_ring,
             C.reduce_scatter_time), (C.all_gather_ring, C.all_gather_time),
             (C.broadcast, C.broadcast_time)]
    for fn, closed in cases:
        res, _ = run(flat(p), fn, ranks, n)
        assert res.duration_s == pytest.approx(closed(p, n, B, ALPHA), rel=0.01), fn.__name__


@pytest.mark.parametrize("p", [2, 3, 4, 5, 8, 13, 16, 32])
@pytest.mark.parametrize("n", SIZES)
def test_tree_allreduce_matches_closed_form(p, n):
    res, _ = run(flat(p), C.allreduce_tree, range(p), n)
    assert res.duration_s == pytest.approx(C.tree_allreduce_time(p, n, B, ALPHA), rel=0.01)


@pytest.mark.parametrize("p", list(range(2, 40)))
def test_double_binary_tree_shape(p):
    t1, t2 = C.double_tree_parents(p)
    for t in (t1, t2):
        assert sum(1 for x in t if x < 0) == 1  # one root
        assert max(C._tree_height(t), 0) == int(math.floor(math.log2(p)))
        children = [0] * p
        for x in t:
            if x >= 0:
                children[x] += 1
        assert max(children) <= 2
    interior1 = {i for i in t1 if i >= 0}
    interior2 = {i for i in t2 if i >= 0}
    assert not interior1 & interior2  # no rank is interior in both trees


def test_single_node_nvswitch_ring_matches_closed_form():
    spec = make_cluster("dgx-a100", 1)
    res, _ = run(spec, C.allreduce_ring, range(8), 1e9)
    t = C.ring_allreduce_time(8, 1e9, spec.intra_bw_Bps, spec.intra_latency_s)
    assert res.duration_s == pytest.approx(t, rel=0.01)


def test_multi_node_ring_uses_one_channel_per_nic():
    spec = make_cluster("dgx-a100", 4, nic_latency_s=5e-6, switch_latency_s=0.0)
    p, n = 32, 1e9
    res, _ = run(spec, C.allreduce_ring, range(p), n)
    # 8 channels, each on its own 25 GB/s rail and with 1/8 of the data: the ring runs at
    # min(NVLink 300 GB/s, 8 x 25 GB/s) = 200 GB/s; a step waits for the slower (NIC) edge.
    t = C.ring_allreduce_time(p, n, 8 * spec.nic_bw_Bps, spec.nic_latency_s)
    assert res.duration_s == pytest.approx(t, rel=0.01)


@pytest.mark.parametrize("preset", ["dgx-h100", "pcie-8gpu"])
@pytest.mark.parametrize("nodes", [1, 2, 4])
def test_hierarchical_matches_closed_form(preset, nodes):
    spec = make_cluster(preset, nodes, gpus_per_node=4, switch_latency_s=0.0)
    n = 512e6
    res, _ = run(spec, C.allreduce_hierarchical, range(spec.num_gpus), n, chunks=1)
    rail = spec.nic_bw_Bps * spec.nics_per_node / spec.gpus_per_node
    t = C.hierarchical_allreduce_time(nodes, 4, n, spec.intra_bw_Bps, spec.intra_latency_s,
                                      rail, spec.nic_latency_s)
    assert res.duration_s == pytest.approx(t, rel=0.01)
    # pipelining chunks can only help, and never beats the busiest stage
    piped, _ = run(spec, C.allreduce_hierarchical, range(spec.num_gpus), n, chunks=8)
    assert piped.duration_s <= res.duration_s * (1 + 1e-9)
    assert piped.duration_s >= 0.5 * res.duration_s


def test_sendrecv_is_bytes_over_bandwidth_plus_latency():
    res, _ = run(flat(4), C.sendrecv, 0, 3, 1e8)
    assert res.duration_s == pytest.approx(1e8 / B + ALPHA)


# -- contention and slow links ------------------------------------------------------------------


def test_two_allreduces_sharing_a_nic_take_twice_as_long():
    spec = make_cluster("pcie-8gpu", 2)  # one 12.5 GB/s NIC per node, 25 GB/s PCIe per GPU
    job_a = [0, 1, 2, 3, 8, 9, 10, 11]
    job_b = [4, 5, 6, 7, 12, 13, 14, 15]
    n = 1e9
    alone, _ = run(spec, C.allreduce_ring, job_a, n)
    env = simpy.Environment()
    net = Network(env, spec)
    pa = env.process(C.allreduce_ring(env, net, job_a, n))
    pb = env.process(C.allreduce_ring(env, net, job_b, n))
    env.run()
    lat = 2 * 7 * spec.nic_latency_s + spec.switch_latency_s * 14
    bw_alone = alone.duration_s - lat
    for proc in (pa, pb):
        assert proc.value.duration_s - lat == pytest.approx(2 * bw_alone, rel=0.01)
    nic = net.link("nic0.tx")
    assert nic.bytes_carried == pytest.approx(2 * 2 * 7 / 8 * n)  # both rings cross once


def test_one_slow_link_slows_the_ring():
    p, n = 8, 1e9
    fast, _ = run(flat(p, alpha=0.0), C.allreduce_ring, range(p), n)
    slow, _ = run(flat(p, alpha=0.0, link_overrides={"nic3.tx": B / 4}),
                  C.allreduce_ring, range(p), n)
    assert slow.duration_s == pytest.approx(4 * fast.duration_s, rel=0.01)


def test_events_per_collective_do_not_grow_with_gpus():
    counts = []
    for nodes in (1, 8, 64):
        _, net = run(make_cluster("dgx-h100", nodes), C.allreduce_ring, range(8 * nodes), 1e8)
        counts.append(net.flows_started)
    assert counts[0] == counts[1] == counts[2] == 1


def test_bytes_carried_on_a_ring():
    p, n = 6, 6e8
    _, net = run(flat(p), C.allreduce_ring, range(p), n)
    for i in range(p):
        assert net.link(f"nic{i}.tx").bytes_carried == pytest.approx(2 * (p - 1) / p * n)


# -- fine-grained reference: one transfer per rank per ring step ---------------------------------


def ring_allreduce_fine(env, net, ranks, nbytes):
    """Reference ring: at step s rank i sends N/p to i+1 once it has step s-1's data."""
    p = len(ranks)
    paths = [net.route(ranks[i], ranks[(i + 1) % p]) for i in range(p)]
    got = [[env.event() for _ in range(2 * (p - 1))] for _ in range(p)]

    def rank(i):
        for s in range(2 * (p - 1)):
            if s > 0:
                yield got[i][s - 1]
            yield net.transfer(paths[i], nbytes / p)
            got[(i + 1) % p][s].succeed()

    start = env.now
    yield env.all_of([env.process(rank(i)) for i in range(p)])
    return env.now - start


def _with_background(spec, coll, ranks, n, bg_start, bg_bytes):
    env = simpy.Environment()
    net = Network(env, spec)

    def background():
        yield env.timeout(bg_start)
        yield net.transfer(net.route(0, 2), bg_bytes)

    env.process(background())
    proc = env.process(coll(env, net, ranks, n))
    env.run()
    value = proc.value
    return value if isinstance(value, float) else value.duration_s


@pytest.mark.parametrize("p", [3, 4, 6])
def test_fine_grained_agrees_uncontended_and_with_slow_link(p):
    n = 3e8
    for spec in (flat(p), flat(p, link_overrides={"nic1.tx": B / 3})):
        fine, _ = run(spec, ring_allreduce_fine, range(p), n)
        flow, _ = run(spec, C.allreduce_ring, range(p), n)
        assert flow.duration_s == pytest.approx(fine, rel=0.01)
    assert run(flat(p), ring_allreduce_fine, range(p), n)[0] == pytest.approx(
        C.ring_allreduce_time(p, n, B, ALPHA), rel=1e-6)


@pytest.mark.parametrize("p", [4, 6])
def test_fine_grained_agrees_under_mid_collective_contention(p):
    """A point-to-point flow on rank 0's NIC starts mid-way: models agree within 5%."""
    n = 3e8
    spec = flat(p)
    alone = C.ring_allreduce_time(p, n, B, ALPHA)
    fine = _with_background(spec, ring_allreduce_fine, range(p), n, alone / 3, 0.2 * n)
    flow = _with_background(spec, C.allreduce_ring, range(p), n, alone / 3, 0.2 * n)
    assert fine > alone * 1.05  # the contention matters
    assert flow == pytest.approx(fine, rel=0.05)


# -- nccl-tests conventions and validation ----------------------------------------------------


def test_bandwidth_table_conventions():
    p = 8
    rows = C.collective_bandwidth_table(flat(p, alpha=0.0), "allreduce", [1e6, 1e9])
    for size, t, algbw, busbw in rows:
        assert algbw == pytest.approx(size / t)
        assert busbw == pytest.approx(algbw * 2 * (p - 1) / p)
        assert busbw == pytest.approx(B, rel=1e-6)  # ring busbw = link bandwidth
    rows = C.collective_bandwidth_table(flat(p, alpha=0.0), "all_gather", [1e9])
    assert rows[0][3] == pytest.approx(B, rel=1e-6)
    rows = C.collective_bandwidth_table(flat(p, alpha=0.0), "broadcast", [1e9])
    assert rows[0][3] == pytest.approx(rows[0][2]) == pytest.approx(B, rel=1e-6)


def test_nccl_calibration_scales_line_rates():
    spec = make_cluster("dgx-h100", 2)
    cal = C.nccl_calibrated(spec)
    assert cal.intra_bw_Bps == pytest.approx(370 * GB)  # published.csv COL-02
    assert cal.nic_bw_Bps == pytest.approx(47 * GB)  # published.csv COL-10
    pcie = make_cluster("pcie-8gpu", 1)
    assert C.nccl_calibrated(pcie).intra_bw_Bps == pcie.intra_bw_Bps


def test_concurrent_buckets_overlap_with_compute():
    """The sync-DP usage pattern: buckets started as processes while compute runs."""
    spec = flat(4, alpha=0.0)
    env = simpy.Environment()
    net = Network(env, spec)
    done = []

    def step():
        procs = []
        for _ in range(3):
            yield env.timeout(0.01)  # backward compute of one bucket
            procs.append(env.process(C.allreduce_ring(env, net, range(4), 1e8)))
        results = yield env.all_of(procs)
        done.extend(results.values())

    env.process(step())
    env.run()
    assert len(done) == 3
    one = C.ring_allreduce_time(4, 1e8, B, 0.0)
    assert env.now >= 0.01 + 3 * one - 1e-12  # the ring is the bottleneck once they overlap
    assert env.now < 0.03 + 3 * one + 1e-9


def test_bad_collective_arguments():
    spec = flat(4)
    with pytest.raises(ConfigError, match="ranks: must be distinct"):
        run(spec, C.allreduce_ring, [0, 0, 1], 1e6)
    with pytest.raises(ConfigError, match="ranks: must be GPU indices"):
        run(spec, C.allreduce_ring, [0, 9], 1e6)
    with pytest.raises(ConfigError, match="did you mean 'tree'"):
        run(spec, C.collective, "allreduce", range(4), 1e6, algo="tre")
    with pytest.raises(ConfigError, match="chunks: must be an integer >= 1"):
        run(spec, C.allreduce_ring, range(4), 1e6, chunks=0)
    uneven = make_cluster("dgx-a100", 2)
    with pytest.raises(ConfigError, match="same number of ranks on every node"):
        run(uneven, C.allreduce_hierarchical, [0, 1, 8], 1e6)
    res, _ = run(spec, C.allreduce_ring, [2], 1e6)
    assert res.duration_s == 0.0


# -- NVLS (NVLink SHARP) allreduce -------------------------------------------------------------


@pytest.mark.parametrize("device", ["h100-sxm", "h200"])
@pytest.mark.parametrize("p", [2, 4, 8])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("eff", [1.0, C.NCCL_NVLS_EFFICIENCY])
def test_nvls_allreduce_matches_closed_form(device, p, n, eff):
    cluster = make_cluster("dgx-h100", 1, gpus_per_node=p, device=device)
    res, net = run(cluster, C.allreduce_nvls, range(p), n, efficiency=eff)
    closed = C.nvls_allreduce_time(p, n, cluster.intra_bw_Bps, cluster.intra_latency_s, eff)
    assert res.duration_s == pytest.approx(closed, rel=0.01)
    assert res.algo == "nvls"
    # data movement: every GPU sends S/eff into the switch and receives S/eff, once
    carried = dict(zip([lk.id for lk in net.links], net.bytes_carried(), strict=True))
    for g in range(p):
        assert carried[f"gpu{g}.tx"] == pytest.approx(n / eff, rel=1e-9)
        assert carried[f"gpu{g}.rx"] == pytest.approx(n / eff, rel=1e-9)


def test_nvls_beats_ring_and_does_not_depend_on_p():
    n = 1e9
    t = {}
    for p in (2, 8):
        cluster = make_cluster("dgx-h100", 1, gpus_per_node=p)
        t[p] = run(cluster, C.allreduce_nvls, range(p), n, efficiency=1.0)[0].duration_s
        ring = run(cluster, C.allreduce_ring, range(p), n)[0].duration_s
        if p == 8:  # ring moves 2(p-1)/p = 1.75 S per link, NVLS 1 S
            assert ring / t[p] == pytest.approx(1.75, rel=0.01)
    assert t[2] == pytest.approx(t[8], rel=1e-9)


def test_nvls_busbw_on_dgx_h100_reproduces_its_fit_row():
    """COL-01 (the fit row): busbw 480 GB/s at 4 GiB on 8 H100, nccl-tests convention."""
    cluster = C.nccl_calibrated(make_cluster("dgx-h100", 1))
    row = C.collective_bandwidth_table(cluster, "allreduce", [4 * 2**30], "nvls")[0]
    size, t, algbw, busbw = row
    assert busbw == pytest.approx(algbw * 2 * 7 / 8)  # bus factor unchanged
    assert busbw / GB == pytest.approx(480.0, rel=1e-3)


def test_nvls_refused_outside_an_nvswitch_hopper_node():
    for cluster, ranks in ((make_cluster("dgx-a100", 1), range(8)),         # A100: no NVLS
                           (make_cluster("dgx-h100", 2), range(16)),        # spans nodes
                           (make_cluster("dgx-h100", 1, intra_link="nvlink"), range(8))):
        assert not C.nvls_supported(cluster, list(ranks))
        with pytest.raises(ConfigError, match="nvls"):
            run(cluster, C.allreduce_nvls, ranks, 1e6)
    h100 = make_cluster("dgx-h100", 2)
    assert C.nvls_supported(h100, range(8)) and C.nvls_supported(h100, range(8, 16))
    with pytest.raises(ConfigError, match="efficiency"):
        run(make_cluster("dgx-h100", 1), C.allreduce_nvls, range(8), 1e6, efficiency=1.5)
    with pytest.raises(ConfigError, match="only implemented for allreduce"):
        run(make_cluster("dgx-h100", 1), C.collective, "all_gather", range(8), 1e6, "nvls")
    res, _ = run(make_cluster("dgx-h100", 1), C.collective, "allreduce", range(8), 1e6, "nvls")
    assert res.algo == "nvls"
