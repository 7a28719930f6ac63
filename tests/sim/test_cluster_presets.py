"""The cluster presets of issue 16 (DGX H200/B200, GB200 NVL72, MI300X, AWS p4d/p5/g6e):
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
