"""Networks trained with ddlsim's own kernels (:mod:`ddlsim.kernels.ops`).

Parameters live in one flat vector per model (so a weight version is one array copy and
an allreduce is one :func:`~ddlsim.kernels.ops.grad_sum`); :class:`ParamLayout` maps
names to views of it. ``loss_and_grad(w, x, y)`` runs the forward and backward pass
with exactly the kernel calls the matching :mod:`ddlsim.sim.workloads` layer graph lists
(no data gradient for the first layer), and returns the mean cross-entropy and the flat
gradient. Arrays may be NumPy or CuPy: every op picks its array module from its inputs.

Initialisation is deterministic for a seed: He-normal weights (std ``sqrt(2/fan_in)``,
He et al. 2015), zero biases, drawn on the host from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ddlsim.errors import ConfigError, unknown_name
from ddlsim.kernels import ops
from ddlsim.kernels.backend import array_module

Array = Any  # numpy.ndarray or cupy.ndarray


@dataclass(frozen=True)
class ParamLayout:
    """Names, shapes and offsets of the parameters inside one flat vector.

    ``entries``: ``(name, shape, fan_in)`` in storage order; ``fan_in`` 0 marks a bias.
    """

    entries: tuple[tuple[str, tuple[int, ...], int], ...]

    @property
    def size(self) -> int:
        """Total parameter count."""
        return sum(math.prod(shape) for _, shape, _ in self.entries)

    def slices(self) -> dict[str, tuple[slice, tuple[int, ...]]]:
        """``name -> (slice of the flat vector, shape)``."""
        out, start = {}, 0
        for name, shape, _ in self.entries:
            n = math.prod(shape)
            out[name] = (slice(start, start + n), shape)
            start += n
        return out

    def layer_slices(self) -> list[tuple[str, slice]]:
        """``(layer, slice)`` per layer, where a layer is a name prefix before the dot
        (``conv1.w`` and ``conv1.b`` form ``conv1``); layers are contiguous in storage."""
        out: list[tuple[str, slice]] = []
        for name, (sl, _) in self.slices().items():
            layer = name.split(".", 1)[0]
            if out and out[-1][0] == layer:
                out[-1] = (layer, slice(out[-1][1].start, sl.stop))
            else:
                out.append((layer, sl))
        return out

    def views(self, flat: Array) -> dict[str, Array]:
        """Reshaped views of ``flat`` (writes through)."""
        return {name: flat[sl].reshape(shape) for name, (sl, shape) in self.slices().items()}

    def init(self, seed: int, xp: Any = np, dtype: str = "float32") -> Array:
        """Seeded He-normal weights and zero biases as a flat ``xp`` array of ``dtype``."""
        rng = np.random.default_rng(seed)
        parts = []
        for _, shape, fan_in in self.entries:
            if fan_in:
                parts.append(rng.standard_normal(math.prod(shape)) * math.sqrt(2.0 / fan_in))
            else:
                parts.append(np.zeros(math.prod(shape)))
        return xp.asarray(np.concatenate(parts).astype(dtype))


class LeNetDigits:
    """LeNet for 1x8x8 digits, as :func:`ddlsim.sim.workloads.lenet_digits`: conv 3x3 pad 1
    8ch -> ReLU -> max-pool 2 -> conv 3x3 pad 1 16ch -> ReLU -> max-pool 2 -> fc 10 ->
    softmax cross-entropy (1,898 parameters)."""

    name = "lenet-digits"
    input_shape = (1, 8, 8)

    def __init__(self, classes: int = 10) -> None:
        self.classes = classes
        self.layout = ParamLayout((
            ("conv1.w", (8, 1, 3, 3), 9), ("conv1.b", (8,), 0),
            ("conv2.w", (16, 8, 3, 3), 72), ("conv2.b", (16,), 0),
            ("fc3.w", (classes, 64), 64), ("fc3.b", (classes,), 0),
        ))

    def logits(self, w: Array, x: Array, keep: bool = False):
        """Forward pass of ``x[n, 1, 8, 8]`` to ``[n, classes]`` logits (with the saved
        tensors when ``keep``)."""
        p = self.layout.views(w)
        a1 = ops.bias_add(ops.conv2d_forward(x, p["conv1.w"], 1, 1), p["conv1.b"])
        r1 = ops.relu_forward(a1)
        p1, arg1 = ops.maxpool2d_forward(r1, 2, 2)
        a2 = ops.bias_add(ops.conv2d_forward(p1, p["conv2.w"], 1, 1), p["conv2.b"])
        r2 = ops.relu_forward(a2)
        p2, arg2 = ops.maxpool2d_forward(r2, 2, 2)
        f = p2.reshape(x.shape[0], -1)
        z = ops.linear_forward(f, p["fc3.w"], p["fc3.b"])
        return (z, (p, a1, arg1, p1, a2, arg2, f)) if keep else z

    def loss_and_grad(self, w: Array, x: Array, y: Array, out: Array | None = None):
        """Mean cross-entropy on ``(x, y)`` at weights ``w`` and its gradient, written into
        ``out`` (a flat array like ``w``; allocated when None). Returns ``(loss, grad)``."""
        z, (p, a1, arg1, p1, a2, arg2, f) = self.logits(w, x, keep=True)
        loss, probs = ops.softmax_cross_entropy_forward(z, y)
        g = array_module(w).empty_like(w) if out is None else out
        gv = self.layout.views(g)
        dz = ops.softmax_cross_entropy_backward(probs, y)
        df, gv["fc3.w"][...], gv["fc3.b"][...] = ops.linear_backward(dz, f, p["fc3.w"])
        dr2 = ops.maxpool2d_backward(df.reshape(arg2.shape), arg2, a2.shape, 2, 2)
        da2 = ops.relu_backward(dr2, a2)
        dp1 = ops.conv2d_backward_data(da2, p["conv2.w"], p1.shape, 1, 1)
        gv["conv2.w"][...] = ops.conv2d_backward_filter(da2, p1, p["conv2.w"].shape, 1, 1)
        gv["conv2.b"][...] = da2.sum(axis=(0, 2, 3))
        dr1 = ops.maxpool2d_backward(dp1, arg1, a1.shape, 2, 2)
        da1 = ops.relu_backward(dr1, a1)
        gv["conv1.w"][...] = ops.conv2d_backward_filter(da1, x, p["conv1.w"].shape, 1, 1)
        gv["conv1.b"][...] = da1.sum(axis=(0, 2, 3))
        return loss, g


class Mlp:
    """Multi-layer perceptron as :func:`ddlsim.sim.workloads.mlp`: linear layers
    ``sizes[i] -> sizes[i+1]`` with ReLU between them, softmax cross-entropy on top."""

    name = "mlp"

    def __init__(self, sizes: Sequence[int] = (64, 128, 10)) -> None:
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ConfigError(f"sizes: needs >= 2 positive widths, got {sizes}")
        self.sizes = sizes
        self.classes = sizes[-1]
        self.input_shape = (sizes[0],)
        entries = []
        for i in range(1, len(sizes)):
            entries += [(f"fc{i}.w", (sizes[i], sizes[i - 1]), sizes[i - 1]),
                        (f"fc{i}.b", (sizes[i],), 0)]
        self.layout = ParamLayout(tuple(entries))

    def logits(self, w: Array, x: Array, keep: bool = False):
        """Forward pass of ``x[n, sizes[0]]`` (flattened if needed) to logits."""
        p = self.layout.views(w)
        h = x.reshape(x.shape[0], -1)
        saved = []
        n_layers = len(self.sizes) - 1
        for i in range(1, n_layers + 1):
            a = ops.linear_forward(h, p[f"fc{i}.w"], p[f"fc{i}.b"])
            saved.append((h, a))
            h = ops.relu_forward(a) if i < n_layers else a
        return (h, (p, saved)) if keep else h

    def loss_and_grad(self, w: Array, x: Array, y: Array, out: Array | None = None):
        """Mean cross-entropy and its flat gradient (see :meth:`LeNetDigits.loss_and_grad`)."""
        z, (p, saved) = self.logits(w, x, keep=True)
        loss, probs = ops.softmax_cross_entropy_forward(z, y)
        g = array_module(w).empty_like(w) if out is None else out
        gv = self.layout.views(g)
        d = ops.softmax_cross_entropy_backward(probs, y)
        for i in range(len(saved), 0, -1):
            h, a = saved[i - 1]
            if i < len(saved):
                d = ops.relu_backward(d, a)
            if i == 1:  # no gradient for the input data, as the workload graph says
                gv["fc1.w"][...] = ops.gemm(d.T, h)
                gv["fc1.b"][...] = d.sum(axis=0)
            else:
                d, gv[f"fc{i}.w"][...], gv[f"fc{i}.b"][...] = ops.linear_backward(
                    d, h, p[f"fc{i}.w"])
        return loss, g


#: Model name (as in :data:`ddlsim.sim.workloads.WORKLOADS`) -> class.
MODELS = {"lenet-digits": LeNetDigits, "mlp": Mlp}


def get_model(name: str, **kwargs: Any):
    """Build the named model; ConfigError with the closest name for an unknown one."""
    key = name.replace("_", "-")
    if key not in MODELS:
        raise unknown_name("model", name, MODELS, "model")
    return MODELS[key](**kwargs)
