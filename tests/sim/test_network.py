"""The fluid flow model: sharing, max-min fairness, latency, counters."""

import numpy as np
import pytest
import simpy

from ddlsim.errors import ConfigError
from ddlsim.sim.network import Network
from ddlsim.sim.topology import make_cluster

GB = 1e9


def _net(nodes=4, bw=1 * GB, lat=0.0):
    """Flat cluster: one device per node, every NIC link ``bw`` bytes/s."""
    env = simpy.Environment()
    spec = make_cluster("cpu-cluster", nodes, nic_bw_Bps=bw, nic_latency_s=lat,
                        switch_latency_s=0.0, nodes_per_leaf=nodes)
    return env, Network(env, spec)


def _finish_times(env, events):
    times = {}
    for name, ev in events.items():
        ev.callbacks.append(lambda _e, n=name: times.__setitem__(n, env.now))
    env.run()
    return times


def test_single_flow_takes_bytes_over_bandwidth_plus_latency():
    env, net = _net(lat=5e-6)
    times = _finish_times(env, {"a": net.transfer(net.route(0, 1), 2 * GB)})
    assert times["a"] == pytest.approx(2.0 + 5e-6, rel=1e-12)


def test_two_flows_on_one_link_share_it():
    env, net = _net()
    nic = [net.link("nic0.tx").index]
    times = _finish_times(env, {"a": net.transfer(nic, GB), "b": net.transfer(nic, GB)})
    assert times == pytest.approx({"a": 2.0, "b": 2.0})


def test_flow_arriving_mid_transfer_changes_rates():
    env, net = _net()
    nic = [net.link("nic0.tx").index]
    times = {}

    def late():
        yield env.timeout(0.5)
        yield net.transfer(nic, GB)
        times["b"] = env.now

    def early():
        yield net.transfer(nic, GB)
        times["a"] = env.now

    env.process(early())
    env.process(late())
    env.run()
    # a: 0.5 GB alone, then 0.5 GB at half rate -> 1.5 s; b: 0.5 GB shared, 0.5 GB alone.
    assert times == pytest.approx({"a": 1.5, "b": 2.0}, rel=1e-9)


def test_max_min_gives_leftover_to_unconstrained_flow():
    env, net = _net()
    net.set_capacity("nic1.rx", 10 * GB)
    slow = [net.link("nic0.tx").index, net.link("nic1.rx").index]  # bottleneck 1 GB/s
    fast = [net.link("nic1.rx").index]
    times = _finish_times(env, {"slow": net.transfer(slow, GB), "fast": net.transfer(fast, 9 * GB)})
    # max-min: slow gets 1 GB/s (its own bottleneck), fast gets the remaining 9 GB/s.
    assert times["slow"] == pytest.approx(1.0)
    assert times["fast"] == pytest.approx(1.0)


def test_weight_counts_repeated_link():
    env, net = _net()
    i = net.link("nic2.tx").index
    times = _finish_times(env, {"a": net.transfer([i, i], GB)})
    assert times["a"] == pytest.approx(2.0)
    assert net.link("nic2.tx").bytes_carried == pytest.approx(2 * GB)


def test_counters_bytes_and_busy_time():
    env, net = _net()
    a = net.route(0, 1)
    b = net.route(0, 2)

    def job():
        yield net.transfer(a, GB)  # 0..1 s alone on nic0.tx
        yield env.timeout(1.0)  # idle 1..2
        yield net.transfer(b, 0.5 * GB)  # 2..2.5

    env.process(job())
    env.run()
    assert net.link("nic0.tx").bytes_carried == pytest.approx(1.5 * GB)
    assert net.link("nic0.tx").busy_s == pytest.approx(1.5)
    assert net.link("nic1.rx").busy_s == pytest.approx(1.0)
    assert net.link("nic3.tx").bytes_carried == 0.0
    rows = {r["id"]: r for r in net.link_stats()}
    assert rows["nic0.tx"]["utilization"] == pytest.approx(1.5 / 2.5)


def test_bytes_carried_counts_running_flows():
    env, net = _net()
    net.transfer(net.route(0, 1), GB)
    env.run(until=0.25)
    assert net.bytes_carried()[net.link("nic0.tx").index] == pytest.approx(0.25 * GB)
    assert net.busy_time_s()[net.link("nic0.tx").index] == pytest.approx(0.25)


def test_set_capacity_mid_flight():
    env, net = _net()
    ev = net.transfer(net.route(0, 1), GB)

    def degrade():
        yield env.timeout(0.5)
        net.set_capacity("nic0.tx", 0.25 * GB)

    env.process(degrade())
    times = _finish_times(env, {"a": ev})
    assert times["a"] == pytest.approx(0.5 + 0.5 / 0.25)


def test_many_simultaneous_flows_and_zero_byte_and_local_transfers():
    env, net = _net(nodes=8)
    evs = {f"f{i}": net.transfer(net.route(0, i), GB) for i in range(1, 8)}
    evs["zero"] = net.transfer(net.route(0, 1), 0.0)
    evs["local"] = net.transfer(net.route(3, 3), GB)
    times = _finish_times(env, evs)
    assert times["zero"] == 0.0 and times["local"] == 0.0
    for i in range(1, 8):
        assert times[f"f{i}"] == pytest.approx(7.0)


def test_randomised_conservation_and_capacity():
    """Random flows: each link carries sum(weight x bytes); no link beyond capacity x time."""
    rng = np.random.default_rng(7)
    env, net = _net(nodes=6)
    expected = np.zeros(len(net.links))

    def job(links, nbytes, delay):
        yield env.timeout(delay)
        yield net.transfer(links, nbytes)

    for _ in range(40):
        links = list(rng.choice(len(net.links), size=int(rng.integers(1, 5))))
        nbytes = float(rng.uniform(0.1, 2.0)) * GB
        for i in links:
            expected[i] += nbytes
        env.process(job(links, nbytes, float(rng.uniform(0, 3))))
    env.run()
    carried = net.bytes_carried()
    np.testing.assert_allclose(carried, expected, rtol=1e-9, atol=1.0)
    caps = np.array([link.capacity_Bps for link in net.links])
    assert np.all(carried <= caps * net.busy_time_s() * (1 + 1e-9) + 1.0)
    assert net.active_flows == 0


def test_bad_inputs():
    env, net = _net()
    with pytest.raises(ConfigError, match="nbytes: must be >= 0"):
        net.transfer(net.route(0, 1), -1.0)
    with pytest.raises(ConfigError, match="did you mean 'nic0.tx'"):
        net.link("nic0.txx")
    with pytest.raises(ConfigError, match="links: indices must be in"):
        net.transfer([10_000], 1.0)


# -- the optimised engine against a straightforward fluid simulation ---------------------------
def _reference_max_min(caps, flows):
    """Weighted max-min rates by textbook progressive filling (no memo, no shortcuts).

    ``caps``: capacity per link (B/s); ``flows``: list of {link: weight}. Returns rates (B/s).
    """
    rates = [0.0] * len(flows)
    unfrozen = set(range(len(flows)))
    used = {i: 0.0 for f in flows for i in f}
    while unfrozen:
        load = {i: 0.0 for i in used}
        for k in unfrozen:
            for i, w in flows[k].items():
                load[i] += w
        share = {i: (caps[i] - used[i]) / load[i] for i in used if load[i] > 0}
        level = min(share.values())
        tight = {i for i, s in share.items() if s <= level * (1 + 1e-12)}
        for k in [k for k in unfrozen if tight & flows[k].keys()]:
            rates[k] = level
            unfrozen.discard(k)
            for i, w in flows[k].items():
                used[i] += w * level
    return rates


def _reference_finish_times(caps, starts, paths, sizes, changes):
    """Completion time (s) of each flow, recomputing max-min rates at every event.

    ``starts`` (s), ``paths`` ({link: weight}), ``sizes`` (bytes per unit weight);
    ``changes``: (time s, link, new capacity B/s) applied in time order.
    """
    caps = list(caps)
    remaining = list(sizes)
    finish = [None] * len(sizes)
    pending = sorted(range(len(sizes)), key=lambda k: starts[k])
    changes = sorted(changes)
    active, t = [], 0.0
    while pending or active:
        while pending and starts[pending[0]] <= t:
            active.append(pending.pop(0))
        while changes and changes[0][0] <= t:
            _, link, bw = changes.pop(0)
            caps[link] = bw
        rates = _reference_max_min(caps, [paths[k] for k in active])
        horizon = [starts[pending[0]] - t] if pending else []
        horizon += [changes[0][0] - t] if changes else []
        horizon += [remaining[k] / r for k, r in zip(active, rates, strict=True)]
        dt = min(horizon)
        t += dt
        for k, r in zip(active, rates, strict=True):
            remaining[k] -= r * dt
        for k in [k for k in active if remaining[k] <= 1e-9 * sizes[k]]:
            finish[k] = t
            active.remove(k)
    return finish


def _engine_finish_times(net, env, starts, links, sizes, changes):
    times = {}

    def job(k):
        yield env.timeout(starts[k])
        yield net.transfer(links[k], sizes[k])
        times[k] = env.now

    def change(t, link, bw):
        yield env.timeout(t)
        net.set_capacity(net.links[link].id, bw)

    for k in range(len(sizes)):
        env.process(job(k))
    for t, link, bw in changes:
        env.process(change(t, link, bw))
    env.run()
    return [times[k] for k in range(len(sizes))]


def _random_case(seed, nodes=6):
    """Random flows over a few links (repeats = weight 2), some on identical paths (so the
    same active sets recur), starts on a coarse grid (so some coincide), random capacities
    and, for odd seeds, two capacity changes in flight."""
    rng = np.random.default_rng(seed)
    env, net = _net(nodes=nodes)
    n_links = len(net.links)
    caps = rng.uniform(0.5, 4.0, n_links) * GB
    for link, bw in zip(net.links, caps, strict=True):
        net.set_capacity(link.id, float(bw))
    shared = [list(rng.choice(n_links, size=int(rng.integers(1, 5)))) for _ in range(4)]
    links, starts, sizes = [], [], []
    for _ in range(int(rng.integers(5, 40))):
        if rng.random() < 0.5:
            links.append(shared[int(rng.integers(len(shared)))])
        else:
            links.append(list(rng.choice(n_links, size=int(rng.integers(1, 6)))))
        starts.append(float(rng.integers(0, 12)) * 0.25)
        sizes.append(float(rng.uniform(0.05, 3.0)) * GB)
    changes = []
    if seed % 2:
        changes = [(float(rng.uniform(0.1, 3.0)), int(rng.integers(n_links)),
                    float(rng.uniform(0.5, 4.0)) * GB) for _ in range(2)]
    paths = [dict(zip(*np.unique(p, return_counts=True), strict=True)) for p in links]
    ref = _reference_finish_times(caps, starts, paths, sizes, changes)
    return env, net, (starts, links, sizes, changes), ref


@pytest.mark.parametrize("seed", range(24))
def test_engine_matches_reference_fluid_simulation(seed):
    env, net, case, ref = _random_case(seed)
    got = _engine_finish_times(net, env, *case)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
    assert net.active_flows == 0


@pytest.mark.parametrize("seed", range(6))
def test_engine_variants_agree_bit_for_bit(seed, monkeypatch):
    """Small-set filling, NumPy filling, short-path counters and the memo give identical
    completion times (they perform the same float operations in the same order)."""
    import ddlsim.sim.network as network

    env, net, case, _ = _random_case(seed)
    base = _engine_finish_times(net, env, *case)
    memo_used = len(net._memo) > 0
    monkeypatch.setattr(network, "_SMALL_INCIDENCES", 0)
    monkeypatch.setattr(network, "_MEMO_MAX_FLOWS", 0)
    monkeypatch.setattr(network, "_SHORT_PATH", 0)
    env, net, case, _ = _random_case(seed)
    assert _engine_finish_times(net, env, *case) == base
    assert memo_used and len(net._memo) == 0


def test_recurring_active_set_in_another_order_gets_its_own_rates():
    """The same two paths active again, started in the opposite order: each flow must get
    its own path's rate back (the rate memo is keyed by paths in start order)."""
    env, net = _net()
    net.set_capacity("nic1.tx", 2 * GB)
    net.set_capacity("nic3.rx", 2 * GB)
    a, b = net.route(0, 2), net.route(1, 3)  # 1 GB/s and 2 GB/s paths
    c = net.path([net.link("nic0.tx").index])  # shares nic0.tx with a
    starts = [0.0, 0.0, 0.0, 10.0, 10.0, 10.0]
    links = [a, b, c, b, c, a]
    sizes = [GB, 2 * GB, GB, 2 * GB, GB, GB]
    got = _engine_finish_times(net, env, starts, links, sizes, [])
    caps = [link.capacity_Bps for link in net.links]
    paths = [dict(zip(p.idx.tolist(), p.weights.tolist(), strict=True)) for p in links]
    ref = _reference_finish_times(caps, starts, paths, sizes, [])
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert got == pytest.approx([2.0, 1.0, 2.0, 11.0, 12.0, 12.0])  # a, c halve nic0.tx
