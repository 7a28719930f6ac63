"""What a kernel call is: the contract between workloads, the timing harness and the cost model.

A :class:`KernelCall` names one op and its shape parameters (integers). Workloads
(:mod:`ddlsim.sim.workloads`) produce them, :mod:`ddlsim.kernels` times them and the cost
model (:mod:`ddlsim.sim.costs`) estimates them. FLOPs count a multiply-add as 2; bytes
are the minimum traffic to and from device memory (each operand read once, each result
written once), which is what a roofline needs.

This module imports only the standard library so every layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ddlsim.units import dtype_bytes

_CONV = ("n", "c", "h", "w", "k", "r", "s", "stride", "pad")
_POOL = ("n", "c", "h", "w", "kernel", "stride", "pad")

#: Every op and the shape parameters it takes, in canonical order.
OP_PARAMS: dict[str, tuple[str, ...]] = {
    "gemm": ("m", "n", "k"),  # C[m,n] = A[m,k] @ B[k,n]
    "bmm": ("b", "m", "n", "k"),  # b independent gemms
    "conv2d_fwd": _CONV,  # x[n,c,h,w] * w[k,c,r,s] -> y[n,k,p,q]
    "conv2d_bwd_data": _CONV,  # dy, w -> dx
    "conv2d_bwd_filter": _CONV,  # dy, x -> dw
    "maxpool_fwd": _POOL,
    "maxpool_bwd": _POOL,
    "avgpool_fwd": _POOL,
    "avgpool_bwd": _POOL,
    "relu_fwd": ("numel",),
    "relu_bwd": ("numel",),
    "gelu_fwd": ("numel",),
    "gelu_bwd": ("numel",),
    "add": ("numel",),  # residual add / bias add
    "batchnorm_fwd": ("n", "c", "h", "w"),  # training mode (batch statistics)
    "batchnorm_bwd": ("n", "c", "h", "w"),
    "layernorm_fwd": ("rows", "cols"),
    "layernorm_bwd": ("rows", "cols"),
    "softmax_fwd": ("rows", "cols"),
    "softmax_bwd": ("rows", "cols"),
    "softmax_xent_fwd": ("n", "classes"),  # softmax + cross-entropy loss
    "softmax_xent_bwd": ("n", "classes"),
    # fused (FlashAttention-style) attention: b query heads (batch x heads), q queries and
    # kv keys per head, head size d, g query heads per K/V head (1: multi-head attention)
    "flash_attn_fwd": ("b", "q", "kv", "d", "g"),
    "flash_attn_bwd": ("b", "q", "kv", "d", "g"),
    "embedding_fwd": ("tokens", "hidden", "vocab"),  # gather rows
    "embedding_bwd": ("tokens", "hidden", "vocab"),  # scatter-add rows
    "sgd_update": ("numel",),  # w, v <- SGD with momentum and weight decay
    "grad_sum": ("numel",),  # a += b, the reduction inside allreduce
}


@dataclass(frozen=True, slots=True)
class KernelCall:
    """One op at one shape. Build with :func:`call`; hashable, so usable as a dict key."""

    op: str
    shape: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        if self.op not in OP_PARAMS:
            raise ValueError(f"op: must be one of {', '.join(OP_PARAMS)}, got {self.op!r}")
        names = tuple(name for name, _ in self.shape)
        if names != OP_PARAMS[self.op]:
            raise ValueError(
                f"shape of {self.op}: needs parameters {OP_PARAMS[self.op]}, got {names}"
            )
        for name, value in self.shape:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"shape.{name} of {self.op}: must be an integer >= 0, "
                                 f"got {value!r}")

    @property
    def params(self) -> dict[str, int]:
        return dict(self.shape)

    @property
    def shape_key(self) -> str:
        """Canonical text form used in profile CSVs: ``'m=64,n=128,k=256'``."""
        return ",".join(f"{name}={value}" for name, value in self.shape)

    def __str__(self) -> str:
        return f"{self.op}({self.shape_key})"


def call(op: str, **params: int) -> KernelCall:
    """``call('gemm', m=64, n=128, k=256)``: parameters may be given in any order."""
    if op not in OP_PARAMS:
        raise ValueError(f"op: must be one of {', '.join(OP_PARAMS)}, got {op!r}")
    missing = [p for p in OP_PARAMS[op] if p not in params]
    extra = [p for p in params if p not in OP_PARAMS[op]]
    if missing or extra:
        raise ValueError(f"shape of {op}: needs {OP_PARAMS[op]}; missing {missing}, "
                         f"unexpected {extra}")
    return KernelCall(op, tuple((p, int(params[p])) for p in OP_PARAMS[op]))


def parse_shape_key(op: str, shape_key: str) -> KernelCall:
    """Inverse of :attr:`KernelCall.shape_key`."""
    try:
        params = {k: int(v) for k, v in (item.split("=") for item in shape_key.split(","))}
    except ValueError:
        raise ValueError(f"shape: expected 'name=int,...', got {shape_key!r}") from None
    return call(op, **params)


def conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    """Output extent of a convolution or pooling window along one axis."""
    return (size + 2 * pad - kernel) // stride + 1


def flops(kc: KernelCall) -> float:
    """Floating-point operations of one call (multiply-add = 2)."""
    p = kc.params
    op = kc.op
    if op == "gemm":
        return 2.0 * p["m"] * p["n"] * p["k"]
    if op == "bmm":
        return 2.0 * p["b"] * p["m"] * p["n"] * p["k"]
    if op.startswith("conv2d"):
        oh = conv_out(p["h"], p["r"], p["stride"], p["pad"])
        ow = conv_out(p["w"], p["s"], p["stride"], p["pad"])
        return 2.0 * p["n"] * p["k"] * oh * ow * p["c"] * p["r"] * p["s"]
    if op.startswith("flash_attn"):
        # the matmuls of unfused attention: S = Q K^T, O = P V forward; dP, dV, dQ, dK
        # backward (the score recomputation inside FlashAttention's backward is not
        # counted, nor the softmax, as Megatron's FLOP formula counts neither)
        return (4.0 if op.endswith("fwd") else 8.0) * p["b"] * p["q"] * p["kv"] * p["d"]
    if op.endswith("pool_fwd") or op.endswith("pool_bwd"):
        oh = conv_out(p["h"], p["kernel"], p["stride"], p["pad"])
        ow = conv_out(p["w"], p["kernel"], p["stride"], p["pad"])
        return 1.0 * p["n"] * p["c"] * oh * ow * p["kernel"] ** 2
    if op in ("relu_fwd", "relu_bwd", "add", "grad_sum"):
        return 1.0 * p["numel"]
    if op in ("gelu_fwd", "gelu_bwd"):
        return 10.0 * p["numel"]  # tanh approximation, about ten operations per element
    if op.startswith("batchnorm"):
        return (5.0 if op.endswith("fwd") else 8.0) * p["n"] * p["c"] * p["h"] * p["w"]
    if op.startswith("layernorm"):
        return (5.0 if op.endswith("fwd") else 8.0) * p["rows"] * p["cols"]
    if op.startswith("softmax_xent"):
        return 5.0 * p["n"] * p["classes"]
    if op.startswith("softmax"):
        return (5.0 if op.endswith("fwd") else 4.0) * p["rows"] * p["cols"]
    if op == "embedding_fwd":
        return 0.0
    if op == "embedding_bwd":
        return 1.0 * p["tokens"] * p["hidden"]
    if op == "sgd_update":
        return 5.0 * p["numel"]  # v = mu*v + g + wd*w ; w -= lr*v
    raise AssertionError(f"no FLOP formula for {op}")  # pragma: no cover - OP_PARAMS guards


def elements_moved(kc: KernelCall) -> float:
    """Elements read plus written by one call (multiply by the dtype size for bytes)."""
    p = kc.params
    op = kc.op
    if op == "gemm":
        return 1.0 * (p["m"] * p["k"] + p["k"] * p["n"] + p["m"] * p["n"])
    if op == "bmm":
        return 1.0 * p["b"] * (p["m"] * p["k"] + p["k"] * p["n"] + p["m"] * p["n"])
    if op.startswith("conv2d"):
        oh = conv_out(p["h"], p["r"], p["stride"], p["pad"])
        ow = conv_out(p["w"], p["s"], p["stride"], p["pad"])
        x = p["n"] * p["c"] * p["h"] * p["w"]
        wt = p["k"] * p["c"] * p["r"] * p["s"]
        y = p["n"] * p["k"] * oh * ow
        return 1.0 * (x + wt + y)
    if op.endswith("pool_fwd") or op.endswith("pool_bwd"):
        oh = conv_out(p["h"], p["kernel"], p["stride"], p["pad"])
        ow = conv_out(p["w"], p["kernel"], p["stride"], p["pad"])
        x = p["n"] * p["c"] * p["h"] * p["w"]
        y = p["n"] * p["c"] * oh * ow
        return 1.0 * (x + y) if op.endswith("fwd") else 1.0 * (x + 2 * y)
    if op.startswith("flash_attn"):
        # scores never reach memory: forward reads Q, K, V and writes O; backward reads
        # Q, K, V, O, dO and writes dQ, dK, dV (K, V: b/g heads)
        per_q, per_kv = p["b"] * p["q"] * p["d"], p["b"] / max(p["g"], 1) * p["kv"] * p["d"]
        return 2.0 * (per_q + per_kv) if op.endswith("fwd") else 4.0 * (per_q + per_kv)
    if op in ("relu_fwd", "gelu_fwd"):
        return 2.0 * p["numel"]
    if op in ("relu_bwd", "gelu_bwd", "add", "grad_sum"):
        return 3.0 * p["numel"]
    if op.startswith("batchnorm"):
        n = p["n"] * p["c"] * p["h"] * p["w"]
        return 2.0 * n if op.endswith("fwd") else 3.0 * n
    if op.startswith("layernorm") or (op.startswith("softmax") and "xent" not in op):
        n = p["rows"] * p["cols"]
        return 2.0 * n if op.endswith("fwd") else 3.0 * n
    if op.startswith("softmax_xent"):
        return 2.0 * p["n"] * p["classes"]
    if op == "embedding_fwd":
        return 2.0 * p["tokens"] * p["hidden"]
    if op == "embedding_bwd":
        return 2.0 * p["tokens"] * p["hidden"]
    if op == "sgd_update":
        return 5.0 * p["numel"]  # read w, g, v; write w, v
    raise AssertionError(f"no traffic formula for {op}")  # pragma: no cover


def bytes_moved(kc: KernelCall, dtype: str) -> float:
    """Minimum device-memory traffic of one call in bytes, for elements of ``dtype``."""
    return elements_moved(kc) * dtype_bytes(dtype)
