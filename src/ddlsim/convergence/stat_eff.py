"""Statistical-efficiency MODEL for workloads too large to train here.

Everything in this module is a *model*, not a measurement or a replay, and every result
says so (``label``). It predicts how many optimizer steps a training run needs to reach
a target, as a function of the global batch ``B`` and the staleness ``tau``:

    S(B, tau) = S_min * (1 + B_noise / B) * (1 + penalty * tau)

* The batch term is the critical-batch-size model of McCandlish, Kaplan, Amodei & OpenAI
  Dota Team 2018, "An Empirical Model of Large-Batch Training" (arXiv 1812.06162),
  eq. 2.11: steps and examples trade off as ``(S/S_min - 1)(E/E_min - 1) = 1`` with
  ``E = B S`` and ``B_noise ~ B_crit = E_min / S_min``.
* ``B_noise`` is measured from real training with the simple noise scale
  ``B_simple = tr(Sigma) / |G|^2`` (their eq. 2.9), estimated from gradient norms at two
  batch sizes (their Appendix A.1): per-worker shards are the small batch and their
  average - what an allreduce produces - the big batch.
* ``penalty`` (fractional extra steps per unit of staleness) is fitted by least squares
  to updates-to-target measured in replays at several staleness values. The linear form
  is a modelling choice; the fitted residual is reported.

Parameters for large workloads come from rows of ``ddlsim/data/published.csv``, chosen by
their columns (category, metric, model, nodes, global batch; see each builder in
:data:`PUBLISHED_MODELS`); each model's ``source`` cites those rows' primary sources.

For the MLPerf Training benchmarks, steps to the quality target are MEASURED instead:
:mod:`ddlsim.convergence.rcp` (MLCommons reference convergence points). This model stays
for what the RCPs do not cover: staleness, and the ``accuracy`` plan target of Goyal et
al.'s 90-epoch ResNet-50 recipe (whose rows it is fitted to, so it cannot validate them).
"""

from __future__ import annotations

import csv
import importlib.resources
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ddlsim.convergence.data import Dataset
from ddlsim.errors import ConfigError, unknown_name
from ddlsim.kernels import ops
from ddlsim.kernels.backend import get_backend

MODEL_LABEL = "model: critical-batch (McCandlish et al. 2018) x linear staleness penalty"


# --------------------------------------------------------------------------- noise scale

@dataclass(frozen=True)
class NoiseScale:
    """Gradient-noise-scale estimate at one set of weights. ``b_simple``: ``tr(Sigma) /
    |G|^2`` in samples; ``grad_sq``: unbiased ``|G|^2``; ``trace_sigma``: per-example
    gradient variance summed over parameters; ``small_batch`` / ``big_batch``: samples;
    ``trials``: independent big batches averaged; ``update``: updates applied before."""

    b_simple: float
    grad_sq: float
    trace_sigma: float
    small_batch: int
    big_batch: int
    trials: int
    update: int = 0


def gradient_noise_scale(model, weights: np.ndarray, data: Dataset, small_batch: int = 32,
                         shards: int = 8, trials: int = 16, seed: int = 0,
                         device: str = "cpu", update: int = 0) -> NoiseScale:
    """Estimate ``B_simple`` of ``model`` at ``weights`` (flat, host array) on the
    training data: per trial, ``shards`` gradients on ``small_batch`` samples each and
    their mean (the gradient of the ``shards x small_batch`` big batch); the two-batch
    estimators of ``|G|^2`` and ``tr(Sigma)`` are averaged over ``trials`` before their
    ratio is taken (McCandlish et al. 2018, Appendix A.1)."""
    if small_batch < 1 or shards < 2 or trials < 1:
        raise ConfigError(f"small_batch >= 1, shards >= 2, trials >= 1 required, got "
                          f"{small_batch}, {shards}, {trials}")
    if small_batch * shards > data.n_train:
        raise ConfigError(f"small_batch x shards: must be <= {data.n_train} training "
                          f"samples, got {small_batch * shards}")
    backend = get_backend(device)
    xp = backend.xp
    w = xp.asarray(weights)
    x = xp.asarray(data.x_train.astype(weights.dtype))
    y = xp.asarray(data.y_train)
    rng = np.random.default_rng(seed)
    b_small, b_big = small_batch, small_batch * shards
    g_sq, s_tr = [], []
    acc, g = xp.zeros_like(w), xp.zeros_like(w)
    for _ in range(trials):
        idx = rng.choice(data.n_train, size=b_big, replace=False)
        acc.fill(0)
        small_sq = 0.0
        for s in range(shards):
            ib = xp.asarray(idx[s * b_small:(s + 1) * b_small])
            model.loss_and_grad(w, x[ib], y[ib], out=g)
            ops.grad_sum(acc, g)
            small_sq += float((g.astype(np.float64) ** 2).sum())
        small_sq /= shards
        big_sq = float(((acc.astype(np.float64) / shards) ** 2).sum())
        g_sq.append((b_big * big_sq - b_small * small_sq) / (b_big - b_small))
        s_tr.append((small_sq - big_sq) / (1.0 / b_small - 1.0 / b_big))
    grad_sq, trace = float(np.mean(g_sq)), float(np.mean(s_tr))
    b_simple = trace / grad_sq if grad_sq > 0 else math.inf
    return NoiseScale(b_simple, grad_sq, trace, b_small, b_big, trials, update)


def noise_scale_along(result, data: Dataset, small_batch: int = 32, shards: int = 8,
                      trials: int = 16, seed: int = 0) -> list[NoiseScale]:
    """:func:`gradient_noise_scale` at every checkpoint a replay kept (``result`` is a
    :class:`ddlsim.convergence.replay.ReplayResult`)."""
    from ddlsim.convergence.models import get_model

    model = get_model(result.config.model)
    if result.config.model == "mlp" and len(data.input_shape) > 1:
        data = data.flat()
    return [gradient_noise_scale(model, w, data, small_batch, shards, trials, seed,
                                 result.config.device, update)
            for update, w in result.checkpoints]


def fitted_b_noise(scales: Sequence[NoiseScale]) -> float:
    """``B_noise`` for the model: median ``B_simple`` over the second half of training
    (the noise scale grows as the loss falls - McCandlish et al. Sec. 3 - and the steps
    near the target dominate)."""
    if not scales:
        raise ConfigError("scales: need at least one NoiseScale, got none")
    late = [s.b_simple for s in scales[len(scales) // 2:] if math.isfinite(s.b_simple)]
    if not late:
        raise ConfigError("scales: no finite B_simple in the second half of training")
    return float(np.median(late))


# --------------------------------------------------------------------------- the model

@dataclass(frozen=True)
class StatEffModel:
    """``S(B, tau) = s_min (1 + b_noise / B)(1 + staleness_penalty tau)``.

    ``s_min``: steps to the target at infinite batch (None when only ``b_noise`` is
    known); ``b_noise``: noise scale in samples; ``staleness_penalty``: fractional extra
    steps per unit of staleness; ``source``: where every parameter came from."""

    name: str
    b_noise: float
    s_min: float | None = None
    staleness_penalty: float = 0.0
    source: str = ""
    label: str = MODEL_LABEL

    def __post_init__(self) -> None:
        if not self.b_noise > 0:
            raise ConfigError(f"b_noise: must be > 0, got {self.b_noise!r}")
        if self.s_min is not None and not self.s_min > 0:
            raise ConfigError(f"s_min: must be > 0 or None, got {self.s_min!r}")
        if self.staleness_penalty < 0:
            raise ConfigError(f"staleness_penalty: must be >= 0, "
                              f"got {self.staleness_penalty!r}")

    def relative_steps(self, batch: float, staleness: float = 0.0) -> float:
        """``S / S_min`` at global batch ``batch`` (samples) and mean staleness."""
        if not batch > 0:
            raise ConfigError(f"batch: must be > 0, got {batch!r}")
        return (1.0 + self.b_noise / batch) * (1.0 + self.staleness_penalty * staleness)

    def steps(self, batch: float, staleness: float = 0.0) -> float:
        """Predicted optimizer steps to the target (a model output)."""
        if self.s_min is None:
            raise ConfigError(f"s_min: unknown for model {self.name!r}; use relative_steps")
        return self.s_min * self.relative_steps(batch, staleness)

    def examples(self, batch: float, staleness: float = 0.0) -> float:
        """Predicted training samples processed to the target: ``steps x batch``."""
        return self.steps(batch, staleness) * batch

    def time_to_target_s(self, batch: float, step_time_s: float,
                         staleness: float = 0.0) -> float:
        """Predicted time to the target (s) given a simulated step time (s)."""
        return self.steps(batch, staleness) * step_time_s

    def describe(self) -> dict:
        """Parameters with the model label and sources (for reports)."""
        return {"name": self.name, "label": self.label, "b_noise": self.b_noise,
                "s_min": self.s_min, "staleness_penalty": self.staleness_penalty,
                "source": self.source}


def fit_critical_batch(batches: Sequence[float], steps: Sequence[float]) -> tuple[float, float]:
    """``(s_min, b_noise)`` from steps-to-target at several global batches: least squares
    of ``S = s_min + (s_min b_noise) / B``, linear in ``1/B``."""
    b = np.asarray(batches, dtype=float)
    s = np.asarray(steps, dtype=float)
    if b.size < 2 or b.size != s.size or len(set(b.tolist())) < 2:
        raise ConfigError(f"batches/steps: need >= 2 distinct batches with one step count "
                          f"each, got {b.tolist()} and {s.tolist()}")
    slope, intercept = np.polyfit(1.0 / b, s, 1)
    if not (intercept > 0 and slope > 0):
        raise ConfigError(f"steps: do not fit S = S_min (1 + B_noise/B) (intercept "
                          f"{intercept:.3g}, slope {slope:.3g}); need steps falling with B")
    return float(intercept), float(slope / intercept)


def fit_staleness_penalty(staleness: Sequence[float],
                          steps: Sequence[float]) -> tuple[float, float]:
    """``(penalty, rms_relative_residual)``: least squares through the origin of
    ``S(tau) / S(0) - 1 = penalty tau``; ``S(0)`` is the mean of the ``tau == 0`` steps."""
    t = np.asarray(staleness, dtype=float)
    s = np.asarray(steps, dtype=float)
    if t.size != s.size or not np.any(t == 0) or not np.any(t > 0):
        raise ConfigError("staleness/steps: need equal lengths, some staleness 0 and some "
                          f"> 0, got {t.tolist()} and {s.tolist()}")
    base = float(s[t == 0].mean())
    r = s / base - 1.0
    pos = t > 0
    penalty = float((t[pos] * r[pos]).sum() / (t[pos] ** 2).sum())
    resid = float(np.sqrt(np.mean(((1 + penalty * t) * base - s) ** 2)) / base)
    return max(penalty, 0.0), resid


# --------------------------------------------------------------------------- published

#: ImageNet-1k (ILSVRC-2012) training images: 1,281,167 (Russakovsky et al. 2015, IJCV,
#: Table 2). Used to turn epochs into steps.
IMAGENET_TRAIN_IMAGES = 1_281_167

#: "No loss of accuracy" in a fixed epoch budget read as: the examples needed at the
#: largest such batch exceed those at the baseline batch by at most this fraction. An
#: assumption of this model, stated so it can be changed.
NO_LOSS_TOLERANCE = 0.10


Row = dict[str, str]


def _published_rows() -> list[Row]:
    text = importlib.resources.files("ddlsim").joinpath("data/published.csv").read_text()
    return list(csv.DictReader(text.splitlines()))


def _missing(what: str, metric: str) -> ConfigError:
    return ConfigError(f"published.csv: no {what} row with metric {metric!r}")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _is_resnet50_imagenet(row: Row) -> bool:
    return row["model"].startswith("ResNet-50 (ImageNet")


def _cite(row: Row) -> str:
    """A row's primary source, shortened to its first parenthesised clause."""
    m = re.match(r"[^(]*\([^)]*\)", row["source"])
    return (m.group(0) if m else row["source"]).strip()


def _resnet50_imagenet(rows: list[Row]) -> StatEffModel:
    # Goyal et al. 2017: no accuracy loss up to global batch 8192 (large_batch row)
    metric = "max_batch_without_accuracy_loss"
    lb = [r for r in rows if r["category"] == "large_batch" and r["metric"] == metric
          and _is_resnet50_imagenet(r) and _number(r["value"]) is not None]
    if not lb:
        raise _missing("large_batch ResNet-50 (ImageNet)", metric)
    lb_row = max(lb, key=lambda r: float(r["value"]))
    # the baseline of the same recipe: ResNet-50 trained on one server at the smallest
    # global batch (256 images)
    metric = "time_to_train_hours"
    ttt = [r for r in rows if r["category"] == "time_to_train" and r["metric"] == metric
           and _is_resnet50_imagenet(r)]
    base = [r for r in ttt if r["nodes"] == "1" and _number(r["global_batch"]) is not None]
    if not base:
        raise _missing("one-server time_to_train ResNet-50 (ImageNet)", metric)
    base_row = min(base, key=lambda r: float(r["global_batch"]))
    # the epoch budget of the recipe, from the model text ("ResNet-50 (ImageNet, 90 epochs)")
    with_epochs = [(r, m) for r in ttt if (m := re.search(r"(\d+) epochs", r["model"]))]
    if not with_epochs:
        raise _missing("time_to_train ResNet-50 (ImageNet, N epochs)", metric)
    epochs_row, m = with_epochs[0]
    big = float(lb_row["value"])
    small = float(base_row["global_batch"])
    epochs = float(m.group(1))
    # E(B) = E_min (1 + B / B_noise); E(big) / E(small) = 1 + tol  ->  B_noise:
    b_noise = (big - (1 + NO_LOSS_TOLERANCE) * small) / NO_LOSS_TOLERANCE
    e_min = epochs / (1 + small / b_noise) * IMAGENET_TRAIN_IMAGES
    s_min = e_min / b_noise  # B_crit = E_min / S_min (McCandlish eq. 2.12)
    return StatEffModel(
        "resnet50-imagenet", b_noise=b_noise, s_min=s_min,
        source=(f"no accuracy loss up to B={big:.0f}: {_cite(lb_row)}; baseline "
                f"B={small:.0f} on one server: {_cite(base_row)}; {epochs:.0f} epochs: "
                f"{_cite(epochs_row)}; tolerance {NO_LOSS_TOLERANCE} is a model "
                "assumption; ImageNet 1,281,167 images"))


def _mnist(rows: list[Row]) -> StatEffModel:
    # McCandlish et al. 2018 MNIST B_simple (secondary source)
    metric = "B_simple_gradient_noise_scale"
    found = [r for r in rows if r["category"] == "large_batch" and r["metric"] == metric
             and r["model"].startswith("MNIST") and _number(r["value"]) is not None]
    if not found:
        raise _missing("large_batch MNIST", metric)
    row = found[0]
    return StatEffModel("mnist-classifier", b_noise=float(row["value"]),
                        source=(f"B_simple of McCandlish et al. 2018's MNIST classifier, "
                                f"quoted by a reimplementation: {_cite(row)}"))


#: Model name -> builder from the published rows (each builder selects its rows by column).
PUBLISHED_MODELS = {"resnet50-imagenet": _resnet50_imagenet, "mnist-classifier": _mnist}


def published_model(name: str) -> StatEffModel:
    """The statistical-efficiency model of a large workload, parameters from published.csv."""
    if name not in PUBLISHED_MODELS:
        raise unknown_name("model", name, PUBLISHED_MODELS, "published model")
    return PUBLISHED_MODELS[name](_published_rows())
