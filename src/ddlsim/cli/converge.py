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
    SEED,
    check_out,
    number_list,
    pairs,
    seed_list,
    summary_table,
)


# --------------------------------------------------------------------------- convergence
def _replay_options(f):
    opts = [
        click.option("--model", default="lenet-digits", show_default=True,
                     type=click.Choice(["lenet-digits", "mlp"])),
        click.option("--batch", "batch_per_worker", default=32, show_default=True, type=int,
                     help="Samples per worker per gradient."),
        click.option("--workers", default=8, show_default=True, type=GPU_COUNT),
        click.option("--cluster", default="dgx-a100", show_default=True),
        click.option("--epochs", default=10.0, show_default=True, type=float),
        click.option("--lr", default=0.02, show_default=True, type=float),
        click.option("--lr-policy", default="constant", show_default=True,
                     type=click.Choice(["constant", "linear-warmup", "step", "cosine"])),
        click.option("--momentum", default=0.9, show_default=True, type=float),
        click.option("--staleness-aware", is_flag=True,
                     help="Divide the step by the gradient's staleness (Zhang et al. 2016)."),
        click.option("--noise-cv", default=0.0, show_default=True, type=float,
                     help="Per-kernel time noise of the simulated workers."),
        click.option("--straggler", default=None, help="WORKER=FACTOR, e.g. 7=2."),
        click.option("--seed", default=0, show_default=True, type=SEED),
        CALIBRATION,
        click.option("--out", "out_dir", callback=check_out, type=click.Path(file_okay=False)),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


@cli.command("converge")
@_replay_options
@click.option("--strategy", "strategies", multiple=True,
              type=click.Choice(["allreduce", "bsp", "asp", "ssp", "backup"]),
              help="Strategies to compare (repeatable; default allreduce, asp, ssp).")
@click.option("--target-accuracy", default=0.97, show_default=True, type=float,
              help="Test accuracy (0..1) for time-to-accuracy.")
@click.option("--seeds", default="0,1,2", show_default=True,
              help="Seeds for the time-to-accuracy spread.")
def converge_cmd(model, batch_per_worker, workers, cluster, epochs, lr, lr_policy, momentum,
                 staleness_aware, noise_cv, straggler, seed, calibration, out_dir, strategies,
                 target_accuracy, seeds) -> None:
    """Simulate each strategy, then train for real on the 8x8 digits, applying exactly the
    updates (stale gradients included) the simulated system applies: accuracy and loss
    against simulated time, and time-to-accuracy over seeds."""
    from ddlsim.api.convergence import ReplayOptions, StrategyRunOptions, converge_strategies
    from ddlsim.reports.convergence import write_convergence_report

    strag = pairs("--straggler", (straggler,), int, "WORKER=FACTOR like 7=2")[0] \
        if straggler else None
    opts = ReplayOptions(model=model, batch_per_worker=batch_per_worker, epochs=epochs, lr=lr,
                         lr_policy=lr_policy, momentum=momentum,
                         staleness_aware=staleness_aware, target_accuracy=target_accuracy,
                         seed=seed, seeds=tuple(seed_list(seeds)),
                         progress=sys.stderr.isatty())
    so = StrategyRunOptions(workers=workers, cluster=cluster, noise_cv=noise_cv,
                            straggler=strag, seed=seed, calibration=calibration)
    preds = converge_strategies(strategies or ("allreduce", "asp", "ssp"), opts, so)
    rows = [{"strategy": k, **{c: v.summary().get(c) for c in (
        "outcome", "updates", "final_test_acc", "time_to_target_s", "tta_reached",
        "tta_median_s")}}
        for k, v in preds.items()]
    click.echo(api.load_calibration(calibration).describe())
    click.echo(summary_table(rows))
    if out_dir:
        path = write_convergence_report(preds, out_dir, target_accuracy,
                                        title=f"{model} on {workers} workers ({cluster})")
        click.echo(f"report written to {path}/report.md")


@cli.command("lr-sweep")
@_replay_options
@click.option("--strategy", default="allreduce", show_default=True,
              type=click.Choice(["allreduce", "bsp", "asp", "ssp", "backup"]))
@click.option("--lrs", default="0.0001,0.001,0.01,0.05,0.3,3,50", show_default=True,
              help="Learning rates, comma-separated.")
def lr_sweep_cmd(model, batch_per_worker, workers, cluster, epochs, lr, lr_policy, momentum,
                 staleness_aware, noise_cv, straggler, seed, calibration, out_dir, strategy,
                 lrs) -> None:
    """Learning-rate sweep on one strategy's update log: too small converges slowly, too
    large oscillates or diverges (reported as an outcome, not an error)."""
    from ddlsim.api.convergence import (
        ReplayOptions,
        StrategyRunOptions,
        lr_sweep_prediction,
        simulated_update_log,
    )
    from ddlsim.reports.convergence import sweep_frame, write_lr_sweep_report

    strag = pairs("--straggler", (straggler,), int, "WORKER=FACTOR like 7=2")[0] \
        if straggler else None
    so = StrategyRunOptions(workers=workers, cluster=cluster, noise_cv=noise_cv,
                            straggler=strag, seed=seed, calibration=calibration)
    log, _ = simulated_update_log(strategy, model, batch_per_worker, so)
    opts = ReplayOptions(model=model, batch_per_worker=batch_per_worker, workers=workers,
                         epochs=epochs, lr=lr, lr_policy=lr_policy, momentum=momentum,
                         staleness_aware=staleness_aware, seed=seed)
    results = lr_sweep_prediction(log, opts, number_list("lrs", lrs, float))
    df = sweep_frame(results)
    cols = [c for c in ("base_lr", "outcome", "final_test_acc", "final_test_loss")
            if c in df.columns]
    click.echo(api.load_calibration(calibration).describe())
    click.echo(df[cols].to_string(index=False))
    if out_dir:
        path = write_lr_sweep_report(results, out_dir)
        click.echo(f"report written to {path}/report.md")


