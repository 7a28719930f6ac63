"""Bias-free pre-norm decoders with grouped-query attention: Llama (SwiGLU MLP, RMSNorm) and
Nemotron (squared-ReLU MLP, LayerNorm), with their presets and parameter counts."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ddlsim.errors import ConfigError
from ddlsim.opspec import call
from ddlsim.sim.workloads.gpt_decoder import attention_core, check_attention, ln_layer
from ddlsim.sim.workloads.graph import (
    Layer,
    Workload,
    check_batch,
    check_dtype,
    check_ints,
)
from ddlsim.sim.workloads.net import Net


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
                   seq: int, mlp: str = "swiglu", attention: str = "fused") -> list[Layer]:
    """The layers of a bias-free pre-norm decoder block ``i`` in forward order: Llama
    (``mlp='swiglu'``, RMSNorm) or Nemotron (``mlp='squared_relu'``, LayerNorm with bias,
    Megatron's ``layernorm1p``)."""
    rows = batch * seq
    numel = rows * hidden
    d = hidden // heads
    bh = batch * heads
    p = f"h.{i}"
    net = Net(batch, (hidden,))
    net.grad = True
    add = (call("add", numel=numel),)
    norm = _norm_layer if mlp == "swiglu" else ln_layer

    # Grouped-query attention: K and V have kv_heads heads, each shared by heads/kv_heads
    # query heads, so the core attention math is that of full multi-head attention (the
    # fused kernel reads K and V once per K/V head).
    layers = [norm(f"{p}.ln1", rows, hidden)]
    net.linear(f"{p}.attn.qkv", hidden + 2 * kv_heads * d, bias=False, rows=rows)
    layers.append(net.layers.pop())
    q_kv = rows * (hidden + 2 * kv_heads * d)
    layers.append(attention_core(f"{p}.attn.core", attention, bh, seq, seq, d,
                                 heads // kv_heads, q_kv, numel))
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


@functools.lru_cache(maxsize=32)
def _decoder(batch: int, layers: int, hidden: int, heads: int, kv_heads: int, ffn: int,
             seq: int, vocab: int, mlp: str, dtype: str, name: str,
             attention: str = "fused") -> Workload:
    rows = batch * seq
    numel = rows * hidden
    emb = Layer("embedding", "embedding",
                (call("embedding_fwd", tokens=rows, hidden=hidden, vocab=vocab),),
                (call("embedding_bwd", tokens=rows, hidden=hidden, vocab=vocab),),
                vocab * hidden, rows, numel)
    out = [emb]
    block = _decoder_block(0, batch, hidden, heads, kv_heads, ffn, seq, mlp, attention)
    out.extend(block)
    for i in range(1, layers):
        prefix = f"h.{i}."
        out.extend(Layer(prefix + lay.name[4:], lay.kind, lay.fwd, lay.bwd, lay.param_count,
                         lay.activation_elems, lay.output_elems) for lay in block)
    out.append((_norm_layer if mlp == "swiglu" else ln_layer)("ln_f", rows, hidden))
    net = Net(batch, (hidden,))
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
                   seq: int, vocab: int, dtype: str, attention: str = "fused") -> None:
    check_batch(batch)
    check_attention(attention)
    check_dtype(dtype)
    check_ints(layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads, ffn=ffn, seq=seq,
               vocab=vocab)
    if hidden % heads:
        raise ConfigError(f"heads: must divide hidden={hidden}, got {heads}")
    if heads % kv_heads:
        raise ConfigError(f"kv_heads: must divide heads={heads}, got {kv_heads}")


def llama(batch: int, layers: int, hidden: int, heads: int, kv_heads: int, ffn: int,
          seq: int, vocab: int, dtype: str = "float32", name: str = "llama",
          attention: str = "fused") -> Workload:
    """Llama-style decoder: ``batch`` sequences of ``seq`` tokens per GPU; ``layers``
    blocks of width ``hidden`` with ``heads`` query heads and ``kv_heads`` key/value heads
    (grouped-query attention; ``kv_heads == heads`` is multi-head attention), a SwiGLU MLP
    of inner width ``ffn`` (three ``hidden x ffn`` matrices), RMSNorm-style norms
    (``hidden`` weights each), no biases, rotary positions (no position table) and an
    untied output projection; ``attention``: ``fused`` (FlashAttention, the default) or
    ``unfused`` (see :func:`~ddlsim.sim.workloads.gpt`).

    Parameters: ``2*V*h + l*(2*h^2 + 2*h*kv*d + 3*h*ffn + 2*h) + h`` with ``d = h/heads``.
    Layers per block ``h.{i}``: ln1, attn.qkv, attn.core, attn.proj, add1, ln2,
    mlp.gate_up, mlp.swiglu, mlp.down, add2; then ln_f, lm_head, loss (norms keep
    the GPT names so Megatron's block split finds the blocks).
    """
    _check_decoder(batch, layers, hidden, heads, kv_heads, ffn, seq, vocab, dtype, attention)
    return _decoder(batch, layers, hidden, heads, kv_heads, ffn, seq, vocab, "swiglu", dtype,
                    name, attention)


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
             seq: int, vocab: int, dtype: str = "float32", name: str = "nemotron",
             attention: str = "fused") -> Workload:
    """Nemotron-style decoder (Nemotron-3/4, Megatron-Core GPT with ``squared-relu``):
    ``batch`` sequences of ``seq`` tokens per GPU; ``layers`` blocks of width ``hidden``
    with ``heads`` query and ``kv_heads`` key/value heads, a two-matrix MLP of width
    ``ffn`` with squared-ReLU activation (no gate), LayerNorm with bias (``layernorm1p``,
    ``2*hidden`` weights), no linear biases, rotary positions (no position table) and an
    untied output projection; ``attention``: ``fused`` (default) or ``unfused``.

    Parameters: ``2*V*h + l*(2*h^2 + 2*h*kv*d + 2*h*ffn + 4*h) + 2*h`` with ``d =
    h/heads`` (:func:`nemotron_param_count`). Layers per block ``h.{i}``: ln1, attn.qkv,
    attn.core, attn.proj, add1, ln2, mlp.fc1, mlp.sqrelu, mlp.fc2, add2; then ln_f,
    lm_head, loss.
    """
    _check_decoder(batch, layers, hidden, heads, kv_heads, ffn, seq, vocab, dtype, attention)
    return _decoder(batch, layers, hidden, heads, kv_heads, ffn, seq, vocab, "squared_relu",
                    dtype, name, attention)


def nemotron_param_count(layers: int, hidden: int, heads: int, kv_heads: int, ffn: int,
                         vocab: int) -> int:
    """Closed-form parameter count of :func:`nemotron` (see its docstring)."""
    d = hidden // heads
    block = 2 * hidden * hidden + 2 * hidden * kv_heads * d + 2 * hidden * ffn + 4 * hidden
    return 2 * vocab * hidden + layers * block + 2 * hidden
