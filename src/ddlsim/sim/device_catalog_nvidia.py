"""NVIDIA GPUs rented today that ``published.csv`` has no (or almost no) rows for: Blackwell
(B200, one GPU of a GB200 NVL72), L40S, A10 and the PCIe cards of A100 and H100, each number from
the vendor's datasheet or product table (conventions in :mod:`ddlsim.sim.hardware`).

Where a vendor table lists Tensor Core rates *with sparsity* (Blackwell, H100, the starred
L40S figures) the dense rate stored is half of it, and the source says so. The PCIe cards'
optional NVLink bridge joins pairs of GPUs only, never a whole node: ``nvlink`` is 0 for
them (a PCIe server is a PCIe cluster) and the source gives the bridge's figure.
"""

from __future__ import annotations

from ddlsim.sim.device_spec import DeviceSpec, gpu_spec
from ddlsim.units import GB, TFLOPS, GiB

_HALF_OF = "bidirectional / 2 = per direction"
_GIB = "vendor 'GB' taken as GiB"

# -- Blackwell ---------------------------------------------------------------------------------
_BLACKWELL = ("NVIDIA Blackwell datasheet specification table (GB200 NVL72 and HGX B200 "
              "columns, 'Individual Blackwell GPU Specifications', NVIDIA 2024), as reproduced "
              "at zdszero.github.io/Computer/Artificial_Intelligence/Hardware.html")
_SPARSE = ("Tensor Core figure with sparsity, dense = half (glennklockwood.com/garden/"
           "processors/B200 lists the dense and sparse rates: {dense} / {sparse} TFLOPS)")
_B200_MLPERF = ("MLPerf Inference v6.0 systems JSON nebius_b200_n1 (github.com/mlcommons/"
                "inference_results_v6.0): 'NVIDIA B200-SXM-180GB', 180 GB, 'PCIe Gen5 x16', "
                "'18x 5th Gen NVLink, 14.4 TB/s aggregated' (8 GPUs)")
_GB200_MLPERF = ("MLPerf Inference v6.1 systems JSON GB200-NVL72_GB200-186GB_aarch64x16_Dynamo "
                 "(github.com/mlcommons/inference_results_v6.1): 186 GB HBM3e, host "
                 "interconnect NVLink-C2C")


def _blackwell(name: str, display: str, col: str, tc: dict[str, float], fp32: float,
               fp64: float, mem_gb: int, bw_gbps: float, mlperf: str) -> DeviceSpec:
    """``tc``: the table's per-GPU Tensor Core rates *with sparsity*, in TFLOPS (fp8, fp16,
    tf32); ``bw_gbps``: memory bandwidth in GB/s."""
    def tensor(key: str, label: str) -> tuple[float, str]:
        sparse = tc[key]
        note = _SPARSE.format(dense=f"{sparse / 2:g}", sparse=f"{sparse:g}")
        return (sparse / 2 * TFLOPS,
                f"{_BLACKWELL}: {col} {label} Tensor Core {sparse / 1000:g} PFLOPS; {note}")
    return gpu_spec(
        name, display,
        peaks={
            "float64": (fp64 * TFLOPS, f"{_BLACKWELL}: {col} FP64/FP64 Tensor Core {fp64:g} "
                                       "TFLOPS"),
            "float32": (fp32 * TFLOPS, f"{_BLACKWELL}: {col} FP32 {fp32:g} TFLOPS"),
            "tf32": tensor("tf32", "TF32"),
            "float16": tensor("fp16", "FP16/BF16"),
            "bfloat16": tensor("fp16", "FP16/BF16"),
            "fp8": tensor("fp8", "FP8/FP6"),
        },
        memory=(mem_gb * GiB, f"{_BLACKWELL}: {col} GPU memory {mem_gb} GB HBM3E ({_GIB}); "
                              f"{mlperf}"),
        memory_bw=(bw_gbps * GB, f"{_BLACKWELL}: {col} GPU memory bandwidth "
                                 f"{bw_gbps / 1000:g} TB/s"),
        pcie=(64 * GB, f"{_BLACKWELL}: interconnect PCIe Gen5 128 GB/s, {_HALF_OF}; {mlperf}"
              + ("; the GB200's own host link is NVLink-C2C to its Grace CPU, faster than "
                 "PCIe: not modelled (conservative)" if name == "gb200" else "")),
        nvlink=(900 * GB, f"{_BLACKWELL}: 5th generation NVLink 1.8 TB/s per GPU, {_HALF_OF}"),
    )


def _b200() -> DeviceSpec:
    # The HGX/DGX B200 part (air-cooled SXM, configurable up to 1,000 W).
    return _blackwell("b200", "NVIDIA B200-SXM-180GB", "HGX B200",
                      tc={"fp8": 9000, "fp16": 4500, "tf32": 2200}, fp32=75, fp64=37,
                      mem_gb=180, bw_gbps=7700, mlperf=_B200_MLPERF)


def _gb200() -> DeviceSpec:
    # One Blackwell GPU of a GB200 superchip (two GPUs + one Grace CPU, up to 1,200 W each);
    # 72 of them form one NVLink domain in a GB200 NVL72 rack.
    return _blackwell("gb200", "NVIDIA GB200 (one Blackwell GPU of a GB200 NVL72)",
                      "GB200 NVL72", tc={"fp8": 10000, "fp16": 5000, "tf32": 2500}, fp32=80,
                      fp64=40, mem_gb=186, bw_gbps=8000, mlperf=_GB200_MLPERF)


# -- L40S --------------------------------------------------------------------------------------
_L40S = ("NVIDIA L40S datasheet (2023) specification table, as reproduced by resellers "
         "mullet.se/product.html?product_id=355414 and itcreations.com/nvidia-gpu/"
         "nvidia-l40s-gpu-accelerator")


def _l40s() -> DeviceSpec:
    def starred(dense: float, sparse: str, label: str) -> tuple[float, str]:
        return (dense * TFLOPS, f"{_L40S}: {label} {dense:g} | {sparse}* TFLOPS (* with "
                                "sparsity); the dense figure")
    return gpu_spec(
        "l40s", "NVIDIA L40S",
        peaks={
            "float32": (91.6 * TFLOPS, f"{_L40S}: FP32 91.6 TFLOPS"),
            "tf32": starred(183, "366", "TF32 Tensor Core"),
            "float16": starred(362.05, "733", "FP16 Tensor Core"),
            "bfloat16": starred(362.05, "733", "BFLOAT16 Tensor Core"),
            "fp8": starred(733, "1,466", "FP8 Tensor Core"),
        },
        memory=(48 * GiB, f"{_L40S}: 48 GB GDDR6 with ECC ({_GIB})"),
        memory_bw=(864 * GB, f"{_L40S}: memory bandwidth 864 GB/s"),
        pcie=(32 * GB, f"{_L40S}: PCIe Gen4 x16 64 GB/s bidirectional, {_HALF_OF}"),
        nvlink=(0.0, f"{_L40S}: PCIe card; itcreations.com: 'NVLink is not supported'"),
    )


# -- PCIe cards of A100 and H100 ---------------------------------------------------------------
_A100 = ("NVIDIA A100 datasheet values as reproduced at glennklockwood.com/garden/processors/"
         "A100 and thundercompute.com/blog/nvidia-a100-specs-full-guide (the datasheet lists "
         "the same peak rates for the PCIe and SXM4 parts)")
_A100_BRIDGE = ("NVIDIA A100 datasheet: the PCIe card's NVLink bridge joins 2 GPUs (600 GB/s); "
                "no NVSwitch, so not modelled (0: a PCIe server is a PCIe cluster)")


def _a100_pcie(memory_gib: int, bw_gbps: float, display: str) -> DeviceSpec:
    def peak(value: float, note: str = "") -> tuple[float, str]:
        return value * TFLOPS, f"{_A100} {note}".strip()
    return gpu_spec(
        f"a100-pcie-{memory_gib}gb", display,
        peaks={
            "float64": peak(19.5, "(FP64 tensor core)"),
            "float32": peak(19.5),
            "tf32": peak(156, "(tensor core, dense)"),
            "float16": peak(312, "(tensor core, dense)"),
            "bfloat16": peak(312, "(tensor core, dense)"),
        },
        memory=(memory_gib * GiB, f"{_A100}: A100 PCIe {memory_gib}GB, "
                                  f"{'HBM2e' if memory_gib == 80 else 'HBM2'} ({_GIB})"),
        memory_bw=(bw_gbps * GB, f"{_A100}: A100 PCIe {memory_gib}GB {bw_gbps:,g} GB/s"),
        pcie=(32 * GB, f"{_A100}: PCIe Gen4 x16, 64 GB/s {_HALF_OF}"),
        nvlink=(0.0, _A100_BRIDGE),
    )


_H100 = ("NVIDIA H100 datasheet table (H100 PCIe column) as reproduced by NVIDIA partner HPC "
         "Tech (archive-lib.hpctech.co.jp/gpuproduct/nvidia-h100.html: '* Shown with sparsity. "
         "Specifications 1/2 lower without sparsity')")


def _h100_pcie() -> DeviceSpec:
    def sparse(value: float, label: str) -> tuple[float, str]:
        return (value / 2 * TFLOPS,
                f"{_H100}: {label} {value:,g} TFLOPS* with sparsity, dense = half")
    return gpu_spec(
        "h100-pcie", "NVIDIA H100 PCIe",
        peaks={
            "float64": (51 * TFLOPS, f"{_H100}: FP64 Tensor Core 51 TFLOPS"),
            "float32": (51 * TFLOPS, f"{_H100}: FP32 51 TFLOPS"),
            "tf32": sparse(756, "TF32 Tensor Core"),
            "float16": sparse(1513, "FP16 Tensor Core"),
            "bfloat16": sparse(1513, "BFLOAT16 Tensor Core"),
            "fp8": sparse(3026, "FP8 Tensor Core"),
        },
        memory=(80 * GiB, f"{_H100}: GPU memory 80 GB HBM2e ({_GIB})"),
        memory_bw=(2000 * GB, f"{_H100}: GPU memory bandwidth 2000 GB/s"),
        pcie=(64 * GB, f"{_H100}: PCIe Gen5 128 GB/s, {_HALF_OF}"),
        nvlink=(0.0, f"{_H100}: NVLink 600 GB/s through a bridge joining pairs of cards; no "
                     "NVSwitch, so not modelled (0: a PCIe server is a PCIe cluster)"),
    )


# -- A10 ----------------------------------------------------------------------------------------
_A10 = ("NVIDIA A10 Tensor Core GPU datasheet, table 'A10 Technical Specifications and "
        "Features' (dense figures; the datasheet pairs each with its 2x sparse one), as "
        "reproduced in F.-D. Collin and G. Durif, 'GPU computing with Numba (introduction)' "
        "(CNRS / IMAG, 2024-08-26)")
_A10G = ("AWS's A10G (EC2 G5) is a different part: NVIDIA publishes no A10G datasheet, so it is "
         "not catalogued (only its memory is public: 24 GiB per GPU, AWS Batch GPU table)")


def _a10() -> DeviceSpec:
    def sheet(value: float, label: str) -> tuple[float, str]:
        return value * TFLOPS, f"{_A10}: {label} {value:g} teraFLOPS"
    return gpu_spec(
        "a10", "NVIDIA A10",
        peaks={
            "float32": sheet(31.2, "FP32"),
            "tf32": sheet(62.5, "TF32 Tensor Core"),
            "float16": sheet(125, "FP16 Tensor Core"),
            "bfloat16": sheet(125, "BFLOAT16 Tensor Core"),
        },
        memory=(24 * GiB, f"{_A10}: GPU memory 24GB GDDR6 ({_GIB}); {_A10G}"),
        memory_bw=(600 * GB, f"{_A10}: GPU memory bandwidth 600GB/s"),
        pcie=(32 * GB, f"{_A10}: Interconnect PCIe Gen4 64GB/s, {_HALF_OF}"),
        nvlink=(0.0, f"{_A10}: PCIe card, the interconnect listed is PCIe Gen4 only (no "
                     "NVLink)"),
    )


def nvidia_rows() -> list[DeviceSpec]:
    """The rows of this module, in catalog order."""
    return [_b200(), _gb200(), _l40s(), _h100_pcie(),
            _a100_pcie(40, 1555, "NVIDIA A100-PCIE-40GB"),
            _a100_pcie(80, 1935, "NVIDIA A100 80GB PCIe"), _a10()]
