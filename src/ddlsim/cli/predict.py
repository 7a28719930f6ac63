"""The predicting commands: ``dp``, ``ps``, ``pipeline``, ``place``, ``3d``, ``faults``.

Each parses its options into one :class:`ddlsim.api.Job`, calls
:func:`ddlsim.api.predict` with the chosen calibration (stored by default) and renders:
the calibration used, a headline sentence, then the engine's detail.
"""

from __future__ import annotations

import click

from ddlsim import api
from ddlsim.cli.app import cli
from ddlsim.cli.options import (
    CALIBRATION,
    DTYPE,
    FP8,
    GPU_COUNT,
    JSON,
    LORA_RANK,
    LORA_TARGETS,
    MAX_EVENTS,
    NOISE,
    SEED,
    echo_json,
    echo_notes,
    headline,
    number_list,
    out_option,
    pairs,
    precision,
    summary_table,
    workload,
)
from ddlsim.reports import tables

DTYPE_HELP = "auto: the GPU's mixed precision (bf16, else fp16 AMP, else fp32)."


def _emit_json(calib, preds, extra=None) -> None:
    rows = [{**p.summary(), **({"would_fit": api.memory_advice(p.job)} if p.fits is False
                               else {})} for p in preds]
    echo_json({"calibration": calib.label, "predictions": rows,
               "assumptions": sorted({a for p in preds for a in p.assumptions}),
               **(extra or {})})


# --------------------------------------------------------------------------- sync DP
@cli.command("dp")
@click.option("--model", default="resnet50", show_default=True)
@click.option("--batch", default=32, show_default=True, type=click.IntRange(min=1),
              help="Samples per GPU.")
@click.option("--cluster", default="dgx-a100", show_default=True, help="Cluster preset.")
@click.option("--device", help="GPU type instead of the preset's (see `ddlsim devices`).")
@click.option("--gpus", default="8", show_default=True,
              help="GPU counts, comma-separated (one run each): 8,64,512.")
@click.option("--dtype", default="auto", show_default=True, type=DTYPE, help=DTYPE_HELP)
@click.option("--iterations", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--algo", default="auto", show_default=True,
              type=click.Choice(["auto", "ring", "tree", "hierarchical"]))
@click.option("--bucket-MB", "--bucket-mb", "bucket_mb", default=25.0, show_default=True,
              type=float, help="DDP gradient bucket, 10^6 bytes.")
@click.option("--no-overlap", is_flag=True, help="Allreduce only after the whole backward.")
@click.option("--zero", default=0, show_default=True, type=click.IntRange(0, 3),
              help="ZeRO stage / distributed optimizer: 1 shards optimizer state over the "
                   "data-parallel GPUs, 2 also gradients, 3 (FSDP) also weights.")
@click.option("--recompute", default="none", show_default=True,
              type=click.Choice(["none", "selective", "full"]),
              help="Activation recomputation: none; selective (the attention core's "
                   "forward again in backward, Megatron's selective recompute); full "
                   "(every layer's forward again: gradient checkpointing).")
@click.option("--noise", default="none", show_default=True, type=NOISE)
@click.option("--noise-cv", default=0.0, show_default=True, type=float,
              help="Coefficient of variation of per-kernel time noise.")
@click.option("--slow-gpu", multiple=True, help="RANK=FACTOR, e.g. 3=1.5 (repeatable).")
@click.option("--slow-link", multiple=True,
              help="LINK=FACTOR, e.g. nic0.tx=4 divides that link's bandwidth by 4 "
                   "(repeatable; ids in links.csv of a report).")
@click.option("--loader-samples-per-s", "--loader-rate", "loader_rate", type=float,
              help="Data-loader samples/s per GPU (default: unlimited).")
@click.option("--profile", type=click.Path(dir_okay=False),
              help="Measured kernel profile CSV (from `ddlsim kernels bench`).")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--trace-iteration", "trace_iters", multiple=True, type=click.IntRange(min=0),
              help="Iteration to export in trace.json (repeatable; default: the last).")
@click.option("--trace-rank", "trace_ranks", multiple=True, type=click.IntRange(min=0),
              help="GPU rank whose streams go in the trace (repeatable; default: 0 and 1).")
@LORA_RANK
@LORA_TARGETS
@MAX_EVENTS
@out_option()
@CALIBRATION
@JSON
def dp(model, batch, cluster, device, gpus, dtype, iterations, algo, bucket_mb, no_overlap,
       zero, recompute, noise, noise_cv, slow_gpu, slow_link, loader_rate, profile, seed,
       trace_iters, trace_ranks, max_events, out_dir, calibration, as_json, lora_rank,
       lora_targets) -> None:
    """Predict synchronous data-parallel training (allreduce) throughput and scaling."""
    from ddlsim.reports.dp import summary_frame, write_dp_report

    counts = number_list("gpus", gpus)
    if not all(1 <= n <= 1_000_000 for n in counts):
        raise click.BadParameter(f"GPU counts must be in [1, 1000000], got {gpus!r}",
                                 param_hint="--gpus")
    calib = api.load_calibration(calibration)
    preds = []
    for n in counts:
        job = api.Job(
            workload=workload(model, lora_rank, lora_targets), cluster=api.Cluster(
                cluster, n, device=device, slow_links=pairs(
                    "--slow-link", slow_link, str, "LINK=FACTOR like nic0.tx=4")),
            precision=precision(dtype), batch=api.Batch(micro=batch),
            parallelism=api.Parallelism(zero=zero, recompute=recompute),
            strategy=api.Strategy(kind="allreduce", algo=algo, bucket_bytes=bucket_mb * 1e6,
                                  overlap=not no_overlap),
            iterations=iterations, seed=seed, noise=noise, noise_cv=noise_cv,
            slow_gpus=pairs("--slow-gpu", slow_gpu, int, "RANK=FACTOR like 3=1.5"),
            loader_samples_per_s=loader_rate, profile=profile)
        preds.append(api.predict(job, calib, max_events=max_events,
                                 trace=(tuple(trace_iters) or (iterations - 1,),
                                        tuple(trace_ranks) or (0, 1))))
    path = (write_dp_report([p.detail for p in preds], out_dir, [headline(p) for p in preds])
            if out_dir else None)
    if as_json:
        _emit_json(calib, preds, {"report": str(path / "report.md")} if path else None)
        return
    click.echo(calib.describe())
    for p in preds:
        click.echo(headline(p))
        echo_notes(p)
    summary = summary_frame([p.detail for p in preds])
    click.echo(tables.render(summary.drop(columns=["model", "cluster"]), {
        "iteration_s": "seconds", "iteration_p10_s": "seconds", "iteration_p90_s": "seconds",
        "exposed_comm_s": "seconds", "scaling_efficiency": "pct", "gpu_busy_frac": "pct",
        "straggler_loss_frac": "pct"}))
    if path:
        click.echo(f"report written to {path}/report.md")


# --------------------------------------------------------------------------- async PS
@cli.command("ps")
@click.option("--model", default="resnet50", show_default=True)
@click.option("--batch", "batch_per_worker", default=32, show_default=True,
              type=click.IntRange(min=1), help="Samples per worker per update.")
@click.option("--cluster", default="dgx-a100", show_default=True, help="Cluster preset.")
@click.option("--device", help="GPU type instead of the preset's (see `ddlsim devices`).")
@click.option("--workers", default=8, show_default=True, type=GPU_COUNT)
@click.option("--mode", default="asp", show_default=True,
              type=click.Choice(["asp", "ssp", "bsp", "backup"]),
              help="asp: fully asynchronous; ssp: bounded staleness; bsp: synchronous PS; "
                   "backup: sync with backup workers.")
@click.option("--updates", default=200, show_default=True, type=click.IntRange(min=1),
              help="Applied worker gradients to simulate.")
@click.option("--staleness-bound", default=3, show_default=True, type=int, help="SSP bound s.")
@click.option("--backup-workers", default=1, show_default=True, type=int, help="Backup b.")
@click.option("--shards", default=1, show_default=True, type=click.IntRange(min=1),
              help="Server shards S.")
@click.option("--placement", default="colocated", show_default=True,
              type=click.Choice(["colocated", "hosts"]),
              help="Shards on the workers' nodes or on separate CPU server hosts.")
@click.option("--server-nic-Gbps", "--server-nic-gbps", "server_nic_gbps", type=float,
              help="Server host NIC line rate, 10^9 bit/s, for --placement hosts.")
@click.option("--no-overlap", is_flag=True,
              help="Pull all, compute, push all (default: push each shard's gradients as "
                   "backward produces them).")
@click.option("--dtype", default="auto", show_default=True, type=DTYPE, help=DTYPE_HELP)
@click.option("--noise", default="none", show_default=True, type=NOISE)
@click.option("--noise-cv", default=0.0, show_default=True, type=float)
@click.option("--slow-worker", multiple=True, help="WORKER=FACTOR (repeatable).")
@click.option("--compare", is_flag=True,
              help="Also compare allreduce vs PS BSP/ASP/SSP/backup, with and without a "
                   "straggler (last worker 2x slower).")
@click.option("--profile", type=click.Path(dir_okay=False), help="Measured kernel profile CSV.")
@click.option("--seed", default=0, show_default=True, type=SEED)
@MAX_EVENTS
@out_option()
@CALIBRATION
@JSON
def ps_cmd(model, batch_per_worker, cluster, device, workers, mode, updates, staleness_bound,
           backup_workers, shards, placement, server_nic_gbps, no_overlap, dtype, noise,
           noise_cv, slow_worker, compare, profile, seed, max_events, out_dir, calibration,
           as_json) -> None:
    """Predict asynchronous / parameter-server data parallelism: throughput, staleness."""
    from ddlsim.reports.async_ps import comparison_markdown, write_ps_report

    calib = api.load_calibration(calibration)
    job = api.Job(
        workload=api.Workload(model), cluster=api.Cluster(cluster, workers, device=device),
        precision=precision(dtype), batch=api.Batch(micro=batch_per_worker),
        strategy=api.Strategy(
            kind="ps", ps_mode=mode, updates=updates, staleness_bound=staleness_bound,
            backup_workers=backup_workers, shards=shards, ps_placement=placement,
            server_nic_bw_Bps=None if server_nic_gbps is None else server_nic_gbps * 1e9 / 8,
            overlap=not no_overlap),
        noise=noise, noise_cv=noise_cv, seed=seed, profile=profile,
        slow_gpus=pairs("--slow-worker", slow_worker, int, "WORKER=FACTOR like 3=2"))
    pred = api.predict(job, calib, max_events=max_events)
    comparison = api.compare_strategies(job, calib) if compare else None
    path = (write_ps_report([pred.detail], out_dir, comparison=comparison,
                            headlines=[headline(pred)]) if out_dir else None)
    if as_json:
        _emit_json(calib, [pred], {
            "ps": pred.detail.summary(),
            **({"comparison": comparison.to_dict(orient="records")} if compare else {}),
            **({"report": str(path / "report.md")} if path else {})})
        return
    click.echo(calib.describe())
    click.echo(headline(pred))
    echo_notes(pred)
    click.echo(summary_table([pred.detail.summary()]))
    if comparison is not None:
        click.echo(comparison_markdown(comparison))
    if path:
        click.echo(f"report written to {path}/report.md")


# --------------------------------------------------------------------------- model parallel
def _pipeline_options(f):
    """The options shared by ``pipeline``, ``place`` and ``3d``."""
    opts = [
        click.option("--model", default="gpt-small", show_default=True),
        click.option("--micro-batch", default=4, show_default=True, type=click.IntRange(min=1),
                     help="Samples per micro-batch."),
        click.option("--cluster", default="dgx-a100", show_default=True),
        click.option("--device", help="GPU type instead of the preset's."),
        click.option("--devices", default="", help="Comma-separated device per stage "
                     "(heterogeneous GPUs), e.g. a100-80gb,l4."),
        click.option("--placement", default="auto", show_default=True,
                     type=click.Choice(["auto", "blocks", "manual"])),
        click.option("--balance", default="", help="Layers per stage for --placement manual, "
                     "e.g. 5,7,7,5."),
        click.option("--dtype", default="auto", show_default=True, type=DTYPE, help=DTYPE_HELP),
        FP8,
        click.option("--attention", default="fused", show_default=True,
                     type=click.Choice(["fused", "unfused"]),
                     help="fused: FlashAttention-style (today's frameworks' default); "
                          "unfused: score matrix in HBM (Megatron-LM before 2022)."),
        click.option("--optimizer", default="adam", show_default=True,
                     type=click.Choice(["sgd", "momentum", "adam"])),
        click.option("--recompute", default="none", show_default=True,
                     type=click.Choice(["none", "selective", "full"])),
        click.option("--sequence-parallel", is_flag=True),
        click.option("--tp-comm-overlap/--no-tp-comm-overlap", default=None,
                     help="Overlap the sequence-parallel all-gathers and reduce-scatters with "
                          "the GEMMs (Transformer Engine userbuffers). Default: on with "
                          "--sequence-parallel and tp > 1, as NeMo's configs set it."),
        click.option("--overlap-grad-reduce/--no-overlap-grad-reduce", default=True,
                     show_default=True,
                     help="Reduce data-parallel gradients in buckets during the last "
                          "backward (Megatron-Core/NeMo overlap_grad_reduce) or after it."),
        LORA_RANK, LORA_TARGETS, MAX_EVENTS, out_option(), CALIBRATION, JSON,
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _model_parallel_job(model, micro_batch, cluster, device, devices, placement, balance,
                        dtype, fp8, attention, optimizer, recompute, sequence_parallel, stages,
                        micro_batches, schedule, tp=1, dp=1, kind="pipeline", lora_rank=None,
                        lora_targets=None, tp_comm_overlap=None,
                        overlap_grad_reduce=True) -> api.Job:
    par = api.Parallelism(tp=tp, pp=stages, dp=dp, recompute=recompute, schedule=schedule,
                          sequence_parallel=sequence_parallel, placement=placement,
                          tp_comm_overlap=tp_comm_overlap,
                          overlap_grad_reduce=overlap_grad_reduce,
                          balance=tuple(number_list("balance", balance)) if balance else ())
    return api.Job(
        workload=workload(model, lora_rank, lora_targets, attention=attention),
        cluster=api.Cluster(cluster, tp * stages * dp, device=device,
                            stage_devices=tuple(d for d in devices.split(",") if d)),
        parallelism=par, precision=precision(dtype, fp8),
        batch=api.Batch(global_batch=micro_batch * micro_batches * dp, micro=micro_batch),
        strategy=api.Strategy(kind=kind), optimizer=optimizer)


def _stages_table(pred) -> str:
    import pandas as pd

    stages = pd.DataFrame(pred.stages_frame_rows())
    if stages["busy_frac"].isna().all():  # placement only: nothing was simulated
        stages = stages.drop(columns=["busy_frac"])
    fmt = {c: "bytes" for c in stages.columns if c.endswith("_bytes")}
    fmt.update({c: "seconds" for c in stages.columns if c.endswith("_s")})
    return tables.render(stages, fmt)


def _echo_pipeline(calib, pred, out_dir, as_json) -> None:
    from ddlsim.reports.pipeline import write_pipeline_report

    path = write_pipeline_report(pred.detail, out_dir, [headline(pred)]) if out_dir else None
    if as_json:
        _emit_json(calib, [pred], {"stages": pred.detail.stages_frame_rows(),
                                   "suggestions": pred.detail.suggestions,
                                   **({"report": str(path / "report.md")} if path else {})})
        return
    click.echo(calib.describe())
    click.echo(headline(pred))
    for w in pred.warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(summary_table([pred.detail.summary()]))
    click.echo(_stages_table(pred.detail))
    if not pred.detail.fits:
        click.echo("does not fit: " + "; ".join(pred.detail.suggestions))
    if path:
        click.echo(f"report written to {path}/report.md")


@cli.command("pipeline")
@_pipeline_options
@click.option("--stages", default=4, show_default=True, type=click.IntRange(min=1),
              help="Pipeline stages p.")
@click.option("--micro-batches", default=8, show_default=True, type=click.IntRange(min=1),
              help="m per iteration.")
@click.option("--schedule", default="1f1b", show_default=True,
              type=click.Choice(["naive", "gpipe", "1f1b"]))
@click.option("--tp", default=1, show_default=True, type=click.IntRange(min=1),
              help="Tensor-parallel degree.")
@click.option("--dp", default=1, show_default=True, type=click.IntRange(min=1),
              help="Pipeline replicas (DP).")
def pipeline_cmd(max_events, out_dir, calibration, as_json, **kw) -> None:
    """Model parallelism: place layers on GPUs under memory limits and simulate the
    naive, GPipe or 1F1B pipeline schedule (optionally with TP and DP)."""
    calib = api.load_calibration(calibration)
    pred = api.predict(_model_parallel_job(**kw), calib, max_events=max_events)
    _echo_pipeline(calib, pred, out_dir, as_json)


@cli.command("place")
@_pipeline_options
@click.option("--stages", default=4, show_default=True, type=click.IntRange(min=1),
              help="Pipeline stages p.")
@click.option("--micro-batches", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--schedule", default="1f1b", show_default=True,
              type=click.Choice(["naive", "gpipe", "1f1b"]))
def place_cmd(max_events, out_dir, calibration, as_json, **kw) -> None:
    """Memory-aware layer placement only: the split, per-stage time and memory, and what
    would fit when it does not (exit status 0 either way)."""
    calib = api.load_calibration(calibration)
    pred = api.place(_model_parallel_job(**kw), calib)
    if as_json:
        echo_json({"calibration": calib.label, "fits": pred.fits,
                   "placement": pred.placement_note, "stages": pred.stages_frame_rows(),
                   "suggestions": pred.suggestions})
        return
    click.echo(calib.describe())
    click.echo(_stages_table(pred))
    click.echo(f"placement: {pred.placement_note or pred.options.placement}")
    if not pred.fits:
        click.echo("does not fit: " + "; ".join(pred.suggestions))


@cli.command("3d")
@_pipeline_options
@click.option("--tp", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--pp", default=16, show_default=True, type=click.IntRange(min=1))
@click.option("--dp", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--cp", default=1, show_default=True, type=click.IntRange(min=1),
              help="Context-parallel degree: ring attention over CP GPUs, seq/CP tokens each.")
@click.option("--vp", default=1, show_default=True, type=click.IntRange(min=1),
              help="Virtual pipeline stages per GPU (interleaved 1F1B; micro-batches per "
                   "replica must be a multiple of --pp).")
@click.option("--zero", default=0, show_default=True, type=click.IntRange(0, 3),
              help="ZeRO stage / distributed optimizer: 1 shards optimizer state over the "
                   "data-parallel GPUs, 2 also gradients, 3 (FSDP) also weights.")
@click.option("--global-batch", default=1536, show_default=True, type=click.IntRange(min=1),
              help="Sequences per iteration (1536: GPT-3 175B's 3.2M tokens, Brown et al. "
                   "2020 Table 2.1, as in Megatron-LM's GPT-3 example).")
def three_d_cmd(model, micro_batch, cluster, device, devices, placement, balance, dtype, fp8,
                attention, optimizer, recompute, sequence_parallel, tp_comm_overlap,
                overlap_grad_reduce, max_events, out_dir, calibration, as_json, tp, pp, dp,
                cp, vp, zero, global_batch, lora_rank, lora_targets) -> None:
    """TP x CP x PP x DP of a decoder (GPT, Llama, Nemotron; Megatron style): iteration
    time, tokens/s, TFLOP/s per GPU. Options left unset take Megatron's defaults: GPT-3
    175B, global batch 1536, micro-batch 1, the even block split, the GPU's mixed
    precision (bf16 where it has it) with fp32 gradient reduction."""
    ctx = click.get_current_context()

    def unset(name: str) -> bool:
        return ctx.get_parameter_source(name) == click.core.ParameterSource.DEFAULT

    if devices:
        raise click.BadParameter("per-stage devices are a 'ddlsim pipeline' option; 3d runs "
                                 "one device type (the cluster's)", param_hint="--devices")
    calib = api.load_calibration(calibration)
    par = api.Parallelism(tp=tp, pp=pp, cp=cp, dp=dp, vp=vp, zero=zero, recompute=recompute,
                          sequence_parallel=sequence_parallel, tp_comm_overlap=tp_comm_overlap,
                          overlap_grad_reduce=overlap_grad_reduce,
                          placement="blocks" if unset("placement") else placement,
                          balance=tuple(number_list("balance", balance)) if balance else ())
    job = api.Job(
        workload=workload("gpt3-175b" if unset("model") else model, lora_rank, lora_targets,
                          attention=attention),
        cluster=api.Cluster(cluster, tp * cp * pp * dp, device=device), parallelism=par,
        precision=precision(dtype, fp8),
        batch=api.Batch(global_batch=global_batch, micro=1 if unset("micro_batch")
                        else micro_batch),
        strategy=api.Strategy(kind="3d"), optimizer=optimizer)
    pred = api.predict(job, calib, max_events=max_events)
    _echo_pipeline(calib, pred, out_dir, as_json)
