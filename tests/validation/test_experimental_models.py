"""Zoo models marked experimental are predicted with a warning and never fit the
calibration (ddlsim.sim.workloads.EXPERIMENTAL)."""

from ddlsim import api
from ddlsim.sim.workloads import EXPERIMENTAL, WORKLOADS
from ddlsim.validation.fit import FIT_RULE, fit_rows
from ddlsim.validation.reference import load_reference
from ddlsim.validation.rows import read_row


def test_every_experimental_model_is_in_the_zoo_with_a_reason():
    assert EXPERIMENTAL
    for name, why in EXPERIMENTAL.items():
        assert name in WORKLOADS and why.startswith("experimental")


def test_a_prediction_of_an_experimental_model_says_so():
    job = api.Job(workload=api.Workload("transformer-xl-base"),
                  cluster=api.Cluster("dgx-a100", 1), batch=api.Batch(micro=4))
    pred = api.predict(job)
    assert any("experimental" in w for w in pred.warnings)
    plain = api.predict(api.Job(workload=api.Workload("resnet50"),
                                cluster=api.Cluster("dgx-a100", 1), batch=api.Batch(micro=4)))
    assert not any("experimental" in w for w in plain.warnings)


def test_single_gpu_rows_of_experimental_models_are_not_fit_rows():
    runs, experimental = [], []
    for i, row in enumerate(load_reference().to_dict("records")):
        run, _ = read_row(row)
        if run is None:
            continue
        runs.append((str(i), run))
        if run.job.workload.model in EXPERIMENTAL and run.job.cluster.gpus == 1:
            experimental.append(str(i))
    assert experimental, "the bundled table has single-GPU Transformer-XL rows"
    chosen = set(fit_rows(runs))
    assert chosen and not chosen & set(experimental)
    assert "experimental" in FIT_RULE
