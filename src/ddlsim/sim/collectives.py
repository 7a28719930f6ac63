"""Collective operations as flows over the cluster network, plus their closed forms.

Interface for strategy simulators (sync data parallelism and friends)
--------------------------------------------------------------------
Everything runs in the caller's SimPy environment::

    env = simpy.Environment()
    net = Network(env, cluster)                      # one per simulation
    ranks = list(range(cluster.num_gpus))            # global GPU indices, ring order
    proc = env.process(allreduce(env, net, ranks, bucket_bytes, algo="ring"))
    ...                                              # compute processes keep running
    result = yield proc                              # -> CollectiveResult (start_s, end_s)

* Every collective is a generator function ``op(env, net, ranks, nbytes, ...)`` to be
  wrapped in ``env.process``; its return value is a :class:`CollectiveResult`. Several
  may run at once (overlapping buckets, several jobs): they share links through the
  network's max-min fair flow model, so two allreduces on one NIC each slow down.
* ``nbytes`` is the full buffer size ``S`` per rank (nccl-tests convention: for
  reduce-scatter the input, for all-gather the output).
* Plans (which links a ring or tree uses) are built once per ``(ranks, channels)`` and
  cached on the network, so repeated buckets cost a handful of events each.
* Afterwards read per-link ``net.bytes_carried()`` / ``net.busy_time_s()`` (NumPy arrays
  indexed like ``net.links``) or ``net.link_stats()`` (records with ids).
* Presets hold line rates; wrap a cluster in :func:`nccl_calibrated` to apply the two
  global NCCL efficiency constants.

Granularity (why it is fast)
----------------------------
One ring step of all ``p`` ranks is ONE multi-link flow over every link the ring uses; the
``2(p-1)`` logical steps of a ring allreduce are folded into its volume ``2(p-1)/p * S``
per link (per channel: ``S/k`` with ``k`` channels, one per NIC rail; all channels are
folded into the same flow with link weights) and a latency ``2(p-1) * alpha`` (alpha =
the slowest edge's latency) paid once at the end. Events per collective are
``O(chunks x stages)``, independent of ``p``. Chunks split the message into pipelined
pieces: a single-stage op (ring, tree, broadcast) gains nothing from them because the
fluid flow already reacts to contention at any instant; the hierarchical allreduce
overlaps its three stages across chunks. Latency of each stage is paid by the first
chunk only (later chunks pipeline behind it).

Error against a fine-grained model (one flow per rank per ring step, each step waiting
for its predecessor's data; ``tests/sim/test_collectives.py``): identical (< 1e-6) on
uncontended and on statically heterogeneous rings (both are paced by the slowest edge).
With a point-to-point flow joining one NIC mid-collective the two agree within 0.03% for
p = 4..16 (tests allow 5%): the folded flow slows every edge at once, the fine-grained
ring stalls downstream ranks a step later, and over many steps these coincide. The
folded model cannot show per-step jitter or sub-step effects (chunk fill of a real
pipeline); those sit in the latency term.

Algorithms
----------
``ring`` (allreduce, reduce-scatter, all-gather; broadcast is a pipelined chain),
``tree`` (double binary tree allreduce: two in-order binary trees, the second mirrored
for even ``p`` or shifted by one for odd ``p``, so no rank is interior in both; each
carries ``S/2``, reduce up and broadcast down pipelined), ``hierarchical`` (intra-node
ring reduce-scatter, inter-node ring allreduce per rail of ``S/g``, intra-node all-gather),
``nvls`` (NVLink SHARP, allreduce only, one NVSwitch-gen3 node: the switch reduces and
multicasts, so each GPU sends ``S`` into the switch and receives ``S`` from it once;
see :func:`allreduce_nvls`). ``alltoall``: every rank sends ``S/p`` to every other at once
(NCCL's grouped send/recv pairs), one flow per class of pairs (:func:`alltoall`).
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import simpy

from ddlsim.errors import ConfigError, unknown_name
from ddlsim.sim.collective_plans import (
    MAX_ALLTOALL_RANKS,
    Stage,
    alltoall_plan,
    binary_tree_parents,
    check_ranks,
    double_tree_parents,
    hierarchical_stages,
    ring_plan,
    spans_nodes,
    tree_height,
    tree_plan,
)
from ddlsim.sim.nccl import (
    NCCL_NET_EFFICIENCY,
    NCCL_NVLINK_EFFICIENCY,
    NCCL_NVLS_EFFICIENCY,
    NVLS_DEVICES,
    all_gather_time,
    alltoall_time,
    broadcast_time,
    hierarchical_allreduce_time,
    nccl_calibrated,
    nvls_allreduce_time,
    reduce_scatter_time,
    ring_allreduce_time,
    tree_allreduce_time,
)
from ddlsim.sim.network import Network
from ddlsim.sim.topology import ClusterSpec

__all__ = [
    "ALGOS", "MAX_ALLTOALL_RANKS", "NCCL_NET_EFFICIENCY", "NCCL_NVLINK_EFFICIENCY",
    "NCCL_NVLS_EFFICIENCY", "NVLS_DEVICES", "OPS", "CollectiveResult", "Stage",
    "all_gather_ring", "all_gather_time", "allreduce_hierarchical", "allreduce_nvls",
    "alltoall", "alltoall_time", "allreduce_ring", "allreduce_tree", "binary_tree_parents",
    "broadcast", "broadcast_time", "bus_factor", "collective", "collective_bandwidth_table",
    "double_tree_parents", "hierarchical_allreduce_time", "hierarchical_stages",
    "nccl_calibrated", "nvls_allreduce_time", "nvls_supported", "reduce_scatter_ring",
    "reduce_scatter_time", "ring_allreduce_time", "ring_plan", "sendrecv",
    "tree_allreduce_time", "tree_plan",
]

# The tree-height helper under its former private name (tests/sim/test_collectives.py).
_tree_height = tree_height

OPS = ("allreduce", "reduce_scatter", "all_gather", "broadcast", "alltoall", "sendrecv")
ALGOS = ("ring", "tree", "hierarchical", "nvls")


@dataclass(frozen=True)
class CollectiveResult:
    """What one collective did: op, algorithm, ranks, bytes and when (s)."""

    op: str
    algo: str
    num_ranks: int
    nbytes: float
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


# -- the process machinery -------------------------------------------------------------------


def _run_stages(env: simpy.Environment, net: Network, stages: Sequence[Stage], nbytes: float,
                chunks: int) -> Generator[simpy.Event, Any, None]:
    """Run ``stages`` over ``nbytes`` split in ``chunks`` pipelined pieces.

    Chunk ``i`` enters stage ``s`` when it has left stage ``s-1`` and chunk ``i-1`` has
    left stage ``s``. With one chunk this is the stages in sequence.
    """
    if not isinstance(chunks, int) or chunks < 1:
        raise ConfigError(f"chunks: must be an integer >= 1, got {chunks!r}")
    if not stages:
        return
    if chunks == 1:
        for st in stages:
            yield net.transfer(st.path, st.bytes_per_byte * nbytes, st.latency_s)
        return
    piece = nbytes / chunks
    left = [[env.event() for _ in range(chunks)] for _ in stages]

    def chunk(i: int) -> Generator[simpy.Event, Any, None]:
        for s, st in enumerate(stages):
            if i > 0:
                yield left[s][i - 1]
            yield net.transfer(st.path, st.bytes_per_byte * piece, st.latency_s if i == 0 else 0.0)
            left[s][i].succeed()

    for i in range(chunks):
        env.process(chunk(i))
    yield left[-1][-1]


def _collective(env: simpy.Environment, net: Network, op: str, algo: str, ranks: tuple[int, ...],
                nbytes: float, stages: Sequence[Stage], chunks: int
                ) -> Generator[simpy.Event, Any, CollectiveResult]:
    if not nbytes >= 0:
        raise ConfigError(f"nbytes: must be >= 0, got {nbytes!r}")
    start = env.now
    if len(ranks) > 1:
        yield from _run_stages(env, net, stages, float(nbytes), chunks)
    return CollectiveResult(op, algo, len(ranks), float(nbytes), start, env.now)


def _ring(env: simpy.Environment, net: Network, op: str, passes: int, ranks: Sequence[int],
          nbytes: float, chunks: int, channels: int | None
          ) -> Generator[simpy.Event, Any, CollectiveResult]:
    """A ring collective making ``passes`` trips of ``p - 1`` steps (allreduce 2: reduce-
    scatter then all-gather; reduce-scatter and all-gather 1), folded into one stage."""
    ranks = check_ranks(net, ranks)
    p = len(ranks)
    path, lat, k = ring_plan(net, ranks, channels)
    stage = Stage(path, passes * (p - 1) / p / k, passes * (p - 1) * lat)
    return (yield from _collective(env, net, op, "ring", ranks, nbytes, [stage], chunks))


def allreduce_ring(env: simpy.Environment, net: Network, ranks: Sequence[int], nbytes: float,
                   chunks: int = 1, channels: int | None = None
                   ) -> Generator[simpy.Event, Any, CollectiveResult]:
    """Ring allreduce of ``nbytes`` (bytes per rank) over ``ranks`` (global GPU indices)."""
    return (yield from _ring(env, net, "allreduce", 2, ranks, nbytes, chunks, channels))


def reduce_scatter_ring(env: simpy.Environment, net: Network, ranks: Sequence[int],
                        nbytes: float, chunks: int = 1, channels: int | None = None
                        ) -> Generator[simpy.Event, Any, CollectiveResult]:
    """Ring reduce-scatter: ``nbytes`` in per rank, ``nbytes/p`` out."""
    return (yield from _ring(env, net, "reduce_scatter", 1, ranks, nbytes, chunks, channels))


def all_gather_ring(env: simpy.Environment, net: Network, ranks: Sequence[int], nbytes: float,
                    chunks: int = 1, channels: int | None = None
                    ) -> Generator[simpy.Event, Any, CollectiveResult]:
    """Ring all-gather: ``nbytes/p`` in per rank, ``nbytes`` out."""
    return (yield from _ring(env, net, "all_gather", 1, ranks, nbytes, chunks, channels))


def broadcast(env: simpy.Environment, net: Network, ranks: Sequence[int], nbytes: float,
              root: int | None = None, chunks: int = 1, channels: int | None = None
              ) -> Generator[simpy.Event, Any, CollectiveResult]:
    """Pipelined chain broadcast of ``nbytes`` from ``root`` (default ``ranks[0]``)."""
    ranks = check_ranks(net, ranks)
    root = ranks[0] if root is None else root
    if root not in ranks:
        raise ConfigError(f"root: must be one of ranks, got {root}")
    at = ranks.index(root)
    order = ranks[at:] + ranks[:at]
    p = len(order)
    path, lat, k = ring_plan(net, order, channels, closed=False)
    stage = Stage(path, 1.0 / k, (p - 1) * lat)
    return (yield from _collective(env, net, "broadcast", "ring", order, nbytes, [stage], chunks))


def allreduce_tree(env: simpy.Environment, net: Network, ranks: Sequence[int], nbytes: float,
                   chunks: int = 1) -> Generator[simpy.Event, Any, CollectiveResult]:
    """Double-binary-tree allreduce (both trees folded into one flow, ``S/2`` each).

    The trees are built over ``ranks`` in the given order and every inter-node edge uses
    the GPUs' own NICs (no per-channel rails as NCCL's node-level trees have), so on
    multi-node clusters with several NICs it underuses the network; prefer ``ring`` or
    ``hierarchical`` there.
    """
    ranks = check_ranks(net, ranks)
    path, lat, height = tree_plan(net, ranks)
    stage = Stage(path, 0.5, 2 * height * lat)
    return (yield from _collective(env, net, "allreduce", "tree", ranks, nbytes, [stage], chunks))


def allreduce_hierarchical(env: simpy.Environment, net: Network, ranks: Sequence[int],
                           nbytes: float, chunks: int = 4
                           ) -> Generator[simpy.Event, Any, CollectiveResult]:
    """Intra-node reduce-scatter, inter-node ring allreduce per rail, intra-node all-gather.

    Every node must hold the same number ``g`` of ``ranks``; rail ``r`` is the ``r``-th of
    them on each node and carries ``S/g`` through its GPU's own NIC.
    """
    ranks = check_ranks(net, ranks)
    stages = hierarchical_stages(net, ranks, nbytes)
    return (yield from _collective(env, net, "allreduce", "hierarchical", ranks, nbytes, stages,
                                   chunks))


def nvls_supported(cluster: ClusterSpec, ranks: Sequence[int] | None = None) -> bool:
    """True when ``ranks`` (default: every GPU) sit in one NVSwitch node of NVLS-capable
    devices (:data:`NVLS_DEVICES`), the setting where NCCL picks NVLS for allreduce."""
    ranks = list(range(cluster.num_gpus)) if ranks is None else list(ranks)
    return (cluster.intra_link == "nvswitch" and len(ranks) > 1
            and not spans_nodes(cluster, ranks)
            and all(cluster.devices[r] in NVLS_DEVICES for r in ranks))


def allreduce_nvls(env: simpy.Environment, net: Network, ranks: Sequence[int], nbytes: float,
                   chunks: int = 1, efficiency: float = NCCL_NVLS_EFFICIENCY
                   ) -> Generator[simpy.Event, Any, CollectiveResult]:
    """NVLink SHARP (in-switch) allreduce of ``nbytes`` per rank over one NVSwitch node.

    Data movement: the NVSwitch reduces (``multimem.ld_reduce``) and multicasts
    (``multimem.st``), so each GPU sends its ``S`` bytes into the switch once and receives
    the reduced ``S`` once, whatever ``p`` (a ring moves ``2(p-1)/p * S`` each way).
    Counting a GPU's own shard's round trip it is ``(p+1)/p * S``; that 12 % at p = 8 is
    inside ``efficiency`` (every published NVLS row has p = 8). One flow over every rank's
    ``gpu.tx`` and ``gpu.rx`` carrying ``S / efficiency``; latency two switch hops (reduce,
    then multicast). Time on an idle node: :func:`nvls_allreduce_time`.

    Raises ConfigError unless :func:`nvls_supported` (NVSwitch node of :data:`NVLS_DEVICES`).
    """
    ranks = check_ranks(net, ranks)
    if not (isinstance(efficiency, int | float) and 0 < efficiency <= 1):
        raise ConfigError(f"efficiency: must be in (0, 1], got {efficiency!r}")
    if len(ranks) > 1 and not nvls_supported(net.cluster, ranks):
        raise ConfigError(f"algo: 'nvls' needs the ranks on one NVSwitch node of "
                          f"{'/'.join(NVLS_DEVICES)} GPUs, got intra_link "
                          f"{net.cluster.intra_link!r}, devices "
                          f"{sorted({net.cluster.devices[r] for r in ranks})}")
    path, lat, _ = ring_plan(net, ranks, 1)  # every rank's gpu.tx and gpu.rx, once each
    stage = Stage(path, 1.0 / efficiency, 2 * lat)
    return (yield from _collective(env, net, "allreduce", "nvls", ranks, nbytes, [stage], chunks))


def alltoall(env: simpy.Environment, net: Network, ranks: Sequence[int], nbytes: float,
             chunks: int = 1) -> Generator[simpy.Event, Any, CollectiveResult]:
    """Alltoall of ``nbytes`` per rank: each rank sends ``nbytes/p`` to every other rank, all
    ``p(p-1)`` sends at once (NCCL: ``p`` grouped ncclSend/ncclRecv pairs per rank).

    The pairs are folded into two concurrent flows sharing links max-min fairly with each
    other and with any other traffic: the same-node pairs and the other-node pairs
    (:func:`~ddlsim.sim.collective_plans.alltoall_plan`; a link's weight is the pairs it
    carries), each paying its class's latency once. Within a class every pair then moves
    at the rate of the class's busiest link, exact on symmetric clusters; a slow link slows
    its whole class (per-pair flows would let the other pairs of the class finish first).
    ``chunks`` is accepted for the dispatcher and changes nothing (one stage).
    """
    if not isinstance(chunks, int) or chunks < 1:
        raise ConfigError(f"chunks: must be an integer >= 1, got {chunks!r}")
    ranks = check_ranks(net, ranks)
    if not nbytes >= 0:
        raise ConfigError(f"nbytes: must be >= 0, got {nbytes!r}")
    start, p = env.now, len(ranks)
    if p > 1:
        per_pair = float(nbytes) / p
        yield env.all_of([net.transfer(path, per_pair, lat)
                          for path, lat in alltoall_plan(net, ranks)])
    return CollectiveResult("alltoall", "p2p", p, float(nbytes), start, env.now)


def sendrecv(env: simpy.Environment, net: Network, src: int, dst: int, nbytes: float
             ) -> Generator[simpy.Event, Any, CollectiveResult]:
    """Point-to-point transfer of ``nbytes`` from GPU ``src`` to GPU ``dst``."""
    ranks = check_ranks(net, [src, dst]) if src != dst else check_ranks(net, [src])
    path = net.route(src, dst)
    stage = Stage(path, 1.0, path.latency_s)
    return (yield from _collective(env, net, "sendrecv", "p2p", ranks, nbytes, [stage], 1))


def collective(env: simpy.Environment, net: Network, op: str, ranks: Sequence[int],
               nbytes: float, algo: str = "ring", chunks: int | None = None
               ) -> Generator[simpy.Event, Any, CollectiveResult]:
    """Dispatch by name: ``op`` in :data:`OPS` (not sendrecv), ``algo`` in :data:`ALGOS`."""
    _check_name("op", op, OPS[:-1])
    _check_name("algo", algo, ALGOS)
    if algo != "ring" and op != "allreduce":
        raise ConfigError(f"algo: {algo!r} is only implemented for allreduce, got op {op!r}")
    kw = {} if chunks is None else {"chunks": chunks}
    fn = {"allreduce": {"ring": allreduce_ring, "tree": allreduce_tree,
                        "hierarchical": allreduce_hierarchical, "nvls": allreduce_nvls}[algo],
          "reduce_scatter": reduce_scatter_ring, "all_gather": all_gather_ring,
          "broadcast": broadcast, "alltoall": alltoall}[op]
    return (yield from fn(env, net, ranks, nbytes, **kw))


def _check_name(field: str, value: str, known: Sequence[str]) -> None:
    if value not in known:
        raise unknown_name(field, value, known, field)


# -- nccl-tests conventions ---------------------------------------------------------------------


def bus_factor(op: str, n: int) -> float:
    """nccl-tests busbw / algbw factor for ``op`` on ``n`` ranks."""
    _check_name("op", op, OPS)
    if n <= 1:
        return 1.0 if op in ("broadcast", "sendrecv") else 0.0
    if op == "allreduce":
        return 2 * (n - 1) / n
    if op in ("reduce_scatter", "all_gather", "alltoall"):  # alltoall: nccl-tests alltoall.cu
        return (n - 1) / n
    return 1.0


def collective_bandwidth_table(cluster: ClusterSpec, op: str, sizes_bytes: Sequence[float],
                               algo: str = "ring", ranks: Sequence[int] | None = None,
                               chunks: int | None = None
                               ) -> list[tuple[float, float, float, float]]:
    """Simulate ``op`` once per size on an idle cluster, nccl-tests style.

    Returns rows ``(size_bytes, time_s, algbw_Bps, busbw_Bps)`` with ``algbw = S/t`` and
    ``busbw = algbw * bus_factor(op, n)``; ``ranks`` defaults to every GPU.
    """
    env = simpy.Environment()
    net = Network(env, cluster)
    ranks = list(range(cluster.num_gpus)) if ranks is None else list(ranks)
    rows = []
    for size in sizes_bytes:
        if op == "sendrecv":
            proc = env.process(sendrecv(env, net, ranks[0], ranks[-1], size))
        else:
            proc = env.process(collective(env, net, op, ranks, size, algo, chunks))
        env.run(until=proc)
        t = proc.value.duration_s
        algbw = size / t if t > 0 else math.inf
        rows.append((float(size), t, algbw, algbw * bus_factor(op, len(ranks))))
    return rows
