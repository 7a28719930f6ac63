"""CIFAR-10 ResNets (32x32x3 input, 10 classes): David Page's ResNet-9 of DAWNBench and the
pre-activation bottleneck ResNet-164 of He et al. 2016, as their published code builds
them."""

from __future__ import annotations

import functools

from ddlsim.sim.workloads.graph import Workload, check_batch, check_dtype
from ddlsim.sim.workloads.net import Net, start

CIFAR_INPUT = (3, 32, 32)


def _conv_bn(net: Net, name: str, out_ch: int) -> None:
    net.conv(f"{name}.conv", out_ch, 3, 1, 1, bias=False)
    net.bn(f"{name}.bn")
    net.elementwise(f"{name}.relu", "relu")


@functools.lru_cache(maxsize=16)
def _resnet9(batch: int, dtype: str) -> Workload:
    net = start(batch, CIFAR_INPUT, dtype)
    _conv_bn(net, "prep", 64)
    for layer, width, residual in (("layer1", 128, True), ("layer2", 256, False),
                                   ("layer3", 512, True)):
        _conv_bn(net, layer, width)
        net.pool(f"{layer}.pool", "max", 2)
        if residual:
            _conv_bn(net, f"{layer}.residual.res1", width)
            _conv_bn(net, f"{layer}.residual.res2", width)
            net.add(f"{layer}.residual.add")
    net.pool("pool", "max", 4)
    net.linear("linear", 10, bias=False)
    net.softmax_xent()
    return net.workload("resnet9-cifar", CIFAR_INPUT, dtype)


def resnet9_cifar(batch: int, dtype: str = "float32") -> Workload:
    """ResNet-9 of David Page's DAWNBench CIFAR-10 entry (github.com/davidcpage/cifar10-fast
    ``dawn.py``, ``net()``): conv-bn-relu blocks of 64 (prep), 128 (layer1), 256 (layer2)
    and 512 (layer3) channels, 3x3 convolutions without bias, a 2x2 max-pool after each
    layer's first block, two-block residuals on layer1 and layer3, a 4x4 max-pool and a
    512 -> 10 linear layer without bias (its x0.125 scale is not a layer). 6,573,120
    parameters. ``batch``: images per GPU."""
    check_batch(batch)
    check_dtype(dtype)
    return _resnet9(batch, dtype)


def _preact_bottleneck(net: Net, prefix: str, planes: int, stride: int) -> None:
    """PreActBottleneck of stanford-futuredata/dawn-bench-models (pytorch/CIFAR10/benchmark/
    cifar10/models/resnet.py): bn-relu-conv 1x1, bn-relu-conv 3x3 (the stride), bn-relu-conv
    1x1 (4x planes); a 1x1 projection of the pre-activated input when the shape changes."""
    c_in = net.shape[0]
    net.bn(f"{prefix}.bn1")
    net.elementwise(f"{prefix}.relu1", "relu")
    pre = net.shape
    for j, (ch, kernel, s, pad) in enumerate(((planes, 1, 1, 0), (planes, 3, stride, 1),
                                               (4 * planes, 1, 1, 0)), start=1):
        if j > 1:
            net.bn(f"{prefix}.bn{j}")
            net.elementwise(f"{prefix}.relu{j}", "relu")
        net.conv(f"{prefix}.conv{j}", ch, kernel, s, pad, bias=False)
    main = net.shape
    if stride != 1 or c_in != 4 * planes:
        net.conv(f"{prefix}.shortcut", 4 * planes, 1, stride, 0, bias=False, src=pre)
    if net.shape != main:  # pragma: no cover - construction invariant
        raise AssertionError(f"{prefix}: shortcut shape {net.shape} != main path {main}")
    net.add(f"{prefix}.add")


@functools.lru_cache(maxsize=8)
def _resnet164(batch: int, dtype: str) -> Workload:
    net = start(batch, CIFAR_INPUT, dtype)
    net.conv("conv1", 16, 3, 1, 1, bias=False)
    for section, planes in enumerate((16, 32, 64)):
        for b in range(18):
            _preact_bottleneck(net, f"section_{section}.{b}", planes,
                               2 if (section > 0 and b == 0) else 1)
    net.bn("bn1")
    net.elementwise("relu", "relu")
    net.pool("avgpool", "avg", 8)
    net.linear("fc", 10)
    net.softmax_xent()
    return net.workload("resnet164-cifar", CIFAR_INPUT, dtype)


def resnet164_cifar(batch: int, dtype: str = "float32") -> Workload:
    """Pre-activation bottleneck ResNet-164 for CIFAR-10 (He et al. 2016, 'Identity Mappings
    in Deep Residual Networks', arXiv 1603.05027; DAWNBench's reference implementation,
    ``PreActResNet164`` in stanford-futuredata/dawn-bench-models): a 3x3 conv of 16
    channels, three sections of 18 pre-activation bottlenecks (16, 32, 64 planes, 4x
    expansion; the first of sections 2 and 3 with stride 2), bn-relu, 8x8 average pool and
    a 256 -> 10 linear layer. 1,703,258 parameters (the paper's 1.7M). ``batch``: images per
    GPU."""
    check_batch(batch)
    check_dtype(dtype)
    return _resnet164(batch, dtype)
