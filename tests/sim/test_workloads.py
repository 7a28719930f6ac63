"""Workload layer graphs against published parameter / MAC counts and closed-form FLOPs.

Reference rows are in src/ddlsim/data/published.csv (category model_flops).
MACs are counted torchvision-style: only convolution and matmul kernels (conv2d_fwd,
gemm, bmm) of the forward pass, FLOPs / 2; bias adds, pooling, activations, batchnorm
and the loss are not counted.
"""

from __future__ import annotations

import pytest

from ddlsim.errors import ConfigError
from ddlsim.opspec import OP_PARAMS, KernelCall, call, flops
from ddlsim.sim import workloads as W

CNNS = ("lenet5", "lenet-digits", "mlp", "alexnet", "vgg16", "resnet50")
SMALL_GPT = dict(layers=2, hidden=64, heads=4, seq=32, vocab=100)


def matmul_flops(calls) -> float:
    return sum(flops(kc) for kc in calls if kc.op in W.MATMUL_OPS)


def fwd_macs(w: W.Workload) -> float:
    return sum(matmul_flops(layer.fwd) for layer in w.layers) / 2


# ------------------------------------------------------------------ published counts

@pytest.mark.parametrize(
    ("name", "params", "gmacs", "rel"),
    [
        # FLOP-01a/b: 61,706 params; 416,520 MACs exactly (0.00041652 GMAC)
        ("lenet5", 61_706, 416_520e-9, 0.0),
        # FLOP-02a/b: 61,100,840 params; 0.714 GMAC
        ("alexnet", 61_100_840, 0.714, 0.005),
        # FLOP-03a/b: 138,357,544 params; 15.47 GMAC
        ("vgg16", 138_357_544, 15.47, 0.005),
        # FLOP-04a/b: 25,557,032 params; 4.089 GMAC
        ("resnet50", 25_557_032, 4.089, 0.005),
        # torchvision weight metadata (num_params, _ops in GMACs): resnet101 / resnet152
        ("resnet101", 44_549_160, 7.801, 0.005),
        ("resnet152", 60_192_808, 11.514, 0.005),
    ],
)
def test_cnn_params_and_macs_match_published(name, params, gmacs, rel):
    w = W.get_workload(name, batch=1)
    assert w.param_count == params
    if rel == 0.0:
        assert fwd_macs(w) == 416_520
    else:
        assert fwd_macs(w) == pytest.approx(gmacs * 1e9, rel=rel)


def test_macs_scale_with_batch():
    assert fwd_macs(W.resnet50(batch=4)) == 4 * fwd_macs(W.resnet50(batch=1))


def test_lenet_digits_and_mlp_params():
    # conv 3x3 1->8 (+bias), conv 3x3 8->16 (+bias), fc 64->10 (+bias)
    assert W.lenet_digits(2).param_count == (9 * 8 + 8) + (9 * 8 * 16 + 16) + (64 * 10 + 10)
    assert W.mlp(2, (64, 32, 10)).param_count == 64 * 32 + 32 + 32 * 10 + 10


# ------------------------------------------------------------------ GPT closed forms

def gpt_param_formula(l, h, s, V):
    """Narayanan et al. SC'21: P = 12*l*h^2*(1 + 13/(12h)) + (V+s)*h (tied embeddings)."""
    return 12 * l * h**2 * (1 + 13 / (12 * h)) + (V + s) * h


def gpt_train_flops_formula(B, s, l, h, V):
    """published.csv FLOP-06: 72*B*s*l*h^2*(1 + s/(6h) + V/(12*l*h)) (no recompute)."""
    return 72 * B * s * l * h**2 * (1 + s / (6 * h) + V / (12 * l * h))


@pytest.mark.parametrize("name", ["gpt-small", "gpt3-1.3b", "gpt3-175b", "megatron-1.7b"])
def test_gpt_params_match_formula(name):
    preset = W.GPT_PRESETS[name]
    w = W.get_workload(name, batch=1)
    l, h, s, V = preset.layers, preset.hidden, preset.seq, preset.vocab
    formula = gpt_param_formula(l, h, s, V)
    # The formula omits the final layernorm (gain + bias = 2h); with it the count is exact.
    assert w.param_count == round(formula) + 2 * h
    assert w.param_count == pytest.approx(formula, rel=1e-3)


def test_gpt3_175b_params_match_published_derivation():
    # FLOP-08: 12*l*h^2 + (V+s)*h = 174.6e9 for l=96, h=12288, V=50257, s=2048
    assert W.get_workload("gpt3-175b", 1).param_count == pytest.approx(174.6e9, rel=1e-3)


@pytest.mark.parametrize(("name", "batch"), [("gpt-small", 3), ("gpt3-175b", 2)])
def test_gpt_matmul_train_flops_match_megatron_formula(name, batch):
    p = W.GPT_PRESETS[name]
    w = W.get_workload(name, batch=batch)
    fwd = sum(matmul_flops(layer.fwd) for layer in w.layers)
    bwd = sum(matmul_flops(layer.bwd) for layer in w.layers)
    expected = gpt_train_flops_formula(batch, p.seq, p.layers, p.hidden, p.vocab)
    # Same matmuls as the formula (full s x s attention scores), so equal up to rounding.
    assert fwd + bwd == pytest.approx(expected, rel=1e-9)
    assert fwd == pytest.approx(expected / 3, rel=1e-9)
    assert bwd == pytest.approx(2 * fwd, rel=1e-12)


def test_gpt_samples_are_sequences_and_untied_embeddings_add_head():
    tied = W.gpt(batch=3, **SMALL_GPT)
    untied = W.gpt(batch=3, tied_embeddings=False, **SMALL_GPT)
    assert tied.tokens_per_sample == 32 and tied.tokens_per_iteration == 96
    assert untied.param_count - tied.param_count == 100 * 64  # V*h output projection
    assert tied.hyperparams["heads"] == 4
    # The tied head still computes the weight gradient (dW = dY^T X: m=V, n=h, k=B*s).
    assert call("gemm", m=100, n=64, k=96) in tied.layer("lm_head").bwd


def test_gpt_layer_names_and_order():
    w = W.gpt(batch=1, **SMALL_GPT)
    names = [layer.name for layer in w.layers]
    assert names[0] == "embedding" and names[-3:] == ["ln_f", "lm_head", "loss"]
    block = ["ln1", "attn.qkv", "attn.core", "attn.proj", "add1", "ln2", "mlp.fc1",
             "mlp.gelu", "mlp.fc2", "add2"]
    assert names[1:-3] == [f"h.{i}.{b}" for i in range(2) for b in block]
    core = W.gpt(batch=1, attention="unfused", **SMALL_GPT).layer("h.1.attn.core")
    assert [kc.op for kc in core.fwd] == ["bmm", "softmax_fwd", "bmm"]
    assert core.fwd[0] == call("bmm", b=4, m=32, n=32, k=16)  # Q K^T per head
    # fused (the default): one kernel forward, one backward
    assert w.layer("h.1.attn.core").fwd == (call("flash_attn_fwd", b=4, q=32, kv=32, d=16,
                                                 g=1),)


# ------------------------------------------------------------------ structure

ALL_SMALL = [(n, {}) for n in CNNS] + [("gpt-small", dict(layers=2)),
                                       ("bert-base", dict(layers=2, seq=16))]


@pytest.mark.parametrize(("name", "over"), ALL_SMALL)
def test_every_call_is_valid_and_flops_consistent(name, over):
    w = W.get_workload(name, 2, **over)
    for layer in w.layers:
        for kc in layer.fwd + layer.bwd:
            assert isinstance(kc, KernelCall)
            assert tuple(kc.params) == OP_PARAMS[kc.op]
        assert layer.fwd, layer.name
        assert layer.fwd_flops == sum(flops(kc) for kc in layer.fwd)
    assert w.fwd_flops == pytest.approx(sum(layer.fwd_flops for layer in w.layers), rel=1e-12)
    assert w.bwd_flops == pytest.approx(sum(layer.bwd_flops for layer in w.layers), rel=1e-12)
    assert w.train_flops == w.fwd_flops + w.bwd_flops
    # One sgd_update per parameterised layer, covering every parameter once.
    assert sum(kc.params["numel"] for kc in w.update) == w.param_count
    assert all(kc.op == "sgd_update" for kc in w.update)
    assert w.grad_bytes() == 4 * w.param_count
    assert w.grad_bytes("float16") == 2 * w.param_count


@pytest.mark.parametrize("name", ["lenet5", "alexnet", "vgg16", "resnet50", "mlp"])
def test_backward_is_twice_forward_for_conv_and_linear(name):
    w = W.get_workload(name, 2)
    weighted = [layer for layer in w.layers if layer.kind in ("conv", "linear")]
    first, rest = weighted[0], weighted[1:]
    for layer in rest:
        assert matmul_flops(layer.bwd) == 2 * matmul_flops(layer.fwd), layer.name
    # The first layer computes no gradient for the input data: weight gradient only.
    assert matmul_flops(first.bwd) == matmul_flops(first.fwd)
    assert first is w.layers[0] or all(not lay.bwd for lay in w.layers[:w.layers.index(first)])


def test_conv_backward_order_and_shapes():
    w = W.lenet5(batch=4)
    conv2 = w.layer("conv2")
    shape = dict(n=4, c=6, h=14, w=14, k=16, r=5, s=5, stride=1, pad=0)
    assert conv2.fwd[0] == call("conv2d_fwd", **shape)
    assert [kc.op for kc in conv2.bwd] == ["conv2d_bwd_data", "conv2d_bwd_filter", "add"]
    assert [kc.op for kc in w.layer("conv1").bwd] == ["conv2d_bwd_filter", "add"]
    fc3 = w.layer("fc3")  # 400 -> 120
    assert fc3.fwd[0] == call("gemm", m=4, n=120, k=400)
    assert fc3.bwd[:2] == (call("gemm", m=4, n=400, k=120), call("gemm", m=120, n=400, k=4))


def test_resnet_v15_stride_on_3x3_and_residual():
    w = W.resnet50(batch=1)
    c2 = w.layer("layer2.0.conv2").fwd[0].params
    assert (c2["r"], c2["stride"], c2["h"]) == (3, 2, 56)
    assert w.layer("layer2.0.conv1").fwd[0].params["stride"] == 1
    assert w.layer("layer2.0.downsample.0").fwd[0].params["stride"] == 2
    assert w.layer("layer4.2.add").output_elems == 2048 * 7 * 7
    assert sum(layer.kind == "add" for layer in w.layers) == 16
    assert sum(layer.kind == "bn" for layer in w.layers) == 53


@pytest.mark.parametrize(("name", "over"), ALL_SMALL)
def test_activations_positive_and_linear_in_batch(name, over):
    w1 = W.get_workload(name, 1, **over)
    w3 = W.get_workload(name, 3, **over)
    assert w1.activation_elems > 0
    for a, b in zip(w1.layers, w3.layers, strict=True):
        assert a.name == b.name
        assert b.activation_elems == 3 * a.activation_elems
        assert b.output_elems == 3 * a.output_elems > 0
        if a.bwd:
            assert a.activation_elems > 0 or a.kind in ("add", "pool")
    assert w3.param_count == w1.param_count


def test_activation_counts_small_case():
    w = W.lenet5(batch=2)
    assert w.layer("conv1").activation_elems == 0 + 2 * 1 * 32 * 32  # input image
    assert w.layer("relu1").activation_elems == 2 * 6 * 28 * 28  # output mask
    assert w.layer("pool1").activation_elems == 2 * 6 * (28 * 28 + 14 * 14)  # input + output
    assert w.layer("loss").activation_elems == 2 * 10  # probabilities


def test_param_free_layers_before_first_weights_run_no_backward():
    w = W.from_layers("x", 2, [{"kind": "maxpool", "kernel": 2}, {"kind": "linear", "out": 3}],
                      input_shape=(1, 4, 4))
    assert w.layers[0].bwd == () and w.layers[0].activation_elems == 0
    assert [kc.op for kc in w.layers[1].bwd] == ["gemm", "add"]


# ------------------------------------------------------------------ from_layers

def test_from_layers_builds_lenet5_equivalent():
    specs = [
        {"kind": "conv", "in_ch": 1, "out_ch": 6, "kernel": 5, "name": "conv1"},
        {"kind": "relu", "name": "relu1"}, {"kind": "maxpool", "kernel": 2, "name": "pool1"},
        {"kind": "conv", "out_ch": 16, "kernel": 5, "name": "conv2"},
        {"kind": "relu", "name": "relu2"}, {"kind": "maxpool", "kernel": 2, "name": "pool2"},
        {"kind": "flatten"},
        {"kind": "linear", "in": 400, "out": 120, "name": "fc3"}, {"kind": "relu", "name": "relu3"},
        {"kind": "linear", "out": 84, "name": "fc4"}, {"kind": "relu", "name": "relu4"},
        {"kind": "linear", "out": 10, "name": "fc5"},
    ]
    mine = W.from_layers("lenet5", 4, specs, input_shape=(1, 32, 32))
    ref = W.lenet5(4)
    assert mine.layers == ref.layers  # loss appended automatically, same calls


@pytest.mark.parametrize(
    ("specs", "shape", "needle"),
    [
        ([{"kind": "linear", "in": 10, "out": 5}], (8,), "specs[0].in"),
        ([{"kind": "linear"}], (8,), "specs[0].out"),
        ([{"kind": "linear", "out": 0}], (8,), "specs[0].out"),
        ([{"kind": "relu"}, {"kind": "lineer", "out": 2}], (8,), "'linear'"),
        ([{"kind": "conv", "out_ch": 4, "kernel": 3}], (8,), "specs[0].kind"),
        ([{"kind": "conv", "out_ch": 4, "kernel": 9}], (1, 4, 4), "does not fit"),
        ([{"kind": "conv", "out_ch": 4, "kernel": 3, "strid": 2}], (1, 8, 8), "'stride'"),
        ([{"kind": "conv", "in_ch": 3, "out_ch": 4, "kernel": 3}], (1, 8, 8), "specs[0].in_ch"),
        ([{"kind": "linear", "out": 2, "bias": "yes"}], (8,), "specs[0].bias"),
        ([{"kind": "softmax_xent"}, {"kind": "relu"}], (8,), "specs[0].kind"),
        (["relu"], (8,), "specs[0]"),
        ([{"kind": "relu", "name": "a"}, {"kind": "relu", "name": "a"}], (8,), "specs[1].name"),
        ([], (8,), "specs"),
    ],
)
def test_from_layers_errors_name_the_field(specs, shape, needle):
    with pytest.raises(ConfigError) as info:
        W.from_layers("bad", 2, specs, input_shape=shape)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ registry and validation

def test_registry_suggests_closest_name():
    with pytest.raises(ConfigError, match="did you mean 'resnet50'"):
        W.get_workload("resnet5", 8)
    with pytest.raises(ConfigError, match="did you mean 'seq'"):
        W.get_workload("gpt-small", 1, sek=8)
    assert {"lenet5", "alexnet", "vgg16", "resnet50", "gpt3-175b", "mlp"} <= set(
        W.list_workloads())


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        (dict(batch=0), "batch"),
        (dict(batch=1.5), "batch"),
        (dict(batch=1, heads=5), "heads"),
        (dict(batch=1, seq=0), "seq"),
        (dict(batch=1, dtype="fp13"), "dtype"),
    ],
)
def test_gpt_validation(kwargs, needle):
    args = dict(SMALL_GPT)
    args.update(kwargs)
    with pytest.raises(ConfigError, match=needle):
        W.gpt(**args)


def test_overrides_change_the_model():
    w = W.get_workload("gpt3-175b", 1, layers=2, seq=128, dtype="bfloat16")
    assert w.hyperparams["layers"] == 2 and w.tokens_per_sample == 128
    assert w.dtype == "bfloat16" and w.grad_bytes() == 2 * w.param_count
    assert w.name == "gpt3-175b"


def test_layer_lookup_suggests():
    with pytest.raises(ConfigError, match="did you mean 'conv1'"):
        W.lenet5(1).layer("conv_1")


# --------------------------------------------------------------------------- Llama
@pytest.mark.parametrize("name", sorted(W.LLAMA_PRESETS))
def test_llama_presets_match_published_parameter_counts(name):
    p = W.LLAMA_PRESETS[name]
    closed = W.llama_param_count(p.layers, p.hidden, p.heads, p.kv_heads, p.ffn, p.vocab)
    # published sizes are rounded to 3 significant figures (HF model cards / papers)
    assert abs(closed / p.params - 1) < 0.005
    small = W.get_workload(name, 1, layers=2, seq=16)
    assert small.param_count == W.llama_param_count(2, p.hidden, p.heads, p.kv_heads, p.ffn,
                                                     p.vocab)


def test_llama2_7b_exact_parameter_count():
    # meta-llama/Llama-2-7b-hf: 6,738,415,616 parameters (untied embeddings, no biases)
    assert W.get_workload("llama2-7b", 1, layers=32, seq=8).param_count == 6_738_415_616


def test_llama_gqa_shrinks_only_kv_projection_and_flops_are_closed_form():
    b, s, h, a, ffn, v = 2, 16, 64, 8, 96, 50
    mha = W.llama(b, 1, h, a, a, ffn, s, v)
    gqa = W.llama(b, 1, h, a, 2, ffn, s, v)
    d = h // a
    assert mha.param_count - gqa.param_count == 2 * h * (a - 2) * d
    # forward matmul FLOPs: qkv + proj + 3 MLP matrices + attention (2 bmm) + lm_head
    rows = b * s
    want = 2 * rows * (h * (h + 2 * 2 * d) + h * h + 3 * h * ffn + h * v) + 2 * 2 * b * s * s * h
    got = sum(matmul_flops(layer.fwd) for layer in gqa.layers)
    assert got == pytest.approx(want, rel=1e-12)


def test_llama_rejects_bad_grouping():
    with pytest.raises(ConfigError, match="kv_heads"):
        W.llama(1, 1, 64, 8, 3, 96, 16, 50)


def test_deeper_resnets_differ_from_resnet50_only_in_stage_depth():
    r50, r101 = W.resnet50(batch=2), W.resnet101(batch=2)
    names50 = {layer.name for layer in r50.layers}
    names101 = {layer.name for layer in r101.layers}
    assert names50 < names101
    extra = {n.split(".")[0] + "." + n.split(".")[1] for n in names101 - names50}
    assert extra == {f"layer3.{b}" for b in range(6, 23)}  # 17 extra identity blocks
    # each extra block: 1x1 1024->256, 3x3 256->256, 1x1 256->1024 (no bias) + 3 bn
    per_block = 1024 * 256 + 9 * 256 * 256 + 256 * 1024 + 2 * (256 + 256 + 1024)
    assert r101.param_count - r50.param_count == 17 * per_block
    assert W.resnet152(batch=1).name == "resnet152"


# --------------------------------------------------------------------------- BERT
# Published sizes (Devlin et al. 2019 Sec. 3): BERT-BASE 110M, BERT-LARGE 340M. The exact
# encoder+pooler count for the HF configs (vocab 30522, 512 positions, 2 token types) is
# 109,482,240 / 335,141,888: the 340M of the paper is rounded up (335.1M is 1.4 % below).
@pytest.mark.parametrize(("name", "exact", "rel"), [("bert-base", 109_482_240, 0.005),
                                                    ("bert-large", 335_141_888, 0.015)])
def test_bert_presets_match_published_parameter_counts(name, exact, rel):
    p = W.BERT_PRESETS[name]
    assert W.bert_param_count(p.layers, p.hidden) == exact
    assert abs(exact / p.params - 1) < rel
    enc = W.get_workload(name, 1, seq=8, pretraining_heads=False)
    assert enc.param_count == exact  # the layer list counts the same parameters
    full = W.get_workload(name, 1, seq=8)
    h, v = p.hidden, 30522
    assert full.param_count - exact == h * h + 5 * h + v + 2  # MLM transform, bias; NSP


def test_bert_layer_names_and_matmul_flops_are_closed_form():
    b, s, h, a, layers, v = 2, 16, 64, 4, 2, 50
    w = W.bert(b, layers, h, a, s, vocab=v)
    names = [layer.name for layer in w.layers]
    block = ["attn.qkv", "attn.core", "attn.proj", "add1", "ln1", "mlp.fc1", "mlp.gelu",
             "mlp.fc2", "add2", "ln2"]  # post-LN
    assert names[:2] == ["embedding", "embedding.ln"]
    assert names[2:2 + 10 * layers] == [f"h.{i}.{x}" for i in range(layers) for x in block]
    assert names[-1] == "loss" and "mlm.decoder" in names and "pooler.dense" in names
    rows = b * s
    # forward matmuls per block: qkv 3h^2, proj h^2, MLP 8h^2 (per row), attention 2 bmm of
    # s x s x h per sequence; pooler h^2 and NSP 2h per sequence; MLM dense h^2 and
    # decoder h*V per row; a multiply-add is 2 FLOPs
    want = (layers * (2 * rows * 12 * h * h + 2 * 2 * b * s * s * h)
            + 2 * b * (h * h + 2 * h) + 2 * rows * (h * h + h * v))
    got = sum(matmul_flops(layer.fwd) for layer in w.layers)
    assert got == pytest.approx(want, rel=1e-12)
    assert w.tokens_per_sample == s and w.hyperparams["heads"] == a


def test_bert_validation():
    with pytest.raises(ConfigError, match="seq: must be <= 512"):
        W.get_workload("bert-base", 1, seq=1024)
    with pytest.raises(ConfigError, match="heads: must divide"):
        W.bert(1, 1, 64, 5, 8)
    with pytest.raises(ConfigError, match="bert-large"):
        W.get_workload("bert-largee", 1)


@pytest.mark.parametrize("name", sorted(W.NEMOTRON_PRESETS))
def test_nemotron_presets_closed_form_parameters(name):
    p = W.NEMOTRON_PRESETS[name]
    small = W.get_workload(name, 1, layers=2, seq=8)
    assert small.param_count == W.nemotron_param_count(2, p.hidden, p.heads, p.kv_heads,
                                                       p.ffn, p.vocab)
    # the name is the size: 8B, 22B (21.3B), 340B (341.0B)
    size = float(name.split("-")[1].rstrip("b")) * 1e9
    full = W.nemotron_param_count(p.layers, p.hidden, p.heads, p.kv_heads, p.ffn, p.vocab)
    assert full == pytest.approx(size, rel=0.07)


def test_nemotron_mlp_is_two_gemms_with_squared_relu_and_layernorm():
    h, a, kv, ffn, s, b = 64, 8, 2, 256, 16, 2
    wl = W.nemotron(b, 1, h, a, kv, ffn, s, 100)
    names = [lay.name for lay in wl.layers if lay.name.startswith("h.0.")]
    assert names == ["h.0.ln1", "h.0.attn.qkv", "h.0.attn.core", "h.0.attn.proj", "h.0.add1",
                     "h.0.ln2", "h.0.mlp.fc1", "h.0.mlp.sqrelu", "h.0.mlp.fc2", "h.0.add2"]
    rows = b * s
    mlp_gemm = sum(flops(kc) for lay in wl.layers if lay.name.startswith("h.0.mlp.")
                   for kc in lay.fwd if kc.op == "gemm")
    assert mlp_gemm == 2 * (2 * rows * h * ffn)  # fc1 and fc2, no gate
    assert wl.layer("h.0.ln1").param_count == 2 * h  # layernorm1p: weight and bias
    assert wl.layer("h.0.mlp.sqrelu").fwd == (call("relu_fwd", numel=rows * ffn),)
    assert wl.hyperparams["gated_mlp"] == 0
    assert W.get_workload("llama2-7b", 1, layers=1, seq=8).hyperparams["gated_mlp"] == 1


@pytest.mark.parametrize("name,size", [("gpt3-5b", 5e9), ("gpt3-20b", 20e9)])
def test_nemo_gpt3_presets_match_their_size(name, size):
    p = W.GPT_PRESETS[name]
    h, l_ = p.hidden, p.layers
    closed = 12 * l_ * h * h + 13 * l_ * h + (p.vocab + p.seq) * h + 2 * h
    assert W.get_workload(name, 1, layers=l_, seq=8).param_count == closed - (p.seq - 8) * h
    assert closed == pytest.approx(size, rel=0.03)
