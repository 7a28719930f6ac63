"""Convergence: real training with ddlsim's own kernels that replays a simulated update log.

* :mod:`.data` - the 8x8 digits data set (scikit-learn's bundled copy) or any arrays.
* :mod:`.models` - a LeNet-style CNN and an MLP built from :mod:`ddlsim.kernels.ops`,
  with the same layers and shapes as :func:`ddlsim.sim.workloads.lenet_digits` and
  :func:`ddlsim.sim.workloads.mlp`, so the kernels that are timed are the ones trained.
* :mod:`.train` - gradients on flat parameter vectors, SGD with momentum, learning-rate
  schedules, evaluation.
* :mod:`.replay` - replay of an update log (sync, async, SSP, backup workers),
  learning-rate sweeps and time-to-accuracy over seeds; its options and result are in
  :mod:`.replay_config`, log validation and synthetic logs in :mod:`.update_logs`.
* :mod:`.outcomes` - how a replay ended (``reached``, ``not reached``, ``collapsed to
  chance``, ``diverged``) and the regime of its loss curve (``slow``, ``good``,
  ``oscillating``, ...), with the numbers of each rule.
* :mod:`.stat_eff` - the statistical-efficiency *model* (critical batch size, staleness
  penalty) for workloads too large to train here.
"""

from ddlsim.convergence.data import Dataset, from_arrays, load_digits
from ddlsim.convergence.models import MODELS, LeNetDigits, Mlp, get_model
from ddlsim.convergence.outcomes import OUTCOMES, REGIMES
from ddlsim.convergence.replay import (
    ReplayConfig,
    ReplayResult,
    TimeToAccuracy,
    constant_staleness_log,
    lr_sweep,
    replay,
    sync_log,
    tile_update_log,
    time_to_accuracy,
)
from ddlsim.convergence.train import LR_POLICIES, LRSchedule

__all__ = [
    "LR_POLICIES", "MODELS", "OUTCOMES", "REGIMES", "Dataset", "LRSchedule", "LeNetDigits",
    "Mlp", "ReplayConfig", "ReplayResult", "TimeToAccuracy", "constant_staleness_log",
    "from_arrays", "get_model", "load_digits", "lr_sweep", "replay", "sync_log",
    "tile_update_log", "time_to_accuracy",
]
