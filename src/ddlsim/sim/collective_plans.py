"""Which links a collective uses: ring, double-binary-tree and hierarchical plans over a
cluster's ranks (cached on the :class:`~ddlsim.sim.network.Network`), and the pipelined
:class:`Stage` a plan becomes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ddlsim.errors import ConfigError
from ddlsim.sim.flows import Path
from ddlsim.sim.network import Network
from ddlsim.sim.topology import ClusterSpec, route


@dataclass(frozen=True)
class Stage:
    """One pipelined stage: a path, bytes per unit link weight per whole message, latency."""

    path: Path
    bytes_per_byte: float  # link volume (per unit weight) per byte of message
    latency_s: float


def check_ranks(net: Network, ranks: Sequence[int]) -> tuple[int, ...]:
    """``ranks`` as a tuple; ConfigError unless they are distinct GPU indices of ``net``.
    The tuple last checked on ``net`` is remembered, so a collective called once per
    bucket over the same (large) rank tuple is checked once."""
    if ranks is net.cache.get("checked_ranks"):
        return ranks  # type: ignore[return-value]
    given = ranks
    ranks = tuple(int(r) for r in ranks)
    n = net.cluster.num_gpus
    if not ranks:
        raise ConfigError("ranks: must not be empty")
    if len(set(ranks)) != len(ranks):
        raise ConfigError(f"ranks: must be distinct, got {ranks!r:.80}")
    if min(ranks) < 0 or max(ranks) >= n:
        raise ConfigError(f"ranks: must be GPU indices in [0, {n}), got {ranks!r:.80}")
    if isinstance(given, tuple) and given == ranks:
        net.cache["checked_ranks"] = given
        return given
    return ranks


def spans_nodes(cluster: ClusterSpec, ranks: Sequence[int]) -> bool:
    """True when ``ranks`` sit on more than one node of ``cluster``."""
    gpn = cluster.gpus_per_node
    return len({r // gpn for r in ranks}) > 1


def _edges_path(net: Network, edges: Sequence[tuple[int, int]], channels: int
                ) -> tuple[Path, float]:
    """Path for ``edges`` on every channel (intra-node edges shared by all channels)."""
    cluster, gpn = net.cluster, net.cluster.gpus_per_node
    links: list[int] = []
    lat = 0.0
    for a, b in edges:
        if a // gpn == b // gpn:
            hop, h_lat = route(cluster, a, b)
            links.extend(hop * channels)
            lat = max(lat, h_lat)
        else:
            for ch in range(channels):
                hop, h_lat = route(cluster, a, b, ch if channels > 1 else None)
                links.extend(hop)
                lat = max(lat, h_lat)
    return net.path(links), lat


def ring_plan(net: Network, ranks: Sequence[int], channels: int | None = None,
              closed: bool = True) -> tuple[Path, float, int]:
    """``(path, per-step latency s, channels)`` of a ring over ``ranks`` (cached).

    ``channels`` defaults to the cluster's NICs per node when the ring spans nodes (NCCL
    opens one ring per NIC rail), else 1. ``closed=False`` gives the open chain used by
    broadcast.
    """
    ranks = tuple(ranks)
    if channels is None:
        channels = net.cluster.nics_per_node if spans_nodes(net.cluster, ranks) else 1
    if channels < 1:
        raise ConfigError(f"channels: must be >= 1, got {channels}")
    key = ("ring", ranks, channels, closed)
    plan = net.cache.get(key)
    if plan is None:
        p = len(ranks)
        n_edges = p if closed else p - 1
        edges = [(ranks[i], ranks[(i + 1) % p]) for i in range(n_edges)] if p > 1 else []
        path, lat = _edges_path(net, edges, channels)
        plan = (path, lat, channels)
        net.cache[key] = plan
    return plan  # type: ignore[return-value]


def binary_tree_parents(p: int) -> list[int]:
    """Parent position of each position ``0..p-1`` in an in-order balanced binary tree
    (root's parent is -1). Label ``x = pos + 1``; odd labels are leaves; the root is the
    largest power of two <= p; height is ``floor(log2 p)``."""
    parent = [-1] * p
    for x in range(1, p + 1):
        b = x & -x
        if b == 1:
            continue
        half = b // 2
        parent[x - half - 1] = x - 1  # left child always exists
        right = x + half
        while right > p and half > 1:
            half //= 2
            right = x + half
        if right <= p and right != x:
            parent[right - 1] = x - 1
    return parent


def double_tree_parents(p: int) -> tuple[list[int], list[int]]:
    """Parents (positions) of the two trees of a double binary tree over ``p`` positions."""
    t1 = binary_tree_parents(p)
    # even p: mirror (leaves <-> interior); odd p: shift by one
    perm = [p - 1 - i if p % 2 == 0 else (i + 1) % p for i in range(p)]
    # tree 2: position perm[i] plays the role that position i plays in tree 1
    t2 = [-1] * p
    for i, par in enumerate(t1):
        t2[perm[i]] = perm[par] if par >= 0 else -1
    return t1, t2


def tree_height(parent: Sequence[int]) -> int:
    """Largest depth of any position in the tree given by ``parent`` (root: 0)."""
    best = 0
    for i in range(len(parent)):
        depth, j = 0, i
        while parent[j] >= 0:
            j = parent[j]
            depth += 1
        best = max(best, depth)
    return best


def tree_plan(net: Network, ranks: Sequence[int]) -> tuple[Path, float, int]:
    """``(path, per-hop latency s, height)`` of a double binary tree over ``ranks``."""
    ranks = tuple(ranks)
    key = ("tree", ranks)
    plan = net.cache.get(key)
    if plan is None:
        edges: list[tuple[int, int]] = []
        height = 0
        for parents in double_tree_parents(len(ranks)):
            height = max(height, tree_height(parents))
            for child, par in enumerate(parents):
                if par >= 0:
                    edges += [(ranks[child], ranks[par]), (ranks[par], ranks[child])]
        path, lat = _edges_path(net, edges, 1)
        plan = (path, lat, height)
        net.cache[key] = plan
    return plan  # type: ignore[return-value]


def _group_by_node(cluster: ClusterSpec, ranks: Sequence[int]) -> list[list[int]]:
    groups: dict[int, list[int]] = {}
    for r in ranks:
        groups.setdefault(r // cluster.gpus_per_node, []).append(r)
    out = list(groups.values())
    sizes = {len(g) for g in out}
    if len(sizes) != 1:
        raise ConfigError(f"ranks: hierarchical allreduce needs the same number of ranks on "
                          f"every node, got sizes {sorted(sizes)}")
    return out


def _inter_node_stage(net: Network, groups: list[list[int]], nbytes: float | None) -> Stage:
    """The inter-node allreduce of a hierarchical allreduce, one per rail (the ``r``-th
    rank of every node): a ring, or a double binary tree where its closed-form time is
    lower for ``nbytes`` (NCCL's tuner picks the tree at scale, where the ring's 2(n-1)
    latencies dominate: a ring over 10,000 nodes waits 20,000 hops per allreduce)."""
    from ddlsim.sim.nccl import ring_allreduce_time, tree_allreduce_time

    n, g = len(groups), len(groups[0])
    ring_edges = [(groups[j][r], groups[(j + 1) % n][r]) for r in range(g) for j in range(n)]
    path, lat = _edges_path(net, ring_edges, 1)
    ring = Stage(path, 2 * (n - 1) / n / g, 2 * (n - 1) * lat)
    if nbytes is None or n < 4:
        return ring
    bw = net.cluster.nic_bw_Bps * net.cluster.nics_per_node / max(1, g)
    per_rail = nbytes / g
    if tree_allreduce_time(n, per_rail, bw, lat) >= ring_allreduce_time(n, per_rail, bw, lat):
        return ring
    edges, height = [], 0
    for parents in double_tree_parents(n):
        height = max(height, tree_height(parents))
        for child, par in enumerate(parents):
            if par >= 0:
                edges += [(groups[child][r], groups[par][r]) for r in range(g)]
                edges += [(groups[par][r], groups[child][r]) for r in range(g)]
    path, lat = _edges_path(net, edges, 1)
    return Stage(path, 0.5 / g, 2 * height * lat)


def hierarchical_stages(net: Network, ranks: Sequence[int],
                        nbytes: float | None = None) -> list[Stage]:
    """The three stages of a hierarchical allreduce (fewer when trivial), cached per
    message size when the inter-node stage depends on it (:func:`_inter_node_stage`)."""
    ranks = tuple(ranks)
    key = ("hier", ranks, nbytes)
    stages = net.cache.get(key)
    if stages is None:
        groups = _group_by_node(net.cluster, ranks)
        n, g = len(groups), len(groups[0])
        stages = []
        intra = None
        if g > 1:
            edges = [(grp[i], grp[(i + 1) % g]) for grp in groups for i in range(g)]
            path, lat = _edges_path(net, edges, 1)
            intra = Stage(path, (g - 1) / g, (g - 1) * lat)
            stages.append(intra)
        if n > 1:
            stages.append(_inter_node_stage(net, groups, nbytes))
        if intra is not None:
            stages.append(intra)
        net.cache[key] = stages
    return stages  # type: ignore[return-value]
