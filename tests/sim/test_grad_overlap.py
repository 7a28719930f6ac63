"""Data-parallel gradient reduction overlapped with the pipeline's backward
(PipelineConfig.grad_bucket_bytes): a tiny pipeline and its exact event log."""

import pytest
import simpy

from ddlsim.errors import ConfigError
from ddlsim.sim.pipeline import PipelineConfig, StageCost, simulate_pipeline


def _run(bucket_bytes, p=1, m=1):
    env = simpy.Environment()

    def allreduce(env, stage, nbytes):  # 0.5 s per 100 bytes
        yield env.timeout(0.5 * nbytes / 100)

    costs = [StageCost(fwd_s=1.0, bwd_s=2.0, dp_bytes=300.0) for _ in range(p)]
    cfg = PipelineConfig("1f1b", m, 1, 2, grad_bucket_bytes=bucket_bytes)
    return simulate_pipeline(costs, cfg, None, allreduce, env)


def test_without_overlap_one_reduction_follows_the_last_backward():
    res = _run(0.0)
    assert res.allreduces == [(0, 0, 300.0, 3.0, 4.5)]
    assert res.iteration_end == [4.5]


def test_buckets_leave_during_the_last_backward_one_after_another():
    # backward 1..3 s; buckets of 100 B ready at 1 + 2/3, 1 + 4/3, 3; each takes 0.5 s
    res = _run(100.0)
    got = [(round(s, 9), round(e, 9)) for *_, s, e in res.allreduces]
    assert got == [(round(1 + 2 / 3, 9), round(1 + 2 / 3 + 0.5, 9)),
                   (round(1 + 4 / 3, 9), round(1 + 4 / 3 + 0.5, 9)), (3.0, 3.5)]
    assert res.iteration_end == [pytest.approx(3.5)]


def test_only_the_last_backward_of_each_stage_releases_gradients():
    # two micro-batches on one stage: F0 B0 F1 B1, B1 = 4..6 s releases the buckets
    res = _run(300.0, m=2)
    assert res.allreduces == [(0, 0, 300.0, 6.0, 7.5)]


def test_bad_bucket_size_is_refused():
    with pytest.raises(ConfigError, match="grad_bucket_bytes"):
        PipelineConfig(grad_bucket_bytes=-1)
