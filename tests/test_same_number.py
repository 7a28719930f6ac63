"""The same run through every door gives the same number: the command line, a scenario
file, the Python API and a reference row all build one Job and go through
``api.predict`` with the stored calibration (one test per strategy)."""

import csv
import io
import json

import pytest
from click.testing import CliRunner

from ddlsim import api
from ddlsim.cli import cli
from ddlsim.validation.metrics import predicted_value
from ddlsim.validation.rows import read_row

HEADER = ("id,category,source,model,gpu,num_gpus,nodes,interconnect,precision,parallelism,"
          "global_batch,micro_batch,metric,value,unit,notes\n")


def _cli_json(args: list[str]) -> dict:
    res = CliRunner().invoke(cli, [*args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def _scenario(tmp_path, text: str) -> dict:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    return _cli_json(["run", str(path), "--out", str(tmp_path / "out")])


def _row(line: str):
    run, why = read_row(next(csv.DictReader(io.StringIO(HEADER + line))))
    assert run is not None, why
    return run


def test_allreduce_cli_scenario_api_agree(tmp_path):
    job = api.Job(workload=api.Workload("resnet50"), cluster=api.Cluster("dgx-a100", 16),
                  batch=api.Batch(micro=64), iterations=4)
    want = api.predict(job)
    assert want.dtype == "bfloat16"  # the GPU's mixed precision by default
    doc = _cli_json(["dp", "--gpus", "16", "--batch", "64", "--iterations", "4"])
    assert doc["calibration"].startswith("stored")
    assert doc["predictions"][0]["samples_per_s"] == pytest.approx(want.samples_per_s, rel=1e-12)
    sc = _scenario(tmp_path, """
name: mine
workload: {model: resnet50, batch_per_gpu: 64}
cluster: {preset: dgx-a100, gpus: 16}
iterations: 4
outputs: {trace: false}
strategies: [{kind: allreduce}]
""")
    row = sc["strategies"][0]
    assert row["samples_per_s"] == pytest.approx(want.samples_per_s, rel=1e-12)
    assert (row["device"], row["dtype"]) == ("a100-80gb", "bfloat16")


PS_ROW = ('mine-ps,async_vs_sync,my cluster,ResNet-50,V100-SXM2-16GB,8,2,"PCIe within a '
          'node, 25 GbE between nodes",fp32,"parameter server, asynchronous (dist_async)",'
          '256,32,throughput,1500,images/s,\n')


def test_ps_row_scenario_api_agree(tmp_path):
    run = _row(PS_ROW)
    assert run.job.strategy.kind == "ps" and run.job.strategy.ps_mode == "asp"
    from_row = predicted_value(run, api.predict(run.job), "stored")
    job = api.Job(workload=api.Workload("resnet50"),
                  cluster=api.Cluster("pcie-8gpu", 8, device="v100-sxm2-16gb",
                                      gpus_per_node=4, nics_per_node=1, nic_bw_Bps=25e9 / 8),
                  precision=api.Precision("float32"), batch=api.Batch(micro=32),
                  strategy=api.Strategy(kind="ps", ps_mode="asp"), iterations=5)
    assert api.predict(job).samples_per_s == pytest.approx(from_row, rel=1e-12)
    sc = _scenario(tmp_path, """
name: mine
workload: {model: resnet50, batch_per_gpu: 32, dtype: float32}
cluster: {preset: pcie-8gpu, gpus: 8, device: v100-sxm2-16gb, gpus_per_node: 4,
          nics_per_node: 1, nic_bandwidth_Gbps: 25}
outputs: {trace: false}
strategies: [{kind: ps, mode: asp, updates: 200}]
""")
    assert sc["strategies"][0]["samples_per_s"] == pytest.approx(from_row, rel=1e-12)


def test_ps_cli_and_api_agree():
    job = api.Job(workload=api.Workload("resnet50"), cluster=api.Cluster("dgx-a100", 4),
                  batch=api.Batch(micro=16), strategy=api.Strategy(kind="ps", ps_mode="ssp",
                                                                   updates=40))
    want = api.predict(job).samples_per_s
    doc = _cli_json(["ps", "--workers", "4", "--batch", "16", "--mode", "ssp",
                     "--updates", "40"])
    assert doc["predictions"][0]["samples_per_s"] == pytest.approx(want, rel=1e-12)
    assert doc["ps"]["strategy"] == "ps-ssp"


def test_pipeline_cli_scenario_api_agree(tmp_path):
    job = api.Job(workload=api.Workload("gpt-small"), cluster=api.Cluster("dgx-a100", 8),
                  parallelism=api.Parallelism(tp=2, pp=4), batch=api.Batch(32, 4),
                  strategy=api.Strategy(kind="pipeline"))
    want = api.predict(job)
    doc = _cli_json(["pipeline", "--stages", "4", "--tp", "2", "--micro-batches", "8"])
    got = doc["predictions"][0]
    assert got["iteration_s"] == pytest.approx(want.iteration_s, rel=1e-12)
    assert got["memory_bytes"] == pytest.approx(want.memory_bytes, rel=1e-12)
    sc = _scenario(tmp_path, """
name: mine
workload: {model: gpt-small}
cluster: {gpus: 8}
strategies: [{kind: pipeline, stages: 4, tp: 2, micro_batch: 4, micro_batches: 8}]
""")
    assert sc["strategies"][0]["iteration_s"] == pytest.approx(want.iteration_s, rel=1e-12)


def test_3d_row_scenario_api_agree(tmp_path):
    run = _row('mine-3d,llm_3d_parallel,mine,GPT-3 13B,A100-SXM4-80GB,16,2,DGX A100,BF16,'
               '"tp=8, pp=2, dp=1, mbs=1",32,1,iteration time,10,s,\n')
    p = run.job.parallelism
    assert (p.tp, p.pp, run.job.dp) == (8, 2, 1)
    from_row = predicted_value(run, api.predict(run.job), "stored")
    sc = _scenario(tmp_path, """
name: mine
workload: {model: gpt3-13b, dtype: bfloat16}
cluster: {gpus: 16}
strategies: [{kind: pipeline, stages: 2, tp: 8, micro_batch: 1, micro_batches: 32,
              placement: blocks}]
""")
    assert sc["strategies"][0]["iteration_s"] == pytest.approx(from_row, rel=1e-12)


def test_a_sweep_over_layouts_refuses_a_product_off_the_gpu_count(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("""
name: mine
workload: {model: gpt-small}
cluster: {gpus: 8}
strategies: [{kind: pipeline, name: pp, stages: 4, tp: 2, dp: 1}]
""")
    res = CliRunner().invoke(cli, ["sweep", str(path), "--axis", "strategies.0.dp=1,2",
                                   "--cache-dir", str(tmp_path / "c"), "--out",
                                   str(tmp_path / "o"), "--workers", "1"])
    assert res.exit_code != 0
    assert "must equal cluster.gpus = 8" in str(res.exception or res.output)
