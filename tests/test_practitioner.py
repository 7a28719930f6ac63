"""Answers a practitioner can trust at a glance: defaults practitioners use, memory checked
for every strategy, profiles used or refused loudly, and a demo that answers a question."""

import json
import re

import pytest
from click.testing import CliRunner

from ddlsim import api
from ddlsim.cli import cli

PROFILE = "src/ddlsim/data/profiles/cpu-lenet5-b64-float32.csv"


def _run(*args):
    res = CliRunner().invoke(cli, list(args))
    assert res.exit_code == 0, res.output
    return res.output


def test_the_readme_3d_command_reports_megatron_class_throughput():
    out = _run("3d", "--model", "gpt3-175b", "--tp", "8", "--pp", "16", "--dp", "8",
               "--recompute", "full")
    tflops = float(re.search(r"([\d.]+) model TFLOP/s per GPU", out).group(1))
    # Narayanan et al. SC'21 Table 1: 135-148 TFLOP/s per GPU counting recomputation
    # (3/4 of it model FLOPs, ~100-110) for GPT 18B-146B at this scale and batch
    assert tflops >= 100, out
    assert "bfloat16" in out.splitlines()[1]


def test_3d_with_no_arguments_runs_the_megatron_default():
    out = _run("3d")
    assert re.search(r"^1024 x a100-80gb, gpt3-175b, bfloat16: ", out, re.M), out


def test_every_predicting_command_defaults_to_mixed_precision():
    for args in (["dp"], ["ps", "--updates", "16", "--workers", "2"], ["pipeline"]):
        doc = json.loads(_run(*args, "--json"))
        assert doc["predictions"][0]["dtype"] == "bfloat16", args


def test_data_parallelism_of_a_13b_model_does_not_fit_and_says_what_would():
    out = _run("dp", "--model", "gpt3-13b", "--gpus", "8", "--batch", "4")
    assert re.search(r"does not fit: [\d.]+ GiB needed on the fullest a100-80gb", out), out
    assert "would fit: tensor x pipeline parallelism" in out
    doc = json.loads(_run("dp", "--model", "gpt3-13b", "--gpus", "8", "--batch", "4",
                          "--json"))
    row = doc["predictions"][0]
    assert row["fits"] is False and row["memory_bytes"] > 150e9 and row["would_fit"]


def test_memory_advice_finds_a_batch_that_fits():
    job = api.Job(workload=api.Workload("vgg16"), cluster=api.Cluster("cloud-25gbe", 8),
                  batch=api.Batch(micro=1024))
    need, cap = api.check_memory(job)
    assert need > cap
    advice = api.memory_advice(job)
    b = int(re.search(r"batch (\d+) per GPU fits", advice[0]).group(1))
    assert b < 1024
    small = api.Job(workload=api.Workload("vgg16"), cluster=api.Cluster("cloud-25gbe", 8),
                    batch=api.Batch(micro=b))
    assert api.check_memory(small)[0] <= cap < api.check_memory(
        api.Job(workload=api.Workload("vgg16"), cluster=api.Cluster("cloud-25gbe", 8),
                batch=api.Batch(micro=2 * b)))[0]


def test_a_profile_measured_elsewhere_is_refused_loudly():
    job = api.Job(workload=api.Workload("lenet5"), cluster=api.Cluster("dgx-a100", 8),
                  batch=api.Batch(micro=64), profile=PROFILE)
    (warning,) = api.profile_warnings(job)
    assert "not on the job's a100-80gb" in warning and "Xeon" in warning
    res = CliRunner().invoke(cli, ["dp", "--model", "lenet5", "--batch", "64",
                                   "--profile", PROFILE])
    assert res.exit_code == 0 and "warning: profile" in res.output


def test_a_profile_in_another_precision_is_refused_loudly(tmp_path):
    import pandas as pd

    from ddlsim.kernels.host import detect_host

    df = pd.read_csv(PROFILE)
    df["device"] = detect_host().model  # as if measured on this machine
    path = tmp_path / "here.csv"
    df.to_csv(path, index=False)
    cpu = api.Job(workload=api.Workload("lenet5"), cluster=api.Cluster("cpu-cluster", 2),
                  batch=api.Batch(micro=64), profile=str(path))
    assert api.profile_warnings(cpu) == ()  # float32 rows, float32 CPU: used
    gpu = api.Job(workload=api.Workload("lenet5"), cluster=api.Cluster("dgx-a100", 2),
                  batch=api.Batch(micro=64), profile=str(path))
    assert len(api.profile_warnings(gpu)) == 1


@pytest.mark.slow
def test_demo_answers_a_capacity_question_first(tmp_path):
    out = _run("demo", "--out", str(tmp_path / "demo"))
    first = out.split("2/3")[0]
    assert first.startswith("1/3 Simulated from the device catalog")
    assert re.search(r"answer: fastest is \S+, [\d.]+ (min|h) for \$[\d,]+", first), first
    assert "v100-sxm2-16gb, float16" in first  # fp16 AMP on V100 by default
    assert "2/3 Real training on this machine" in out and "3/3 Timing" in out
    assert (tmp_path / "demo" / "resnet50-cloud-strategies" / "report.html").exists()


@pytest.mark.parametrize("command", ["dp", "ps", "pipeline", "place", "3d", "faults", "plan",
                                     "search", "collectives", "devices", "models"])
def test_every_command_runs_with_no_arguments(command):
    out = _run(command)
    assert out.strip(), command
    if command in ("dp", "ps", "pipeline", "place", "3d", "faults", "plan", "search"):
        assert out.startswith("calibration: stored"), out[:200]


def test_3d_takes_the_interleaved_schedule_and_zero_from_the_command_line():
    base = ["3d", "--model", "gpt3-1.3b", "--tp", "2", "--pp", "4", "--dp", "2",
            "--global-batch", "64", "--json"]
    plain = json.loads(_run(*base))["predictions"][0]
    mixed = json.loads(_run(*base, "--vp", "2", "--zero", "1"))["predictions"][0]
    assert mixed["iteration_s"] < plain["iteration_s"]  # smaller bubble
    assert mixed["memory_bytes"] < plain["memory_bytes"]  # optimizer state sharded over dp
