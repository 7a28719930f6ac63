"""GPT decoders (:func:`gpt`) and their presets, plus the transformer pieces the other
transformer workloads reuse: the attention core's kernels and the LayerNorm layer."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ddlsim.errors import ConfigError
from ddlsim.opspec import KernelCall, call
from ddlsim.sim.workloads.graph import (
    Layer,
    Workload,
    check_batch,
    check_dtype,
    check_ints,
)
from ddlsim.sim.workloads.net import Net


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

_MEG19 = ("Shoeybi et al. 2019 'Megatron-LM: Training Multi-Billion Parameter Language "
          "Models Using Model Parallelism' (arXiv 1909.08053) Table 1, {size}B row (hidden, "
          "heads, layers; hidden per head 96); Sec. 4.2: sequences of 1024; Sec. 5.1: "
          "vocabulary padded to 51,200 (Table 2's 8.3B run uses 24 heads, not modelled)")

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
    # Megatron-LM's 2019 weak-scaling study (GPT-2-style, hidden per head 96)
    "gpt2-1.2b": GptPreset(40, 1536, 16, 1024, 51200, _MEG19.format(size="1.2")),
    "gpt2-2.5b": GptPreset(54, 1920, 20, 1024, 51200, _MEG19.format(size="2.5")),
    "gpt2-4.2b": GptPreset(64, 2304, 24, 1024, 51200, _MEG19.format(size="4.2")),
    "gpt2-8.3b": GptPreset(72, 3072, 32, 1024, 51200, _MEG19.format(size="8.3")),
}


def attention_calls(bh: int, seq: int, d: int) -> tuple[tuple[KernelCall, ...], ...]:
    """Forward and backward kernels of the unfused attention core for ``bh`` = batch x
    heads heads of size ``d`` over ``seq`` tokens (full s x s scores; masking folds into
    the softmax): ``(fwd, bwd)``."""
    return block_attention_calls(bh, seq, seq, d)


def block_attention_calls(bh: int, q_len: int, kv_len: int, d: int
                          ) -> tuple[tuple[KernelCall, ...], tuple[KernelCall, ...]]:
    """Unfused attention of ``bh`` heads whose ``q_len`` queries attend to ``kv_len`` keys
    (context parallelism: ``s/cp`` queries against ``s`` keys): ``(fwd, bwd)``."""
    def bmm(m: int, n: int, k: int) -> KernelCall:
        return call("bmm", b=bh, m=m, n=n, k=k)

    fwd = (bmm(q_len, kv_len, d),  # S = Q K^T
           call("softmax_fwd", rows=bh * q_len, cols=kv_len),  # P = softmax(S)
           bmm(q_len, d, kv_len))  # O = P V
    bwd = (bmm(q_len, kv_len, d),  # dP = dO V^T
           bmm(kv_len, d, q_len),  # dV = P^T dO
           call("softmax_bwd", rows=bh * q_len, cols=kv_len),  # dS
           bmm(q_len, d, kv_len),  # dQ = dS K
           bmm(kv_len, d, q_len))  # dK = dS^T Q
    return fwd, bwd


#: How the attention core runs: ``fused`` (FlashAttention-style, one kernel that keeps the
#: scores on chip: Dao et al. 2022, arXiv 2205.14135; the default of Megatron-Core, NeMo
#: and PyTorch SDPA) or ``unfused`` (scores, softmax and the weighted sum as separate
#: kernels with the ``s x s`` matrices in memory).
ATTENTION = ("fused", "unfused")


def fused_attention_calls(bh: int, q_len: int, kv_len: int, d: int, group: int = 1
                          ) -> tuple[tuple[KernelCall, ...], tuple[KernelCall, ...]]:
    """Forward and backward kernel of fused attention for ``bh`` query heads of size ``d``,
    ``q_len`` queries against ``kv_len`` keys, K/V shared by ``group`` query heads: the
    matmul FLOPs of :func:`attention_calls`, the traffic of Q, K, V and O only
    (:mod:`ddlsim.opspec` ``flash_attn_fwd`` / ``flash_attn_bwd``)."""
    shape = dict(b=bh, q=q_len, kv=kv_len, d=d, g=group)
    return (call("flash_attn_fwd", **shape),), (call("flash_attn_bwd", **shape),)


def attention_core(name: str, attention: str, bh: int, q_len: int, kv_len: int, d: int,
                   group: int, qkv_elems: int, out_elems: int) -> Layer:
    """The ``attn.core`` layer. Kept for the backward: Q, K, V (``qkv_elems``) and, unfused,
    the ``bh x q x kv`` softmax probabilities; fused, the per-row log-sum-exp instead
    (``bh x q``, what FlashAttention saves besides Q, K, V and O; O is the output
    projection's input, counted there), so no term grows with ``s^2``."""
    if attention == "fused":
        fwd, bwd = fused_attention_calls(bh, q_len, kv_len, d, group)
        return Layer(name, "attention", fwd, bwd, 0, qkv_elems + bh * q_len, out_elems)
    fwd, bwd = block_attention_calls(bh, q_len, kv_len, d)
    return Layer(name, "attention", fwd, bwd, 0, qkv_elems + bh * q_len * kv_len, out_elems)


def check_attention(attention: object) -> str:
    """``attention`` when it is one of :data:`ATTENTION`; ConfigError otherwise."""
    if attention not in ATTENTION:
        raise ConfigError(f"attention: must be one of {', '.join(ATTENTION)}, "
                          f"got {attention!r}")
    return attention  # type: ignore[return-value]


def ln_layer(name: str, rows: int, hidden: int) -> Layer:
    """LayerNorm over ``rows`` rows of ``hidden`` (weight and bias: ``2*hidden``)."""
    numel = rows * hidden
    return Layer(name, "layernorm", (call("layernorm_fwd", rows=rows, cols=hidden),),
                 (call("layernorm_bwd", rows=rows, cols=hidden),), 2 * hidden,
                 numel + 2 * rows, numel)


def gelu_mlp(net: Net, prefix: str, hidden: int, ffn: int, rows: int) -> list[Layer]:
    """The GELU MLP of a GPT or BERT block: ``fc1`` (hidden -> ffn), ``gelu``, ``fc2``
    (ffn -> hidden) over ``rows`` tokens, in forward order (``net.shape`` must be
    ``(hidden,)``)."""
    net.linear(f"{prefix}.mlp.fc1", ffn, rows=rows)
    fc1 = net.layers.pop()
    net.elementwise(f"{prefix}.mlp.gelu", "gelu", rows=rows)
    gelu = net.layers.pop()
    net.linear(f"{prefix}.mlp.fc2", hidden, rows=rows)
    return [fc1, gelu, net.layers.pop()]


def _gpt_block(net: Net, i: int, batch: int, hidden: int, heads: int, seq: int,
               ffn: int, attention: str = "fused") -> list[Layer]:
    """The layers of transformer block ``i`` (pre-LN), in forward order."""
    rows = batch * seq
    numel = rows * hidden
    add = (call("add", numel=numel),)
    bh = batch * heads
    p = f"h.{i}"
    layers = [ln_layer(f"{p}.ln1", rows, hidden)]
    net.shape = (hidden,)
    net.linear(f"{p}.attn.qkv", 3 * hidden, rows=rows)
    layers.append(net.layers.pop())
    layers.append(attention_core(f"{p}.attn.core", attention, bh, seq, seq, hidden // heads,
                                 1, 3 * numel, numel))
    net.shape = (hidden,)
    net.linear(f"{p}.attn.proj", hidden, rows=rows)
    layers.append(net.layers.pop())
    layers.append(Layer(f"{p}.add1", "add", add, add, 0, 0, numel))
    layers.append(ln_layer(f"{p}.ln2", rows, hidden))
    layers += gelu_mlp(net, p, hidden, ffn, rows)
    layers.append(Layer(f"{p}.add2", "add", add, add, 0, 0, numel))
    return layers


@functools.lru_cache(maxsize=32)
def cached_gpt(batch: int, layers: int, hidden: int, heads: int, seq: int, vocab: int,
               ffn_mult: int, tied_embeddings: bool, dtype: str, name: str,
               attention: str = "fused") -> Workload:
    """The GPT workload of :func:`gpt`, built once per argument tuple (arguments unchecked)."""
    net = Net(batch, (seq,))
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
    block = _gpt_block(net, 0, batch, hidden, heads, seq, ffn_mult * hidden, attention)
    out.extend(block)
    # Every block has the same calls: reuse block 0's tuples, renaming the layers.
    for i in range(1, layers):
        prefix = f"h.{i}."
        out.extend(Layer(prefix + lay.name[4:], lay.kind, lay.fwd, lay.bwd, lay.param_count,
                         lay.activation_elems, lay.output_elems) for lay in block)
    out.append(ln_layer("ln_f", rows, hidden))
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
        name: str = "gpt", attention: str = "fused") -> Workload:
    """Pre-LN GPT decoder. ``batch``: sequences per GPU per iteration (a sample is one
    sequence of ``seq`` tokens); ``layers``: transformer blocks; ``hidden``: model width;
    ``heads``: attention heads (must divide ``hidden``); ``seq``: tokens per sequence;
    ``vocab``: vocabulary size; ``ffn_mult``: MLP width / hidden; ``tied_embeddings``:
    the output projection reuses the token embedding (no extra parameters);
    ``attention``: ``fused`` (one FlashAttention kernel, no ``s x s`` tensor in memory) or
    ``unfused`` (:data:`ATTENTION`).

    Layers: embedding (tokens + learned positions, summed), then per block ``h.{i}``:
    ln1, attn.qkv (gemm), attn.core (fused: ``flash_attn``; unfused: bmm QK^T, softmax,
    bmm PV), attn.proj (gemm), add1,
    ln2, mlp.fc1 (gemm), mlp.gelu, mlp.fc2 (gemm), add2; then ln_f, lm_head (gemm to
    ``vocab``, no bias) and loss (softmax cross-entropy). Linear layers have biases.
    Parameters: ``12*l*h^2 + 13*l*h + (V+s)*h + 2*h`` for ``ffn_mult=4`` and tied
    embeddings. Matmul FLOPs per iteration: ``72*B*s*l*h^2*(1 + s/(6h) + V/(12*l*h))``
    (NVIDIA/Megatron-LM ``num_floating_point_operations`` for a GPT), exactly.
    """
    check_batch(batch)
    check_dtype(dtype)
    check_ints(layers=layers, hidden=hidden, heads=heads, seq=seq, vocab=vocab,
               ffn_mult=ffn_mult)
    if hidden % heads:
        raise ConfigError(f"heads: must divide hidden={hidden}, got {heads}")
    if not isinstance(tied_embeddings, bool):
        raise ConfigError(f"tied_embeddings: must be true or false, got {tied_embeddings!r}")
    check_attention(attention)
    return cached_gpt(batch, layers, hidden, heads, seq, vocab, ffn_mult, tied_embeddings,
                      dtype, name, attention)
