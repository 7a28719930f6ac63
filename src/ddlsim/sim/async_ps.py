"""Parameter-server data parallelism: ASP, SSP, BSP and backup workers, as SimPy processes.

The model
---------
``S`` server shards hold the parameters, split by bytes into contiguous layer ranges
(:func:`plan_shards`). Each shard lives on an *endpoint*: a GPU of the cluster (servers
colocated with workers) or the first device of an extra server host node; its traffic
goes through that endpoint's links (NIC when across nodes). ``W`` workers run one
process each (they interleave, so they cannot share a timeline as in sync DP):

Without overlap (``overlap=False``):

* **pull**: for every shard, one flow ``shard endpoint -> worker GPU`` of the shard's
  bytes (weights travel in the gradient dtype);
* **compute**: forward + backward seconds of :class:`~ddlsim.sim.sync_dp.StepCost`
  (per-kernel times x the worker's slow factor x per-kernel
  :class:`~ddlsim.sim.sync_dp.NoiseSpec` factors drawn from one seeded generator);
* **push**: for every shard, one flow ``worker GPU -> shard endpoint`` of the shard's
  gradient bytes, then the shard applies it.

Flows run on :class:`ddlsim.sim.network.Network` (max-min sharing of every link they
cross). A server serves at most ``server_concurrency`` transfers per direction at a
time (``0``: no limit, all transfers share the links max-min fairly, as TCP flows do;
``1``: one message at a time, the rest queue FIFO). ``1`` keeps the number of concurrent
flows at ``O(S)`` instead of ``O(W)`` and so the simulator fast (see DESIGN.md,
"Simulation fidelity and speed"); with one shard it gives the same saturated throughput
(the server NIC is busy whenever work is queued). With several shards and FIFO, workers
that request at the same instant are served in the same order by every shard, so one
worker's NIC can throttle all shards at once (a convoy): use 0 (or >= 2) there.
A shard applies one update at a time (a ``simpy.Resource`` of capacity 1); its update
time (``Shard.apply_s``: the ``sgd_update`` calls of its layers on the server device,
``Shard.accumulate_s``: the ``grad_sum`` calls, used by the synchronous modes) comes
from the cost model through :func:`shard_costs`.

Modes
-----
``asp``     each worker: pull, compute, push; each shard applies every gradient as it
            arrives; the worker pulls again once its own gradient has been applied on
            every shard (its pull request queues behind its push, as in ps-lite).
``ssp``     as ``asp``, but a worker that has had ``k`` gradients applied may start its
            next pull only when the slowest worker has had at least ``k - s`` applied
            (``staleness_bound`` ``s``; ``s = 0`` is lock-step).
``bsp``     synchronous PS: each shard accumulates the W gradients of iteration ``v``
            (one ``grad_sum`` each), applies one combined update and so reaches version
            ``v + 1``; workers pull once the whole model is at ``v + 1``.
``backup``  as ``bsp`` with ``b`` backup workers (Chen et al. 2016, "Revisiting
            distributed synchronous SGD"): the first ``W - b`` gradients computed on
            version ``v`` are applied; a gradient that is computed later, or on a version
            that is already superseded, is dropped. The drop is decided when the gradient
            is ready (the worker learns the iteration is full and does not push it), so
            dropped gradients use no server bandwidth.

Overlap (``PSConfig.overlap``, opt-in)
--------------------------------------
Real PS frameworks (MXNet KVStore ``dist_sync``/``dist_async``, ps-lite) push each
parameter's gradient as soon as backward produces it and pull per key. With ``overlap``
and ``S > 1`` a worker's step is cut into segments (:func:`overlap_segments`: one per
shard when the :class:`StepCost` has one layer per shard-covered layer; one segment for a
one-layer cost):

* **forward** runs shard by shard in forward order; shard ``j``'s layers start once shard
  ``j``'s pull has arrived (pulls of later shards overlap the forward of earlier ones);
* **backward** runs shard by shard in backward order (the last shard first); shard ``j``'s
  push starts as soon as its layers' backward is done (per-layer backward seconds summed
  with :func:`ddlsim.sim.sync_dp.segment_sums`), overlapping the rest of backward;
* **pulls**: in ``asp``/``ssp`` the pull of shard ``j`` waits only for this worker's
  previous push of ``j`` to be applied (ps-lite orders a key's pull after its push); in
  ``bsp``/``backup`` it waits until shard ``j`` (not the whole model) has applied the
  iteration's combined update. SSP gates an iteration's start on gradients *computed*
  minus the slowest worker's applied count, so the bound still holds. A backup worker's
  drop is decided when its first shard's gradient is ready.

``version_read`` keeps its conservative rule, so with several shards a worker whose read
of an early shard precedes the model-level completion of its own previous gradient counts
that gradient as missing (staleness up to 1 higher than the weights it read); and shards
pulled early are really read earlier, so under a server bottleneck mean staleness can
grow a lot (256 workers, 4 FIFO shards: 253 -> 456 updates). Events per
update stay ``O(S)``. With one shard the schedule is the same as without overlap.
Overlap is not always faster under max-min sharing: early pulls and pushes share links
with the critical last shard's push (no priorities, unlike MXNet's), so with few coarse
shards colocated with the workers it can be slower (tested only where links are not
shared between directions). It is off by default for that reason and for speed: staggered
per-shard transfers give the network more distinct flow sets to solve (the 256-worker,
4-shard benchmark takes about 1.8x longer).

The update log
--------------
One row per **model-level** update (:data:`ddlsim.sim.updates.UPDATE_LOG_COLUMNS`): an
asynchronous gradient counts as applied when every shard has applied it; the model
version is the number of model-level updates applied so far. ``version_read`` is the
model version when the worker's pull was served (with several shards: the version when
the first shard's pull was served, so staleness is never underestimated). Synchronous
modes log one row per iteration with worker ``-1``, ``version_read = v`` and ``n_grads``
= gradients combined (``W`` or ``W - b``); staleness is 0.

Stopping: the run ends at the ``cfg.updates``-th model-level update; work in flight then
is discarded (compute busy time is counted when a compute phase ends).
"""

from __future__ import annotations

from ddlsim.sim.ps_engine import ps_process, simulate_ps
from ddlsim.sim.ps_setup import (
    PS_MODES,
    PSConfig,
    PSResult,
    Shard,
    overlap_segments,
    plan_shards,
    shard_costs,
)

__all__ = ["PS_MODES", "PSConfig", "PSResult", "Shard", "overlap_segments", "plan_shards",
           "ps_process", "shard_costs", "simulate_ps"]
