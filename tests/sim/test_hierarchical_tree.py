"""Hierarchical allreduce picks a ring or a double binary tree for its inter-node stage by
the closed-form time, as NCCL's tuner does: at thousands of nodes the ring's 2(n-1)
latencies would dominate."""

import math

import simpy

from ddlsim.sim.collective_plans import hierarchical_stages
from ddlsim.sim.network import Network
from ddlsim.sim.topology import make_cluster


def _stages(nodes: int, nbytes: float):
    net = Network(simpy.Environment(), make_cluster("dgx-h100", nodes))
    return net, hierarchical_stages(net, list(range(net.cluster.num_gpus)), nbytes)


def test_few_nodes_and_a_large_message_keep_the_ring():
    _, stages = _stages(2, 1e9)
    inter = stages[1]
    assert math.isclose(inter.bytes_per_byte, 2 * (2 - 1) / 2 / 8)


def test_thousands_of_nodes_use_a_tree_with_logarithmic_latency():
    net, stages = _stages(2048, 25e6)
    inter = stages[1]
    assert math.isclose(inter.bytes_per_byte, 0.5 / 8)  # the tree's N/2 per rail and edge
    hop = net.cluster.nic_latency_s
    assert inter.latency_s < 2 * 2 * math.log2(2048) * hop * 4  # far below 2 x 2047 hops
    assert inter.latency_s < 0.01 * 2 * 2047 * hop
