"""AMD Instinct accelerators (CDNA 3: MI300X, MI325X), each number from AMD's documentation
or data sheet (conventions in :mod:`ddlsim.sim.hardware`).

AMD's tables give dense rates directly (the sparse ones are listed separately). The
scale-up link is AMD Infinity Fabric: seven links per GPU joining the eight GPUs of a
platform in a full mesh. It is stored in ``nvlink_bw_bytes_per_s`` (the catalog's
GPU-to-GPU link field) as the aggregate of the seven links, one direction; how a cluster
preset uses it is in :mod:`ddlsim.sim.cluster_presets` (``mi300x-8``).
"""

from __future__ import annotations

from ddlsim.sim.device_spec import DeviceSpec, gpu_spec
from ddlsim.units import GB, TFLOPS, GiB

_ROCM_MI300 = ("AMD ROCm documentation 'AMD Instinct MI300 series microarchitecture' "
               "(rocm.docs.amd.com/en/latest/conceptual/gpu-arch/mi300.html; source "
               "docs/conceptual/gpu-arch/mi300.md of the ROCm repository), table "
               "'Peak-performance capabilities of the MI300X'")
_ROCM_SPECS = ("AMD ROCm documentation 'GPU hardware specifications' "
               "(rocm.docs.amd.com/en/latest/reference/gpu-arch-specs.html), VRAM (GiB) column")
_MI300X_IF = ("AMD Instinct MI300X data sheet: 7 AMD Infinity Fabric links x 128 GB/s peak "
              "(bidirectional) = 896 GB/s aggregate, as reproduced at gpu.blog/gpus/"
              "instinct-mi300x-mi300x (896 GB/s) and emergentmind.com/topics/amd-mi300x-gpu "
              "(128 GB/s bidirectional per link); 7 links forming a fully connected 8-GPU "
              f"system per {_ROCM_MI300}; aggregate / 2 = per direction (64 GB/s per peer)")
_PCIE5 = "PCIe Gen5 x16, 128 GB/s bidirectional / 2 = per direction"


def _mi300x() -> DeviceSpec:
    def rocm(value: float, label: str) -> tuple[float, str]:
        return value * TFLOPS, f"{_ROCM_MI300} (data sheet values): {label} {value:g} TFLOPS"
    return gpu_spec(
        "mi300x", "AMD Instinct MI300X",
        peaks={
            "float64": rocm(163.4, "Matrix FP64"),
            "float32": rocm(163.4, "Vector FP32"),
            "tf32": rocm(653.7, "TF32"),
            "float16": rocm(1307.4, "Matrix FP16"),
            "bfloat16": rocm(1307.4, "Matrix BF16"),
            "fp8": rocm(2614.9, "Matrix FP8"),
        },
        memory=(192 * GiB, f"{_ROCM_SPECS}: MI300X 192 GiB (AMD data sheet: 192 GB HBM3)"),
        memory_bw=(5300 * GB, f"{_ROCM_MI300}: theoretical aggregated peak memory bandwidth "
                              "5.3 TB per second (data sheet value)"),
        pcie=(64 * GB, f"{_ROCM_MI300}: OAMs attach to the host via PCIe Gen 5 x16 links "
                       f"(data sheet value); {_PCIE5}"),
        nvlink=(448 * GB, _MI300X_IF),
    )


_MI325X = ("AMD Instinct MI325X data sheet values as reproduced at awesomeagents.ai/hardware/"
           "amd-mi325x (FP8 2,614.9 and 5,229.8 with sparsity) and AMD's MI325X product "
           "page as reproduced at wiaix.com/amd-instincttm-mi325x-accelerators")


def _mi325x() -> DeviceSpec:
    # Same CDNA 3 compute die as the MI300X (304 CUs; nextplatform.com 2024-10-10: "1,307.4
    # teraflops at FP16 ... 2,614.9 at FP8 ... exactly as advertised"), more and faster HBM3E.
    def sheet(value: float, label: str) -> tuple[float, str]:
        return value * TFLOPS, f"{_MI325X}: {label} {value:,g} TFLOPS (dense)"
    return gpu_spec(
        "mi325x", "AMD Instinct MI325X",
        peaks={
            "float32": sheet(163.4, "FP32"),
            "tf32": sheet(653.7, "TF32"),
            "float16": sheet(1307.4, "FP16"),
            "bfloat16": sheet(1307.4, "BF16"),
            "fp8": sheet(2614.9, "FP8"),
        },
        memory=(256 * GiB, f"{_ROCM_SPECS}: MI325X 256 GiB (data sheet: 256 GB HBM3E)"),
        memory_bw=(6000 * GB, f"{_MI325X}: 6 TB/s peak memory bandwidth"),
        pcie=(64 * GB, f"{_MI325X}: 'PCIe Gen 5 interface with 16 lanes'; {_PCIE5}"),
        nvlink=(448 * GB, f"{_MI325X}: 'Seven Infinity Fabric links' joining 8 GPUs, as on "
                          "the MI300X; per-link rate not in the sources read, assumed equal "
                          f"to the MI300X's ({_MI300X_IF})"),
    )


def amd_rows() -> list[DeviceSpec]:
    """The rows of this module, in catalog order."""
    return [_mi300x(), _mi325x()]
