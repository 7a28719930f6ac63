"""`ddlsim plan` answers first: a decoder with a tokens target on two GPU types, a CNN on
the DGX A100 preset's GPU, the same content as JSON."""

from __future__ import annotations

import json
import math

import pandas as pd
from click.testing import CliRunner

from ddlsim.cli import cli


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_llama2_70b_tokens_target_answers_with_fitting_layouts_on_two_gpus(tmp_path):
    res = run("plan", "--model", "llama2-70b", "--target", "tokens=1e11",
              "--gpus", "h100-sxm,a100-80gb", "--min-gpus", "32", "--max-gpus", "32",
              "--out", str(tmp_path / "p"))
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("calibration: ")
    assert lines[1].startswith("fastest: 32 x ") and "llama2-70b, tp " in lines[1]
    assert "bf16: " in lines[1] and "$" in lines[1] and "(tokens=1e11)" in lines[1]
    assert "Pareto frontier" in res.output and "memory/GPU" in res.output
    t = pd.read_csv(tmp_path / "p" / "plan.csv")
    assert set(t["gpu"]) == {"h100-sxm", "a100-80gb"}
    assert t["feasible"].all() and t["fits"].all()
    assert (t["memory_GiB"] <= t["capacity_GiB"]).all()
    assert (t["tp"] * t["pp"] * t["dp"] == 32).all()
    for r in t.itertuples():
        assert math.isfinite(r.time_s) and math.isfinite(r.cost_usd) and r.cost_usd > 0
        assert r.steps == math.ceil(1e11 / 4096 / 512)  # 4,096-token sequences, 512 each
        assert r.layout.startswith(f"tp {r.tp} pp {r.pp} dp {r.dp} mbs {r.micro_batch}")
    report = (tmp_path / "p" / "report.md").read_text()
    assert report.splitlines()[2] == f"**{lines[1]}**"  # the report leads with the answer


def test_resnet50_on_the_dgx_a100_gpu_has_a_price():
    res = run("plan", "--model", "resnet50", "--target", "epochs=90", "--gpus", "a100-80gb",
              "--max-gpus", "16", "--deadline", "3h")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("calibration: ")
    assert lines[1].startswith("cheapest within the deadline of 3 h: ")
    assert "x A100-80GB, resnet50, DP " in lines[1] and "$" in lines[1]
    assert "skipped" not in res.output


def test_json_has_the_same_content_as_the_text():
    args = ["plan", "--model", "resnet50", "--target", "epochs=90", "--gpus",
            "a100-80gb,v100-sxm2-16gb", "--max-gpus", "16", "--budget", "100USD"]
    text = run(*args)
    doc = json.loads(run(*args, "--json").output)
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert doc["calibration"] in lines[0]
    assert doc["headline"] == lines[1:1 + len(doc["headline"])]
    assert doc["headline"][0].startswith("fastest within the budget of $100: ")
    assert doc["choice"]["gpu"] in {"a100-80gb", "v100-sxm2-16gb"}
    assert doc["choice"]["cost_usd"] <= 100
    for f in doc["frontier"]:
        assert f["cost"] in text.output and f["time"] in text.output and f["layout"]
    for line in doc["explanation"] + [f"note: {n}" for n in doc["notes"]]:
        assert line in text.output
    assert {p["device"] for p in doc["prices"]} == {"a100-80gb", "v100-sxm2-16gb"}


def test_decoder_micro_batch_is_searched_unless_given():
    res = run("plan", "--model", "gpt-small", "--target", "tokens=1e9", "--gpus", "h100-sxm",
              "--max-gpus", "8", "--global-batch", "64", "--micro-batch", "2", "--json")
    doc = json.loads(res.output)
    assert doc["choice"] is None  # no deadline or budget: the fastest and the cheapest
    assert doc["headline"][0].startswith("fastest: 8 x H100-SXM, gpt-small, tp ")
    assert all("mbs 2" in f["layout"] for f in doc["frontier"])
    res = run("plan", "--model", "gpt-small", "--target", "tokens=1e9", "--gpus", "h100-sxm",
              "--max-gpus", "8", "--global-batch", "64", "--json")
    assert json.loads(res.output)["frontier"][0]["layout"].startswith("tp ")
