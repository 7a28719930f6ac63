"""Interleaved 1F1B (Narayanan et al. SC'21, arXiv 2104.04473, Sec. 2.2.2): the simulated
bubble against the closed form, v times the pipeline sends, Megatron-Core's order,
activation memory in flight (Korthikanti et al. 2022 Sec. 4.2.3), placement in
pp x vp chunks, and the plumbing from a Job and from reference rows."""

import pytest

from ddlsim import api
from ddlsim.api.pipeline import PipelineOptions, ThreeDOptions, predict_model_parallel
from ddlsim.api.predict import pipeline_options
from ddlsim.errors import ConfigError
from ddlsim.sim.memory import chunk_peak, in_flight
from ddlsim.sim.pipeline import (
    PipelineConfig,
    StageCost,
    interleaved_order,
    simulate_pipeline,
)


def run(p, v, m, tf=1.0, tb=2.0):
    """p GPUs, v chunks each, every chunk tf/v forward and tb/v backward, free sends."""
    costs = [StageCost(tf / v, tb / v) for _ in range(p * v)]
    return simulate_pipeline(costs, PipelineConfig("1f1b", m, vp=v))


@pytest.mark.parametrize(("p", "v", "m", "tf", "tb"),
                         [(4, 2, 8, 1.0, 2.0), (4, 3, 8, 1.0, 1.0), (8, 6, 64, 1.0, 2.0),
                          (4, 2, 4, 1.0, 2.0), (2, 4, 6, 1.0, 3.0), (4, 5, 12, 0.3, 0.7)])
def test_bubble_fraction_matches_the_closed_form(p, v, m, tf, tb):
    # bubble_fraction = 1 - busy / (p * makespan); the interleaved bubble is (p-1)/v
    # stage-times (SC'21 Sec. 2.2.2), so makespan = (m + (p-1)/v)(tf + tb) and
    # bubble_fraction = x / (1 + x) with x = (p-1)/(v m)
    r = run(p, v, m, tf, tb)
    x = (p - 1) / (v * m)
    assert r.makespan_s == pytest.approx((m + (p - 1) / v) * (tf + tb), rel=1e-12)
    assert r.bubble_fraction == pytest.approx(x / (1 + x), rel=1e-9)
    plain = run(p, 1, m, tf, tb)
    y = (p - 1) / m
    assert plain.bubble_fraction == pytest.approx(y / (1 + y), rel=1e-9)
    assert r.bubble_fraction < plain.bubble_fraction


@pytest.mark.parametrize(("p", "v", "m"), [(4, 2, 8), (8, 6, 16), (2, 3, 4)])
def test_sends_are_v_times_plain_1f1b_plus_the_wrap_around(p, v, m):
    plain, inter = run(p, 1, m), run(p, v, m)
    # each micro-batch crosses p v - 1 virtual-stage boundaries each way: v (p - 1) inside
    # the v passes over the GPUs and v - 1 from the last GPU back to the first
    assert plain.sends_per_iteration == 2 * m * (p - 1)
    assert inter.sends_per_iteration == 2 * m * (p * v - 1)
    assert inter.sends_per_iteration == v * plain.sends_per_iteration + 2 * m * (v - 1)
    wrap = [s for s in inter.sends if (s[3], s[1], s[2]) in (("act", p - 1, 0),
                                                              ("grad", 0, p - 1))]
    assert len(wrap) == 2 * m * (v - 1)


def test_order_is_megatrons_and_runs_every_chunk_and_micro_batch_once():
    p, v, m = 4, 2, 8
    for k in range(p):
        order = interleaved_order(k, p, m, v)
        assert sorted(order) == sorted((kind, c, j) for kind in "FB" for c in range(v)
                                       for j in range(m))
        warm = min(2 * (p - k - 1) + (v - 1) * p, m * v)
        assert all(kind == "F" for kind, _, _ in order[:warm])
        assert order[warm][0] == "F" and (warm == m * v or order[warm + 1][0] == "B")
    # micro-batches in groups of p, all chunks of a group before the next group
    first = [(c, j) for kind, c, j in interleaved_order(0, p, m, v) if kind == "F"]
    assert first[:12] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2), (1, 3),
                          (0, 4), (0, 5), (0, 6), (0, 7)]
    assert interleaved_order(p - 1, p, m, v)[(v - 1) * p + 1] == ("B", v - 1, 0)


def test_activations_in_flight_follow_korthikanti():
    # Korthikanti et al. 2022 Sec. 4.2.3: the first stage holds p (1 + (p-1)/(p v))
    # micro-batches' worth of its activations
    p, m = 8, 32
    for v in (2, 3, 6):
        assert in_flight("1f1b", 0, p, m, v) == pytest.approx(p * (1 + (p - 1) / (p * v)))
        for k in range(p):
            peak, live = chunk_peak(interleaved_order(k, p, m, v), [1.0] * v)
            assert peak == sum(live) == min(2 * (p - k - 1) + (v - 1) * p + 1, m * v)
            assert in_flight("1f1b", k, p, m, v) == pytest.approx(peak / v)
            assert max(r for r in run(p, v, m).peak_in_flight[k:k + 1]) == peak
    assert in_flight("1f1b", 0, p, m) == p  # plain 1F1B unchanged


def test_errors_name_the_field():
    with pytest.raises(ConfigError, match="micro_batches.*multiple of 4"):
        PipelineOptions(stages=4, micro_batches=6, vp=2)
    with pytest.raises(ConfigError, match="micro_batches"):
        simulate_pipeline([StageCost(1, 2)] * 8, PipelineConfig("1f1b", 6, vp=2))
    with pytest.raises(ConfigError, match="vp.*1f1b"):
        PipelineOptions(stages=4, micro_batches=8, vp=2, schedule="gpipe")
    with pytest.raises(ConfigError, match="vp.*pp=1"):
        PipelineOptions(stages=1, micro_batches=8, vp=2)
    with pytest.raises(ConfigError, match="balance.*8 layer counts"):
        PipelineOptions(stages=4, micro_batches=8, vp=2, placement="manual", balance=(1,) * 4)
    with pytest.raises(ConfigError, match="vp.*transformer blocks"):
        predict_model_parallel(PipelineOptions(model="gpt-small", stages=4, micro_batches=8,
                                               vp=4, placement="blocks"), simulate=False)


def test_blocks_placement_splits_layers_into_pp_x_vp_chunks_and_the_table_shows_it():
    p, v = 4, 3  # gpt3-1.3b: 24 blocks -> 2 per chunk
    opts = ThreeDOptions("gpt3-1.3b", tp=1, pp=p, dp=1, micro_batch=1, global_batch=8,
                         vp=v, cluster="dgx-a100")
    pred = predict_model_parallel(opts)
    names = pred.layer_names
    for i in range(p * v):
        chunk = names[pred.bounds[i]:pred.bounds[i + 1]]
        assert sum(1 for x in chunk if x.endswith(".ln1")) == 24 // (p * v)
    rows = pred.stages_frame_rows()
    for k, row in enumerate(rows):
        assert row["chunks"] == v
        assert pred.chunk_ranges(k) == [(pred.bounds[c * p + k], pred.bounds[c * p + k + 1])
                                        for c in range(v)]
        assert row["layers"] == sum(b - a for a, b in pred.chunk_ranges(k))
    s = pred.summary()
    assert s["vp"] == v and s["p2p_sends"] == 2 * 8 * (p * v - 1)
    plain = predict_model_parallel(ThreeDOptions("gpt3-1.3b", tp=1, pp=p, dp=1, micro_batch=1,
                                                 global_batch=8, cluster="dgx-a100"))
    assert s["bubble_fraction"] < plain.summary()["bubble_fraction"]
    assert s["iteration_s"] < plain.summary()["iteration_s"]
    # interleaving holds more activations on the first GPU (p + (p-1)/v stage-equivalents)
    assert rows[0]["in_flight"] > plain.stages_frame_rows()[0]["in_flight"]


def test_auto_placement_with_interleaving_places_every_chunk():
    opts = PipelineOptions(model="gpt-small", micro_batch=2, micro_batches=4, stages=2, vp=2,
                           placement="auto", dtype="bfloat16")
    pred = predict_model_parallel(opts)
    assert len(pred.bounds) == 2 * 2 + 1 and pred.bounds[-1] == len(pred.layer_names)
    assert pred.result.vp == 2 and len(pred.chunk_costs) == 4


def test_vp_and_attention_travel_from_the_job_and_from_reference_rows():
    job = api.Job(workload=api.Workload("gpt3-1.3b", attention="unfused"),
                  cluster=api.Cluster("dgx-a100", 8),
                  parallelism=api.Parallelism(tp=2, pp=4, vp=3, placement="blocks"),
                  batch=api.Batch(global_batch=8, micro=1), strategy=api.Strategy(kind="3d"))
    opts = pipeline_options(job)
    assert opts.vp == 3 and opts.attention == "unfused"
    assert api.Workload("gpt3-1.3b").attention == "fused"
    with pytest.raises(ConfigError, match="workload.attention"):
        api.Workload("gpt3-1.3b", attention="flash")

    from ddlsim.validation.rows import read_row

    row = {"id": "x", "category": "llm_3d_parallel", "source": "", "model": "GPT3-175B",
           "gpu": "H100-SXM5-80GB", "num_gpus": "128", "nodes": "16",
           "interconnect": "DGX-H100 NVLink4/NVSwitch + IB", "precision": "bf16",
           "parallelism": "tp=4,pp=8,cp=1,vp=6,dp=4, no flash attention",
           "global_batch": "256", "micro_batch": "1", "metric": "tokens_per_sec_per_gpu",
           "value": "700", "unit": "tokens/s/GPU", "notes": "seq=2048"}
    run_, why = read_row(row)
    assert run_ is not None, why
    assert run_.job.parallelism.vp == 6 and run_.job.workload.attention == "unfused"
    assert pipeline_options(run_.job).vp == 6
    assert not any("plain 1F1B" in a for a in run_.job.assumptions)
