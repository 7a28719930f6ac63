"""Planning commands: ``plan`` (time and cost to train over GPU types and cluster sizes)
and ``faults`` (goodput under failures with checkpointing)."""

from __future__ import annotations

import click

from ddlsim import api
from ddlsim.cli.app import cli
from ddlsim.cli.options import (
    CALIBRATION,
    DTYPE,
    GPU_COUNT,
    JSON,
    LORA_RANK,
    SEED,
    echo_json,
    echo_notes,
    headline,
    out_option,
    precision,
    summary_table,
)


@cli.command("plan")
@click.option("--model", default="resnet50", show_default=True,
              help="Workload to train (see `ddlsim models`).")
@click.option("--target", default="epochs=90", show_default=True,
              help="epochs=N | samples=N | tokens=N (decoders and encoders: N / sequence "
                   "length samples) | quality (the MLPerf Training benchmark's target: steps "
                   "from MLCommons reference convergence points, for resnet50, gpt3-175b, "
                   "llama3-8b, llama3-405b, llama2-70b: LoRA, rank 16, seq 8192) | accuracy "
                   "(ResNet-50, a fitted statistical-efficiency model).")
@click.option("--deadline", help="Time limit, e.g. 24h, 3d, 90min.")
@click.option("--budget", help="Cost limit, e.g. 5000USD.")
@click.option("--gpus", default="", help="GPU types, comma-separated (default: every priced "
              "GPU with a cluster preset).")
@click.option("--max-gpus", default=64, show_default=True, type=int)
@click.option("--min-gpus", type=int)
@click.option("--batch-per-gpu", default=32, show_default=True, type=int,
              help="Per-GPU batch of a data-parallel model (CNNs, MLPs, encoders).")
@click.option("--micro-batch", type=click.IntRange(min=1),
              help="Micro-batch of a decoder (default: chosen by the layout search among "
                   "1, 2, 4, 8).")
@click.option("--global-batch", default=512, show_default=True, type=click.IntRange(min=1),
              help="Sequences per iteration of a decoder (kept fixed by the layout search).")
@click.option("--search-top", default=4, show_default=True, type=click.IntRange(min=1),
              help="Decoder layouts (distinct tp x pp) predicted per GPU type and count "
                   "after the cheap memory check and estimate.")
@click.option("--dataset-samples", type=int, help="Training-set size (default: the model's).")
@click.option("--prices", type=click.Path(dir_okay=False),
              help="Price CSV (columns of data/prices.csv) overriding the built-in prices.")
@click.option("--failures/--no-failures", default=False, show_default=True,
              help="Account for GPU failures and checkpointing (Young/Daly interval).")
@click.option("--gpu-mtbf-hours", "--mtbf-gpu-hours", "mtbf_gpu_hours", type=float,
              help="Per-GPU mean time between failures, hours.")
@click.option("--checkpoint-s", default=60.0, show_default=True, type=float)
@click.option("--restart-s", default=300.0, show_default=True, type=float)
@LORA_RANK
@out_option()
@CALIBRATION
@JSON
def plan_cmd(model, target, deadline, budget, gpus, max_gpus, min_gpus, batch_per_gpu,
             micro_batch, global_batch, search_top, dataset_samples, prices, failures,
             mtbf_gpu_hours, checkpoint_s, restart_s, out_dir, calibration, as_json,
             lora_rank) -> None:
    """Capacity planning: time-to-train and cost for GPU types x cluster sizes (decoders:
    the fastest fitting parallel layout of each), the Pareto frontier of time vs cost, and
    the cheapest configuration that meets the deadline. The answer comes first."""
    from ddlsim.api.plan import PlanOptions, parse_duration, parse_money, plan
    from ddlsim.reports.plan import frontier_text, headline_lines, write_plan_report

    kw = {} if mtbf_gpu_hours is None else {"mtbf_gpu_hours": mtbf_gpu_hours}
    opts = PlanOptions(model=model, target=target,
                       deadline_s=parse_duration(deadline) if deadline else None,
                       budget_usd=parse_money(budget) if budget else None,
                       gpus=tuple(g.strip() for g in gpus.split(",") if g.strip()),
                       max_gpus=max_gpus, min_gpus=min_gpus, batch_per_gpu=batch_per_gpu,
                       micro_batch=micro_batch, search_top=search_top,
                       global_batch=global_batch, dataset_samples=dataset_samples,
                       prices_path=prices, include_failures=failures,
                       checkpoint_cost_s=checkpoint_s, restart_s=restart_s,
                       calibration=calibration, lora_rank=lora_rank, **kw)
    result = plan(opts)
    path = write_plan_report(result, out_dir) if out_dir else None
    if as_json:
        doc = {"calibration": api.load_calibration(calibration).label, **result.summary()}
        if path:
            doc["report"] = str(path / "report.md")
        echo_json(doc)
        return
    click.echo(api.load_calibration(calibration).describe())
    for line in headline_lines(result):
        click.echo(line)
    click.echo("Pareto frontier (time vs cost):")
    click.echo(frontier_text(result))
    explanation = result.explanation
    for line in [explanation] if isinstance(explanation, str) else explanation:
        click.echo(line)
    for note in result.notes:
        click.echo(f"note: {note}")
    if path:
        click.echo(f"report written to {path}/report.md")

# --------------------------------------------------------------------------- faults
@cli.command("faults")
@click.option("--model", default="resnet50", show_default=True)
@click.option("--batch", default=32, show_default=True, type=int, help="Samples per GPU.")
@click.option("--cluster", default="dgx-a100", show_default=True)
@click.option("--gpus", default=1024, show_default=True, type=GPU_COUNT)
@click.option("--strategy", default="allreduce", show_default=True,
              type=click.Choice(["allreduce", "ps-asp", "ps-bsp"]),
              help="Sync strategies restart from the last checkpoint on any failure; "
                   "asynchronous PS keeps going with fewer workers.")
@click.option("--gpu-mtbf-hours", type=float,
              help="Per-GPU MTBF (default: Llama 3's 50,677 GPU-hours, arXiv 2407.21783).")
@click.option("--node-mtbf-hours", type=float)
@click.option("--link-mtbf-hours", type=float)
@click.option("--checkpoint-interval-s", type=float,
              help="Default: the Young/Daly optimum sqrt(2 x checkpoint cost x MTBF).")
@click.option("--checkpoint-GB", "--checkpoint-gb", "checkpoint_gb", type=float,
              help="Checkpoint size, 10^9 bytes (default: 12 bytes per parameter).")
@click.option("--storage-GBps", "--storage-gbps", "storage_gbps", type=float,
              help="Checkpoint write bandwidth, 10^9 bytes/s.")
@click.option("--restart-s", type=float, help="Restart time after a failure (s).")
@click.option("--train-samples", type=float, help="Samples to train (default: 90 epochs).")
@click.option("--method", default="expected", show_default=True,
              type=click.Choice(["expected", "simulate"]),
              help="Closed form (Daly 2006) or seeded failure timelines.")
@click.option("--sweep", is_flag=True, help="Sweep the checkpoint interval around Young/Daly.")
@click.option("--dtype", default="auto", show_default=True, type=DTYPE,
              help="auto: the GPU's mixed precision (bf16, else fp16 AMP, else fp32).")
@click.option("--seed", default=0, show_default=True, type=SEED)
@out_option("Write the sweep report here (with --sweep).")
@CALIBRATION
@JSON
def faults_cmd(model, batch, cluster, gpus, strategy, gpu_mtbf_hours, node_mtbf_hours,
               link_mtbf_hours, checkpoint_interval_s, checkpoint_gb, storage_gbps, restart_s,
               train_samples, method, sweep, dtype, seed, out_dir, calibration,
               as_json) -> None:
    """Goodput under GPU/node/link failures with checkpointing: time lost to failures and
    to checkpoints, expected time-to-train; --sweep finds the best checkpoint interval."""
    from ddlsim.api.faults import FaultOptions, checkpoint_interval_sweep, predict_goodput

    ps = strategy != "allreduce"
    calib = api.load_calibration(calibration)
    job = api.Job(workload=api.Workload(model), cluster=api.Cluster(cluster, gpus),
                  precision=precision(dtype), batch=api.Batch(micro=batch),
                  strategy=api.Strategy(kind="ps" if ps else "allreduce",
                                        ps_mode=strategy.removeprefix("ps-") if ps else "asp",
                                        updates=4 * gpus),
                  iterations=5, seed=seed)
    pred = api.predict(job, calib)
    given = {"gpu_mtbf_hours": gpu_mtbf_hours, "node_mtbf_hours": node_mtbf_hours,
             "link_mtbf_hours": link_mtbf_hours, "checkpoint_interval_s": checkpoint_interval_s,
             "checkpoint_GB": checkpoint_gb, "storage_GBps": storage_gbps,
             "restart_s": restart_s, "train_samples": train_samples}
    opts = FaultOptions(method=method, seed=seed,
                        **{k: v for k, v in given.items() if v is not None})
    if sweep:
        from ddlsim.reports.faults import write_faults_report

        result = checkpoint_interval_sweep(pred, opts)
        path = write_faults_report(result, out_dir) if out_dir else None
        if as_json:
            echo_json({"calibration": calib.label, "prediction": pred.summary(),
                       "best_interval_s": result.best_interval_s,
                       "young_daly_interval_s": result.young_daly_interval_s,
                       "daly_interval_s": result.daly_interval_s,
                       "sweep": result.frame().to_dict(orient="records"),
                       **({"report": str(path / "report.md")} if path else {})})
            return
        click.echo(calib.describe())
        click.echo(headline(pred))
        click.echo(result.frame().to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        click.echo(f"best interval {result.best_interval_s:.4g} s; Young/Daly "
                   f"sqrt(2CM) = {result.young_daly_interval_s:.4g} s; Daly "
                   f"{result.daly_interval_s:.4g} s")
        if path:
            click.echo(f"report written to {path}/report.md")
        return
    g = predict_goodput(pred, opts)
    if as_json:
        echo_json({"calibration": calib.label, "prediction": pred.summary(),
                   "goodput": g.summary()})
        return
    click.echo(calib.describe())
    click.echo(headline(pred))
    echo_notes(pred)
    click.echo(summary_table([{k: v for k, v in g.summary().items() if k in (
        "strategy", "gpus", "samples_per_s", "goodput_samples_per_s", "goodput_fraction",
        "checkpoint_interval_s", "failures", "lost_to_failures_s", "checkpoint_s",
        "time_to_train_s")}]))


