"""Training ops on NumPy or CuPy arrays: the kernels ddlsim times and trains with.

Every op takes arrays of one backend and picks the array module with
:func:`~ddlsim.kernels.backend.array_module`, so the same code runs on the CPU and on a
GPU. Layout is NCHW; convolution weights are ``[k, c, r, s]`` (out channels, in channels,
kernel height, kernel width); linear weights are ``[out, in]``. Results keep the input
dtype (float32 normally; float16, and bfloat16 where the backend has it).

Shapes in docstrings are array shapes (element counts, dimensionless); ``stride``, ``pad``
and ``kernel`` are in elements; learning rates and ``eps`` are dimensionless.

:func:`make_inputs` and :func:`run` map each op of :data:`ddlsim.opspec.OP_PARAMS` onto
these functions, so the timing harness times exactly what training runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ddlsim.kernels.ops.attention import flash_attention_backward, flash_attention_forward
from ddlsim.kernels.ops.conv import (
    COL_BLOCK_BYTES,
    bias_add,
    block,
    conv2d_backward_data,
    conv2d_backward_filter,
    conv2d_forward,
    conv_dims,
)
from ddlsim.kernels.ops.layers import (
    Array,
    NormCache,
    add,
    batchnorm_backward,
    batchnorm_forward,
    bmm,
    embedding_backward,
    embedding_forward,
    gelu_backward,
    gelu_forward,
    gemm,
    grad_sum,
    layernorm_backward,
    layernorm_forward,
    linear_backward,
    linear_forward,
    relu_backward,
    relu_forward,
    sgd_momentum_update,
    softmax_backward,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
    softmax_forward,
)
from ddlsim.kernels.ops.pool import (
    avgpool2d_backward,
    avgpool2d_forward,
    maxpool2d_backward,
    maxpool2d_forward,
    pool_dims,
)
from ddlsim.opspec import KernelCall

__all__ = [
    "COL_BLOCK_BYTES", "NORM_EPS", "SGD_LR", "SGD_MOMENTUM", "SGD_WEIGHT_DECAY", "Array",
    "NormCache", "add", "avgpool2d_backward", "avgpool2d_forward", "batchnorm_backward",
    "batchnorm_forward", "bias_add", "block", "bmm", "conv2d_backward_data",
    "conv2d_backward_filter", "conv2d_forward", "conv_dims", "embedding_backward",
    "embedding_forward", "flash_attention_backward", "flash_attention_forward",
    "gelu_backward", "gelu_forward", "gemm", "grad_sum",
    "layernorm_backward", "layernorm_forward", "linear_backward", "linear_forward",
    "make_inputs", "maxpool2d_backward", "maxpool2d_forward", "pool_dims", "relu_backward",
    "relu_forward", "run", "sgd_momentum_update", "softmax_backward",
    "softmax_cross_entropy_backward", "softmax_cross_entropy_forward", "softmax_forward",
]

# The im2col block size under its former private name (tests/kernels/test_ops.py calls it).
_block = block

# --------------------------------------------------------------------------- harness glue

#: Hyper-parameters used when the harness times an op that needs them.
SGD_LR = 0.01
SGD_MOMENTUM = 0.9
SGD_WEIGHT_DECAY = 1e-4
NORM_EPS = 1e-5


def _conv_shapes(p: dict[str, int]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    x_shape = (p["n"], p["c"], p["h"], p["w"])
    w_shape = (p["k"], p["c"], p["r"], p["s"])
    oh, ow = conv_dims(x_shape, w_shape, p["stride"], p["pad"])
    return x_shape, w_shape, (p["n"], p["k"], oh, ow)


def make_inputs(kc: KernelCall, xp: Any, dtype: Any, rng: np.random.Generator) -> tuple:
    """Random inputs for one call of ``kc`` as arrays of ``xp`` in ``dtype``.

    Floats are standard normal (drawn on the host from ``rng``, then copied); index arrays
    are int64. Ops whose backward needs forward state (pooling argmax, norm caches,
    softmax probabilities) get it by running the forward op once here. The result is a
    flat tuple of arrays that :func:`run` consumes.
    """
    p = kc.params

    def f(*shape: int) -> Array:
        host = rng.standard_normal(shape, dtype=np.float32)
        return xp.asarray(host).astype(dtype)

    def ints(high: int, *shape: int) -> Array:
        return xp.asarray(rng.integers(0, max(high, 1), size=shape, dtype=np.int64))

    op = kc.op
    if op == "gemm":
        return f(p["m"], p["k"]), f(p["k"], p["n"])
    if op == "bmm":
        return f(p["b"], p["m"], p["k"]), f(p["b"], p["k"], p["n"])
    if op.startswith("conv2d"):
        x_shape, w_shape, y_shape = _conv_shapes(p)
        if op == "conv2d_fwd":
            return f(*x_shape), f(*w_shape)
        if op == "conv2d_bwd_data":
            return f(*y_shape), f(*w_shape)
        return f(*y_shape), f(*x_shape)
    if op in ("maxpool_fwd", "avgpool_fwd"):
        return (f(p["n"], p["c"], p["h"], p["w"]),)
    if op == "maxpool_bwd":
        y, argmax = maxpool2d_forward(f(p["n"], p["c"], p["h"], p["w"]), p["kernel"],
                                      p["stride"], p["pad"])
        return f(*y.shape), argmax
    if op == "avgpool_bwd":
        oh, ow = pool_dims((p["n"], p["c"], p["h"], p["w"]), p["kernel"], p["stride"], p["pad"])
        return (f(p["n"], p["c"], oh, ow),)
    if op in ("relu_fwd", "gelu_fwd"):
        return (f(p["numel"]),)
    if op in ("relu_bwd", "gelu_bwd", "add", "grad_sum"):
        return f(p["numel"]), f(p["numel"])
    if op.startswith("batchnorm"):
        x, gamma, beta = f(p["n"], p["c"], p["h"], p["w"]), f(p["c"]), f(p["c"])
        if op == "batchnorm_fwd":
            return x, gamma, beta
        return (f(*x.shape), *batchnorm_forward(x, gamma, beta, NORM_EPS)[1])
    if op.startswith("layernorm"):
        x, gamma, beta = f(p["rows"], p["cols"]), f(p["cols"]), f(p["cols"])
        if op == "layernorm_fwd":
            return x, gamma, beta
        return (f(*x.shape), *layernorm_forward(x, gamma, beta, NORM_EPS)[1])
    if op == "softmax_fwd":
        return (f(p["rows"], p["cols"]),)
    if op == "softmax_bwd":
        return f(p["rows"], p["cols"]), softmax_forward(f(p["rows"], p["cols"]))
    if op == "softmax_xent_fwd":
        return f(p["n"], p["classes"]), ints(p["classes"], p["n"])
    if op == "softmax_xent_bwd":
        return softmax_forward(f(p["n"], p["classes"])), ints(p["classes"], p["n"])
    if op == "embedding_fwd":
        return f(p["vocab"], p["hidden"]), ints(p["vocab"], p["tokens"])
    if op == "embedding_bwd":
        return f(p["tokens"], p["hidden"]), ints(p["vocab"], p["tokens"])
    if op == "sgd_update":
        return f(p["numel"]), f(p["numel"]), xp.zeros(p["numel"], dtype=dtype)
    if op.startswith("flash_attn"):
        heads_kv = max(p["b"] // max(p["g"], 1), 1)
        q, k, v = f(p["b"], p["q"], p["d"]), f(heads_kv, p["kv"], p["d"]), f(heads_kv, p["kv"],
                                                                            p["d"])
        if op == "flash_attn_fwd":
            return q, k, v
        return (f(p["b"], p["q"], p["d"]), q, k, v,
                *flash_attention_forward(q, k, v, max(p["g"], 1)))
    raise AssertionError(f"make_inputs: no inputs for op {op!r}")  # pragma: no cover


def run(kc: KernelCall, inputs: tuple) -> Any:
    """Execute exactly the op ``kc.op`` on ``inputs`` from :func:`make_inputs`.

    Returns the op's result (``None`` for the in-place ``sgd_update``). Does not
    synchronise a GPU: the caller does (see ``Backend.synchronize``).
    """
    p = kc.params
    op = kc.op
    if op == "gemm":
        return gemm(*inputs)
    if op == "bmm":
        return bmm(*inputs)
    if op.startswith("conv2d"):
        x_shape, w_shape, _ = _conv_shapes(p)
        if op == "conv2d_fwd":
            return conv2d_forward(inputs[0], inputs[1], p["stride"], p["pad"])
        if op == "conv2d_bwd_data":
            return conv2d_backward_data(inputs[0], inputs[1], x_shape, p["stride"], p["pad"])
        return conv2d_backward_filter(inputs[0], inputs[1], w_shape, p["stride"], p["pad"])
    if op.endswith("pool_fwd") or op.endswith("pool_bwd"):
        geom = (p["kernel"], p["stride"], p["pad"])
        x_shape = (p["n"], p["c"], p["h"], p["w"])
        if op == "maxpool_fwd":
            return maxpool2d_forward(inputs[0], *geom)
        if op == "maxpool_bwd":
            return maxpool2d_backward(inputs[0], inputs[1], x_shape, *geom)
        if op == "avgpool_fwd":
            return avgpool2d_forward(inputs[0], *geom)
        return avgpool2d_backward(inputs[0], x_shape, *geom)
    simple = {
        "relu_fwd": relu_forward, "relu_bwd": relu_backward, "gelu_fwd": gelu_forward,
        "gelu_bwd": gelu_backward, "add": add, "grad_sum": grad_sum,
        "softmax_fwd": softmax_forward, "softmax_bwd": softmax_backward,
        "softmax_xent_fwd": softmax_cross_entropy_forward,
        "softmax_xent_bwd": softmax_cross_entropy_backward,
        "embedding_fwd": embedding_forward,
    }
    if op in simple:
        return simple[op](*inputs)
    if op == "batchnorm_fwd":
        return batchnorm_forward(*inputs, NORM_EPS)
    if op == "batchnorm_bwd":
        return batchnorm_backward(inputs[0], NormCache(*inputs[1:]))
    if op == "layernorm_fwd":
        return layernorm_forward(*inputs, NORM_EPS)
    if op == "layernorm_bwd":
        return layernorm_backward(inputs[0], NormCache(*inputs[1:]))
    if op == "embedding_bwd":
        return embedding_backward(inputs[0], inputs[1], p["vocab"])
    if op == "sgd_update":
        return sgd_momentum_update(*inputs, SGD_LR, SGD_MOMENTUM, SGD_WEIGHT_DECAY)
    if op == "flash_attn_fwd":
        return flash_attention_forward(*inputs, max(p["g"], 1))
    if op == "flash_attn_bwd":
        return flash_attention_backward(*inputs, max(p["g"], 1))
    raise AssertionError(f"run: no kernel for op {op!r}")  # pragma: no cover
