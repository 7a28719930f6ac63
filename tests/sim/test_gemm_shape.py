"""GEMM efficiency by shape (sim.gemm_shape): tiles, waves, split-K and Winograd, each
checked against a hand count."""

import pytest

from ddlsim.opspec import call
from ddlsim.sim.costs import CostModel
from ddlsim.sim.device_catalog import CATALOG
from ddlsim.sim.gemm_shape import (
    SM_COUNT,
    WINOGRAD_SPEEDUP,
    compute_fraction,
    gemm_dims,
    shape_efficiency,
)


def test_a_gemm_of_whole_tiles_filling_whole_waves_loses_nothing():
    # a100: 108 SMs; 12 x 9 tiles of 128 x 128 = 108 tiles = one full wave
    assert shape_efficiency(call("gemm", m=128 * 12, n=128 * 9, k=4096), "a100-80gb") == 1.0


def test_tile_quantisation_alone_on_a_device_without_an_sm_count():
    # b200 has no published SM count: 100 x 100 pads to 128 x 128 (or 2 x 2 tiles of 64)
    assert "b200" not in SM_COUNT
    f = shape_efficiency(call("gemm", m=100, n=100, k=4096), "b200")
    assert f == pytest.approx(100 * 100 / (128 * 128), rel=1e-12)


def test_wave_quantisation_takes_the_tile_that_fills_the_sms_best():
    # 1408 = 11 x 128: 128-tiles give 121 tiles in 2 waves of 108 (121/216 = 0.56);
    # 64-tiles give 22 x 22 = 484 tiles in 5 waves (484/540 = 0.896), the best choice
    f = shape_efficiency(call("gemm", m=1408, n=1408, k=128), "a100-80gb")
    assert f == pytest.approx(484 / 540, rel=1e-12)


def test_split_k_fills_the_sms_for_a_thin_grid_with_a_long_reduction():
    # 128 x 128 x 8192 on 108 SMs: four 64-tiles split 27 ways (k/256 = 32 allows it)
    # make 108 blocks, one full wave; with k = 256 no split: 4 of 108 SMs busy
    long_k = shape_efficiency(call("gemm", m=128, n=128, k=8192), "a100-80gb")
    short_k = shape_efficiency(call("gemm", m=128, n=128, k=256), "a100-80gb")
    assert long_k == pytest.approx(1.0)
    assert short_k == pytest.approx(4 / 108)


def test_convolutions_are_implicit_gemms_of_their_pass():
    conv = dict(n=32, c=64, h=56, w=56, k=128, r=3, s=3, stride=1, pad=1)
    assert gemm_dims(call("conv2d_fwd", **conv)) == (1, 32 * 56 * 56, 128, 64 * 9)
    assert gemm_dims(call("conv2d_bwd_data", **conv)) == (1, 32 * 56 * 56, 64, 128 * 9)
    assert gemm_dims(call("conv2d_bwd_filter", **conv)) == (1, 128, 64 * 9, 32 * 56 * 56)
    assert gemm_dims(call("bmm", b=8, m=64, n=32, k=16)) == (8, 64, 32, 16)
    assert gemm_dims(call("relu_fwd", numel=10)) is None


def test_winograd_only_for_fp32_three_by_three_stride_one():
    c3 = call("conv2d_fwd", n=64, c=256, h=14, w=14, k=256, r=3, s=3, stride=1, pad=1)
    c1 = call("conv2d_fwd", n=64, c=256, h=14, w=14, k=256, r=1, s=1, stride=1, pad=0)
    base = shape_efficiency(c3, "v100-sxm2-16gb")
    assert compute_fraction(c3, "v100-sxm2-16gb", "float32") == pytest.approx(
        base * WINOGRAD_SPEEDUP)
    assert compute_fraction(c3, "v100-sxm2-16gb", "float16") == pytest.approx(base)
    assert compute_fraction(c1, "v100-sxm2-16gb", "float32") == pytest.approx(
        shape_efficiency(c1, "v100-sxm2-16gb"))


def test_the_shape_aware_cost_model_divides_compute_time_by_the_fraction():
    dev = CATALOG["a100-80gb"]
    kc = call("gemm", m=1408, n=1408, k=8192)  # compute-bound
    plain = CostModel(dev, default_efficiency=0.7, default_overhead_s=0.0)
    shaped = CostModel(dev, default_efficiency=0.7, default_overhead_s=0.0, gemm_shape=True)
    ratio = shaped.seconds(kc, "float16") / plain.seconds(kc, "float16")
    assert ratio == pytest.approx(1 / shape_efficiency(kc, "a100-80gb"), rel=1e-9)
    assert ratio > 1.0
    mem = call("add", numel=1 << 20)
    assert shaped.seconds(mem, "float16") == plain.seconds(mem, "float16")


def test_every_sm_count_names_a_catalog_device_and_its_source():
    for name, (count, source) in SM_COUNT.items():
        assert name in CATALOG, name
        assert count > 0 and len(source) > 20
