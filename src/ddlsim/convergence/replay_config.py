"""What a replay is asked to do (:class:`ReplayConfig`) and what it returns
(:class:`ReplayResult`); the semantics are in :mod:`ddlsim.convergence.replay`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ddlsim.convergence.models import get_model
from ddlsim.convergence.outcomes import (
    OUTCOMES,
    Oscillation,
    chance_accuracy,
    oscillation,
    regime_of,
)
from ddlsim.convergence.train import LRSchedule
from ddlsim.errors import ConfigError

__all__ = ["OUTCOMES", "ReplayConfig", "ReplayResult"]


@dataclass(frozen=True)
class ReplayConfig:
    """How to train while replaying a log.

    ``model``: ``'lenet-digits'`` or ``'mlp'``; ``batch_per_worker``: samples per worker
    gradient; ``workers``: shards drawn per combined (``worker == -1``) update (None: the
    log's largest ``n_grads``); ``schedule``: learning rate; ``momentum``,
    ``weight_decay``: SGD (dimensionless); ``seed``: initial weights and sample order;
    ``eval_every``: updates between test evaluations (None: about 4 per epoch);
    ``target_accuracy``: test accuracy (0..1) whose first reach is reported;
    ``stop_at_target``: end the replay there; ``divergence_factor``: loss growth that
    counts as divergence; ``device``: ``'cpu'``, ``'gpu'`` or ``'auto'``;
    ``keep_checkpoints``: weight snapshots kept for the noise-scale estimate.
    """

    model: str = "lenet-digits"
    batch_per_worker: int = 32
    workers: int | None = None
    schedule: LRSchedule = field(default_factory=LRSchedule)
    momentum: float = 0.9
    weight_decay: float = 0.0
    nesterov: bool = False
    seed: int = 0
    eval_every: int | None = None
    target_accuracy: float | None = 0.97
    stop_at_target: bool = False
    divergence_factor: float = 1e3
    device: str = "cpu"
    dtype: str = "float32"
    keep_checkpoints: int = 8
    progress: bool = False  # a progress bar over the replayed updates

    def __post_init__(self) -> None:
        get_model(self.model)  # validates the name
        if self.batch_per_worker < 1:
            raise ConfigError(f"batch_per_worker: must be >= 1, got {self.batch_per_worker}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers: must be >= 1 or None, got {self.workers}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum: must be in [0, 1), got {self.momentum!r}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay: must be >= 0, got {self.weight_decay!r}")
        if self.eval_every is not None and self.eval_every < 1:
            raise ConfigError(f"eval_every: must be >= 1 or None, got {self.eval_every}")
        if self.target_accuracy is not None and not 0 < self.target_accuracy <= 1:
            raise ConfigError(f"target_accuracy: must be in (0, 1], "
                              f"got {self.target_accuracy!r}")
        if not self.divergence_factor > 1:
            raise ConfigError(f"divergence_factor: must be > 1, got {self.divergence_factor!r}")


@dataclass
class ReplayResult:
    """What a replay produced. Per-update arrays (one entry per applied update):
    ``update_time_s`` (simulated s), ``loss`` (mean batch cross-entropy at the weights
    read), ``lr``, ``staleness``. Per-evaluation arrays: ``eval_update`` (updates applied
    before the evaluation), ``eval_time_s``, ``test_loss``, ``test_acc`` (0..1),
    ``eval_epochs`` (training samples drawn / training-set size).
    ``time_to_target_s`` / ``updates_to_target``: first evaluation at or above the target
    (None when not reached). ``wall_s``: real seconds the replay took. ``outcome``: one of
    :data:`~ddlsim.convergence.outcomes.OUTCOMES` (``reached``, ``not reached``,
    ``collapsed to chance``, ``diverged``; rules in :mod:`ddlsim.convergence.outcomes`);
    ``classes``: of the data set (chance accuracy is ``1 / classes``)."""

    config: ReplayConfig
    dataset: str
    outcome: str
    update_time_s: np.ndarray
    loss: np.ndarray
    lr: np.ndarray
    staleness: np.ndarray
    eval_update: np.ndarray
    eval_time_s: np.ndarray
    eval_epochs: np.ndarray
    test_loss: np.ndarray
    test_acc: np.ndarray
    time_to_target_s: float | None
    updates_to_target: int | None
    diverged_at_update: int | None
    wall_s: float
    final_weights: np.ndarray
    checkpoints: list[tuple[int, np.ndarray]]
    backend: str
    classes: int

    @property
    def updates_applied(self) -> int:
        """Updates applied before the replay ended."""
        return int(self.loss.shape[0])

    @property
    def final_accuracy(self) -> float:
        """Test accuracy at the last evaluation (nan if none)."""
        return float(self.test_acc[-1]) if self.test_acc.size else math.nan

    @property
    def chance_accuracy(self) -> float:
        """``1 / classes``: the accuracy of a guess."""
        return chance_accuracy(self.classes)

    @property
    def oscillation(self) -> Oscillation:
        """Oscillation measures of the test-loss curve."""
        return oscillation(self.test_loss)

    @property
    def regime(self) -> str:
        """``slow``, ``good``, ``oscillating``, ``collapsed to chance`` or ``diverging``."""
        return regime_of(self.outcome, self.test_loss)

    @property
    def updates_per_s(self) -> float:
        """Applied updates per real (wall-clock) second of the replay."""
        return self.updates_applied / self.wall_s if self.wall_s > 0 else math.inf

    def summary(self) -> dict:
        """One flat record (SI units, accuracy 0..1; ``loss_sign_changes`` and
        ``loss_swing`` (nats) are the oscillation measures behind ``regime``)."""
        osc = self.oscillation
        return {
            "model": self.config.model, "dataset": self.dataset, "outcome": self.outcome,
            "regime": self.regime,
            "base_lr": self.config.schedule.base_lr, "seed": self.config.seed,
            "updates": self.updates_applied, "final_test_acc": self.final_accuracy,
            "final_test_loss": float(self.test_loss[-1]) if self.test_loss.size else math.nan,
            "target_accuracy": self.config.target_accuracy,
            "time_to_target_s": self.time_to_target_s,
            "updates_to_target": self.updates_to_target,
            "diverged_at_update": self.diverged_at_update,
            "max_staleness": int(self.staleness.max()) if self.staleness.size else 0,
            "chance_accuracy": self.chance_accuracy,
            "loss_sign_changes": osc.sign_changes, "loss_swing": osc.swing,
            "wall_s": self.wall_s, "updates_per_s": self.updates_per_s,
        }
