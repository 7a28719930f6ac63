"""Replay semantics against plain SGD written out here, plus the behaviour the issue asks
for: 97% on the digits, staleness costs updates, lr sweep outcomes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ddlsim.convergence.models import get_model
from ddlsim.convergence.replay import (
    ReplayConfig,
    constant_staleness_log,
    lr_sweep,
    replay,
    sync_log,
    tile_update_log,
    time_to_accuracy,
)
from ddlsim.convergence.train import LRSchedule, SampleStream
from ddlsim.errors import ConfigError
from ddlsim.kernels import ops
from ddlsim.sim.updates import update_row


def _plain_sgd(data, model_name, updates, batch, lr, momentum, seed, read_lag=0,
               drawn=None):
    """Mini-batch SGD with momentum, written directly against the ops: the gradient of
    update k is taken at the weights after update ``k - read_lag`` (clamped at 0) on the
    first ``batch`` of ``drawn`` freshly drawn samples."""
    model = get_model(model_name)
    w = model.layout.init(seed)
    v = np.zeros_like(w)
    history = [w.copy()]
    stream = SampleStream(data.n_train, seed)
    for k in range(updates):
        idx = stream.take(drawn or batch)[:batch]
        _, g = model.loss_and_grad(history[max(0, k - read_lag)], data.x_train[idx],
                                   data.y_train[idx])
        ops.sgd_momentum_update(w, g, v, lr, momentum)
        history.append(w.copy())
    return w


def test_sync_one_worker_equals_plain_minibatch_sgd_exactly(digits):
    cfg = ReplayConfig(batch_per_worker=16, schedule=LRSchedule(0.05), seed=4, eval_every=50)
    res = replay(sync_log(30, workers=1), cfg, digits)
    ref = _plain_sgd(digits, "lenet-digits", 30, 16, 0.05, 0.9, seed=4)
    assert np.array_equal(res.final_weights, ref)


def test_async_with_zero_staleness_equals_sync_exactly(digits):
    cfg = ReplayConfig(model="mlp", batch_per_worker=8, schedule=LRSchedule(0.05), seed=1)
    a = replay(constant_staleness_log(40, staleness=0, workers=4), cfg, digits)
    s = replay(sync_log(40, workers=1), cfg, digits)
    assert np.array_equal(a.final_weights, s.final_weights)
    assert np.array_equal(a.loss, s.loss)


def test_constant_staleness_reads_the_old_version_exactly(digits):
    cfg = ReplayConfig(model="mlp", batch_per_worker=8, schedule=LRSchedule(0.05), seed=2)
    res = replay(constant_staleness_log(25, staleness=3), cfg, digits)
    ref = _plain_sgd(digits.flat(), "mlp", 25, 8, 0.05, 0.9, seed=2, read_lag=3)
    assert np.array_equal(res.final_weights, ref)
    assert res.staleness.tolist() == [min(k, 3) for k in range(25)]


def test_sync_shards_average_to_the_global_batch_gradient(digits):
    base = ReplayConfig(model="mlp", schedule=LRSchedule(0.05), seed=3)
    four = replay(sync_log(10, workers=4), ReplayConfig(**{**base.__dict__,
                                                           "batch_per_worker": 8}), digits)
    one = replay(sync_log(10, workers=1), ReplayConfig(**{**base.__dict__,
                                                          "batch_per_worker": 32}), digits)
    np.testing.assert_allclose(four.final_weights, one.final_weights, rtol=1e-4, atol=1e-6)


def test_backup_workers_drop_the_late_gradients(digits):
    # 4 workers compute, the first 3 gradients are applied (n_grads = 3)
    cfg = ReplayConfig(model="mlp", batch_per_worker=8, workers=4, schedule=LRSchedule(0.05),
                       seed=5)
    res = replay(sync_log(12, workers=4, n_grads=3), cfg, digits)
    ref = _plain_sgd(digits.flat(), "mlp", 12, 24, 0.05, 0.9, seed=5, drawn=32)
    np.testing.assert_allclose(res.final_weights, ref, rtol=1e-4, atol=1e-6)


def test_reading_a_version_not_yet_written_is_a_config_error(digits):
    log = [update_row(0, 1.0, 0, 0, 1, 1), (1, 2.0, 0, 5, 7, 1, 1)]
    with pytest.raises(ConfigError, match=r"update_log\[1\]: version_read 5"):
        replay(log, ReplayConfig(model="mlp"), digits)
    with pytest.raises(ConfigError, match="staleness must equal"):
        replay([(0, 1.0, 0, 0, 1, 2, 1)], ReplayConfig(model="mlp"), digits)


def test_tile_repeats_times_and_versions():
    log = constant_staleness_log(3, staleness=1, update_interval_s=0.5)
    tiled = tile_update_log(log, 7)
    assert [r[1] for r in tiled] == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    assert [r[4] for r in tiled] == list(range(1, 8))
    assert [r[5] for r in tiled] == [0, 1, 1, 0, 1, 1, 0]


def test_lr_schedules_closed_forms():
    goyal = LRSchedule(0.1, "linear-warmup", reference_batch=256, warmup_updates=5)
    assert goyal.lr_at(0, 1024) == pytest.approx(0.1 + 0.3 * 1 / 5)
    assert goyal.lr_at(4, 1024) == pytest.approx(0.4)
    assert goyal.lr_at(100, 1024) == pytest.approx(0.4)
    step = LRSchedule(1.0, "step", step_every=10, step_gamma=0.5)
    assert [step.lr_at(u, 32) for u in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    cos = LRSchedule(2.0, "cosine")
    assert cos.lr_at(0, 32, total_updates=100) == pytest.approx(2.0)
    assert cos.lr_at(50, 32, total_updates=100) == pytest.approx(1.0)
    assert cos.lr_at(100, 32, total_updates=100) == pytest.approx(0.0, abs=1e-12)
    aware = LRSchedule(0.6, staleness_aware=True)
    assert [aware.lr_at(0, 32, s) for s in (0, 1, 3)] == pytest.approx([0.6, 0.6, 0.2])
    with pytest.raises(ConfigError, match="did you mean 'cosine'"):
        LRSchedule(0.1, "cosin")
    with pytest.raises(ConfigError, match="reference_batch"):
        LRSchedule(0.1, "linear-warmup")


def test_lenet_reaches_97_percent_within_the_default_budget(digits):
    from ddlsim.api.convergence import ReplayOptions, replay_prediction

    pred = replay_prediction(sync_log(5, workers=1, iteration_s=0.01), ReplayOptions(),
                             digits)
    res = pred.result
    assert pred.replayed_rows == math.ceil(10 * digits.n_train / 32)
    assert res.final_accuracy >= 0.97
    assert res.outcome == "reached" and res.time_to_target_s is not None
    # simulated time of the first evaluation at >= 97%, on the log's 0.01 s grid
    assert res.time_to_target_s == pytest.approx(0.01 * res.updates_to_target)


def _updates(model, staleness, seeds=(0, 1, 2), aware=False, updates=600, digits=None):
    cfg = ReplayConfig(model=model, schedule=LRSchedule(0.02, staleness_aware=aware),
                       eval_every=5)
    tta = time_to_accuracy(constant_staleness_log(updates, staleness), cfg, 0.93, seeds,
                           digits)
    return np.array([u if u >= 0 else np.inf for u in tta.updates], dtype=float)


def test_higher_staleness_needs_more_updates_mlp(digits):
    s0, s2, s4 = (_updates("mlp", s, digits=digits) for s in (0, 2, 4))
    assert np.median(s2) > np.median(s0) and np.median(s4) >= 1.5 * np.median(s2)
    assert s4.min() > s0.max()  # every seed, with a margin of no overlap


def test_higher_staleness_needs_more_updates_lenet(digits):
    s0, s1 = (_updates("lenet-digits", s, updates=400, digits=digits) for s in (0, 1))
    assert s1.min() >= 1.5 * s0.max()


def test_staleness_aware_rate_recovers_convergence_at_high_staleness(digits):
    plain = _updates("mlp", 8, digits=digits, updates=500)
    aware = _updates("mlp", 8, aware=True, digits=digits, updates=500)
    assert np.all(np.isfinite(aware)) and np.median(aware) < np.median(plain)


def test_lr_sweep_slow_at_tiny_rate_and_diverges_at_huge_rate(digits):
    cfg = ReplayConfig(model="mlp", batch_per_worker=32, eval_every=20)
    small, good, huge = lr_sweep(sync_log(120, workers=1), cfg, [1e-4, 0.05, 50.0], digits)
    assert huge.outcome == "diverged" and huge.diverged_at_update is not None
    assert huge.updates_applied < 120
    assert small.outcome != "diverged" and good.outcome != "diverged"
    assert small.final_accuracy < 0.5 < 0.9 < good.final_accuracy


@pytest.mark.gpu
def test_replay_on_cupy_matches_numpy(digits):
    cfg = ReplayConfig(batch_per_worker=16, schedule=LRSchedule(0.05), seed=1, eval_every=10)
    cpu = replay(sync_log(20, workers=2), cfg, digits)
    gpu = replay(sync_log(20, workers=2), ReplayConfig(**{**cfg.__dict__, "device": "gpu"}),
                 digits)
    assert gpu.backend == "cupy"
    np.testing.assert_allclose(gpu.final_weights, cpu.final_weights, rtol=1e-3, atol=1e-5)
