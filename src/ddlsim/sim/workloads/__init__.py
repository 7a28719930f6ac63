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

from ddlsim.sim.workloads.bert_encoder import (
    BERT_MAX_POSITIONS,
    BERT_PRESETS,
    BERT_TYPE_VOCAB,
    BertPreset,
    bert,
    bert_param_count,
)
from ddlsim.sim.workloads.cnn import (
    DIGITS_MLP_SIZES,
    RESNET_BLOCKS,
    alexnet,
    cached_resnet50,
    lenet5,
    lenet_digits,
    mlp,
    resnet50,
    resnet101,
    resnet152,
    vgg16,
)
from ddlsim.sim.workloads.gpt_decoder import GPT_PRESETS, GptPreset, cached_gpt, gpt
from ddlsim.sim.workloads.graph import LAYER_KINDS, MATMUL_OPS, Layer, Workload
from ddlsim.sim.workloads.llama_decoder import (
    DECODER_MLPS,
    LLAMA_PRESETS,
    NEMOTRON_PRESETS,
    LlamaPreset,
    NemotronPreset,
    llama,
    llama_param_count,
    nemotron,
    nemotron_param_count,
)
from ddlsim.sim.workloads.lora import (
    LORA_TARGETS,
    MLPERF_LORA,
    LoraSpec,
    apply_lora,
    lora_layers,
    lora_param_count,
)
from ddlsim.sim.workloads.registry import (
    EXPERIMENTAL,
    WORKLOADS,
    get_workload,
    list_workloads,
)
from ddlsim.sim.workloads.specs import SPEC_FIELDS, from_layers

# The cached builders under their former private names (tests clear their caches).
_gpt = cached_gpt
_resnet50 = cached_resnet50

__all__ = [
    "EXPERIMENTAL",
    "BERT_MAX_POSITIONS", "BERT_PRESETS", "BERT_TYPE_VOCAB", "DECODER_MLPS", "DIGITS_MLP_SIZES",
    "GPT_PRESETS", "LAYER_KINDS", "LLAMA_PRESETS", "LORA_TARGETS", "MATMUL_OPS",
    "MLPERF_LORA", "NEMOTRON_PRESETS", "RESNET_BLOCKS", "SPEC_FIELDS", "WORKLOADS",
    "BertPreset", "GptPreset", "Layer", "LlamaPreset", "LoraSpec", "NemotronPreset",
    "Workload", "alexnet", "apply_lora", "bert", "bert_param_count",
    "cached_gpt", "cached_resnet50", "from_layers", "get_workload", "gpt", "lenet5",
    "lenet_digits", "list_workloads", "llama", "llama_param_count", "lora_layers",
    "lora_param_count", "mlp", "nemotron",
    "nemotron_param_count", "resnet50", "resnet101", "resnet152", "vgg16",
]
