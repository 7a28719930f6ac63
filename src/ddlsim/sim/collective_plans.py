"""Which links a collective uses: ring, double-binary-tree and hierarchical plans over a
cluster's ranks (cached on the :class:`~ddlsim.sim.network.Network`), and the pipelined
:class:`Stage` a plan becomes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ddlsim.errors import ConfigError
from ddlsim.sim.flows import Path
from ddlsim.sim.network import Network
from ddlsim.sim.topology import ClusterSpec


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


def edge_links(spec: ClusterSpec, src: np.ndarray, dst: np.ndarray, channels: int
               ) -> tuple[np.ndarray, float]:
    """Links (with repeats) and the largest latency of the messages ``src[i] -> dst[i]``
    on every channel: :func:`~ddlsim.sim.topology.route` for arrays of edges (intra-node
    edges are shared by all channels; one channel uses each GPU's own NIC)."""
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= spec.num_gpus):
        raise ConfigError(f"route: GPUs must be in [0, {spec.num_gpus})")
    gpn, n_gpu, nics, n_nic = spec.gpus_per_node, spec.num_gpus, spec.nics_per_node, spec.num_nics
    node_s, node_d = src // gpn, dst // gpn
    intra = (node_s == node_d) & (src != dst)
    parts = [np.concatenate([src[intra], n_gpu + dst[intra]])] * channels
    lat = spec.intra_latency_s if intra.any() else 0.0
    inter = node_s != node_d
    if inter.any():
        src, dst, node_s, node_d = src[inter], dst[inter], node_s[inter], node_d[inter]
        leaf_s, leaf_d = node_s // spec.nodes_per_leaf, node_d // spec.nodes_per_leaf
        cross = leaf_s != leaf_d
        base, up = 2 * n_gpu, 2 * n_gpu + 2 * n_nic
        for ch in range(channels):
            if channels > 1:
                nic_s, nic_d = node_s * nics + ch % nics, node_d * nics + ch % nics
            else:
                nic_s = node_s * nics + (src % gpn) * nics // gpn
                nic_d = node_d * nics + (dst % gpn) * nics // gpn
            parts += [base + nic_s, base + n_nic + nic_d, up + leaf_s[cross],
                      up + spec.num_leaves + leaf_d[cross]]
        switches = 3 if cross.any() else 1
        lat = max(lat, spec.nic_latency_s + switches * spec.switch_latency_s)
    return np.concatenate(parts), lat


def _edges_path(net: Network, src: np.ndarray, dst: np.ndarray, channels: int
                ) -> tuple[Path, float]:
    """Path for the edges ``src[i] -> dst[i]`` on every channel (see :func:`edge_links`)."""
    links, lat = edge_links(net.cluster, src, dst, channels)
    return net.path(links), lat


def _cached(net: Network, kind: str, ranks: tuple[int, ...], extra: object, build):
    """``build()`` cached on ``net`` under ``(kind, ranks, extra)``; the rank tuple last
    used for ``kind`` is matched by identity, so a large tuple is not hashed per call."""
    last = net.cache.get(("last", kind))
    if last is not None and last[0] is ranks:
        table = last[1]
    else:
        table = net.cache.setdefault((kind, ranks), {})
        net.cache[("last", kind)] = (ranks, table)
    if extra not in table:
        table[extra] = build()
    return table[extra]


def ring_plan(net: Network, ranks: Sequence[int], channels: int | None = None,
              closed: bool = True) -> tuple[Path, float, int]:
    """``(path, per-step latency s, channels)`` of a ring over ``ranks`` (cached).

    ``channels`` defaults to the cluster's NICs per node when the ring spans nodes (NCCL
    opens one ring per NIC rail), else 1. ``closed=False`` gives the open chain used by
    broadcast.
    """
    ranks = tuple(ranks)
    if channels is not None and channels < 1:
        raise ConfigError(f"channels: must be >= 1, got {channels}")

    def build() -> tuple[Path, float, int]:
        k = channels
        if k is None:
            k = net.cluster.nics_per_node if spans_nodes(net.cluster, ranks) else 1
        r = np.asarray(ranks, dtype=np.int64)
        n_edges = r.size if closed else r.size - 1
        if r.size < 2:
            n_edges = 0
        path, lat = _edges_path(net, r[:n_edges], np.roll(r, -1)[:n_edges], k)
        return path, lat, k

    return _cached(net, "ring", ranks, (channels, closed), build)


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
    par = np.asarray(parent, dtype=np.int64)
    node = np.arange(par.size)
    height = 0
    while True:  # every position climbs one level per round; rounds = height
        node = node[par[node] >= 0]
        if not node.size:
            return height
        node = par[node]
        height += 1


def _tree_edges(parents: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """``(child, parent)`` positions of every edge of the tree given by ``parents``."""
    par = np.asarray(parents, dtype=np.int64)
    child = np.flatnonzero(par >= 0)
    return child, par[child]


def tree_plan(net: Network, ranks: Sequence[int]) -> tuple[Path, float, int]:
    """``(path, per-hop latency s, height)`` of a double binary tree over ``ranks``."""
    ranks = tuple(ranks)

    def build() -> tuple[Path, float, int]:
        r = np.asarray(ranks, dtype=np.int64)
        src, dst, height = [], [], 0
        for parents in double_tree_parents(r.size):
            height = max(height, tree_height(parents))
            child, par = _tree_edges(parents)
            src += [r[child], r[par]]
            dst += [r[par], r[child]]
        path, lat = _edges_path(net, np.concatenate(src), np.concatenate(dst), 1)
        return path, lat, height

    return _cached(net, "tree", ranks, None, build)


def _group_by_node(cluster: ClusterSpec, ranks: Sequence[int]) -> np.ndarray:
    """``ranks`` as a (nodes, ranks per node) array: nodes in order of first appearance,
    each node's ranks in the given order."""
    r = np.asarray(ranks, dtype=np.int64)
    _, first, inverse, counts = np.unique(r // cluster.gpus_per_node, return_index=True,
                                          return_inverse=True, return_counts=True)
    if counts.min() != counts.max():
        raise ConfigError(f"ranks: hierarchical allreduce needs the same number of ranks on "
                          f"every node, got sizes {sorted(set(counts.tolist()))}")
    position = np.empty_like(first)
    position[np.argsort(first, kind="stable")] = np.arange(first.size)
    order = np.argsort(position[inverse.reshape(-1)], kind="stable")
    return r[order].reshape(first.size, int(counts[0]))


def _inter_node_stages(net: Network, groups: np.ndarray
                       ) -> tuple[Stage, Stage | None, float]:
    """The ring and (from 4 nodes) the double-binary-tree inter-node stage of a
    hierarchical allreduce over ``groups`` (nodes x rails), one per rail (the ``r``-th
    rank of every node), and the ring's per-hop latency."""
    n, g = groups.shape
    path, lat = _edges_path(net, groups.ravel(), np.roll(groups, -1, axis=0).ravel(), 1)
    ring = Stage(path, 2 * (n - 1) / n / g, 2 * (n - 1) * lat)
    if n < 4:
        return ring, None, lat
    src, dst, height = [], [], 0
    for parents in double_tree_parents(n):
        height = max(height, tree_height(parents))
        child, par = _tree_edges(parents)
        src += [groups[child].ravel(), groups[par].ravel()]
        dst += [groups[par].ravel(), groups[child].ravel()]
    tree_path, tree_lat = _edges_path(net, np.concatenate(src), np.concatenate(dst), 1)
    return ring, Stage(tree_path, 0.5 / g, 2 * height * tree_lat), lat


def _pick_inter_node(net: Network, groups: np.ndarray, ring: Stage, tree: Stage | None,
                     lat: float, nbytes: float | None) -> Stage:
    """The ring, or the double binary tree where its closed-form time is lower for
    ``nbytes`` (NCCL's tuner picks the tree at scale, where the ring's 2(n-1) latencies
    dominate: a ring over 10,000 nodes waits 20,000 hops per allreduce)."""
    from ddlsim.sim.nccl import ring_allreduce_time, tree_allreduce_time

    if nbytes is None or tree is None:
        return ring
    n, g = groups.shape
    bw = net.cluster.nic_bw_Bps * net.cluster.nics_per_node / max(1, g)
    per_rail = nbytes / g
    if tree_allreduce_time(n, per_rail, bw, lat) >= ring_allreduce_time(n, per_rail, bw, lat):
        return ring
    return tree


def hierarchical_stages(net: Network, ranks: Sequence[int],
                        nbytes: float | None = None) -> list[Stage]:
    """The three stages of a hierarchical allreduce (fewer when trivial), cached per
    message size when the inter-node stage depends on it (:func:`_pick_inter_node`);
    the paths are built once per rank tuple."""
    ranks = tuple(ranks)

    def plans() -> tuple[np.ndarray, Stage | None, tuple[Stage, Stage | None, float] | None]:
        groups = _group_by_node(net.cluster, ranks)
        n, g = groups.shape
        intra = None
        if g > 1:
            path, lat = _edges_path(net, groups.ravel(), np.roll(groups, -1, axis=1).ravel(), 1)
            intra = Stage(path, (g - 1) / g, (g - 1) * lat)
        return groups, intra, (_inter_node_stages(net, groups) if n > 1 else None)

    def build() -> list[Stage]:
        groups, intra, inter_plans = _cached(net, "hier", ranks, "plans", plans)
        inter = [] if inter_plans is None else [
            _pick_inter_node(net, groups, *inter_plans, nbytes)]
        return ([intra] if intra else []) + inter + ([intra] if intra else [])

    return _cached(net, "hier", ranks, ("stages", nbytes), build)


#: Largest alltoall plan built: its ``n(n-1)`` pairs are counted onto the links in blocks
#: (memory O(n x block)), but time still grows as ``n^2`` (16.8 M pairs at 4,096 ranks).
MAX_ALLTOALL_RANKS = 4096
_PAIR_BLOCK = 1 << 20  # pairs counted per block


def alltoall_plan(net: Network, ranks: Sequence[int]) -> tuple[tuple[Path, float], ...]:
    """The flows of an alltoall over ``ranks`` (cached): one per class of pairs (same node,
    other nodes), each the multi-link path of all its pairs (a link's weight: the pairs
    crossing it; one channel, so a remote pair uses the sender's and the receiver's own
    NICs) with the class's largest latency. Raises ConfigError above
    :data:`MAX_ALLTOALL_RANKS` ranks."""
    ranks = tuple(ranks)
    n = len(ranks)
    if n > MAX_ALLTOALL_RANKS:
        raise ConfigError(f"ranks: alltoall is planned pair by pair (n(n-1) = {n * (n - 1):,} "
                          f"pairs for {n:,} ranks); at most {MAX_ALLTOALL_RANKS:,} ranks")

    def build() -> tuple[tuple[Path, float], ...]:
        r = np.asarray(ranks, dtype=np.int64)
        gpn = net.cluster.gpus_per_node
        counts = np.zeros((2, len(net.links)), dtype=np.int64)
        lat = [0.0, 0.0]
        rows = max(1, _PAIR_BLOCK // max(1, n))
        for lo in range(0, n, rows):
            src = np.repeat(r[lo:lo + rows], n)
            dst = np.tile(r, src.size // n)
            keep = src != dst
            src, dst = src[keep], dst[keep]
            remote = (src // gpn != dst // gpn).astype(np.int64)
            for k in (0, 1):
                m = remote == k
                if m.any():
                    links, lk = edge_links(net.cluster, src[m], dst[m], 1)
                    counts[k] += np.bincount(links, minlength=counts.shape[1])
                    lat[k] = max(lat[k], lk)
        plan = []
        for k in (0, 1):
            idx = np.flatnonzero(counts[k])
            if idx.size:
                plan.append((Path(idx, counts[k][idx].astype(np.float64), lat[k]), lat[k]))
        return tuple(plan)

    return _cached(net, "alltoall", ranks, None, build)
