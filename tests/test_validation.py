"""Tests of ddlsim.validation: parsing the reference table, predictions, fit and report."""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ddlsim import api
from ddlsim import validation as v
from ddlsim.errors import ConfigError

# ------------------------------------------------------------------ parsing (table-driven)
# Every spelling of the data_parallel rows of the bundled table, with what it must map to.
MODELS = {
    "ResNet-50 (ImageNet)": "resnet50",
    "ResNet-50 v1.5": "resnet50",
    "VGG-16": "vgg16",
    "Inception V3": None,
    "ResNet-101": "resnet101",
    "Transformer-XL base": None,
    "Transformer-XL large": None,
    "BERT-Large pretraining (phase1 seq128 + phase2 seq512)": "bert-large",
    "BERT-base": "bert-base",
    "BERT Large": "bert-large",
}
PRECISIONS = {
    "fp32": ("float32", "float32"),
    "fp32 (TF default)": ("float32", "float32"),
    "FP32": ("float32", "float32"),
    "FP32+XLA": ("float32", "float32"),
    "TF32": ("tf32", "tf32"),
    "TF32+XLA": ("tf32", "tf32"),
    "AMP (mixed fp16)": ("float16", "float32"),
    "AMP (fp16)": ("float16", "float32"),
    "AMP+XLA": ("float16", "float32"),
}
GPUS = {
    "A100-SXM4-80GB": "a100-80gb",
    "A100-SXM4-40GB": "a100-40gb",
    "V100-SXM2-16GB": "v100-sxm2-16gb",
    "V100-SXM2-32GB": "v100-sxm2-32gb",
    "V100-SXM3-32GB": "v100-sxm3-32gb",
    "V100-SXM3-32GB (DGX-2H)": "v100-sxm3-32gb",
    "P100-SXM2-16GB": "p100-sxm2-16gb",
    "Pascal (P100 per Horovod paper)": "p100-sxm2-16gb",
    "Pascal": None,
    "not stated": None,
}


def _dp_rows() -> list[dict]:
    with open(v.DEFAULT_REFERENCE, newline="") as f:
        return [r for r in csv.DictReader(f) if r["category"] == "data_parallel"]


@pytest.mark.parametrize(("text", "key"), MODELS.items())
def test_parse_model(text, key):
    assert v.parse_model(text) == key


@pytest.mark.parametrize(("text", "dtypes"), PRECISIONS.items())
def test_parse_precision(text, dtypes):
    assert v.parse_precision(text) == dtypes


@pytest.mark.parametrize(("text", "key"), GPUS.items())
def test_resolve_gpu(text, key):
    device, why = v.resolve_gpu(text)
    assert (device.name if device is not None else None) == key
    assert why if device is None else True


def test_tables_cover_every_spelling_in_the_reference():
    rows = _dp_rows()
    assert {r["model"] for r in rows} <= set(MODELS)
    assert {r["precision"] for r in rows} <= set(PRECISIONS)
    assert {r["gpu"] for r in rows} <= set(GPUS)


def test_parse_batch_and_metric():
    assert v.parse_batch_per_gpu("256", "2048", 8) == 256
    assert v.parse_batch_per_gpu("", "2048", 8) == 256
    assert v.parse_batch_per_gpu("", "100", 8) is None
    assert v.parse_batch_per_gpu("", "", 8) is None
    assert v.parse_metric("train_throughput", "images/s") == ("throughput", 1.0, None)
    assert v.parse_metric("scaling_efficiency", "%") == ("scaling_efficiency", 100.0, 1)
    assert v.parse_metric("scaling_efficiency_8_to_256_gpus", "% (approx)") == (
        "scaling_efficiency", 100.0, 8)
    assert v.parse_metric("backprop_time_single_gpu", "ms") == ("backprop_s", 1e3, None)
    assert v.parse_metric("train_throughput", "tokens/s") is None
    assert v.parse_metric("epoch_time", "s") is None


@pytest.mark.parametrize(("text", "gpus", "link", "bw_GBps"), [
    ("DGX A100 NVLink3/NVSwitch", 8, "nvswitch", 300.0),
    ("DGX A100", 4, "nvswitch", 300.0),
    ("DGX-1 NVLink2 hybrid cube-mesh", 8, "nvlink", 150.0),
    ("DGX-1", 2, "nvlink", 150.0),
    ("DGX-2 NVSwitch", 16, "nvswitch", 150.0),
])
def test_cluster_for_row(text, gpus, link, bw_GBps):
    device, _ = v.resolve_gpu("V100-SXM2-16GB")
    cluster, _ = v.cluster_for_row(text, device, gpus, 1)
    assert cluster.num_gpus == gpus and cluster.nodes == 1
    assert cluster.intra_link == link
    assert cluster.intra_bw_Bps == pytest.approx(bw_GBps * 1e9)
    assert set(cluster.devices) == {device.name}


def test_cluster_for_row_refuses_unmapped_fabric():
    device, _ = v.resolve_gpu("V100-SXM2-16GB")
    assert v.cluster_for_row("25 Gbit/s Ethernet", device, 16, 4)[0] is None
    assert v.cluster_for_row("DGX-2 NVSwitch", device, 32, 2)[0] is None


# ------------------------------------------------------------------ bundled reference
@pytest.fixture(scope="module")
def bundled():
    return v.validate(categories=("data_parallel",), calibration="fit")


def test_counts_consistent_and_reasons_present(bundled):
    df = bundled.rows
    assert len(df) == len(_dp_rows())
    assert list(df["id"]) == [r["id"] for r in _dp_rows()]  # nothing dropped, same order
    expressed = df["status"] == "predicted"
    assert set(df["status"]) <= {"predicted", "not expressible"}
    assert expressed.sum() + (~expressed).sum() == len(df)
    assert expressed.sum() > 0
    bad = df[~expressed]
    assert (bad["reason"].str.len() > 0).all()
    assert bad["predicted"].isna().all()
    assert df.loc[df["id"] == "DP-DLE-TXL-01", "reason"].item().endswith("not in the zoo")
    assert "not in the device catalog" in df.loc[df["id"] == "DP-HVD-06", "reason"].item()
    assert np.isfinite(df.loc[expressed, "predicted"]).all()
    assert (df.loc[expressed, "predicted"] > 0).all()


def test_fit_rows_declared_and_flagged(bundled):
    df = bundled.rows
    assert (set(df.loc[df["used_for_fit"], "id"])
            == set(v.FIT_ROW_IDS) | set(v.FRAMEWORK_FIT_ROW_IDS) | {"DP-GOY-02"})
    assert (set(v.FIT_ROW_IDS) | set(v.LLM_FIT_ROW_IDS) | set(v.FRAMEWORK_FIT_ROW_IDS)
            <= set(bundled.fit_ids))
    for eff in [*bundled.calibration.gemm_efficiency.values(),
                bundled.calibration.memory_efficiency]:
        assert 0 < eff <= 1.0 + 1e-12


def test_report_summary_matches_rows(bundled):
    text = v.render_markdown(bundled)
    df = bundled.rows
    n_pred = int((df["status"] == "predicted").sum())
    assert f"**{n_pred} of {len(df)}**" in text
    for row_id in df["id"]:
        assert row_id in text
    for row_id in v.FIT_ROW_IDS:
        assert row_id in text.split("## Every row")[0]  # listed in the summary
    summary = v.error_summary(bundled).set_index("group")
    assert summary.loc["all", "rows"] == n_pred
    assert (summary.loc["all: fit rows", "rows"] + summary.loc["all: held-out rows", "rows"]
            == n_pred)
    errs = df.loc[df["status"] == "predicted", "abs_pct_error"]
    assert summary.loc["all", "median"] == pytest.approx(errs.median())
    assert summary.loc["all", "max"] == pytest.approx(errs.max())
    assert summary.loc["all", "over_15"] == int((errs > 15).sum())
    goal_met = errs.median() <= 5 and errs.max() <= 15
    assert summary.loc["all", "goal"] == ("met" if goal_met else "missed")


def test_goal_column_on_hand_made_errors():
    def result(errors):
        rows = pd.DataFrame({"id": [f"r{i}" for i in range(len(errors))],
                             "category": "data_parallel", "status": "predicted",
                             "abs_pct_error": errors, "abs_pct_error_default": errors,
                             "used_for_fit": False})
        return v.ValidationResult(rows, v.DEFAULT_CALIBRATION, v.DEFAULT_CALIBRATION,
                                  ("data_parallel",), "x.csv", ())

    s = v.error_summary(result([1.0, 2.0, 14.9])).set_index("group")
    assert (s.loc["all", "goal"], s.loc["all", "over_15"]) == ("met", 0)
    s = v.error_summary(result([1.0, 2.0, 15.1])).set_index("group")
    assert (s.loc["all", "goal"], s.loc["all", "over_15"]) == ("missed", 1)
    s = v.error_summary(result([6.0, 6.0, 1.0])).set_index("group")  # median 6 > 5
    assert (s.loc["data_parallel", "goal"], s.loc["data_parallel", "median"]) == ("missed", 6)


# ------------------------------------------------------------------ synthetic reference
FIELDS = list(v.REQUIRED_COLUMNS)


def _row(**kw) -> dict:
    base = dict(category="data_parallel", model="ResNet-50 v1.5", gpu="A100-SXM4-80GB",
                num_gpus="1", nodes="1", interconnect="n/a", precision="TF32",
                global_batch="", micro_batch="64", metric="train_throughput", value="1",
                unit="images/s")
    base.update(kw)
    return base


def _write(path, rows, fields=FIELDS):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def test_synthetic_reference_errors(tmp_path):
    single = api.predict_dp(api.DPOptions(model="resnet50", batch_per_gpu=64,
                                          cluster="dgx-a100", gpus=1, dtype="tf32",
                                          iterations=3))
    eight = api.predict_dp(api.DPOptions(model="resnet50", batch_per_gpu=64,
                                         cluster="dgx-a100", gpus=8, dtype="tf32",
                                         iterations=3))
    rows = [
        _row(id="T-1", value=str(2 * single.samples_per_s)),  # predicted = half -> 50 %
        _row(id="T-2", metric="scaling_efficiency", unit="", value="0.8"),  # 1 GPU: 1.0
        _row(id="T-3", num_gpus="8", interconnect="DGX A100", metric="scaling_efficiency",
             unit="%", value="100"),
        _row(id="T-4", model="Inception V3"),
        _row(id="T-5", gpu="GTX 980"),
        _row(id="T-6", micro_batch="", global_batch=""),
        _row(id="T-7", category="other"),  # not in the chosen categories
    ]
    path = _write(tmp_path / "ref.csv", rows)
    res = v.validate(path, calibration="default").rows.set_index("id")
    assert list(res.index) == ["T-1", "T-2", "T-3", "T-4", "T-5", "T-6"]

    # The default calibration reproduces api.predict_dp (the uncalibrated cost model).
    assert res.loc["T-1", "predicted"] == pytest.approx(single.samples_per_s, rel=1e-9)
    assert res.loc["T-1", "abs_pct_error"] == pytest.approx(50.0, rel=1e-9)
    assert res.loc["T-2", "predicted"] == 1.0
    assert res.loc["T-2", "abs_pct_error"] == pytest.approx(25.0)
    assert res.loc["T-3", "predicted"] == pytest.approx(100 * eight.scaling_efficiency,
                                                        rel=1e-9)
    assert res.loc["T-3", "abs_pct_error"] == pytest.approx(100 - res.loc["T-3", "predicted"])
    assert res.loc["T-3", "predicted"] < 100.0
    for row_id, words in (("T-4", "not in the zoo"), ("T-5", "device catalog"),
                          ("T-6", "batch per GPU")):
        assert res.loc[row_id, "status"] == "not expressible"
        assert words in res.loc[row_id, "reason"]
    assert not res["used_for_fit"].any()  # no declared fit row in this file


def test_fit_recovers_known_constants(tmp_path):
    truth = v.Calibration({"a100/tf32": 0.4, "a100/half": 0.6, "v100/fp32": 0.7,
                           "v100/half": 0.8}, memory_efficiency=0.55,
                          iteration_overhead_s=0.004)
    configs = [("A100-SXM4-80GB", "TF32", "64"), ("A100-SXM4-80GB", "AMP (fp16)", "64"),
               ("V100-SXM2-16GB", "FP32", "32"), ("V100-SXM2-16GB", "AMP (fp16)", "64"),
               ("V100-SXM2-16GB", "FP32", "8"), ("A100-SXM4-80GB", "TF32", "8")]
    specs, values = [], []
    for gpu, prec, batch in configs:
        spec, why = v.parse_row(_row(id="x", gpu=gpu, precision=prec, micro_batch=batch))
        assert spec is not None, why
        specs.append(spec)
        values.append(v.predict_row(spec, truth))
    fitted = v.fit_calibration(specs, values, fit_overhead=True)
    for cls, eff in truth.gemm_efficiency.items():
        assert fitted.gemm_efficiency[cls] == pytest.approx(eff, rel=1e-6)
    assert fitted.memory_efficiency == pytest.approx(0.55, rel=1e-6)
    assert fitted.iteration_overhead_s == pytest.approx(0.004, rel=1e-6)

    # Through validate(): rows with declared ids are the fit rows, the rest held out.
    rows = [_row(id=f"F{i}", gpu=g, precision=p, micro_batch=b, value=repr(val))
            for i, ((g, p, b), val) in enumerate(zip(configs, values, strict=True))]
    rows.append(_row(id="H", num_gpus="8", interconnect="DGX A100", value="1000"))
    path = _write(tmp_path / "ref.csv", rows)
    res = v.validate(path, fit_ids=[f"F{i}" for i in range(6)], fit_overhead=True)
    assert res.rows["used_for_fit"].tolist() == [True] * 6 + [False]
    assert res.rows["abs_pct_error"].iloc[:6].max() < 1e-6


def test_bounded_lstsq_respects_bounds():
    a = np.eye(2)
    x = v._bounded_lstsq(a, np.array([3.0, 0.2]), np.array([1.0, 1.0]))
    assert x.tolist() == pytest.approx([3.0, 1.0])
    x = v._bounded_lstsq(np.array([[1.0, 1.0], [1.0, 2.0], [1.0, 3.0]]),
                         np.array([2.0, 3.0, 4.0]), np.array([0.0, 0.0]))
    assert x.tolist() == pytest.approx([1.0, 1.0])


# ------------------------------------------------------------------ bad input
def test_missing_column_names_it(tmp_path):
    path = _write(tmp_path / "bad.csv", [_row(id="x")],
                  fields=[c for c in FIELDS if c != "precision"])
    with pytest.raises(ConfigError, match="precision"):
        v.validate(path)


def test_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match="reference_path"):
        v.validate(tmp_path / "nope.csv")
    path = _write(tmp_path / "ref.csv", [_row(id="x")])
    with pytest.raises(ConfigError, match="calibration"):
        v.validate(path, calibration="magic")
    with pytest.raises(ConfigError, match="memory_efficiency"):
        v.Calibration(memory_efficiency=0.0)


def test_non_numeric_published_value_is_not_expressible(tmp_path):
    path = _write(tmp_path / "ref.csv", [_row(id="x", value="about 5")])
    res = v.validate(path, calibration="default").rows
    assert res["status"].item() == "not expressible"
    assert "not a number" in res["reason"].item()
    assert math.isnan(res["abs_pct_error"].item())
    assert isinstance(res, pd.DataFrame)


# ------------------------------------------------------------------ fixture table, calibrate
FIXTURE = Path(__file__).parent / "fixtures" / "reference_small.csv"


def test_full_report_on_fixture_table():
    text, res, extra = v.full_report(FIXTURE)
    df = res.rows
    assert len(df) == len(v.load_reference(FIXTURE))  # every row listed, none dropped
    ok = df[df["status"] == "predicted"]
    assert {"data_parallel", "llm_3d_parallel"} <= set(ok["category"])
    assert (df.loc[df["status"] != "predicted", "reason"].str.len() > 0).all()
    # Llama rows: tp=1 and tp=4 (GQA, SwiGLU sharded over tensor-parallel GPUs) expressed
    assert (df.set_index("id").loc[["MEG-NEMO-05a", "MEG-NEMO-07a"], "status"]
            == "predicted").all()
    assert "## Summary" in text.split("## Every row")[0]
    assert "validation.png" in text
    assert set(extra["section"]) == set(df["category"])
    want = 100 * (ok["predicted"] - ok["published"]).abs() / ok["published"]
    assert np.allclose(ok["abs_pct_error"], want)


def test_write_report_writes_plot(tmp_path):
    res = v.write_report(tmp_path / "val.md", reference_path=FIXTURE,
                         categories=("data_parallel",), calibration="stored")
    assert (tmp_path / "val.png").stat().st_size > 1000
    assert len(res.rows) > 0


def test_calibrate_uses_declared_rows_only(tmp_path):
    ref = v.load_reference(FIXTURE)
    ids = ("DP-DLE-PTRN50-01", "DP-DLE-PTRN50-07", "MEG-SC21-01a")
    out = tmp_path / "cal.json"
    a = v.calibrate(FIXTURE, fit_ids=ids, out=out)
    changed = ref.copy()
    for held in ("DP-DLE-PTRN50-02", "MEG-SC21-02a", "MEG-NEMO-05a"):
        changed.loc[changed["id"] == held, "value"] = "12345"
    path = tmp_path / "changed.csv"
    changed.to_csv(path, index=False)
    b = v.calibrate(path, fit_ids=ids)
    assert a.gemm_efficiency == b.gemm_efficiency
    assert a.memory_efficiency == b.memory_efficiency
    loaded, fit = v.load_calibration(out)
    assert loaded.gemm_efficiency == pytest.approx(a.gemm_efficiency)
    assert set(fit) == set(ids)
    # changing a fit row does change them
    changed.loc[changed["id"] == "MEG-SC21-01a", "value"] = "100"
    changed.to_csv(path, index=False)
    c = v.calibrate(path, fit_ids=ids)
    assert c.gemm_efficiency["a100/half"] != pytest.approx(a.gemm_efficiency["a100/half"])


def test_unknown_model_and_gpu_unexpressible(tmp_path):
    rows = [_row(id="U-1", model="RoBERTa-large"), _row(id="U-2", gpu="TPU v4"),
            _row(id="U-3", category="llm_3d_parallel", model="Mystery-9B", metric="x")]
    res = v.validate(_write(tmp_path / "r.csv", rows), categories=v.ALL_CATEGORIES,
                     calibration="default").rows.set_index("id")
    assert (res["status"] == "not expressible").all()
    assert "not in the zoo" in res.loc["U-1", "reason"]
    assert "not in the device catalog" in res.loc["U-2", "reason"]
    assert res.loc["U-3", "reason"]


def test_measured_gpu_profile_takes_precedence(tmp_path):
    from ddlsim.api.dp import cost_models, default_profile_rows
    from ddlsim.kernels.profile import load_profile
    from ddlsim.sim.hardware import get_device

    src = Path(v.__file__).parent / "data" / "profiles" / "cpu-mlp-b64-float32.csv"
    df = load_profile(src)
    df["device"] = "NVIDIA A100-SXM4-80GB"
    df["median_s"] = df["p10_s"] = df["p90_s"] = 1.0  # absurdly slow: easy to recognise
    (tmp_path / "gpu").mkdir()
    df.to_csv(tmp_path / "gpu" / "a100.csv", index=False)
    dev = get_device("a100-sxm4-80gb")
    rows = default_profile_rows(dev, search=[tmp_path])
    assert len(rows) == len(df)
    assert default_profile_rows(get_device("h100-sxm"), search=[tmp_path]) == []
    from ddlsim.sim.costs import CostModel
    model = CostModel(dev, rows)
    kc = rows[0].kernel_call
    assert model.estimate(kc, rows[0].dtype).path == "measured"
    assert model.seconds(kc, rows[0].dtype) == pytest.approx(1.0)
    # the repository has no GPU profile yet: cost_models falls back to the roofline
    assert cost_models(["a100-sxm4-80gb"], [])["a100-sxm4-80gb"].rows == ()


@pytest.mark.parametrize("text,key", [("GPT-3 175B", "gpt3-175b"), ("Llama 2 70B", "llama2-70b"),
                                      ("LLAMA3-8B", "llama3-8b"), ("ResNet-50 v1.5", "resnet50"),
                                      ("BERT-large", "bert-large"), ("RoBERTa-large", None),
                                      ("GPT3-20B", "gpt3-20b"), ("GPT-3 5B", "gpt3-5b"),
                                      ("Nemotron-4 340B", "nemotron-340b"),
                                      ("Nemotron-22B", "nemotron-22b"),
                                      ("Nemotron-4 15B", None)])
def test_parse_common_spellings(text, key):
    assert v.parse_model(text) == key


def test_collective_rows_are_predicted_with_fit_rows_marked():
    from ddlsim.api.collectives import FIT_ROWS, validate_collective_rows
    from ddlsim.validation import load_reference

    ref = load_reference()
    out = validate_collective_rows(ref[ref["category"] == "collectives"]).set_index("id")
    assert out.loc["COL-13", "status"] == "not expressible"
    for rid in ("COL-09", "COL-12"):  # setups the model cannot express faithfully
        assert out.loc[rid, "status"] == "not expressible"
        assert len(out.loc[rid, "reason"]) > 40
    # NVLS rows: fitted on COL-01, judged on COL-03 (H100) and COL-04 (H200) within 2 %
    assert "NVLS" in out.loc["COL-03", "reason"] and "NVLS" in out.loc["COL-04", "reason"]
    for rid in ("COL-03", "COL-04"):
        assert out.loc[rid, "abs_pct_error"] < 2.0
    # COL-02, COL-10, COL-01 define the three NCCL efficiency constants: they come back.
    for rid in FIT_ROWS:
        assert out.loc[rid, "abs_pct_error"] < 2.5
    # a plain single-node DGX A100 ring is predicted from those constants within 10 %
    assert out.loc["COL-05", "abs_pct_error"] < 10


# ------------------------------------------------------------------ framework constant
@pytest.mark.parametrize(("source", "precision", "framework"), [
    ("NVIDIA/DeepLearningExamples PyTorch/Classification/ConvNets/resnet50v1.5", "TF32",
     "pytorch"),
    ("NVIDIA/DeepLearningExamples MxNet/Classification/RN50v1.5/README.md", "AMP (fp16)",
     "mxnet"),
    ("NVIDIA/DeepLearningExamples TensorFlow/Classification/ConvNets (XLA, Horovod)",
     "AMP+XLA", "tensorflow-xla"),
    ("Horovod paper, TensorFlow", "fp32", "tensorflow"),
    ("Goyal et al. 2017 'Accurate, Large Minibatch SGD'", "fp32", "caffe2"),
    ("NVIDIA developer news page developer.nvidia.com/facebook-trains-imagenet-1-hour",
     "fp32", "caffe2"),
    ("Some paper", "fp32", ""),
])
def test_parse_framework(source, precision, framework):
    assert v.parse_framework(source, precision) == framework


def test_every_dle_resnet_row_has_its_framework():
    want = {"PTRN50": "pytorch", "MXRN50": "mxnet", "TFRN50": "tensorflow-xla"}
    for r in _dp_rows():
        for tag, fw in want.items():
            if f"-{tag}-" in r["id"]:
                assert v.parse_framework(r["source"], r["precision"]) == fw, r["id"]


def test_framework_factor_closed_form_recovers_truth():
    base = v.Calibration({"v100/half": 0.9}, memory_efficiency=0.5)
    truth = replace(base, framework_memory_factor={"mxnet": 1.3})
    spec, why = v.parse_row({**_row(id="m", gpu="V100-SXM2-16GB", precision="AMP (fp16)",
                                    micro_batch="96"), "source": "DLE MxNet/Classification"})
    assert spec is not None, why
    assert spec.framework == "mxnet"
    published = v.predict_row(spec, truth)
    assert published > v.predict_row(spec, base)  # fused memory ops: faster
    assert v.fit_framework_factor(spec, published, base) == pytest.approx(1.3, rel=1e-6)
    # the factor multiplies only the memory-bound efficiency of that framework's rows
    assert truth.memory("mxnet") == pytest.approx(0.65)
    assert truth.memory("pytorch") == truth.memory("") == 0.5
    with pytest.raises(ConfigError, match="non-memory-bound time"):
        v.fit_framework_factor(spec, published * 1e3, base)


def test_framework_rows_fit_once_and_stored():
    import json

    rec = json.loads(v.CALIBRATION_FILE.read_text())
    assert set(v.FRAMEWORK_FIT_ROW_IDS) <= set(rec["fit_ids"])
    factors = rec["constants"]["framework_memory_factor"]
    assert set(factors) == {"mxnet", "tensorflow-xla"}
    calib, _ = v.load_calibration()
    ref = v.load_reference()
    for rid in v.FRAMEWORK_FIT_ROW_IDS:
        row = ref[ref["id"] == rid].iloc[0].to_dict()
        spec, _ = v.parse_row(row)
        # the declared row is reproduced by its own constant (closed form) ...
        assert v.predict_row(spec, calib) == pytest.approx(float(row["value"]), rel=1e-6)
        # ... and that constant is what the closed form gives for it
        assert factors[spec.framework] == pytest.approx(
            v.fit_framework_factor(spec, float(row["value"]), replace(
                calib, framework_memory_factor={})), rel=1e-6)


def test_framework_overhead_fit_recovers_truth_on_an_end_to_end_row(tmp_path):
    """A multi-GPU time-to-train row of a non-reference framework fits that framework's
    per-iteration overhead; a single-GPU backprop row fits its family's gemm efficiency.
    Published values generated from known constants are recovered."""
    truth = v.Calibration({"p100/fp32": 0.6}, memory_efficiency=0.5,
                          framework_overhead_s={"caffe2": 0.03})
    src = "Goyal et al. 2017"
    bp = {**_row(id="bp", gpu="P100-SXM2-16GB", precision="fp32", micro_batch="32",
                 metric="backprop_time_single_gpu", unit="ms"), "source": src}
    tt = {**_row(id="tt", category="time_to_train", model="ResNet-50 (ImageNet, 90 epochs)",
                 gpu="P100-SXM2-16GB", num_gpus="8", precision="fp32", micro_batch="32",
                 global_batch="256", interconnect="DGX-1", metric="time_to_train_hours",
                 unit="h"), "source": src}
    for r in (bp, tt):
        spec, why = v.parse_row(r)
        assert spec is not None, why
        assert spec.framework == "caffe2"
        r["value"] = str(v.predict_row(spec, truth))
    assert v.predict_row(v.parse_row(tt)[0], truth) > v.predict_row(
        v.parse_row(tt)[0], replace(truth, framework_overhead_s={}))
    path = tmp_path / "ref.csv"
    _write(path, [bp, tt], fields=[*FIELDS, "source"])
    calib, used = v.fit_all(v.load_reference(path), ["bp", "tt"])
    assert used == ("bp", "tt")
    assert calib.gemm_efficiency["p100/fp32"] == pytest.approx(0.6, rel=1e-4)
    assert calib.framework_overhead_s["caffe2"] == pytest.approx(0.03, rel=1e-3)
    assert calib.overhead("caffe2") == pytest.approx(0.03, rel=1e-3)
    assert calib.overhead("pytorch") == 0.0
    with pytest.raises(ConfigError, match="framework_overhead_s"):
        v.Calibration(framework_overhead_s={"caffe2": -1.0})


def test_goyal_rows_fit_and_held_out():
    rec_calib, fit_ids = v.load_calibration()
    assert set(v.GOYAL_FIT_ROW_IDS) <= set(fit_ids)
    assert "TTT-GOY-01" not in fit_ids and "DP-GOY-01" not in fit_ids
    assert set(rec_calib.framework_overhead_s) == {"caffe2"}


# ------------------------------------------------------------------ time to train
def test_steps_to_target_from_the_row_or_the_published_model():
    steps, why = v.steps_to_target("ResNet-50 (ImageNet, 90 epochs)", "resnet50", 8192)
    assert steps == pytest.approx(90 * 1_281_167 / 8192)
    assert "the row's" in why
    from ddlsim.convergence.stat_eff import published_model
    steps, why = v.steps_to_target("ResNet-50 (ImageNet)", "resnet50", 256)
    assert steps == pytest.approx(published_model("resnet50-imagenet").steps(256))
    assert why.startswith("steps: model")
    assert v.steps_to_target("Custom ResNet 9 (CIFAR10)", "resnet50", 512)[0] is None
    assert v.steps_to_target("VGG-16 (ImageNet)", "vgg16", 256)[0] is None


def test_time_to_train_is_steps_times_simulated_iteration():
    base = _row(id="X", category="time_to_train", model="ResNet-50 (ImageNet, 2 epochs)",
                gpu="P100-SXM2-16GB", num_gpus="16", nodes="2",
                interconnect="Facebook Big Basin: 8x P100 NVLink per server; 50 Gbit Ethernet",
                precision="fp32", global_batch="512", micro_batch="32",
                metric="time_to_train_hours", unit="h")
    spec, why = v.parse_row(base)
    assert spec is not None, why
    assert spec.cluster.nodes == 2 and spec.cluster.nics_per_node == 1
    assert spec.cluster.intra_bw_Bps == 80e9 and spec.cluster.nic_bw_Bps == 50e9 / 8
    hours = v.predict_row(spec, v.DEFAULT_CALIBRATION)
    thr = v.predict_row(replace(spec, metric_kind="throughput", scale=1.0),
                        v.DEFAULT_CALIBRATION)
    assert hours == pytest.approx(2 * 1_281_167 / thr / 3600, rel=1e-9)
    # the global batch must be GPUs x batch per GPU; the DAWNBench free-text rows refuse
    assert v.parse_row({**base, "global_batch": "1000"})[0] is None
    spec, why = v.parse_row({**base, "interconnect": "see gpu field"})
    assert spec is None and "DAWNBench" in why


def test_bundled_time_to_train_rows():
    res = v.validate(categories=("time_to_train",), calibration="stored").rows.set_index("id")
    assert set(res.index[res["status"] == "predicted"]) == {"TTT-GOY-01", "TTT-GOY-02"}
    assert "the row's" in res.loc["TTT-GOY-01", "reason"]          # 90 epochs, stated
    assert "steps: model" in res.loc["TTT-GOY-02", "reason"]       # stat_eff model
    assert (res.loc[res["status"] != "predicted", "reason"].str.len() > 20).all()
    assert 0.5 < res.loc["TTT-GOY-01", "predicted"] < 2.0           # hours, order of 1


def test_bert_row_is_predicted_from_the_zoo(tmp_path):
    # a user's BERT-large data-parallel row (sequences/s) maps to the zoo's bert-large; two
    # GPUs of a DGX A100 run at most twice one GPU's rate
    rows = [_row(id="B-1", model="BERT-large (seq 128)", precision="AMP (mixed fp16)",
                 micro_batch="8", unit="sequences/s"),
            _row(id="B-2", model="BERT-large (seq 128)", precision="AMP (mixed fp16)",
                 micro_batch="8", unit="sequences/s", num_gpus="2",
                 interconnect="DGX A100")]
    res = v.validate(_write(tmp_path / "b.csv", rows), categories=("data_parallel",),
                     calibration="default").rows.set_index("id")
    assert (res["status"] == "predicted").all(), res["reason"].tolist()
    one, two = res.loc["B-1", "predicted"], res.loc["B-2", "predicted"]
    assert 0 < one < two <= 2 * one
