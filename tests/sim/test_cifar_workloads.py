"""The CIFAR-10 ResNets of the zoo, against the parameter counts of their published code."""

from __future__ import annotations

import pytest

from ddlsim.opspec import flops
from ddlsim.sim.workloads import get_workload


def test_resnet9_is_page_s_dawnbench_network():
    w = get_workload("resnet9-cifar", 512, dtype="float16")
    assert w.input_shape == (3, 32, 32) and w.dtype == "float16"
    # convs 3x3 (no bias) 3-64, 64-128, 2x 128-128, 128-256, 256-512, 2x 512-512; linear 512-10
    convs = 9 * (3 * 64 + 64 * 128 + 2 * 128 * 128 + 128 * 256 + 256 * 512 + 2 * 512 * 512)
    bn = 2 * (64 + 128 + 128 + 128 + 256 + 512 + 512 + 512)
    assert w.param_count == convs + bn + 512 * 10 == 6_573_120
    # forward: 3x3 convs at 32, 32, 16, 16, 8, 4, 4 pixels per side
    macs = 9 * (32 * 32 * (3 * 64 + 64 * 128) + 16 * 16 * (2 * 128 * 128 + 128 * 256)
                + 8 * 8 * 256 * 512 + 4 * 4 * 2 * 512 * 512) + 512 * 10
    conv_fwd = sum(flops(c) for lay in w.layers if lay.kind in ("conv", "linear")
                   for c in lay.fwd if c.op in ("conv2d_fwd", "gemm"))
    assert conv_fwd == pytest.approx(2 * macs * 512)


def test_resnet164_is_the_preactivation_bottleneck_network():
    w = get_workload("resnet164-cifar", 1)
    assert w.param_count == 1_703_258  # He et al. 2016 Table: ResNet-164, 1.7M
    convs = [lay for lay in w.layers if lay.kind == "conv"]
    assert len(convs) == 1 + 3 * 18 * 3 + 3  # stem, 54 bottlenecks of 3, 3 projections
    assert w.layers[-2].name == "fc" and w.layers[-2].param_count == 256 * 10 + 10
