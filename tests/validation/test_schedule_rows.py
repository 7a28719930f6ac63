"""Time-to-train rows read from their columns: batch schedules of ``{batch_size, epochs}``
phases, the epoch a run reached its target at, the data set's size, a precision cell that
names only a framework, and the CIFAR ResNets of the zoo."""

from __future__ import annotations

import pytest

from ddlsim.api import predict
from ddlsim.api.time_to_train import phased_time_to_train
from ddlsim.errors import ConfigError
from ddlsim.validation import parse as P
from ddlsim.validation.metrics import predicted_value
from ddlsim.validation.rows import IMAGENET_TRAIN_IMAGES, read_row

SCHEDULE = ('[{"batch_size": 8192, "epochs": 6}, {"batch_size": 16384, "epochs": 7}, '
            '{"batch_size": 7168, "epochs": 15}, {"batch_size": 8192, "epochs": 2}]')


# --------------------------------------------------------------------------- cell parsers
def test_batch_schedules():
    assert P.parse_batch_schedule("2048") == (P.Phase(2048),)
    assert P.parse_batch_schedule(SCHEDULE) == (P.Phase(8192, 6), P.Phase(16384, 7),
                                                P.Phase(7168, 15), P.Phase(8192, 2))
    assert P.parse_batch_schedule('[{"bs": 512, "epoch": 3}]') == (P.Phase(512, 3),)
    assert P.parse_batch_schedule("phase1 65536 / phase2 32768 (accumulated)") == (
        P.Phase(65536), P.Phase(32768))
    assert P.parse_batch_schedule("65536 / 32768", "128 / 16") == (P.Phase(65536),
                                                                   P.Phase(32768))
    for text in ("", "n/a", "8192 / 32", '[{"epochs": 3}]', '[{"batch_size": 0}]', "[1, 2]",
                 "[{bad json"):
        assert P.parse_batch_schedule(text) is None, text


def test_target_epochs_datasets_and_resolution():
    assert P.parse_target_epoch("", "reached 93.04 at epoch 27; cost 3") == 27
    assert P.parse_target_epoch("ResNet-50 (ImageNet, 90 epochs)") == 90
    assert P.parse_target_epoch("ResNet-50", "not standard 90-epoch recipe") is None
    assert P.parse_dataset("Custom ResNet 9 (CIFAR10)") == "cifar10"
    assert P.parse_dataset("ResNet-50 (ImageNet)") == "imagenet"
    assert P.parse_dataset("Inception-BN (ILSVRC12)") == "imagenet"
    assert P.parse_dataset("WRN (CIFAR-100)") == "cifar100" and P.parse_dataset("BERT") is None
    assert P.low_resolution("entries use progressive resizing / low-res images")
    assert not P.low_resolution("224x224, DALI dataloader")


def test_truncating_a_schedule_at_the_target_epoch():
    phases = P.parse_batch_schedule(SCHEDULE)
    cut, note = P.truncate(phases, 28)
    assert [p.epochs for p in cut] == [6, 7, 15] and "cut at epoch 28" in note
    longer, note = P.truncate(phases, 32)
    assert longer[-1] == P.Phase(8192, 4) and "continued" in note
    same, note = P.truncate(phases, 30)
    assert same == phases and note == ""


@pytest.mark.parametrize("cell, framework_only", [
    ("fastai / pytorch", True), ("ncluster / Pytorch 0.5.0a0+0e8088d", True),
    ("tensorflow 1.11 + horovod", True), ("tensorpack 0.8.0", True),
    ("PyTorch v1.0.1 and PaddlePaddle", True), ("Moxing v1.13.0 + TensorFlow v1.13.1", True),
    ("AIACC-Training 1.3 + Tensorflow 2.1", True), ("PyTorch 1.0 AMP", False),
    ("fp16", False), ("", False), ("not stated", False), ("n/a", False)])
def test_a_precision_cell_that_names_only_a_framework(cell, framework_only):
    assert P.framework_only(cell) is framework_only


def test_the_device_default_precision():
    v100 = P.device_default_precision("v100-sxm2-16gb", "fastai / pytorch")
    assert (v100.compute, v100.grad) == ("float16", "float32")
    assert "fastai / pytorch" in v100.assumptions[0] and "not stated" in v100.assumptions[0]
    assert P.device_default_precision("p100-sxm2-16gb").compute == "float32"  # no tensor cores
    assert P.device_default_precision("a100-80gb").compute == "bfloat16"


# --------------------------------------------------------------------------- rows
ROW = {"id": "X-1", "category": "time_to_train", "source": "a leaderboard",
       "model": "ResNet-50 (ImageNet)", "gpu": "32 * V100 (4 machines - AWS p3.16xlarge)",
       "num_gpus": "", "nodes": "", "interconnect": "see gpu field",
       "precision": "ncluster / Pytorch 0.5.0a0+0e8088d", "parallelism": "data parallel",
       "global_batch": SCHEDULE, "micro_batch": "", "metric": "time_to_accuracy_hours",
       "value": "0.5", "unit": "h",
       "notes": "reached 93.008 at epoch 28; entries often use progressive resizing"}


def test_a_schedule_row_sums_its_phases_each_at_its_own_batch():
    run, why = read_row(ROW)
    assert run is not None, why
    assert run.steps is None and len(run.phases) == 3  # cut at epoch 28: 6 + 7 + 15
    micro = [job.batch.micro for job, _ in run.phases]
    assert micro == [256, 512, 224] and run.job.batch.micro == 256
    steps = [s for _, s in run.phases]
    assert steps == pytest.approx([e * IMAGENET_TRAIN_IMAGES / b
                                   for e, b in ((6, 8192), (7, 16384), (15, 7168))])
    notes = " ".join(run.job.assumptions)
    assert "precision not stated" in notes and "fp16 mixed precision" in notes
    assert "full-resolution 224x224" in notes and "epoch 28" in notes
    total, parts = phased_time_to_train(run.phases)
    its = [predict(job).iteration_s for job, _ in run.phases]
    assert parts == pytest.approx([s * it for s, it in zip(steps, its, strict=True)])
    pred = predict(run.job)
    assert predicted_value(run, pred, "stored") == pytest.approx(total, rel=1e-9)


def test_one_batch_and_the_epoch_of_the_target():
    run, why = read_row({**ROW, "gpu": "8 * V100 (AWS p3.16xlarge)", "global_batch": "128",
                         "notes": "reached 93.002 at epoch 41"})
    assert run is not None and not run.phases, why
    assert run.steps == pytest.approx(41 * IMAGENET_TRAIN_IMAGES / 128)
    assert run.job.batch.micro == 16


def test_cifar_rows_use_the_cifar_networks_and_their_dataset():
    row = {**ROW, "model": "Custom ResNet 9 (CIFAR10)", "gpu": "V100 (AWS p3.2xlarge)",
           "precision": "pytorch 0.4.0", "global_batch": "512",
           "notes": "reached 94.08 at epoch 24"}
    run, why = read_row(row)
    assert run is not None, why
    assert run.job.workload.model == "resnet9-cifar" and run.job.cluster.gpus == 1
    assert run.steps == pytest.approx(24 * 50_000 / 512)
    _, why = read_row({**row, "model": "ResNet-50 (CIFAR10)"})
    assert "reads 224x224 images" in why and "CIFAR-10" in why


@pytest.mark.parametrize("change, needle", [
    ({"global_batch": "phase1 65536 / phase2 32768"}, "without the epochs or steps"),
    ({"global_batch": '[{"batch_size": 8192, "epochs": 3}, {"batch_size": 16300, '
                      '"epochs": 1}]'}, "16,300 does not divide over 32 GPUs"),
    ({"model": "ResNet-50", "global_batch": "8192"}, "names no data set"),
    ({"global_batch": "", "notes": "reached 93 at epoch 30"}, "batch per GPU not stated"),
    ({"global_batch": "8192", "notes": "our own recipe"}, "does not say it ran it"),
])
def test_time_to_train_refusals_say_why(change, needle):
    run, why = read_row({**ROW, **change})
    assert run is None and needle in why, why


def test_phased_time_to_train_checks_its_steps():
    run, _ = read_row(ROW)
    job = run.phases[0][0]
    with pytest.raises(ConfigError, match="steps"):
        phased_time_to_train([(job, -1.0)])
    assert phased_time_to_train([]) == (0.0, ())
