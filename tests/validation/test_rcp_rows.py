"""Time-to-train rows: a row whose model is an MLPerf benchmark's gets its steps from the
MLCommons RCPs (plus the benchmark's evaluation passes); its own epochs win when stated."""

from __future__ import annotations

import pytest

from ddlsim.api import predict
from ddlsim.api.time_to_train import time_to_train
from ddlsim.convergence import rcp
from ddlsim.validation.metrics import predicted_value
from ddlsim.validation.rows import IMAGENET_TRAIN_IMAGES, read_row

ROW = {"id": "X-1", "category": "time_to_train", "source": "a paper",
       "model": "ResNet-50 (ImageNet)", "gpu": "A100-SXM4-80GB", "num_gpus": "64",
       "nodes": "8", "interconnect": "DGX A100, 8x HDR InfiniBand 200 Gb/s per node",
       "precision": "bf16", "parallelism": "dp=64", "global_batch": "2048",
       "micro_batch": "32", "metric": "time_to_train_minutes", "value": "10", "unit": "min",
       "notes": "MLPerf Training closed division, time to the quality target"}


def test_a_benchmark_models_row_uses_the_rcps_and_the_evaluation_passes():
    run, why = read_row(ROW)
    assert run is not None, why
    conv = rcp.converge_at("resnet", 2048)
    extra = conv.eval_step_equivalents(1 / 3)
    assert run.steps == pytest.approx(conv.steps + extra)
    pred = predict(run.job)
    value = predicted_value(run, pred, "stored")
    # the same number as the public API: train + evaluation (no start-up)
    assert value == pytest.approx(time_to_train(run.job, prediction=pred).total_s, rel=1e-9)


def test_stated_epochs_are_fixed_work_and_other_models_say_why():
    run, _ = read_row({**ROW, "model": "ResNet-50 (ImageNet, 90 epochs)"})
    assert run.steps == pytest.approx(90 * IMAGENET_TRAIN_IMAGES / 2048)
    run, why = read_row({**ROW, "model": "VGG-16 (ImageNet)"})
    assert run is None and "not the model of an MLPerf Training benchmark" in why
    run, why = read_row({**ROW, "global_batch": "262144", "micro_batch": "4096"})
    assert run is None and "above the largest batch with a published RCP" in why
    # a row that does not say it ran MLPerf's recipe gets no MLPerf convergence points
    run, why = read_row({**ROW, "notes": "our own recipe"})
    assert run is None and "does not say it ran it" in why


def test_bert_from_scratch_is_not_the_benchmark_that_starts_from_a_checkpoint():
    row = {**ROW, "model": "BERT-Large pretraining (phase1 seq128 + phase2 seq512)",
           "num_gpus": "8", "nodes": "1", "interconnect": "DGX A100", "parallelism": "dp=8",
           "global_batch": "256"}
    run, why = read_row(row)
    assert run is None and "from scratch" in why and "checkpoint" in why, why
