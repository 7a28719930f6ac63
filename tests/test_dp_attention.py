"""A data-parallel job runs the attention its workload names (fused or unfused): time,
memory and the selective recomputation that only unfused attention has to do."""

from ddlsim import api


def _pred(attention, recompute="none"):
    job = api.Job(workload=api.Workload("gpt3-1.3b", attention=attention),
                  cluster=api.Cluster("dgx-a100", 8), batch=api.Batch(micro=4),
                  parallelism=api.Parallelism(recompute=recompute))
    return api.predict(job)


def test_unfused_attention_keeps_the_score_matrix_and_takes_longer():
    fused, unfused = _pred("fused"), _pred("unfused")
    assert unfused.memory_bytes > fused.memory_bytes
    assert unfused.iteration_s > fused.iteration_s
    assert unfused.memory_bytes == api.check_memory(
        api.Job(workload=api.Workload("gpt3-1.3b", attention="unfused"),
                cluster=api.Cluster("dgx-a100", 8), batch=api.Batch(micro=4)))[0]


def test_selective_recomputation_recomputes_only_unfused_attention():
    assert _pred("fused", "selective").hfu == _pred("fused", "selective").mfu
    sel = _pred("unfused", "selective")
    assert sel.hfu > sel.mfu
    assert sel.memory_bytes < _pred("unfused").memory_bytes
