"""GPU cells with a parenthetical about the links resolve to the part they name; NVLink
bridges (PCIe cards in pairs) are refused with the reason, not predicted as another node."""

import pytest

from ddlsim.validation.parse.devices import BRIDGE_REASON, parse_gpu, parse_interconnect
from ddlsim.validation.rows import read_row


@pytest.mark.parametrize("text,device", [
    ("H100 PCIe (NVLink bridge)", "h100-pcie"),
    ("NVIDIA H100 PCIe (NVLink bridge)", "h100-pcie"),
    ("A100 PCIe (NVLink bridge)", "a100-pcie-40gb"),
    ("A100 PCIe 80GB (NVLink bridge)", "a100-pcie-80gb"),
    ("2x A100 80GB PCIe (bridged with NVLink)", "a100-pcie-80gb"),
    ("A100 (NVLink bridge)", "a100-pcie-40gb"),  # bridges join PCIe cards
    ("H100 SXM (NVSwitch)", "h100-sxm"),
    ("A100-SXM4-80GB (NVLink3 / NVSwitch)", "a100-80gb"),
    ("H100-PCIe-80GB", "h100-pcie"),
    ("A100-PCIe-80GB", "a100-pcie-80gb"),
    ("16 nodes with InfiniBand (8*V100 with NVLink for each node)", "v100-sxm2-16gb"),
])
def test_link_parenthetical_does_not_stop_the_match(text, device):
    assert parse_gpu(text).device == device


@pytest.mark.parametrize("text", ["V100 (PCIe)", "H100 NVL", "H100 NVL (NVLink bridge)"])
def test_uncatalogued_pcie_and_nvl_parts_stay_refused(text):
    g = parse_gpu(text)
    assert g.device is None
    assert any("not in the device catalog" in a for a in g.assumptions)


def test_counts_survive_the_parenthetical():
    g = parse_gpu("2x H100 PCIe (NVLink bridge)")
    assert (g.device, g.count, g.memory_GB) == ("h100-pcie", 2, 80)


def test_nvlink_bridge_interconnect_has_a_refusal_reason():
    assert parse_interconnect("NVLink bridge (PCIe cards)").reason == BRIDGE_REASON
    assert parse_interconnect("NVLink3/NVSwitch").reason == ""
    assert parse_interconnect("PCIe 4.0").reason == ""


def test_bridged_row_is_refused_with_the_reason():
    row = {"id": "X", "category": "collectives", "source": "s", "model": "allreduce",
           "gpu": "H100 PCIe (NVLink bridge)", "num_gpus": "2", "nodes": "1",
           "interconnect": "NVLink bridge (PCIe cards)", "precision": "float32",
           "parallelism": "-b 1G -e 8G -g 2", "global_batch": "", "micro_batch": "",
           "metric": "allreduce_busbw", "value": "116", "unit": "GB/s", "notes": ""}
    run, why = read_row(row)
    assert run is None
    assert why == BRIDGE_REASON
    assert "GPU" not in why.split(":")[0]  # no longer "not in the device catalog"
