# ruff: noqa: E501  (the hand-made reference CSV keeps its rows on one line each)
"""One job, one prediction path: reference rows are read from their columns alone (ids
renamed or sources blanked change nothing), rows in other spellings are predicted, and
the same run through the CLI, the API and a reference row gives the same number."""

import csv
import io
import math

import pandas as pd
import pytest
from click.testing import CliRunner

from ddlsim import api, validation
from ddlsim.cli import cli
from ddlsim.validation.reference import DEFAULT_REFERENCE
from ddlsim.validation.rows import read_row

CATS = ("data_parallel", "llm_3d_parallel", "collectives", "pipeline_parallel")


def _write(df: pd.DataFrame, path) -> str:
    df.to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def bundled():
    return validation.validate(None, CATS, "stored").rows


def test_renamed_ids_predict_the_same_rows_with_the_same_values(tmp_path, bundled):
    ref = validation.load_reference()
    ref["id"] = [f"ROW{k:04d}" for k in range(len(ref))]
    out = validation.validate(_write(ref, tmp_path / "r.csv"), CATS, "stored").rows
    a = bundled.reset_index(drop=True)
    b = out.reset_index(drop=True)
    assert list(a["status"]) == list(b["status"])
    ok = a["status"] == "predicted"
    assert ok.sum() > 100
    assert list(a.loc[ok, "predicted"]) == list(b.loc[ok, "predicted"])
    assert list(a["used_for_fit"]) == list(b["used_for_fit"])  # fit rows known by content


def test_blanked_source_predicts_at_least_as_many_rows(tmp_path, bundled):
    ref = validation.load_reference()
    ref["source"] = "a measurement"
    out = validation.validate(_write(ref, tmp_path / "r.csv"), CATS, "stored").rows
    assert (out["status"] == "predicted").sum() >= (bundled["status"] == "predicted").sum()


OTHER_SPELLINGS = """id,category,model,gpu,num_gpus,nodes,interconnect,precision,parallelism,global_batch,micro_batch,metric,value,unit,notes
mine-1,llm_3d_parallel,GPT 22B,NVIDIA A100-SXM4-80GB,64,8,DGX A100 nodes,BF16,"TP8 PP2, mbs=1",256,,Model TFLOPS,150,TFLOP/s,"hidden=6144, layers=48, heads=48, seq=2048, vocab=51200"
mine-2,data_parallel,ResNet-50 v1.5,A100 80GB SXM,8,1,DGX A100,AMP (fp16),dp=8,2048,256,throughput,16000,img/s,
mine-3,data_parallel,ResNet-50,NVIDIA A100-SXM4-80GB,1,1,n/a,not stated (likely BF16),single GPU,256,256,step time,110,ms,
mine-4,llm_3d_parallel,Llama 2 7B,H100-SXM5-80GB,8,1,DGX-H100,FP8,"tp=1,pp=1,dp=8",128,1,MFU,38,%,
mine-5,collectives,allreduce,H100 SXM,8,1,NVLink4 + NVSwitch,n/a,8 ranks,,,bus bandwidth,470,GB/s,
"""


def test_hand_made_reference_in_other_spellings_is_predicted_row_by_row(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(OTHER_SPELLINGS)
    rows = validation.validate(str(path), None, "stored").rows.set_index("id")
    assert (rows["status"] == "predicted").all(), rows[["status", "reason"]].to_string()
    # every prediction within a factor of two of the (plausible) measurement
    ratio = rows["predicted"] / rows["published"]
    assert ((ratio > 0.5) & (ratio < 2)).all(), ratio
    assert "taken as the stated guess" in rows.loc["mine-3", "reason"]


def test_a_row_of_dimensions_builds_that_architecture():
    rec = next(csv.DictReader(io.StringIO(OTHER_SPELLINGS)))
    run, why = read_row(rec)
    assert run is not None, why
    arch = dict(run.job.workload.architecture)
    assert (arch["hidden"], arch["layers"], arch["heads"]) == (6144, 48, 48)
    assert (run.job.parallelism.tp, run.job.parallelism.pp, run.job.dp) == (8, 2, 4)


def _row(rid):
    ref = validation.load_reference(DEFAULT_REFERENCE)
    return ref[ref["id"] == rid].iloc[0].to_dict()


def test_dp_row_api_and_cli_agree():
    """A DeepLearningExamples PyTorch row: 8 x A100-80GB, AMP, 256 images per GPU."""
    run, why = read_row(_row("DP-DLE-PTRN50-04"))
    assert run is not None, why
    from_row = validation.metrics.predicted_value(run, api.predict(run.job), "stored")
    job = api.Job(workload=api.Workload("resnet50"), cluster=api.Cluster("dgx-a100", 8),
                  precision=api.Precision("float16"), batch=api.Batch(micro=256),
                  iterations=run.job.iterations)
    from_api = api.predict(job).samples_per_s
    assert from_api == pytest.approx(from_row, rel=1e-9)
    res = CliRunner().invoke(cli, ["dp", "--model", "resnet50", "--cluster", "dgx-a100",
                                   "--gpus", "8", "--batch", "256", "--dtype", "float16",
                                   "--iterations", str(run.job.iterations)])
    assert res.exit_code == 0, res.output
    assert "calibration: stored, fitted on" in res.output
    import re

    numbers = [float(x) for x in re.findall(r"\d+\.\d+", res.output.splitlines()[-1])]
    assert any(v == pytest.approx(from_row, rel=1e-6) for v in numbers), (numbers, from_row)


def test_3d_row_api_and_cli_agree():
    """A Megatron SC'21 row: GPT 39.1B, tp 8, pp 2, dp 32, 512 A100s, full recompute."""
    run, why = read_row(_row("MEG-SC21-05a"))
    assert run is not None, why
    from_row = validation.metrics.predicted_value(run, api.predict(run.job), "stored")
    p = run.job.parallelism
    res = CliRunner().invoke(cli, [
        "3d", "--model", run.job.workload.model, "--tp", str(p.tp), "--pp", str(p.pp),
        "--dp", str(run.job.dp), "--global-batch", str(run.job.batch.global_batch),
        "--recompute", "full", "--dtype", "float16", "--cluster", "dgx-a100",
        "--attention", "unfused"])
    assert res.exit_code == 0, res.output
    line = res.output.splitlines()[1]
    assert "model TFLOP/s" in line
    assert run.job.workload.attention == "unfused"  # the row states it (predates FlashAttention)
    job = api.Job(workload=api.Workload(run.job.workload.model, attention="unfused"),
                  cluster=api.Cluster("dgx-a100", 512), precision=api.Precision("float16"),
                  parallelism=api.Parallelism(tp=8, pp=2, recompute="full",
                                              placement="blocks"),
                  batch=api.Batch(global_batch=1536, micro=1), strategy=api.Strategy("3d"))
    pred = api.predict(job)
    assert pred.hardware_tflops_per_gpu == pytest.approx(from_row, rel=1e-9)
    assert f"{pred.model_tflops_per_gpu:.1f} model TFLOP/s" in line


def test_user_calibration_adds_to_the_stored_constants(tmp_path):
    import json

    stored = api.stored_calibration()
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"constants": {"gemm_efficiency": {"a100/half": 0.5}},
                                "fit_rows": ["x"]}))
    mine = api.load_calibration(str(path))
    assert mine.gemm_efficiency["a100/half"] == 0.5
    other = {k: v for k, v in stored.gemm_efficiency.items() if k != "a100/half"}
    assert other and all(mine.gemm_efficiency[k] == v for k, v in other.items())
    assert mine.memory_efficiency == stored.memory_efficiency
    assert "on top of stored" in mine.label


def test_stored_calibration_is_the_default_and_differs_from_first_principles():
    job = api.Job(batch=api.Batch(micro=64))
    stored, default = api.predict(job), api.predict(job, "default")
    assert stored.calibration.label.startswith("stored, fitted on")
    assert not math.isclose(stored.samples_per_s, default.samples_per_s, rel_tol=1e-3)
