"""What the engines need to know about fine-tuning and a step's FLOPs: the job's LoRA spec
(:func:`lora_spec`), its per-GPU workload (:func:`job_workload`), the model-parallel
engine's LoRA layers (:func:`pipeline_lora_layers`), model / hardware FLOPs of a pipeline
step (:func:`step_flops`) and the ZeRO-3 weight-gather scale of a LoRA model
(:func:`gather_scales`).

Model FLOPs (what MFU divides by). Full training: Megatron-LM's closed form for decoders
(:func:`ddlsim.sim.tensor.megatron_model_flops`), else the layer graph's forward +
backward. LoRA (:mod:`ddlsim.sim.workloads.lora`): the FLOPs the step executes without
recomputation, from the layer graph: the base's forward and data gradient (about ``4 N``
per token for ``N`` base parameters, no weight gradient) plus the adapters' forward and
backward (``6`` per adapter parameter and token) - not ``6 N``, which would credit the
frozen base with weight gradients it never computes. Hardware FLOPs add the recomputed
forward under full recomputation.
"""

from __future__ import annotations

from ddlsim.errors import ConfigError


def lora_spec(workload):
    """The :class:`~ddlsim.sim.workloads.LoraSpec` of a job's
    :class:`~ddlsim.job.Workload` (None for full training)."""
    settings = workload.lora_settings()
    if settings is None:
        return None
    from ddlsim.sim.workloads import LoraSpec

    return LoraSpec(*settings)


def workload_options(spec) -> tuple[tuple[str, object], ...]:
    """Builder options of a job's :class:`~ddlsim.job.Workload` ``spec``: its dimensions,
    and its attention (fused or unfused) for the zoo models that have the choice."""
    import inspect

    from ddlsim.sim.workloads import WORKLOADS

    out = tuple(spec.architecture)
    builder = WORKLOADS.get(spec.model)
    if builder is not None and "attention" in inspect.signature(builder).parameters:
        out += (("attention", spec.attention),)
    return out


def job_workload(job, micro: int, **extra):
    """The job's per-GPU layer graph for ``micro`` samples: the zoo model with its
    dimensions and attention (and ``extra`` builder options), LoRA applied when the job
    fine-tunes."""
    from ddlsim.sim.workloads import apply_lora, get_workload

    wl = get_workload(job.workload.model, micro, **dict(workload_options(job.workload)),
                      **extra)
    spec = lora_spec(job.workload)
    return wl if spec is None else apply_lora(wl, spec)


def check_lora_strategy(job) -> None:
    """ConfigError for LoRA under an engine that does not model it (parameter servers)."""
    if job.workload.lora_rank is not None and job.strategy.kind == "ps":
        raise ConfigError("workload.lora_rank: LoRA fine-tuning is modelled for the "
                          "allreduce, pipeline and 3d strategies, not parameter servers")


def pipeline_lora_layers(opts, wl, layers):
    """One GPU's (tensor-parallel) ``layers`` of ``wl`` as a LoRA step when ``opts.lora``
    is set, else ``layers`` unchanged."""
    if opts.lora is None:
        return layers
    from ddlsim.sim.workloads import lora_layers

    return lora_layers(layers, wl.hyperparams, opts.lora, opts.tp, opts.model)


def step_flops(opts, wl) -> tuple[float, float]:
    """``(model FLOPs, hardware FLOPs)`` of one iteration of the model-parallel job
    ``opts`` (``global_batch`` samples) on the unsharded workload ``wl`` (see the module
    docstring)."""
    from ddlsim.sim.tensor import megatron_model_flops

    hp = wl.hyperparams
    if opts.lora is not None:
        from ddlsim.sim.workloads import apply_lora

        wl = apply_lora(wl, opts.lora)
    elif {"hidden", "layers", "seq", "vocab"} <= set(hp):
        # Megatron-LM's num_floating_point_operations, NeMo's model TFLOP/s:
        # GPT closed form, or with GQA / MLP width / gating for Llama and Nemotron
        args = (opts.global_batch, hp["seq"], hp["layers"], hp["hidden"], hp["vocab"])
        arch = ({} if "kv_heads" not in hp else
                dict(heads=hp["heads"], kv_heads=hp["kv_heads"], ffn=hp["ffn"],
                     gated=bool(hp.get("gated_mlp", 1))))
        return (megatron_model_flops(*args, **arch),
                megatron_model_flops(*args, recompute=opts.recompute == "full", **arch))
    model = wl.train_flops / opts.micro_batch * opts.global_batch
    return model, model + (wl.fwd_flops / opts.micro_batch * opts.global_batch
                           if opts.recompute == "full" else 0.0)


def gather_scales(layers, bounds, stages: int, vp: int) -> list[float]:
    """Per GPU stage: all weight bytes over trainable weight bytes of its layers, what a
    ZeRO-3 weight all-gather carries per gradient byte beyond the dtype ratio (1 for full
    training; LoRA gathers the frozen base with the adapters). A stage without trainable
    weights gathers nothing (its gradient bytes are 0)."""
    out = []
    for k in range(stages):
        idx = [i for c in range(vp) for i in range(bounds[c * stages + k],
                                                     bounds[c * stages + k + 1])]
        train = sum(layers[i].param_count for i in idx)
        frozen = sum(layers[i].frozen_params for i in idx)
        out.append((train + frozen) / train if train and frozen else 1.0)
    return out
