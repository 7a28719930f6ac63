"""Device catalog: numbers cross-checked against published.csv, aliases, validation."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from ddlsim.errors import ConfigError
from ddlsim.sim.hardware import (
    CATALOG,
    DeviceSpec,
    cpu_spec,
    get_device,
    list_devices,
    resolve_device_name,
)
from ddlsim.units import GB, TFLOPS, GiB

PUBLISHED = Path(__file__).resolve().parents[2] / "src" / "ddlsim" / "data" / "published.csv"

# Which published.csv metric may back which catalog field.
DTYPE_METRIC = {"float64": "fp64", "float32": "fp32", "tf32": "tf32", "float16": "fp16",
                "bfloat16": "bf16", "fp8": "fp8"}
# Family token that must appear in the backing row's gpu column, per catalog key.
FAMILY = {"v100-sxm2-16gb": "v100", "v100-sxm2-32gb": "v100", "a100-40gb": "a100",
          "a100-80gb": "a100", "h100-sxm": "h100", "h200": "h200", "l4": "l4",
          "a100-pcie-40gb": "a100", "a100-pcie-80gb": "a100", "h100-pcie": "h100"}

_F = "peak_flops_per_s."
_V100 = {_F + "float64": "HW-V100-02", _F + "float32": "HW-V100-01",
         _F + "float16": "HW-V100-03", "memory_bw_bytes_per_s": "HW-V100-05",
         "pcie_bw_bytes_per_s": "HW-V100-07", "nvlink_bw_bytes_per_s": "HW-V100-06"}
_A100 = {_F + "float64": "HW-A100-02", _F + "float32": "HW-A100-03", _F + "tf32": "HW-A100-04",
         _F + "float16": "HW-A100-05", _F + "bfloat16": "HW-A100-05",
         "pcie_bw_bytes_per_s": "HW-A100-08", "nvlink_bw_bytes_per_s": "HW-A100-07"}
#: (catalog key, field) -> the published.csv row whose number the field holds. The catalog
#: cites the row's primary source (its ``source`` column), not its id; this table is how the
#: test finds the row again.
BACKING_ROW = {
    **{("v100-sxm2-16gb", k): v for k, v in _V100.items()},
    ("v100-sxm2-16gb", "memory_bytes"): "HW-V100-04",
    **{("v100-sxm2-32gb", k): v for k, v in _V100.items()},
    ("v100-sxm2-32gb", "memory_bytes"): "HW-V100-04b",
    **{("a100-40gb", k): v for k, v in _A100.items()},
    ("a100-40gb", "memory_bytes"): "HW-A100-10",
    ("a100-40gb", "memory_bw_bytes_per_s"): "HW-A100-10b",
    **{("a100-80gb", k): v for k, v in _A100.items()},
    ("a100-80gb", "memory_bytes"): "HW-A100-11",
    ("a100-80gb", "memory_bw_bytes_per_s"): "HW-A100-11b",
    ("h100-sxm", _F + "float64"): "HW-H100-02",
    ("h100-sxm", _F + "float32"): "HW-H100-03",
    ("h100-sxm", _F + "tf32"): "HW-H100-04",
    ("h100-sxm", _F + "float16"): "HW-H100-05",
    ("h100-sxm", _F + "bfloat16"): "HW-H100-05",
    ("h100-sxm", _F + "fp8"): "HW-H100-06",
    ("h100-sxm", "memory_bytes"): "HW-H100-07",
    ("h100-sxm", "memory_bw_bytes_per_s"): "HW-H100-08",
    ("h100-sxm", "pcie_bw_bytes_per_s"): "HW-H100-10",
    ("h100-sxm", "nvlink_bw_bytes_per_s"): "HW-H100-09",
    ("h200", _F + "float16"): "HW-H200-04",
    ("h200", _F + "bfloat16"): "HW-H200-04",
    ("h200", _F + "fp8"): "HW-H200-05",
    ("h200", "memory_bytes"): "HW-H200-01",
    ("h200", "memory_bw_bytes_per_s"): "HW-H200-02",
    ("h200", "nvlink_bw_bytes_per_s"): "HW-H200-03",
    ("l4", _F + "float32"): "HW-L4-01",
    ("l4", _F + "tf32"): "HW-L4-02",
    ("l4", _F + "float16"): "HW-L4-03",
    ("l4", _F + "bfloat16"): "HW-L4-03",
    ("l4", _F + "fp8"): "HW-L4-04",
    ("l4", "memory_bytes"): "HW-L4-05",
    ("l4", "memory_bw_bytes_per_s"): "HW-L4-06",
    ("l4", "pcie_bw_bytes_per_s"): "HW-L4-07",
    ("l4", "nvlink_bw_bytes_per_s"): "HW-L4-07",
    # datasheet rows whose numbers published.csv also holds ("A100 (all variants)" rows, the
    # A100-PCIe-80GB and H100-PCIe-80GB rows)
    **{(pcie, k): v for pcie in ("a100-pcie-40gb", "a100-pcie-80gb") for k, v in _A100.items()
       if k != "nvlink_bw_bytes_per_s"},
    ("a100-pcie-80gb", "memory_bw_bytes_per_s"): "HW-A100-12",
    ("h100-pcie", _F + "float16"): "HW-H100-12",
    ("h100-pcie", _F + "bfloat16"): "HW-H100-12",
}

# Web addresses in a row's source text (e.g. "koenli.com", "glennklockwood.com/garden/...").
_ADDRESS = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+(?:/[\w./-]*)?")


def _addresses(source: str) -> set[str]:
    return {a.rstrip("./") for a in _ADDRESS.findall(source.lower()) if re.search("[a-z]", a)}


@pytest.fixture(scope="module")
def published() -> dict[str, dict[str, str]]:
    with PUBLISHED.open(newline="") as f:
        return {row["id"]: row for row in csv.DictReader(f)}


def _field_value(spec: DeviceSpec, key: str) -> float:
    if key.startswith("peak_flops_per_s."):
        return spec.peak_flops_per_s[key.split(".", 1)[1]]
    return getattr(spec, key)


def _expected_from_row(key: str, row: dict[str, str]) -> float:
    """What the catalog field should hold, given the published row backing it."""
    metric, value = row["metric"], float(row["value"])
    if key.startswith("peak_flops_per_s."):
        dtype = key.split(".", 1)[1]
        assert metric.startswith("peak_") and DTYPE_METRIC[dtype] in metric, (key, metric)
        assert row["unit"] == "TFLOP/s"
        return value * TFLOPS
    if key == "memory_bytes":
        assert metric in ("hbm_capacity", "memory_capacity") and row["unit"] == "GB"
        return value * GiB  # documented convention: vendor GB of device memory = GiB
    if key == "memory_bw_bytes_per_s":
        assert metric in ("hbm_bandwidth", "memory_bandwidth") and row["unit"] == "GB/s"
        return value * GB
    if key == "pcie_bw_bytes_per_s":
        assert metric == "pcie_bandwidth" and row["unit"] == "GB/s"
        return value * GB / 2  # published number is bidirectional
    if key == "nvlink_bw_bytes_per_s":
        if metric == "nvlink_bandwidth_total":
            return value * GB / 2
        assert "no NVLink" in row["notes"], row
        return 0.0
    raise AssertionError(f"unexpected field {key}")


#: GPU rows published.csv has no hardware_spec rows for: every number names the datasheet.
DATASHEET_ONLY = {"p100-sxm2-16gb", "p40"}

#: Rows read from vendor datasheets after published.csv was assembled (checked number by
#: number in test_datasheet_devices.py): every source names the datasheet, and the numbers
#: published.csv happens to hold too are in BACKING_ROW (how many, here).
DATASHEET_ROWS = {"b200": 0, "gb200": 0, "l40s": 0, "h100-pcie": 2, "a100-pcie-40gb": 6,
                  "a100-pcie-80gb": 7, "mi300x": 0, "mi325x": 0, "a10": 0, "gaudi2": 0,
                  "gaudi3": 0}

#: Of those, the ones whose vendor publishes no datasheet (Intel Gaudi: Hot Chips slides, a
#: white paper, documentation): every source names Intel instead.
NO_DATASHEET = {"gaudi2", "gaudi3"}


#: Catalog rows derived from another row (rates assumed equal, stated in every source).
DERIVED = {"v100-sxm3-32gb": "v100-sxm2-32gb"}


def _published_gpus() -> list[str]:
    return [name for name, spec in CATALOG.items() if spec.kind == "gpu" and name not in DERIVED]


def test_derived_rows_copy_their_base_and_say_so():
    for name, base in DERIVED.items():
        a, b = CATALOG[name], CATALOG[base]
        assert dict(a.peak_flops_per_s) == dict(b.peak_flops_per_s)
        assert (a.memory_bytes, a.memory_bw_bytes_per_s) == (b.memory_bytes,
                                                             b.memory_bw_bytes_per_s)
        assert all("assumed equal to" in src for src in a.sources.values())


def test_backing_rows_name_catalog_fields():
    for (name, key), row_id in BACKING_ROW.items():
        assert name in CATALOG and key in CATALOG[name].source_keys(), (name, key, row_id)


@pytest.mark.parametrize("name", _published_gpus())
def test_catalog_numbers_match_the_published_rows_behind_them(name, published):
    spec = CATALOG[name]
    family_rows = [row for row in published.values()
                   if row["category"] == "hardware_spec"
                   and FAMILY.get(name, name) in row["gpu"].lower()]
    family_addresses = set().union(*(_addresses(r["source"]) for r in family_rows))
    checked = 0
    for key in spec.source_keys():
        source = spec.sources[key]
        row_id = BACKING_ROW.get((name, key))
        if row_id is None and name in DATASHEET_ROWS:
            vendor = r"\bintel\b" if name in NO_DATASHEET else r"datasheet|data sheet"
            assert re.search(vendor, source.lower()), (name, key)
            continue
        if row_id is None:
            # numbers without a published row must name the vendor datasheet, and must not
            # cite the published rows' sources (such a field belongs in BACKING_ROW)
            assert "datasheet" in source.lower(), (name, key)
            assert not {a for a in family_addresses if a in source.lower()}, (name, key)
            continue
        assert row_id in published, f"{name}.{key}: unknown row {row_id}"
        row = published[row_id]
        assert row["category"] == "hardware_spec"
        assert FAMILY[name] in row["gpu"].lower(), (name, row_id, row["gpu"])
        expected = _expected_from_row(key, row)
        assert _field_value(spec, key) == pytest.approx(expected, rel=1e-12, abs=0.0), \
            (name, key, row_id)
        # the catalog cites the row's primary source: an address from its source column
        addresses = _addresses(row["source"])
        assert addresses and any(a in source.lower() for a in addresses), \
            (name, key, row_id, source, sorted(addresses))
        assert row_id not in source, (name, key, source)
        checked += 1
    if name in DATASHEET_ONLY:  # no hardware_spec row exists for it in published.csv
        assert checked == 0
    elif name in DATASHEET_ROWS:
        assert checked == DATASHEET_ROWS[name], (name, checked)
    else:
        assert checked >= 6, f"{name}: only {checked} numbers backed by published rows"


def test_h100_row_against_hand_read_values():
    # Spot-check one full row against hand-read values (HW-H100-03/05/08/09/10).
    h100 = get_device("h100-sxm")
    assert h100.peak_flops_per_s["float32"] == 67e12
    assert h100.peak_flops_per_s["bfloat16"] == pytest.approx(989.4e12)
    assert h100.memory_bw_bytes_per_s == 3350e9
    assert h100.nvlink_bw_bytes_per_s == 450e9
    assert h100.pcie_bw_bytes_per_s == 64e9
    assert h100.memory_bytes == 80 * 2**30


def test_list_devices_has_the_catalog_rows():
    assert set(list_devices()) == {"p100-sxm2-16gb", "p40", "v100-sxm2-16gb", "v100-sxm2-32gb",
                                   "v100-sxm3-32gb",
                                   "a100-40gb", "a100-80gb", "h100-sxm", "h200", "l4",
                                   "b200", "gb200", "l40s", "h100-pcie", "a100-pcie-40gb",
                                   "a100-pcie-80gb", "a10", "mi300x", "mi325x", "gaudi2",
                                   "gaudi3", "cpu-generic"}
    assert set(DATASHEET_ROWS) == {n for n in CATALOG if n.startswith(
        ("b200", "gb200", "l40s", "h100-pcie", "a100-pcie", "mi3", "gaudi")) or n == "a10"}
    assert all(CATALOG[name].name == name for name in list_devices())


def test_dtypes_per_generation():
    assert "bfloat16" not in get_device("v100").peak_flops_per_s
    assert "tf32" not in get_device("v100").peak_flops_per_s
    assert "fp8" not in get_device("a100").peak_flops_per_s
    assert "fp8" in get_device("h100").peak_flops_per_s
    assert get_device("l4").nvlink_bw_bytes_per_s == 0.0
    with pytest.raises(ConfigError, match=r"'bfloat16'.*v100-sxm2-16gb"):
        get_device("v100").peak_flops("bfloat16")


@pytest.mark.parametrize("text, key", [
    ("A100", "a100-40gb"),
    ("a100", "a100-40gb"),
    ("A100-SXM4-80GB", "a100-80gb"),
    ("A100-SXM4-40GB", "a100-40gb"),
    ("NVIDIA A100-SXM4-80GB", "a100-80gb"),
    ("A100-SXM-80GB (HGX)", "a100-80gb"),
    ("A100 40GB", "a100-40gb"),
    ("H100", "h100-sxm"),
    ("H100-SXM5-80GB", "h100-sxm"),
    ("NVIDIA H100 80GB HBM3", "h100-sxm"),
    ("h100 sxm", "h100-sxm"),
    ("V100", "v100-sxm2-16gb"),
    ("V100-SXM2-32GB", "v100-sxm2-32gb"),
    ("Tesla V100-SXM2-16GB", "v100-sxm2-16gb"),
    ("V100 (16GB)", "v100-sxm2-16gb"),
    ("H200-SXM-141GB", "h200"),
    ("NVIDIA H200", "h200"),
    ("L4", "l4"),
    ("NVIDIA L4", "l4"),
    ("CPU", "cpu-generic"),
    ("P100-SXM2-16GB", "p100-sxm2-16gb"),
    ("P100", "p100-sxm2-16gb"),
    ("Pascal (P100 per Horovod paper)", "p100-sxm2-16gb"),
    ("P100 (12GB)", None),
    ("A100-80GB", "a100-80gb"),
    ("H100 PCIe (NVLink bridge)", "h100-pcie"),
    ("NVIDIA H100 PCIe", "h100-pcie"),
    ("H100-PCIe-80GB", "h100-pcie"),
    ("A100-PCIe-80GB", "a100-pcie-80gb"),
    ("NVIDIA A100-PCIE-40GB", "a100-pcie-40gb"),
    ("A100 80GB PCIe", "a100-pcie-80gb"),
    ("A100 PCIe", "a100-pcie-40gb"),
    ("L40S", "l40s"),
    ("NVIDIA L40S", "l40s"),
    ("NVIDIA B200", "b200"),
    ("B200-SXM-180GB", "b200"),
    ("NVIDIA GB200", "gb200"),
    ("GB200 NVL72", "gb200"),
    ("GB200 186GB", "gb200"),
    ("AMD Instinct MI300X", "mi300x"),
    ("MI300X-NPS1-SPX-192GB-750W", "mi300x"),
    ("AMD Instinct MI325X", "mi325x"),
    # other products: not in the catalog
    ("V100-SXM3-32GB (DGX-2H)", None),
    ("H100 NVL", None),
    ("V100 (PCIe)", None),
    ("L40", None),
    ("B300", None),
    ("MI300A", None),
    ("A10G", None),
    ("B200 (96GB)", None),
    ("Tesla P40", "p40"),
    ("P40 PCIe 24GB", "p40"),
    ("Tesla P40 (48GB)", None),
    ("GTX 980", None),
    ("A100 (64GB)", None),
    ("", None),
])
def test_resolve_device_name(text, key):
    assert resolve_device_name(text) == key


def test_get_device_accepts_aliases_and_suggests():
    assert get_device("A100-SXM4-80GB") is CATALOG["a100-80gb"]
    assert get_device("H100") is CATALOG["h100-sxm"]
    with pytest.raises(ConfigError, match=r"unknown device 'h10'.*did you mean 'h100-sxm'"):
        get_device("h10")
    with pytest.raises(ConfigError, match="unknown device"):
        get_device("tpu-v4")


def _spec(**overrides) -> DeviceSpec:
    args = dict(name="toy", display_name="Toy GPU", kind="gpu",
                peak_flops_per_s={"float32": 1e12}, memory_bytes=1e9,
                memory_bw_bytes_per_s=1e11, pcie_bw_bytes_per_s=1e10,
                nvlink_bw_bytes_per_s=0.0,
                sources={"peak_flops_per_s.float32": "test", "memory_bytes": "test",
                         "memory_bw_bytes_per_s": "test", "pcie_bw_bytes_per_s": "test",
                         "nvlink_bw_bytes_per_s": "test"})
    args.update(overrides)
    return DeviceSpec(**args)


@pytest.mark.parametrize("overrides, message", [
    ({"memory_bytes": -3.0}, r"memory_bytes of toy: must be a finite number > 0, got -3.0"),
    ({"memory_bw_bytes_per_s": 0}, r"memory_bw_bytes_per_s of toy: .*> 0, got 0"),
    ({"pcie_bw_bytes_per_s": float("nan")}, r"pcie_bw_bytes_per_s of toy: .*got nan"),
    ({"nvlink_bw_bytes_per_s": -1.0}, r"nvlink_bw_bytes_per_s of toy: .*>= 0, got -1.0"),
    ({"kind": "tpu"}, r"kind of toy: must be one of .*got 'tpu'"),
    ({"name": ""}, r"name: must be a non-empty string, got ''"),
    ({"peak_flops_per_s": {"float33": 1e12}}, r"dtype must be one of .*got 'float33'"),
    ({"peak_flops_per_s": {"float32": -1.0}}, r"peak_flops_per_s\[float32\] of toy: .*-1.0"),
    ({"peak_flops_per_s": {}}, r"peak_flops_per_s of toy: needs at least one dtype"),
    ({"sources": {"memory_bytes": "x"}}, r"sources of toy: every number needs a source"),
])
def test_validation_names_field_and_value(overrides, message):
    with pytest.raises(ConfigError, match=message):
        _spec(**overrides)


def test_spec_is_frozen_and_peaks_read_only():
    spec = _spec()
    with pytest.raises(AttributeError):
        spec.memory_bytes = 2.0
    with pytest.raises(TypeError):
        spec.peak_flops_per_s["float32"] = 5.0
    assert spec == _spec() and hash(spec) == hash(_spec())


def test_cpu_spec_computes_peaks():
    cpu = cpu_spec("Intel Xeon Test", cores=8, freq_hz=2.5e9, flops_per_cycle_per_core_fp32=32,
                   memory_bytes=16 * GiB, memory_bw_bytes_per_s=40e9, source="lscpu")
    assert cpu.kind == "cpu"
    assert cpu.peak_flops_per_s["float32"] == 8 * 2.5e9 * 32
    assert cpu.peak_flops_per_s["float64"] == 8 * 2.5e9 * 32 / 2
    assert cpu.pcie_bw_bytes_per_s == 0.0 and cpu.nvlink_bw_bytes_per_s == 0.0
    assert "lscpu" in cpu.sources["peak_flops_per_s.float32"]
    assert get_device("cpu-generic").peak_flops_per_s["float32"] == 16 * 3.0e9 * 32


@pytest.mark.parametrize("kwargs, message", [
    ({"cores": 0}, r"cores: must be an integer > 0, got 0"),
    ({"freq_hz": -1.0}, r"freq_hz: .*got -1.0"),
    ({"memory_bytes": 0}, r"memory_bytes of x: .*got 0"),
    ({"source": " "}, r"source: must be a non-empty string"),
])
def test_cpu_spec_validation(kwargs, message):
    args = dict(name="x", cores=4, freq_hz=3e9, flops_per_cycle_per_core_fp32=16,
                memory_bytes=8 * GiB, memory_bw_bytes_per_s=2e10, source="test")
    args.update(kwargs)
    with pytest.raises(ConfigError, match=message):
        cpu_spec(**args)


def test_p100_row_against_its_datasheet():
    """Tesla P100 SXM2 datasheet: 10.6 TFLOPS FP32, 21.2 FP16, 5.3 FP64, 732 GB/s HBM2,
    16 GB, NVLink 160 GB/s and PCIe Gen3 32 GB/s bidirectional (per direction: half)."""
    p100 = get_device("P100-SXM2-16GB")
    assert p100.peak_flops_per_s == {"float64": 5.3e12, "float32": 10.6e12,
                                     "float16": 21.2e12}
    assert p100.memory_bw_bytes_per_s == 732e9
    assert p100.memory_bytes == 16 * 2**30
    assert p100.nvlink_bw_bytes_per_s == 80e9 and p100.pcie_bw_bytes_per_s == 16e9
    assert "tf32" not in p100.peak_flops_per_s  # Pascal: no tensor cores


def test_p40_row_against_its_datasheet():
    """Tesla P40 datasheet: 12 TFLOPS FP32, 24 GB GDDR5 at 346 GB/s, PCIe 3.0 x16
    (32 GB/s bidirectional, per direction half), no NVLink, no tensor cores."""
    p40 = get_device("Tesla P40")
    assert p40.peak_flops_per_s == {"float32": 12e12}
    assert p40.memory_bytes == 24 * 2**30
    assert p40.memory_bw_bytes_per_s == 346e9
    assert p40.pcie_bw_bytes_per_s == 16e9 and p40.nvlink_bw_bytes_per_s == 0.0
    with pytest.raises(ConfigError, match=r"'float16'.*p40"):
        p40.peak_flops("float16")
