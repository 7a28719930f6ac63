"""How much of a GPU's peak a GEMM of a given shape can use: tiles, waves and split-K.

A GEMM ``C[m,n] = A[m,k] @ B[k,n]`` runs as a grid of output tiles, one thread block per
tile, a block per SM at a time (the large-tile kernels of cuBLAS/CUTLASS fill an SM).
Three losses follow from the shape alone, before any kernel-quality factor:

* **tile quantisation**: a ``Tm x Tn`` tile computes padded rows and columns at the edges,
  useful fraction ``m n / (ceil(m/Tm) Tm ceil(n/Tn) Tn)``;
* **wave quantisation**: ``T`` tiles run in ``ceil(T / SMs)`` waves, the last one partly
  empty, useful fraction ``T / (ceil(T / SMs) SMs)``; a grid smaller than one wave splits
  ``k`` across blocks (split-K, at most ``k / SPLIT_K_MIN`` ways) as cuBLAS does;
* **the library's choice**: cuBLAS/cuDNN pick among several tiles (:data:`TILES`) the one
  that wastes least; a smaller tile is taken to run at the same rate per SM (its lower
  operand reuse hidden by co-resident thread blocks), so the model's choice is the
  optimistic end of what a heuristic picks.

:func:`shape_efficiency` returns the product of the three (0 < f <= 1); the calibrated
GEMM efficiency of the GPU family is the ceiling a large, well-shaped GEMM reaches, and the
two multiply. Convolutions are
implicit GEMMs (forward ``M = N P Q``, ``N = K``, ``K = C R S``; backward-data
``M = N H W``, ``N = C``, ``K = K R S``; backward-filter ``M = K``, ``N = C R S``,
``K = N P Q``), fused attention a grid of ``128``-query tiles per head.

A device with no published SM count (:data:`SM_COUNT`) gets tile quantisation only.

A validation note: charging the smaller tiles their lower arithmetic intensity
(``(Tm Tn / (Tm + Tn)) / 64`` of the 128 x 128 rate) fitted the single-GPU rows as well but
moved the held-out large-model rows from 3.6 % to 5.0 % median error, so it is not done.

**Winograd.** A 3 x 3, stride-1 convolution in fp32 on CUDA cores runs cuDNN's Winograd
algorithm (what ``cudnn.benchmark`` picks there), which does fewer multiplies than the
direct FLOP count: :data:`WINOGRAD_SPEEDUP` (Lavin & Gray, "Fast Algorithms for
Convolutional Neural Networks", CVPR 2016, Sec. 4: F(2x2, 3x3) needs 16 multiplies where
direct convolution needs 36, a factor 2.25). Tensor-core precisions (tf32, fp16, bf16,
fp8) run implicit GEMM and get no such factor.
"""

from __future__ import annotations

import math

from ddlsim.opspec import KernelCall, conv_out

#: Threadblock tiles (rows, columns) the model chooses from. 128 x 128 is the default
#: tensor-op tile of CUTLASS/cuBLAS on Volta to Hopper (e.g. vLLM's CUTLASS sm80 default
#: config, ``TileShape = GemmShape<128, 128, 64>`` for m > 128); the smaller ones are what
#: those libraries fall back to for thin problems.
TILES = ((128, 128), (128, 64), (64, 128), (64, 64))

#: Smallest slice of ``k`` one split-K block takes (elements).
SPLIT_K_MIN = 256

#: Arithmetic reduction of Winograd F(2x2, 3x3) over direct convolution (Lavin & Gray 2016).
WINOGRAD_SPEEDUP = 36 / 16

#: Streaming multiprocessors (NVIDIA) or compute units (AMD) of each catalog device, with
#: the document each count comes from.
SM_COUNT: dict[str, tuple[int, str]] = {
    "p100-sxm2-16gb": (56, "NVIDIA Tesla P100 whitepaper (2016), Table 1: 56 SMs"),
    "p40": (30, "NVIDIA Tesla P40 datasheet: 3,840 CUDA cores; Pascal GP102 has 128 per SM"),
    "v100-sxm2-16gb": (80, "NVIDIA Tesla V100 GPU architecture whitepaper (2017), Table 1"),
    "v100-sxm2-32gb": (80, "NVIDIA Tesla V100 GPU architecture whitepaper (2017), Table 1"),
    "v100-sxm3-32gb": (80, "NVIDIA Tesla V100 GPU architecture whitepaper (2017), Table 1"),
    "a100-40gb": (108, "NVIDIA A100 Tensor Core GPU architecture whitepaper (2020), Table 1"),
    "a100-80gb": (108, "NVIDIA A100 Tensor Core GPU architecture whitepaper (2020), Table 1"),
    "a100-pcie-40gb": (108, "NVIDIA A100 Tensor Core GPU architecture whitepaper (2020)"),
    "a100-pcie-80gb": (108, "NVIDIA A100 Tensor Core GPU architecture whitepaper (2020)"),
    "h100-sxm": (132, "NVIDIA H100 Tensor Core GPU architecture whitepaper (2022), Table 3"),
    "h100-pcie": (114, "NVIDIA H100 Tensor Core GPU architecture whitepaper (2022), Table 3"),
    "h200": (132, "NVIDIA H200 datasheet: the H100 SXM's GH100 with the same 132 SMs "
                  "(identical FP8/BF16 peaks at the same clock)"),
    "a10": (72, "NVIDIA A10 datasheet: 9,216 CUDA cores; Ampere GA102 has 128 per SM"),
    "l4": (58, "NVIDIA L4 datasheet: 7,424 CUDA cores; Ada AD104 has 128 per SM"),
    "l40s": (142, "NVIDIA L40S datasheet: 18,176 CUDA cores; Ada AD102 has 128 per SM"),
    "mi300x": (304, "AMD Instinct MI300X datasheet: 304 GPU compute units"),
    "mi325x": (304, "AMD Instinct MI325X datasheet: 304 GPU compute units"),
}


def gemm_dims(kc: KernelCall) -> tuple[int, int, int, int] | None:
    """``(batch, M, N, K)`` of the GEMM a gemm-like call runs, None for other ops."""
    p = kc.params
    if kc.op == "gemm":
        return 1, p["m"], p["n"], p["k"]
    if kc.op == "bmm":
        return p["b"], p["m"], p["n"], p["k"]
    if kc.op.startswith("conv2d"):
        oh = conv_out(p["h"], p["r"], p["stride"], p["pad"])
        ow = conv_out(p["w"], p["s"], p["stride"], p["pad"])
        rs = p["r"] * p["s"]
        if kc.op == "conv2d_fwd":
            return 1, p["n"] * oh * ow, p["k"], p["c"] * rs
        if kc.op == "conv2d_bwd_data":
            return 1, p["n"] * p["h"] * p["w"], p["c"], p["k"] * rs
        return 1, p["k"], p["c"] * rs, p["n"] * oh * ow
    if kc.op.startswith("flash_attn"):
        return p["b"], p["q"], p["d"], p["kv"]
    return None


def sm_count(device_name: str) -> int | None:
    """SMs (compute units) of a catalog device; None when no count is published."""
    entry = SM_COUNT.get(device_name)
    return entry[0] if entry else None


def tile_fraction(batch: int, m: int, n: int, k: int, sms: int | None,
                  tile: tuple[int, int]) -> float:
    """Useful fraction of the peak for one tile choice (see the module docstring).

    Args:
        batch, m, n, k: GEMM dimensions (elements); ``batch`` independent GEMMs.
        sms: SMs of the device, None to skip wave quantisation.
        tile: (rows, columns) of the threadblock tile.
    """
    tm, tn = tile
    gm, gn = math.ceil(m / tm), math.ceil(n / tn)
    frac = (m * n) / (gm * tm * gn * tn)
    if sms:
        tiles = batch * gm * gn
        split = max(1, min(sms // tiles, k // SPLIT_K_MIN)) if tiles < sms else 1
        blocks = tiles * split
        frac *= blocks / (math.ceil(blocks / sms) * sms)
    return frac


def winograd(kc: KernelCall, dtype: str) -> bool:
    """Whether the call runs Winograd (3 x 3, stride-1 convolution in fp32)."""
    if not kc.op.startswith("conv2d") or dtype != "float32":
        return False
    p = kc.params
    return p["r"] == 3 and p["s"] == 3 and p["stride"] == 1


def compute_fraction(kc: KernelCall, device_name: str, dtype: str) -> float:
    """Achievable compute rate over the device's peak for the call's direct FLOP count:
    :func:`shape_efficiency`, times :data:`WINOGRAD_SPEEDUP` where :func:`winograd`."""
    f = shape_efficiency(kc, device_name)
    return f * WINOGRAD_SPEEDUP if winograd(kc, dtype) else f


def shape_efficiency(kc: KernelCall, device_name: str) -> float:
    """Fraction (0 < f <= 1) of the peak a gemm-like call's shape allows on a device; 1
    for a call that is not a GEMM or has an empty dimension."""
    dims = gemm_dims(kc)
    if dims is None or min(dims) <= 0:
        return 1.0
    batch, m, n, k = dims
    # fused attention: query tiles of 128 per head, the head size whole
    tiles = ((128, n),) if kc.op.startswith("flash_attn") else TILES
    sms = sm_count(device_name)
    return max(tile_fraction(batch, m, n, k, sms, t) for t in tiles)
