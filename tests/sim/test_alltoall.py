"""Alltoall: closed form on one NVSwitch node, a hand count where the NIC is the bottleneck,
a per-pair reference model, nccl-tests' bus factor, the CLI and the rank limit."""

import pytest
import simpy
from click.testing import CliRunner

from ddlsim.api.collectives import alltoall_nic_GBps
from ddlsim.cli import cli
from ddlsim.errors import ConfigError
from ddlsim.sim import collectives as C
from ddlsim.sim.network import Network
from ddlsim.sim.topology import make_cluster

TOL = 1e-6  # the fluid model is exact on these symmetric, uncontended clusters


def run(spec, ranks, nbytes):
    env = simpy.Environment()
    net = Network(env, spec)
    proc = env.process(C.alltoall(env, net, list(ranks), nbytes))
    env.run(until=proc)
    return proc.value, net


@pytest.mark.parametrize("n", [2, 3, 4, 8])
@pytest.mark.parametrize("nbytes", [1e6, 1e9])
def test_alltoall_single_nvswitch_node_closed_form(n, nbytes):
    spec = make_cluster("dgx-h100", 1)
    res, _ = run(spec, range(n), nbytes)
    want = C.alltoall_time(n, nbytes, spec.intra_bw_Bps, spec.intra_latency_s)
    assert want == pytest.approx((n - 1) / n * nbytes / spec.intra_bw_Bps
                                 + spec.intra_latency_s)
    assert res.duration_s == pytest.approx(want, rel=TOL)
    assert (res.op, res.algo, res.num_ranks) == ("alltoall", "p2p", n)


def test_alltoall_two_nodes_nic_bound_hand_count():
    # 2 DGX-H100 nodes, 16 GPUs, one NIC per GPU. Each GPU sends S/16 to each of the 8 GPUs
    # of the other node: S/2 through its own NIC (50 GB/s) -> S/2 / 50 GB/s; intra-node
    # 7/16 S over 450 GB/s NVLink finishes far earlier. Latency: NIC + one leaf switch.
    spec = make_cluster("dgx-h100", 2)
    S = 4 * 2**30
    res, net = run(spec, range(16), S)
    want = (S / 2) / spec.nic_bw_Bps + spec.nic_latency_s + spec.switch_latency_s
    assert res.duration_s == pytest.approx(want, rel=1e-3)
    algbw = S / res.duration_s
    assert algbw == pytest.approx(2 * spec.nic_bw_Bps, rel=1e-3)  # ~100 GB/s
    carried = net.bytes_carried()
    kinds = list(net.links.kinds)
    nic_tx = [c for c, k in zip(carried, kinds, strict=True) if k == "nic_tx"]
    gpu_tx = [c for c, k in zip(carried, kinds, strict=True) if k == "gpu_tx"]
    assert nic_tx == pytest.approx([S / 2] * 16)
    assert gpu_tx == pytest.approx([7 / 16 * S] * 16)
    # per NIC (COL-11's metric): the NIC line rate, here after NCCL's 47/50 efficiency
    assert alltoall_nic_GBps(spec) == pytest.approx(47.0, rel=1e-3)


def _per_pair(spec, ranks, nbytes):
    """Reference: one flow per (src, dst) pair, all started at once, max-min fair."""
    env = simpy.Environment()
    net = Network(env, spec)
    ranks = list(ranks)
    done = [net.transfer(net.route(s, d), nbytes / len(ranks))
            for s in ranks for d in ranks if s != d]

    def proc():
        yield env.all_of(done)

    env.run(until=env.process(proc()))
    return env.now


@pytest.mark.parametrize("nodes,gpn,nics", [(1, 8, 8), (2, 4, 4), (3, 4, 2), (4, 2, 1)])
def test_alltoall_matches_per_pair_flows(nodes, gpn, nics):
    spec = make_cluster("dgx-a100", nodes, gpus_per_node=gpn, nics_per_node=nics)
    ranks = range(nodes * gpn)
    res, _ = run(spec, ranks, 1e9)
    assert res.duration_s == pytest.approx(_per_pair(spec, ranks, 1e9), rel=1e-6)


def test_alltoall_shares_links_with_other_traffic():
    spec = make_cluster("dgx-h100", 2)
    env = simpy.Environment()
    net = Network(env, spec)
    S = 2**30
    a = env.process(C.alltoall(env, net, list(range(16)), S))
    b = env.process(C.alltoall(env, net, list(range(16)), S))
    env.run(until=env.all_of([a, b]))
    alone, _ = run(spec, range(16), S)
    assert a.value.duration_s == pytest.approx(2 * alone.duration_s, rel=1e-3)


def test_alltoall_bus_factor_and_table():
    assert C.bus_factor("alltoall", 8) == pytest.approx(7 / 8)
    assert C.bus_factor("alltoall", 1) == 0.0
    spec = make_cluster("dgx-h100", 1)
    (size, t, algbw, busbw), = C.collective_bandwidth_table(spec, "alltoall", [2**30])
    assert algbw == pytest.approx(size / t)
    assert busbw == pytest.approx(algbw * 7 / 8)


def test_alltoall_trivial_and_bad_input():
    spec = make_cluster("dgx-h100", 1)
    assert run(spec, [3], 1e9)[0].duration_s == 0.0
    assert run(spec, range(8), 0.0)[0].duration_s == pytest.approx(spec.intra_latency_s)
    with pytest.raises(ConfigError, match="nbytes"):
        run(spec, range(8), -1.0)
    with pytest.raises(ConfigError, match="chunks"):
        env = simpy.Environment()
        list(C.alltoall(env, Network(env, spec), range(8), 1.0, chunks=0))


def test_alltoall_refuses_too_many_ranks():
    spec = make_cluster("cpu-cluster", C.MAX_ALLTOALL_RANKS + 1)
    with pytest.raises(ConfigError, match=r"at most 4,096 ranks"):
        run(spec, range(spec.num_gpus), 1e6)


def test_alltoall_cli():
    out = CliRunner().invoke(cli, ["collectives", "--cluster", "dgx-h100", "--nodes", "2",
                                   "--op", "alltoall", "--min-bytes", "1G", "--max-bytes",
                                   "1G", "--raw", "--json"])
    assert out.exit_code == 0, out.output
    import json

    data = json.loads(out.output)
    assert (data["op"], data["algo"], data["gpus"]) == ("alltoall", "p2p", 16)
    row, = data["rows"]
    assert row["algbw"] == pytest.approx(2 * 50e9, rel=1e-3)
    assert row["busbw"] == pytest.approx(row["algbw"] * 15 / 16)


def test_a_per_nic_alltoall_row_reports_the_busiest_nic_not_busbw_over_nics():
    from ddlsim import api
    from ddlsim.api.collectives import alltoall_nic_GBps, busbw_GBps
    from ddlsim.api.dp import cluster_for

    strategy = api.Strategy("collective", op="alltoall", sizes_bytes=(2**30,), per_nic=True)
    job = api.Job(cluster=api.Cluster("dgx-h100", 16), strategy=strategy)
    got = api.predict(job).busbw_Bps / 1e9
    cluster = cluster_for("dgx-h100", 16, calibrated=False)
    assert got == alltoall_nic_GBps(cluster, [2**30])
    assert got > busbw_GBps(cluster, "alltoall", sizes=[2**30]) / cluster.nics_per_node
