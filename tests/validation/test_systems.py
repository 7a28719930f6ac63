"""GPU cells that name cloud instances and systems (ddlsim.validation.parse.systems): the GPU
count in every spelling a table uses, the preset, and one clear reason when the count is
ambiguous."""

from __future__ import annotations

import pytest

from ddlsim.sim.topology import PRESETS
from ddlsim.validation import parse as P
from ddlsim.validation.rows import read_row


@pytest.mark.parametrize("text, preset, gpus, nodes, device", [
    ("16 p3.16xlarge (AWS)", "aws-p3-16xlarge", 128, 16, "v100-sxm2-16gb"),
    ("16 x AWS p3.16xlarge", "aws-p3-16xlarge", 128, 16, "v100-sxm2-16gb"),
    ("8 * V100 (AWS p3.16xlarge)", "aws-p3-16xlarge", 8, 1, "v100-sxm2-16gb"),
    ("8*V100 (single p3.16xlarge)", "aws-p3-16xlarge", 8, 1, "v100-sxm2-16gb"),
    ("32 * V100 (4 machines - AWS p3.16xlarge)", "aws-p3-16xlarge", 32, 4, "v100-sxm2-16gb"),
    ("64 * V100 (8 machines - AWS p3.16xlarge)", "aws-p3-16xlarge", 64, 8, "v100-sxm2-16gb"),
    ("V100 (AWS p3.2xlarge)", "aws-p3-2xlarge", 1, 1, "v100-sxm2-16gb"),
    ("4 p3.8xlarge", "aws-p3-8xlarge", 16, 4, "v100-sxm2-16gb"),
    ("2 x p3dn.24xlarge", "aws-p3dn-24xlarge", 16, 2, "v100-sxm2-32gb"),
    ("Azure ND40s_v2", "azure-nd40rs-v2", 8, 1, "v100-sxm2-32gb"),
    ("4 Standard_ND40rs_v2", "azure-nd40rs-v2", 32, 4, "v100-sxm2-32gb"),
    ("16 ecs.gn6e-c12g1.24xlarge (AlibabaCloud)", "alibaba-gn6e-24xlarge", 128, 16,
     "v100-sxm2-32gb"),
    ("1 ecs.gn6e-c12g1.24xlarge (AlibabaCloud)", "alibaba-gn6e-24xlarge", 8, 1,
     "v100-sxm2-32gb"),
    ("8 P100 / 512 GB / 40 CPU (NVIDIA DGX-1)", "dgx-1-p100", 8, 1, "p100-sxm2-16gb"),
    ("V100 32GB (4 DGX-1)", "dgx-1-v100", 32, 4, "v100-sxm2-32gb"),
])
def test_instances_and_systems(text, preset, gpus, nodes, device):
    sp = P.parse_system(text)
    assert (sp.preset, sp.gpus, sp.nodes, sp.gpu.device, sp.reason) == (
        preset, gpus, nodes, device, "")
    assert sp.per_node == PRESETS[preset]["gpus_per_node"][0]
    assert preset in sp.assumptions[0]  # the preset it was read as is recorded
    assert not any("memory size not stated" in a for a in sp.gpu.assumptions)


@pytest.mark.parametrize("text, gpus, nodes", [
    ("16 nodes with InfiniBand (8*V100 with NVLink for each node)", 128, 16),
    ("Baidu Cloud Tesla 8*V100-16GB/448 GB/96 CPU", 8, None),
    ("Tesla V100 * 8 GPU / 32 GB / 40 CPU", 8, None),
    ("1 P100 / 512 GB / 56 CPU (DAWN Internal Cluster)", 1, None),
    ("4 servers, 8 V100 per server", 32, 4),
])
def test_counts_without_an_instance(text, gpus, nodes):
    sp = P.parse_system(text)
    assert (sp.preset, sp.gpus, sp.nodes, sp.reason) == ("", gpus, nodes, "")


@pytest.mark.parametrize("text, needle", [
    ("12 * V100 (p3.16xlarge)", "do not fill"),
    ("8 x p3.16xlarge with 32 V100", "ambiguous count"),
    ("32 * V100 (3 machines - AWS p3.16xlarge)", "do not fill"),
    ("AWS p3 instances", "size"), ("p3.4xlarge", "not one of the cluster presets"),
    ("A100 (p3.16xlarge)", "has v100-sxm2-16gb"),
    ("V100 32GB (p3.16xlarge)", "has v100-sxm2-16gb"),
    ("8 V100 per node", "not the number of nodes"), ("4 nodes", "not the GPUs of each"),
])
def test_ambiguous_counts_give_one_reason(text, needle):
    sp = P.parse_system(text)
    assert sp.gpus is None and needle in sp.reason and "\n" not in sp.reason, sp.reason


def test_the_interconnect_cell_can_name_the_system():
    sp = P.parse_system("V100-SXM2-16GB", "DGX-1 NVLink2 hybrid cube-mesh")
    assert sp.preset == "dgx-1-v100" and sp.gpu.device == "v100-sxm2-16gb"
    assert P.parse_system("P100", "DGX-1").preset == "dgx-1-p100"
    assert P.parse_system("A100", "DGX-1").preset == ""  # no DGX-1 of A100s


ROW = {"id": "X-1", "category": "time_to_train", "source": "a leaderboard",
       "model": "ResNet-50 (ImageNet)", "gpu": "16 p3.16xlarge (AWS)", "num_gpus": "",
       "nodes": "", "interconnect": "see gpu field", "precision": "PyTorch 0.4.1",
       "parallelism": "data parallel", "global_batch": "8192", "micro_batch": "",
       "metric": "time_to_accuracy_hours", "value": "0.3", "unit": "h",
       "notes": "reached 93 at epoch 30"}


def test_a_row_on_instances_runs_on_the_instances_preset():
    run, why = read_row(ROW)
    assert run is not None, why
    c = run.job.cluster
    assert (c.preset, c.gpus, c.gpus_per_node, c.device) == ("aws-p3-16xlarge", 128, 8, None)
    assert run.job.batch.micro == 64
    assert any("aws-p3-16xlarge" in a for a in run.job.assumptions)


def test_a_stated_gpu_column_wins_over_the_cells_count():
    run, why = read_row({**ROW, "gpu": "V100 (p3.16xlarge)", "num_gpus": "16"})
    assert run is not None and run.job.cluster.gpus == 16, why
    assert not any("without a count" in a for a in run.job.assumptions)
    _, why = read_row({**ROW, "gpu": "12 * V100 (p3.16xlarge)"})
    assert "do not fill" in why


def test_eight_v100s_without_links_are_a_cube_mesh_board_and_unstated_ib_the_dgx_rate():
    run, why = read_row({**ROW, "gpu": "Tesla V100 * 8 GPU", "global_batch": "2048"})
    assert run is not None and run.job.cluster.preset == "dgx-1-v100", why
    assert any("hybrid cube-mesh" in a for a in run.job.assumptions)
    run, why = read_row({**ROW, "gpu": "16 nodes with InfiniBand (8*V100 with NVLink for "
                                       "each node)", "global_batch": "32768"})
    assert run is not None, why
    c = run.job.cluster
    assert (c.gpus, c.gpus_per_node, c.nic_bw_Bps, c.fabric) == (128, 8, 100e9 / 8,
                                                                 "infiniband")
    assert any("InfiniBand rate not stated" in a for a in run.job.assumptions)
    _, why = read_row({**ROW, "gpu": "16 nodes (8*V100 with NVLink for each node)",
                       "global_batch": "32768"})
    assert "inter-node network is not stated" in why
