"""The decoder layout search and what the plan proposes: every preset GPU priced, tokens
targets for every decoder, memory-checked layouts, never a configuration that does not fit."""

from __future__ import annotations

import math

import pytest

from ddlsim import api
from ddlsim.api.layout_search import (
    best_layouts,
    candidate_splits,
    decoder_template,
    search_layouts,
)
from ddlsim.api.plan import ConfigPrediction, PlanOptions, load_prices, plan
from ddlsim.errors import ConfigError


def ideal(model, preset, gpus, opts):
    return ConfigPrediction("toy", 0.1, opts.global_batch, dp=gpus)


# --------------------------------------------------------------------------- prices
def test_every_gpu_with_a_cluster_preset_has_a_dated_sourced_price():
    from ddlsim.sim.hardware import get_device
    from ddlsim.sim.topology import PRESETS

    prices = load_prices()
    gpus = {f["device"][0] for f in PRESETS.values() if get_device(f["device"][0]).kind == "gpu"}
    assert {"a100-80gb", "h100-sxm", "l4", "v100-sxm2-16gb"} <= gpus
    # the GPUs people rent have a dated on-demand quote (GB200, MI300X: OCI); a preset GPU
    # with no published price (P100, when its DGX-1 preset exists) is skipped in one line
    unpriced = gpus - set(prices)
    assert not unpriced & {"a100-80gb", "h100-sxm", "h200", "b200", "gb200", "mi300x", "l40s"}
    for dev in gpus - unpriced:
        row = prices[dev]
        assert row["source"] and row["date"] and row["pricing"] == "on_demand", dev
    # the DGX A100 preset's GPU has its own row, not the 40 GB part's
    assert prices["a100-80gb"]["usd_per_gpu_hour"] == pytest.approx(27.44705 / 8, abs=1e-4)
    assert prices["a100-80gb"]["usd_per_gpu_hour"] != prices["a100-40gb"]["usd_per_gpu_hour"]
    assert prices["l4"]["usd_per_gpu_hour"] == pytest.approx(13.3504 / 8, abs=1e-4)
    for dev in ("a100-80gb", "l4"):
        assert prices[dev]["pricing"] == "on_demand"
        assert "https://aws.amazon.com/ec2/pricing/on-demand/" in prices[dev]["source"]
    r = plan(PlanOptions(model="resnet50", target="epochs=1", max_gpus=8), predictor=ideal)
    assert set(r.table["gpu"]) == gpus - unpriced  # every priced GPU type is planned
    skipped = [n.split()[0] for n in r.notes if "skipped: no sourced price row" in n]
    assert sorted(skipped) == sorted(unpriced)  # one line each


# --------------------------------------------------------------------------- targets
def test_tokens_target_for_every_decoder_uses_its_sequence_length():
    from ddlsim.sim.workloads import GPT_PRESETS, LLAMA_PRESETS, NEMOTRON_PRESETS, get_workload

    for model in [*GPT_PRESETS, *LLAMA_PRESETS, *NEMOTRON_PRESETS]:
        seq = get_workload(model, 1).tokens_per_sample
        r = plan(PlanOptions(model=model, target="tokens=2e12", max_gpus=8, global_batch=256,
                             gpus=("h100-sxm",)), predictor=ideal)
        assert r.target.samples == pytest.approx(2e12 / seq), model
        assert (r.table["steps"] == math.ceil(2e12 / seq / 256)).all(), model
    with pytest.raises(ConfigError, match="tokens"):
        plan(PlanOptions(model="resnet50", target="tokens=1e9"), predictor=ideal)


# --------------------------------------------------------------------------- search space
def test_candidate_splits_respect_heads_nodes_and_layers():
    # llama2-70b: 64 heads, 8 kv heads, 80 blocks, 8 GPUs per node
    s = candidate_splits(64, 8, 80, 64, 8)
    assert {tp for tp, _ in s} == {1, 2, 4, 8} and all(tp * pp <= 64 for tp, pp in s)
    assert (8, 8) in s and (1, 64) in s and (16, 1) not in s
    # gpt-small: 12 heads -> tp 8 does not divide; 12 blocks -> pp <= 8
    s = candidate_splits(64, 8, 12, 12, 12)
    assert {tp for tp, _ in s} == {1, 2, 4} and max(pp for _, pp in s) == 8


def _first_fit(model, preset, gpus, gb=512):
    """The rule the planner used before the search: the smallest tp x pp (tp within a node
    first) whose even split fits at micro-batch 1 without recomputation."""
    mp = 1
    while mp <= gpus:
        tp = min(mp, 8)
        pp, dp = mp // tp, gpus // mp
        job = api.Job(workload=api.Workload(model), cluster=api.Cluster(preset, gpus),
                      parallelism=api.Parallelism(tp=tp, pp=pp, dp=dp, placement="blocks"),
                      batch=api.Batch(global_batch=gb, micro=1), strategy=api.Strategy(kind="3d"))
        need, cap = api.check_memory(job)
        if need <= cap:
            return job
        mp *= 2
    return None


def test_search_beats_first_fit_and_every_layout_fits():
    search = search_layouts(decoder_template("llama2-70b", "dgx-h100", 64))
    # every layout estimated by the fast path, most do not fit, the best few predicted
    assert search.layouts and search.enumerated >= search.checked > search.fitting
    assert search.predicted <= 5 and search.layouts_per_s > 0
    best = search.best
    old = _first_fit("llama2-70b", "dgx-h100", 64)
    old_pred = api.predict(old)
    # fused attention (the default) keeps no s^2 activations: tp 8 x pp 4 fits (pp 8 unfused)
    assert (old.parallelism.tp, old.parallelism.pp) == (8, 4)
    assert best.iteration_s <= old_pred.iteration_s
    assert [lc.iteration_s for lc in search.layouts] == sorted(
        lc.iteration_s for lc in search.layouts)
    for lc in search.layouts:
        assert lc.tp * lc.pp * lc.dp * lc.cp == 64 and 512 % (lc.dp * lc.micro_batch) == 0
        assert lc.proxy_s == pytest.approx(lc.iteration_s, rel=0.02)  # fast path vs simulation
        assert lc.memory_bytes <= lc.capacity_bytes
        need, cap = api.check_memory(lc.job)
        assert need == pytest.approx(lc.memory_bytes) and cap == lc.capacity_bytes
        assert 0 <= lc.bubble_fraction < 1 and 0 < lc.mfu < 1 and lc.tokens_per_s > 0
        assert lc.dtype == "bf16"
    assert "fastest" in search.note() and best.label in search.note()


def test_best_layouts_respects_a_fixed_micro_batch_and_says_when_nothing_fits():
    got = best_layouts(decoder_template("gpt-small", "dgx-h100", 8, global_batch=64,
                                        micro_batch=2), top=2)
    assert got and all(lc.micro_batch == 2 for lc in got) and len(got) <= 2
    none = search_layouts(decoder_template("llama2-70b", "cloud-25gbe", 8))
    assert none.layouts == [] and none.fitting == 0 and "GiB per GPU of 16" in none.note()
    with pytest.raises(ConfigError, match="decoder"):
        search_layouts(decoder_template("resnet50", "dgx-h100", 8))


# --------------------------------------------------------------------------- never propose
def test_a_configuration_that_does_not_fit_is_never_proposed():
    def toy(model, preset, gpus, opts):  # a fast configuration that does not fit
        if gpus == 8:
            return ConfigPrediction("toy", 1e-3, opts.batch_per_gpu * gpus, fits=False,
                                    note="does not fit")
        return ConfigPrediction("toy", 0.1, opts.batch_per_gpu * gpus, fits=True)

    r = plan(PlanOptions(model="resnet50", target="epochs=1", max_gpus=32, deadline_s=1e9,
                         gpus=("h100-sxm",)), predictor=toy)
    bad = r.table[r.table["gpus"] == 8].iloc[0]
    assert not bad.feasible and math.isinf(bad.time_s) and not bad.pareto
    assert 8 not in set(r.frontier["gpus"]) and r.choice["gpus"] != 8
    # real predictions: ResNet-50 at 256 images per GPU fits an A100 80GB, not a V100 16GB
    r = plan(PlanOptions(model="resnet50", target="epochs=1", max_gpus=8, batch_per_gpu=256,
                         gpus=("a100-80gb", "v100-sxm2-16gb"), iterations=2))
    t = r.table.set_index("gpu")
    assert t.loc["a100-80gb", "feasible"] and t.loc["a100-80gb", "fits"]
    assert t.loc["a100-80gb", "memory_GiB"] <= t.loc["a100-80gb", "capacity_GiB"]
    assert not t.loc["v100-sxm2-16gb", "feasible"]
    assert "does not fit" in t.loc["v100-sxm2-16gb", "note"]
    assert set(r.frontier["gpu"]) == {"a100-80gb"}
    assert all(f["memory_GiB"] <= f["capacity_GiB"] for f in r.summary()["frontier"])
    assert any(n.startswith("v100-sxm2-16gb at 8 GPUs cannot run") for n in r.notes)
