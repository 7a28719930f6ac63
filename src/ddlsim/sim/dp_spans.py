"""Perfetto trace spans of one synchronous data-parallel GPU (:mod:`ddlsim.sim.sync_dp`)."""

from __future__ import annotations


def compute_spans(rank, ref, t_fwd, fwd_l, fwd_end, bwd_l, upd_start, upd_s, h2d_s,
                  bwd_k=None):
    """Trace spans ``(track, name, start, duration)`` of one GPU's iteration: the H2D
    copy, each layer's forward and backward, the optimizer step (``ref``: the StepCost).
    A layer whose forward is recomputed (``ref.bwd_recompute``) gets a ``recompute``
    span, its first backward kernel in ``bwd_k`` (the row's per-kernel seconds), before
    its ``bwd`` span."""
    track = f"gpu{rank} compute"
    out = []
    if h2d_s > 0:
        out.append((track, "h2d copy", t_fwd - h2d_s, h2d_s))
    t = t_fwd
    for name, dur in zip(ref.layer_names, fwd_l, strict=True):
        out.append((track, f"fwd {name}", t, dur))
        t += dur
    t = fwd_end
    redo = ref.bwd_recompute if bwd_k is not None else None
    for i, (name, dur) in enumerate(zip(reversed(ref.layer_names), bwd_l, strict=True)):
        if redo is not None and redo[i]:
            rc = float(bwd_k[ref.bwd_bounds[i]])
            out.append((track, f"recompute {name}", t, rc))
            t, dur = t + rc, dur - rc
        out.append((track, f"bwd {name}", t, dur))
        t += dur
    out.append((track, "optimizer step", upd_start, upd_s))
    return out
