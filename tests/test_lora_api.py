"""LoRA through every way in: the prediction (model FLOPs convention, memory, ZeRO-3 and
tensor parallelism), the CLI, scenario files, time to train and the quality plan of the
MLPerf Llama-2 70B LoRA benchmark."""

from __future__ import annotations

from dataclasses import replace

import pytest
from click.testing import CliRunner

from ddlsim import api
from ddlsim.api.plan import ConfigPrediction, PlanOptions, plan
from ddlsim.api.time_to_train import benchmark_step_equivalents, time_to_train
from ddlsim.cli import cli
from ddlsim.convergence import rcp
from ddlsim.errors import ConfigError
from ddlsim.job import Batch, Cluster, Job, Parallelism, Strategy, Workload
from ddlsim.sim import workloads as W
from ddlsim.sim.tensor import megatron_model_flops

SEQ = (("seq", 8192),)


def dp_job(lora_rank=8, zero=0, model="gpt-small"):
    return Job(workload=Workload(model, lora_rank=lora_rank), cluster=Cluster("dgx-a100", 8),
               parallelism=Parallelism(zero=zero), batch=Batch(micro=4),
               strategy=Strategy(kind="allreduce"), iterations=3)


def mlperf_job(**wl):
    """Llama-2 70B LoRA on one DGX H100: tp 4 with sequence parallelism, dp 2, batch 8."""
    return Job(workload=Workload("llama2-70b", SEQ, **wl), cluster=Cluster("dgx-h100", 8),
               parallelism=Parallelism(tp=4, sequence_parallel=True, recompute="full"),
               batch=Batch(global_batch=8, micro=1), strategy=Strategy(kind="3d"))


def test_data_parallel_lora_counts_executed_flops_and_adapter_state_only():
    full, lo = api.predict(dp_job(None)), api.predict(dp_job())
    wl = W.apply_lora(W.get_workload("gpt-small", 4), W.LoraSpec(8))
    assert lo.model_flops == wl.train_flops * 8  # forward + backward as executed
    assert lo.forward_flops == pytest.approx(wl.fwd_flops * 8, rel=1e-12)
    assert full.forward_flops is None
    assert lo.model_flops < 0.75 * full.model_flops  # no weight gradients for the base
    assert lo.memory_bytes < full.memory_bytes and lo.iteration_s < full.iteration_s
    need, _ = api.check_memory(dp_job())
    assert need == lo.memory_bytes


def test_zero3_gathers_the_frozen_base_with_the_adapters():
    z1, z3 = api.predict(dp_job(zero=1)), api.predict(dp_job(zero=3))
    assert z3.iteration_s > z1.iteration_s  # 2 x 250 MB of frozen bf16 weights gathered
    from ddlsim.api.finetune import gather_scales

    w = W.apply_lora(W.get_workload("gpt-small", 1), W.LoraSpec(8))
    n = len(w.layers)
    (scale,) = gather_scales(w.layers, [0, n], 1, 1)
    assert scale == pytest.approx(1 + w.frozen_param_count / w.param_count)


def test_llama2_70b_lora_on_a_dgx_h100_fits_and_counts_about_4n_per_token():
    pred = api.predict(mlperf_job(lora_rank=16))
    assert pred.fits and pred.memory_bytes < 40 * 2**30
    wl = W.apply_lora(W.get_workload("llama2-70b", 1, seq=8192), W.MLPERF_LORA)
    assert pred.model_flops == pytest.approx(wl.train_flops * 8, rel=1e-12)
    assert pred.hardware_flops == pytest.approx(pred.model_flops + wl.fwd_flops * 8, rel=1e-12)
    p = W.LLAMA_PRESETS["llama2-70b"]
    full = megatron_model_flops(8, 8192, p.layers, p.hidden, p.vocab, heads=p.heads,
                                kv_heads=p.kv_heads, ffn=p.ffn, gated=True)
    assert 0.6 < pred.model_flops / full < 0.75  # ~4N (+ attention) of full training's 6N
    (stage,) = pred.detail.memory
    frozen, adapters = wl.frozen_param_count, wl.param_count
    assert stage.weights_bytes == pytest.approx(2 * (frozen + adapters) / 4, rel=1e-3)
    assert stage.grads_bytes == pytest.approx(4 * adapters / 4, rel=1e-12)
    assert stage.optimizer_bytes == pytest.approx(12 * adapters / 4, rel=1e-12)


def test_parameter_servers_refuse_lora():
    with pytest.raises(ConfigError, match="not parameter servers"):
        api.predict(replace(dp_job(), strategy=Strategy(kind="ps")))


# --------------------------------------------------------------------------- time to train
def test_time_to_train_applies_the_benchmark_recipe_to_a_job_without_lora():
    implicit, explicit = time_to_train(mlperf_job()), time_to_train(mlperf_job(lora_rank=16))
    assert implicit.total_s == explicit.total_s and implicit.steps == explicit.steps
    assert any("LoRA recipe of the llama2_70b_lora benchmark applied: rank 16" in n
               for n in implicit.notes)
    assert implicit.prediction.job.workload.lora_rank == 16
    conv = rcp.converge_at("llama2_70b_lora", 8)
    assert implicit.steps == conv.steps and implicit.train_s == conv.steps * implicit.iteration_s
    with pytest.raises(ConfigError, match=r"use Workload\('llama2-70b', lora_rank=16\)"):
        benchmark_step_equivalents(mlperf_job())  # no silent recipe without a prediction
    steps, note = benchmark_step_equivalents(mlperf_job(lora_rank=16))
    assert steps == conv.steps and "llama2_70b_lora" in note  # no eval-set size: no extra


def test_quality_plan_of_llama2_70b_plans_the_lora_recipe_at_8192_tokens():
    seen = []

    def toy(model, preset, gpus, opts):
        seen.append(opts.workload())
        return ConfigPrediction("toy", 5.0, opts.global_batch, dp=gpus)

    r = plan(PlanOptions(model="llama2-70b", target="quality", global_batch=8,
                         gpus=("h100-sxm",), max_gpus=8), predictor=toy)
    assert seen and all(w.lora_rank == 16 and dict(w.architecture)["seq"] == 8192
                        for w in seen)
    assert (r.table["steps"] == rcp.converge_at("llama2_70b_lora", 8).steps).all()
    assert any("LoRA recipe" in n for n in r.notes)
    assert any("about 1/2" in n for n in r.notes)  # a LoRA forward is half a step


# --------------------------------------------------------------------------- CLI, scenarios
def test_cli_lora_rank_on_dp_and_3d_and_its_one_line_errors(capsys):
    from ddlsim.cli import main

    run = CliRunner().invoke
    bad = run(cli, ["dp", "--model", "gpt-small", "--lora-rank", "0"])
    assert bad.exit_code == 2 and "'--lora-rank': 0 is not in the range x>=1" in bad.output
    with pytest.raises(SystemExit) as exc:
        main(["dp", "--model", "gpt-small", "--lora-targets", "q,v"])
    assert exc.value.code == 1
    assert capsys.readouterr().err.strip() == (
        "error: workload.lora_targets: needs workload.lora_rank (LoRA fine-tuning), got "
        "lora_targets=('q', 'v')")
    ok = run(cli, ["dp", "--model", "gpt-small", "--batch", "4", "--iterations", "3",
                   "--lora-rank", "8", "--lora-targets", "q,v", "--json"])
    assert ok.exit_code == 0, ok.output
    three = run(cli, ["3d", "--model", "llama2-7b", "--tp", "2", "--pp", "1", "--dp", "4",
                      "--global-batch", "16", "--lora-rank", "16", "--json"])
    assert three.exit_code == 0, three.output
    assert "model_tflops_per_gpu" in three.output


def test_scenario_workload_keys_reach_the_job():
    from ddlsim.api.run import strategy_job
    from ddlsim.scenarios.loader import parse_scenario

    text = ("name: lora\nworkload:\n  model: gpt-small\n  batch_per_gpu: 4\n  lora_rank: 8\n"
            "  lora_targets: [q, v]\nstrategies:\n  - kind: allreduce\n")
    sc = parse_scenario(text)
    job = strategy_job(sc, sc.strategies[0])
    assert job.workload.lora_settings() == (8, ("q", "v"), 0.1)
    with pytest.raises(ConfigError, match="lora_rank: Input should be greater than 0"):
        parse_scenario(text.replace("lora_rank: 8", "lora_rank: 0"))
    with pytest.raises(ConfigError, match="lora_targets and lora_dropout need lora_rank"):
        parse_scenario(text.replace("  lora_rank: 8\n", ""))
