"""ZeRO-3 inside a pipeline: every micro-batch's forward and backward needs the chunk's
weights gathered again (prefetched during the previous operation), so an operation lasts
at least the gather; the fast path of the layout search prices it the same way."""

import pytest

from ddlsim import api
from ddlsim.api.pipeline_types import PipelineOptions
from ddlsim.sim.nccl import all_gather_time
from ddlsim.sim.topology import make_cluster


def _job(zero, dp=16, global_batch=64, preset="cloud-25gbe"):
    par = api.Parallelism(tp=1, pp=2, dp=dp, zero=zero)
    return api.Job(workload=api.Workload("gpt3-1.3b"), cluster=api.Cluster(preset, 2 * dp),
                   strategy=api.Strategy("3d"), parallelism=par,
                   batch=api.Batch(global_batch=global_batch, micro=1))


def test_the_gather_time_is_the_ring_all_gather_over_the_data_parallel_group():
    c = make_cluster("cloud-25gbe", 4)
    share = min(1.0, c.nics_per_node / c.gpus_per_node)
    across = PipelineOptions(model="gpt3-1.3b", stages=2, dp=16, micro_batches=8, zero=3)
    assert across.zero3_gather_s(c, 1e9) == pytest.approx(  # 16 ranks span two nodes
        all_gather_time(16, 1e9, c.nic_bw_Bps * share, c.nic_latency_s))
    within = PipelineOptions(model="gpt3-1.3b", stages=2, dp=8, micro_batches=8, zero=3)
    assert within.zero3_gather_s(c, 1e9) == pytest.approx(
        all_gather_time(8, 1e9, c.intra_bw_Bps, c.intra_latency_s))
    for o in (PipelineOptions(stages=2, dp=16, micro_batches=1, zero=3),
              PipelineOptions(stages=2, dp=16, micro_batches=8, zero=2),
              PipelineOptions(stages=2, dp=1, micro_batches=8, zero=3)):
        assert o.zero3_gather_s(c, 1e9) == 0.0


def test_zero3_with_many_micro_batches_pays_its_gathers_on_a_slow_network():
    z2, z3 = (api.predict(_job(z)) for z in (2, 3))
    assert z3.iteration_s > 1.5 * z2.iteration_s
    assert z3.memory_bytes < z2.memory_bytes
    # one micro-batch per iteration: no regathers, only the iteration's two
    one = api.predict(_job(3, global_batch=16))
    assert one.iteration_s < z3.iteration_s / 2


def test_the_fast_path_follows_the_engine_under_zero3():
    from ddlsim.api.layout_fast import FastModel

    job = _job(3)
    fast = FastModel(job, "stored").evaluate(tp=1, pp=2, dp=16, mb=1, rc="none", zero=3)
    assert fast.iteration_s == pytest.approx(api.predict(job).iteration_s, rel=0.03)
