"""How a replay ended (its *outcome*) and what its loss curve looked like (its *regime*),
named so that a reader can trust them at a glance.

Outcomes (:data:`OUTCOMES`), decided in this order:

1. ``diverged``: the training loss became non-finite, or exceeded
   ``ReplayConfig.divergence_factor`` (1000 by default) times the first update's loss;
   the replay stops there.
2. ``collapsed to chance``: the replay trained its budget without diverging, but its final
   test accuracy is at most :func:`chance_accuracy` + :data:`CHANCE_ACCURACY_MARGIN`, i.e.
   ``<= 1/classes + 0.05`` (15 % on the ten digits; the test split holds about 360 digits,
   so 0.05 is about three binomial standard deviations above 10 %). Such a model carries no
   information about the digit; its test loss typically sits at ``ln(classes)`` (2.30
   nats), the loss of a uniform guess (reported as ``final_test_loss``). The loss is not
   part of the rule: a slowly learning run passes through ``ln(classes)`` too. A run that
   never left chance counts here as well (it ended at chance, whatever the cause). This
   is checked before the target, so a run that reached the target and then fell back to
   chance is named for where it ended (its ``time_to_target_s`` is still reported).
3. ``reached``: the test accuracy reached the target at some evaluation.
4. ``not reached``: trained the budget, never reached the target, but learned (ended above
   chance + margin).

Regimes (:data:`REGIMES`, one per run of a learning-rate sweep), in this order:
``diverging`` (outcome diverged), ``collapsed to chance``, ``oscillating``
(:func:`oscillation`), ``good`` (reached the target), ``slow`` (learned, did not reach it).

Oscillation is measured on the *test* loss at the evaluations (a fixed test set, so
without the mini-batch noise of the per-update training loss, whose successive
differences change sign about half the time even when training is smooth). Over the
second half of the evaluations after the first (the oscillation must persist, not only be
an early transient), with ``d`` the successive differences: the loss oscillates when
every value is finite, there are at least :data:`OSCILLATION_MIN_POINTS` evaluations, at
least :data:`OSCILLATION_MIN_SIGN_CHANGES` (40 %) of consecutive non-zero differences
change sign, and the median ``|d|`` is at least :data:`OSCILLATION_MIN_SWING` (0.04
nats). On the digits (LeNet, allreduce over 4 x 16 samples, momentum 0.9, 10 epochs:
the digits-learning-rate scenario) a converging run's test loss moves by at most 0.015
nats between evaluations in its second half (rate 0.01, seeds 0-2), while at a rate 4x
higher (0.04) it swings by 0.06-0.13 nats, up and down, half of the differences changing
sign, and stays finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

REACHED = "reached"
NOT_REACHED = "not reached"
COLLAPSED = "collapsed to chance"
DIVERGED = "diverged"
#: every outcome of a replay, in the order they are decided (see the module docstring)
OUTCOMES = (DIVERGED, COLLAPSED, REACHED, NOT_REACHED)

#: final test accuracy at most this far above chance (1/classes) counts as collapsed
CHANCE_ACCURACY_MARGIN = 0.05

SLOW, GOOD, OSCILLATING, DIVERGING = "slow", "good", "oscillating", "diverging"
#: the regimes of a learning-rate sweep (``collapsed to chance`` is its own regime)
REGIMES = (SLOW, GOOD, OSCILLATING, COLLAPSED, DIVERGING)

#: fewest evaluations (in the second half) on which an oscillation is judged
OSCILLATION_MIN_POINTS = 6
#: fraction of consecutive test-loss differences that must change sign
OSCILLATION_MIN_SIGN_CHANGES = 0.4
#: median absolute change of the test loss between evaluations (nats)
OSCILLATION_MIN_SWING = 0.04


def chance_accuracy(classes: int) -> float:
    """Accuracy of a guess that carries no information: ``1 / classes``."""
    return 1.0 / classes


def is_collapsed(final_accuracy: float, classes: int) -> bool:
    """True when ``final_accuracy`` (0..1) is within :data:`CHANCE_ACCURACY_MARGIN` of
    chance or below it (nan: no evaluation, not collapsed)."""
    return (math.isfinite(final_accuracy)
            and final_accuracy <= chance_accuracy(classes) + CHANCE_ACCURACY_MARGIN)


def outcome_of(diverged: bool, final_accuracy: float, classes: int, reached: bool) -> str:
    """The outcome of a replay by the rules of the module docstring."""
    if diverged:
        return DIVERGED
    if is_collapsed(final_accuracy, classes):
        return COLLAPSED
    return REACHED if reached else NOT_REACHED


@dataclass(frozen=True)
class Oscillation:
    """Oscillation measures of a test-loss curve (second half of the evaluations after
    the first): ``points`` judged, ``sign_changes`` (fraction of consecutive differences
    of opposite sign), ``swing`` (median absolute difference, nats), ``finite``."""

    points: int
    sign_changes: float
    swing: float
    finite: bool

    @property
    def oscillating(self) -> bool:
        """The rule of the module docstring."""
        return (self.finite and self.points >= OSCILLATION_MIN_POINTS
                and self.sign_changes >= OSCILLATION_MIN_SIGN_CHANGES
                and self.swing >= OSCILLATION_MIN_SWING)


def oscillation(test_loss) -> Oscillation:
    """Measure the oscillation of ``test_loss`` (one value per evaluation, the first at
    the initial weights)."""
    tl = np.asarray(test_loss, dtype=np.float64)[1:]
    half = tl[tl.size // 2:]
    finite = bool(np.all(np.isfinite(tl)))
    if half.size < 2 or not finite:
        return Oscillation(int(half.size), 0.0, 0.0, finite)
    d = np.diff(half)
    nz = d[d != 0]
    flips = float(np.mean(np.sign(nz[1:]) != np.sign(nz[:-1]))) if nz.size > 1 else 0.0
    return Oscillation(int(half.size), flips, float(np.median(np.abs(d))), finite)


def regime_of(outcome: str, test_loss) -> str:
    """The regime of one run of a learning-rate sweep (module docstring)."""
    if outcome == DIVERGED:
        return DIVERGING
    if outcome == COLLAPSED:
        return COLLAPSED
    if oscillation(test_loss).oscillating:
        return OSCILLATING
    return GOOD if outcome == REACHED else SLOW
