"""The layout search's analytic fast path: the memory and time per iteration of a Megatron
3D layout (tp x cp x pp x dp, micro-batch, recomputation, vp, ZeRO stage) in closed form,
from the same per-layer costs the event simulation uses.

What is shared with :func:`ddlsim.api.predict` (so the two follow each other when a cost
model changes): the per-layer seconds (:func:`ddlsim.api.pipeline.price_layers`, computed
once per tp x cp x micro-batch and per recomputation), the per-layer memory
(:func:`ddlsim.api.pipeline.memory_parts`), Megatron's block split
(:func:`ddlsim.sim.tensor.block_bounds`), the interleaved order
(:func:`ddlsim.sim.pipeline.interleaved_order`), the optimizer-step kernel, the routes and
the collectives of :mod:`ddlsim.sim.collectives` (the data-parallel reduce is that
collective run once on an otherwise idle network and cached per group and size).

What is closed form (:mod:`ddlsim.api.layout_formulas`; one layout is a few NumPy
prefix-sum differences over its block split): with ``t_k`` the forward + backward seconds
of GPU ``k`` per micro-batch (all its chunks), ``m`` micro-batches, ``p`` stages, ``v``
chunks per GPU and ``c`` the sum over every boundary of the virtual pipeline of its
activation and gradient send (``bytes / bottleneck bandwidth + latency`` of the route):

* 1F1B: ``(m - 1) max_k t_k + sum_k t_k + c`` for equal stages or a heaviest last stage
  (``(m + p - 1)`` slots), refined per stage for a heavier first ``L mod p`` of an uneven
  split, and at least ``(m - 1)`` times the communication-bound period of the stages after
  any stage plus one pass (:func:`~ddlsim.api.layout_formulas.one_f_one_b_s`);
* interleaved 1F1B: ``(m - 1/v) max_k t_k + sum_k t_k / v + c`` (bubble ``(p-1)/(v m)``
  for equal stages);
* GPU ``k`` ends its last backward ``sum_{j<k} (b_j + send_j)`` before GPU 0 (the backward
  chain of the last micro-batch); its gradients are reduced over its dp x cp group (ZeRO:
  reduce-scatter and all-gather(s), :func:`ddlsim.sim.zero.zero_ops`) after it, or, when
  the engine overlaps the reduction with the backward, in buckets during each chunk's last
  backward (:func:`~ddlsim.api.layout_formulas.overlapped_reduce_end`); then it steps its
  optimizer (``1/(dp x cp)`` of it under ZeRO); the iteration ends when the last GPU has
  stepped, as in the engine.

What the closed forms leave out: sends and reductions sharing links (the engine's flows
slow each other; the fast path prices each alone), idle gaps in an interleaved cool-down.

Memory per GPU is the engine's model evaluated by prefix sums: static bytes (weights,
gradients, optimizer state, ZeRO-sharded) of its layers, activations of the 1F1B
micro-batches in flight (``min(p - k, m)``) or, interleaved, at the peak of its order, the
largest recomputed segment, the workspace and the ZeRO-3 gathered block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ddlsim.api.layout_formulas import interleaved_s, one_f_one_b_s, overlapped_reduce_end
from ddlsim.errors import ConfigError
from ddlsim.job import Batch, Job, Strategy

DEFAULT_GLOBAL_BATCH = 512  # sequences per iteration (Megatron-LM-like)


def layout_job(template: Job, tp: int, pp: int, dp: int, mb: int, rc: str, global_batch: int,
               vp: int = 1, zero: int = 0, cp: int = 1) -> Job:
    """``template`` with this layout: Megatron's even block split, 1F1B (interleaved with
    ``vp > 1``), ``global_batch`` sequences of micro-batch ``mb``."""
    par = replace(template.parallelism, tp=tp, pp=pp, dp=dp, cp=cp, vp=vp, zero=zero,
                  recompute=rc, schedule="1f1b", placement="blocks", balance=())
    return replace(template, parallelism=par, batch=Batch(global_batch=global_batch, micro=mb),
                   strategy=Strategy(kind="3d"))


@dataclass(frozen=True)
class FastEstimate:
    """One layout by the fast path (SI units): ``memory_bytes`` on the fullest GPU of
    ``capacity_bytes``, ``iteration_s`` and its parts: ``pipeline_s`` (every GPU's last
    backward done), ``tail_s`` (gradient reduce and optimizer step after it, on the GPU
    that ends last), ``bubble_fraction`` (1 - busy / (p x iteration))."""

    memory_bytes: float
    capacity_bytes: float
    iteration_s: float
    pipeline_s: float
    tail_s: float
    bubble_fraction: float

    @property
    def fits(self) -> bool:
        return self.memory_bytes <= self.capacity_bytes


@dataclass(frozen=True)
class _Table:
    """Prefix sums over one GPU's layers for one (tp, cp, micro-batch, recomputation)."""

    fwd: np.ndarray  # cumulative forward s, length n + 1
    bwd: np.ndarray  # cumulative backward s (with recomputation)
    params: np.ndarray  # cumulative parameters
    out_bytes: np.ndarray  # per layer: its output activation (B), what a stage sends
    stored: np.ndarray  # cumulative activation bytes kept per micro-batch
    seg_full: np.ndarray  # per checkpoint segment: bytes while it is recomputed
    segment: np.ndarray  # per layer: its segment id
    workspace: float
    estimate: object
    recompute: str


class FastModel:
    """The fast path for one search ``template`` (decoder job: workload, cluster with its
    GPU count, precision, global batch) under ``calibration``; caches every per-layer cost,
    memory table, split, route and collective it computes, so that evaluating another
    layout is a few array operations (:meth:`evaluate`)."""

    def __init__(self, template: Job, calibration) -> None:
        from ddlsim.api.calibration import calibrated_factory, load_calibration
        from ddlsim.api.predict import pipeline_options

        self.template = template
        self.gpus = template.cluster.gpus
        self.global_batch = template.batch.global_batch or DEFAULT_GLOBAL_BATCH
        self.factory = calibrated_factory(load_calibration(calibration), template.framework)
        base = replace(layout_job(template, 1, 1, self.gpus, 1, "none", self.gpus),
                       batch=Batch(micro=1))
        self.base = pipeline_options(base)
        self._prices: dict = {}
        self._tables: dict = {}
        self._static: dict = {}
        self._bounds: dict = {}
        self._live: dict = {}
        self._routes: dict = {}
        self._reduce: dict = {}
        self._update: dict = {}
        self._net = None

    # ------------------------------------------------------------------ cached pieces
    def options(self, tp: int, pp: int, dp: int, mb: int, rc: str, vp: int = 1,
                zero: int = 0, cp: int = 1):
        """The engine's options of this layout (what :func:`ddlsim.api.predict` runs)."""
        m = self.global_batch // (dp * mb)
        return replace(self.base, tp=tp, cp=cp, stages=pp, dp=dp, micro_batch=mb,
                       micro_batches=max(m, 1), recompute=rc, vp=vp, zero=zero)

    def prices(self, tp: int, cp: int, mb: int):
        key = (tp, cp, mb)
        if key not in self._prices:
            from ddlsim.api.pipeline import price_layers

            lp = price_layers(self.options(tp, 1, self.gpus // (tp * cp), mb, "none", cp=cp),
                              self.factory)
            if len(set(lp.cluster.devices)) != 1:
                raise ConfigError("cluster: the layout search needs one GPU type, got "
                                  f"{sorted(set(lp.cluster.devices))}")
            self._prices[key] = lp
        return self._prices[key]

    def table(self, tp: int, cp: int, mb: int, rc: str) -> _Table:
        key = (tp, cp, mb, rc)
        if key not in self._tables:
            from ddlsim.api.pipeline import memory_parts
            from ddlsim.units import dtype_bytes

            lp = self.prices(tp, cp, mb)
            fwd, bwd, estimate = lp.per_device(rc)[lp.stage_devices[0]]
            opts = self.options(tp, 1, self.gpus // (tp * cp), mb, rc, cp=cp)
            layers = lp.layers
            mem = memory_parts(layers, replace(opts, zero=0),
                               mb * math.prod(lp.workload.input_shape))
            send_div = tp if (tp > 1 and not opts.sequence_parallel) else 1
            out = np.array([lay.output_elems for lay in layers], dtype=float)

            def cum(x):
                return np.concatenate(([0.0], np.cumsum(x, dtype=float)))

            self._tables[key] = _Table(
                cum(fwd), cum(bwd), cum([lay.param_count for lay in layers]),
                out * dtype_bytes(opts.dtype) / send_div, cum(mem.stored),
                np.bincount(mem.segment, weights=mem.full), mem.segment,
                float(mem.config.workspace_bytes), estimate, rc)
        return self._tables[key]

    def static(self, tp: int, cp: int, dp: int, mb: int, zero: int):
        """(cumulative static bytes, per-segment gathered ZeRO-3 bytes or None)."""
        key = (tp, cp, dp, zero)
        if key not in self._static:
            from ddlsim.api.pipeline import memory_parts

            lp = self.prices(tp, cp, mb)
            opts = replace(self.options(tp, 1, dp, mb, "none", cp=cp), zero=zero)
            mem = memory_parts(lp.layers, opts, mb * math.prod(lp.workload.input_shape))
            group = dp * cp
            gathered = (np.bincount(mem.segment, weights=mem.weights * group)
                        if zero >= 3 and group > 1 else None)
            self._static[key] = (np.concatenate(([0.0], np.cumsum(mem.static))), gathered)
        return self._static[key]

    def bounds(self, tp: int, cp: int, mb: int, chunks: int) -> np.ndarray:
        key = (tp, cp, chunks)
        if key not in self._bounds:
            from ddlsim.sim.tensor import block_bounds

            names = [lay.name for lay in self.prices(tp, cp, mb).layers]
            self._bounds[key] = np.asarray(block_bounds(names, chunks), dtype=np.int64)
        return self._bounds[key]

    def live(self, p: int, m: int, v: int) -> list[np.ndarray]:
        """Per GPU, per-chunk live micro-batch counts after the forwards of its interleaved
        order where :func:`ddlsim.sim.memory.chunk_peak` can find the peak.

        Order (:func:`ddlsim.sim.pipeline.interleaved_order`): forward step ``i`` runs chunk
        ``(i // p) % v``, backward step ``i`` the mirrored chunk, ``w = min(2 (p-k-1) +
        (v-1) p, m v)`` warm-up forwards, then forward ``w + i`` before backward ``i``. The
        counts only grow during the warm-up and repeat every ``p v`` steps after it, so the
        rows after forwards ``w - 1 .. w + p v - 1`` hold every peak."""
        key = (p, m, v)
        if key not in self._live:
            total, c = m * v, np.arange(v)

            def done(n):  # steps among the first n (array) that ran each chunk
                n = n[:, None]
                return (n // (p * v)) * p + np.clip(n % (p * v) - c * p, 0, p)

            out = []
            for k in range(p):
                warm = min(2 * (p - k - 1) + (v - 1) * p, total)
                i = np.arange(max(warm - 1, 0), min(total, warm + p * v))
                live = done(i + 1) - done(np.maximum(i - warm, 0))[:, ::-1]
                out.append(live.astype(float))
            self._live[key] = out
        return self._live[key]

    def network(self, cluster):
        if self._net is None:
            import simpy

            from ddlsim.sim.network import Network

            self._net = Network(simpy.Environment(), cluster)
        return self._net

    def routes(self, tp: int, cp: int, pp: int, dp: int, mb: int):
        """Per GPU ``k``: (s/B, latency) of the route to GPU ``k+1 mod p`` and back."""
        key = (tp, cp, pp, dp)
        if key not in self._routes:
            from ddlsim.sim.tensor import Layout

            net = self.network(self.prices(tp, cp, mb).cluster)
            lay = Layout(tp, pp, dp, cp)
            caps = np.array([ln.capacity_Bps for ln in net.links])

            def cost(src, dst):
                path = net.route(lay.rank(src), lay.rank(dst))
                inv = float(np.max(path.weights / caps[path.idx])) if path.num_links else 0.0
                return inv, path.latency_s

            fw = [cost(k, (k + 1) % pp) for k in range(pp)]
            bw = [cost((k + 1) % pp, k) for k in range(pp)]
            self._routes[key] = tuple(np.array(x) for x in (
                [f[0] for f in fw], [f[1] for f in fw], [b[0] for b in bw], [b[1] for b in bw]))
        return self._routes[key]

    def reduce_s(self, opts, stage: int, nbytes: float, cluster, scale: float = 1.0) -> float:
        """Seconds of GPU ``stage``'s gradient synchronisation of ``nbytes`` over its dp x cp
        group, as the engine runs it (one group per tp rank when NICs are shared; ZeRO:
        its reduce-scatter and all-gathers in sequence, ``scale``: the ZeRO-3 gather's
        weights per trainable weight), on an otherwise idle network."""
        from ddlsim.api.pipeline import weight_ratio
        from ddlsim.sim.tensor import Layout
        from ddlsim.sim.zero import zero_ops

        if opts.dp * opts.cp == 1 or nbytes <= 0:
            return 0.0
        lay = Layout(opts.tp, opts.stages, opts.dp, opts.cp)
        per_stage = opts.tp if cluster.nics_per_node < cluster.gpus_per_node else 1
        groups = tuple(tuple(lay.grad_group(stage, r)) for r in range(per_stage))
        gpn = cluster.gpus_per_node
        if opts.zero:
            ops = [(op, nbytes * f * (scale if op == "all_gather" else 1.0), "ring")
                   for op, f in zero_ops(opts.zero, weight_ratio(opts))]
        else:
            spans = len({x // gpn for x in groups[0]}) > 1 and gpn > 1
            ops = [("allreduce", nbytes, "hierarchical" if spans else "ring")]
        return sum(self._collective(groups, op, size, algo, cluster) for op, size, algo in ops)

    def _collective(self, groups, op, nbytes, algo, cluster) -> float:
        key = (groups, op, nbytes, algo)
        if key not in self._reduce:
            from ddlsim.sim.collectives import collective

            net = self.network(cluster)
            env = net.env
            start = env.now
            done = env.all_of([env.process(collective(env, net, op, g, nbytes, algo))
                               for g in groups])
            env.run(until=done)
            self._reduce[key] = env.now - start
        return self._reduce[key]

    def tail(self, t: _Table, tp: int, cp: int, pp: int, dp: int, mb: int, vp: int,
             zero: int, params: np.ndarray):
        """``(update, reduce, buckets)``: per GPU its optimizer step (the engine's
        ``sgd_update`` kernel per chunk, ``1/(dp x cp)`` of it under ZeRO) and its gradient
        synchronisation after the last backward (s); ``buckets``: when the engine overlaps
        the reduction with the backward (``grad_bucket_bytes > 0``), per chunk and GPU
        ``(buckets, seconds per bucket)``, else None."""
        key = (tp, cp, pp, dp, vp, zero)
        if key not in self._update:
            from ddlsim.opspec import call
            from ddlsim.sim.tensor import OPTIMIZER_ELEMENTS
            from ddlsim.units import dtype_bytes

            opts = self.options(tp, pp, dp, mb, "none", vp, zero, cp)
            per = OPTIMIZER_ELEMENTS[opts.optimizer] / 5
            upd = np.array([float(t.estimate(call("sgd_update", numel=math.ceil(x * per)),
                                             "float32")) if x > 0 else 0.0 for x in params])
            upd = upd / (dp * cp if zero else 1)
            grads = (params * dtype_bytes(opts.grad_dtype or opts.dtype)).reshape(vp, pp)
            lp = self.prices(tp, cp, mb)
            scales = [1.0] * pp
            if zero == 3:
                from ddlsim.api.finetune import gather_scales

                scales = gather_scales(lp.layers, self.bounds(tp, cp, mb, pp * vp), pp, vp)
            bucket = float(getattr(opts, "grad_bucket_bytes", 0.0))
            buckets = None
            if bucket > 0 and dp * cp > 1:
                nb = np.where(grads > 0, np.maximum(1, np.ceil(grads / bucket)), 0)
                r = np.array([[self.reduce_s(opts, k, float(grads[c, k] / nb[c, k]),
                                             lp.cluster, scales[k]) if nb[c, k] else 0.0
                               for k in range(pp)] for c in range(vp)])
                buckets, red = (nb, r), np.zeros(pp)
            else:
                red = np.array([self.reduce_s(opts, k, float(x), lp.cluster, scales[k])
                                for k, x in enumerate(grads.sum(0))])
            self._update[key] = (upd.reshape(vp, pp).sum(0), red, buckets)
        return self._update[key]

    # ------------------------------------------------------------------ one layout
    def prefetched(self, fwd, bwd, params, tp, cp, pp, dp, mb, vp):
        """Chunk times under ZeRO-3's per-micro-batch weight gathers, as the engine
        prices them (:meth:`PipelineOptions.zero3_gather_s`): at least the gather each."""
        from ddlsim.api.finetune import gather_scales
        from ddlsim.api.pipeline import weight_ratio
        from ddlsim.units import dtype_bytes

        opts = self.options(tp, pp, dp, mb, "none", vp, 3, cp)
        lp = self.prices(tp, cp, mb)
        scales = gather_scales(lp.layers, self.bounds(tp, cp, mb, pp * vp), pp, vp)
        wb = dtype_bytes(opts.grad_dtype or opts.dtype) * weight_ratio(opts)
        g = np.array([opts.zero3_gather_s(lp.cluster, float(x) * wb * scales[i % pp])
                      for i, x in enumerate(params)])
        return np.maximum(fwd, g), np.maximum(bwd, g)

    def evaluate(self, tp: int, pp: int, dp: int, mb: int, rc: str, vp: int = 1,
                 zero: int = 0, cp: int = 1) -> FastEstimate:
        """Memory and time per iteration of one layout (see the module docstring)."""
        p, v = pp, vp
        m = self.global_batch // (dp * mb)
        t = self.table(tp, cp, mb, rc)
        st_cum, gathered = self.static(tp, cp, dp, mb, zero)
        b = self.bounds(tp, cp, mb, p * v)
        a0, a1 = b[:-1], b[1:]
        lp = self.prices(tp, cp, mb)
        cap = float(lp.models[lp.stage_devices[0]].device.memory_bytes)
        # ---- memory of each GPU
        static = st_cum[a1] - st_cum[a0]
        act = t.stored[a1] - t.stored[a0]
        seg0 = t.segment[a0]
        rec = (np.maximum.reduceat(t.seg_full, seg0) if rc == "full"
               else np.zeros(p * v))
        gath = np.maximum.reduceat(gathered, seg0) if gathered is not None else np.zeros(p * v)
        if v == 1:
            infl = np.minimum(p - np.arange(p), m)
            need = static + infl * act + rec + gath
        else:
            live = self.live(p, m, v)
            acts = act.reshape(v, p)
            peak = np.array([max(0.0, float(np.max(live[k] @ acts[:, k]))) for k in range(p)])
            need = (static.reshape(v, p).sum(0) + peak + rec.reshape(v, p).max(0)
                    + gath.reshape(v, p).max(0))
        memory = float(np.max(need)) + t.workspace
        # ---- time
        fwd, bwd = t.fwd[a1] - t.fwd[a0], t.bwd[a1] - t.bwd[a0]
        params = t.params[a1] - t.params[a0]
        if zero == 3 and m > 1 and dp * cp > 1:  # per-micro-batch gathers, prefetched
            fwd, bwd = self.prefetched(fwd, bwd, params, tp, cp, pp, dp, mb, vp)
        gpu_t = (fwd + bwd).reshape(v, p).sum(0)
        n = p * v
        comm = 0.0
        cg = np.zeros(max(p - 1, 0))
        if n > 1:
            inv_f, lat_f, inv_b, lat_b = self.routes(tp, cp, p, dp, mb)
            k = np.arange(n - 1) % p
            sent = t.out_bytes[a1[:-1] - 1]
            c_act = sent * inv_f[k] + lat_f[k]
            c_grad = sent * inv_b[k] + lat_b[k]
            comm = float(c_act.sum() + c_grad.sum())
            cg = c_grad[:p - 1]
        back = np.concatenate(([0.0], np.cumsum(bwd[:p - 1] + cg)))
        if v == 1:
            pipe = one_f_one_b_s(fwd, bwd, c_act if n > 1 else np.zeros(0),
                                c_grad if n > 1 else np.zeros(0), m, back)
        else:
            pipe = interleaved_s(gpu_t, m, v, comm)
        upd, red, buckets = self.tail(t, tp, cp, p, dp, mb, v, zero, params)
        ends = pipe - back
        if buckets is not None:
            ends = overlapped_reduce_end(ends, bwd.reshape(v, p), *buckets)
        it = float(np.max(ends + red + upd))
        bubble = 1.0 - m * float(gpu_t.sum()) / (p * it) if it > 0 else 0.0
        return FastEstimate(memory, cap, it, pipe, it - pipe, bubble)

