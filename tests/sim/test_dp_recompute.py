"""Activation recomputation in the synchronous data-parallel engine: the model-parallel
engine's rule (sim.tensor_costs.recompute_times) priced into each layer's backward."""

import numpy as np
import pytest

from ddlsim.opspec import flops
from ddlsim.sim.sync_dp import SyncDPConfig, segment_sums, simulate_sync_dp, step_cost
from ddlsim.sim.workloads import get_workload


def estimate(kc, dtype):
    """A deterministic, shape-dependent kernel price (1 PFLOP/s plus 1 us launch)."""
    return flops(kc) / 1e15 + 1e-6


def no_comm(env, nbytes):
    yield env.timeout(0)


def per_layer(cost):
    """(forward seconds per layer in forward order, backward seconds in backward order)."""
    return (segment_sums(cost.fwd_s[None], cost.fwd_bounds)[0],
            segment_sums(cost.bwd_s[None], cost.bwd_bounds)[0])


def test_none_is_todays_step_cost_bit_for_bit():
    wl = get_workload("gpt-small", 4)
    old = step_cost(wl, estimate, "bfloat16", "float32")
    new = step_cost(wl, estimate, "bfloat16", "float32", recompute="none")
    assert new.bwd_recompute is None and new.update_s == old.update_s
    for f in ("fwd_s", "fwd_bounds", "bwd_s", "bwd_bounds", "bwd_grad_bytes"):
        assert getattr(new, f).tolist() == getattr(old, f).tolist()
    # today's construction, written out: each layer's backward kernels in backward order
    want = [estimate(kc, "bfloat16") for lay in reversed(wl.layers) for kc in lay.bwd]
    assert new.bwd_s.tolist() == want
    cfg = SyncDPConfig(iterations=3, batch_per_gpu=4, trace_iterations=(2,))
    a = simulate_sync_dp([old] * 8, no_comm, cfg)
    b = simulate_sync_dp([new] * 8, no_comm, cfg)
    assert a.iteration_end.tolist() == b.iteration_end.tolist()
    assert a.spans == b.spans and not any("recompute" in s[1] for s in b.spans)


def test_full_adds_exactly_one_forward_per_layer():
    wl = get_workload("gpt-small", 4)
    none = step_cost(wl, estimate, "bfloat16")
    full = step_cost(wl, estimate, "bfloat16", recompute="full")
    fwd_l, bwd_none = per_layer(none)
    _, bwd_full = per_layer(full)
    # hand count: layer i's backward grows by exactly its own forward
    np.testing.assert_allclose(bwd_full - bwd_none, fwd_l[::-1], rtol=1e-12, atol=0)
    assert full.fwd_s.tolist() == none.fwd_s.tolist()  # the forward itself is unchanged
    assert full.bwd_total_s == pytest.approx(none.bwd_total_s + none.fwd_total_s, rel=1e-12)
    assert bool(full.bwd_recompute.all())
    # 8 GPUs without communication: each iteration is one forward longer
    cfg = SyncDPConfig(iterations=2, batch_per_gpu=4, trace_iterations=(1,))
    t_none = simulate_sync_dp([none] * 8, no_comm, cfg).iteration_times_s
    res = simulate_sync_dp([full] * 8, no_comm, cfg)
    np.testing.assert_allclose(res.iteration_times_s - t_none, none.fwd_total_s, rtol=1e-9)
    spans = {name: dur for _, name, _, dur in res.spans}
    for name, f in zip(none.layer_names, fwd_l, strict=True):
        assert spans[f"recompute {name}"] == pytest.approx(f, rel=1e-12)


def test_selective_adds_only_the_attention_core_forward():
    wl = get_workload("gpt-small", 4, attention="unfused")
    none = step_cost(wl, estimate, "bfloat16")
    sel = step_cost(wl, estimate, "bfloat16", recompute="selective")
    fwd_l, bwd_none = per_layer(none)
    _, bwd_sel = per_layer(sel)
    core = np.array([lay.kind == "attention" for lay in wl.layers])
    assert core.sum() == 12  # one attention core per block
    want = np.where(core, fwd_l, 0.0)[::-1]
    np.testing.assert_allclose(bwd_sel - bwd_none, want, rtol=1e-12, atol=1e-15)
    assert sel.bwd_recompute.tolist() == core[::-1].tolist()
    assert sel.bwd_total_s < none.bwd_total_s + none.fwd_total_s / 2


def test_selective_with_fused_attention_recomputes_nothing():
    """FlashAttention stores no score tensor, so selective has nothing to recompute
    (the model-parallel engine's rule)."""
    wl = get_workload("gpt-small", 4)  # fused by default
    none = step_cost(wl, estimate, "bfloat16")
    sel = step_cost(wl, estimate, "bfloat16", recompute="selective")
    assert sel.bwd_s.tolist() == none.bwd_s.tolist()
    assert not sel.bwd_recompute.any()
