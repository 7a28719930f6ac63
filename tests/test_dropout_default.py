"""Dropout follows the model's published recipe unless the job says otherwise: GPT-2/3
train with dropout 0.1 (its masks take activation memory), Llama does not."""

from ddlsim import api
from ddlsim.api.predict import resolve_dropout


def _job(model, dropout=None):
    return api.Job(workload=api.Workload(model, dropout=dropout),
                   cluster=api.Cluster("dgx-a100", 8),
                   parallelism=api.Parallelism(tp=8, placement="blocks"),
                   batch=api.Batch(global_batch=8, micro=1), strategy=api.Strategy("3d"))


def test_gpt_counts_dropout_masks_llama_does_not_and_the_job_can_say_otherwise():
    assert resolve_dropout(_job("gpt3-1.3b")) is True
    assert resolve_dropout(_job("llama2-7b")) is False
    assert resolve_dropout(_job("gpt3-1.3b", dropout=False)) is False
    with_masks = api.check_memory(_job("gpt3-1.3b"))[0]
    without = api.check_memory(_job("gpt3-1.3b", dropout=False))[0]
    assert with_masks > without
    assert api.check_memory(_job("llama2-7b"))[0] == api.check_memory(
        _job("llama2-7b", dropout=False))[0]
