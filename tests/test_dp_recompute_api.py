"""Recomputation through api.predict and ``ddlsim dp`` for a pure data-parallel job:
backward and hardware FLOPs include the recomputed forward, memory as before, and
recompute='none' is today's prediction."""

import json

import pytest
from click.testing import CliRunner

from ddlsim import api
from ddlsim.api.dp import DPOptions, cost_models, counting_estimator, predict_dp
from ddlsim.cli import cli
from ddlsim.sim.sync_dp import step_cost
from ddlsim.sim.workloads import get_workload


def job(recompute: str | None, model: str = "gpt-small", **wl) -> api.Job:
    par = api.Parallelism() if recompute is None else api.Parallelism(recompute=recompute)
    return api.Job(workload=api.Workload(model, **wl), cluster=api.Cluster("dgx-a100", 8),
                   batch=api.Batch(micro=4), iterations=3, parallelism=par)


def test_none_is_the_default_prediction_bit_for_bit():
    a, b = api.predict(job(None)), api.predict(job("none"))
    assert a.iteration_s == b.iteration_s and a.hardware_flops == b.hardware_flops
    assert a.detail.result.iteration_end.tolist() == b.detail.result.iteration_end.tolist()
    assert a.hardware_flops == a.model_flops and a.hfu == a.mfu
    assert b.detail.recompute_flops == 0.0


def test_full_recompute_adds_one_forward_to_the_backward():
    none = predict_dp(DPOptions(model="gpt-small", batch_per_gpu=4, gpus=8, iterations=3,
                                dtype="bfloat16"))
    full = predict_dp(DPOptions(model="gpt-small", batch_per_gpu=4, gpus=8, iterations=3,
                                dtype="bfloat16", recompute="full"))
    model = cost_models(none.cluster.devices, [])["a100-80gb"]
    cost = step_cost(get_workload("gpt-small", 4), counting_estimator(model, {}), "bfloat16")
    assert full.backward_s == pytest.approx(none.backward_s + cost.fwd_total_s, rel=1e-12)
    assert full.samples_per_s < none.samples_per_s


def test_hfu_over_mfu_is_fwd_bwd_fwd_over_fwd_bwd():
    wl = get_workload("gpt-small", 4)
    p = api.predict(job("full"))
    ratio = (2 * wl.fwd_flops + wl.bwd_flops) / (wl.fwd_flops + wl.bwd_flops)
    assert p.hardware_flops / p.model_flops == pytest.approx(ratio, rel=1e-12)
    assert p.hfu / p.mfu == pytest.approx(ratio, rel=1e-12)
    assert p.hfu > p.mfu
    assert p.iteration_s > api.predict(job("none")).iteration_s


def test_lora_full_recompute_counts_the_lora_forward():
    p = api.predict(job("full", lora_rank=8))
    assert p.hfu / p.mfu == pytest.approx(1 + p.forward_flops / p.model_flops, rel=1e-12)


def test_selective_with_fused_attention_is_free_and_memory_is_unchanged():
    none, sel, full = (api.predict(job(r)) for r in ("none", "selective", "full"))
    assert sel.iteration_s == none.iteration_s and sel.hardware_flops == sel.model_flops
    for r, p in (("none", none), ("selective", sel), ("full", full)):
        assert p.memory_bytes == api.check_memory(job(r))[0]
    assert full.memory_bytes < none.memory_bytes


def test_selective_flops_are_the_unfused_attention_cores():
    from ddlsim.api.dp import recompute_flops

    wl = get_workload("gpt-small", 4, attention="unfused")
    core = sum(lay.fwd_flops for lay in wl.layers if lay.kind == "attention")
    assert core > 0 and recompute_flops(wl, "selective") == pytest.approx(core, rel=1e-12)
    assert recompute_flops(wl, "full") == pytest.approx(wl.fwd_flops, rel=1e-12)
    assert recompute_flops(wl, "none") == 0.0


def test_cli_dp_recompute():
    help_text = CliRunner().invoke(cli, ["dp", "--help"]).output
    assert "--recompute" in help_text and "selective" in help_text and "full" in help_text
    res = CliRunner().invoke(cli, ["dp", "--model", "gpt-small", "--batch", "4", "--gpus",
                                   "8", "--iterations", "3", "--recompute", "full", "--json"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.output)["predictions"][0]
    assert row["hfu"] > row["mfu"]
    assert row["iteration_s"] == pytest.approx(api.predict(job("full")).iteration_s, rel=1e-12)
