"""Training pieces shared by every replay: learning-rate schedules, the sample stream,
SGD with momentum on flat parameter vectors, evaluation.

Learning-rate policies (``LRSchedule.policy``):

* ``constant``: ``base_lr`` throughout.
* ``linear-warmup``: the linear scaling rule with gradual warm-up of Goyal et al. 2017
  ("Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", arXiv 1706.02677,
  Sec. 2.1-2.2): ``lr = base_lr * B / reference_batch`` for a global batch ``B``, reached
  by a linear ramp from ``base_lr`` over ``warmup_updates`` updates.
* ``step``: multiply by ``step_gamma`` every ``step_every`` updates.
* ``cosine``: ``0.5 (1 + cos(pi u / T))`` over the ``T`` updates of the run
  (Loshchilov & Hutter 2017, SGDR, without restarts).

``reference_batch`` and ``warmup_updates`` also apply to ``step`` and ``cosine``.
``staleness_aware`` divides the rate of an update of staleness ``tau >= 1`` by ``tau``
(Zhang, Gupta, Lian & Liu 2016, "Staleness-aware Async-SGD for Distributed Deep
Learning", IJCAI 2016, arXiv 1511.05950).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ddlsim.errors import ConfigError, unknown_name
from ddlsim.kernels import ops

Array = Any

LR_POLICIES = ("constant", "linear-warmup", "step", "cosine")


@dataclass(frozen=True)
class LRSchedule:
    """Learning rate per update. ``base_lr``: dimensionless step size for the reference
    batch; ``reference_batch``: global batch (samples) ``base_lr`` is tuned for (None: no
    scaling); ``warmup_updates``: length of the warm-up ramp; ``step_every`` /
    ``step_gamma``: step decay; ``staleness_aware``: divide by the staleness."""

    base_lr: float = 0.05
    policy: str = "constant"
    reference_batch: int | None = None
    warmup_updates: int = 0
    step_every: int = 0
    step_gamma: float = 0.1
    staleness_aware: bool = False

    def __post_init__(self) -> None:
        if not (self.base_lr > 0 and math.isfinite(self.base_lr)):
            raise ConfigError(f"base_lr: must be a finite number > 0, got {self.base_lr!r}")
        if self.policy not in LR_POLICIES:
            raise unknown_name("policy", self.policy, LR_POLICIES, "policy")
        if self.reference_batch is not None and self.reference_batch < 1:
            raise ConfigError(f"reference_batch: must be >= 1, got {self.reference_batch}")
        if self.policy == "linear-warmup" and self.reference_batch is None:
            raise ConfigError("reference_batch: required by policy 'linear-warmup' "
                              "(the batch base_lr is tuned for), got None")
        if self.warmup_updates < 0:
            raise ConfigError(f"warmup_updates: must be >= 0, got {self.warmup_updates}")
        if self.policy == "step" and self.step_every < 1:
            raise ConfigError(f"step_every: must be >= 1 for policy 'step', "
                              f"got {self.step_every}")
        if not 0 < self.step_gamma <= 1:
            raise ConfigError(f"step_gamma: must be in (0, 1], got {self.step_gamma!r}")

    def lr_at(self, update: int, global_batch: int, staleness: int = 0,
              total_updates: int = 1) -> float:
        """Rate of update ``update`` (0-based) with ``global_batch`` samples, ``staleness``
        updates behind, in a run of ``total_updates`` updates (used by ``cosine``)."""
        scale = global_batch / self.reference_batch if self.reference_batch else 1.0
        peak = self.base_lr * scale
        if update < self.warmup_updates:
            frac = (update + 1) / self.warmup_updates
            start = self.base_lr if self.reference_batch else 0.0
            lr = start + (peak - start) * frac
        elif self.policy == "step":
            lr = peak * self.step_gamma ** (update // self.step_every)
        elif self.policy == "cosine":
            span = max(total_updates - self.warmup_updates, 1)
            done = min(update - self.warmup_updates, span)
            lr = peak * 0.5 * (1.0 + math.cos(math.pi * done / span))
        else:
            lr = peak
        if self.staleness_aware and staleness >= 1:
            lr /= staleness
        return lr


class SampleStream:
    """Seeded stream of training-sample indices: a fresh permutation of ``range(n)`` each
    epoch, handed out in order; :meth:`take` may cross an epoch boundary."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.rng = np.random.default_rng(seed)
        self.perm = self.rng.permutation(n)
        self.pos = 0
        self.drawn = 0

    def take(self, k: int) -> np.ndarray:
        """The next ``k`` sample indices."""
        parts = []
        while k > 0:
            if self.pos == self.n:
                self.perm, self.pos = self.rng.permutation(self.n), 0
            m = min(k, self.n - self.pos)
            parts.append(self.perm[self.pos:self.pos + m])
            self.pos += m
            self.drawn += m
            k -= m
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    @property
    def epochs(self) -> float:
        """Samples drawn so far divided by the training-set size."""
        return self.drawn / self.n


def sgd_step(layout, w: Array, g: Array, v: Array, lr: float, momentum: float,
             weight_decay: float = 0.0, nesterov: bool = False) -> None:
    """SGD with momentum in place on the flat ``w`` and velocity ``v``: one
    :func:`ddlsim.kernels.ops.sgd_momentum_update` per layer, as the workload's update
    calls are listed (``lr``, ``momentum``, ``weight_decay`` dimensionless)."""
    for _, sl in layout.layer_slices():
        ops.sgd_momentum_update(w[sl], g[sl], v[sl], lr, momentum, weight_decay, nesterov)


def evaluate(model, w: Array, x: Array, y: Array, batch: int = 256) -> tuple[float, float]:
    """``(mean cross-entropy, accuracy in 0..1)`` of ``model`` at weights ``w`` on
    ``(x, y)``, in chunks of ``batch`` samples."""
    n = int(x.shape[0])
    total_loss, correct = 0.0, 0
    for s in range(0, n, batch):
        xb, yb = x[s:s + batch], y[s:s + batch]
        z = model.logits(w, xb)
        loss, _ = ops.softmax_cross_entropy_forward(z, yb)
        total_loss += float(loss) * int(xb.shape[0])
        correct += int((z.argmax(axis=1) == yb).sum())
    return total_loss / n, correct / n
