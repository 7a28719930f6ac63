"""What a prediction says about a row's metric, in the metric's unit (after its scale)."""

from __future__ import annotations

import math

from ddlsim.api.predict import Prediction, predict
from ddlsim.validation.rows import IMAGENET_TRAIN_IMAGES, RowRun


def predicted_value(run: RowRun, pred: Prediction, calibration) -> float | None:
    """The row's metric from ``pred`` (the prediction of ``run.job``); None when the
    prediction cannot say (the reason is the metric kind)."""
    kind, gpus = run.metric.kind, pred.gpus
    per = gpus if run.metric.per_gpu else 1
    if kind == "samples_per_s":
        return pred.samples_per_s / per
    if kind == "tokens_per_s":
        return pred.tokens_per_s / per
    if kind == "iteration_s":
        return pred.iteration_s
    if kind == "model_tflops_per_gpu":
        return pred.model_tflops_per_gpu
    if kind == "hardware_tflops_per_gpu":
        return pred.hardware_tflops_per_gpu
    if kind == "mfu":
        return pred.mfu
    if kind == "hfu":
        return pred.hfu
    if kind == "pct_of_peak":
        peak = run.metric.peak_tflops
        return pred.hardware_tflops_per_gpu / peak if peak else None
    if kind == "aggregate_pflops":
        return pred.hardware_tflops_per_gpu * gpus / 1e3
    if kind in ("busbw_GBps", "per_nic_busbw_GBps"):
        return pred.busbw_Bps / 1e9 if pred.busbw_Bps is not None else None
    if kind == "time_to_train_s" and run.phases:
        from dataclasses import replace

        from ddlsim.api.time_to_train import phased_time_to_train

        return phased_time_to_train(run.phases, calibration,
                                    {replace(run.job, assumptions=()): pred})[0]
    if kind == "time_to_train_s":
        return run.steps * pred.iteration_s if run.steps else None
    if kind == "epoch_s":
        return IMAGENET_TRAIN_IMAGES / pred.samples_per_s
    if kind == "backprop_s":
        return getattr(pred.detail, "backward_s", None)
    if kind in ("scaling_efficiency", "speedup") and run.baseline is not None:
        base = predict(run.baseline, calibration)
        ratio = pred.samples_per_s / base.samples_per_s
        if kind == "speedup":
            return ratio
        return ratio * base.gpus / gpus
    return None


def abs_pct(pred: float | None, pub: float) -> float:
    if pred is None or not (math.isfinite(pred) and math.isfinite(pub)) or pub == 0:
        return math.nan
    return abs(pred - pub) / abs(pub) * 100.0
