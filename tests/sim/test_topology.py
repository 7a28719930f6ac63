"""Cluster specs, presets, validation and routes."""

import pytest

from ddlsim.errors import ConfigError
from ddlsim.sim.topology import (
    PRESETS,
    ClusterSpec,
    link_ids,
    link_table,
    make_cluster,
    preset_sources,
    route,
    with_link_capacity,
)
from ddlsim.units import GBps, Gbps


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_builds_and_cites_every_field(preset):
    spec = make_cluster(preset, nodes=3)
    assert isinstance(spec, ClusterSpec)
    assert spec.num_gpus == 3 * spec.gpus_per_node
    assert len(spec.devices) == spec.num_gpus
    assert spec.num_links == len(link_ids(spec)) == len(link_table(spec))
    for field, source in preset_sources(preset).items():
        assert source.strip(), f"{preset}.{field} has no source"


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_devices_are_catalog_keys(preset):
    from ddlsim.sim.hardware import CATALOG

    assert PRESETS[preset]["device"][0] in CATALOG


def test_preset_numbers_are_the_issue_numbers():
    a100 = make_cluster("dgx-a100", 1)
    h100 = make_cluster("dgx-h100", 1)
    assert a100.intra_bw_Bps == 300 * GBps and a100.nic_bw_Bps == 200 * Gbps
    assert a100.nics_per_node == 8 and a100.intra_link == "nvswitch"
    assert h100.intra_bw_Bps == 450 * GBps and h100.nic_bw_Bps == 400 * Gbps
    pcie = make_cluster("pcie-8gpu", 1)
    assert pcie.nics_per_node == 1 and pcie.nic_bw_Bps == 100 * Gbps
    assert make_cluster("cloud-25gbe", 1).nic_bw_Bps == 25 * Gbps
    cpu = make_cluster("cpu-cluster", 4)
    assert cpu.gpus_per_node == 1 and cpu.nic_bw_Bps == 10 * Gbps


def test_unknown_preset_suggests_closest():
    with pytest.raises(ConfigError, match="did you mean 'dgx-a100'"):
        make_cluster("dgx-a10", 2)


def test_unknown_override_suggests_field():
    with pytest.raises(ConfigError, match="did you mean 'nic_bw_Bps'"):
        make_cluster("dgx-a100", 2, nic_bw_bps=1e9)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("nic_bw_Bps", -3.0, "nic_bw_Bps: must be > 0, got -3.0"),
    ("intra_latency_s", -1e-6, "intra_latency_s: must be >= 0"),
    ("oversubscription", 0.5, "oversubscription: must be >= 1, got 0.5"),
    ("nics_per_node", 3, "nics_per_node: must divide gpus_per_node=8, got 3"),
    ("intra_link", "nvlnk", "did you mean 'nvlink'"),
    ("fabric", "ethernett", "did you mean 'ethernet'"),
])
def test_validation_names_field_rule_and_value(field, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        make_cluster("dgx-a100", 2, **{field: value})


def test_bad_nodes_and_devices():
    with pytest.raises(ConfigError, match="nodes: must be an integer >= 1, got 0"):
        make_cluster("dgx-a100", 0)
    with pytest.raises(ConfigError, match="devices: must be a tuple of 8"):
        make_cluster("dgx-a100", 1, devices=("a100",) * 7)
    with pytest.raises(ConfigError, match="intra_link: 'none' needs gpus_per_node == 1"):
        make_cluster("cpu-cluster", 1, gpus_per_node=2)


def test_mixed_device_types_are_stored_per_gpu():
    devices = ("h100-sxm",) * 4 + ("a100-80gb",) * 4
    spec = make_cluster("dgx-h100", 1, gpus_per_node=8, devices=devices)
    assert spec.devices == devices


def test_gpus_per_node_override_clamps_nics():
    spec = make_cluster("dgx-a100", 2, gpus_per_node=2)
    assert spec.nics_per_node == 2 and spec.num_gpus == 4


def test_link_overrides_validated_and_applied():
    spec = make_cluster("dgx-a100", 2, link_overrides={"nic3.tx": 1e9})
    caps = {row[0]: row[2] for row in link_table(spec)}
    assert caps["nic3.tx"] == 1e9 and caps["nic2.tx"] == 25e9
    with pytest.raises(ConfigError, match="did you mean 'nic3.tx'"):
        make_cluster("dgx-a100", 2, link_overrides={"nic3.txx": 1e9})
    spec2 = with_link_capacity(spec, "nic3.tx", 2e9)
    assert dict(spec2.link_overrides)["nic3.tx"] == 2e9


def test_leaf_uplink_capacity_follows_oversubscription():
    spec = make_cluster("pcie-8gpu", 10, nodes_per_leaf=4, oversubscription=2.0)
    assert spec.num_leaves == 3
    assert spec.leaf_uplink_Bps == pytest.approx(4 * 1 * 100 * Gbps / 2.0)


def test_routes():
    spec = make_cluster("pcie-8gpu", 8, nodes_per_leaf=4, switch_latency_s=1e-6,
                        nic_latency_s=10e-6, intra_latency_s=2e-6)
    ids = link_ids(spec)
    assert route(spec, 5, 5) == ([], 0.0)
    links, lat = route(spec, 1, 2)
    assert [ids[i] for i in links] == ["gpu1.tx", "gpu2.rx"] and lat == 2e-6
    links, lat = route(spec, 3, 8 + 5)  # node 0 -> node 1, same leaf
    assert [ids[i] for i in links] == ["nic0.tx", "nic1.rx"]
    assert lat == pytest.approx(11e-6)
    links, lat = route(spec, 3, 8 * 5)  # node 0 (leaf 0) -> node 5 (leaf 1)
    assert [ids[i] for i in links] == ["nic0.tx", "nic5.rx", "leaf0.up", "leaf1.down"]
    assert lat == pytest.approx(13e-6)
    with pytest.raises(ConfigError, match="route"):
        route(spec, 0, 64)


def test_nic_per_gpu_and_channels():
    spec = make_cluster("dgx-h100", 2)
    ids = link_ids(spec)
    links, _ = route(spec, 3, 8 + 3)
    assert [ids[i] for i in links] == ["nic3.tx", "nic11.rx"]
    links, _ = route(spec, 3, 8 + 3, channel=5)
    assert [ids[i] for i in links] == ["nic5.tx", "nic13.rx"]
