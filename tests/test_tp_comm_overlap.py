"""Tensor-parallel communication overlap reaches the prediction through every door:
the Parallelism default (on with sequence parallelism and tp > 1), the CLI flag and the
scenario key."""

import json

import pytest
from click.testing import CliRunner

from ddlsim import api
from ddlsim.cli import cli
from ddlsim.errors import ConfigError


def _job(sp: bool, overlap):
    par = api.Parallelism(tp=4, pp=2, sequence_parallel=sp, tp_comm_overlap=overlap)
    return api.Job(workload=api.Workload("gpt3-5b"), cluster=api.Cluster("dgx-h100", 16),
                   strategy=api.Strategy("3d"), parallelism=par,
                   batch=api.Batch(global_batch=32, micro=1))


def test_default_is_on_exactly_with_sequence_parallelism_and_tp():
    assert api.Parallelism(tp=4, sequence_parallel=True).overlaps_tp_comm
    assert not api.Parallelism(tp=4).overlaps_tp_comm
    assert not api.Parallelism(tp=1, sequence_parallel=True).overlaps_tp_comm
    assert not api.Parallelism(tp=4, sequence_parallel=True,
                               tp_comm_overlap=False).overlaps_tp_comm


def test_overlap_shortens_the_iteration_and_the_default_takes_it():
    off = api.predict(_job(True, False)).iteration_s
    auto = api.predict(_job(True, None)).iteration_s
    on = api.predict(_job(True, True)).iteration_s
    assert auto == on < off
    # without sequence parallelism the allreduce is never overlapped
    assert api.predict(_job(False, True)).iteration_s == api.predict(
        _job(False, False)).iteration_s


def test_a_bad_value_is_a_one_line_error():
    with pytest.raises(ConfigError, match="parallelism.tp_comm_overlap"):
        api.Parallelism(tp_comm_overlap="yes")


def test_the_cli_flag_reaches_the_prediction():
    base = ["3d", "--model", "gpt3-5b", "--tp", "4", "--pp", "2", "--dp", "2",
            "--global-batch", "32", "--sequence-parallel", "--json"]
    runner = CliRunner()
    out = {}
    for flag in ("--tp-comm-overlap", "--no-tp-comm-overlap"):
        res = runner.invoke(cli, base + [flag])
        assert res.exit_code == 0, res.output
        out[flag] = json.loads(res.output[res.output.index("{"):])
    on, off = (out[f]["predictions"][0]["iteration_s"]
               for f in ("--tp-comm-overlap", "--no-tp-comm-overlap"))
    assert on < off


def test_overlapping_the_gradient_reduction_with_the_backward_shortens_a_pipeline():
    def job(overlap):
        par = api.Parallelism(tp=2, pp=2, dp=4, overlap_grad_reduce=overlap)
        return api.Job(workload=api.Workload("gpt3-5b"), cluster=api.Cluster("dgx-a100", 16),
                       strategy=api.Strategy("3d"), parallelism=par,
                       batch=api.Batch(global_batch=32, micro=1))
    on, off = (api.predict(job(o)) for o in (True, False))
    assert on.iteration_s < off.iteration_s
    assert on.memory_bytes == off.memory_bytes
    with pytest.raises(ConfigError, match="parallelism.overlap_grad_reduce"):
        api.Parallelism(overlap_grad_reduce=None)
