"""The layer graph of a training step: :class:`Layer`, :class:`Workload` and the argument
checks every workload builder shares (see :mod:`ddlsim.sim.workloads` for the
conventions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ddlsim.errors import ConfigError, unknown_name
from ddlsim.opspec import KernelCall, call, flops
from ddlsim.units import dtype_bytes

LAYER_KINDS = (
    "conv", "linear", "pool", "relu", "gelu", "bn", "layernorm", "add", "attention",
    "embedding", "softmax_xent",
)

#: Ops whose FLOPs count as multiply-accumulates (torchvision-style MAC counts); fused
#: attention counts the matmuls of the attention core.
MATMUL_OPS = frozenset({"gemm", "bmm", "conv2d_fwd", "conv2d_bwd_data", "conv2d_bwd_filter",
                        "flash_attn_fwd", "flash_attn_bwd"})


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
    ``frozen_params``: parameters the layer holds but does not train (no gradient, no
    optimizer state: the base weights under LoRA, :mod:`ddlsim.sim.workloads.lora`).
    ``mask_elems``: elements of 1-byte dropout masks its backward reads (LoRA's adapter
    dropout; the model's own dropout is counted by :mod:`ddlsim.sim.memory`).
    """

    name: str
    kind: str
    fwd: tuple[KernelCall, ...]
    bwd: tuple[KernelCall, ...] = ()
    param_count: int = 0
    activation_elems: int = 0
    output_elems: int = 0
    frozen_params: int = 0
    mask_elems: int = 0

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("layer.name: must be a non-empty string, got ''")
        if self.kind not in LAYER_KINDS:
            raise ConfigError(f"layer {self.name!r} kind: must be one of "
                              f"{', '.join(LAYER_KINDS)}, got {self.kind!r}")
        for label in ("param_count", "activation_elems", "output_elems", "frozen_params",
                      "mask_elems"):
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
    _totals: tuple[float, float, int, int, int] = field(init=False, repr=False,
                                                        compare=False)
    _update: tuple[KernelCall, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_batch(self.batch)
        check_dtype(self.dtype)
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
        frozen = sum(layer.frozen_params for layer in self.layers)
        object.__setattr__(self, "_totals", (float(fwd), float(bwd), params, acts, frozen))
        object.__setattr__(self, "_update", tuple(
            call("sgd_update", numel=layer.param_count)
            for layer in self.layers if layer.param_count))

    @property
    def param_count(self) -> int:
        """Trainable parameters of the whole model."""
        return self._totals[2]

    @property
    def frozen_param_count(self) -> int:
        """Parameters held but not trained (LoRA's frozen base; 0 for full training)."""
        return self._totals[4]

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


def check_int(label: str, value: object, minimum: int = 1) -> int:
    """``value`` when it is an integer >= ``minimum``; ConfigError naming ``label``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{label}: must be an integer >= {minimum}, got {value!r}")
    return value


def check_ints(**named: object) -> None:
    """:func:`check_int` (minimum 1) on each keyword argument, in the order given."""
    for label, value in named.items():
        check_int(label, value)


def check_batch(batch: object) -> int:
    """``batch`` when it is an integer >= 1 (samples per GPU); ConfigError otherwise."""
    return check_int("batch", batch)


def check_dtype(dtype: object) -> str:
    """``dtype`` when :func:`ddlsim.units.dtype_bytes` knows it; ConfigError otherwise."""
    try:
        dtype_bytes(dtype)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return dtype  # type: ignore[return-value]
