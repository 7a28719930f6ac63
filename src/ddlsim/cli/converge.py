"""Convergence commands: ``converge`` (time-to-accuracy per strategy, real training on
the 8x8 digits replaying the simulated updates) and ``lr-sweep``."""

from __future__ import annotations

import sys

import click

from ddlsim import api
from ddlsim.cli.app import cli
from ddlsim.cli.options import (
    CALIBRATION,
    GPU_COUNT,
    JSON,
    SEED,
    check_out,
    echo_json,
    number_list,
    pairs,
    seed_list,
    summary_table,
)


# --------------------------------------------------------------------------- convergence
def _replay_options(workers: int, batch: int, epochs: float, lr: float, momentum: float,
                    target: float):
    """The options ``converge`` and ``lr-sweep`` share, with each command's defaults."""
    def decorate(f):
        opts = [
            click.option("--model", default="lenet-digits", show_default=True,
                         type=click.Choice(["lenet-digits", "mlp"])),
            click.option("--batch", "batch_per_worker", default=batch, show_default=True,
                         type=int, help="Samples per worker per gradient."),
            click.option("--workers", default=workers, show_default=True, type=GPU_COUNT),
            click.option("--cluster", default="dgx-a100", show_default=True),
            click.option("--epochs", default=epochs, show_default=True, type=float,
                         help="Training budget in passes over the training set."),
            click.option("--lr", default=lr, show_default=True, type=float,
                         help="Base learning rate (for one worker's batch when scaled)."),
            click.option("--lr-policy", default="constant", show_default=True,
                         type=click.Choice(["constant", "linear-warmup", "step", "cosine"])),
            click.option("--scale-lr/--no-scale-lr", default=True, show_default=True,
                         help="Scale the rate linearly with each update's global batch "
                              "(Goyal et al. 2017; reference: one worker's --batch), as "
                              "scenario files do: allreduce over W workers steps W times "
                              "further than one asynchronous gradient. linear-warmup "
                              "needs it."),
            click.option("--momentum", default=momentum, show_default=True, type=float),
            click.option("--staleness-aware", is_flag=True,
                         help="Divide the step by the gradient's staleness "
                              "(Zhang et al. 2016)."),
            click.option("--target-accuracy", default=target, show_default=True, type=float,
                         help="Test accuracy (0..1) a run must reach to count as reached."),
            click.option("--noise-cv", default=0.0, show_default=True, type=float,
                         help="Per-kernel time noise of the simulated workers."),
            click.option("--straggler", default=None, help="WORKER=FACTOR, e.g. 7=2."),
            click.option("--seed", default=0, show_default=True, type=SEED),
            CALIBRATION,
            JSON,
            click.option("--out", "out_dir", callback=check_out,
                         type=click.Path(file_okay=False)),
        ]
        for opt in reversed(opts):
            f = opt(f)
        return f
    return decorate


def _straggler(straggler):
    return pairs("--straggler", (straggler,), int, "WORKER=FACTOR like 7=2")[0] \
        if straggler else None


#: the columns ``converge`` prints (and its report's table)
CONVERGE_COLUMNS = ("outcome", "updates", "final_test_acc", "final_test_loss",
                    "time_to_target_s", "tta_reached", "tta_median_s", "tta_outcomes")


@cli.command("converge")
@_replay_options(workers=8, batch=16, epochs=15.0, lr=0.02, momentum=0.5, target=0.95)
@click.option("--strategy", "strategies", multiple=True,
              type=click.Choice(["allreduce", "bsp", "asp", "ssp", "backup"]),
              help="Strategies to compare (repeatable; default allreduce, asp, ssp).")
@click.option("--seeds", default="0,1,2", show_default=True,
              help="Seeds for the time-to-accuracy spread (each seed's outcome is shown).")
def converge_cmd(model, batch_per_worker, workers, cluster, epochs, lr, lr_policy, scale_lr,
                 momentum, staleness_aware, target_accuracy, noise_cv, straggler, seed,
                 calibration, as_json, out_dir, strategies, seeds) -> None:
    """Simulate each strategy, then train for real on the 8x8 digits, applying exactly the
    updates (stale gradients included) the simulated system applies: accuracy and loss
    against simulated time, and time-to-accuracy over seeds.

    Each run and each seed is named by its outcome: reached (the target test accuracy),
    not reached (trained the budget and learned, never reached it), collapsed to chance
    (final test accuracy at most 0.05 above chance, 1/10; the loss then sits near ln 10)
    or diverged (loss non-finite or above 1000x the first update's).

    The defaults are the set-up of the digits-sync-vs-async scenario without its
    straggler: LeNet, 8 workers x 16 samples, 15 epochs, momentum 0.5 and a rate of 0.02
    per 16 samples scaled with the global batch, so the allreduce step (128 samples) is 8x
    one asynchronous gradient's. At these settings every strategy learns and reaches 95 %,
    allreduce first: the comparison a user expects to read. It is not the only answer:
    with heavy momentum and one rate for all (--momentum 0.9 --no-scale-lr) ASP and SSP,
    whose gradients are up to 7 updates stale, collapse to chance, and the table says so.
    """
    from ddlsim.api.convergence import ReplayOptions, StrategyRunOptions, converge_strategies
    from ddlsim.reports.convergence import write_convergence_report

    opts = ReplayOptions(model=model, batch_per_worker=batch_per_worker, epochs=epochs, lr=lr,
                         lr_policy=lr_policy,
                         reference_batch=batch_per_worker if scale_lr else None,
                         momentum=momentum, staleness_aware=staleness_aware,
                         target_accuracy=target_accuracy, seed=seed,
                         seeds=tuple(seed_list(seeds)),
                         progress=sys.stderr.isatty() and not as_json)
    so = StrategyRunOptions(workers=workers, cluster=cluster, noise_cv=noise_cv,
                            straggler=_straggler(straggler), seed=seed,
                            calibration=calibration)
    preds = converge_strategies(strategies or ("allreduce", "asp", "ssp"), opts, so)
    calib = api.load_calibration(calibration)
    path = (write_convergence_report(preds, out_dir, target_accuracy,
                                     title=f"{model} on {workers} workers ({cluster})")
            if out_dir else None)
    if as_json:
        echo_json({"calibration": calib.label, "target_accuracy": target_accuracy,
                   "rows": [{"strategy": k, **v.summary()} for k, v in preds.items()],
                   **({"report": str(path / "report.md")} if path else {})})
        return
    rows = [{"strategy": k, **{c: v.summary().get(c) for c in CONVERGE_COLUMNS
                               if c in v.summary()}} for k, v in preds.items()]
    click.echo(calib.describe())
    click.echo(f"target test accuracy {100 * target_accuracy:g} %; tta_outcomes: "
               "each seed's outcome, in seed order")
    click.echo(summary_table(rows))
    if path:
        click.echo(f"report written to {path}/report.md")


#: the columns ``lr-sweep`` prints
SWEEP_COLUMNS = ("base_lr", "regime", "outcome", "final_test_acc", "final_test_loss",
                 "loss_swing")


@cli.command("lr-sweep")
@_replay_options(workers=4, batch=16, epochs=10.0, lr=0.01, momentum=0.9, target=0.95)
@click.option("--strategy", default="allreduce", show_default=True,
              type=click.Choice(["allreduce", "bsp", "asp", "ssp", "backup"]))
@click.option("--lrs", default="0.0001,0.01,0.04,10", show_default=True,
              help="Learning rates, comma-separated (default: slow, good, oscillating, "
                   "diverging).")
def lr_sweep_cmd(model, batch_per_worker, workers, cluster, epochs, lr, lr_policy, scale_lr,
                 momentum, staleness_aware, target_accuracy, noise_cv, straggler, seed,
                 calibration, as_json, out_dir, strategy, lrs) -> None:
    """Learning-rate sweep on one strategy's update log, each rate labelled with its
    regime: slow (learned, did not reach the target), good (reached it), oscillating (the
    test loss keeps swinging up and down: in the second half of the run at least 40 % of
    its successive differences change sign and their median is at least 0.04 nats),
    collapsed to chance, diverging (an outcome, not an error).

    The defaults are the digits-learning-rate scenario: LeNet, allreduce over 4 workers x
    16 samples, momentum 0.9, 10 epochs, rates per 16 samples scaled with the global
    batch; 0.0001 learns slowly, 0.01 reaches 95 %, 0.04 oscillates, 10 diverges."""
    from ddlsim.api.convergence import (
        ReplayOptions,
        StrategyRunOptions,
        lr_sweep_prediction,
        simulated_update_log,
    )
    from ddlsim.reports.convergence import sweep_frame, write_lr_sweep_report

    so = StrategyRunOptions(workers=workers, cluster=cluster, noise_cv=noise_cv,
                            straggler=_straggler(straggler), seed=seed,
                            calibration=calibration)
    log, _ = simulated_update_log(strategy, model, batch_per_worker, so)
    opts = ReplayOptions(model=model, batch_per_worker=batch_per_worker, workers=workers,
                         epochs=epochs, lr=lr, lr_policy=lr_policy,
                         reference_batch=batch_per_worker if scale_lr else None,
                         momentum=momentum, staleness_aware=staleness_aware,
                         target_accuracy=target_accuracy, seed=seed)
    results = lr_sweep_prediction(log, opts, number_list("lrs", lrs, float))
    df = sweep_frame(results)
    calib = api.load_calibration(calibration)
    path = write_lr_sweep_report(results, out_dir) if out_dir else None
    if as_json:
        echo_json({"calibration": calib.label, "strategy": strategy,
                   "target_accuracy": target_accuracy, "rows": df.to_dict(orient="records"),
                   **({"report": str(path / "report.md")} if path else {})})
        return
    click.echo(calib.describe())
    click.echo(f"{strategy}, target test accuracy {100 * target_accuracy:g} %")
    click.echo(df[[c for c in SWEEP_COLUMNS if c in df.columns]].to_string(
        index=False, float_format=lambda v: f"{v:.4g}"))
    if path:
        click.echo(f"report written to {path}/report.md")
