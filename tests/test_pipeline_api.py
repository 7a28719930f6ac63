"""api.pipeline end to end: predictions, memory results that do not fit, heterogeneous
placement, validation rows, and the report folder."""

from dataclasses import replace

import pandas as pd
import pytest

from ddlsim.api.pipeline import (
    PipelineOptions,
    ThreeDOptions,
    place,
    predict_3d,
    predict_pipeline,
    validate_pipeline_rows,
)
from ddlsim.errors import ConfigError
from ddlsim.sim.tensor import megatron_model_flops

SMALL = (("layers", 4),)


def test_pipeline_prediction_consistent_numbers():
    opts = PipelineOptions(model="gpt-small", micro_batch=2, micro_batches=6, stages=2,
                           model_overrides=SMALL)
    pred = predict_pipeline(opts)
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
    gp = place(PipelineOptions(schedule="gpipe", placement="blocks", **base))
    fb = place(PipelineOptions(schedule="1f1b", placement="blocks", **base))
    assert gp.memory[0].activations_bytes == pytest.approx(4 * fb.memory[0].activations_bytes)


def test_not_fitting_is_a_result_with_suggestions():
    opts = PipelineOptions(model="gpt3-1.3b", micro_batch=8, micro_batches=8, stages=2,
                           schedule="gpipe", cluster="pcie-8gpu", dtype="float16")
    pred = place(opts)
    assert not pred.fits
    worst = max(pred.memory, key=lambda m: m.over_bytes)
    assert worst.over_bytes > 0 and worst.device == "l4"
    assert pred.suggestions and any("fit" in s for s in pred.suggestions)


def test_heterogeneous_auto_placement_gives_more_layers_to_the_faster_gpu():
    opts = PipelineOptions(model="gpt-small", micro_batch=2, micro_batches=4, stages=2,
                           devices=("a100-80gb", "l4"), cluster="dgx-a100",
                           model_overrides=SMALL)
    pred = place(opts)
    a, b, c = pred.bounds
    assert pred.stage_devices == ("a100-80gb", "l4")
    assert (b - a) > (c - b)


def test_manual_placement_and_bad_input():
    opts = PipelineOptions(model="lenet5", micro_batch=8, micro_batches=2, stages=2,
                           placement="manual", balance=(5, 7), cluster="dgx-a100")
    pred = predict_pipeline(opts)
    assert pred.bounds == (0, 5, 12)
    with pytest.raises(ConfigError, match="balance: manual placement needs 2"):
        PipelineOptions(stages=2, placement="manual", balance=(5,))
    with pytest.raises(ConfigError, match="global_batch: must be a multiple"):
        ThreeDOptions(dp=3, global_batch=16)


def test_tensor_parallel_3d_runs_and_splits_compute():
    kw = dict(model="gpt-small", pp=2, dp=2, micro_batch=1, global_batch=8,
              model_overrides=SMALL, cluster="dgx-a100")
    one = predict_3d(ThreeDOptions(tp=1, **kw))
    two = predict_3d(ThreeDOptions(tp=2, **kw))
    assert two.options.num_gpus == 8
    # per-GPU forward compute roughly halves (replicated layernorms and TP collectives
    # keep it above half)
    assert 0.5 * one.stage_costs[0].fwd_s < two.stage_costs[0].fwd_s < one.stage_costs[0].fwd_s
    assert len(two.result.allreduces) == 2  # one DP allreduce per stage


def test_validation_rows():
    df = pd.read_csv("src/ddlsim/data/published.csv")
    keep = df["id"].str.startswith(("MEG-SC21-01", "PP-TGP-01", "MEG-NEMO-05"))
    out = validate_pipeline_rows(df[keep])
    assert set(out["id"]) == set(df[keep]["id"])
    ok = out[out["status"] == "ok"]
    # SC'21's GPT 1.7B rows, and NeMo's Llama 2 7B pure-DP rows (tp 1, so expressible)
    assert set(ok["id"]) == {"MEG-SC21-01a", "MEG-SC21-01b", "MEG-SC21-01c", "MEG-SC21-01d",
                             "MEG-NEMO-05a", "MEG-NEMO-05b"}
    assert (ok["predicted"] > 0).all()
    row = ok.set_index("id")
    # the same prediction expressed four ways
    assert row.loc["MEG-SC21-01c", "predicted"] == pytest.approx(
        row.loc["MEG-SC21-01a", "predicted"] * 32 / 1e3)
    assert row.loc["MEG-SC21-01b", "predicted"] == pytest.approx(
        100 * row.loc["MEG-SC21-01a", "predicted"] / 312)
    assert (out[out["status"] != "ok"]["reason"].str.len() > 0).all()


def test_report_folder(tmp_path):
    from ddlsim.reports.pipeline import write_pipeline_report

    pred = predict_pipeline(PipelineOptions(model="gpt-small", micro_batch=1, micro_batches=3,
                                            stages=2, model_overrides=SMALL))
    out = write_pipeline_report(pred, tmp_path / "rep")
    for name in ("summary.csv", "stages.csv", "ops.csv", "sends.csv", "trace.json",
                 "timeline.png", "memory.png", "report.md"):
        assert (out / name).exists(), name
    ops = pd.read_csv(out / "ops.csv")
    assert len(ops) == 2 * 2 * 3
    assert "| stage |" in (out / "report.md").read_text()


def test_torchgpipe_resnet101_rows_on_p40():
    from ddlsim.api.pipeline import (
        TORCHGPIPE_PCIE3_BW_Bps,
        _except_last_prediction,
        _predict,
        _row_options,
    )

    df = pd.read_csv("src/ddlsim/data/published.csv")
    pp = df[df["id"].str.startswith("PP-TG")]
    out = validate_pipeline_rows(pp).set_index("id")
    ok = out[out["status"] == "ok"]
    assert set(ok.index) == {f"PP-TGR-0{k}a" for k in range(1, 6)}
    # GPipe-paper speed-ups (no GPU/batch), AmoebaNet-D and U-Net: reasons, no numbers
    rest = out[out["status"] != "ok"]
    assert rest["reason"].str.len().gt(0).all() and rest["predicted"].isna().all()
    assert "GPU not stated" in out.loc["PP-TGR-03b", "reason"]
    assert "not in the workload zoo" in out.loc["PP-TGP-01", "reason"]
    # more partitions at the published batches: more samples/s
    thr = [ok.loc[f"PP-TGR-0{k}a", "predicted"] for k in (3, 4, 5)]
    assert thr[0] < thr[1] < thr[2]

    row = {r["id"]: r for r in pp.to_dict("records")}
    opts, _ = _row_options(row["PP-TGR-03a"])
    # 25000 samples in torch.chunk pieces of 15: 1667 micro-batches
    assert (opts.stages, opts.micro_batches, opts.micro_batch) == (2, 1667, 15)
    assert opts.devices == ("p40", "p40") and opts.optimizer == "sgd"
    assert dict(opts.cluster_overrides)["intra_bw_Bps"] == pytest.approx(12.5e9)
    assert TORCHGPIPE_PCIE3_BW_Bps == pytest.approx(12.5e9)

    # checkpoint='except_last' on one partition: every micro-batch but the last runs its
    # forward again, so the iteration is T_none + (m - 1) x forward time, exactly
    opts, _ = _row_options(row["PP-TGR-02a"])
    assert (opts.stages, opts.micro_batches, opts.recompute) == (1, 2, "full")
    blended = _except_last_prediction(opts)
    none = _predict(replace(opts, recompute="none"))
    fwd = none.stage_costs[0].fwd_s
    assert blended.iteration_s == pytest.approx(none.iteration_s + fwd, rel=1e-9)
    assert blended.summary()["samples_per_s"] == pytest.approx(220 / blended.iteration_s)


# --------------------------------------------------------------------------- Llama TP, CP
LLAMA_SMALL = (("layers", 4), ("seq", 1024))


def test_llama_tensor_parallel_prediction_uses_the_general_megatron_flops():
    opts = ThreeDOptions(model="llama3-8b", tp=2, pp=2, dp=1, micro_batch=1, global_batch=4,
                         cluster="dgx-h100", model_overrides=LLAMA_SMALL)
    s = predict_3d(opts).summary()
    assert s["gpus"] == 4
    # Megatron's num_floating_point_operations with GQA (8 of 32 heads) and SwiGLU
    flops = megatron_model_flops(4, 1024, 4, 4096, 128256, heads=32, kv_heads=8,
                                 ffn=14336, gated=True)
    assert s["model_tflops_per_gpu"] == pytest.approx(flops / s["iteration_s"] / 4 / 1e12)


def test_context_parallel_halves_per_gpu_work_and_counts_its_gpus():
    base = dict(model="llama3-8b", tp=1, pp=1, dp=1, micro_batch=1, global_batch=2,
                cluster="dgx-h100", model_overrides=LLAMA_SMALL)
    one = predict_3d(ThreeDOptions(**base))
    two = predict_3d(ThreeDOptions(cp=2, **base))
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
    a = predict_3d(ThreeDOptions(**base)).summary()
    b = predict_3d(ThreeDOptions(cp=1, **base)).summary()
    assert a == b
    with pytest.raises(ConfigError, match="cp: must be an integer >= 1"):
        ThreeDOptions(cp=0, **base)


def test_nemo_rows_with_llama_tp_and_cp_are_expressible():
    rows = pd.DataFrame([
        {"id": "MEG-NEMO-07a", "category": "llm_3d_parallel", "model": "LLAMA2-70B",
         "parallelism": "tp=4,pp=4,cp=1,vp=20,dp=4", "global_batch": 128, "micro_batch": 1,
         "metric": "tokens_per_sec_per_gpu", "unit": "tokens/s/GPU", "value": 1707.0},
        {"id": "MEG-NEMO-12a", "category": "llm_3d_parallel", "model": "LLAMA3-70B",
         "parallelism": "tp=4,pp=4,cp=2,vp=5,dp=2", "global_batch": 128, "micro_batch": 1,
         "metric": "tokens_per_sec_per_gpu", "unit": "tokens/s/GPU", "value": 1533.0},
        {"id": "MEG-NEMO-10a", "category": "llm_3d_parallel", "model": "Nemotron-340B",
         "parallelism": "tp=8,pp=8,cp=1,vp=12,dp=2", "global_batch": 32, "micro_batch": 1,
         "metric": "tokens_per_sec_per_gpu", "unit": "tokens/s/GPU", "value": 322.0}])
    from ddlsim.api.pipeline import _row_options

    for _, row in rows.iterrows():
        opts, reason = _row_options(row)
        assert opts is not None, reason
    opts, _ = _row_options(rows.iloc[1])
    assert (opts.tp, opts.cp, opts.stages, opts.dp, opts.num_gpus) == (4, 2, 4, 2, 64)


def test_nemo_rows_use_sequence_parallelism_with_tensor_parallelism():
    from ddlsim.api.pipeline import _row_options

    df = pd.read_csv("src/ddlsim/data/published.csv")
    rows = {r["id"]: r for r in df.to_dict("records")}
    tp4, _ = _row_options(rows["MEG-NEMO-07a"])  # Llama 2 70B, tp=4
    tp1, _ = _row_options(rows["MEG-NEMO-05a"])  # Llama 2 7B, tp=1
    assert (tp4.tp, tp4.sequence_parallel) == (4, True)
    assert (tp1.tp, tp1.sequence_parallel) == (1, False)


def test_3d_cli_context_parallel(capsys):
    from click.testing import CliRunner

    from ddlsim.cli import cli, main

    res = CliRunner().invoke(cli, ["3d", "--model", "llama3-8b", "--tp", "1", "--pp", "1",
                                   "--dp", "2", "--cp", "2", "--global-batch", "8",
                                   "--micro-batch", "1", "--cluster", "dgx-h100"])
    assert res.exit_code == 0, res.output
    header, values = res.output.splitlines()[:2]
    cols = dict(zip(header.split(), values.split(), strict=False))
    assert (cols["gpus"], cols["tp"], cols["cp"], cols["dp"]) == ("4", "1", "2", "2")
    with pytest.raises(SystemExit) as exc:
        main(["3d", "--model", "llama3-8b", "--cp", "0"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 1 and err.endswith("cp: must be an integer >= 1, got 0")
    assert len(err.splitlines()) == 1
