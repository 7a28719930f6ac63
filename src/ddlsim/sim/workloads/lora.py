"""LoRA fine-tuning (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models",
arXiv 2106.09685): low-rank adapters trained on a frozen base, as kernel calls per layer.

An adapted linear layer ``y = x W^T`` becomes ``y = x W^T + s B(A(drop(x)))`` with ``A``
(``d_in -> r``) and ``B`` (``r -> d_out``) trained and ``W`` frozen (``s = alpha / r``
scales, which costs nothing extra: it folds into a GEMM's alpha). :func:`lora_layers`
rewrites a transformer's layer list so:

* **parameters**: each adapter owns ``r (d_in + d_out)`` trainable parameters
  (``param_count``); every base weight (norms, embeddings and the output head included)
  becomes ``frozen_params``: held in the compute precision, no gradient, no fp32 master
  copy, no optimizer state (:mod:`ddlsim.sim.memory`). Gradients, the data-parallel
  gradient allreduce and the optimizer update cover the adapters only;
* **forward**: the base GEMM, then per adapter the dropout (priced with the ReLU kernels:
  one read, one write and a mask), ``gemm(m=rows, n=r, k=d_in)``, ``gemm(m=rows,
  n=d_out, k=r)`` and an ``add`` into the output;
* **backward**: frozen linear layers run their data gradient ``gemm(m=rows, n=d_in,
  k=d_out)`` and no weight gradient, so the base's backward costs about one forward (full
  training: two). Each adapter adds ``dB = dY^T H``, ``dH = dY B``, ``dA = dH^T x`` and,
  where the input needs a gradient, ``dX = dH A`` plus the dropout's backward and an
  ``add`` into the base's ``dX``. The embedding runs no backward (its table is frozen
  and token ids need no gradient); nothing before the first adapter runs a backward
  (``requires_grad`` starts there, as the "no gradient for the input" rule of
  :mod:`ddlsim.sim.workloads` says);
* **activations**: a layer that runs a backward keeps what it kept in full training
  (a frozen linear still counts its input: Transformer Engine's linear caches it
  whatever the weight needs, NVIDIA/TransformerEngine PR #1817; PyTorch's eager ``mm``
  skips it when the weight needs no gradient, so there it is an upper bound), plus each
  adapter's ``H`` (``rows x r``) and, with dropout, the dropped-out input (``rows x
  d_in``) and its 1-byte mask (``mask_elems``). Layers without a backward keep nothing.

Targets (:data:`LORA_TARGETS`) name the base matrices: ``qkv`` one adapter on the fused
Q/K/V projection (``d_out = h + 2 kv d``; the MLPerf reference's ``qkv_proj`` on its
fused-QKV checkpoint and NeMo's ``attention_qkv``), ``q``/``k``/``v`` one each on its
slice (PEFT's ``q_proj``/``k_proj``/``v_proj`` of an unfused Llama), ``o`` the attention
output, ``gate``/``up`` the SwiGLU halves (``up`` is ``fc1`` of a two-matrix MLP),
``down`` the MLP output (``fc2``).

Tensor parallelism (``tp`` > 1, layers from :func:`ddlsim.sim.tensor.shard_model`): each
GPU holds ``1/tp`` of every adapter, as NeMo's ``ParallelLinearAdapter`` splits them
(column-parallel base: ``A`` split along the rank, ``B`` along its output; row-parallel
base: ``A`` along its input, ``B`` along its output); the adapters' own collectives
(``rows x r`` elements) are not modelled.

Model FLOPs of a LoRA step (what MFU divides by): the FLOPs the step executes without
recomputation, forward plus backward as above, about ``4 N`` per token for the base's
``N`` parameters (``2 N`` forward, ``2 N`` data gradient) plus ``6`` per adapter
parameter and token, not the ``6 N`` of full training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ddlsim.errors import ConfigError
from ddlsim.job import LORA_TARGETS, check_lora
from ddlsim.opspec import call
from ddlsim.sim.workloads.graph import Layer, Workload

__all__ = ["COLUMN_LAYERS", "LORA_TARGETS", "MLPERF_LORA", "MLPERF_LORA_SOURCE",
           "TARGET_LAYERS", "LoraSpec", "adapter_widths", "apply_lora", "check_lora",
           "lora_layers", "lora_param_count"]

#: Block layer (name after ``h.{i}.``) -> the targets it carries.
TARGET_LAYERS = {"attn.qkv": ("qkv", "q", "k", "v"), "attn.proj": ("o",),
                 "mlp.gate_up": ("gate", "up"), "mlp.fc1": ("up",),
                 "mlp.down": ("down",), "mlp.fc2": ("down",)}
#: Megatron's column-parallel block layers (split outputs); the others are row-parallel.
COLUMN_LAYERS = frozenset({"attn.qkv", "mlp.gate_up", "mlp.fc1"})

#: The MLPerf Training Llama-2 70B LoRA recipe and where it is stated.
MLPERF_LORA_SOURCE = (
    "mlcommons/training llama2_70b_lora/README.md @ 00baefadb357 (--lora_r 16 --lora_alpha "
    "32 --lora_dropout 0.1 --lora_target_modules qkv_proj,o_proj on the fused-QKV "
    "Llama-2-70B); NVIDIA's MLPerf v4.0 NeMo submission (mlcommons/training_results_v4.0 "
    "NVIDIA/benchmarks/llama2_70b_lora/implementations/nemo/conf/"
    "megatron_gpt_peft_tuning_config.yaml: adapter_dim 16, alpha 32, adapter_dropout 0.1, "
    "target_modules ['attention'])")


@dataclass(frozen=True)
class LoraSpec:
    """LoRA of rank ``rank`` on ``targets`` (:data:`LORA_TARGETS`) with adapter-input
    dropout probability ``dropout`` (> 0: the dropout's copy and mask are kept);
    ``alpha`` only scales the update (no cost), recorded for reports."""

    rank: int
    targets: tuple[str, ...] = ("qkv", "o")
    dropout: float = 0.1
    alpha: float = 32.0

    def __post_init__(self) -> None:
        check_lora(self.rank, self.targets, self.dropout)

    def describe(self) -> str:
        return (f"LoRA rank {self.rank} (alpha {self.alpha:g}) on {', '.join(self.targets)}, "
                f"adapter dropout {self.dropout:g}")


#: The MLPerf recipe as a spec (see :data:`MLPERF_LORA_SOURCE`).
MLPERF_LORA = LoraSpec(16, ("qkv", "o"), 0.1, 32.0)


def adapter_widths(role: str, target: str, d_in: int, d_out: int,
                   hyper: dict[str, int]) -> tuple[int, int]:
    """``(d_in, d_out)`` of the adapter ``target`` on the block layer ``role`` whose
    (unsharded) GEMM maps ``d_in`` to ``d_out`` features."""
    if target in ("q", "k", "v"):
        h, heads = hyper["hidden"], hyper["heads"]
        kv = hyper.get("kv_heads", heads) * (h // heads)
        return d_in, h if target == "q" else kv
    if role == "mlp.gate_up":
        return d_in, d_out // 2
    return d_in, d_out


def _adapter(rows: int, d_in: int, d_out: int, r: int, tp: int, column: bool, need: bool,
             dropout: bool) -> tuple[list, list, int, int, int]:
    """(forward calls, backward calls, parameters, kept elements, mask elements) of one
    GPU's share of one adapter (see the module docstring for the split)."""
    if column:
        k_a, r_a, n_b = d_in, math.ceil(r / tp), d_out // tp
    else:
        k_a, r_a, n_b = d_in // tp, r, math.ceil(d_out / tp)
    drop = rows * k_a if dropout else 0
    fwd = ([call("relu_fwd", numel=drop)] if drop else []) + [
        call("gemm", m=rows, n=r_a, k=k_a), call("gemm", m=rows, n=n_b, k=r),
        call("add", numel=rows * n_b)]
    bwd = [call("gemm", m=n_b, n=r, k=rows), call("gemm", m=rows, n=r, k=n_b),
           call("gemm", m=r_a, n=k_a, k=rows)]
    if need:
        bwd.append(call("gemm", m=rows, n=k_a, k=r_a))
        if drop:
            bwd.append(call("relu_bwd", numel=drop))
        bwd.append(call("add", numel=rows * k_a))
    return fwd, bwd, k_a * r_a + r * n_b, rows * r + drop, drop


def _role(name: str) -> str:
    parts = name.split(".", 2)
    return parts[2] if len(parts) == 3 and parts[0] == "h" else ""


def lora_layers(layers, hyper: dict[str, int], spec: LoraSpec, tp: int = 1,
                model: str = "workload") -> tuple[Layer, ...]:
    """``layers`` (forward order; one GPU's tensor-parallel share when ``tp > 1``) as a
    LoRA step under ``spec`` (see the module docstring). ConfigError for a workload
    without transformer blocks or a target it does not have."""
    out, need, used = [], False, set()
    for lay in layers:
        if lay.kind in ("conv", "bn", "pool"):
            raise ConfigError(f"workload.lora_rank: LoRA adapters are modelled on transformer "
                              f"blocks (GPT, Llama, Nemotron, BERT); {model} has {lay.kind} "
                              "layers")
        frozen = lay.param_count + lay.frozen_params
        if lay.kind != "linear":
            keep = need and lay.kind != "embedding"
            out.append(Layer(lay.name, lay.kind, lay.fwd, lay.bwd if keep else (), 0,
                             lay.activation_elems if keep else 0, lay.output_elems, frozen))
            continue
        g = lay.fwd[0].params
        rows, n, k = g["m"], g["n"], g["k"]
        role = _role(lay.name)
        fwd, bwd = list(lay.fwd), [call("gemm", m=rows, n=k, k=n)] if need else []
        params = mask = extra = 0
        targets = [t for t in TARGET_LAYERS.get(role, ()) if t in spec.targets]
        column = role in COLUMN_LAYERS
        full_in, full_out = (k, n * tp) if column else (k * tp, n)
        for t in targets:
            a_in, a_out = adapter_widths(role, t, full_in, full_out, hyper)
            f, b, p, kept, m = _adapter(rows, a_in, a_out, spec.rank, tp, column, need,
                                        spec.dropout > 0)
            fwd += f
            bwd += b
            params, extra, mask = params + p, extra + kept, mask + m
            used.add(t)
        runs = bool(bwd)
        out.append(Layer(lay.name, "linear", tuple(fwd), tuple(bwd), params,
                         lay.activation_elems + extra if runs else 0, lay.output_elems,
                         frozen, mask))
        need = need or bool(targets)
    missing = [t for t in spec.targets if t not in used]
    if missing:
        have = sorted({t for lay in layers for t in TARGET_LAYERS.get(_role(lay.name), ())})
        raise ConfigError(f"workload.lora_targets: {model} has no layer for "
                          f"{', '.join(missing)} (its adaptable matrices: "
                          f"{', '.join(have) or 'none'})")
    return tuple(out)


def apply_lora(workload: Workload, spec: LoraSpec) -> Workload:
    """``workload`` (a transformer from the zoo) fine-tuned with LoRA ``spec``: the same
    model and batch, layers from :func:`lora_layers`, ``lora_rank`` added to ``hyper``."""
    if "lora_rank" in workload.hyperparams:
        raise ConfigError(f"workload.lora_rank: {workload.name} already has LoRA adapters")
    layers = lora_layers(workload.layers, workload.hyperparams, spec, model=workload.name)
    return Workload(workload.name, workload.batch, workload.input_shape, layers,
                    workload.dtype, workload.tokens_per_sample,
                    workload.hyper + (("lora_rank", spec.rank),))


def lora_param_count(layers: int, hidden: int, heads: int, kv_heads: int, ffn: int,
                     spec: LoraSpec, gated: bool = True) -> int:
    """Closed form: trainable adapter parameters of a decoder of ``layers`` blocks,
    ``sum over targets of r (d_in + d_out)`` per block."""
    kv = kv_heads * (hidden // heads)
    dims = {"qkv": (hidden, hidden + 2 * kv), "q": (hidden, hidden), "k": (hidden, kv),
            "v": (hidden, kv), "o": (hidden, hidden), "gate": (hidden, ffn),
            "up": (hidden, ffn), "down": (ffn, hidden)}
    if not gated and "gate" in spec.targets:
        raise ConfigError("workload.lora_targets: 'gate' needs a gated (SwiGLU) MLP")
    return layers * sum(spec.rank * sum(dims[t]) for t in spec.targets)
