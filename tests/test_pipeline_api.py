"""api.pipeline end to end: predictions, memory results that do not fit, heterogeneous
placement, validation rows, and the report folder."""


import pandas as pd
import pytest

from ddlsim.api.pipeline import PipelineOptions, ThreeDOptions, predict_model_parallel
from ddlsim.errors import ConfigError
from ddlsim.sim.tensor import megatron_model_flops

SMALL = (("layers", 4),)


def _place(opts):
    """Placement and memory only (the engine without simulation)."""
    return predict_model_parallel(opts, simulate=False)


def test_pipeline_prediction_consistent_numbers():
    opts = PipelineOptions(model="gpt-small", micro_batch=2, micro_batches=6, stages=2,
                           model_overrides=SMALL)
    pred = predict_model_parallel(opts)
    s = pred.summary()
    assert s["fits"] and len(pred.memory) == 2
    assert s["samples_per_s"] == pytest.approx(12 / s["iteration_s"])
    assert s["tokens_per_s"] == pytest.approx(1024 * s["samples_per_s"])
    flops = megatron_model_flops(12, 1024, 4, 768, 50257)
    assert s["model_tflops_per_gpu"] == pytest.approx(flops / s["iteration_s"] / 2 / 1e12)
    # 1F1B: stage 0 holds min(p, m) = 2 micro-batches, the last stage 1
    assert [m.micro_batches_in_flight for m in pred.memory] == [2, 1]
    assert pred.result.peak_in_flight == [2, 1]
    # bubble close to (p-1)/(m+p-1) when stages are balanced (communication is small)
    assert s["bubble_fraction"] == pytest.approx(1 / 7, abs=0.08)


def test_gpipe_holds_more_activation_memory_than_1f1b():
    base = dict(model="gpt-small", micro_batch=2, micro_batches=8, stages=2,
                model_overrides=SMALL)
    gp = _place(PipelineOptions(schedule="gpipe", placement="blocks", **base))
    fb = _place(PipelineOptions(schedule="1f1b", placement="blocks", **base))
    assert gp.memory[0].activations_bytes == pytest.approx(4 * fb.memory[0].activations_bytes)


def test_not_fitting_is_a_result_with_suggestions():
    opts = PipelineOptions(model="gpt3-1.3b", micro_batch=8, micro_batches=8, stages=2,
                           schedule="gpipe", cluster="pcie-8gpu", dtype="float16")
    pred = _place(opts)
    assert not pred.fits
    worst = max(pred.memory, key=lambda m: m.over_bytes)
    assert worst.over_bytes > 0 and worst.device == "l4"
    assert pred.suggestions and any("fit" in s for s in pred.suggestions)


def test_heterogeneous_auto_placement_gives_more_layers_to_the_faster_gpu():
    opts = PipelineOptions(model="gpt-small", micro_batch=2, micro_batches=4, stages=2,
                           devices=("a100-80gb", "l4"), cluster="dgx-a100",
                           model_overrides=SMALL)
    pred = _place(opts)
    a, b, c = pred.bounds
    assert pred.stage_devices == ("a100-80gb", "l4")
    assert (b - a) > (c - b)


def test_manual_placement_and_bad_input():
    opts = PipelineOptions(model="lenet5", micro_batch=8, micro_batches=2, stages=2,
                           placement="manual", balance=(5, 7), cluster="dgx-a100")
    pred = predict_model_parallel(opts)
    assert pred.bounds == (0, 5, 12)
    with pytest.raises(ConfigError, match="balance: manual placement needs 2"):
        PipelineOptions(stages=2, placement="manual", balance=(5,))
    with pytest.raises(ConfigError, match="global_batch: must be a multiple"):
        ThreeDOptions(dp=3, global_batch=16)


def test_tensor_parallel_3d_runs_and_splits_compute():
    kw = dict(model="gpt-small", pp=2, dp=2, micro_batch=1, global_batch=8,
              model_overrides=SMALL, cluster="dgx-a100")
    one = predict_model_parallel(ThreeDOptions(tp=1, **kw))
    two = predict_model_parallel(ThreeDOptions(tp=2, **kw))
    assert two.options.num_gpus == 8
    # per-GPU forward compute roughly halves (replicated layernorms and TP collectives
    # keep it above half)
    assert 0.5 * one.stage_costs[0].fwd_s < two.stage_costs[0].fwd_s < one.stage_costs[0].fwd_s
    assert len(two.result.allreduces) == 2  # one DP allreduce per stage


def test_report_folder(tmp_path):
    from ddlsim.reports.pipeline import write_pipeline_report

    pred = predict_model_parallel(PipelineOptions(model="gpt-small", micro_batch=1, micro_batches=3,
                                            stages=2, model_overrides=SMALL))
    out = write_pipeline_report(pred, tmp_path / "rep")
    for name in ("summary.csv", "stages.csv", "ops.csv", "sends.csv", "trace.json",
                 "timeline.png", "memory.png", "report.md"):
        assert (out / name).exists(), name
    ops = pd.read_csv(out / "ops.csv")
    assert len(ops) == 2 * 2 * 3
    assert "| stage |" in (out / "report.md").read_text()


# --------------------------------------------------------------------------- Llama TP, CP
LLAMA_SMALL = (("layers", 4), ("seq", 1024))


def test_llama_tensor_parallel_prediction_uses_the_general_megatron_flops():
    opts = ThreeDOptions(model="llama3-8b", tp=2, pp=2, dp=1, micro_batch=1, global_batch=4,
                         cluster="dgx-h100", model_overrides=LLAMA_SMALL)
    s = predict_model_parallel(opts).summary()
    assert s["gpus"] == 4
    # Megatron's num_floating_point_operations with GQA (8 of 32 heads) and SwiGLU
    flops = megatron_model_flops(4, 1024, 4, 4096, 128256, heads=32, kv_heads=8,
                                 ffn=14336, gated=True)
    assert s["model_tflops_per_gpu"] == pytest.approx(flops / s["iteration_s"] / 4 / 1e12)


def test_context_parallel_halves_per_gpu_work_and_counts_its_gpus():
    # seq 4096: with fused attention (the default) a 1024-token sequence leaves too little
    # attention work per GPU for cp=2 to pay for its gradient allreduce (it did so by a
    # hair, 0.3 %, with unfused attention)
    base = dict(model="llama3-8b", tp=1, pp=1, dp=1, micro_batch=1, global_batch=2,
                cluster="dgx-h100", model_overrides=(("layers", 4), ("seq", 4096)))
    one = predict_model_parallel(ThreeDOptions(**base))
    two = predict_model_parallel(ThreeDOptions(cp=2, **base))
    assert two.options.num_gpus == 2 and two.summary()["gpus"] == 2
    # same model FLOPs and tokens per iteration; the compute per GPU about halves (the
    # ring p2p hides behind attention, the cp gradient allreduce is added)
    assert two.model_flops == one.model_flops
    f1, f2 = one.stage_costs[0].fwd_s, two.stage_costs[0].fwd_s
    assert f2 == pytest.approx(f1 / 2, rel=0.15)
    assert two.iteration_s < one.iteration_s
    assert two.result.allreduces and not one.result.allreduces  # gradients over dp x cp


def test_cp1_options_predict_exactly_as_before():
    base = dict(model="gpt-small", tp=2, pp=2, dp=2, micro_batch=1, global_batch=8,
                cluster="dgx-a100", model_overrides=SMALL)
    a = predict_model_parallel(ThreeDOptions(**base)).summary()
    b = predict_model_parallel(ThreeDOptions(cp=1, **base)).summary()
    assert a == b
    with pytest.raises(ConfigError, match="cp: must be an integer >= 1"):
        ThreeDOptions(cp=0, **base)


def test_3d_cli_context_parallel(capsys):
    from click.testing import CliRunner

    from ddlsim.cli import cli, main

    res = CliRunner().invoke(cli, ["3d", "--model", "llama3-8b", "--tp", "1", "--pp", "1",
                                   "--dp", "2", "--cp", "2", "--global-batch", "8",
                                   "--micro-batch", "1", "--cluster", "dgx-h100"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("calibration: stored")
    assert lines[1].startswith("4 x h100-sxm, llama3-8b, bfloat16: ")
    header, values = lines[2:4]
    cols = dict(zip(header.split(), values.split(), strict=False))
    assert (cols["gpus"], cols["tp"], cols["cp"], cols["dp"]) == ("4", "1", "2", "2")
    with pytest.raises(SystemExit) as exc:
        main(["3d", "--model", "llama3-8b", "--cp", "0"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "'--cp': 0 is not in the range x>=1" in err
    assert len(err.splitlines()) == 1
    assert len(err.splitlines()) == 1
