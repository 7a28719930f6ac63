"""ddlsim.kernels.ops against float64 references: naive loops, finite differences, hand steps.

Structure: (1) every op in float64 on NumPy against a naive nested-loop / per-row
reference; (2) every backward op against central finite differences of its forward op in
float64; (3) the same ops in float32 (all backends) and float16 (NumPy) against the
float64 results of (1)-(2); (4) make_inputs + run for every op of OP_PARAMS.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ddlsim.errors import ConfigError
from ddlsim.kernels import ops
from ddlsim.opspec import OP_PARAMS, call, conv_out

# float64 op vs float64 naive loop: both are exact up to summation order, so the error is a
# few ulps times the reduction length (< 100 here): 1e-12 relative is far above that and
# far below any real bug.
F64_RTOL, F64_ATOL = 1e-12, 1e-12
# Central differences with step h = 1e-6 in float64: truncation ~h^2 * f''' ~ 1e-12 and
# rounding ~ 1e-16 * |f| / h ~ 1e-9 for |f| ~ 10 (sum of up to ~300 products of N(0,1)).
FD_STEP = 1e-6
FD_RTOL, FD_ATOL = 1e-6, 1e-7
# float32 vs float64, normwise (max error over max |reference|): unit roundoff 6e-8 times
# reductions of at most ~60 terms and a few ops in sequence stays below ~5e-6.
F32_RTOL = 2e-5
# float16: unit roundoff 4.9e-4; the same reductions (NumPy accumulates float16 sums in
# float32, products round in float16) stay below ~1e-2 normwise.
F16_RTOL = 2e-2

CONV_CASES = [  # n, c, h, w, k, r, s, stride, pad
    (2, 3, 7, 5, 5, 3, 2, 2, 1),  # odd sizes, non-square kernel, stride 2, pad 1
    (2, 3, 6, 6, 4, 1, 1, 1, 0),  # 1x1
    (1, 2, 5, 7, 3, 3, 3, 1, 1),  # "same" 3x3
    (3, 2, 8, 7, 2, 2, 3, 3, 0),  # stride 3, no pad, ragged edge
]
POOL_CASES = [  # n, c, h, w, kernel, stride, pad
    (2, 3, 7, 5, 3, 2, 1),  # ResNet stem pool geometry on an odd image
    (1, 2, 6, 6, 2, 2, 0),  # non-overlapping
    (2, 2, 5, 4, 3, 1, 1),  # heavily overlapping windows
]


def rng_for(name: str) -> np.random.Generator:
    """A fresh generator per test, seeded from the test's own label (stable across runs)."""
    return np.random.default_rng(sum(map(ord, name)) * 7919)


def assert_close(got, ref, rtol: float, atol: float = 0.0, what: str = "") -> None:
    """Normwise check: max |got - ref| <= atol + rtol * max |ref|."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    err = float(np.max(np.abs(got - ref))) if ref.size else 0.0
    bound = atol + rtol * (float(np.max(np.abs(ref))) if ref.size else 0.0)
    assert err <= bound, f"{what}: max error {err:.3g} > {bound:.3g}"


def fd_grad(f, x: np.ndarray) -> np.ndarray:
    """Central finite-difference gradient of the scalar function ``f()`` w.r.t. ``x`` (in place)."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + FD_STEP
        up = f()
        x[idx] = old - FD_STEP
        down = f()
        x[idx] = old
        g[idx] = (up - down) / (2 * FD_STEP)
    return g


# --------------------------------------------------------------------------- naive references


def naive_conv(x, w, stride, pad):
    n, c, h, wd = x.shape
    k, _, r, s = w.shape
    p, q = conv_out(h, r, stride, pad), conv_out(wd, s, stride, pad)
    y = np.zeros((n, k, p, q))
    for b in range(n):
        for o in range(k):
            for i in range(p):
                for j in range(q):
                    acc = 0.0
                    for ci in range(c):
                        for di in range(r):
                            for dj in range(s):
                                hi, wj = i * stride + di - pad, j * stride + dj - pad
                                if 0 <= hi < h and 0 <= wj < wd:
                                    acc += x[b, ci, hi, wj] * w[o, ci, di, dj]
                    y[b, o, i, j] = acc
    return y


def naive_conv_grads(dy, x, w, stride, pad):
    """dx and dw of the naive convolution by the chain rule, loop by loop."""
    n, c, h, wd = x.shape
    k, _, r, s = w.shape
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for b, o, i, j in np.ndindex(dy.shape):
        for ci, di, dj in np.ndindex(c, r, s):
            hi, wj = i * stride + di - pad, j * stride + dj - pad
            if 0 <= hi < h and 0 <= wj < wd:
                dx[b, ci, hi, wj] += dy[b, o, i, j] * w[o, ci, di, dj]
                dw[o, ci, di, dj] += dy[b, o, i, j] * x[b, ci, hi, wj]
    return dx, dw


def naive_pool(x, kernel, stride, pad, kind):
    n, c, h, w = x.shape
    p, q = conv_out(h, kernel, stride, pad), conv_out(w, kernel, stride, pad)
    y = np.zeros((n, c, p, q))
    for b, ch, i, j in np.ndindex(y.shape):
        vals = [x[b, ch, i * stride + di - pad, j * stride + dj - pad]
                if 0 <= i * stride + di - pad < h and 0 <= j * stride + dj - pad < w
                else (-math.inf if kind == "max" else 0.0)
                for di in range(kernel) for dj in range(kernel)]
        y[b, ch, i, j] = max(vals) if kind == "max" else sum(vals) / kernel**2
    return y


# --------------------------------------------------------------------------- families
# Each family builds float64 host inputs from an rng and returns {name: output} computed by
# ops on backend ``xp`` in ``dtype``; tests compare these dicts across precisions.


def to_xp(xp, dtype, *arrays):
    return tuple(xp.asarray(a.astype(dtype)) if a.dtype.kind == "f" else xp.asarray(a)
                 for a in arrays)


def fam_gemm(xp, dtype, rng):
    a, b, ba, bb = (rng.standard_normal(s) for s in [(5, 7), (7, 3), (2, 5, 7), (2, 7, 3)])
    a, b, ba, bb = to_xp(xp, dtype, a, b, ba, bb)
    return {"gemm": ops.gemm(a, b), "bmm": ops.bmm(ba, bb)}


def conv_inputs(rng, case):
    n, c, h, w, k, r, s, stride, pad = case
    p, q = conv_out(h, r, stride, pad), conv_out(w, s, stride, pad)
    return (rng.standard_normal((n, c, h, w)), rng.standard_normal((k, c, r, s)),
            rng.standard_normal((n, k, p, q)))


def fam_conv(case):
    def fam(xp, dtype, rng):
        stride, pad = case[7], case[8]
        x, w, dy = to_xp(xp, dtype, *conv_inputs(rng, case))
        return {"y": ops.conv2d_forward(x, w, stride, pad),
                "dx": ops.conv2d_backward_data(dy, w, x.shape, stride, pad),
                "dw": ops.conv2d_backward_filter(dy, x, w.shape, stride, pad)}
    return fam


def fam_pool(case):
    def fam(xp, dtype, rng):
        n, c, h, w, kernel, stride, pad = case
        x = rng.standard_normal((n, c, h, w))
        p, q = conv_out(h, kernel, stride, pad), conv_out(w, kernel, stride, pad)
        x, dy = to_xp(xp, dtype, x, rng.standard_normal((n, c, p, q)))
        ymax, arg = ops.maxpool2d_forward(x, kernel, stride, pad)
        return {"max": ymax, "dmax": ops.maxpool2d_backward(dy, arg, x.shape, kernel, stride, pad),
                "avg": ops.avgpool2d_forward(x, kernel, stride, pad),
                "davg": ops.avgpool2d_backward(dy, x.shape, kernel, stride, pad)}
    return fam


def fam_pointwise(xp, dtype, rng):
    x, dy, b = to_xp(xp, dtype, rng.standard_normal((3, 4, 5)) * 2,
                     rng.standard_normal((3, 4, 5)), rng.standard_normal(5))
    return {"relu": ops.relu_forward(x), "drelu": ops.relu_backward(dy, x),
            "gelu": ops.gelu_forward(x), "dgelu": ops.gelu_backward(dy, x),
            "add": ops.add(x, dy), "bias": ops.add(x, b)}


def fam_norms(xp, dtype, rng):
    x4, g4, b4, dy4 = to_xp(xp, dtype, rng.standard_normal((3, 4, 5, 3)) * 2 + 1,
                            rng.standard_normal(4), rng.standard_normal(4),
                            rng.standard_normal((3, 4, 5, 3)))
    x3, g3, b3, dy3 = to_xp(xp, dtype, rng.standard_normal((2, 3, 7)) - 0.5,
                            rng.standard_normal(7), rng.standard_normal(7),
                            rng.standard_normal((2, 3, 7)))
    ybn, cbn = ops.batchnorm_forward(x4, g4, b4, 1e-5)
    yln, cln = ops.layernorm_forward(x3, g3, b3, 1e-5)
    dbn, dln = ops.batchnorm_backward(dy4, cbn), ops.layernorm_backward(dy3, cln)
    return {"bn": ybn, "bn_dx": dbn[0], "bn_dg": dbn[1], "bn_db": dbn[2],
            "ln": yln, "ln_dx": dln[0], "ln_dg": dln[1], "ln_db": dln[2]}


def fam_softmax(xp, dtype, rng):
    x, dy, logits = to_xp(xp, dtype, rng.standard_normal((4, 9)) * 3,
                          rng.standard_normal((4, 9)), rng.standard_normal((6, 5)) * 2)
    (labels,) = to_xp(xp, dtype, rng.integers(0, 5, size=6))
    y = ops.softmax_forward(x)
    loss, probs = ops.softmax_cross_entropy_forward(logits, labels)
    return {"softmax": y, "dsoftmax": ops.softmax_backward(dy, y), "loss": loss,
            "probs": probs, "dlogits": ops.softmax_cross_entropy_backward(probs, labels)}


def fam_embed_linear(xp, dtype, rng):
    table, dy_e, x, w, b, dy_l = to_xp(
        xp, dtype, rng.standard_normal((7, 4)), rng.standard_normal((3, 5, 4)),
        rng.standard_normal((2, 3, 6)), rng.standard_normal((4, 6)), rng.standard_normal(4),
        rng.standard_normal((2, 3, 4)))
    (ids,) = to_xp(xp, dtype, np.array([[0, 3, 3, 6, 1], [3, 0, 2, 2, 2], [5, 6, 6, 0, 3]]))
    dx, dw, db = ops.linear_backward(dy_l, x, w)
    return {"emb": ops.embedding_forward(table, ids),
            "demb": ops.embedding_backward(dy_e, ids, 7),
            "lin": ops.linear_forward(x, w, b), "lin_dx": dx, "lin_dw": dw, "lin_db": db}


FAMILIES = {
    "gemm": fam_gemm, "pointwise": fam_pointwise, "norms": fam_norms, "softmax": fam_softmax,
    "embed_linear": fam_embed_linear,
    **{f"conv{i}": fam_conv(case) for i, case in enumerate(CONV_CASES)},
    **{f"pool{i}": fam_pool(case) for i, case in enumerate(POOL_CASES)},
}


def float64_outputs(name):
    return {k: np.asarray(v) for k, v in FAMILIES[name](np, np.float64, rng_for(name)).items()}


# --------------------------------------------------------------------------- (1) float64 vs naive


def test_gemm_and_bmm_match_loops():
    rng = rng_for("gemm")
    a, b, ba, bb = (rng.standard_normal(s) for s in [(5, 7), (7, 3), (2, 5, 7), (2, 7, 3)])
    out = float64_outputs("gemm")
    ref = np.array([[sum(a[i, t] * b[t, j] for t in range(7)) for j in range(3)]
                    for i in range(5)])
    assert_close(out["gemm"], ref, F64_RTOL, F64_ATOL, "gemm")
    bref = np.stack([ba[i] @ bb[i] for i in range(2)])
    assert_close(out["bmm"], bref, F64_RTOL, F64_ATOL, "bmm")


@pytest.mark.parametrize("index", range(len(CONV_CASES)))
def test_conv_matches_naive_loops(index):
    case = CONV_CASES[index]
    x, w, dy = conv_inputs(rng_for(f"conv{index}"), case)
    out = float64_outputs(f"conv{index}")
    stride, pad = case[7], case[8]
    assert_close(out["y"], naive_conv(x, w, stride, pad), F64_RTOL, F64_ATOL, "conv y")
    dx, dw = naive_conv_grads(dy, x, w, stride, pad)
    assert_close(out["dx"], dx, F64_RTOL, F64_ATOL, "conv dx")
    assert_close(out["dw"], dw, F64_RTOL, F64_ATOL, "conv dw")


def test_conv_blocks_over_the_batch_give_the_same_result(monkeypatch):
    """Force 2-image im2col blocks with a 1-image remainder: same answer as one block."""
    case = (3, 2, 6, 5, 3, 3, 2, 1, 1)
    x, w, dy = conv_inputs(np.random.default_rng(5), case)
    whole = fam_conv(case)(np, np.float64, np.random.default_rng(5))
    per_image = 2 * 3 * 2 * conv_out(6, 3, 1, 1) * conv_out(5, 2, 1, 1) * 8
    monkeypatch.setitem(ops.COL_BLOCK_BYTES, "numpy", 2 * per_image)
    assert ops._block(3, per_image, np) == 2
    blocked = fam_conv(case)(np, np.float64, np.random.default_rng(5))
    for key in whole:
        assert_close(blocked[key], whole[key], F64_RTOL, F64_ATOL, key)
    assert_close(blocked["y"], naive_conv(x, w, 1, 1), F64_RTOL, F64_ATOL, "blocked y")


@pytest.mark.parametrize("index", range(len(POOL_CASES)))
def test_pools_match_naive_loops(index):
    n, c, h, w, kernel, stride, pad = POOL_CASES[index]
    x = rng_for(f"pool{index}").standard_normal((n, c, h, w))
    out = float64_outputs(f"pool{index}")
    assert_close(out["max"], naive_pool(x, kernel, stride, pad, "max"), F64_RTOL, 0, "max")
    assert_close(out["avg"], naive_pool(x, kernel, stride, pad, "avg"), F64_RTOL, F64_ATOL, "avg")


def test_maxpool_argmax_first_maximum_and_padding_never_wins():
    x = -np.ones((1, 1, 2, 2))  # all equal and negative, padding is -inf
    y, arg = ops.maxpool2d_forward(x, 3, 1, 1)
    np.testing.assert_array_equal(y, -np.ones((1, 1, 2, 2)))
    # every window holds the whole 2x2 image; a tie goes to the first element in window
    # order, x[0, 0], which sits at window offset i*3 + j = 4, 3, 1, 0 for the four windows
    np.testing.assert_array_equal(arg[0, 0], [[4, 3], [1, 0]])
    dx = ops.maxpool2d_backward(np.ones_like(y), arg, x.shape, 3, 1, 1)
    np.testing.assert_array_equal(dx[0, 0], [[4, 0], [0, 0]])


def test_avgpool_counts_padding():
    """count_include_pad=True: the corner window of a 3x3/pad-1 pool sees 4 of 9 ones."""
    y = ops.avgpool2d_forward(np.ones((1, 1, 3, 3)), 3, 1, 1)
    np.testing.assert_allclose(y[0, 0], np.array([[4, 6, 4], [6, 9, 6], [4, 6, 4]]) / 9)


def test_pointwise_match_formulas():
    rng = rng_for("pointwise")
    x, dy, b = rng.standard_normal((3, 4, 5)) * 2, rng.standard_normal((3, 4, 5)), \
        rng.standard_normal(5)
    out = float64_outputs("pointwise")
    np.testing.assert_array_equal(out["relu"], np.where(x > 0, x, 0.0))
    np.testing.assert_array_equal(out["drelu"], np.where(x > 0, dy, 0.0))
    gelu = np.vectorize(lambda v: 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi)
                                                            * (v + 0.044715 * v**3))))
    assert_close(out["gelu"], gelu(x), F64_RTOL, F64_ATOL, "gelu")
    # the tanh form approximates the exact erf GELU to within ~5e-4 everywhere
    exact = np.vectorize(lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2))))(x)
    assert np.max(np.abs(out["gelu"] - exact)) < 1e-3
    np.testing.assert_array_equal(out["add"], x + dy)
    np.testing.assert_array_equal(out["bias"], x + b[None, None, :])


def test_norms_match_per_group_statistics():
    rng = rng_for("norms")
    x4, g4, b4 = rng.standard_normal((3, 4, 5, 3)) * 2 + 1, rng.standard_normal(4), \
        rng.standard_normal(4)
    rng.standard_normal((3, 4, 5, 3))
    x3, g3, b3 = rng.standard_normal((2, 3, 7)) - 0.5, rng.standard_normal(7), \
        rng.standard_normal(7)
    out = float64_outputs("norms")
    bn = np.empty_like(x4)
    for ch in range(4):
        vals = x4[:, ch].ravel()
        mu, var = vals.mean(), ((vals - vals.mean()) ** 2).mean()
        bn[:, ch] = g4[ch] * (x4[:, ch] - mu) / math.sqrt(var + 1e-5) + b4[ch]
    assert_close(out["bn"], bn, 1e-10, 1e-12, "batchnorm")
    ln = np.empty_like(x3)
    for idx in np.ndindex(2, 3):
        row = x3[idx]
        ln[idx] = g3 * (row - row.mean()) / math.sqrt(row.var() + 1e-5) + b3
    assert_close(out["ln"], ln, 1e-10, 1e-12, "layernorm")


def test_softmax_and_cross_entropy_match_definitions():
    rng = rng_for("softmax")
    x, _, logits = rng.standard_normal((4, 9)) * 3, rng.standard_normal((4, 9)), \
        rng.standard_normal((6, 5)) * 2
    labels = rng.integers(0, 5, size=6)
    out = float64_outputs("softmax")
    ref = np.array([[math.exp(v) / sum(math.exp(u) for u in row) for v in row] for row in x])
    assert_close(out["softmax"], ref, F64_RTOL, F64_ATOL, "softmax")
    loss = np.mean([-math.log(math.exp(row[t]) / sum(math.exp(u) for u in row))
                    for row, t in zip(logits, labels, strict=True)])
    assert abs(float(out["loss"]) - loss) <= 1e-12 * abs(loss)
    np.testing.assert_allclose(out["probs"].sum(axis=1), 1.0, rtol=1e-14)


def test_softmax_xent_is_stable_for_huge_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [5e4, 5e4, 5e4]], dtype=np.float32)
    loss, probs = ops.softmax_cross_entropy_forward(logits, np.array([0, 2]))
    assert np.isfinite(float(loss))
    assert abs(float(loss) - math.log(3) / 2) < 1e-6  # row 0 contributes ~0, row 1 log 3
    np.testing.assert_allclose(ops.softmax_forward(logits)[1], [1 / 3] * 3, rtol=1e-6)
    assert np.all(np.isfinite(probs))


def test_embedding_gather_and_scatter_add_with_repeats():
    rng = rng_for("embed_linear")
    table, dy_e = rng.standard_normal((7, 4)), rng.standard_normal((3, 5, 4))
    x, w, b, _dy_l = rng.standard_normal((2, 3, 6)), rng.standard_normal((4, 6)), \
        rng.standard_normal(4), rng.standard_normal((2, 3, 4))
    ids = np.array([[0, 3, 3, 6, 1], [3, 0, 2, 2, 2], [5, 6, 6, 0, 3]])
    out = float64_outputs("embed_linear")
    np.testing.assert_array_equal(out["emb"], table[ids])
    dtable = np.zeros((7, 4))
    for idx in np.ndindex(3, 5):
        dtable[ids[idx]] += dy_e[idx]
    assert_close(out["demb"], dtable, F64_RTOL, F64_ATOL, "embedding dtable")
    np.testing.assert_array_equal(out["demb"][4], 0.0)  # id 4 never used
    ref = np.einsum("abi,oi->abo", x, w) + b
    assert_close(out["lin"], ref, F64_RTOL, F64_ATOL, "linear")


# --------------------------------------------------------------------------- (2) finite differences


def check_grad(forward, x, analytic, what):
    assert_close(analytic, fd_grad(forward, x), FD_RTOL, FD_ATOL, what)


@pytest.mark.parametrize("index", [0, 3])
def test_conv_gradients_by_finite_differences(index):
    case = CONV_CASES[index]
    stride, pad = case[7], case[8]
    x, w, dy = conv_inputs(np.random.default_rng(index), case)

    def loss():
        return float(np.sum(ops.conv2d_forward(x, w, stride, pad) * dy))

    check_grad(loss, x, ops.conv2d_backward_data(dy, w, x.shape, stride, pad), "conv dx")
    check_grad(loss, w, ops.conv2d_backward_filter(dy, x, w.shape, stride, pad), "conv dw")


@pytest.mark.parametrize("index", range(len(POOL_CASES)))
def test_pool_gradients_by_finite_differences(index):
    n, c, h, w, kernel, stride, pad = POOL_CASES[index]
    rng = np.random.default_rng(10 + index)
    x = rng.standard_normal((n, c, h, w))
    dy = rng.standard_normal((n, c, conv_out(h, kernel, stride, pad),
                              conv_out(w, kernel, stride, pad)))
    _, arg = ops.maxpool2d_forward(x, kernel, stride, pad)
    check_grad(lambda: float(np.sum(ops.maxpool2d_forward(x, kernel, stride, pad)[0] * dy)), x,
               ops.maxpool2d_backward(dy, arg, x.shape, kernel, stride, pad), "maxpool dx")
    check_grad(lambda: float(np.sum(ops.avgpool2d_forward(x, kernel, stride, pad) * dy)), x,
               ops.avgpool2d_backward(dy, x.shape, kernel, stride, pad), "avgpool dx")


def test_pointwise_gradients_by_finite_differences():
    rng = np.random.default_rng(20)
    x = rng.standard_normal(40) * 2
    x[np.abs(x) < 1e-3] += 1e-2  # keep away from relu's kink
    dy = rng.standard_normal(40)
    check_grad(lambda: float(np.sum(ops.relu_forward(x) * dy)), x, ops.relu_backward(dy, x),
               "relu")
    check_grad(lambda: float(np.sum(ops.gelu_forward(x) * dy)), x, ops.gelu_backward(dy, x),
               "gelu")


@pytest.mark.parametrize("kind", ["batchnorm", "layernorm"])
def test_norm_gradients_by_finite_differences(kind):
    rng = np.random.default_rng(30)
    shape, groups = ((2, 3, 4, 3), 3) if kind == "batchnorm" else ((2, 3, 6), 6)
    x = rng.standard_normal(shape) * 1.5 + 0.5
    gamma, beta, dy = rng.standard_normal(groups), rng.standard_normal(groups), \
        rng.standard_normal(shape)
    fwd = ops.batchnorm_forward if kind == "batchnorm" else ops.layernorm_forward
    bwd = ops.batchnorm_backward if kind == "batchnorm" else ops.layernorm_backward

    def loss():
        return float(np.sum(fwd(x, gamma, beta, 1e-5)[0] * dy))

    dx, dgamma, dbeta = bwd(dy, fwd(x, gamma, beta, 1e-5)[1])
    check_grad(loss, x, dx, f"{kind} dx")
    check_grad(loss, gamma, dgamma, f"{kind} dgamma")
    check_grad(loss, beta, dbeta, f"{kind} dbeta")


def test_softmax_gradients_by_finite_differences():
    rng = np.random.default_rng(40)
    x, dy = rng.standard_normal((3, 7)) * 2, rng.standard_normal((3, 7))
    check_grad(lambda: float(np.sum(ops.softmax_forward(x) * dy)), x,
               ops.softmax_backward(dy, ops.softmax_forward(x)), "softmax")
    logits, labels = rng.standard_normal((5, 4)) * 2, np.array([0, 3, 3, 1, 2])
    probs = ops.softmax_cross_entropy_forward(logits, labels)[1]
    check_grad(lambda: float(ops.softmax_cross_entropy_forward(logits, labels)[0]), logits,
               ops.softmax_cross_entropy_backward(probs, labels), "softmax xent")


def test_linear_and_embedding_gradients_by_finite_differences():
    rng = np.random.default_rng(50)
    x, w, b, dy = rng.standard_normal((2, 3, 5)), rng.standard_normal((4, 5)), \
        rng.standard_normal(4), rng.standard_normal((2, 3, 4))

    def loss():
        return float(np.sum(ops.linear_forward(x, w, b) * dy))

    dx, dw, db = ops.linear_backward(dy, x, w)
    check_grad(loss, x, dx, "linear dx")
    check_grad(loss, w, dw, "linear dw")
    check_grad(loss, b, db, "linear db")
    table, ids, dye = rng.standard_normal((6, 3)), np.array([1, 4, 1, 0, 1]), \
        rng.standard_normal((5, 3))
    check_grad(lambda: float(np.sum(ops.embedding_forward(table, ids) * dye)), table,
               ops.embedding_backward(dye, ids, 6), "embedding dtable")


# --------------------------------------------------------------------------- (3) low precision


def check_family_precision(backend, name, dtype, rtol):
    ref = float64_outputs(name)
    got = FAMILIES[name](backend.xp, backend.dtype(dtype), rng_for(name))
    for key, value in got.items():
        assert value.dtype == np.dtype(dtype), f"{name}.{key}: dtype {value.dtype}"
        assert_close(backend.asnumpy(value), ref[key], rtol, 0.0, f"{name}.{key} ({dtype})")


@pytest.mark.parametrize("name", list(FAMILIES))
def test_float32_matches_float64(xp_backend, name):
    check_family_precision(xp_backend, name, "float32", F32_RTOL)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_float16_matches_float64_on_numpy(name):
    from ddlsim.kernels.backend import get_backend

    check_family_precision(get_backend("cpu"), name, "float16", F16_RTOL)


# --------------------------------------------------------------------------- SGD, grad_sum


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_two_steps_by_hand(xp_backend, nesterov):
    xp = xp_backend.xp
    lr, mu, wd = 0.1, 0.9, 0.01
    w0, g1, g2 = np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.1, -1.0]), \
        np.array([-0.2, 0.4, 0.0])
    w, v = xp.array(w0, copy=True), xp.zeros(3)  # w0 stays the untouched reference
    ops.sgd_momentum_update(w, xp.asarray(g1), v, lr, mu, wd, nesterov)
    ops.sgd_momentum_update(w, xp.asarray(g2), v, lr, mu, wd, nesterov)
    # step 1: d1 = g1 + wd*w0 ; v1 = d1 ; w1 = w0 - lr*(d1 + mu*v1 if nesterov else v1)
    d1 = g1 + wd * w0
    v1 = d1
    w1 = w0 - lr * (d1 + mu * v1 if nesterov else v1)
    # step 2: d2 = g2 + wd*w1 ; v2 = mu*v1 + d2 ; w2 = w1 - lr*(d2 + mu*v2 if nesterov else v2)
    d2 = g2 + wd * w1
    v2 = mu * v1 + d2
    w2 = w1 - lr * (d2 + mu * v2 if nesterov else v2)
    np.testing.assert_allclose(xp_backend.asnumpy(v), v2, rtol=1e-14)
    np.testing.assert_allclose(xp_backend.asnumpy(w), w2, rtol=1e-14)


def test_sgd_without_weight_decay_leaves_gradient_untouched():
    w, g, v = np.ones(4, np.float32), np.full(4, 2.0, np.float32), np.zeros(4, np.float32)
    assert ops.sgd_momentum_update(w, g, v, 0.5, 0.9) is None
    np.testing.assert_array_equal(g, 2.0)
    np.testing.assert_array_equal(v, 2.0)
    np.testing.assert_array_equal(w, 0.0)


def test_grad_sum_is_in_place(xp_backend):
    xp = xp_backend.xp
    acc, g = xp.asarray(np.arange(5.0, dtype=np.float32)), xp.ones(5, dtype=np.float32)
    out = ops.grad_sum(acc, g)
    assert out is acc
    np.testing.assert_array_equal(xp_backend.asnumpy(acc), [1, 2, 3, 4, 5])


# --------------------------------------------------------------------------- bad geometry


def test_bad_geometry_raises_config_error():
    x = np.zeros((1, 2, 4, 4), np.float32)
    with pytest.raises(ConfigError, match="stride"):
        ops.conv2d_forward(x, np.zeros((3, 2, 3, 3), np.float32), stride=0)
    with pytest.raises(ConfigError, match="channels"):
        ops.conv2d_forward(x, np.zeros((3, 5, 3, 3), np.float32))
    with pytest.raises(ConfigError, match="does not fit"):
        ops.conv2d_forward(x, np.zeros((3, 2, 5, 5), np.float32))
    with pytest.raises(ConfigError, match="pad"):
        ops.maxpool2d_forward(x, 2, 2, 2)


# --------------------------------------------------------------------------- (4) harness glue

SMALL = dict(m=5, n=3, k=4, b=2, c=3, h=7, w=5, r=3, s=2, stride=2, pad=1, kernel=3, numel=17,
             rows=4, cols=6, classes=5, tokens=9, hidden=4, vocab=6, q=5, kv=7, d=4, g=2)


def expected_shapes(op):
    """Output shape(s) of each op at SMALL, derived independently from the op's definition."""
    p = SMALL
    conv_y = (3, 4, conv_out(7, 3, 2, 1), conv_out(5, 2, 2, 1))
    pool_y = (3, 3, conv_out(7, 3, 2, 1), conv_out(5, 3, 2, 1))
    x4 = (p["n"], p["c"], p["h"], p["w"])
    table = {
        "gemm": [(5, 3)], "bmm": [(2, 5, 3)], "conv2d_fwd": [conv_y], "conv2d_bwd_data": [x4],
        "conv2d_bwd_filter": [(4, 3, 3, 2)], "maxpool_fwd": [pool_y, pool_y],
        "maxpool_bwd": [x4], "avgpool_fwd": [pool_y], "avgpool_bwd": [x4],
        "batchnorm_fwd": [x4, None], "batchnorm_bwd": [x4, (3,), (3,)],
        "layernorm_fwd": [(4, 6), None], "layernorm_bwd": [(4, 6), (6,), (6,)],
        "softmax_fwd": [(4, 6)], "softmax_bwd": [(4, 6)], "softmax_xent_fwd": [(), (3, 5)],
        "softmax_xent_bwd": [(3, 5)], "embedding_fwd": [(9, 4)], "embedding_bwd": [(6, 4)],
        "sgd_update": [], "flash_attn_fwd": [(2, 5, 4), (2, 5)],
        "flash_attn_bwd": [(2, 5, 4), (1, 7, 4), (1, 7, 4)],
    }
    return table.get(op, [(17,)])


@pytest.mark.parametrize("op", list(OP_PARAMS))
def test_make_inputs_and_run_cover_every_op(xp_backend, op):
    kc = call(op, **{name: SMALL[name] for name in OP_PARAMS[op]})
    inputs = ops.make_inputs(kc, xp_backend.xp, xp_backend.dtype("float32"),
                             np.random.default_rng(0))
    assert all(type(a).__module__.split(".")[0] == xp_backend.name for a in inputs)
    out = ops.run(kc, inputs)
    xp_backend.synchronize()
    outs = [] if out is None else list(out) if isinstance(out, tuple) else [out]
    want = expected_shapes(op)
    assert len(outs) == len(want)
    for got, shape in zip(outs, want, strict=True):
        if shape is not None:
            assert tuple(got.shape) == shape


def test_run_executes_the_named_op():
    """run() must compute the op itself, not a stand-in: spot-check values for a few ops."""
    rng = np.random.default_rng(1)
    kc = call("conv2d_fwd", **{k: SMALL[k] for k in OP_PARAMS["conv2d_fwd"]})
    x, w = ops.make_inputs(kc, np, np.float64, rng)
    assert_close(ops.run(kc, (x, w)), naive_conv(x, w, 2, 1), 1e-6, 0, "run conv")
    kc = call("grad_sum", numel=6)
    a, b = ops.make_inputs(kc, np, np.float64, rng)
    expected = a + b
    np.testing.assert_array_equal(ops.run(kc, (a, b)), expected)
    kc = call("embedding_bwd", tokens=9, hidden=4, vocab=6)
    dy, ids = ops.make_inputs(kc, np, np.float64, rng)
    assert ids.min() >= 0 and ids.max() < 6
    np.testing.assert_allclose(ops.run(kc, (dy, ids)).sum(axis=0), dy.sum(axis=0))
