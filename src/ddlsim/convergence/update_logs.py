"""Update logs (:data:`ddlsim.sim.updates.UPDATE_LOG_COLUMNS`) for replays: validation
(:func:`log_rows`), synthetic synchronous and fixed-staleness logs, and tiling a short
log into a long one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ddlsim.errors import ConfigError
from ddlsim.sim.updates import UPDATE_LOG_COLUMNS, update_row


def log_rows(update_log: Sequence[Sequence]) -> np.ndarray:
    """The log as a float64 ``[n, 7]`` array, validated."""
    n_cols = len(UPDATE_LOG_COLUMNS)
    rows = [tuple(r) for r in update_log]
    if not rows:
        raise ConfigError("update_log: must hold at least one row, got 0")
    bad = next((i for i, r in enumerate(rows) if len(r) != n_cols), None)
    if bad is not None:
        raise ConfigError(f"update_log[{bad}]: must have {n_cols} fields "
                          f"{UPDATE_LOG_COLUMNS}, got {len(rows[bad])}")
    arr = np.asarray(rows, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ConfigError("update_log: every field must be finite")
    checks = (
        (np.diff(arr[:, 1]) < 0, "time_s must not decrease"),
        (arr[:, 6] < 1, "n_grads must be >= 1"),
        (arr[:, 3] < 0, "version_read must be >= 0"),
        (arr[:, 5] != arr[:, 4] - 1 - arr[:, 3], "staleness must equal "
                                                  "version_written - 1 - version_read"),
        (arr[:, 5] < 0, "staleness must be >= 0"),
    )
    for mask, rule in checks:
        if np.any(mask):
            i = int(np.argmax(mask)) + (1 if rule.startswith("time_s") else 0)
            raise ConfigError(f"update_log[{i}]: {rule}, got row {rows[i]}")
    return arr


def sync_log(updates: int, workers: int, iteration_s: float = 1.0,
             n_grads: int | None = None) -> list[tuple]:
    """A synchronous log: ``updates`` rows, one per ``iteration_s`` (simulated s),
    ``n_grads`` (default ``workers``) gradients combined, staleness 0."""
    n = workers if n_grads is None else n_grads
    return [update_row(k, (k + 1) * iteration_s, -1, k, k + 1, n) for k in range(updates)]


def constant_staleness_log(updates: int, staleness: int, workers: int = 1,
                           update_interval_s: float = 1.0) -> list[tuple]:
    """An asynchronous log where update ``k`` reads version ``max(0, k - staleness)``
    (round-robin workers, one update per ``update_interval_s`` simulated s): the
    fixed-delay model of the staleness literature."""
    if staleness < 0:
        raise ConfigError(f"staleness: must be >= 0, got {staleness}")
    return [update_row(k, (k + 1) * update_interval_s, k % workers, max(0, k - staleness),
                       k + 1, 1) for k in range(updates)]


def tile_update_log(update_log: Sequence[Sequence], updates: int) -> list[tuple]:
    """Repeat a (steady-state) log until it holds ``updates`` rows: each repetition is
    shifted by the log's last time and last written version. Lets a short simulation
    drive a long training run; the timing pattern is assumed to repeat."""
    arr = log_rows(update_log)
    period_t = float(arr[-1, 1])
    period_v = int(arr[-1, 4])
    out = []
    k = 0
    while len(out) < updates:
        rep, i = divmod(k, arr.shape[0])
        r = arr[i]
        out.append(update_row(len(out), float(r[1]) + rep * period_t, int(r[2]),
                              int(r[3]) + rep * period_v, int(r[4]) + rep * period_v,
                              int(r[6])))
        k += 1
    return out
