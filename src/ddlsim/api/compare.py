"""Allreduce vs parameter servers, side by side (``ddlsim ps --compare``).

Every row is a variant of one :class:`~ddlsim.job.Job` predicted through
:func:`ddlsim.api.predict` with the same calibration, so the table compares strategies,
not code paths.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ddlsim.api.calibration import Calibration, load_calibration
from ddlsim.api.predict import predict
from ddlsim.errors import ConfigError
from ddlsim.job import Job

COMPARE_STRATEGIES = ("allreduce", "bsp", "asp", "ssp", "backup")


def _row(job: Job, strat: str, calib: Calibration) -> dict:
    """One strategy of the comparison: ``job`` run as allreduce or as PS mode ``strat``,
    every strategy processing about ``job.strategy.updates`` gradients."""
    gpus, st = job.cluster.gpus, job.strategy
    if strat == "allreduce":
        iters = max(3, math.ceil(st.updates / gpus))
        pred = predict(replace(job, strategy=replace(st, kind="allreduce"), iterations=iters),
                       calib)
        dp = pred.detail
        return {"strategy": "allreduce", "samples_per_s": pred.samples_per_s,
                "updates_per_s": iters / dp.result.makespan_s, "staleness_mean": 0.0,
                "staleness_p99": 0.0, "dropped_grads": 0,
                "worker_util_mean": dp.summary()["gpu_busy_frac"],
                "server_link_util_max": float("nan")}
    per_update = {"asp": 1, "ssp": 1, "bsp": gpus, "backup": gpus - st.backup_workers}[strat]
    updates = st.updates if per_update == 1 else max(3, math.ceil(st.updates / per_update))
    pred = predict(replace(job, strategy=replace(st, kind="ps", ps_mode=strat,
                                                 updates=updates)), calib)
    s = pred.detail.summary()
    return {"strategy": f"ps-{strat}", **{k: s[k] for k in (
        "samples_per_s", "updates_per_s", "staleness_mean", "staleness_p99", "dropped_grads",
        "worker_util_mean", "server_link_util_max")}}


def compare_strategies(job: Job, calibration: str | Calibration | None = "stored",
                       straggler: tuple[int, float] | None = (-1, 2.0),
                       strategies=COMPARE_STRATEGIES):
    """Throughput and staleness of allreduce vs PS BSP, ASP, SSP and backup workers for
    ``job``'s workload and cluster, without and with a straggler.

    ``straggler``: (worker, compute-time factor) added to ``job.slow_gpus`` for the second
    half of the table (``None``: only the plain runs; worker -1 = the last one, which by
    default hosts no shard). Synchronous strategies run ``updates / gradients per
    iteration`` iterations (at least 3). Returns a DataFrame with one row per (strategy,
    straggler) and ``slowdown`` = plain samples/s / straggler samples/s.
    """
    import pandas as pd

    unknown = [s for s in strategies if s not in COMPARE_STRATEGIES]
    if unknown:
        raise ConfigError(f"strategies: must be among {', '.join(COMPARE_STRATEGIES)}, "
                          f"got {unknown}")
    calib = load_calibration(calibration)
    cases = [("none", job.slow_gpus)]
    if straggler is not None:
        w, f = int(straggler[0]) % job.cluster.gpus, float(straggler[1])
        cases.append((f"worker {w} x{f:g}", tuple(job.slow_gpus) + ((w, f),)))
    rows = [{"straggler": label, **_row(replace(job, slow_gpus=slow), strat, calib)}
            for label, slow in cases for strat in strategies]
    df = pd.DataFrame(rows)
    plain = df[df["straggler"] == "none"].set_index("strategy")["samples_per_s"]
    df["slowdown"] = [plain[s] / v for s, v in zip(df["strategy"], df["samples_per_s"],
                                                    strict=True)]
    return df
