"""What one configuration of a capacity plan (:mod:`ddlsim.api.plan`) costs per iteration:
:class:`ConfigPrediction` and the default predictor, every number through
:func:`ddlsim.api.predict` with the plan's calibration.

* **Data-parallel models** (CNNs, MLPs, encoders): synchronous data parallelism with
  ``batch_per_gpu`` samples per GPU; the memory is checked first
  (:func:`ddlsim.api.check_memory`, no simulation) and a configuration that does not fit
  is returned as not runnable, never simulated or proposed.
* **Decoders** (GPT, Llama, Nemotron presets): the layout comes from the search of
  :mod:`ddlsim.api.layout_search` (tp x pp x dp, micro-batch, recomputation), the fastest
  predicted layout that fits; the global batch stays fixed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

NAN = float("nan")


@dataclass(frozen=True)
class ConfigPrediction:
    """One predicted configuration: its strategy, iteration time (s) and global batch
    (samples), or ``iteration_s`` NaN with a ``note`` when it cannot run (memory).
    ``layout``: human label; ``memory_bytes`` / ``capacity_bytes`` on the fullest GPU;
    ``fits``: the prediction's verdict (None: unknown, e.g. a toy predictor)."""

    strategy: str
    iteration_s: float
    global_batch: int
    tp: int = 1
    pp: int = 1
    dp: int = 1
    note: str = ""
    micro_batch: int | None = None
    recompute: str = "none"
    dtype: str = ""
    layout: str = ""
    memory_bytes: float = NAN
    capacity_bytes: float = NAN
    fits: bool | None = None
    tokens_per_s: float = NAN
    mfu: float = NAN
    bubble_fraction: float = NAN


#: ``predictor(model, preset, gpus, opts) -> ConfigPrediction`` (tests inject toys).
Predictor = Callable[[str, str, int, object], ConfigPrediction]


def is_decoder(model: str) -> bool:
    """True for the GPT, Llama and Nemotron presets (planned with 3D parallelism)."""
    from ddlsim.sim.workloads import GPT_PRESETS, LLAMA_PRESETS, NEMOTRON_PRESETS

    return model in GPT_PRESETS or model in LLAMA_PRESETS or model in NEMOTRON_PRESETS


def _gib(x: float) -> str:
    return f"{x / 2**30:.1f}"


def predict_dp(model: str, preset: str, gpus: int, opts) -> ConfigPrediction:
    """Sync data parallelism, ``opts.batch_per_gpu`` per GPU, memory checked first."""
    from ddlsim.api.layout_search import DTYPE_NAMES
    from ddlsim.api.predict import check_memory, predict
    from ddlsim.job import Batch, Cluster, Job, Precision, Strategy, Workload

    bpg = opts.batch_per_gpu
    wl = Workload(model)
    if hasattr(opts, "workload"):  # LoRA and the sequence length of the plan
        from dataclasses import replace

        wl = replace(opts.workload(), model=model)
    job = Job(workload=wl, cluster=Cluster(preset, gpus),
              precision=Precision(opts.dtype), batch=Batch(micro=bpg),
              strategy=Strategy(kind="allreduce"), iterations=opts.iterations)
    label = f"DP {gpus}, {bpg}/GPU"
    need, cap = check_memory(job)
    if need > cap:
        return ConfigPrediction("sync DP allreduce", NAN, bpg * gpus, dp=gpus, micro_batch=bpg,
                                layout=label, memory_bytes=need, capacity_bytes=cap,
                                fits=False, note=f"does not fit: {_gib(need)} GiB per GPU of "
                                                 f"{cap / 2**30:.0f}; try a smaller "
                                                 "--batch-per-gpu")
    pred = predict(job, opts.calibration)
    strategy = f"sync DP allreduce ({pred.detail.algo})"
    common = dict(dp=gpus, micro_batch=bpg, layout=label, dtype=DTYPE_NAMES.get(
        pred.dtype, pred.dtype), memory_bytes=float(pred.memory_bytes),
        capacity_bytes=float(pred.memory_capacity_bytes), fits=pred.fits)
    if pred.fits is False:
        return ConfigPrediction(strategy, NAN, bpg * gpus, **common,
                                note=f"does not fit: {_gib(pred.memory_bytes)} GiB per GPU "
                                     f"of {pred.memory_capacity_bytes / 2**30:.0f}")
    return ConfigPrediction(strategy, pred.iteration_s, bpg * gpus, **common,
                            tokens_per_s=pred.tokens_per_s, mfu=pred.mfu)


def predict_decoder(model: str, preset: str, gpus: int, opts) -> ConfigPrediction:
    """The fastest fitting layout of :func:`ddlsim.api.layout_search.search_layouts`."""
    from ddlsim.api.layout_search import decoder_template, search_layouts

    template = decoder_template(model, preset, gpus, opts.dtype, opts.global_batch,
                                opts.micro_batch)
    if hasattr(opts, "workload"):  # LoRA and the sequence length of the plan
        from dataclasses import replace

        template = replace(template, workload=replace(
            opts.workload(), model=model, attention=template.workload.attention))
    search = search_layouts(template, opts.calibration, opts.search_top)
    best = search.best
    if best is None:
        return ConfigPrediction("3D (none fits)", NAN, opts.global_batch, fits=False,
                                note="no TP x PP split fits: " + search.note())
    return ConfigPrediction(
        f"3D {best.label} (1F1B)", best.iteration_s, opts.global_batch, best.tp, best.pp,
        best.dp, note=search.note(), micro_batch=best.micro_batch, recompute=best.recompute,
        dtype=best.dtype, layout=best.label, memory_bytes=best.memory_bytes,
        capacity_bytes=best.capacity_bytes, fits=True, tokens_per_s=best.tokens_per_s,
        mfu=best.mfu, bubble_fraction=best.bubble_fraction)


def default_predictor(model: str, preset: str, gpus: int, opts) -> ConfigPrediction:
    """Sync DP for CNN/MLP/encoder workloads, the layout search for decoders."""
    if is_decoder(model):
        return predict_decoder(model, preset, gpus, opts)
    return predict_dp(model, preset, gpus, opts)


def runnable(pred: ConfigPrediction) -> bool:
    """A finite iteration time and not known not to fit."""
    return math.isfinite(pred.iteration_s) and pred.fits is not False
