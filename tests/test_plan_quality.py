"""`ddlsim plan --target quality`: the MLPerf benchmark's target, steps from the MLCommons
reference convergence points at each configuration's global batch, evaluation added."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from ddlsim.api.plan import ConfigPrediction, PlanOptions, load_prices, parse_target, plan
from ddlsim.cli import cli
from ddlsim.convergence import rcp
from ddlsim.errors import ConfigError


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def ideal(model, preset, gpus, opts):
    return ConfigPrediction("toy", 0.1, opts.batch_per_gpu * gpus, dp=gpus)


def test_resnet50_quality_answers_with_time_and_cost_on_every_priced_device():
    res = run("plan", "--model", "resnet50", "--target", "quality", "--max-gpus", "8",
              "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["headline"][0].startswith("fastest: 8 x ") and "(quality)" in doc["headline"][0]
    assert "MLPerf resnet quality target, 75.9% top-1" in doc["target"]
    planned = {p["device"] for p in doc["prices"]}
    priced = set(load_prices())
    assert planned and planned <= priced
    for d in priced - planned:  # a priced GPU not planned has no cluster preset, said so
        assert any(d in n and "no cluster preset" in n for n in doc["notes"]), d
    frontier_gpus = {f["gpu"] for f in doc["frontier"]}
    assert frontier_gpus <= planned
    notes = " ".join(doc["notes"])
    assert "steps to the target are MEASURED" in notes and "rcps_resnet.json" in notes
    assert "below 1,632" in notes  # 8 x 32 = 256: the smallest published batch's samples


def test_every_priced_device_gets_a_finite_time_and_cost(tmp_path):
    res = run("plan", "--model", "resnet50", "--target", "quality", "--max-gpus", "8",
              "--out", str(tmp_path / "p"))
    assert res.exit_code == 0, res.output
    import pandas as pd

    t = pd.read_csv(tmp_path / "p" / "plan.csv")
    assert t["feasible"].all()
    conv = rcp.converge_at("resnet", 256)
    for r in t.itertuples():
        assert math.isfinite(r.time_s) and r.cost_usd > 0 and r.steps == conv.steps
        assert r.evals == conv.evals and r.eval_s > 0
        assert r.time_s == pytest.approx(r.steps * r.iteration_s + r.eval_s, rel=1e-5)
        assert "below the RCP batch range" in r.note
    assert "| evaluation |" in (tmp_path / "p" / "report.md").read_text()


def test_quality_steps_follow_the_rcps_at_each_global_batch():
    r = plan(PlanOptions(model="resnet50", target="quality", gpus=("h100-sxm",), min_gpus=1,
                         max_gpus=4096), predictor=ideal)
    t = r.table.set_index("gpus")
    for n, row in t.iterrows():
        b = 32 * n
        if b > 67_840:
            assert not row["feasible"] and row["steps"] == 0 and "above" in row["note"]
            continue
        conv = rcp.converge_at("resnet", b)
        assert row["steps"] == conv.steps and row["steps_source"].endswith(conv.method)
        assert row["time_s"] == pytest.approx(
            conv.steps * 0.1 + conv.eval_step_equivalents(1 / 3) * 0.1, rel=1e-12)
    assert any("above 67,840: no RCP, not planned" in n for n in r.notes)


def test_quality_refusals_say_why_in_one_line(capsys):
    from ddlsim.cli import main

    with pytest.raises(SystemExit) as exc:  # the LoRA benchmark's RCPs are at rank 16
        main(["plan", "--model", "llama2-70b", "--target", "quality", "--gpus", "h100-sxm",
              "--max-gpus", "64", "--lora-rank", "8"])
    assert exc.value.code == 1
    msg = capsys.readouterr().err.strip()
    assert "\n" not in msg and msg.startswith("error: lora_rank: the llama2_70b_lora RCPs")
    assert "rank 16, got 8" in msg
    with pytest.raises(ConfigError, match="'vgg16' has none"):
        parse_target("quality", "vgg16")
    with pytest.raises(ConfigError, match="sequences of 512 tokens"):
        parse_target("quality", "bert-large", tokens_per_sample=128)
    # a decoder's global batch is fixed: a batch above the range fails before simulating
    with pytest.raises(rcp.OutsideRCPRange, match=r"512 is above .* llama31_8b \(32-128\)"):
        plan(PlanOptions(model="llama3-8b", target="quality", gpus=("h100-sxm",),
                         max_gpus=8), predictor=ideal)


def test_accuracy_is_still_the_labelled_model_and_quality_the_measurement():
    acc = parse_target("accuracy", "resnet50")
    q = parse_target("quality", "resnet50")
    assert "MODEL" in acc.describe() and "measured" in q.describe()
    assert q.benchmark == "resnet" and q.steps(4096)[0] == rcp.converge_at("resnet", 4096).steps
