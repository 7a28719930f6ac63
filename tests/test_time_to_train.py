"""Time to train an MLPerf benchmark: the terms add up, the RCPs set the steps, the
benchmark's rules set the evaluations, and jobs the RCPs do not describe are refused."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from ddlsim.api import predict
from ddlsim.api.time_to_train import (
    benchmark_step_equivalents,
    forward_fraction,
    job_global_batch,
    time_to_train,
)
from ddlsim.convergence import rcp
from ddlsim.errors import ConfigError
from ddlsim.job import Batch, Cluster, Job, Parallelism, Strategy, Workload


def resnet_job(gpus=64, micro=32) -> Job:
    return Job(workload=Workload("resnet50"), cluster=Cluster("dgx-a100", gpus),
               batch=Batch(micro=micro), strategy=Strategy(kind="allreduce"), iterations=3)


def test_terms_add_up_and_come_from_the_rcps_and_the_simulation():
    job = resnet_job()
    pred = predict(job)
    t = time_to_train(job, "resnet", prediction=pred, startup_s=120.0)
    conv = rcp.converge_at("resnet", 2048)
    assert t.global_batch == job_global_batch(job) == 2048 and t.in_range
    assert (t.steps, t.samples, t.evals) == (conv.steps, conv.samples, conv.evals)
    assert t.iteration_s == pred.iteration_s and t.prediction is pred
    assert t.train_s == pytest.approx(t.steps * t.iteration_s, rel=1e-12)
    # one pass: 50,000 images, forward = 1/3 of a training sample at the simulated rate
    assert t.eval_pass_s == pytest.approx(50_000 * pred.iteration_s / 2048 / 3, rel=1e-12)
    assert t.eval_s == pytest.approx(t.evals * t.eval_pass_s, rel=1e-12)
    assert t.total_s == pytest.approx(120.0 + t.train_s + t.eval_s, rel=1e-12)
    assert t.summary()["total_s"] == t.total_s and t.startup_s == 120.0
    assert any("interpolated linearly between the published RCPs at 1,632 and 3,264" in n
               for n in t.notes)
    assert any("forward pass" in n for n in t.notes)
    # the default start-up is 0 (MLPerf's clock), said so
    t0 = time_to_train(job, prediction=pred)
    assert t0.startup_s == 0 and t0.total_s == pytest.approx(t.total_s - 120.0)
    assert any("20 minutes of untimed model initialisation" in n for n in t0.notes)


def test_more_gpus_at_the_same_per_gpu_batch_change_steps_as_the_rcps_say():
    small, big = time_to_train(resnet_job(8)), time_to_train(resnet_job(128))
    assert not small.in_range and big.in_range  # 256 below 1,632; 4,096 published
    assert any("below the published range 1,632-67,840" in n for n in small.notes)
    assert big.steps == math.ceil(rcp.load_benchmark("resnet").points[2].mean * 1_281_167
                                  / 4096 - 1e-9)
    assert small.steps * 256 >= big.steps * 4096 * 0.8  # clamped samples: an upper bound


def test_recomputation_is_not_repeated_by_the_evaluation_forward_pass():
    assert forward_fraction(1.0, 1.0) == pytest.approx(1 / 3)
    assert forward_fraction(3.0, 4.0) == pytest.approx(0.25)  # full recompute: 4/3 FLOPs
    assert forward_fraction(recompute="full") == 0.25
    assert forward_fraction(recompute="none") == pytest.approx(1 / 3)


def test_step_equivalents_without_simulating_match_the_full_answer():
    job = resnet_job()
    t = time_to_train(job)
    steps, note = benchmark_step_equivalents(job)
    assert steps * t.iteration_s == pytest.approx(t.train_s + t.eval_s, rel=1e-9)
    assert "evaluation passes" in note and "resnet" in note


def test_jobs_the_rcps_do_not_describe_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="no MLPerf Training benchmark trains 'vgg16'"):
        time_to_train(replace(resnet_job(), workload=Workload("vgg16")))
    lora = Job(workload=Workload("llama2-70b", (("seq", 8192),), lora_rank=8),
               cluster=Cluster("dgx-h100", 64), parallelism=Parallelism(tp=8),
               batch=Batch(global_batch=8, micro=1), strategy=Strategy(kind="3d"))
    with pytest.raises(ConfigError, match=r"measured with LoRA rank 16 on qkv, o") as exc:
        time_to_train(lora)  # the RCPs describe the recipe's rank only
    assert "\n" not in str(exc.value)
    bert = Job(workload=Workload("bert-large"), cluster=Cluster("dgx-a100", 8),
               batch=Batch(micro=32), strategy=Strategy(kind="allreduce"))
    with pytest.raises(ConfigError, match=r"sequences of 512 tokens, the job's bert-large has 128"):
        time_to_train(bert)
    with pytest.raises(ConfigError, match="the gpt3 benchmark trains gpt3-175b"):
        time_to_train(resnet_job(), "gpt3")
    with pytest.raises(ConfigError, match="layers changed"):
        time_to_train(replace(resnet_job(), workload=Workload("resnet50", (("layers", 2),))))
    with pytest.raises(rcp.OutsideRCPRange, match="above the largest batch"):
        time_to_train(resnet_job(4096, 32))  # 131,072 > 67,840, refused before simulating
    with pytest.raises(ConfigError, match="startup_s"):
        time_to_train(resnet_job(), startup_s=-1)


def test_bert_at_its_benchmark_sequence_length_answers():
    job = Job(workload=Workload("bert-large", (("seq", 512),)), cluster=Cluster("dgx-a100", 8),
              batch=Batch(micro=32), strategy=Strategy(kind="allreduce"), iterations=3)
    t = time_to_train(job)
    assert t.benchmark == "bert" and t.global_batch == 256 and t.in_range
    assert t.steps == rcp.converge_at("bert", 256).steps
    assert t.evals == math.ceil(t.samples / 150_016)  # every 150,000 samples, whole batches
    assert t.eval_pass_s == pytest.approx(10_000 * t.iteration_s / 256 / 3, rel=1e-9)
