"""Cost model: measured -> interpolated -> roofline, fitted efficiency, leave-one-out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ddlsim import opspec
from ddlsim.errors import ConfigError
from ddlsim.opspec import call
from ddlsim.sim.costs import (
    DEFAULT_EFFICIENCY,
    DEFAULT_OVERHEAD_S,
    CostModel,
    ProfileRow,
    fit_overhead_efficiency,
    leave_one_out_error,
    op_class,
)
from ddlsim.sim.hardware import cpu_spec, get_device

A100 = get_device("a100-40gb")  # fp16 peak 312e12 FLOP/s, 1555e9 B/s (HW-A100-05, -10b)


def row(kc, dtype, median_s, device="a100-40gb") -> ProfileRow:
    """A profile row for ``kc`` with a +-10% spread around ``median_s``."""
    return ProfileRow(kc.op, kc.shape_key, dtype, device, median_s, 0.9 * median_s,
                      1.1 * median_s, opspec.flops(kc), opspec.bytes_moved(kc, dtype))


def square(n: int) -> opspec.KernelCall:
    return call("gemm", m=n, n=n, k=n)


def test_op_class():
    assert {op_class(op) for op in ("gemm", "bmm", "conv2d_fwd", "conv2d_bwd_data",
                                    "conv2d_bwd_filter")} == {"gemm-like"}
    assert op_class("relu_fwd") == "memory" and op_class("embedding_fwd") == "memory"


def test_exact_row_is_measured():
    model = CostModel(A100, [row(square(1024), "float16", 3.3e-5)])
    est = model.estimate(square(1024), "float16")
    assert est.path == "measured" and est.seconds == 3.3e-5
    assert "gemm(m=1024,n=1024,k=1024)" in est.detail
    # the same shape in another dtype is not that measurement
    assert model.estimate(square(1024), "bfloat16").path != "measured"


def test_between_two_measured_shapes_is_interpolated_log_log():
    t1, t4 = 2.0e-5, 6.0e-4
    model = CostModel(A100, [row(square(1024), "float16", t1), row(square(4096), "float16", t4)])
    est = model.estimate(square(2048), "float16")
    assert est.path == "interpolated"
    assert t1 < est.seconds < t4
    # All three shapes are compute-bound on an A100 in fp16 (2n^3/312e12 > 6n^2/1555e9 for
    # n >= 1024), so the interpolation axis is FLOPs: log t linear in log F.
    f1, f2, f4 = 2.0 * 1024**3, 2.0 * 2048**3, 2.0 * 4096**3
    frac = math.log(f2 / f1) / math.log(f4 / f1)
    expected = math.exp(math.log(t1) + frac * (math.log(t4) - math.log(t1)))
    assert est.seconds == pytest.approx(expected, rel=1e-12)


def test_interpolation_is_monotone_between_neighbours():
    sizes = [512, 1024, 2048, 4096]
    times = [3e-6, 1.5e-5, 1.1e-4, 8e-4]
    model = CostModel(A100, [row(square(n), "float16", t) for n, t in zip(sizes, times,
                                                                          strict=True)])
    previous = 0.0
    for n in range(600, 4000, 97):
        est = model.estimate(square(n), "float16")
        assert est.path == "interpolated"
        assert est.seconds >= previous
        previous = est.seconds


def test_memory_bound_op_interpolates_on_bytes():
    model = CostModel(A100, [row(call("relu_fwd", numel=2**20), "float32", 1.0e-5),
                             row(call("relu_fwd", numel=2**24), "float32", 1.2e-4)])
    est = model.estimate(call("relu_fwd", numel=2**22), "float32")
    assert est.path == "interpolated"
    # bytes scale with numel, so halfway in log(numel) is halfway in log(time)
    assert est.seconds == pytest.approx(math.sqrt(1.0e-5 * 1.2e-4), rel=1e-12)


def test_outside_measured_range_is_not_extrapolated():
    model = CostModel(A100, [row(square(1024), "float16", 2e-5),
                             row(square(2048), "float16", 1e-4)])
    assert model.estimate(square(8192), "float16").path == "roofline"
    assert model.estimate(square(256), "float16").path == "roofline"


def test_no_rows_gemm_is_hand_computed_roofline():
    model = CostModel(A100)
    m, n, k = 4096, 1024, 512
    flop_time = 2.0 * m * n * k / 312e12  # HW-A100-05
    byte_time = 2.0 * (m * k + k * n + m * n) / 1555e9  # fp16, HW-A100-10b
    est = model.estimate(call("gemm", m=m, n=n, k=k), "float16")
    assert est.path == "roofline"
    launch = DEFAULT_OVERHEAD_S["gpu"]
    assert est.seconds == pytest.approx(launch + max(flop_time, byte_time) / DEFAULT_EFFICIENCY,
                                        rel=1e-12)
    assert flop_time > byte_time  # this shape is compute-bound
    assert "overhead 5e-06 s" in est.detail


def test_no_rows_elementwise_is_hand_computed_roofline():
    model = CostModel(A100)
    numel = 10**7
    flop_time = numel / 19.5e12  # relu: 1 FLOP per element at the FP32 peak (HW-A100-03)
    byte_time = 2.0 * numel * 4 / 1555e9  # read + write float32
    est = model.estimate(call("relu_fwd", numel=numel), "float32")
    assert est.path == "roofline"
    assert est.seconds == pytest.approx(5e-6 + max(flop_time, byte_time) / DEFAULT_EFFICIENCY,
                                        rel=1e-12)
    assert byte_time > flop_time
    custom = CostModel(A100, default_efficiency=0.25, default_overhead_s=2e-6)
    assert custom.seconds(call("relu_fwd", numel=numel), "float32") == pytest.approx(
        2e-6 + byte_time / 0.25, rel=1e-12)
    # the overhead-free model is the bare roofline / efficiency
    plain = CostModel(A100, fit_overhead=False)
    assert plain.seconds(call("relu_fwd", numel=numel), "float32") == pytest.approx(
        byte_time / DEFAULT_EFFICIENCY, rel=1e-12)


def test_default_overhead_depends_on_device_kind():
    cpu = cpu_spec("Test CPU 9000", cores=2, freq_hz=2e9, flops_per_cycle_per_core_fp32=16,
                   memory_bytes=2**33, memory_bw_bytes_per_s=2e10, source="test")
    numel = 1000  # 8 kB of traffic: the roofline term is 0.4 ns, the overhead dominates
    est = CostModel(cpu).estimate(call("relu_fwd", numel=numel), "float32")
    assert est.seconds == pytest.approx(1e-6 + 2.0 * numel * 4 / 2e10 / DEFAULT_EFFICIENCY,
                                        rel=1e-12)
    assert DEFAULT_OVERHEAD_S == {"gpu": 5e-6, "cpu": 1e-6}


def _synthetic_rows(model: CostModel, shapes, dtype, eff, device="a100-40gb", overhead=0.0):
    return [row(kc, dtype, overhead + model.roofline_s(kc, dtype) / eff, device)
            for kc in shapes]


GEMMS = [call("gemm", m=m, n=n, k=k) for m, n, k in
         [(64, 64, 64), (512, 128, 2048), (1024, 1024, 1024), (4096, 256, 64), (8, 8192, 8192)]]
ELEMENTWISE = [call("relu_fwd", numel=2**p) for p in (10, 16, 22)] + [
    call("sgd_update", numel=3 * 10**6), call("softmax_fwd", rows=512, cols=1000)]


def test_fitted_efficiency_recovers_a_known_efficiency():
    bare = CostModel(A100)
    rows = (_synthetic_rows(bare, GEMMS, "float16", 0.6)
            + _synthetic_rows(bare, ELEMENTWISE, "float32", 0.8))
    model = CostModel(A100, rows)
    eff, why = model.efficiency("conv2d_fwd", "float16")
    assert eff == pytest.approx(0.6, abs=1e-9) and "5 gemm-like float16" in why
    assert model.efficiency("add", "float32")[0] == pytest.approx(0.8, abs=1e-9)
    # no bfloat16 rows: falls back to the class fit over all dtypes
    eff_bf16, why_bf16 = model.efficiency("gemm", "bfloat16")
    assert eff_bf16 == pytest.approx(0.6, abs=1e-9) and "all dtypes" in why_bf16
    # an unmeasured gemm far outside the measured range goes through the fitted roofline
    big = call("gemm", m=16384, n=16384, k=16384)
    est = model.estimate(big, "float16")
    assert est.path == "roofline"
    assert est.seconds == pytest.approx(bare.roofline_s(big, "float16") / 0.6, rel=1e-9)


def _log_loss(roof, times, overhead, eff):
    return float(np.sum((np.log(overhead + roof / eff) - np.log(times)) ** 2))


def test_fit_recovers_overhead_and_efficiency_from_exact_rows():
    bare = CostModel(A100)
    # at most two rows per op, so every fit is the class fit
    memory = [call("relu_fwd", numel=2**10), call("relu_fwd", numel=2**22),
              call("sgd_update", numel=3 * 10**6), call("softmax_fwd", rows=512, cols=1000),
              call("add", numel=2**14)]
    rows = (_synthetic_rows(bare, GEMMS[:2] + [call("bmm", b=8, m=256, n=256, k=64),
                                               call("conv2d_fwd", n=8, c=64, h=56, w=56, k=64,
                                                    r=3, s=3, stride=1, pad=1)],
                            "float16", 0.7, overhead=4e-6)
            + _synthetic_rows(bare, memory, "float32", 0.9, overhead=2.5e-6))
    model = CostModel(A100, rows)
    gemm_fit = model.roofline_fit("gemm", "float16")
    assert gemm_fit.overhead_s == pytest.approx(4e-6, rel=1e-6)
    assert gemm_fit.efficiency == pytest.approx(0.7, rel=1e-6)
    assert "4 gemm-like float16" in gemm_fit.detail
    assert model.overhead_s("relu_fwd", "float32")[0] == pytest.approx(2.5e-6, rel=1e-6)
    assert model.efficiency("relu_fwd", "float32")[0] == pytest.approx(0.9, rel=1e-6)
    # a far-away shape is predicted as overhead + roofline / efficiency
    big = call("gemm", m=16384, n=16384, k=16384)
    assert model.seconds(big, "float16") == pytest.approx(
        4e-6 + bare.roofline_s(big, "float16") / 0.7, rel=1e-6)
    tiny = call("relu_fwd", numel=16)  # below every measured row: the overhead dominates
    est = model.estimate(tiny, "float32")
    assert est.path == "roofline"
    assert est.seconds == pytest.approx(2.5e-6 + bare.roofline_s(tiny, "float32") / 0.9,
                                        rel=1e-6)


def test_op_with_enough_rows_gets_its_own_efficiency():
    bare = CostModel(A100)
    relus = [call("relu_fwd", numel=2**p) for p in (24, 25, 26)]
    gelus = [call("gelu_fwd", numel=2**p) for p in (24, 25, 26)]
    small = [call("add", numel=2**8), call("add", numel=2**12)]  # pin the overhead
    rows = (_synthetic_rows(bare, relus, "float32", 0.9, overhead=2e-6)
            + _synthetic_rows(bare, gelus, "float32", 0.3, overhead=2e-6)
            + _synthetic_rows(bare, small, "float32", 0.9, overhead=2e-6))
    model = CostModel(A100, rows)
    # relu/gelu rows last >= 140 us, so the 2 us overhead barely matters: their own
    # efficiencies come back to 0.1% whatever overhead the mixed class fit settled on
    assert model.efficiency("relu_fwd", "float32")[0] == pytest.approx(0.9, rel=1e-3)
    assert model.efficiency("gelu_fwd", "float32")[0] == pytest.approx(0.3, rel=1e-3)
    class_fit = model.roofline_fit("softmax_fwd", "float32")  # no softmax rows: the class
    assert 0.3 < class_fit.efficiency < 0.9
    assert model.overhead_s("gelu_fwd", "float32")[0] == class_fit.overhead_s
    assert "3 gelu_fwd float32 row(s)" in model.efficiency("gelu_fwd", "float32")[1]
    big = call("gelu_fwd", numel=2**28)
    assert model.estimate(big, "float32").path == "roofline"
    assert model.seconds(big, "float32") == pytest.approx(
        2e-6 + bare.roofline_s(big, "float32") / 0.3, rel=1e-3)
    # the overhead-free model keeps one efficiency per class
    plain = CostModel(A100, rows, fit_overhead=False)
    assert (plain.efficiency("gelu_fwd", "float32")[0]
            == plain.efficiency("relu_fwd", "float32")[0])


def test_fit_on_noisy_rows_is_close_and_beats_a_grid():
    rng = np.random.default_rng(3)
    roof = np.geomspace(1e-7, 1e-2, 40)
    times = (3e-6 + roof / 0.6) * rng.uniform(0.97, 1.03, roof.size)
    overhead, eff = fit_overhead_efficiency(roof, times)
    assert overhead == pytest.approx(3e-6, rel=0.05)
    assert eff == pytest.approx(0.6, rel=0.05)
    # brute-force oracle: no point of a fine grid around the truth has a lower log loss
    best = _log_loss(roof, times, overhead, eff)
    grid = min(_log_loss(roof, times, o, e) for o in np.linspace(0, 6e-6, 121)
               for e in np.linspace(0.4, 0.8, 161))
    assert best <= grid + 1e-12


def test_fit_constraints_fall_back_to_zero_overhead():
    # t = r^1.2 grows faster than linearly: any fixed overhead makes the small end worse,
    # so the fit is o = 0 with the geometric-mean efficiency exp(mean(log(r/t)))
    roof = np.geomspace(1e-6, 1e-3, 8)
    times = roof**1.2
    overhead, eff = fit_overhead_efficiency(roof, times)
    assert overhead == 0.0
    assert eff == pytest.approx(math.exp(np.mean(np.log(roof / times))), rel=1e-12)
    # one row: efficiency is exactly roofline / measured, no overhead
    assert fit_overhead_efficiency([2e-6], [8e-6]) == (0.0, pytest.approx(0.25, rel=1e-12))
    # equal roofline times cannot separate the two parameters: geometric mean
    assert fit_overhead_efficiency([1e-6, 1e-6], [2e-6, 8e-6]) == (
        0.0, pytest.approx(0.25, rel=1e-12))
    with pytest.raises(ConfigError, match=r"roofline_s, measured_s: must be finite"):
        fit_overhead_efficiency([1e-6, 0.0], [1e-6, 1e-6])
    with pytest.raises(ConfigError, match=r"equal-length"):
        fit_overhead_efficiency([1e-6], [1e-6, 2e-6])


def test_rows_of_other_devices_are_ignored_and_free_text_names_match():
    kc = square(1024)
    rows = [row(kc, "float16", 1.0e-3, device="h100-sxm"),
            row(call("relu_fwd", numel=4096), "float32", 2e-6, device="NVIDIA A100-SXM4-40GB"),
            row(call("relu_fwd", numel=8192), "float32", 3e-6, device="A100-SXM4-80GB")]
    model = CostModel(A100, rows)
    assert model.ignored_rows == 2
    assert len(model.rows) == 1
    assert model.estimate(kc, "float16").path == "roofline"
    assert model.estimate(call("relu_fwd", numel=4096), "float32").path == "measured"


def test_host_cpu_rows_match_by_name():
    cpu = cpu_spec("Test CPU 9000", cores=2, freq_hz=2e9, flops_per_cycle_per_core_fp32=16,
                   memory_bytes=2**33, memory_bw_bytes_per_s=2e10, source="test")
    kc = square(256)
    model = CostModel(cpu, [row(kc, "float32", 0.01, device="test cpu 9000"),
                            row(kc, "float16", 0.5, device="test cpu 9000")])
    assert model.estimate(kc, "float32").seconds == 0.01
    assert model.ignored_rows == 1  # float16 has no CPU peak
    with pytest.raises(ConfigError, match=r"'float16' is not supported on Test CPU 9000"):
        model.estimate(kc, "float16")


def test_duplicate_rows_are_an_error():
    with pytest.raises(ConfigError, match=r"duplicate profile for gemm\(m=64,n=64,k=64\)"):
        CostModel(A100, [row(square(64), "float32", 1e-5), row(square(64), "float32", 2e-5)])


@pytest.mark.parametrize("device, dtype", [("v100", "bfloat16"), ("v100", "tf32"),
                                           ("a100-40gb", "fp8"), ("l4", "float64")])
def test_unsupported_dtype_names_dtype_and_device(device, dtype):
    spec = get_device(device)
    model = CostModel(spec)
    with pytest.raises(ConfigError, match=rf"dtype: '{dtype}' is not supported on {spec.name}"):
        model.estimate(square(128), dtype)


def test_unknown_dtype_is_a_config_error():
    with pytest.raises(ConfigError, match=r"dtype: must be one of .*got 'int8'"):
        CostModel(A100).estimate(square(128), "int8")


def test_leave_one_out_on_power_law_data():
    # t = c * F^0.9 on compute-bound fp16 gemms: log-log interpolation is exact for every
    # interior row; the two ends fall back to the fitted roofline.
    sizes = [1024, 1536, 2048, 3072, 4096, 6144, 8192]
    rows = [row(square(n), "float16", 3e-12 * (2.0 * n**3) ** 0.9) for n in sizes]
    rows.append(row(square(512), "float16", 1e-5, device="h100-sxm"))  # other device
    results = leave_one_out_error(rows, A100)
    assert [r.kernel_call for r, _, _ in results] == [square(n) for n in sizes]
    interior = [abs(err) for _, _, err in results[1:-1]]
    assert max(interior) < 1e-9
    bare = CostModel(A100)
    for end in (0, len(sizes) - 1):
        others = [r for i, r in enumerate(rows[:len(sizes)]) if i != end]
        roof = np.array([bare.roofline_s(r.kernel_call, "float16") for r in others])
        t = np.array([r.median_s for r in others])
        target = bare.roofline_s(square(sizes[end]), "float16")
        # with overhead: the two-parameter fit of the other six rows (t ~ F^0.9 bends down,
        # so a positive overhead)
        o, eff = fit_overhead_efficiency(roof, t)
        assert o > 0
        assert results[end][1] == pytest.approx(o + target / eff, rel=1e-9)
        # without overhead: roofline / geometric-mean efficiency of the others
        log_eff = np.mean(np.log(roof / t))
        plain = leave_one_out_error(rows, A100, fit_overhead=False)
        assert plain[end][1] == pytest.approx(target / math.exp(log_eff), rel=1e-12)
    for r, predicted, err in results:
        assert err == pytest.approx((predicted - r.median_s) / r.median_s, rel=1e-12)


def test_leave_one_out_with_noise_stays_small():
    rng = np.random.default_rng(7)
    # memory-bound relu with a 2 us fixed overhead and +-5% noise: not a pure power law
    rows = [row(call("relu_fwd", numel=4**p), "float32",
                2e-6 + 4**p * 8 / 1.2e12 * float(rng.uniform(0.95, 1.05)))
            for p in range(8, 15)]
    results = leave_one_out_error(rows, A100)
    interior = [abs(err) for _, _, err in results[1:-1]]
    assert max(interior) < 0.35
    assert float(np.median(interior)) < 0.2


def test_cache_returns_identical_results():
    rows = [row(square(1024), "float16", 2e-5), row(square(4096), "float16", 6e-4)]
    model = CostModel(A100, rows)
    first = model.estimate(square(2048), "float16")
    assert model.estimate(square(2048), "float16") is first
    assert CostModel(A100, rows).estimate(square(2048), "float16") == first
    assert model.seconds(square(2048), "float16") == first.seconds


def test_zero_work_kernel_costs_nothing():
    est = CostModel(A100).estimate(call("relu_fwd", numel=0), "float32")
    assert est.seconds == 0.0 and est.path == "roofline"


@pytest.mark.parametrize("kwargs, message", [
    ({"op": "matmul"}, r"op: must be one of .*got 'matmul'"),
    ({"shape_key": "m=1,n=2"}, r"shape_key of gemm: "),
    ({"dtype": "float8"}, r"dtype: must be one of .*got 'float8'"),
    ({"median_s": -1.0}, r"median_s of gemm\(m=1,n=2,k=3\) float32: .*> 0, got -1.0"),
    ({"median_s": 0.0}, r"median_s of .*> 0, got 0.0"),
    ({"p10_s": 3.0}, r"p10_s <= median_s <= p90_s"),
    ({"bytes": float("inf")}, r"bytes of .*got inf"),
    ({"device": ""}, r"device: must be a non-empty string"),
])
def test_profile_row_validation(kwargs, message):
    args = dict(op="gemm", shape_key="m=1,n=2,k=3", dtype="float32", device="a100-40gb",
                median_s=2.0, p10_s=1.0, p90_s=4.0, flops=12.0, bytes=44.0)
    args.update(kwargs)
    with pytest.raises(ConfigError, match=message):
        ProfileRow(**args)


def test_cost_model_validation():
    with pytest.raises(ConfigError, match=r"default_efficiency: must be a finite number > 0, "
                                          r"got 0"):
        CostModel(A100, default_efficiency=0)
    with pytest.raises(ConfigError, match=r"device: must be a DeviceSpec, got str"):
        CostModel("a100-40gb")
