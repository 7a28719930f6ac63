"""Convolutional and MLP workloads: LeNet-5, the digits LeNet, the MLP, AlexNet, VGG-16 and
the ImageNet ResNets (50, 101, 152)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from ddlsim.errors import ConfigError
from ddlsim.sim.workloads.graph import Workload, check_batch, check_dtype, check_int
from ddlsim.sim.workloads.net import Net, start


def lenet5(batch: int, dtype: str = "float32") -> Workload:
    """LeNet-5, modern variant (counts computed from layer shapes): 1x32x32 input, conv
    5x5 6ch -> ReLU -> max-pool 2 -> conv 5x5 16ch (full C3 connectivity) -> ReLU ->
    max-pool 2 -> fc 120 -> ReLU -> fc 84 -> ReLU -> fc 10 -> softmax cross-entropy.
    61,706 parameters, 416,520 forward MACs per image. ``batch``: images per GPU."""
    net = start(batch, (1, 32, 32), dtype)
    net.conv("conv1", 6, 5)
    net.elementwise("relu1", "relu")
    net.pool("pool1", "max", 2)
    net.conv("conv2", 16, 5)
    net.elementwise("relu2", "relu")
    net.pool("pool2", "max", 2)
    for i, width in ((3, 120), (4, 84)):
        net.linear(f"fc{i}", width)
        net.elementwise(f"relu{i}", "relu")
    net.linear("fc5", 10)
    net.softmax_xent()
    return net.workload("lenet5", (1, 32, 32), dtype)


def lenet_digits(batch: int, dtype: str = "float32") -> Workload:
    """A small LeNet for the 8x8 digits data set (1x8x8 input, 10 classes): conv 3x3 pad 1
    8ch -> ReLU -> max-pool 2 (8x4x4) -> conv 3x3 pad 1 16ch -> ReLU -> max-pool 2
    (16x2x2) -> fc 10 -> softmax cross-entropy. 80 + 1,168 + 650 = 1,898 parameters."""
    net = start(batch, (1, 8, 8), dtype)
    net.conv("conv1", 8, 3, pad=1)
    net.elementwise("relu1", "relu")
    net.pool("pool1", "max", 2)
    net.conv("conv2", 16, 3, pad=1)
    net.elementwise("relu2", "relu")
    net.pool("pool2", "max", 2)
    net.linear("fc3", 10)
    net.softmax_xent()
    return net.workload("lenet-digits", (1, 8, 8), dtype)


#: Default layer widths of :func:`mlp`: the 8x8 digits data set (64 pixels, 10 classes).
DIGITS_MLP_SIZES = (64, 128, 10)


def mlp(batch: int, sizes: Sequence[int] = DIGITS_MLP_SIZES, dtype: str = "float32") -> Workload:
    """Multi-layer perceptron: linear layers ``sizes[i] -> sizes[i+1]`` with ReLU between
    them and softmax cross-entropy over ``sizes[-1]`` classes. ``batch``: samples per GPU."""
    sizes = tuple(sizes)
    if len(sizes) < 2:
        raise ConfigError(f"sizes: needs at least 2 entries (inputs, classes), got {sizes}")
    for i, size in enumerate(sizes):
        check_int(f"sizes[{i}]", size)
    net = start(batch, (sizes[0],), dtype)
    for i, width in enumerate(sizes[1:], start=1):
        net.linear(f"fc{i}", width)
        if i < len(sizes) - 1:
            net.elementwise(f"relu{i}", "relu")
    net.softmax_xent()
    return net.workload("mlp", (sizes[0],), dtype, hyper=(("layers", len(sizes) - 1),))


def alexnet(batch: int, dtype: str = "float32") -> Workload:
    """AlexNet, torchvision's "one weird trick" variant at 224x224 (61,100,840 parameters,
    0.714 GMACs: torchvision weight metadata num_params/_ops). The adaptive 6x6 average pool
    is an identity at 224x224 and dropout is not modelled, so neither appears."""
    net = start(batch, (3, 224, 224), dtype)
    convs = ((1, 64, 11, 4, 2, True), (2, 192, 5, 1, 2, True), (3, 384, 3, 1, 1, False),
             (4, 256, 3, 1, 1, False), (5, 256, 3, 1, 1, True))
    for i, ch, kernel, stride, pad, pool in convs:
        net.conv(f"conv{i}", ch, kernel, stride, pad)
        net.elementwise(f"relu{i}", "relu")
        if pool:
            net.pool(f"pool{i}", "max", 3, 2)
    for i in (6, 7):
        net.linear(f"fc{i}", 4096)
        net.elementwise(f"relu{i}", "relu")
    net.linear("fc8", 1000)
    net.softmax_xent()
    return net.workload("alexnet", (3, 224, 224), dtype)


def vgg16(batch: int, dtype: str = "float32") -> Workload:
    """VGG-16 (configuration D, no batchnorm) at 224x224 (138,357,544 parameters,
    15.47 GMACs: torchvision weight metadata num_params/_ops). Dropout is not modelled."""
    net = start(batch, (3, 224, 224), dtype)
    for stage, (width, count) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)),
                                           start=1):
        for j in range(1, count + 1):
            net.conv(f"conv{stage}_{j}", width, 3, 1, 1)
            net.elementwise(f"relu{stage}_{j}", "relu")
        net.pool(f"pool{stage}", "max", 2)
    for i in (6, 7):
        net.linear(f"fc{i}", 4096)
        net.elementwise(f"relu{i}", "relu")
    net.linear("fc8", 1000)
    net.softmax_xent()
    return net.workload("vgg16", (3, 224, 224), dtype)


def _bottleneck(net: Net, prefix: str, width: int, stride: int) -> None:
    """ResNet v1.5 bottleneck: 1x1 -> 3x3 (carrying the stride) -> 1x1 (4x width), with a
    projection shortcut (1x1 conv + bn) when the shape changes."""
    src = net.shape
    for j, (ch, kernel, s, pad) in enumerate(((width, 1, 1, 0), (width, 3, stride, 1),
                                               (4 * width, 1, 1, 0)), start=1):
        net.conv(f"{prefix}.conv{j}", ch, kernel, s, pad, bias=False)
        net.bn(f"{prefix}.bn{j}")
        if j < 3:
            net.elementwise(f"{prefix}.relu{j}", "relu")
    main = net.shape
    if stride != 1 or src[0] != 4 * width:
        net.conv(f"{prefix}.downsample.0", 4 * width, 1, stride, 0, bias=False, src=src)
        net.bn(f"{prefix}.downsample.1")
    if net.shape != main:  # pragma: no cover - construction invariant
        raise AssertionError(f"{prefix}: shortcut shape {net.shape} != main path {main}")
    net.add(f"{prefix}.add")
    net.elementwise(f"{prefix}.relu3", "relu")


#: Bottleneck blocks per stage of the ImageNet ResNets (He et al. 2015, Table 1).
RESNET_BLOCKS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3),
                 "resnet152": (3, 8, 36, 3)}


def _resnet(batch: int, dtype: str, name: str) -> Workload:
    net = start(batch, (3, 224, 224), dtype)
    net.conv("conv1", 64, 7, 2, 3, bias=False)
    net.bn("bn1")
    net.elementwise("relu", "relu")
    net.pool("maxpool", "max", 3, 2, 1)
    for stage, (width, blocks) in enumerate(zip((64, 128, 256, 512), RESNET_BLOCKS[name],
                                                strict=True), start=1):
        for b in range(blocks):
            _bottleneck(net, f"layer{stage}.{b}", width, 2 if (b == 0 and stage > 1) else 1)
    net.pool("avgpool", "avg", 7, 1)
    net.linear("fc", 1000)
    net.softmax_xent()
    return net.workload(name, (3, 224, 224), dtype)


@functools.lru_cache(maxsize=32)
def cached_resnet50(batch: int, dtype: str) -> Workload:
    """ResNet-50 for ``batch`` in ``dtype``, built once per pair (arguments unchecked)."""
    return _resnet(batch, dtype, "resnet50")


@functools.lru_cache(maxsize=8)
def _resnet_deep(batch: int, dtype: str, name: str) -> Workload:
    return _resnet(batch, dtype, name)


def resnet50(batch: int, dtype: str = "float32") -> Workload:
    """ResNet-50 v1.5 (stride on the 3x3 convolution, as torchvision) at 224x224, with
    batchnorm and residual adds (25,557,032 parameters, 4.089 GMACs: torchvision weight
    metadata num_params/_ops). Convolutions carry no bias (batchnorm follows each)."""
    check_batch(batch)
    check_dtype(dtype)
    return cached_resnet50(batch, dtype)


def resnet101(batch: int, dtype: str = "float32") -> Workload:
    """ResNet-101 v1.5 at 224x224: ResNet-50's bottlenecks with 23 blocks in stage 3
    (He et al. 2015 Table 1); torchvision ``resnet101``: 44,549,160 parameters,
    7.80 GMACs (its weight metadata ``num_params`` / ``_ops``)."""
    check_batch(batch)
    check_dtype(dtype)
    return _resnet_deep(batch, dtype, "resnet101")


def resnet152(batch: int, dtype: str = "float32") -> Workload:
    """ResNet-152 v1.5 at 224x224: 8 and 36 blocks in stages 2 and 3 (He et al. 2015
    Table 1); torchvision ``resnet152``: 60,192,808 parameters, 11.51 GMACs."""
    check_batch(batch)
    check_dtype(dtype)
    return _resnet_deep(batch, dtype, "resnet152")
