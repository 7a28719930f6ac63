"""Intel Gaudi 2 and Gaudi 3 accelerators, each number from Intel's published material
(conventions in :mod:`ddlsim.sim.hardware`; a Gaudi row is of kind ``"gpu"``: an accelerator
with its own memory, which is what the kind means to the simulator).

* **Peaks.** Intel publishes dense matrix-engine (MME) rates. Gaudi 2's only published one
  is BF16 (432 TFLOPS); its FP8 figure is quoted as 865 by one secondary source and 835 by
  another, and no FP32/TF32/FP16 rate is published, so those dtypes are left out (a job in
  them is refused, naming the dtypes Gaudi 2 has). On Gaudi 3 a float32 GEMM runs on the MME
  too, so ``float32`` is the MME FP32 rate (229 TFLOPS), not the TPC vector rate
  (14.35 TFLOPS): on a GPU ``float32`` is the CUDA-core rate, which is what a float32 GEMM
  gets there; on Gaudi it is the MME's.
* **Scale-up link.** Gaudi has no NVLink or switch inside the box: each accelerator has 24
  on-die RoCE v2 ports (100 GbE on Gaudi 2, 200 GbE on Gaudi 3), 21 of them wired
  all-to-all to the 7 other accelerators of an 8-card server (3 ports per peer) and 3 for
  scale-out. ``nvlink_bw_bytes_per_s`` (the catalog's GPU-to-GPU field) holds the sum of the
  21 scale-up ports, one direction, as Intel's documentation states it; one peer gets 3/21
  of it. The 3 scale-out ports are the node's NICs, a cluster preset's business.
"""

from __future__ import annotations

from ddlsim.sim.device_spec import DeviceSpec, gpu_spec
from ddlsim.units import GB, TFLOPS, GiB

_GIB = "vendor 'GB' taken as GiB"
_HALF_OF = "bidirectional / 2 = per direction"
_HC2024 = ("Intel, 'Intel Gaudi 3 AI Accelerator: Architected for Gen AI Training and "
           "Inference' (R. Kaplan, Hot Chips 2024, August 2024), as reproduced at "
           "sgpjbg.com/baogao/465025.html")
_GENERATIONS = _HC2024 + ", table 'Gaudi Product Generations'"
_G3_SPEC = _HC2024 + ", table 'Intel Gaudi 3 Spec and Block Diagram'"
_NETWORK = ("Intel Gaudi documentation 'Intel Gaudi Network Configuration' "
            "(docs.habana.ai/en/latest/Management_and_Monitoring/Network_Configuration/)")
_ML_ENG = ("S. Bekman, Machine Learning Engineering, compute/accelerator/README (github.com/"
           "stas00/ml-engineering), table of dense peak TFLOPS, row 'Intel Gaudi3', citing the "
           "Intel Gaudi 3 AI accelerator white paper; agrees with hmc-tech.com/gpu/intel-gaudi-"
           "3-vs-nvidia-l40 ({hmc})")
_HF_MEMORY = ("Hugging Face Transformers docs 'Intel Gaudi' (huggingface.co/docs/transformers/"
              "perf_train_gaudi): {gb}GB on Gaudi {gen}")


def _gaudi2() -> DeviceSpec:
    return gpu_spec(
        "gaudi2", "Intel Gaudi 2",
        peaks={
            "bfloat16": (432 * TFLOPS, f"{_GENERATIONS}: Gaudi 2 Peak Compute (BF16) 432 "
                                       "TFLOPs (MME, dense)"),
        },
        memory=(96 * GiB, f"{_GENERATIONS}: Gaudi 2 HBM Capacity 96 GB ({_GIB}); "
                          + _HF_MEMORY.format(gb=96, gen=2)),
        memory_bw=(2460 * GB, f"{_GENERATIONS}: Gaudi 2 Peak HBM BW 2.46 TB/s (other Intel "
                              "material rounds it to 2.45 TB/s)"),
        pcie=(32 * GB, f"{_GENERATIONS}: Gaudi 2 Peak PCIe BW (bi-directional) 64 GB/s, "
                       f"{_HALF_OF} (PCIe Gen4 x16)"),
        nvlink=(262.5 * GB, f"{_NETWORK}: Gaudi 2 scale-up 21*100Gbps = 262.5 GB/s "
                            "unidirectional (21 of 24 100 GbE RoCE ports, all-to-all to the 7 "
                            "other Gaudi 2 of an HLS-2 box, 3 per peer = 37.5 GB/s per peer; "
                            "the other 3 ports scale out)"),
    )


def _gaudi3() -> DeviceSpec:
    def ml_eng(value: float, label: str, hmc: str) -> tuple[float, str]:
        return (value * TFLOPS,
                f"{_ML_ENG.format(hmc=hmc)}: {label} {value:g} TFLOPS (MME, dense)")
    return gpu_spec(
        "gaudi3", "Intel Gaudi 3 (OAM)",
        peaks={
            "float32": ml_eng(229, "fp32", "229.38 TFLOPS Tensor; TPC vector FP32 14.35 "
                                           "TFLOPS, not used"),
            "tf32": ml_eng(459, "tf32", "458.75 TFLOPS Tensor"),
            "float16": ml_eng(459, "fp16", "458.75 TFLOPS Tensor"),
            "bfloat16": (1835 * TFLOPS, f"{_G3_SPEC}: BF16 Matrix TFLOPs 1835"),
            "fp8": (1835 * TFLOPS, f"{_G3_SPEC}: FP8 Matrix TFLOPs 1835"),
        },
        memory=(128 * GiB, f"{_G3_SPEC}: HBM Capacity 128 GB ({_GIB}); "
                           + _HF_MEMORY.format(gb=128, gen=3)),
        memory_bw=(3670 * GB, f"{_G3_SPEC}: HBM Bandwidth 3.67 TB/s"),
        pcie=(64 * GB, f"{_G3_SPEC}: Host Interface PCIe Gen5 x16, Host Interface Peak BW "
                       "128 GB/s bidirectional; / 2 = per direction"),
        nvlink=(525 * GB, f"{_NETWORK}: Gaudi 3 scale-up 21*200Gbps = 21*25 GB/s = 525 GB/s "
                          "unidirectional (21 of 24 200 GbE RoCE ports, all-to-all to the 7 "
                          "other Gaudi 3 of an HLS-3 box, 3 per peer = 75 GB/s per peer; the "
                          "other 3 ports scale out)"),
    )


def intel_rows() -> list[DeviceSpec]:
    """The rows of this module, in catalog order."""
    return [_gaudi2(), _gaudi3()]
