"""Exact aggregation of links into classes (sim.flows.LinkClasses): the fluid network keeps
one counter per class of equivalent links, so a symmetric collective over thousands of
GPUs costs a few class updates per flow. The aggregated network must give the per-link
model's numbers (Network(aggregate=False)) exactly; tolerance: none (== on every time
and counter), since both do the same float operations in the same order."""

import numpy as np
import pytest
import simpy

from ddlsim.errors import ConfigError
from ddlsim.sim.collective_plans import edge_links, hierarchical_stages
from ddlsim.sim.collectives import collective, sendrecv
from ddlsim.sim.flows import LinkClasses
from ddlsim.sim.network import Network
from ddlsim.sim.sync_dp import StepCost, SyncDPConfig, simulate_sync_dp
from ddlsim.sim.topology import make_cluster, route


def _scenario(cluster, aggregate: bool):
    """Overlapping collectives (hierarchical with ring and tree inter-node stages, a flat
    ring over a subset, a point-to-point flow on one NIC) and a link slowed mid-flight:
    symmetric and non-symmetric load on one network. Returns (event log, network)."""
    env = simpy.Environment()
    net = Network(env, cluster, aggregate=aggregate)
    ranks = tuple(range(cluster.num_gpus))
    log = []

    def run(name, gen, delay=0.0):
        if delay:
            yield env.timeout(delay)
        res = yield env.process(gen)
        log.append((name, res.start_s, res.end_s))

    for i, size in enumerate((25e6, 3e5, 80e6)):
        env.process(run(f"hier{i}", collective(env, net, "allreduce", ranks, size,
                                               "hierarchical"), delay=i * 2e-4))
    env.process(run("ring", collective(env, net, "allreduce", ranks[8:40], 10e6), 1e-4))
    env.process(run("p2p", sendrecv(env, net, 3, cluster.num_gpus - 5, 50e6), 3e-4))

    def slow():
        yield env.timeout(5e-4)
        net.set_capacity("nic7.rx", 2e9)

    env.process(slow())
    env.run()
    return log, net


@pytest.mark.parametrize("nodes, per_leaf", [(8, 32), (16, 4), (32, 3)])
def test_aggregated_network_matches_the_per_link_model_exactly(nodes, per_leaf):
    cluster = make_cluster("dgx-h100", nodes, nodes_per_leaf=per_leaf)  # 64-256 GPUs
    log, net = _scenario(cluster, aggregate=True)
    ref_log, ref = _scenario(cluster, aggregate=False)
    assert log == ref_log
    assert np.array_equal(net.bytes_carried(), ref.bytes_carried())
    assert np.array_equal(net.busy_time_s(), ref.busy_time_s())
    assert net.link_stats() == ref.link_stats()
    assert ref.link_classes == len(ref.links)
    assert net.link_classes < len(net.links) / 4  # the point of it


def _grad_cost() -> StepCost:
    return StepCost(layer_names=("a", "b", "c"), fwd_s=np.array([1e-3, 2e-3, 1e-3]),
                    fwd_bounds=np.array([0, 1, 2, 3]), bwd_s=np.array([2e-3, 4e-3, 2e-3]),
                    bwd_bounds=np.array([0, 1, 2, 3]),
                    bwd_grad_bytes=np.array([30e6, 40e6, 20e6]), update_s=5e-4)


def _sync_dp(cluster, aggregate: bool, slow_gpus):
    env = simpy.Environment()
    net = Network(env, cluster, aggregate=aggregate)
    ranks = tuple(range(cluster.num_gpus))

    def allreduce(env, nbytes):
        yield from collective(env, net, "allreduce", ranks, nbytes, "hierarchical")

    cfg = SyncDPConfig(iterations=4, bucket_bytes=25e6, slow_gpus=slow_gpus)
    res = simulate_sync_dp([_grad_cost()] * cluster.num_gpus, allreduce, cfg, env=env)
    return res, net


@pytest.mark.parametrize("slow_gpus", [{}, {17: 1.7}])
def test_sync_dp_on_the_aggregated_network_equals_the_per_link_one(slow_gpus):
    cluster = make_cluster("dgx-a100", 32, nodes_per_leaf=8, link_overrides={"nic9.tx": 9e9})
    res, net = _sync_dp(cluster, True, slow_gpus)
    ref, ref_net = _sync_dp(cluster, False, slow_gpus)
    assert res.buckets == ref.buckets
    assert res.iteration_end.tolist() == ref.iteration_end.tolist()
    assert net.link_stats() == ref_net.link_stats()


def test_a_slow_link_is_a_class_of_its_own_and_slows_its_rail():
    cluster = make_cluster("dgx-h100", 8, link_overrides={"nic3.tx": 5e9})
    env = simpy.Environment()
    net = Network(env, cluster)
    ranks = tuple(range(cluster.num_gpus))
    proc = env.process(collective(env, net, "allreduce", ranks, 1e8, "hierarchical"))
    env.run()
    fast = Network(simpy.Environment(), make_cluster("dgx-h100", 8))
    fproc = fast.env.process(collective(fast.env, fast, "allreduce", ranks, 1e8,
                                        "hierarchical"))
    fast.env.run()
    assert proc.value.duration_s > 1.5 * fproc.value.duration_s
    stats = {r["id"]: r for r in net.link_stats()}
    assert stats["nic3.tx"]["bytes_carried"] == stats["nic4.tx"]["bytes_carried"]
    assert stats["nic3.tx"]["utilization"] > 5 * stats["nic4.tx"]["utilization"]


def test_a_symmetric_allreduce_touches_the_same_few_classes_at_any_scale():
    counts = []
    for nodes in (256, 2048):  # 2,048 and 16,384 GPUs
        env = simpy.Environment()
        net = Network(env, make_cluster("dgx-h100", nodes))
        ranks = tuple(range(net.cluster.num_gpus))
        env.process(collective(env, net, "allreduce", ranks, 25e6, "hierarchical"))
        env.run()
        assert len(hierarchical_stages(net, ranks, 25e6)) == 3
        counts.append(net.link_classes)
    assert counts[0] == counts[1] <= 8


def test_refined_classes_keep_their_invariants():
    rng = np.random.default_rng(3)
    cap = rng.choice([1.0, 2.0, 3.0], size=200)
    lc = LinkClasses(cap)
    paths = []
    for _ in range(60):
        idx = np.unique(rng.choice(200, size=int(rng.integers(1, 120))))
        w = rng.integers(1, 4, size=idx.size).astype(float)
        lc.refine(idx, w)
        paths.append((idx, w))
    cls = lc.cls_of
    assert np.bincount(cls, minlength=lc.n)[:lc.n].tolist() == lc.size[:lc.n].tolist()
    for c in range(lc.n):
        members = np.flatnonzero(cls == c)
        assert members[0] == lc.minm[c]
        assert set(cap[members]) == {lc.cap[c]}
    for idx, w in paths:  # every path covers whole classes, one weight per class
        weight = np.zeros(200)
        weight[idx] = w
        for c in range(lc.n):
            assert len(set(weight[cls == c])) == 1
        rep = lc.rep(idx, w)
        assert sorted(rep.ids) == sorted(set(cls[idx].tolist()))


def test_aggregate_must_be_a_bool():
    with pytest.raises(ConfigError, match="aggregate"):
        LinkClasses(np.ones(3), aggregate="yes")


@pytest.mark.parametrize("channels", [1, 2, 8])
def test_edge_links_are_route_for_every_edge(channels):
    spec = make_cluster("dgx-h100", 7, nodes_per_leaf=2, nics_per_node=4)
    rng = np.random.default_rng(channels)
    src = rng.integers(0, spec.num_gpus, size=300)
    dst = rng.integers(0, spec.num_gpus, size=300)
    dst[:20] = src[:20]  # a GPU to itself: no links
    dst[20:60] = src[20:60] // 8 * 8 + (src[20:60] + 1) % 8  # same node
    links, lat = edge_links(spec, src, dst, channels)
    want, want_lat = [], 0.0
    for a, b in zip(src.tolist(), dst.tolist(), strict=True):
        if a // 8 == b // 8:
            hop, h_lat = route(spec, a, b)
            want += hop * channels
        else:
            hop, h_lat = [], 0.0
            for ch in range(channels):
                more, h_lat = route(spec, a, b, ch if channels > 1 else None)
                hop += more
            want += hop
        want_lat = max(want_lat, h_lat)
    assert sorted(links.tolist()) == sorted(want)
    assert lat == want_lat


def _random_flows(aggregate: bool, seed: int):
    """Flows over random link sets (repeats are weights) with random sizes and starts,
    on links of random capacities, one changed mid-flight: many partly shared classes."""
    rng = np.random.default_rng(seed)
    cluster = make_cluster("dgx-a100", 4, nodes_per_leaf=2)
    env = simpy.Environment()
    net = Network(env, cluster, aggregate=aggregate)
    n = len(net.links)
    for i in rng.choice(n, size=20, replace=False).tolist():
        net.set_capacity(net.links[i].id, float(rng.choice([1e9, 2e9, 5e9])))
    done = []
    base = rng.choice(n, size=60, replace=False)  # shared by many flows: large classes

    def flow(k):
        yield env.timeout(float(rng.choice([0.0, 0.1, 0.25])))
        links = base.tolist() * int(rng.integers(1, 3))
        links += rng.choice(n, size=int(rng.integers(1, 40))).tolist()
        yield net.transfer(links, float(rng.integers(1, 20)) * 1e8)
        done.append((k, env.now))

    def slow():
        yield env.timeout(0.3)
        net.set_capacity(net.links[int(base[0])].id, 7e8)

    for k in range(12):
        env.process(flow(k))
    env.process(slow())
    env.run()
    return done, net


@pytest.mark.parametrize("seed", range(4))
def test_random_flows_agree_with_the_per_link_model(seed):
    done, net = _random_flows(True, seed)
    ref_done, ref = _random_flows(False, seed)
    assert done == ref_done
    assert np.array_equal(net.bytes_carried(), ref.bytes_carried())
    assert np.array_equal(net.busy_time_s(), ref.busy_time_s())


def _old_hierarchical_paths(net, ranks):
    """The per-edge construction the plans had before edge arrays (reference)."""
    from ddlsim.sim.collective_plans import double_tree_parents

    groups: dict[int, list[int]] = {}
    for r in ranks:
        groups.setdefault(r // net.cluster.gpus_per_node, []).append(r)
    grp = list(groups.values())
    n, g = len(grp), len(grp[0])

    def path(edges):
        links = [i for a, b in edges for i in route(net.cluster, a, b)[0]]
        p = net.path(links)
        return p.idx.tolist(), p.weights.tolist()

    intra = path([(x[i], x[(i + 1) % g]) for x in grp for i in range(g)])
    ring = path([(grp[j][r], grp[(j + 1) % n][r]) for r in range(g) for j in range(n)])
    tree = []
    for parents in double_tree_parents(n):
        for child, par in enumerate(parents):
            if par >= 0:
                tree += [(grp[child][r], grp[par][r]) for r in range(g)]
                tree += [(grp[par][r], grp[child][r]) for r in range(g)]
    return intra, ring, path(tree)


@pytest.mark.parametrize("nbytes", [1e9, 1e3])  # ring, tree between nodes
def test_hierarchical_paths_over_shuffled_ranks_are_the_per_edge_ones(nbytes):
    net = Network(simpy.Environment(), make_cluster("dgx-a100", 12, nodes_per_leaf=5))
    rng = np.random.default_rng(5)
    nodes = rng.permutation(12)[:9]
    ranks = [int(nd * 8 + r) for nd in nodes for r in rng.permutation(8)[:4]]
    ranks = [ranks[i] for i in rng.permutation(len(ranks))]  # nodes interleaved
    stages = hierarchical_stages(net, ranks, nbytes)
    got = [(s.path.idx.tolist(), s.path.weights.tolist()) for s in stages]
    intra, ring, tree = _old_hierarchical_paths(net, ranks)
    assert got == [intra, ring if nbytes > 1e6 else tree, intra]
