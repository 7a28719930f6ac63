"""Statistical-efficiency model: estimator against a closed-form noise scale, exact
recovery of fitted parameters, published-row parameters."""

from __future__ import annotations

import csv
import importlib.resources

import numpy as np
import pytest

from ddlsim.convergence.data import Dataset
from ddlsim.convergence.stat_eff import (
    MODEL_LABEL,
    NO_LOSS_TOLERANCE,
    StatEffModel,
    fit_critical_batch,
    fit_staleness_penalty,
    fitted_b_noise,
    gradient_noise_scale,
    noise_scale_along,
    published_model,
)
from ddlsim.errors import ConfigError


class _MeanModel:
    """Loss whose per-example gradient is the example itself: the gradient of a batch is
    the batch mean, so |G|^2 = |mu|^2 and tr(Sigma) = d sigma^2 in closed form."""

    def loss_and_grad(self, w, x, y, out=None):
        out = np.empty_like(w) if out is None else out
        out[...] = x.mean(axis=0)
        return 0.0, out


def test_noise_scale_estimator_matches_closed_form():
    rng = np.random.default_rng(0)
    d, mu, sigma = 20, 0.25, 1.0
    x = (mu + sigma * rng.standard_normal((20000, d))).astype(np.float64)
    ds = Dataset("gauss", x, np.zeros(20000, np.int64), x[:10], np.zeros(10, np.int64), 1)
    est = gradient_noise_scale(_MeanModel(), np.zeros(d), ds, small_batch=16, shards=16,
                               trials=400, seed=1)
    pop_mu, pop_var = x.mean(axis=0), x.var(axis=0)
    expected = pop_var.sum() / (pop_mu ** 2).sum()  # d sigma^2 / (d mu^2) = 16
    assert expected == pytest.approx(16.0, rel=0.05)
    assert est.b_simple == pytest.approx(expected, rel=0.15)
    assert est.trace_sigma == pytest.approx(pop_var.sum(), rel=0.1)


def test_noise_scale_along_a_real_replay_is_positive_and_finite(digits):
    from ddlsim.convergence.replay import ReplayConfig, replay, sync_log

    res = replay(sync_log(80, workers=1), ReplayConfig(model="mlp", keep_checkpoints=4),
                 digits)
    scales = noise_scale_along(res, digits, trials=4)
    assert [s.update for s in scales] == [c[0] for c in res.checkpoints]
    assert len(scales) == 4 and all(s.trace_sigma > 0 for s in scales)
    assert fitted_b_noise(scales) > 0


def test_fit_critical_batch_recovers_exact_parameters():
    batches = [16, 64, 256, 1024]
    steps = [1000 * (1 + 300 / b) for b in batches]
    s_min, b_noise = fit_critical_batch(batches, steps)
    assert s_min == pytest.approx(1000) and b_noise == pytest.approx(300)
    with pytest.raises(ConfigError, match="need >= 2 distinct"):
        fit_critical_batch([32, 32], [1, 2])


def test_fit_staleness_penalty_recovers_exact_slope():
    tau = [0, 0, 1, 2, 4]
    steps = [100, 100, 130, 160, 220]
    penalty, resid = fit_staleness_penalty(tau, steps)
    assert penalty == pytest.approx(0.3) and resid == pytest.approx(0, abs=1e-12)


def test_model_steps_and_examples_trade_off_as_mcCandlish():
    m = StatEffModel("toy", b_noise=400.0, s_min=1000.0, staleness_penalty=0.5)
    assert m.steps(400) == pytest.approx(2000)  # B = B_noise: twice the minimum steps
    assert m.examples(400) == pytest.approx(2 * 1000 * 400)  # and twice E_min
    s, e = m.steps(100) / 1000, m.examples(100) / (1000 * 400)
    assert (s - 1) * (e - 1) == pytest.approx(1.0)  # McCandlish et al. eq. 2.11
    assert m.steps(400, staleness=2) == pytest.approx(4000)
    assert m.describe()["label"] == MODEL_LABEL and "model" in MODEL_LABEL


def _rows():
    text = importlib.resources.files("ddlsim").joinpath("data/published.csv").read_text()
    return {r["id"]: r for r in csv.DictReader(text.splitlines())}


def test_published_models_use_the_cited_rows():
    rows = _rows()
    mnist = published_model("mnist-classifier")
    assert mnist.b_noise == float(rows["LB-08"]["value"])
    rn = published_model("resnet50-imagenet")
    big, small = float(rows["LB-07"]["value"]), float(rows["TTT-GOY-02"]["global_batch"])
    # the stated reading of "no accuracy loss up to 8192": examples grow by the tolerance
    assert rn.examples(big) / rn.examples(small) == pytest.approx(1 + NO_LOSS_TOLERANCE)
    # 90 epochs of ImageNet at the baseline batch
    assert rn.examples(small) / 1_281_167 == pytest.approx(90.0)
    # the source cites the rows' primary sources, not their ids
    assert "Goyal et al. 2017" in rn.source and "developer.nvidia.com" in rn.source
    assert "90 epochs" in rn.source and "McCandlish" in mnist.source
    assert "LB-" not in rn.source + mnist.source and "TTT-" not in rn.source
    with pytest.raises(ConfigError, match="did you mean 'resnet50-imagenet'"):
        published_model("resnet50-imagnet")


@pytest.mark.parametrize("model, metric", [
    ("resnet50-imagenet", "max_batch_without_accuracy_loss"),
    ("resnet50-imagenet", "time_to_train_hours"),
    ("mnist-classifier", "B_simple_gradient_noise_scale"),
])
def test_published_model_without_its_row_names_the_missing_metric(monkeypatch, model, metric):
    from ddlsim.convergence import stat_eff

    rows = [r for r in stat_eff._published_rows() if r["metric"] != metric]
    monkeypatch.setattr(stat_eff, "_published_rows", lambda: rows)
    with pytest.raises(ConfigError, match=f"no .* row with metric '{metric}'"):
        published_model(model)
