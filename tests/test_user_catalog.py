"""A user's YAML catalog of devices and cluster presets (ddlsim.api.user_catalog)."""

from __future__ import annotations

import os
import textwrap

import pytest

from ddlsim.api.user_catalog import (
    CATALOG_ENV,
    clear_user_catalog,
    load_user_catalog,
    register_from_env,
    register_user_catalog,
)
from ddlsim.errors import ConfigError
from ddlsim.sim.hardware import BUILTIN_DEVICES, CATALOG, get_device
from ddlsim.sim.topology import PRESETS, make_cluster, preset_sources

GOOD = """\
devices:
  acme-x1:
    display_name: ACME X1 80GB
    source: ACME X1 datasheet rev 2 (acme.example/x1.pdf, 2026-01)
    peak_TFLOPS: {fp32: 60, tf32: 400, bf16: 800, fp8: 1600}
    memory_GiB: 80
    memory_bw_GBps: 3000
    nvlink_GBps: 450
    pcie_GBps: 64
    sources: {peak_TFLOPS.fp8: "ACME X1 datasheet p. 3 (3200 sparse / 2)"}
presets:
  acme-x1-8:
    base: dgx-h100
    device: ACME-X1
    nic_bandwidth_Gbps: 200
    nics_per_node: 4
    source: ACME X1-8 system guide (2026)
  acme-pod:
    device: acme-x1
    gpus_per_node: 4
    intra_link: nvlink
    intra_bandwidth_GBps: 450
    intra_latency_us: 3
    nics_per_node: 2
    nic_bandwidth_Gbps: 100
    nic_latency_us: 10
    fabric: ethernet
    nodes_per_leaf: 16
    oversubscription: 2
    switch_latency_us: 1
    source: ACME pod brochure (2026)
"""


@pytest.fixture(autouse=True)
def _clean():
    clear_user_catalog()
    yield
    clear_user_catalog()


def _write(tmp_path, text: str, name: str = "cat.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_round_trip_devices_and_presets_in_si(tmp_path):
    path = _write(tmp_path, GOOD)
    cat = register_user_catalog(path)
    assert set(cat.devices) == {"acme-x1"} and set(cat.presets) == {"acme-x1-8", "acme-pod"}
    dev = get_device("ACME-X1")  # any case
    assert dev is CATALOG["acme-x1"] and dev.display_name == "ACME X1 80GB"
    assert dict(dev.peak_flops_per_s) == {"float32": 60e12, "tf32": 400e12,
                                          "bfloat16": 800e12, "fp8": 1600e12}
    assert dev.memory_bytes == 80 * 2**30 and dev.memory_bw_bytes_per_s == 3000e9
    assert dev.nvlink_bw_bytes_per_s == 450e9 and dev.pcie_bw_bytes_per_s == 64e9
    assert dev.sources["peak_flops_per_s.fp8"].startswith("ACME X1 datasheet p. 3")
    assert str(path.resolve()) in dev.sources["memory_bytes"]
    spec = make_cluster("acme-x1-8", 2)  # base dgx-h100, three fields replaced
    assert spec.num_gpus == 16 and set(spec.devices) == {"acme-x1"}
    assert (spec.nics_per_node, spec.nic_bw_Bps) == (4, 200e9 / 8)
    assert spec.intra_bw_Bps == PRESETS["dgx-h100"]["intra_bw_Bps"][0]
    assert preset_sources("acme-x1-8")["nic_bw_Bps"].startswith("ACME X1-8 system guide")
    assert preset_sources("acme-x1-8")["intra_bw_Bps"] == preset_sources("dgx-h100")[
        "intra_bw_Bps"]
    pod = make_cluster("acme-pod", 3)
    assert pod.num_gpus == 12 and pod.oversubscription == 2.0
    assert (pod.intra_latency_s, pod.nic_latency_s, pod.switch_latency_s) == pytest.approx(
        (3e-6, 10e-6, 1e-6))


def test_user_rows_reach_the_api(tmp_path):
    from ddlsim.api.catalog import collective_table, device_table

    register_user_catalog(_write(tmp_path, GOOD))
    assert "acme-x1" in set(device_table()["name"])
    table, gpus = collective_table("acme-pod", 2, None, "allreduce", "ring", [1e7])
    assert gpus == 8 and table["busbw"].iloc[0] > 0


@pytest.mark.parametrize("old, new, message", [
    ("memory_GiB: 80", "memory_GiB: -3",
     r"cat.yaml: devices.acme-x1.memory_GiB: must be a finite number > 0, got -3$"),
    ("memory_bw_GBps: 3000", "memory_bw_GBps: fast",
     r"devices.acme-x1.memory_bw_GBps: must be a finite number > 0, got 'fast'$"),
    ("bf16: 800", "bf16: 0", r"devices.acme-x1.peak_TFLOPS.bf16: must be a finite number "
                             r"> 0, got 0$"),
    ("nics_per_node: 2", "nics_per_node: 3",
     r"presets.acme-pod: nics_per_node: must divide gpus_per_node=4, got 3$"),
    ("gpus_per_node: 4", "gpus_per_node: 2.5",
     r"presets.acme-pod.gpus_per_node: must be an integer >= 1, got 2.5$"),
    ("oversubscription: 2", "oversubscription: 0.5",
     r"presets.acme-pod.oversubscription: must be a finite number >= 1, got 0.5$"),
    ("    pcie_GBps: 64\n", "", r"devices.acme-x1: pcie_GBps is required"),
    ("    intra_link: nvlink\n", "", r"presets.acme-pod: intra_link is required without "
                                     r"'base'"),
])
def test_a_bad_field_is_a_one_line_error_naming_field_rule_and_value(tmp_path, old, new,
                                                                      message):
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError, match=message) as err:
        register_user_catalog(path)
    assert len(str(err.value).splitlines()) == 1
    assert "acme-x1" not in CATALOG and "acme-x1-8" not in PRESETS  # all or nothing


@pytest.mark.parametrize("old, new, message", [
    ("memory_GiB: 80", "memory_gb: 80",
     r"devices.acme-x1.memory_gb: unknown key 'memory_gb'; did you mean 'memory_GiB'\?"),
    ("pcie_GBps: 64", "pcie_gbps: 64", r"unknown key 'pcie_gbps'; did you mean 'pcie_GBps'\?"),
    ("bf16: 800", "bf61: 800", r"peak_TFLOPS.bf61: unknown dtype 'bf61'; did you mean "
                               r"'bf16'\?"),
    ("nic_bandwidth_Gbps: 100", "nic_bandwith_Gbps: 100",
     r"unknown key 'nic_bandwith_Gbps'; did you mean 'nic_bandwidth_Gbps'\?"),
    ("intra_link: nvlink", "intra_link: nvlnk", r"did you mean 'nvlink'\?"),
    ("base: dgx-h100", "base: dgx-h10", r"presets.acme-x1-8.base: unknown cluster preset "
                                        r"'dgx-h10'; did you mean 'dgx-h100'\?"),
    ("device: acme-x1\n    gpus", "device: acme-x2\n    gpus",
     r"presets.acme-pod.device: unknown device 'acme-x2'"),
    ("peak_TFLOPS.fp8:", "peak_TFLOP.fp8:", r"sources.peak_TFLOP.fp8: unknown key "
                                            r"'peak_TFLOP.fp8'; did you mean 'peak_TFLOPS.fp8'"),
])
def test_an_unknown_key_suggests_the_right_one(tmp_path, old, new, message):
    assert old in GOOD
    with pytest.raises(ConfigError, match=message):
        load_user_catalog(_write(tmp_path, GOOD.replace(old, new, 1)))


def test_every_number_needs_a_source(tmp_path):
    text = GOOD.replace("    source: ACME X1 datasheet rev 2 (acme.example/x1.pdf, 2026-01)\n",
                        "", 1)
    with pytest.raises(ConfigError, match=r"devices.acme-x1: every number needs a source.*"
                                          r"missing \['peak_TFLOPS.fp32'"):
        load_user_catalog(_write(tmp_path, text))


@pytest.mark.parametrize("text, message", [
    ("devices:\n  h100-sxm: {}\n", r"devices.h100-sxm: 'h100-sxm' is a built-in device"),
    ("devices:\n  h100: {}\n", r"devices.h100: 'h100' already names the built-in device "
                               r"'h100-sxm'"),
    ("devices:\n  nvidia-a100-pcie-40gb: {}\n", r"already names the built-in device "
                                                r"'a100-pcie-40gb'"),
    ("presets:\n  dgx-a100: {base: dgx-a100}\n", r"presets.dgx-a100: 'dgx-a100' is a "
                                                 r"built-in cluster preset"),
    ("devices:\n  My GPU: {}\n", r"a name must be lower-case letters"),
])
def test_built_in_names_are_never_replaced(tmp_path, text, message):
    before = dict(CATALOG), dict(PRESETS)
    with pytest.raises(ConfigError, match=message):
        register_user_catalog(_write(tmp_path, text))
    assert (dict(CATALOG), dict(PRESETS)) == before
    assert set(BUILTIN_DEVICES) <= set(CATALOG)


def test_another_file_cannot_take_a_name_but_the_same_file_reloads(tmp_path):
    path = _write(tmp_path, GOOD)
    register_user_catalog(path)
    register_user_catalog(path)  # same file again: replaces its own entries
    with pytest.raises(ConfigError, match=r"other.yaml: devices.acme-x1: device 'acme-x1' "
                                          r"was already added from"):
        register_user_catalog(_write(tmp_path, GOOD, "other.yaml"))


def test_worker_processes_can_register_from_the_environment(tmp_path):
    path = _write(tmp_path, GOOD)
    register_user_catalog(path)
    assert os.environ[CATALOG_ENV] == str(path.resolve())
    saved = os.environ[CATALOG_ENV]
    clear_user_catalog()
    assert "acme-x1" not in CATALOG and CATALOG_ENV not in os.environ
    os.environ[CATALOG_ENV] = saved
    [cat] = register_from_env()
    assert cat.devices["acme-x1"] is CATALOG["acme-x1"] and "acme-pod" in PRESETS


@pytest.mark.parametrize("text, message", [
    ("devices: [1, 2]\n", r"cat.yaml: devices: must be a mapping"),
    ("device:\n  x: {}\n", r"cat.yaml.device: unknown key 'device'; did you mean 'devices'"),
    ("devices: {a: 1\n", r"cat.yaml: not valid YAML"),
])
def test_malformed_files(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_user_catalog(_write(tmp_path, text))


def test_missing_file():
    with pytest.raises(ConfigError, match=r"catalog: no such file 'nope.yaml'"):
        load_user_catalog("nope.yaml")


def test_cli_catalog_option_registers_a_device_for_every_command(tmp_path):
    from click.testing import CliRunner

    from ddlsim.api.user_catalog import clear_user_catalog
    from ddlsim.cli import cli

    path = tmp_path / "mine.yaml"
    path.write_text("""
devices:
  acme-z9:
    display_name: ACME Z9
    source: ACME Z9 datasheet (test)
    peak_TFLOPS: {fp32: 50, bf16: 500}
    memory_GiB: 64
    memory_bw_GBps: 2000
    pcie_GBps: 32
""")
    try:
        res = CliRunner().invoke(cli, ["--catalog", str(path), "dp", "--device", "acme-z9",
                                       "--json"])
        assert res.exit_code == 0, res.output
        import json

        row = json.loads(res.output)["predictions"][0]
        assert row["device"] == "acme-z9" and row["dtype"] == "bfloat16"
    finally:
        clear_user_catalog()
