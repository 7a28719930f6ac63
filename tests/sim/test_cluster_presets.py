"""The cluster presets of issue 16 (DGX H200/B200, GB200 NVL72, MI300X, Gaudi 2/3 servers,
AWS p4d/p5/g6e, and the V100/P100 systems of DAWNBench: AWS p3/p3dn, Azure ND40rs_v2,
Alibaba gn6e, DGX-1):
each builds, has the right GPU and NIC counts, and every value carries a source."""

from __future__ import annotations

import dataclasses

import pytest

from ddlsim.sim.cluster_presets import MORE_PRESETS
from ddlsim.sim.hardware import get_device
from ddlsim.sim.topology import PRESETS, ClusterSpec, make_cluster

#: preset -> (device, GPUs per node, intra link, per-GPU intra bytes/s, NICs per node,
#: bytes/s per NIC)
EXPECTED = {
    "dgx-h200": ("h200", 8, "nvswitch", 450e9, 8, 400e9 / 8),
    "dgx-b200": ("b200", 8, "nvswitch", 900e9, 8, 400e9 / 8),
    "gb200-nvl72": ("gb200", 72, "nvswitch", 900e9, 72, 400e9 / 8),
    "mi300x-8": ("mi300x", 8, "nvlink", 448e9, 8, 400e9 / 8),
    "aws-p4d": ("a100-40gb", 8, "nvswitch", 300e9, 4, 100e9 / 8),
    "aws-p5": ("h100-sxm", 8, "nvswitch", 450e9, 8, 400e9 / 8),
    "aws-g6e": ("l40s", 8, "pcie", 25e9, 1, 400e9 / 8),
    "aws-p3-2xlarge": ("v100-sxm2-16gb", 1, "none", 10e9, 1, 10e9 / 8),
    "aws-p3-8xlarge": ("v100-sxm2-16gb", 4, "nvlink", 100e9, 1, 10e9 / 8),
    "aws-p3-16xlarge": ("v100-sxm2-16gb", 8, "nvlink", 150e9, 1, 25e9 / 8),
    "aws-p3dn-24xlarge": ("v100-sxm2-32gb", 8, "nvlink", 150e9, 1, 100e9 / 8),
    "azure-nd40rs-v2": ("v100-sxm2-32gb", 8, "nvlink", 150e9, 1, 100e9 / 8),
    "alibaba-gn6e-24xlarge": ("v100-sxm2-32gb", 8, "nvlink", 150e9, 1, 32e9 / 8),
    "dgx-1-p100": ("p100-sxm2-16gb", 8, "nvlink", 80e9, 4, 100e9 / 8),
    "dgx-1-v100": ("v100-sxm2-16gb", 8, "nvlink", 150e9, 4, 100e9 / 8),
    # Gaudi: 21 of 24 RoCE ports all-to-all inside the box, 3 per card scale out
    "gaudi2-hls2": ("gaudi2", 8, "nvlink", 21 * 100e9 / 8, 8, 3 * 100e9 / 8),
    "gaudi3-hls3": ("gaudi3", 8, "nvlink", 21 * 200e9 / 8, 8, 3 * 200e9 / 8),
}
FIELDS = {f.name for f in dataclasses.fields(ClusterSpec)} - {"name", "nodes", "devices",
                                                              "link_overrides", "source"}


def test_the_new_presets_are_merged_and_the_old_ones_unchanged():
    assert set(EXPECTED) == set(MORE_PRESETS) and set(MORE_PRESETS) <= set(PRESETS)
    assert PRESETS["dgx-a100"]["intra_bw_Bps"][0] == 300e9  # existing numbers untouched
    assert PRESETS["dgx-h100"]["nic_bw_Bps"][0] == 400e9 / 8
    assert list(PRESETS)[:5] == ["dgx-a100", "dgx-h100", "pcie-8gpu", "cloud-25gbe",
                                 "cpu-cluster"]


@pytest.mark.parametrize("preset", sorted(EXPECTED))
@pytest.mark.parametrize("nodes", [1, 3])
def test_preset_builds_with_the_right_counts(preset, nodes):
    device, gpn, intra, intra_bw, nics, nic_bw = EXPECTED[preset]
    spec = make_cluster(preset, nodes)
    assert spec.num_gpus == nodes * gpn and spec.gpus_per_node == gpn
    assert set(spec.devices) == {device} and get_device(device).name == device
    assert (spec.intra_link, spec.intra_bw_Bps) == (intra, intra_bw)
    assert (spec.nics_per_node, spec.nic_bw_Bps) == (nics, nic_bw)
    assert spec.num_nics == nodes * nics


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_every_value_has_a_source(preset):
    fields = MORE_PRESETS[preset]
    assert set(fields) == FIELDS | {"device"}
    for key, (_, source) in fields.items():
        assert isinstance(source, str) and len(source.strip()) > 10, (preset, key)


def test_how_the_systems_were_expressed():
    nvl = MORE_PRESETS["gb200-nvl72"]
    assert "72-GPU node" in nvl["gpus_per_node"][1]  # one NVLink domain = one node
    assert "28.8 Tb/s" in nvl["nics_per_node"][1]  # 72 x 400 Gb/s scale-out per rack
    mesh = MORE_PRESETS["mi300x-8"]["intra_bw_Bps"]
    assert mesh[0] == 7 * 64e9 and "7 peers" in mesh[1]
    p5 = make_cluster("aws-p5", 1)
    assert p5.nics_per_node * p5.nic_bw_Bps * 8 == 3200e9  # 3,200 Gbps EFA in aggregate
    assert "32 network cards" in MORE_PRESETS["aws-p5"]["nics_per_node"][1]
    p4d = make_cluster("aws-p4d", 1)
    assert p4d.nics_per_node * p4d.nic_bw_Bps * 8 == 400e9


def test_a_72_gpu_nvlink_domain_runs_a_collective():
    from ddlsim.api.catalog import collective_table

    table, gpus = collective_table("gb200-nvl72", 1, None, "allreduce", "ring", [1e8])
    assert gpus == 72 and table["busbw"].iloc[0] > 0
    table, gpus = collective_table("mi300x-8", 2, None, "allreduce", "ring", [1e8])
    assert gpus == 16 and table["busbw"].iloc[0] > 0


def test_the_v100_era_instances_match_their_vendor_tables():
    """GPU counts, GPU memory and network rates as the vendor pages state them."""
    from ddlsim.sim.cluster_presets import V100_ERA_PRESETS

    assert set(V100_ERA_PRESETS) <= set(MORE_PRESETS)
    for preset, (gpus, mem_gib, gbps, nvlink) in {
            "aws-p3-2xlarge": (1, 16, 10, False), "aws-p3-8xlarge": (4, 64, 10, True),
            "aws-p3-16xlarge": (8, 128, 25, True), "aws-p3dn-24xlarge": (8, 256, 100, True),
            "azure-nd40rs-v2": (8, 256, 100, True), "alibaba-gn6e-24xlarge": (8, 256, 32, True),
            "dgx-1-p100": (8, 128, 400, True), "dgx-1-v100": (8, 128, 400, True)}.items():
        spec = make_cluster(preset, 1)
        dev = get_device(spec.devices[0])
        assert spec.num_gpus == gpus and round(gpus * dev.memory_bytes / 2**30) == mem_gib
        assert spec.nics_per_node * spec.nic_bw_Bps * 8 == gbps * 1e9, preset
        assert (spec.intra_link == "nvlink") == nvlink, preset
    # the p3 table's NVLink figures are per GPU, bidirectional: 300 GBps = 6 links x 50
    assert "200 GBps" in V100_ERA_PRESETS["aws-p3-8xlarge"]["intra_bw_Bps"][1]
    assert "EDR" in V100_ERA_PRESETS["azure-nd40rs-v2"]["nic_bw_Bps"][1]
    assert "32.0 Gbit/s" in V100_ERA_PRESETS["alibaba-gn6e-24xlarge"]["nic_bw_Bps"][1]
