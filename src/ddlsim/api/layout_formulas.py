"""Closed forms of the layout search's fast path (:mod:`ddlsim.api.layout_fast`): the 1F1B
pipeline's time until its last backward (:func:`one_f_one_b_s`), the interleaved one
(:func:`interleaved_s`) and when each GPU's gradients are reduced when the reduction
overlaps the backward (:func:`overlapped_reduce_end`). Inputs are NumPy arrays of seconds
per micro-batch; they mirror the orders of :mod:`ddlsim.sim.pipeline`."""

from __future__ import annotations

import numpy as np


def interleaved_s(gpu_t: np.ndarray, m: int, v: int, comm_s: float) -> float:
    """Interleaved 1F1B (``v`` chunks per GPU, ``gpu_t``: each GPU's forward + backward
    seconds per micro-batch over its chunks, ``comm_s``: every boundary's activation and
    gradient send, summed): ``(m - 1/v) max t + sum t / v + comm`` (``(m + (p-1)/v)`` slots
    for equal stages; during warm-up and cool-down each GPU waits once per chunk for the
    ring of sends, so every one of the ``2 (p v - 1)`` sends is on the critical path)."""
    return (m - 1 / v) * float(gpu_t.max()) + float(gpu_t.sum()) / v + comm_s


def one_f_one_b_s(fwd: np.ndarray, bwd: np.ndarray, c_act: np.ndarray, c_grad: np.ndarray,
                 m: int, back: np.ndarray) -> float:
    """Seconds until GPU 0's last backward of a 1F1B pipeline of ``p`` stages (forward
    ``fwd``, backward ``bwd`` per micro-batch, sends ``c_act`` / ``c_grad`` per boundary,
    ``back[s]``: the backward chain from stage ``s`` down to 0).

    The larger of two bounds. Compute: stage ``s`` starts when micro-batch 0 reaches it,
    runs its ``m`` forwards and backwards, waits once for micro-batch 0's round trip
    downstream ``D_s`` (after its ``min(p-s, m)`` warm-up forwards) and once for the last
    micro-batch's (after its last forward), then the chain runs back to GPU 0 (exact for
    the engine's order when one stage limits, e.g. the last with the output layer, or the
    first ``L mod p`` of an uneven split). Communication: stage ``s`` starts micro-batch
    ``j + (p - s)`` only after micro-batch ``j``'s round trip ``R_s`` through the stages
    from ``s`` on (1F1B keeps ``p - s`` in flight), so micro-batch ``m - 1 = q (p-s) + r``
    ends its backward there at least ``(q + 1) R_s`` after micro-batch ``r`` started: a
    period of ``R_s / (p - s)``, ``t + 2 (p-1)/p c`` for ``p`` equal stages."""
    p = fwd.size
    t = fwd + bwd
    cc = np.append(c_act + c_grad, 0.0)  # boundary s: to s + 1 and back
    start = np.concatenate(([0.0], np.cumsum(fwd[:-1] + c_act)))
    suf_t = np.cumsum(t[::-1])[::-1]
    suf_c = np.cumsum(cc[::-1])[::-1]
    down = suf_t - t + suf_c
    warm = np.minimum(p - 1 - np.arange(p), m)
    first = np.minimum(warm + 1, m)  # forwards before the first backward
    stall = np.maximum(0.0, fwd + down - first * fwd)
    last_fwd = start + m * fwd + np.maximum(0, m - 1 - warm) * bwd + np.where(m > first,
                                                                           stall, 0.0)
    compute = np.max(np.maximum(start + stall + m * t, last_fwd + down + bwd) + back)
    n = p - np.arange(p)  # micro-batches in flight from each stage on
    q, r = (m - 1) // n, (m - 1) % n
    comm = np.max(start + r * fwd + (q + 1) * (suf_t + suf_c) + back)
    return float(max(compute, comm))


def overlapped_reduce_end(ends: np.ndarray, bwd: np.ndarray, nb: np.ndarray, r: np.ndarray
                ) -> np.ndarray:
    """Per GPU, when its gradients are reduced, the reduction overlapped with the backward
    as the engine runs it: chunk ``c``'s gradients leave in ``nb[c]`` equal buckets during
    its last backward (bucket ``i`` ready ``i/nb`` of the way through it), reduced one after
    another (``r[c]`` s each) on one stream per GPU; ``ends``: each GPU's last backward
    done. Interleaved, chunk ``c``'s last backward is followed by the ``c p`` backwards of
    the chunks before it (assumed back to back), so the chunks are reduced from the last
    to the first. The stream's last bucket of ``nb`` ends at ``max(free + nb r,
    ready_1 + nb r, ready_nb + r)``."""
    v, p = bwd.shape
    after = p * np.concatenate((np.zeros((1, p)), np.cumsum(bwd, axis=0)[:-1]))
    done = np.full(p, -np.inf)
    for c in range(v - 1, -1, -1):
        end = ends - after[c]
        n = np.maximum(nb[c], 1)
        last = np.maximum.reduce([done + n * r[c], end - bwd[c] + bwd[c] / n + n * r[c],
                                  end + r[c]])
        done = np.where(nb[c] > 0, last, done)
    return np.maximum(ends, done)
