"""Transformer-XL (Dai et al. 2019, arXiv 1901.02860) as NVIDIA DeepLearningExamples trains
it (PyTorch/LanguageModeling/Transformer-XL): :func:`transformer_xl` and its presets.

What one training step runs (``pytorch/mem_transformer.py``, ``RelPartialLearnable`` attention,
``attn_type 0``; ``utils/proj_adaptive_softmax.py``), counted as executed:

* the adaptive input embedding (``div_val 1``: one table; otherwise one table and one
  projection per cluster, each run over the tokens that fall in it);
* per block (post-LN): ``qkv_net`` over the memory and the segment (``mem_len + tgt_len``
  rows: the queries of the memory rows are computed and dropped, as the code does), the
  ``r_net`` projection of the ``klen`` sinusoidal positions (batch-independent, no input
  gradient), the attention core of ``tgt_len`` queries against ``klen = tgt_len + mem_len``
  keys with the relative-position term ``BD = (Q + r_r_bias) R^T`` (one more product of the
  size of ``Q K^T``, its ``_rel_shift`` copy, and two more backward products: dQ through R and
  dR), ``o_net``, residual + LayerNorm, ReLU MLP, residual + LayerNorm. The memory is an
  input without gradient (``mems`` are detached): the backward stops at ``qkv_net``;
* the projected adaptive softmax: the head logits (shortlist + one entry per cluster) over
  every token, and each tail cluster's logits over the tokens whose target is in that
  cluster. Which tokens those are depends on the data; :func:`zipf_cluster_fractions`
  estimates the share of each cluster from Zipf's law (rank-frequency ``1/r``), an
  assumption (a real corpus puts more of its tokens in the shortlist than Zipf does).

Not modelled: dropout, the sinusoid computation, index_select/gather traffic of the
adaptive softmax, the memory update copy.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from ddlsim.errors import ConfigError
from ddlsim.opspec import KernelCall, call
from ddlsim.sim.workloads.gpt_decoder import block_attention_calls, ln_layer
from ddlsim.sim.workloads.graph import (
    Layer,
    Workload,
    check_batch,
    check_dtype,
    check_int,
    check_ints,
)
from ddlsim.sim.workloads.net import Net

#: WikiText-103 word vocabulary and adaptive-softmax cutoffs of DLE ``pytorch/train.py``
#: (``cutoffs = [19997, 39997, 199997]`` for ``wt103``, ``tie_projs = [False] + [True] * 3``).
WT103_VOCAB = 267735
WT103_CUTOFFS = (19997, 39997, 199997)


@dataclass(frozen=True)
class TxlPreset:
    """A named Transformer-XL configuration and where its numbers come from."""

    layers: int
    d_model: int
    heads: int
    d_head: int
    d_inner: int
    tgt_len: int
    mem_len: int
    div_val: int
    source: str

    def config(self) -> dict[str, int]:
        return dict(layers=self.layers, d_model=self.d_model, heads=self.heads,
                    d_head=self.d_head, d_inner=self.d_inner, tgt_len=self.tgt_len,
                    mem_len=self.mem_len, div_val=self.div_val)


_DLE = ("NVIDIA/DeepLearningExamples PyTorch/LanguageModeling/Transformer-XL pytorch/"
        "wt103_{f}.yaml train section (n_layer, d_model, n_head, d_head, d_inner, tgt_len, "
        "mem_len{dv}) and README 'Model architecture'; train.py: wt103 cutoffs 19997/39997/"
        "199997, tie_projs [False, True, True, True], tied weights, d_embed = d_model; "
        "vocabulary 267,735 (wt103_large.yaml manual_config n_token)")

#: Named Transformer-XL configurations for :func:`get_workload`.
TXL_PRESETS: dict[str, TxlPreset] = {
    "transformer-xl-base": TxlPreset(16, 512, 8, 64, 2048, 192, 192, 1,
                                     _DLE.format(f="base", dv="; div_val: train.py default 1")),
    "transformer-xl-large": TxlPreset(18, 1024, 16, 64, 4096, 384, 384, 4,
                                      _DLE.format(f="large", dv=", div_val 4")),
}


def zipf_cluster_fractions(cutoffs: tuple[int, ...], vocab: int) -> tuple[float, ...]:
    """Share of tokens whose target lies in each adaptive-softmax cluster (shortlist first)
    under Zipf's law with exponent 1: ``(H(r) - H(l)) / H(V)``, ``H`` the harmonic number."""
    def harmonic(n: int) -> float:
        return math.log(n) + 0.5772156649 + 1 / (2 * n) if n else 0.0

    ends = (0, *cutoffs, vocab)
    return tuple((harmonic(ends[i + 1]) - harmonic(ends[i])) / harmonic(vocab)
                 for i in range(len(ends) - 1))


def _gemm_layer(name: str, m: int, n: int, k: int, params: int, data_grad: bool = True,
                bias: bool = False) -> Layer:
    """Y (m x n) = X (m x k) W^T with the backward GEMMs, ``params`` owned."""
    fwd = [call("gemm", m=m, n=n, k=k)]
    bwd = [call("gemm", m=m, n=k, k=n)] if data_grad else []
    bwd.append(call("gemm", m=n, n=k, k=m))
    if bias:
        fwd.append(call("add", numel=m * n))
        bwd.append(call("add", numel=m * n))
    return Layer(name, "linear", tuple(fwd), tuple(bwd), params, m * k, m * n)


def rel_attention_calls(bh: int, heads: int, q_len: int, k_len: int, d: int
                        ) -> tuple[tuple[KernelCall, ...], tuple[KernelCall, ...]]:
    """Forward and backward kernels of Transformer-XL's relative attention core for ``bh``
    = batch x heads heads: the unfused core of ``q_len`` queries against ``k_len`` keys
    (:func:`~ddlsim.sim.workloads.gpt_decoder.block_attention_calls`) plus the position
    term: ``Q + r_w_bias`` and ``Q + r_r_bias``, ``BD = (Q + r_r_bias) R^T`` (R: ``k_len x d``
    per head, shared by the batch), ``_rel_shift``, ``AC + BD``; backward ``dQ += dBD R``,
    ``dR = dBD^T (Q + r_r_bias)`` (summed over the batch: ``heads`` products of inner size
    ``batch * q_len``) and the two bias gradients."""
    core_fwd, core_bwd = block_attention_calls(bh, q_len, k_len, d)
    q_numel, scores = bh * q_len * d, bh * q_len * k_len
    batch = bh // heads
    fwd = (call("add", numel=q_numel), call("add", numel=q_numel),  # Q + r_w_bias, Q + r_r_bias
           core_fwd[0],  # AC = (Q + r_w_bias) K^T
           call("bmm", b=bh, m=q_len, n=k_len, k=d),  # BD = (Q + r_r_bias) R^T
           call("add", numel=scores),  # _rel_shift (pad + copy)
           call("add", numel=scores),  # AC + BD, scaled
           *core_fwd[1:])  # softmax, P V
    bwd = (*core_bwd,
           call("add", numel=scores),  # _rel_shift backward
           call("bmm", b=bh, m=q_len, n=d, k=k_len),  # dQ += dBD R
           call("bmm", b=heads, m=k_len, n=d, k=batch * q_len),  # dR = dBD^T (Q + r_r_bias)
           call("add", numel=q_numel), call("add", numel=q_numel))  # dQ sum, bias grads
    return fwd, bwd


def _block(i: int, batch: int, d_model: int, heads: int, d_head: int, d_inner: int,
           tgt_len: int, mem_len: int) -> list[Layer]:
    """The layers of block ``i`` in forward order (post-LN, as ``pre_lnorm: false``)."""
    rows, k_len = batch * tgt_len, tgt_len + mem_len
    cat_rows = batch * k_len
    hd = heads * d_head
    numel = rows * d_model
    p = f"h.{i}"
    bh = batch * heads
    fwd, bwd = rel_attention_calls(bh, heads, tgt_len, k_len, d_head)
    # Kept for the backward: Q + both biases, K, V, R and the probabilities.
    kept = 2 * rows * hd + 2 * cat_rows * hd + k_len * hd + bh * tgt_len * k_len
    add = (call("add", numel=numel),)
    layers = [_gemm_layer(f"{p}.attn.qkv", cat_rows, 3 * hd, d_model, 3 * hd * d_model),
              _gemm_layer(f"{p}.attn.r", k_len, hd, d_model, hd * d_model, data_grad=False),
              Layer(f"{p}.attn.core", "attention", fwd, bwd, 0, kept, rows * hd),
              _gemm_layer(f"{p}.attn.proj", rows, d_model, hd, d_model * hd),
              Layer(f"{p}.add1", "add", add, add, 0, 0, numel),
              ln_layer(f"{p}.ln1", rows, d_model)]
    net = Net(batch, (d_model,))
    net.grad = True
    net.linear(f"{p}.mlp.fc1", d_inner, rows=rows)
    net.elementwise(f"{p}.mlp.relu", "relu", rows=rows)
    net.linear(f"{p}.mlp.fc2", d_model, rows=rows)
    layers += net.layers
    layers += [Layer(f"{p}.add2", "add", add, add, 0, 0, numel),
               ln_layer(f"{p}.ln2", rows, d_model)]
    return layers


def _cluster_rows(rows: int, fractions: tuple[float, ...], head: int) -> list[int]:
    """Tokens per cluster: ``head`` for the first (all rows for the softmax head, which
    scores every token), then each tail's share (at least one)."""
    return [head] + [max(1, round(rows * f)) for f in fractions[1:]]


def _embedding(rows: int, d_model: int, vocab: int, cutoffs: tuple[int, ...], div_val: int,
               fractions: tuple[float, ...]) -> list[Layer]:
    """Adaptive input: tables (and, for ``div_val > 1``, per-cluster projections to
    ``d_model``), then the ``sqrt(d_model)`` scale."""
    numel = rows * d_model
    if div_val == 1:
        return [Layer("embedding", "embedding",
                      (call("embedding_fwd", tokens=rows, hidden=d_model, vocab=vocab),
                       call("add", numel=numel)),
                      (call("embedding_bwd", tokens=rows, hidden=d_model, vocab=vocab),),
                      vocab * d_model, rows, numel)]
    ends = (0, *cutoffs, vocab)
    out = []
    for i, n in enumerate(_cluster_rows(rows, fractions, max(1, round(rows * fractions[0])))):
        d_i = d_model // div_val ** i
        size = ends[i + 1] - ends[i]
        out.append(Layer(f"embedding.{i}", "embedding",
                         (call("embedding_fwd", tokens=n, hidden=d_i, vocab=size),),
                         (call("embedding_bwd", tokens=n, hidden=d_i, vocab=size),),
                         size * d_i, n, n * d_i))
        out.append(_gemm_layer(f"embedding.{i}.proj", n, d_model, d_i, d_model * d_i))
    add = (call("add", numel=numel),)
    out.append(Layer("embedding.scale", "add", add, add, 0, 0, numel))
    return out


def _adaptive_softmax(rows: int, d_model: int, vocab: int, cutoffs: tuple[int, ...],
                      div_val: int, fractions: tuple[float, ...]) -> list[Layer]:
    """Head over every token (shortlist + cluster logits, cluster weights owned here),
    tails over their tokens; output weights tied to the embedding tables, the head's
    projection (``tie_projs[0] = False``) owned, the tails' projections shared with the
    embedding's. Output biases (``vocab``) are owned here."""
    ends = (0, *cutoffs, vocab)
    clusters = len(cutoffs)
    out = []
    for i, n in enumerate(_cluster_rows(rows, fractions, rows)):
        size = ends[i + 1] - ends[i] + (clusters if i == 0 else 0)
        d_i = d_model // div_val ** i
        owned = size if i else size + clusters * d_model  # biases (+ cluster weights)
        p = "lm_head" if i == 0 else f"lm_tail.{i}"
        if div_val > 1:  # logits = (h P_i) W_i^T + b_i
            proj_params = d_model * d_i if i == 0 else 0
            out.append(_gemm_layer(f"{p}.proj", n, d_i, d_model, proj_params))
        out.append(_gemm_layer(p, n, size, d_i, owned, bias=True))
        out.append(Layer(f"{p}.loss", "softmax_xent",
                         (call("softmax_xent_fwd", n=n, classes=size),),
                         (call("softmax_xent_bwd", n=n, classes=size),), 0, n * size, n))
    return out


@functools.lru_cache(maxsize=16)
def _txl(batch: int, layers: int, d_model: int, heads: int, d_head: int, d_inner: int,
         tgt_len: int, mem_len: int, vocab: int, cutoffs: tuple[int, ...], div_val: int,
         dtype: str, name: str) -> Workload:
    rows = batch * tgt_len
    fractions = zipf_cluster_fractions(cutoffs, vocab)
    out = _embedding(rows, d_model, vocab, cutoffs, div_val, fractions)
    # r_w_bias and r_r_bias: shared by all blocks (n_head x d_head each), owned by block 0.
    block = _block(0, batch, d_model, heads, d_head, d_inner, tgt_len, mem_len)
    core = next(j for j, lay in enumerate(block) if lay.kind == "attention")
    lay = block[core]
    block[core] = Layer(lay.name, lay.kind, lay.fwd, lay.bwd, 2 * heads * d_head,
                        lay.activation_elems, lay.output_elems)
    out += block
    for i in range(1, layers):
        out += [Layer(f"h.{i}." + lay.name[4:], lay.kind, lay.fwd, lay.bwd,
                      0 if lay.kind == "attention" else lay.param_count,
                      lay.activation_elems, lay.output_elems) for lay in block]
    out += _adaptive_softmax(rows, d_model, vocab, cutoffs, div_val, fractions)
    hyper = (("layers", layers), ("hidden", d_model), ("heads", heads), ("seq", tgt_len),
             ("mem_len", mem_len), ("ffn", d_inner), ("vocab", vocab), ("div_val", div_val))
    return Workload(name, batch, (tgt_len,), tuple(out), dtype, tokens_per_sample=tgt_len,
                    hyper=hyper)


def transformer_xl(batch: int, layers: int, d_model: int, heads: int, d_head: int,
                   d_inner: int, tgt_len: int, mem_len: int, vocab: int = WT103_VOCAB,
                   cutoffs: tuple[int, ...] = WT103_CUTOFFS, div_val: int = 1,
                   dtype: str = "float32", name: str = "transformer-xl") -> Workload:
    """Transformer-XL language model: ``batch`` streams per GPU, each predicting ``tgt_len``
    tokens (a sample) while attending to ``mem_len`` cached hidden states per block;
    ``layers`` blocks of width ``d_model`` with ``heads`` heads of ``d_head``, ReLU MLP of
    ``d_inner``; adaptive input and softmax over ``vocab`` words split at ``cutoffs``,
    cluster ``i`` of width ``d_model // div_val**i``, output weights tied to the input ones.

    Layers: embedding (``div_val > 1``: ``embedding.{i}`` and ``.proj`` per cluster, then
    ``embedding.scale``), per block ``h.{i}``: attn.qkv, attn.r, attn.core, attn.proj, add1,
    ln1, mlp.fc1, mlp.relu, mlp.fc2, add2, ln2; then lm_head (+ ``.proj``), lm_head.loss and
    per tail ``lm_tail.{i}`` (+ ``.proj``) and its loss. Parameters:
    :func:`transformer_xl_param_count`.
    """
    check_batch(batch)
    check_dtype(dtype)
    check_ints(layers=layers, d_model=d_model, heads=heads, d_head=d_head, d_inner=d_inner,
               tgt_len=tgt_len, vocab=vocab, div_val=div_val)
    check_int("mem_len", mem_len, 0)
    cutoffs = tuple(cutoffs)
    if list(cutoffs) != sorted(set(cutoffs)) or any(c < 1 or c >= vocab for c in cutoffs):
        raise ConfigError(f"cutoffs: must rise strictly within 1..{vocab - 1}, got {cutoffs}")
    if d_model // div_val ** len(cutoffs) < 1:
        raise ConfigError(f"div_val: d_model // div_val**{len(cutoffs)} must be >= 1, "
                          f"got div_val={div_val}")
    return _txl(batch, layers, d_model, heads, d_head, d_inner, tgt_len, mem_len, vocab,
                cutoffs, div_val, dtype, name)


def transformer_xl_param_count(layers: int, d_model: int, heads: int, d_head: int,
                               d_inner: int, vocab: int = WT103_VOCAB,
                               cutoffs: tuple[int, ...] = WT103_CUTOFFS,
                               div_val: int = 1) -> int:
    """Closed-form parameters of :func:`transformer_xl` (what ``sum(p.numel())`` gives for
    DLE's ``MemTransformerLM``): per block ``5*d*hd + 2*d*d_inner + d_inner + 5*d`` (qkv,
    r, o; MLP with biases; two LayerNorms), ``2*hd`` for the shared position biases,
    tables ``sum(n_i * d_i)`` (+ projections ``d * d_i`` and the head's own ``d * d_0``
    when ``div_val > 1``), output biases ``vocab`` and cluster weights ``c * (d_0 + 1)``."""
    hd = heads * d_head
    block = 5 * d_model * hd + 2 * d_model * d_inner + d_inner + 5 * d_model
    ends = (0, *cutoffs, vocab)
    widths = [d_model // div_val ** i for i in range(len(ends) - 1)]
    tables = sum((ends[i + 1] - ends[i]) * w for i, w in enumerate(widths))
    projs = (sum(d_model * w for w in widths) + d_model * widths[0]) if div_val > 1 else 0
    head = vocab + len(cutoffs) * (widths[0] + 1)
    return layers * block + 2 * hd + tables + projs + head
