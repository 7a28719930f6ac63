"""GPU memory model: bytes per layer and per pipeline stage (one GPU).

What a GPU holds while training a slice of a model (SI bytes throughout):

* **weights** ``P x bytes(dtype)``, frozen weights included (LoRA's base: the layers'
  ``frozen_params``, in ``dtype``, with no gradient, master copy or optimizer state;
  :mod:`ddlsim.sim.workloads.lora`);
* **gradients** ``P x bytes(grad_dtype)`` (``grad_dtype`` defaults to ``dtype``);
* **optimizer state**: fp32 master weights when ``dtype`` is 16-bit (mixed precision,
  Micikevicius et al. 2018 "Mixed Precision Training", arXiv 1710.03740) plus the
  optimizer's fp32 tensors: SGD none, momentum one (velocity), Adam two (first and second
  moments). Mixed-precision Adam is therefore ``2 + 2 + 4 + 4 + 4 = 16`` bytes per
  parameter, the figure of Rajbhandari et al. 2020 "ZeRO" (arXiv 1910.02054) Sec. 3.1
  (``2 Psi + 2 Psi + K Psi`` with ``K = 12``);
* **activations** kept for the backward pass, per micro-batch, times the number of
  micro-batches in flight on that GPU (the schedule decides: GPipe ``m``, 1F1B
  ``min(p - stage, m)``, naive 1; interleaved 1F1B with ``v`` chunks per GPU: the most
  (chunk, micro-batch) activations its order holds at once, ``min(2 (p-k-1) + (v-1) p +
  1, m v)`` chunks, i.e. ``p (1 + (p-1)/(p v))`` stage-equivalents on the first GPU,
  Korthikanti et al. 2022 Sec. 4.2.3 (:func:`in_flight`, :func:`interleaved_stage_memory`)),
  from each layer's ``activation_elems`` (see :mod:`ddlsim.sim.workloads`), with

  - ``recompute="none"``: everything;
  - ``"selective"`` (Korthikanti et al. 2022 "Reducing Activation Recomputation in Large
    Transformer Models", arXiv 2205.05198, Sec. 5): the attention score/softmax tensors
    (``a s^2 b`` terms) are dropped and recomputed; Q, K, V stay. A fused (FlashAttention)
    core stores no such tensor, so there is nothing to drop;
  - ``"full"``: only the input of each checkpoint segment is kept (a transformer block
    ``h.{i}.*`` is one segment, any other layer its own), and while one segment is
    recomputed its full activations for one micro-batch are live (``recompute_bytes``);
  - ``dropout=True`` adds what dropout keeps (the workloads do not model dropout): a 1-byte
    mask per element after the attention softmax (and the dropped-out probabilities, which
    the ``P V`` matmul then reads) and after each linear layer that feeds a residual add;
    with it a GPT block stores exactly Korthikanti's ``s b h (34 + 5 a s / h)`` bytes in
    fp16 (plus the two layernorms' per-row statistics, ``4 s b`` elements). With fused
    attention the ``5 a s / h`` term goes (FlashAttention regenerates its dropout mask
    from the RNG state and recomputes the scores): ``34 s b h`` bytes plus the statistics
    (the layernorms' and the attention's per-row log-sum-exp, ``a s b`` elements);

* **ZeRO** (Rajbhandari et al. 2020 Sec. 5, Fig. 1; ``zero`` stage over ``zero_group``
  = N_d data-parallel GPUs, for 3D jobs dp x cp): stage 1 (Megatron's distributed
  optimizer) shards the optimizer state incl. master weights, ``2 Psi + 2 Psi + K Psi /
  N_d``; stage 2 also the gradients, ``2 Psi + (2 + K) Psi / N_d``; stage 3 (FSDP) also the
  weights, ``(2 + 2 + K) Psi / N_d``, plus one checkpoint segment's (transformer block's)
  gathered weights as working memory (``StageMemory.gathered_bytes``);
* a **workspace** allowance (CUDA context, cuBLAS/cuDNN workspaces, allocator
  fragmentation): :data:`DEFAULT_WORKSPACE_BYTES`.

A configuration that does not fit is a result (:class:`StageMemory` with ``fits=False`` and
``over_bytes``), never an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ddlsim.errors import ConfigError, unknown_name
from ddlsim.units import GiB, dtype_bytes

OPTIMIZERS = ("sgd", "momentum", "adam")
RECOMPUTE = ("none", "selective", "full")
SCHEDULES = ("naive", "gpipe", "1f1b")

#: fp32 tensors the optimizer keeps per parameter (besides master weights).
OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2}

#: Allowance for the CUDA context, library workspaces and allocator fragmentation. An
#: order-of-magnitude estimate (a CUDA context alone takes a few hundred MiB on recent
#: GPUs); not a measurement - override it (``workspace_bytes``) when known.
DEFAULT_WORKSPACE_BYTES = 1.0 * GiB

#: Bytes per element of a dropout mask (PyTorch keeps a uint8/bool mask; Korthikanti et
#: al. 2022 Sec. 4.1 count masks at 1 byte per element).
DROPOUT_MASK_BYTES = 1

_HALF = ("float16", "bfloat16", "fp8")


def check_name(field: str, value: object, known: Sequence[str]) -> None:
    """ConfigError (with a did-you-mean suggestion) unless ``value`` is one of ``known``."""
    if value not in known:
        raise unknown_name(field, value, known, "value")


@dataclass(frozen=True)
class MemoryConfig:
    """How a GPU stores one model slice.

    ``dtype``: weights and activations; ``grad_dtype``: gradients (None: ``dtype``);
    ``optimizer``: ``sgd`` | ``momentum`` | ``adam``; ``master_weights``: keep fp32 master
    weights (None: yes for 16-bit ``dtype``); ``recompute``: ``none`` | ``selective`` |
    ``full``; ``dropout``: count dropout masks; ``workspace_bytes``: fixed allowance (B);
    ``zero``: ZeRO stage 0-3 sharding over ``zero_group`` data-parallel GPUs.
    """

    dtype: str = "float32"
    grad_dtype: str | None = None
    optimizer: str = "adam"
    master_weights: bool | None = None
    recompute: str = "none"
    dropout: bool = False
    workspace_bytes: float = DEFAULT_WORKSPACE_BYTES
    zero: int = 0
    zero_group: int = 1

    def __post_init__(self) -> None:
        if self.zero not in (0, 1, 2, 3):
            raise ConfigError(f"zero: must be 0, 1, 2 or 3, got {self.zero!r}")
        if not (isinstance(self.zero_group, int) and self.zero_group >= 1):
            raise ConfigError(f"zero_group: must be an integer >= 1, got {self.zero_group!r}")
        for name in ("dtype", "grad_dtype"):
            value = getattr(self, name)
            if value is not None:
                try:
                    dtype_bytes(value)
                except ValueError as exc:
                    raise ConfigError(f"{name}: {exc}") from None
        check_name("optimizer", self.optimizer, OPTIMIZERS)
        check_name("recompute", self.recompute, RECOMPUTE)
        if not (np.isfinite(self.workspace_bytes) and self.workspace_bytes >= 0):
            raise ConfigError(f"workspace_bytes: must be >= 0, got {self.workspace_bytes!r}")

    @property
    def uses_master_weights(self) -> bool:
        return self.dtype in _HALF if self.master_weights is None else bool(self.master_weights)

    def bytes_per_param(self) -> tuple[int, int, int]:
        """``(weights, gradients, optimizer state incl. master weights)`` bytes/parameter."""
        w = dtype_bytes(self.dtype)
        g = dtype_bytes(self.grad_dtype or self.dtype)
        opt = 4 * OPTIMIZER_STATES[self.optimizer] + (4 if self.uses_master_weights else 0)
        return w, g, opt


def in_flight(schedule: str, stage: int, stages: int, micro_batches: int,
              vp: int = 1) -> float:
    """Micro-batches whose activations stage ``stage`` (0-based) of ``stages`` holds at
    once: naive 1, GPipe ``m``, 1F1B ``min(stages - stage, m)``; interleaved 1F1B with
    ``vp`` equal chunks per GPU, in whole-stage equivalents, ``min(2 (p-k-1) + (vp-1) p +
    1, m vp) / vp`` (``p + (p-1)/vp`` on the first GPU: Korthikanti et al. 2022 Sec.
    4.2.3, ``p (1 + (p-1)/(p m))`` with their ``m`` the interleaving stages)."""
    check_name("schedule", schedule, SCHEDULES)
    if schedule == "naive":
        return 1
    if schedule == "gpipe":
        return micro_batches
    if vp > 1:
        warm = 2 * (stages - stage - 1) + (vp - 1) * stages
        return min(warm + 1, micro_batches * vp) / vp
    return min(stages - stage, micro_batches)


def chunk_peak(order: Sequence[tuple[str, int, int]], chunk_bytes: Sequence[float]
               ) -> tuple[float, tuple[int, ...]]:
    """Peak of ``sum_c live_c * chunk_bytes[c]`` over a GPU's ``('F'|'B', chunk,
    micro_batch)`` order (a forward makes one micro-batch of its chunk live, its backward
    frees it) and the live counts per chunk at the first peak."""
    live = [0] * len(chunk_bytes)
    best, at = 0.0, tuple(live)
    for kind, c, _ in order:
        live[c] += 1 if kind == "F" else -1
        total = float(sum(n * b for n, b in zip(live, chunk_bytes, strict=True)))
        if total > best:
            best, at = total, tuple(live)
    return best, at


def segment_ids(names: Sequence[str]) -> np.ndarray:
    """Checkpoint segment of each layer: layers named ``h.{i}.*`` share segment ``h.{i}``;
    every other layer is its own segment. Returns consecutive integer ids."""
    ids = np.empty(len(names), dtype=np.int64)
    current, last_key = -1, None
    for i, name in enumerate(names):
        parts = name.split(".")
        key = ("h", parts[1]) if len(parts) > 2 and parts[0] == "h" else ("layer", i)
        if key != last_key:
            current += 1
            last_key = key
        ids[i] = current
    return ids


def _softmax_elems(layer) -> int:
    return sum(kc.params["rows"] * kc.params["cols"] for kc in layer.fwd
               if kc.op == "softmax_fwd")


@dataclass(frozen=True)
class LayerMemory:
    """Per-layer bytes (NumPy arrays, forward order) under one :class:`MemoryConfig`.

    ``weights``, ``grads``, ``optimizer``: static bytes; ``stored``: activation bytes kept
    per micro-batch under the configured recomputation; ``full``: activation bytes of one
    micro-batch without recomputation (what a segment holds while it is recomputed);
    ``segment``: checkpoint segment id; ``input_bytes``: bytes of each layer's input.
    """

    names: tuple[str, ...]
    weights: np.ndarray
    grads: np.ndarray
    optimizer: np.ndarray
    stored: np.ndarray
    full: np.ndarray
    segment: np.ndarray
    input_bytes: np.ndarray
    config: MemoryConfig

    @property
    def static(self) -> np.ndarray:
        """Weights + gradients + optimizer state per layer (B)."""
        return self.weights + self.grads + self.optimizer

    def recompute_peak(self, start: int, stop: int) -> float:
        """Transient bytes of recomputing layers ``[start, stop)`` (full recompute only):
        the largest segment's one-micro-batch activations."""
        if self.config.recompute != "full" or stop <= start:
            return 0.0
        seg = self.segment[start:stop]
        sums = np.bincount(seg - seg[0], weights=self.full[start:stop])
        return float(sums.max())


def layer_memory(layers: Sequence, cfg: MemoryConfig, input_elems: int) -> LayerMemory:
    """Bytes of every layer in ``layers`` (``workloads.Layer`` objects, one micro-batch).

    ``input_elems``: elements of the model input per micro-batch (the first layer's input).
    """
    n = len(layers)
    act_b = dtype_bytes(cfg.dtype)
    w_b, g_b, o_b = cfg.bytes_per_param()
    params = np.array([lay.param_count for lay in layers], dtype=float)
    frozen = np.array([lay.frozen_params for lay in layers], dtype=float)
    names = tuple(lay.name for lay in layers)
    full = np.array([lay.activation_elems for lay in layers], dtype=float) * act_b
    masks = np.array([lay.mask_elems for lay in layers], dtype=float)
    if masks.any():  # LoRA's adapter-dropout masks (1 byte per element)
        full = full + masks * DROPOUT_MASK_BYTES
    softmax = np.array([_softmax_elems(lay) if lay.kind == "attention" else 0
                        for lay in layers], dtype=float)
    if cfg.dropout:
        # attention dropout: a mask and the dropped-out probabilities (read by P V)
        full = full + softmax * (DROPOUT_MASK_BYTES + act_b)
        for i in range(n - 1):
            if layers[i].kind == "linear" and layers[i + 1].kind == "add":
                full[i] += layers[i].output_elems * DROPOUT_MASK_BYTES
    inputs = np.array([input_elems] + [lay.output_elems for lay in layers[:-1]],
                      dtype=float) * act_b
    segment = segment_ids(names)
    if cfg.recompute == "none":
        stored = full.copy()
    elif cfg.recompute == "selective":
        s2 = softmax * act_b * (1 + (1 + DROPOUT_MASK_BYTES / act_b if cfg.dropout else 0))
        stored = full - s2
    else:
        first = np.ones(n, dtype=bool)
        first[1:] = segment[1:] != segment[:-1]
        stored = np.where(first, inputs, 0.0)
    d = cfg.zero_group
    shard = [d if cfg.zero >= k else 1 for k in (3, 2, 1)]  # weights, grads, optimizer
    weights = (params + frozen if frozen.any() else params) * w_b / shard[0]
    return LayerMemory(names, weights, params * g_b / shard[1], params * o_b / shard[2],
                       stored, full, segment, inputs, cfg)


def gathered_peak(mem: LayerMemory, start: int, stop: int) -> float:
    """ZeRO-3 working memory of layers ``[start, stop)``: the largest checkpoint segment's
    (transformer block's) full weights, gathered while it runs (0 unless sharded)."""
    cfg = mem.config
    if cfg.zero < 3 or cfg.zero_group == 1 or stop <= start:
        return 0.0
    seg = mem.segment[start:stop]
    sums = np.bincount(seg - seg[0], weights=mem.weights[start:stop] * cfg.zero_group)
    return float(sums.max())


@dataclass(frozen=True)
class StageMemory:
    """Memory of one GPU holding layers ``[start, stop)`` (bytes); interleaved, the layers
    of ``chunks``, with ``micro_batches_in_flight`` in whole-stage equivalents."""

    stage: int
    start: int
    stop: int
    device: str
    capacity_bytes: float
    weights_bytes: float
    grads_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    recompute_bytes: float
    workspace_bytes: float
    micro_batches_in_flight: float
    chunks: tuple[tuple[int, int], ...] = ()  # interleaved: (start, stop) of each chunk
    gathered_bytes: float = 0.0  # ZeRO-3: one segment's gathered weights

    @property
    def total_bytes(self) -> float:
        return (self.weights_bytes + self.grads_bytes + self.optimizer_bytes
                + self.activations_bytes + self.recompute_bytes + self.workspace_bytes
                + self.gathered_bytes)

    @property
    def over_bytes(self) -> float:
        """Bytes beyond capacity (0 when it fits)."""
        return max(0.0, self.total_bytes - self.capacity_bytes)

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.capacity_bytes

    def breakdown(self) -> dict[str, float]:
        return {"weights": self.weights_bytes, "grads": self.grads_bytes,
                "optimizer": self.optimizer_bytes, "activations": self.activations_bytes,
                "recompute": self.recompute_bytes, "workspace": self.workspace_bytes,
                "gathered": self.gathered_bytes}


def stage_memory(mem: LayerMemory, stage: int, start: int, stop: int, in_flight_mb: float,
                 capacity_bytes: float, device: str = "") -> StageMemory:
    """Memory of stage ``stage`` holding layers ``[start, stop)`` with ``in_flight_mb``
    micro-batches of activations live, on a GPU of ``capacity_bytes``."""
    sl = slice(start, stop)
    return StageMemory(
        stage=stage, start=start, stop=stop, device=device,
        capacity_bytes=float(capacity_bytes),
        weights_bytes=float(mem.weights[sl].sum()), grads_bytes=float(mem.grads[sl].sum()),
        optimizer_bytes=float(mem.optimizer[sl].sum()),
        activations_bytes=float(in_flight_mb * mem.stored[sl].sum()),
        recompute_bytes=mem.recompute_peak(start, stop),
        workspace_bytes=float(mem.config.workspace_bytes),
        micro_batches_in_flight=in_flight_mb, gathered_bytes=gathered_peak(mem, start, stop))


def interleaved_stage_memory(mem: LayerMemory, stage: int, chunks: Sequence[tuple[int, int]],
                             order: Sequence[tuple[str, int, int]], capacity_bytes: float,
                             device: str = "") -> StageMemory:
    """Memory of GPU ``stage`` holding the layer ranges ``chunks`` (one per model chunk)
    under the interleaved order ``order`` (:func:`ddlsim.sim.pipeline.interleaved_order`):
    static bytes of every chunk, activations at the peak of :func:`chunk_peak`, the largest
    chunk's recomputation transient."""
    sums = [float(mem.stored[a:b].sum()) for a, b in chunks]
    act, live = chunk_peak(order, sums)
    total = sum(sums)
    infl = act / total if total > 0 else sum(live) / len(chunks)

    def static(arr) -> float:
        return float(sum(arr[a:b].sum() for a, b in chunks))

    return StageMemory(
        stage=stage, start=chunks[0][0], stop=chunks[-1][1], device=device,
        capacity_bytes=float(capacity_bytes), weights_bytes=static(mem.weights),
        grads_bytes=static(mem.grads), optimizer_bytes=static(mem.optimizer),
        activations_bytes=act,
        recompute_bytes=max(mem.recompute_peak(a, b) for a, b in chunks),
        workspace_bytes=float(mem.config.workspace_bytes), micro_batches_in_flight=infl,
        chunks=tuple((int(a), int(b)) for a, b in chunks),
        gathered_bytes=max(gathered_peak(mem, a, b) for a, b in chunks))
