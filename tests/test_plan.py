"""Capacity planning: frontier, pricing, selection, failures, parsing, a small real plan."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from ddlsim.api.plan import (
    LLAMA3_MTBF_GPU_HOURS,
    ConfigPrediction,
    PlanOptions,
    goodput_factor,
    gpu_counts,
    load_prices,
    pareto_mask,
    parse_duration,
    parse_money,
    parse_target,
    plan,
    select,
    young_daly_interval_s,
)
from ddlsim.errors import ConfigError


def ideal(model, preset, gpus, opts):
    """Toy predictor: ideal weak scaling, 0.1 s per iteration at any GPU count."""
    return ConfigPrediction("toy", 0.1, opts.batch_per_gpu * gpus, dp=gpus)


def write_prices(path, rows):
    lines = ["device,instance,usd_per_gpu_hour,pricing,source,date"]
    lines += [f"{d},x,{p},on_demand,test price,2025-01-01" for d, p in rows]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


# --------------------------------------------------------------------------- frontier
def test_pareto_hand_made_frame():
    # (time, cost): A fast+dear, B dominated by C, C, D slow+cheap, E duplicate of C,
    # F dominated by D only in cost tie (same cost, slower), G infinite.
    t = [1.0, 3.0, 2.0, 5.0, 2.0, 6.0, math.inf]
    c = [10.0, 8.0, 7.0, 3.0, 7.0, 3.0, 1.0]
    mask = pareto_mask(t, c)
    assert mask == [True, False, True, True, True, False, False]
    pts = [(a, b) for a, b, m in zip(t, c, mask, strict=True) if m]
    for a, b in pts:  # no frontier point is dominated by any finite point
        assert not any(t2 <= a and c2 <= b and (t2 < a or c2 < b)
                       for t2, c2 in zip(t, c, strict=True) if math.isfinite(t2))
    for i, m in enumerate(mask):  # every excluded finite point is dominated by a frontier one
        if not m and math.isfinite(t[i]):
            assert any(a <= t[i] and b <= c[i] and (a < t[i] or b < c[i]) for a, b in pts)


def test_pareto_random_frames_match_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(20):
        t, c = rng.integers(1, 6, 15).astype(float), rng.integers(1, 6, 15).astype(float)
        mask = pareto_mask(t, c)
        for i in range(15):
            dom = any(t[j] <= t[i] and c[j] <= c[i] and (t[j] < t[i] or c[j] < c[i])
                      for j in range(15))
            assert mask[i] == (not dom)


# --------------------------------------------------------------------------- pricing
def test_cost_is_gpus_hours_price_exactly(tmp_path):
    prices = write_prices(tmp_path / "p.csv", [("h100-sxm", 2.5), ("v100-sxm2-16gb", 1.25)])
    r = plan(PlanOptions(model="resnet50", target="samples=1e6", max_gpus=32,
                         gpus=("h100-sxm", "v100-sxm2-16gb"), prices_path=prices),
             predictor=ideal)
    t = r.table
    assert set(t["gpu"]) == {"h100-sxm", "v100-sxm2-16gb"}
    price = t["gpu"].map({"h100-sxm": 2.5, "v100-sxm2-16gb": 1.25})
    steps = np.ceil(1e6 / (32 * t["gpus"]))
    assert (t["steps"] == steps).all()
    assert np.array_equal(t["time_s"], steps * 0.1)
    assert np.array_equal(t["cost_usd"], t["gpus"] * (t["time_s"] / 3600.0) * price)


def test_packaged_prices_cite_published_rows_and_user_rows_override(tmp_path):
    rows = load_prices()
    # the cheapest on-demand quote (AWS p5), not the capacity block (published.csv COST-01)
    assert rows["h100-sxm"]["usd_per_gpu_hour"] == 6.88
    assert "Capacity Blocks" not in rows["h100-sxm"]["source"]
    assert "AWS $4.916 (2025-01-01) capacity_block" in rows["h100-sxm"]["choice"]
    assert rows["v100-sxm2-16gb"]["usd_per_gpu_hour"] == 3.06  # published.csv COST-04
    assert all(r["source"] and r["date"] for r in rows.values())
    user = write_prices(tmp_path / "p.csv", [("h100", 9.0), ("l4", 0.8)])
    merged = load_prices(user)
    assert merged["h100-sxm"]["usd_per_gpu_hour"] == 9.0
    assert merged["l4"]["usd_per_gpu_hour"] == 0.8
    assert merged["v100-sxm2-16gb"]["usd_per_gpu_hour"] == 3.06


def test_bad_price_rows_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"line 2: usd_per_gpu_hour"):
        load_prices(write_prices(tmp_path / "a.csv", [("h100-sxm", -1)]))
    with pytest.raises(ConfigError, match="did you mean 'h100-sxm'"):
        load_prices(write_prices(tmp_path / "b.csv", [("h10", 1.0)]))
    (tmp_path / "c.csv").write_text("device,price\nh100-sxm,1\n")
    with pytest.raises(ConfigError, match="missing columns"):
        load_prices(str(tmp_path / "c.csv"))


# --------------------------------------------------------------------------- scaling
@pytest.mark.parametrize("target", ["epochs=90", "accuracy"])
def test_more_gpus_never_slower_with_ideal_scaling(target):
    r = plan(PlanOptions(model="resnet50", target=target, max_gpus=1024, min_gpus=1,
                         gpus=("h100-sxm",)), predictor=ideal)
    t = r.table.sort_values("gpus")
    assert list(t["gpus"]) == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert (np.diff(t["time_s"].to_numpy()) <= 0).all()
    if target == "accuracy":  # the stat-eff model: examples grow with the batch
        assert (np.diff(t["cost_usd"].to_numpy()) > 0).all()
        assert t["steps_source"].str.startswith("model:").all()


def test_gpu_counts_powers_of_two_whole_nodes():
    assert gpu_counts(8, 64) == [8, 16, 32, 64]
    assert gpu_counts(8, 100) == [8, 16, 32, 64]
    assert gpu_counts(8, 4) == [4]
    assert gpu_counts(8, 32, min_gpus=1) == [1, 2, 4, 8, 16, 32]


# --------------------------------------------------------------------------- selection
def test_deadline_picks_cheapest_feasible_and_budget_fastest():
    df = pd.DataFrame({"time_s": [10.0, 20.0, 30.0, 40.0, math.inf],
                       "cost_usd": [100.0, 60.0, 50.0, 10.0, math.inf],
                       "feasible": [True, True, True, True, False],
                       "gpus": [8] * 5, "gpu": ["a", "b", "c", "d", "e"],
                       "strategy": ["s"] * 5})
    df["hours"] = df["time_s"] / 3600
    cheap, fast, _ = select(df, deadline_s=30.0, budget_usd=None)
    assert cheap["gpu"] == "c"
    cheap, fast, _ = select(df, deadline_s=None, budget_usd=70.0)
    assert cheap is None and fast["gpu"] == "b"
    cheap, fast, lines = select(df, deadline_s=5.0, budget_usd=None)
    assert cheap is None and "no configuration meets the deadline" in lines[0]
    cheap, fast, lines = select(df, deadline_s=15.0, budget_usd=50.0)
    assert cheap is None and fast is None and "none within the budget" in lines[0]


def test_plan_choice_is_cheapest_meeting_deadline():
    opts = PlanOptions(model="resnet50", target="epochs=1", max_gpus=256, deadline_s=600.0)
    r = plan(opts, predictor=ideal)
    meet = r.table[r.table["time_s"] <= 600.0]
    assert r.choice["cost_usd"] == meet["cost_usd"].min()
    assert r.choice["time_s"] <= 600.0
    assert r.choice["gpus"] in set(r.frontier["gpus"])


# --------------------------------------------------------------------------- errors
def test_unknown_gpu_suggests_closest(monkeypatch):
    import ddlsim.api.plan as plan_mod

    with pytest.raises(ConfigError, match=r"gpus: .*did you mean 'h100-sxm'"):
        plan(PlanOptions(gpus=("h10",)), predictor=ideal)
    with pytest.raises(ConfigError, match="no cluster preset"):  # priced, but no preset
        plan(PlanOptions(gpus=("a10",)), predictor=ideal)
    # drop a priced GPU's quotes to see the error
    priced = {k: v for k, v in load_prices().items() if k != "l4"}
    monkeypatch.setattr(plan_mod, "load_prices", lambda path=None: priced)
    with pytest.raises(ConfigError, match="no price for 'l4'"):
        plan(PlanOptions(gpus=("l4",)), predictor=ideal)
    r = plan(PlanOptions(max_gpus=8), predictor=ideal)
    assert "l4" not in set(r.table["gpu"])
    assert any("l4 (pcie-8gpu) skipped: no sourced price row" in n for n in r.notes)


def test_parse_helpers():
    assert parse_duration("24h") == 86400.0
    assert parse_duration("3d") == 3 * 86400.0
    assert parse_duration("90min") == 5400.0
    assert parse_money("5000USD") == 5000.0
    assert parse_money("$1.5e3") == 1500.0
    for bad in ("24", "3 parsecs", "-1h"):
        with pytest.raises(ConfigError, match="deadline"):
            parse_duration(bad)
    with pytest.raises(ConfigError, match="budget"):
        parse_money("5000EUR")
    assert parse_target("epochs=90", "resnet50").samples == 90 * 1_281_167
    assert parse_target("tokens=3e11", "gpt3-175b", tokens_per_sample=2048).samples == (
        3e11 / 2048)
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        parse_target("epoch=3", "resnet50")
    with pytest.raises(ConfigError, match="statistical-efficiency"):
        parse_target("accuracy", "vgg16")
    with pytest.raises(ConfigError, match="tokens"):
        parse_target("tokens=1e9", "resnet50")


# --------------------------------------------------------------------------- failures
def test_goodput_matches_young_daly():
    c, mtbf_h, n, r = 60.0, 50_000.0, 4096, 300.0
    m = mtbf_h * 3600 / n
    g = goodput_factor(n, mtbf_h, c, r)
    assert g.job_mtbf_s == pytest.approx(m, rel=1e-15)
    assert g.interval_s == pytest.approx(math.sqrt(2 * c * m), rel=1e-15)
    tau = g.interval_s
    assert g.factor == pytest.approx((1 - (tau / 2 + r) / m) / (1 + c / tau), rel=1e-15)
    # first-order form 1 - sqrt(2C/M) - R/M (C, R << M): agrees to second order
    first = 1 - math.sqrt(2 * c / m) - r / m
    assert abs(g.factor - first) < 2 * (c / m + (r / m) ** 2 + math.sqrt(2 * c / m) ** 2)
    # tau = sqrt(2 C M) minimises the first-order waste C/tau + tau/(2M) on a fine grid
    grid = np.linspace(0.2 * tau, 5 * tau, 20001)
    waste = c / grid + grid / (2 * m)
    assert grid[np.argmin(waste)] == pytest.approx(tau, rel=1e-3)
    assert young_daly_interval_s(c, m) == tau


def test_goodput_falls_with_gpus_and_zero_when_failures_dominate():
    f = [goodput_factor(n, LLAMA3_MTBF_GPU_HOURS, 60.0, 300.0).factor
         for n in (8, 64, 512, 4096, 32768)]
    assert all(a > b for a, b in zip(f, f[1:], strict=False))
    assert goodput_factor(10**7, 1.0, 600.0, 600.0).factor == 0.0
    with pytest.raises(ConfigError, match="mtbf_gpu_hours"):
        goodput_factor(8, 0.0, 60.0)


def test_plan_with_failures_divides_time_by_goodput():
    base = PlanOptions(model="resnet50", target="samples=1e8", max_gpus=256,
                       gpus=("h100-sxm",))
    a = plan(base, predictor=ideal).table
    opts = PlanOptions(**{**base.__dict__, "include_failures": True})
    b = plan(opts, predictor=ideal).table
    for n, t0, t1 in zip(a["gpus"], a["time_s"], b["time_s"], strict=True):
        g = goodput_factor(n, opts.mtbf_gpu_hours, opts.checkpoint_cost_s, opts.restart_s)
        assert t1 == pytest.approx(t0 / g.factor, rel=1e-12)


# --------------------------------------------------------------------------- real plan
def test_small_real_plan_resnet50_two_gpu_types(tmp_path):
    from ddlsim.reports.plan import write_plan_report

    t0 = time.perf_counter()
    r = plan(PlanOptions(model="resnet50", target="epochs=90", max_gpus=64,
                         gpus=("h100-sxm", "v100-sxm2-16gb"), deadline_s=parse_duration("24h"),
                         iterations=2))
    elapsed = time.perf_counter() - t0
    assert elapsed < 10.0
    t = r.table
    assert len(t) == 8 and t["feasible"].all()
    # a faster GPU at a fixed count gives a shorter iteration (same per-GPU batch)
    for n in (8, 16, 32, 64):
        h = t[(t.gpu == "h100-sxm") & (t.gpus == n)].iloc[0]
        v = t[(t.gpu == "v100-sxm2-16gb") & (t.gpus == n)].iloc[0]
        assert h.iteration_s < v.iteration_s
    assert r.choice is not None and r.choice["time_s"] <= 86400.0
    assert set(r.frontier.index) and r.frontier["pareto"].all()
    out = write_plan_report(r, tmp_path / "plan")
    assert {"plan.csv", "frontier.csv", "prices.csv", "pareto.png", "report.md"} <= {
        p.name for p in out.iterdir()}
    assert "cheapest meeting the deadline" in (out / "report.md").read_text()
    back = pd.read_csv(out / "plan.csv")
    assert list(back["gpus"]) == list(t["gpus"])


def test_gpt_plan_uses_3d_and_explains_what_does_not_fit():
    t0 = time.perf_counter()
    r = plan(PlanOptions(model="gpt3-175b", target="tokens=3e11", max_gpus=16,
                         batch_per_gpu=1, gpus=("h100-sxm",)))
    t = r.table
    assert time.perf_counter() - t0 < 10.0
    assert not t["feasible"].any() and t["note"].str.contains("no TP x PP split fits").all()
    assert r.frontier.empty and r.choice is None
    r = plan(PlanOptions(model="gpt-small", target="tokens=1e9", max_gpus=16, batch_per_gpu=4,
                         global_batch=64, gpus=("h100-sxm",)))
    t = r.table
    assert t["feasible"].all() and t["strategy"].str.startswith("3D").all()
    assert (t["tp"] * t["pp"] * t["dp"] == t["gpus"]).all()
    assert (t["steps"] == math.ceil(1e9 / 1024 / 64)).all()  # gpt-small: 1024 tokens/sample


def test_summary_is_json_serialisable():
    import json

    r = plan(PlanOptions(model="resnet50", target="epochs=1", max_gpus=64, budget_usd=1e6),
             predictor=ideal)
    s = json.loads(json.dumps(r.summary()))
    assert s["choice"]["gpus"] == 64 and s["configurations"] == len(r.table)


@pytest.mark.parametrize("preset,model,tp,pp,dp", [
    ("dgx-h100", "gpt3-175b", 8, 8, 2), ("dgx-h100", "gpt3-175b", 8, 16, 1),
    ("dgx-a100", "gpt3-13b", 4, 1, 2), ("dgx-a100", "gpt3-13b", 2, 1, 2),
    ("cloud-25gbe", "gpt3-13b", 8, 2, 1)])
def test_memory_prescreen_agrees_with_place(preset, model, tp, pp, dp):
    from ddlsim import api

    job = api.Job(workload=api.Workload(model), cluster=api.Cluster(preset, tp * pp * dp),
                  parallelism=api.Parallelism(tp=tp, pp=pp, dp=dp, placement="blocks"),
                  batch=api.Batch(global_batch=64, micro=1), strategy=api.Strategy(kind="3d"))
    need, cap = api.check_memory(job)
    assert (need <= cap) == api.place(job).fits
