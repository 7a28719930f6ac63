"""BERT encoders (:func:`bert`): post-LN blocks with bidirectional attention, the pooler
and the optional pretraining heads, with presets and the closed-form parameter count."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ddlsim.errors import ConfigError
from ddlsim.opspec import call
from ddlsim.sim.workloads.gpt_decoder import attention_calls, gelu_mlp, ln_layer
from ddlsim.sim.workloads.graph import (
    Layer,
    Workload,
    check_batch,
    check_dtype,
    check_ints,
)
from ddlsim.sim.workloads.net import Net


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
    net = Net(batch, (hidden,))
    net.grad = True
    add = (call("add", numel=numel),)

    # Bidirectional attention: the full s x s score matrix, no mask beyond padding.
    attn_fwd, attn_bwd = attention_calls(bh, seq, d)
    net.linear(f"{p}.attn.qkv", 3 * hidden, rows=rows)
    layers = [net.layers.pop()]
    layers.append(Layer(f"{p}.attn.core", "attention", attn_fwd, attn_bwd, 0,
                        3 * numel + bh * seq * seq, numel))
    net.shape = (hidden,)
    net.linear(f"{p}.attn.proj", hidden, rows=rows)
    layers.append(net.layers.pop())
    layers.append(Layer(f"{p}.add1", "add", add, add, 0, 0, numel))
    layers.append(ln_layer(f"{p}.ln1", rows, hidden))
    net.shape = (hidden,)
    layers += gelu_mlp(net, p, hidden, ffn, rows)
    layers.append(Layer(f"{p}.add2", "add", add, add, 0, 0, numel))
    layers.append(ln_layer(f"{p}.ln2", rows, hidden))
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
    out = [emb, ln_layer("embedding.ln", rows, hidden)]
    block = _bert_block(0, batch, hidden, heads, seq, ffn_mult * hidden)
    out.extend(block)
    for i in range(1, layers):
        prefix = f"h.{i}."
        out.extend(Layer(prefix + lay.name[4:], lay.kind, lay.fwd, lay.bwd, lay.param_count,
                         lay.activation_elems, lay.output_elems) for lay in block)
    net = Net(batch, (hidden,))
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
        net.layers.append(ln_layer("mlm.ln", rows, hidden))
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
    check_batch(batch)
    check_dtype(dtype)
    check_ints(layers=layers, hidden=hidden, heads=heads, seq=seq, vocab=vocab,
               ffn_mult=ffn_mult)
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
