"""Workloads: the layer graphs a training step runs, as lists of kernel calls.

A :class:`Workload` is an ordered tuple of :class:`Layer` objects. Each layer lists
exactly the kernel calls (:class:`ddlsim.opspec.KernelCall`) its forward pass and its
backward pass run, how many parameters it owns and how much activation memory it keeps
for the backward pass. The forward pass runs the layers in order; the backward pass runs
them in reverse order, each layer's ``bwd`` calls in the order given.

Conventions (all counts are for the whole per-GPU batch, i.e. one iteration of one
replica):

* **Linear layers** with ``rows`` input rows (``batch`` for CNN/MLP heads,
  ``batch * seq`` for transformers), ``in`` input and ``out`` output features:
  forward ``gemm(m=rows, n=out, k=in)`` (Y = X W^T), backward data
  ``gemm(m=rows, n=in, k=out)`` (dX = dY W), backward weight ``gemm(m=out, n=in, k=rows)``
  (dW = dY^T X). A bias adds ``in*out + out`` parameters, an ``add(numel=rows*out)`` to
  the forward pass and an ``add(numel=rows*out)`` (the column sum giving the bias
  gradient) after the weight gradient in the backward pass.
* **Convolutions** run ``conv2d_fwd`` forward and ``conv2d_bwd_data`` then
  ``conv2d_bwd_filter`` backward, all with the forward shape ``(n,c,h,w,k,r,s,stride,
  pad)``; a bias adds an ``add`` over the output as for linear layers.
* **No gradient for the input.** As frameworks do, the backward pass computes no
  gradient with respect to the input data: the first layer with parameters skips its
  data-gradient kernel, and parameter-free layers before it run no backward at all.
* **Residual adds** run ``add`` forward; their backward ``add`` stands for the sum of
  the two gradient branches at the fork where the residual started.
* **Not modelled:** dropout, flatten/reshape (no kernel), attention scaling and causal
  masking (folded into the softmax; the attention matmuls count the full ``s x s``
  score matrix, as the Megatron FLOP formula does).

``activation_elems`` counts the elements of the forward tensors that the layer's backward
kernels read, for the whole batch, counted per layer without de-duplicating tensors that
two layers share (a ReLU's output that the next convolution also saves is counted by both,
as in a framework without in-place activations): conv/linear: the input; relu: the output
(its mask); gelu: the input; max-pool: input and output; avg-pool, add: nothing;
batchnorm: the input (per-channel mean and inverse std, which do not grow with the
batch, are left out); layernorm: the input plus the per-row mean and inverse std;
attention: Q, K, V and the softmax probabilities; embedding: the token ids;
softmax_xent: the probabilities. Layers with no backward keep nothing. Every term is
proportional to the batch.

FLOPs come from :func:`ddlsim.opspec.flops` (a multiply-add is 2).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ddlsim.errors import ConfigError, unknown_name
from ddlsim.opspec import KernelCall, call, conv_out, flops
from ddlsim.units import dtype_bytes

#: Layer kinds a :class:`Layer` may have.
LAYER_KINDS = (
    "conv", "linear", "pool", "relu", "gelu", "bn", "layernorm", "add", "attention",
    "embedding", "softmax_xent",
)

#: Ops whose FLOPs count as multiply-accumulates (torchvision-style MAC counts).
MATMUL_OPS = frozenset({"gemm", "bmm", "conv2d_fwd", "conv2d_bwd_data", "conv2d_bwd_filter"})


def _sum_flops(calls: Sequence[KernelCall]) -> float:
    return float(sum(flops(kc) for kc in calls))


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer of a workload and the kernel calls of its training step.

    ``fwd`` / ``bwd``: the calls of the forward and backward pass, in execution order.
    ``param_count``: trainable parameters the layer owns (a tied weight counts once, at
    its owner). ``activation_elems``: elements kept for the backward pass, whole batch
    (see the module docstring for what is counted). ``output_elems``: elements of the
    layer's output, whole batch (what a pipeline stage boundary sends).
    """

    name: str
    kind: str
    fwd: tuple[KernelCall, ...]
    bwd: tuple[KernelCall, ...] = ()
    param_count: int = 0
    activation_elems: int = 0
    output_elems: int = 0

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("layer.name: must be a non-empty string, got ''")
        if self.kind not in LAYER_KINDS:
            raise ConfigError(f"layer {self.name!r} kind: must be one of "
                              f"{', '.join(LAYER_KINDS)}, got {self.kind!r}")
        for label in ("param_count", "activation_elems", "output_elems"):
            value = getattr(self, label)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"layer {self.name!r} {label}: must be an integer >= 0, "
                                  f"got {value!r}")
        for label in ("fwd", "bwd"):
            calls = getattr(self, label)
            if not isinstance(calls, tuple) or not all(isinstance(kc, KernelCall)
                                                       for kc in calls):
                raise ConfigError(f"layer {self.name!r} {label}: must be a tuple of "
                                  f"KernelCall, got {calls!r}")

    @property
    def fwd_flops(self) -> float:
        """FLOPs of the forward calls."""
        return _sum_flops(self.fwd)

    @property
    def bwd_flops(self) -> float:
        """FLOPs of the backward calls."""
        return _sum_flops(self.bwd)

    def param_bytes(self, dtype: str = "float32") -> float:
        """Bytes of this layer's parameters stored as ``dtype``."""
        return float(self.param_count * dtype_bytes(dtype))


@dataclass(frozen=True)
class Workload:
    """A model's training step for one replica: ``batch`` samples through ``layers``.

    ``batch``: samples per GPU per iteration. A sample is one input of ``input_shape``
    (per-sample, without the batch axis): an image ``(c, h, w)``, a feature vector
    ``(f,)``, or for GPT one sequence of ``tokens_per_sample == seq`` tokens, shape
    ``(seq,)``. ``dtype``: element type of parameters, activations and gradients.
    ``hyper``: the builder's architecture parameters as ``(name, value)`` pairs (e.g.
    GPT's ``hidden`` and ``heads`` for tensor parallelism); see :attr:`hyperparams`.
    """

    name: str
    batch: int
    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]
    dtype: str = "float32"
    tokens_per_sample: int = 1
    hyper: tuple[tuple[str, int], ...] = ()
    _totals: tuple[float, float, int, int] = field(init=False, repr=False, compare=False)
    _update: tuple[KernelCall, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_batch(self.batch)
        _check_dtype(self.dtype)
        if not self.layers:
            raise ConfigError(f"workload {self.name!r} layers: must not be empty, got ()")
        if not isinstance(self.tokens_per_sample, int) or self.tokens_per_sample < 1:
            raise ConfigError(f"tokens_per_sample: must be an integer >= 1, "
                              f"got {self.tokens_per_sample!r}")
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ConfigError(f"workload {self.name!r} layers: names must be unique, "
                              f"{dup!r} repeats")
        # Totals are computed once; identical call tuples (repeated blocks) share the work.
        memo: dict[tuple[KernelCall, ...], float] = {}

        def total(calls: tuple[KernelCall, ...]) -> float:
            if calls not in memo:
                memo[calls] = _sum_flops(calls)
            return memo[calls]

        fwd = sum(total(layer.fwd) for layer in self.layers)
        bwd = sum(total(layer.bwd) for layer in self.layers)
        params = sum(layer.param_count for layer in self.layers)
        acts = sum(layer.activation_elems for layer in self.layers)
        object.__setattr__(self, "_totals", (float(fwd), float(bwd), params, acts))
        object.__setattr__(self, "_update", tuple(
            call("sgd_update", numel=layer.param_count)
            for layer in self.layers if layer.param_count))

    @property
    def param_count(self) -> int:
        """Trainable parameters of the whole model."""
        return self._totals[2]

    @property
    def fwd_flops(self) -> float:
        """FLOPs of one forward pass over the batch."""
        return self._totals[0]

    @property
    def bwd_flops(self) -> float:
        """FLOPs of one backward pass over the batch."""
        return self._totals[1]

    @property
    def train_flops(self) -> float:
        """Forward plus backward FLOPs of one iteration (the optimizer update excluded)."""
        return self._totals[0] + self._totals[1]

    @property
    def activation_elems(self) -> int:
        """Sum of the layers' ``activation_elems`` (whole batch)."""
        return self._totals[3]

    @property
    def update(self) -> tuple[KernelCall, ...]:
        """Optimizer calls of one iteration: one ``sgd_update`` per layer with parameters."""
        return self._update

    @property
    def tokens_per_iteration(self) -> int:
        """``batch * tokens_per_sample``: tokens one replica processes per iteration."""
        return self.batch * self.tokens_per_sample

    @property
    def hyperparams(self) -> dict[str, int]:
        """``hyper`` as a dict (empty for models without named hyperparameters)."""
        return dict(self.hyper)

    def param_bytes(self, dtype: str | None = None) -> float:
        """Bytes of all parameters stored as ``dtype`` (default: the workload's dtype)."""
        return float(self.param_count * dtype_bytes(dtype or self.dtype))

    def grad_bytes(self, dtype: str | None = None) -> float:
        """Bytes of one full gradient (what data parallelism allreduces) in ``dtype``."""
        return self.param_bytes(dtype)

    def layer(self, name: str) -> Layer:
        """The layer called ``name``; ConfigError with a suggestion if there is none."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise unknown_name("layer", name, [layer.name for layer in self.layers], "layer")


# --------------------------------------------------------------------------- validation

def _check_int(label: str, value: object, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{label}: must be an integer >= {minimum}, got {value!r}")
    return value


def _check_batch(batch: object) -> int:
    return _check_int("batch", batch)


def _check_dtype(dtype: object) -> str:
    try:
        dtype_bytes(dtype)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return dtype  # type: ignore[return-value]


# --------------------------------------------------------------------------- layer factory

class _Net:
    """Builds a layer list while tracking the per-sample activation shape and whether the
    current activation needs a gradient (it does once any layer with parameters ran).

    Shapes are per sample, ``(c, h, w)`` for images or ``(f,)`` for features.
    """

    def __init__(self, batch: int, input_shape: tuple[int, ...]) -> None:
        self.n = batch
        self.shape = input_shape
        self.grad = False  # does the current activation need a gradient?
        self.layers: list[Layer] = []

    def _push(self, layer: Layer, out_shape: tuple[int, ...]) -> tuple[int, ...]:
        self.layers.append(layer)
        self.shape = out_shape
        return out_shape

    def _image(self, what: str) -> tuple[int, int, int]:
        if len(self.shape) != 3:
            raise ConfigError(f"{what}: needs an image input (c, h, w), got shape {self.shape}")
        return self.shape  # type: ignore[return-value]

    def conv(self, name: str, out_ch: int, kernel: int, stride: int = 1, pad: int = 0,
             bias: bool = True, src: tuple[int, ...] | None = None) -> tuple[int, ...]:
        """Square ``kernel`` x ``kernel`` convolution to ``out_ch`` channels (``src``: input
        shape when it is not the current one, e.g. a residual shortcut)."""
        if src is not None:
            self.shape = src
        c, h, w = self._image(name)
        p, q = conv_out(h, kernel, stride, pad), conv_out(w, kernel, stride, pad)
        if p < 1 or q < 1:
            raise ConfigError(f"{name}: kernel {kernel} with pad {pad} does not fit the "
                              f"{h}x{w} input")
        shape = dict(n=self.n, c=c, h=h, w=w, k=out_ch, r=kernel, s=kernel, stride=stride,
                     pad=pad)
        out = self.n * out_ch * p * q
        fwd = [call("conv2d_fwd", **shape)]
        bwd = [call("conv2d_bwd_data", **shape)] if self.grad else []
        bwd.append(call("conv2d_bwd_filter", **shape))
        if bias:
            fwd.append(call("add", numel=out))
            bwd.append(call("add", numel=out))
        params = out_ch * c * kernel * kernel + (out_ch if bias else 0)
        self.grad = True
        layer = Layer(name, "conv", tuple(fwd), tuple(bwd), params, self.n * c * h * w, out)
        return self._push(layer, (out_ch, p, q))

    def linear(self, name: str, out: int, bias: bool = True, rows: int | None = None,
               owns_weight: bool = True) -> tuple[int, ...]:
        """Fully connected layer to ``out`` features over ``rows`` rows (default: batch).
        The input is flattened. ``owns_weight=False``: the weight is tied to another layer,
        which counts the parameters; the weight gradient is still computed here."""
        rows = self.n if rows is None else rows
        k = 1
        for d in self.shape:
            k *= d
        n_out = rows * out
        fwd = [call("gemm", m=rows, n=out, k=k)]
        bwd = [call("gemm", m=rows, n=k, k=out)] if self.grad else []
        bwd.append(call("gemm", m=out, n=k, k=rows))
        if bias:
            fwd.append(call("add", numel=n_out))
            bwd.append(call("add", numel=n_out))
        params = (out * k if owns_weight else 0) + (out if bias else 0)
        self.grad = True
        layer = Layer(name, "linear", tuple(fwd), tuple(bwd), params, rows * k, n_out)
        return self._push(layer, (out,))

    def _numel(self, rows: int | None = None) -> int:
        size = self.n if rows is None else rows
        for d in self.shape:
            size *= d
        return size

    def elementwise(self, name: str, kind: str, rows: int | None = None) -> tuple[int, ...]:
        """``relu`` or ``gelu`` over the current activation."""
        numel = self._numel(rows)
        fwd = (call(f"{kind}_fwd", numel=numel),)
        bwd = (call(f"{kind}_bwd", numel=numel),) if self.grad else ()
        return self._push(Layer(name, kind, fwd, bwd, 0, numel if bwd else 0, numel),
                          self.shape)

    def pool(self, name: str, mode: str, kernel: int, stride: int | None = None,
             pad: int = 0) -> tuple[int, ...]:
        """``mode`` = ``'max'`` or ``'avg'`` pooling, ``stride`` defaulting to ``kernel``."""
        stride = kernel if stride is None else stride
        c, h, w = self._image(name)
        p, q = conv_out(h, kernel, stride, pad), conv_out(w, kernel, stride, pad)
        if p < 1 or q < 1:
            raise ConfigError(f"{name}: pool kernel {kernel} with pad {pad} does not fit the "
                              f"{h}x{w} input")
        shape = dict(n=self.n, c=c, h=h, w=w, kernel=kernel, stride=stride, pad=pad)
        fwd = (call(f"{mode}pool_fwd", **shape),)
        bwd = (call(f"{mode}pool_bwd", **shape),) if self.grad else ()
        out = self.n * c * p * q
        saved = self.n * c * h * w + out if (bwd and mode == "max") else 0
        return self._push(Layer(name, "pool", fwd, bwd, 0, saved, out), (c, p, q))

    def bn(self, name: str) -> tuple[int, ...]:
        """Training-mode batch normalisation (2 parameters per channel)."""
        c, h, w = self._image(name)
        shape = dict(n=self.n, c=c, h=h, w=w)
        numel = self.n * c * h * w
        fwd = (call("batchnorm_fwd", **shape),)
        bwd = (call("batchnorm_bwd", **shape),)
        self.grad = True
        return self._push(Layer(name, "bn", fwd, bwd, 2 * c, numel, numel), self.shape)

    def add(self, name: str, rows: int | None = None) -> tuple[int, ...]:
        """Residual add of two activations of the current shape."""
        numel = self._numel(rows)
        fwd = (call("add", numel=numel),)
        bwd = (call("add", numel=numel),) if self.grad else ()
        return self._push(Layer(name, "add", fwd, bwd, 0, 0, numel), self.shape)

    def softmax_xent(self, name: str = "loss", rows: int | None = None) -> tuple[int, ...]:
        """Softmax + cross-entropy over the current features as classes."""
        rows = self.n if rows is None else rows
        classes = self._numel(1)
        fwd = (call("softmax_xent_fwd", n=rows, classes=classes),)
        bwd = (call("softmax_xent_bwd", n=rows, classes=classes),) if self.grad else ()
        saved = rows * classes if bwd else 0
        return self._push(Layer(name, "softmax_xent", fwd, bwd, 0, saved, rows), (1,))

    def workload(self, name: str, input_shape: tuple[int, ...], dtype: str,
                 **kwargs: object) -> Workload:
        return Workload(name, self.n, tuple(input_shape), tuple(self.layers), dtype,
                        **kwargs)  # type: ignore[arg-type]


def _start(batch: object, input_shape: tuple[int, ...], dtype: object) -> _Net:
    _check_batch(batch)
    _check_dtype(dtype)
    return _Net(batch, input_shape)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- CNN builders

def lenet5(batch: int, dtype: str = "float32") -> Workload:
    """LeNet-5, modern variant (counts computed from layer shapes): 1x32x32 input, conv
    5x5 6ch -> ReLU -> max-pool 2 -> conv 5x5 16ch (full C3 connectivity) -> ReLU ->
    max-pool 2 -> fc 120 -> ReLU -> fc 84 -> ReLU -> fc 10 -> softmax cross-entropy.
    61,706 parameters, 416,520 forward MACs per image. ``batch``: images per GPU."""
    net = _start(batch, (1, 32, 32), dtype)
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
    net = _start(batch, (1, 8, 8), dtype)
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
        _check_int(f"sizes[{i}]", size)
    net = _start(batch, (sizes[0],), dtype)
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
    net = _start(batch, (3, 224, 224), dtype)
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
    net = _start(batch, (3, 224, 224), dtype)
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


def _bottleneck(net: _Net, prefix: str, width: int, stride: int) -> None:
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
    net = _start(batch, (3, 224, 224), dtype)
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
def _resnet50(batch: int, dtype: str) -> Workload:
    return _resnet(batch, dtype, "resnet50")


@functools.lru_cache(maxsize=8)
def _resnet_deep(batch: int, dtype: str, name: str) -> Workload:
    return _resnet(batch, dtype, name)


def resnet50(batch: int, dtype: str = "float32") -> Workload:
    """ResNet-50 v1.5 (stride on the 3x3 convolution, as torchvision) at 224x224, with
    batchnorm and residual adds (25,557,032 parameters, 4.089 GMACs: torchvision weight
    metadata num_params/_ops). Convolutions carry no bias (batchnorm follows each)."""
    _check_batch(batch)
    _check_dtype(dtype)
    return _resnet50(batch, dtype)


def resnet101(batch: int, dtype: str = "float32") -> Workload:
    """ResNet-101 v1.5 at 224x224: ResNet-50's bottlenecks with 23 blocks in stage 3
    (He et al. 2015 Table 1); torchvision ``resnet101``: 44,549,160 parameters,
    7.80 GMACs (its weight metadata ``num_params`` / ``_ops``)."""
    _check_batch(batch)
    _check_dtype(dtype)
    return _resnet_deep(batch, dtype, "resnet101")


def resnet152(batch: int, dtype: str = "float32") -> Workload:
    """ResNet-152 v1.5 at 224x224: 8 and 36 blocks in stages 2 and 3 (He et al. 2015
    Table 1); torchvision ``resnet152``: 60,192,808 parameters, 11.51 GMACs."""
    _check_batch(batch)
    _check_dtype(dtype)
    return _resnet_deep(batch, dtype, "resnet152")


# --------------------------------------------------------------------------- GPT

@dataclass(frozen=True)
class GptPreset:
    """A named GPT configuration and where its numbers come from."""

    layers: int
    hidden: int
    heads: int
    seq: int
    vocab: int
    source: str

    def config(self) -> dict[str, int]:
        return dict(layers=self.layers, hidden=self.hidden, heads=self.heads, seq=self.seq,
                    vocab=self.vocab)


_BROWN = ("Brown et al. 2020 'Language Models are Few-Shot Learners' Table 2.1; "
          "vocab 50257 (GPT-2 BPE)")
_MEG = ("Narayanan et al. SC'21 'Efficient Large-Scale Language Model Training on GPU "
        "Clusters Using Megatron-LM' (arXiv 2104.04473) Table 1, {size} row (heads not "
        "re-verified there), vocab 51200, seq 2048")

_NEMO_GPT = ("NVIDIA/NeMo-Framework-Launcher launcher_scripts/conf/training/gpt3/{size}.yaml "
             "(num_layers, hidden_size, num_attention_heads, ffn 4h, encoder_seq_length "
             "2048); vocab 50257: GPT2BPETokenizer (Megatron pads it to a multiple of "
             "128 x tp, not modelled, as for gpt3-175b)")

#: Named GPT configurations for :func:`get_workload`.
GPT_PRESETS: dict[str, GptPreset] = {
    "gpt-small": GptPreset(12, 768, 12, 1024, 50257,
                           "Radford et al. 2019 GPT-2 'small' (124M): 12 layers, d=768, "
                           "12 heads, context 1024, vocab 50257 (HF gpt2 config.json)"),
    # Table 2.1 lists 24 heads of d_head 128 for GPT-3 XL, which does not multiply to
    # d_model 2048; we keep d_head 128 (16 heads, as EleutherAI GPT-Neo 1.3B). The head
    # count changes neither parameters nor FLOPs, only the attention kernel shapes.
    "gpt3-1.3b": GptPreset(24, 2048, 16, 2048, 50257, _BROWN + " ('GPT-3 XL', 16 heads)"),
    "gpt3-13b": GptPreset(40, 5120, 40, 2048, 50257, _BROWN),
    "gpt3-175b": GptPreset(96, 12288, 96, 2048, 50257, _BROWN + "; 174.6e9 parameters "
                           "= 12*l*h^2 + (V+s)*h"),
    # NeMo's GPT-3 recipes of the NeMo 24.07 performance table (NVIDIA/NeMo
    # docs/source/performance/performance_summary.md, commit 070a0bb1)
    "gpt3-5b": GptPreset(24, 4096, 32, 2048, 50257, _NEMO_GPT.format(size="5b")),
    "gpt3-20b": GptPreset(44, 6144, 48, 2048, 50257, _NEMO_GPT.format(size="20b")),
    "megatron-1.7b": GptPreset(24, 2304, 24, 2048, 51200, _MEG.format(size="GPT 1.7B")),
    "megatron-3.6b": GptPreset(30, 3072, 32, 2048, 51200, _MEG.format(size="GPT 3.6B")),
    "megatron-7.5b": GptPreset(36, 4096, 32, 2048, 51200, _MEG.format(size="GPT 7.5B")),
    "megatron-18.4b": GptPreset(40, 6144, 48, 2048, 51200, _MEG.format(size="GPT 18.4B")),
    "megatron-39.1b": GptPreset(48, 8192, 64, 2048, 51200, _MEG.format(size="GPT 39.1B")),
    "megatron-76.1b": GptPreset(60, 10240, 80, 2048, 51200, _MEG.format(size="GPT 76.1B")),
    "megatron-145.6b": GptPreset(80, 12288, 96, 2048, 51200, _MEG.format(size="GPT 145.6B")),
    "megatron-310.1b": GptPreset(96, 16384, 128, 2048, 51200, _MEG.format(size="GPT 310.1B")),
    "megatron-529.6b": GptPreset(105, 20480, 128, 2048, 51200,
                                 _MEG.format(size="GPT 529.6B")),
    "megatron-1t": GptPreset(128, 25600, 160, 2048, 51200, _MEG.format(size="GPT 1008.0B")),
}


def _attention_calls(bh: int, seq: int, d: int) -> tuple[tuple[KernelCall, ...], ...]:
    """Forward and backward kernels of the attention core for ``bh`` = batch x heads
    heads of size ``d`` over ``seq`` tokens (full s x s scores; masking folds into the
    softmax): ``(fwd, bwd)``."""
    def bmm(m: int, n: int, k: int) -> KernelCall:
        return call("bmm", b=bh, m=m, n=n, k=k)

    fwd = (bmm(seq, seq, d),  # S = Q K^T
           call("softmax_fwd", rows=bh * seq, cols=seq),  # P = softmax(S)
           bmm(seq, d, seq))  # O = P V
    bwd = (bmm(seq, seq, d),  # dP = dO V^T
           bmm(seq, d, seq),  # dV = P^T dO
           call("softmax_bwd", rows=bh * seq, cols=seq),  # dS
           bmm(seq, d, seq),  # dQ = dS K
           bmm(seq, d, seq))  # dK = dS^T Q
    return fwd, bwd


def _ln_layer(name: str, rows: int, hidden: int) -> Layer:
    """LayerNorm over ``rows`` rows of ``hidden`` (weight and bias: ``2*hidden``)."""
    numel = rows * hidden
    return Layer(name, "layernorm", (call("layernorm_fwd", rows=rows, cols=hidden),),
                 (call("layernorm_bwd", rows=rows, cols=hidden),), 2 * hidden,
                 numel + 2 * rows, numel)


def _gpt_block(net: _Net, i: int, batch: int, hidden: int, heads: int, seq: int,
               ffn: int) -> list[Layer]:
    """The layers of transformer block ``i`` (pre-LN), in forward order."""
    rows = batch * seq
    numel = rows * hidden
    add = (call("add", numel=numel),)
    bh = batch * heads
    attn_fwd, attn_bwd = _attention_calls(bh, seq, hidden // heads)
    p = f"h.{i}"
    layers = [_ln_layer(f"{p}.ln1", rows, hidden)]
    net.shape = (hidden,)
    net.linear(f"{p}.attn.qkv", 3 * hidden, rows=rows)
    layers.append(net.layers.pop())
    layers.append(Layer(f"{p}.attn.core", "attention", attn_fwd, attn_bwd, 0,
                        3 * numel + bh * seq * seq, numel))
    net.shape = (hidden,)
    net.linear(f"{p}.attn.proj", hidden, rows=rows)
    layers.append(net.layers.pop())
    layers.append(Layer(f"{p}.add1", "add", add, add, 0, 0, numel))
    layers.append(_ln_layer(f"{p}.ln2", rows, hidden))
    net.linear(f"{p}.mlp.fc1", ffn, rows=rows)
    layers.append(net.layers.pop())
    net.elementwise(f"{p}.mlp.gelu", "gelu", rows=rows)
    layers.append(net.layers.pop())
    net.linear(f"{p}.mlp.fc2", hidden, rows=rows)
    layers.append(net.layers.pop())
    layers.append(Layer(f"{p}.add2", "add", add, add, 0, 0, numel))
    return layers


@functools.lru_cache(maxsize=32)
def _gpt(batch: int, layers: int, hidden: int, heads: int, seq: int, vocab: int,
         ffn_mult: int, tied_embeddings: bool, dtype: str, name: str) -> Workload:
    net = _Net(batch, (seq,))
    rows = batch * seq
    numel = rows * hidden
    emb = Layer("embedding", "embedding",
                (call("embedding_fwd", tokens=rows, hidden=hidden, vocab=vocab),
                 call("embedding_fwd", tokens=rows, hidden=hidden, vocab=seq),
                 call("add", numel=numel)),
                (call("embedding_bwd", tokens=rows, hidden=hidden, vocab=vocab),
                 call("embedding_bwd", tokens=rows, hidden=hidden, vocab=seq)),
                (vocab + seq) * hidden, rows, numel)
    net.grad = True
    out = [emb]
    block = _gpt_block(net, 0, batch, hidden, heads, seq, ffn_mult * hidden)
    out.extend(block)
    # Every block has the same calls: reuse block 0's tuples, renaming the layers.
    for i in range(1, layers):
        prefix = f"h.{i}."
        out.extend(Layer(prefix + lay.name[4:], lay.kind, lay.fwd, lay.bwd, lay.param_count,
                         lay.activation_elems, lay.output_elems) for lay in block)
    out.append(_ln_layer("ln_f", rows, hidden))
    net.layers = out
    net.shape = (hidden,)
    net.linear("lm_head", vocab, bias=False, rows=rows, owns_weight=not tied_embeddings)
    net.shape = (vocab,)
    net.softmax_xent("loss", rows=rows)
    hyper = (("layers", layers), ("hidden", hidden), ("heads", heads), ("seq", seq),
             ("vocab", vocab), ("ffn_mult", ffn_mult), ("tied_embeddings", int(tied_embeddings)))
    return Workload(name, batch, (seq,), tuple(net.layers), dtype, tokens_per_sample=seq,
                    hyper=hyper)


def gpt(batch: int, layers: int, hidden: int, heads: int, seq: int, vocab: int,
        ffn_mult: int = 4, tied_embeddings: bool = True, dtype: str = "float32",
        name: str = "gpt") -> Workload:
    """Pre-LN GPT decoder. ``batch``: sequences per GPU per iteration (a sample is one
    sequence of ``seq`` tokens); ``layers``: transformer blocks; ``hidden``: model width;
    ``heads``: attention heads (must divide ``hidden``); ``seq``: tokens per sequence;
    ``vocab``: vocabulary size; ``ffn_mult``: MLP width / hidden; ``tied_embeddings``:
    the output projection reuses the token embedding (no extra parameters).

    Layers: embedding (tokens + learned positions, summed), then per block ``h.{i}``:
    ln1, attn.qkv (gemm), attn.core (bmm QK^T, softmax, bmm PV), attn.proj (gemm), add1,
    ln2, mlp.fc1 (gemm), mlp.gelu, mlp.fc2 (gemm), add2; then ln_f, lm_head (gemm to
    ``vocab``, no bias) and loss (softmax cross-entropy). Linear layers have biases.
    Parameters: ``12*l*h^2 + 13*l*h + (V+s)*h + 2*h`` for ``ffn_mult=4`` and tied
    embeddings. Matmul FLOPs per iteration: ``72*B*s*l*h^2*(1 + s/(6h) + V/(12*l*h))``
    (NVIDIA/Megatron-LM ``num_floating_point_operations`` for a GPT), exactly.
    """
    _check_batch(batch)
    _check_dtype(dtype)
    for label, value in (("layers", layers), ("hidden", hidden), ("heads", heads),
                         ("seq", seq), ("vocab", vocab), ("ffn_mult", ffn_mult)):
        _check_int(label, value)
    if hidden % heads:
        raise ConfigError(f"heads: must divide hidden={hidden}, got {heads}")
    if not isinstance(tied_embeddings, bool):
        raise ConfigError(f"tied_embeddings: must be true or false, got {tied_embeddings!r}")
    return _gpt(batch, layers, hidden, heads, seq, vocab, ffn_mult, tied_embeddings, dtype,
                name)


# --------------------------------------------------------------------------- Llama

@dataclass(frozen=True)
class LlamaPreset:
    """A named decoder configuration (Llama- or Nemotron-style) and where its numbers come
    from."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    seq: int
    vocab: int
    params: float | None  # published parameter count (rounded as published), for tests
    source: str

    def config(self) -> dict[str, int]:
        return dict(layers=self.layers, hidden=self.hidden, heads=self.heads,
                    kv_heads=self.kv_heads, ffn=self.ffn, seq=self.seq, vocab=self.vocab)


_LLAMA2 = ("Touvron et al. 2023 'Llama 2' (arXiv 2307.09288) Table 1 (size, context 4096, "
           "GQA for 70B); widths from meta-llama/Llama-2-{n}-hf config.json "
           "(hidden, intermediate_size, heads, key_value_heads, vocab 32000)")
_LLAMA3 = ("Llama Team 2024 'The Llama 3 Herd of Models' (arXiv 2407.21783) Table 3 "
           "(layers, width, FFN width, heads, 8 KV heads, vocab 128,256); seq 8192")

#: Named Llama configurations for :func:`get_workload` (``params``: published size).
LLAMA_PRESETS: dict[str, LlamaPreset] = {
    "llama2-7b": LlamaPreset(32, 4096, 32, 32, 11008, 4096, 32000, 6.74e9,
                             _LLAMA2.format(n="7b") + "; HF model card: 6.74B"),
    "llama2-13b": LlamaPreset(40, 5120, 40, 40, 13824, 4096, 32000, 13.0e9,
                              _LLAMA2.format(n="13b") + "; HF model card: 13.0B"),
    "llama2-70b": LlamaPreset(80, 8192, 64, 8, 28672, 4096, 32000, 69.0e9,
                              _LLAMA2.format(n="70b") + "; HF model card: 69.0B"),
    "llama3-8b": LlamaPreset(32, 4096, 32, 8, 14336, 8192, 128256, 8.03e9,
                             _LLAMA3 + "; HF model card: 8.03B"),
    "llama3-70b": LlamaPreset(80, 8192, 64, 8, 28672, 8192, 128256, 70.6e9,
                              _LLAMA3 + "; HF model card: 70.6B"),
    "llama3-405b": LlamaPreset(126, 16384, 128, 8, 53248, 8192, 128256, 405e9,
                               _LLAMA3 + " (405B)"),
}


def _norm_layer(name: str, rows: int, hidden: int) -> Layer:
    """RMSNorm-style norm (``hidden`` weights, no bias), priced as a layernorm kernel."""
    numel = rows * hidden
    return Layer(name, "layernorm", (call("layernorm_fwd", rows=rows, cols=hidden),),
                 (call("layernorm_bwd", rows=rows, cols=hidden),), hidden, numel + rows, numel)


#: MLP variants of :func:`_decoder_block`: SwiGLU (Llama: gate/up fused, three matrices)
#: and squared ReLU (Nemotron: two matrices, no gate).
DECODER_MLPS = ("swiglu", "squared_relu")


def _decoder_block(i: int, batch: int, hidden: int, heads: int, kv_heads: int, ffn: int,
                   seq: int, mlp: str = "swiglu") -> list[Layer]:
    """The layers of a bias-free pre-norm decoder block ``i`` in forward order: Llama
    (``mlp='swiglu'``, RMSNorm) or Nemotron (``mlp='squared_relu'``, LayerNorm with bias,
    Megatron's ``layernorm1p``)."""
    rows = batch * seq
    numel = rows * hidden
    d = hidden // heads
    bh = batch * heads
    p = f"h.{i}"
    net = _Net(batch, (hidden,))
    net.grad = True
    add = (call("add", numel=numel),)
    norm = _norm_layer if mlp == "swiglu" else _ln_layer

    # Grouped-query attention: K and V have kv_heads heads, each shared by heads/kv_heads
    # query heads, so the core attention math is that of full multi-head attention.
    attn_fwd, attn_bwd = _attention_calls(bh, seq, d)
    layers = [norm(f"{p}.ln1", rows, hidden)]
    net.linear(f"{p}.attn.qkv", hidden + 2 * kv_heads * d, bias=False, rows=rows)
    layers.append(net.layers.pop())
    q_kv = rows * (hidden + 2 * kv_heads * d)
    layers.append(Layer(f"{p}.attn.core", "attention", attn_fwd, attn_bwd, 0,
                        q_kv + bh * seq * seq, numel))
    net.shape = (hidden,)
    net.linear(f"{p}.attn.proj", hidden, bias=False, rows=rows)
    layers.append(net.layers.pop())
    layers.append(Layer(f"{p}.add1", "add", add, add, 0, 0, numel))
    layers.append(norm(f"{p}.ln2", rows, hidden))
    net.shape = (hidden,)
    if mlp == "swiglu":
        net.linear(f"{p}.mlp.gate_up", 2 * ffn, bias=False, rows=rows)
        layers.append(net.layers.pop())
        # SwiGLU: silu(gate) * up, priced as an elementwise activation over both halves.
        swi = rows * 2 * ffn
        layers.append(Layer(f"{p}.mlp.swiglu", "gelu", (call("gelu_fwd", numel=swi),),
                            (call("gelu_bwd", numel=swi),), 0, swi, rows * ffn))
        down = f"{p}.mlp.down"
    else:
        net.linear(f"{p}.mlp.fc1", ffn, bias=False, rows=rows)
        layers.append(net.layers.pop())
        # relu(x)^2, priced with the ReLU kernels (same traffic: memory-bound, one read
        # and one write forward); backward needs the input, which is what is kept.
        act = rows * ffn
        layers.append(Layer(f"{p}.mlp.sqrelu", "relu", (call("relu_fwd", numel=act),),
                            (call("relu_bwd", numel=act),), 0, act, act))
        down = f"{p}.mlp.fc2"
    net.shape = (ffn,)
    net.linear(down, hidden, bias=False, rows=rows)
    layers.append(net.layers.pop())
    layers.append(Layer(f"{p}.add2", "add", add, add, 0, 0, numel))
    return layers


def _llama_block(i: int, batch: int, hidden: int, heads: int, kv_heads: int, ffn: int,
                 seq: int) -> list[Layer]:
    """The layers of Llama block ``i`` in forward order (pre-norm, no biases)."""
    return _decoder_block(i, batch, hidden, heads, kv_heads, ffn, seq, "swiglu")


@functools.lru_cache(maxsize=32)
def _decoder(batch: int, layers: int, hidden: int, heads: int, kv_heads: int, ffn: int,
             seq: int, vocab: int, mlp: str, dtype: str, name: str) -> Workload:
    rows = batch * seq
    numel = rows * hidden
    emb = Layer("embedding", "embedding",
                (call("embedding_fwd", tokens=rows, hidden=hidden, vocab=vocab),),
                (call("embedding_bwd", tokens=rows, hidden=hidden, vocab=vocab),),
                vocab * hidden, rows, numel)
    out = [emb]
    block = _decoder_block(0, batch, hidden, heads, kv_heads, ffn, seq, mlp)
    out.extend(block)
    for i in range(1, layers):
        prefix = f"h.{i}."
        out.extend(Layer(prefix + lay.name[4:], lay.kind, lay.fwd, lay.bwd, lay.param_count,
                         lay.activation_elems, lay.output_elems) for lay in block)
    out.append((_norm_layer if mlp == "swiglu" else _ln_layer)("ln_f", rows, hidden))
    net = _Net(batch, (hidden,))
    net.grad = True
    net.layers = out
    net.linear("lm_head", vocab, bias=False, rows=rows)  # untied: owns its weight
    net.shape = (vocab,)
    net.softmax_xent("loss", rows=rows)
    hyper = (("layers", layers), ("hidden", hidden), ("heads", heads), ("kv_heads", kv_heads),
             ("ffn", ffn), ("seq", seq), ("vocab", vocab), ("gated_mlp", int(mlp == "swiglu")))
    return Workload(name, batch, (seq,), tuple(net.layers), dtype, tokens_per_sample=seq,
                    hyper=hyper)


def _check_decoder(batch: int, layers: int, hidden: int, heads: int, kv_heads: int, ffn: int,
                   seq: int, vocab: int, dtype: str) -> None:
    _check_batch(batch)
    _check_dtype(dtype)
    for label, value in (("layers", layers), ("hidden", hidden), ("heads", heads),
                         ("kv_heads", kv_heads), ("ffn", ffn), ("seq", seq), ("vocab", vocab)):
        _check_int(label, value)
    if hidden % heads:
        raise ConfigError(f"heads: must divide hidden={hidden}, got {heads}")
    if heads % kv_heads:
        raise ConfigError(f"kv_heads: must divide heads={heads}, got {kv_heads}")


def llama(batch: int, layers: int, hidden: int, heads: int, kv_heads: int, ffn: int,
          seq: int, vocab: int, dtype: str = "float32", name: str = "llama") -> Workload:
    """Llama-style decoder: ``batch`` sequences of ``seq`` tokens per GPU; ``layers``
    blocks of width ``hidden`` with ``heads`` query heads and ``kv_heads`` key/value heads
    (grouped-query attention; ``kv_heads == heads`` is multi-head attention), a SwiGLU MLP
    of inner width ``ffn`` (three ``hidden x ffn`` matrices), RMSNorm-style norms
    (``hidden`` weights each), no biases, rotary positions (no position table) and an
    untied output projection.

    Parameters: ``2*V*h + l*(2*h^2 + 2*h*kv*d + 3*h*ffn + 2*h) + h`` with ``d = h/heads``.
    Layers per block ``h.{i}``: ln1, attn.qkv, attn.core, attn.proj, add1, ln2,
    mlp.gate_up, mlp.swiglu, mlp.down, add2; then ln_f, lm_head, loss (norms keep
    the GPT names so Megatron's block split finds the blocks).
    """
    _check_decoder(batch, layers, hidden, heads, kv_heads, ffn, seq, vocab, dtype)
    return _decoder(batch, layers, hidden, heads, kv_heads, ffn, seq, vocab, "swiglu", dtype,
                    name)


def llama_param_count(layers: int, hidden: int, heads: int, kv_heads: int, ffn: int,
                      vocab: int) -> int:
    """Closed-form parameter count of :func:`llama` (see its docstring)."""
    d = hidden // heads
    block = 2 * hidden * hidden + 2 * hidden * kv_heads * d + 3 * hidden * ffn + 2 * hidden
    return 2 * vocab * hidden + layers * block + hidden


# --------------------------------------------------------------------------- Nemotron

#: A Nemotron preset has the fields of a Llama one; ``params`` is None where no parameter
#: count is published next to the configuration.
NemotronPreset = LlamaPreset


_NEMOTRON_VOCAB = ("vocab 256000: the Nemotron SentencePiece tokenizer (Parmar et al. 2024 "
                   "'Nemotron-4 15B', arXiv 2402.16819 Sec. 2; nemotron_340b.yaml names "
                   "nemotron_2_256k.model; HF NemotronForCausalLM config.json of the 8B/22B "
                   "conversions: vocab_size 256000)")
_NEMOTRON = ("NVIDIA/NeMo-Framework-Launcher launcher_scripts/conf/training/nemotron/{f}.yaml "
             "(num_layers, hidden_size, ffn_hidden_size, num_attention_heads, "
             "num_query_groups, seq 4096, squared-relu, rope, untied, no bias); "
             "NVIDIA/NeMo nemo/collections/llm/gpt/model/nemotron.py and "
             "tests/collections/llm/gpt/model/test_nemotron.py ({cls}); " + _NEMOTRON_VOCAB)

#: Named Nemotron configurations (NeMo 24.07 performance table: NVIDIA/NeMo
#: docs/source/performance/performance_summary.md, commit 070a0bb1).
NEMOTRON_PRESETS: dict[str, NemotronPreset] = {
    "nemotron-8b": NemotronPreset(32, 4096, 32, 32, 16384, 4096, 256000, None,
                                  _NEMOTRON.format(f="nemotron_8b", cls="Nemotron3Config8B")),
    "nemotron-22b": NemotronPreset(40, 6144, 48, 48, 24576, 4096, 256000, None,
                                   _NEMOTRON.format(f="nemotron_22b",
                                                    cls="Nemotron4Config22B")),
    "nemotron-340b": NemotronPreset(96, 18432, 96, 8, 73728, 4096, 256000, None,
                                    _NEMOTRON.format(f="nemotron_340b",
                                                     cls="Nemotron4Config340B")
                                    + "; Nemotron-4 340B, arXiv 2406.11704 Table 1"),
}


def nemotron(batch: int, layers: int, hidden: int, heads: int, kv_heads: int, ffn: int,
             seq: int, vocab: int, dtype: str = "float32", name: str = "nemotron") -> Workload:
    """Nemotron-style decoder (Nemotron-3/4, Megatron-Core GPT with ``squared-relu``):
    ``batch`` sequences of ``seq`` tokens per GPU; ``layers`` blocks of width ``hidden``
    with ``heads`` query and ``kv_heads`` key/value heads, a two-matrix MLP of width
    ``ffn`` with squared-ReLU activation (no gate), LayerNorm with bias (``layernorm1p``,
    ``2*hidden`` weights), no linear biases, rotary positions (no position table) and an
    untied output projection.

    Parameters: ``2*V*h + l*(2*h^2 + 2*h*kv*d + 2*h*ffn + 4*h) + 2*h`` with ``d =
    h/heads`` (:func:`nemotron_param_count`). Layers per block ``h.{i}``: ln1, attn.qkv,
    attn.core, attn.proj, add1, ln2, mlp.fc1, mlp.sqrelu, mlp.fc2, add2; then ln_f,
    lm_head, loss.
    """
    _check_decoder(batch, layers, hidden, heads, kv_heads, ffn, seq, vocab, dtype)
    return _decoder(batch, layers, hidden, heads, kv_heads, ffn, seq, vocab, "squared_relu",
                    dtype, name)


def nemotron_param_count(layers: int, hidden: int, heads: int, kv_heads: int, ffn: int,
                         vocab: int) -> int:
    """Closed-form parameter count of :func:`nemotron` (see its docstring)."""
    d = hidden // heads
    block = 2 * hidden * hidden + 2 * hidden * kv_heads * d + 2 * hidden * ffn + 4 * hidden
    return 2 * vocab * hidden + layers * block + 2 * hidden


# --------------------------------------------------------------------------- BERT

@dataclass(frozen=True)
class BertPreset:
    """A named BERT configuration, its published parameter count and where both come from."""

    layers: int
    hidden: int
    heads: int
    seq: int
    params: float  # published size of the encoder (BertModel), rounded as published
    source: str

    def config(self) -> dict[str, int]:
        return dict(layers=self.layers, hidden=self.hidden, heads=self.heads, seq=self.seq)


_BERT = ("Devlin et al. 2019 'BERT' (arXiv 1810.04805) Sec. 3: BERT-{size} L={l}, H={h}, A={a}, "
         "{p} parameters; vocab 30522, 512 positions, 2 token types, FFN 4H "
         "(google-research/bert bert_config.json / HF {hf} config.json); seq {s} (phase-1 "
         "pretraining sequence length)")

#: Named BERT configurations for :func:`get_workload`.
BERT_PRESETS: dict[str, BertPreset] = {
    "bert-base": BertPreset(12, 768, 12, 128, 110e6, _BERT.format(
        size="BASE", l=12, h=768, a=12, p="110M", hf="bert-base-uncased", s=128)),
    "bert-large": BertPreset(24, 1024, 16, 128, 340e6, _BERT.format(
        size="LARGE", l=24, h=1024, a=16, p="340M", hf="bert-large-uncased", s=128)),
}

#: BERT's token-type (segment) vocabulary and position table size (Devlin et al. 2019).
BERT_TYPE_VOCAB = 2
BERT_MAX_POSITIONS = 512


def _bert_block(i: int, batch: int, hidden: int, heads: int, seq: int, ffn: int
                ) -> list[Layer]:
    """The layers of BERT encoder block ``i`` in forward order (post-LN, biases)."""
    rows = batch * seq
    numel = rows * hidden
    d = hidden // heads
    bh = batch * heads
    p = f"h.{i}"
    net = _Net(batch, (hidden,))
    net.grad = True
    add = (call("add", numel=numel),)

    # Bidirectional attention: the full s x s score matrix, no mask beyond padding.
    attn_fwd, attn_bwd = _attention_calls(bh, seq, d)
    net.linear(f"{p}.attn.qkv", 3 * hidden, rows=rows)
    layers = [net.layers.pop()]
    layers.append(Layer(f"{p}.attn.core", "attention", attn_fwd, attn_bwd, 0,
                        3 * numel + bh * seq * seq, numel))
    net.shape = (hidden,)
    net.linear(f"{p}.attn.proj", hidden, rows=rows)
    layers.append(net.layers.pop())
    layers.append(Layer(f"{p}.add1", "add", add, add, 0, 0, numel))
    layers.append(_ln_layer(f"{p}.ln1", rows, hidden))
    net.shape = (hidden,)
    net.linear(f"{p}.mlp.fc1", ffn, rows=rows)
    layers.append(net.layers.pop())
    net.elementwise(f"{p}.mlp.gelu", "gelu", rows=rows)
    layers.append(net.layers.pop())
    net.linear(f"{p}.mlp.fc2", hidden, rows=rows)
    layers.append(net.layers.pop())
    layers.append(Layer(f"{p}.add2", "add", add, add, 0, 0, numel))
    layers.append(_ln_layer(f"{p}.ln2", rows, hidden))
    return layers


@functools.lru_cache(maxsize=16)
def _bert(batch: int, layers: int, hidden: int, heads: int, seq: int, vocab: int,
          ffn_mult: int, pretraining_heads: bool, dtype: str, name: str) -> Workload:
    rows = batch * seq
    numel = rows * hidden
    tables = ((vocab, vocab), (BERT_MAX_POSITIONS, seq), (BERT_TYPE_VOCAB, BERT_TYPE_VOCAB))
    emb = Layer("embedding", "embedding",
                tuple(call("embedding_fwd", tokens=rows, hidden=hidden, vocab=v)
                      for _, v in tables) + (call("add", numel=numel), call("add", numel=numel)),
                tuple(call("embedding_bwd", tokens=rows, hidden=hidden, vocab=v)
                      for _, v in tables),
                sum(n for n, _ in tables) * hidden, 2 * rows, numel)
    out = [emb, _ln_layer("embedding.ln", rows, hidden)]
    block = _bert_block(0, batch, hidden, heads, seq, ffn_mult * hidden)
    out.extend(block)
    for i in range(1, layers):
        prefix = f"h.{i}."
        out.extend(Layer(prefix + lay.name[4:], lay.kind, lay.fwd, lay.bwd, lay.param_count,
                         lay.activation_elems, lay.output_elems) for lay in block)
    net = _Net(batch, (hidden,))
    net.grad = True
    net.layers = out
    # Pooler: dense + tanh on the [CLS] row of each sequence (tanh priced as gelu).
    net.linear("pooler.dense", hidden, rows=batch)
    net.elementwise("pooler.tanh", "gelu", rows=batch)
    if pretraining_heads:
        net.linear("nsp.classifier", 2, rows=batch)  # next-sentence logits (loss: tiny)
        # Masked-LM head over every position (HF BertForPreTraining): dense + GELU +
        # LayerNorm, then the decoder tied to the word embeddings (own bias only).
        net.shape = (hidden,)
        net.linear("mlm.dense", hidden, rows=rows)
        net.elementwise("mlm.gelu", "gelu", rows=rows)
        net.layers.append(_ln_layer("mlm.ln", rows, hidden))
        net.linear("mlm.decoder", vocab, rows=rows, owns_weight=False)
        net.shape = (vocab,)
        net.softmax_xent("loss", rows=rows)
    else:
        net.shape = (hidden,)
        net.softmax_xent("loss", rows=batch)
    hyper = (("layers", layers), ("hidden", hidden), ("heads", heads), ("seq", seq),
             ("vocab", vocab), ("ffn_mult", ffn_mult))
    return Workload(name, batch, (seq,), tuple(net.layers), dtype, tokens_per_sample=seq,
                    hyper=hyper)


def bert(batch: int, layers: int, hidden: int, heads: int, seq: int, vocab: int = 30522,
         ffn_mult: int = 4, pretraining_heads: bool = True, dtype: str = "float32",
         name: str = "bert") -> Workload:
    """BERT encoder (Devlin et al. 2019): ``batch`` sequences of ``seq`` tokens
    (``seq <= 512``) per GPU; ``layers`` post-LN blocks of width ``hidden`` with ``heads``
    bidirectional attention heads and a GELU MLP of width ``ffn_mult * hidden``;
    ``vocab`` WordPiece tokens (30522 for the uncased English models).

    Layers: embedding (word + 512 positions + 2 token types, summed), embedding.ln, per
    block ``h.{i}``: attn.qkv, attn.core, attn.proj, add1, ln1, mlp.fc1, mlp.gelu,
    mlp.fc2, add2, ln2; pooler.dense and pooler.tanh on the [CLS] rows; with
    ``pretraining_heads``: nsp.classifier (2 logits), mlm.dense, mlm.gelu, mlm.ln and
    mlm.decoder (tied to the word embeddings; own bias) over every position, and the
    masked-LM loss (the next-sentence loss over ``batch`` x 2 logits is left out);
    without them a softmax loss over the pooled rows stands in for a classifier.

    Parameters of the encoder with pooler (HF ``BertModel``):
    :func:`bert_param_count`; the pretraining heads add ``h^2 + 5h + V + 2``.
    """
    _check_batch(batch)
    _check_dtype(dtype)
    for label, value in (("layers", layers), ("hidden", hidden), ("heads", heads),
                         ("seq", seq), ("vocab", vocab), ("ffn_mult", ffn_mult)):
        _check_int(label, value)
    if hidden % heads:
        raise ConfigError(f"heads: must divide hidden={hidden}, got {heads}")
    if seq > BERT_MAX_POSITIONS:
        raise ConfigError(f"seq: must be <= {BERT_MAX_POSITIONS} (BERT's position table), "
                          f"got {seq}")
    if not isinstance(pretraining_heads, bool):
        raise ConfigError(f"pretraining_heads: must be true or false, "
                          f"got {pretraining_heads!r}")
    return _bert(batch, layers, hidden, heads, seq, vocab, ffn_mult, pretraining_heads,
                 dtype, name)


def bert_param_count(layers: int, hidden: int, vocab: int = 30522, ffn_mult: int = 4) -> int:
    """Closed-form parameters of the BERT encoder with pooler (HF ``BertModel``):
    embeddings ``(V + 512 + 2) h + 2h``, per block ``4h^2 + 4h`` (attention) ``+ 2 f h + f
    + h`` (MLP, ``f = ffn_mult h``) ``+ 4h`` (two LayerNorms), pooler ``h^2 + h``."""
    h, f = hidden, ffn_mult * hidden
    block = 4 * h * h + 4 * h + 2 * f * h + f + h + 4 * h
    return (vocab + BERT_MAX_POSITIONS + BERT_TYPE_VOCAB) * h + 2 * h + layers * block + h * h + h


# --------------------------------------------------------------------------- from_layers

#: Spec kinds :func:`from_layers` accepts, with their required and optional fields.
SPEC_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "conv": (("out_ch", "kernel"), ("in_ch", "stride", "pad", "bias", "name")),
    "linear": (("out",), ("in", "bias", "name")),
    "maxpool": (("kernel",), ("stride", "pad", "name")),
    "avgpool": (("kernel",), ("stride", "pad", "name")),
    "relu": ((), ("name",)),
    "gelu": ((), ("name",)),
    "bn": ((), ("name",)),
    "flatten": ((), ()),
    "softmax_xent": ((), ("name",)),
}


def _spec_int(where: str, spec: Mapping[str, object], key: str, default: int | None,
              minimum: int) -> int:
    value = spec.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{where}.{key}: must be an integer >= {minimum}, got {value!r}")
    return value


def _spec_bool(where: str, spec: Mapping[str, object], key: str) -> bool:
    value = spec.get(key, True)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{key}: must be true or false, got {value!r}")
    return value


def _apply_spec(net: _Net, i: int, spec: Mapping[str, object], counts: dict[str, int]) -> None:
    where = f"specs[{i}]"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: must be a mapping with a 'kind', got {spec!r}")
    kind = spec.get("kind")
    if kind not in SPEC_FIELDS:
        raise unknown_name(f"{where}.kind", kind, SPEC_FIELDS, "layer kind")
    required, optional = SPEC_FIELDS[kind]  # type: ignore[index]
    for key in spec:
        if key != "kind" and key not in required and key not in optional:
            raise unknown_name(f"{where}.{key}", key, required + optional, f"field for {kind}")
    for key in required:
        if key not in spec:
            raise ConfigError(f"{where}.{key}: required for kind {kind!r}, missing")
    counts[kind] = counts.get(kind, 0) + 1  # type: ignore[index]
    name = spec.get("name", f"{kind}{counts[kind]}")  # type: ignore[index]
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name: must be a non-empty string, got {name!r}")
    if kind == "flatten":
        net.shape = (net._numel(1),)
    elif kind == "conv":
        if len(net.shape) != 3:
            raise ConfigError(f"{where}.kind: conv needs an image input (c, h, w), "
                              f"got shape {net.shape}")
        if "in_ch" in spec and spec["in_ch"] != net.shape[0]:
            raise ConfigError(f"{where}.in_ch: must equal the incoming channels "
                              f"{net.shape[0]}, got {spec['in_ch']!r}")
        net.conv(name, _spec_int(where, spec, "out_ch", None, 1),
                 _spec_int(where, spec, "kernel", None, 1),
                 _spec_int(where, spec, "stride", 1, 1), _spec_int(where, spec, "pad", 0, 0),
                 _spec_bool(where, spec, "bias"))
    elif kind == "linear":
        features = net._numel(1)
        if "in" in spec and spec["in"] != features:
            raise ConfigError(f"{where}.in: must equal the incoming features {features}, "
                              f"got {spec['in']!r}")
        net.linear(name, _spec_int(where, spec, "out", None, 1), _spec_bool(where, spec, "bias"))
    elif kind in ("maxpool", "avgpool"):
        if len(net.shape) != 3:
            raise ConfigError(f"{where}.kind: {kind} needs an image input (c, h, w), "
                              f"got shape {net.shape}")
        kernel = _spec_int(where, spec, "kernel", None, 1)
        net.pool(name, kind[:3], kernel, _spec_int(where, spec, "stride", kernel, 1),
                 _spec_int(where, spec, "pad", 0, 0))
    elif kind in ("relu", "gelu"):
        net.elementwise(name, kind)  # type: ignore[arg-type]
    elif kind == "bn":
        if len(net.shape) != 3:
            raise ConfigError(f"{where}.kind: bn needs an image input (c, h, w), "
                              f"got shape {net.shape}")
        net.bn(name)
    else:
        net.softmax_xent(name)


def from_layers(name: str, batch: int, specs: Sequence[Mapping[str, object]],
                input_shape: Sequence[int], dtype: str = "float32") -> Workload:
    """Build a workload from plain dicts, one per layer, applied in order.

    ``input_shape``: one sample, ``(c, h, w)`` or ``(features,)``. Spec kinds and fields
    (:data:`SPEC_FIELDS`): ``conv`` (out_ch, kernel; in_ch checked if given, stride=1,
    pad=0, bias=True), ``linear`` (out; in checked if given, bias=True; flattens its
    input), ``maxpool``/``avgpool`` (kernel; stride=kernel, pad=0), ``relu``, ``gelu``,
    ``bn``, ``flatten``, ``softmax_xent``. Every spec may carry a ``name`` (default
    ``kind`` + running number). A softmax cross-entropy loss is appended when the list
    does not end with one. Bad specs raise ConfigError naming ``specs[i].field``.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"name: must be a non-empty string, got {name!r}")
    shape = tuple(input_shape)
    if len(shape) not in (1, 3):
        raise ConfigError(f"input_shape: must be (c, h, w) or (features,), got {shape}")
    for i, d in enumerate(shape):
        _check_int(f"input_shape[{i}]", d)
    if isinstance(specs, Mapping | str) or not specs:
        raise ConfigError(f"specs: must be a non-empty list of layer dicts, got {specs!r}")
    net = _start(batch, shape, dtype)
    counts: dict[str, int] = {}
    for i, spec in enumerate(specs):
        before = len(net.layers)
        _apply_spec(net, i, spec, counts)
        if len(net.layers) > before and any(lay.name == net.layers[-1].name
                                            for lay in net.layers[:-1]):
            raise ConfigError(f"specs[{i}].name: must be unique, "
                              f"{net.layers[-1].name!r} is already used")
        if net.layers and net.layers[-1].kind == "softmax_xent" and i != len(specs) - 1:
            raise ConfigError(f"specs[{i}].kind: softmax_xent must be the last layer, "
                              f"got it at index {i} of {len(specs)}")
    if not net.layers or net.layers[-1].kind != "softmax_xent":
        net.softmax_xent("loss")
    return net.workload(name, shape, dtype)


# --------------------------------------------------------------------------- registry

def _preset_builder(preset_name: str, preset: GptPreset) -> Callable[..., Workload]:
    return functools.partial(gpt, name=preset_name, **preset.config())


#: Workload name -> builder ``f(batch, **overrides) -> Workload``.
WORKLOADS: dict[str, Callable[..., Workload]] = {
    "lenet5": lenet5,
    "lenet-digits": lenet_digits,
    "mlp": mlp,
    "alexnet": alexnet,
    "vgg16": vgg16,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "resnet152": resnet152,
    **{name: _preset_builder(name, preset) for name, preset in GPT_PRESETS.items()},
}


def _llama_builder(preset_name: str, preset: LlamaPreset) -> Callable[..., Workload]:
    return functools.partial(llama, name=preset_name, **preset.config())


WORKLOADS.update({name: _llama_builder(name, p) for name, p in LLAMA_PRESETS.items()})
WORKLOADS.update({name: functools.partial(nemotron, name=name, **p.config())
                  for name, p in NEMOTRON_PRESETS.items()})
WORKLOADS.update({name: functools.partial(bert, name=name, **p.config())
                  for name, p in BERT_PRESETS.items()})


def list_workloads() -> list[str]:
    """Names :func:`get_workload` knows, in registry order."""
    return list(WORKLOADS)


def get_workload(name: str, batch: int, **overrides: object) -> Workload:
    """Build the named workload for ``batch`` samples per GPU.

    ``overrides``: builder keyword arguments, e.g. ``dtype='float16'`` for any model,
    ``seq=4096`` or ``layers=2`` for a GPT preset, ``sizes=(64, 32, 10)`` for ``mlp``.
    Unknown names or override keys raise ConfigError with the closest known one.
    """
    if name not in WORKLOADS:
        raise unknown_name("workload", name, WORKLOADS, "workload")
    builder = WORKLOADS[name]
    accepted = [p for p in inspect.signature(builder).parameters if p not in ("batch", "name")]
    for key in overrides:
        if key not in accepted:
            raise unknown_name(f"{name}.{key}", key, accepted, f"option for {name}")
    return builder(batch, **overrides)
