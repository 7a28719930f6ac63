"""``ddlsim search``: the best parallel layout of a decoder on a given cluster."""

from __future__ import annotations

import click

from ddlsim import api
from ddlsim.cli.app import cli
from ddlsim.cli.options import CALIBRATION, DTYPE, GPU_COUNT, JSON, echo_json, out_option


@cli.command("search")
@click.option("--model", default="llama2-70b", show_default=True,
              help="A decoder of the zoo (GPT, Llama, Nemotron; see `ddlsim models`).")
@click.option("--gpus", default=64, show_default=True, type=GPU_COUNT)
@click.option("--cluster", default="dgx-h100", show_default=True, help="Cluster preset.")
@click.option("--device", help="GPU type instead of the preset's (see `ddlsim devices`).")
@click.option("--global-batch", default=512, show_default=True, type=click.IntRange(min=1),
              help="Sequences per iteration (kept fixed).")
@click.option("--micro-batch", type=click.IntRange(min=1),
              help="Fix the micro-batch (default: searched over 1, 2, 4, 8).")
@click.option("--seq", type=click.IntRange(min=1), help="Sequence length (default: the model's).")
@click.option("--dtype", default="auto", show_default=True, type=DTYPE,
              help="auto: the GPU's mixed precision (bf16 where it has it).")
@click.option("--top", default=5, show_default=True, type=click.IntRange(min=1),
              help="Distinct tp x pp splits to predict with the event simulation.")
@out_option("Write report.md, layouts.csv and layouts.png here.")
@CALIBRATION
@JSON
def search_cmd(model, gpus, cluster, device, global_batch, micro_batch, seq, dtype, top,
               out_dir, calibration, as_json) -> None:
    """Search tp x cp x pp x dp x micro-batch x recomputation x virtual stages x ZeRO stage
    for MODEL on GPUS GPUs: estimate every layout's memory and time per iteration with the
    analytic fast path (the event simulation's own per-layer costs, in closed form), keep
    those that fit, predict the best few with the event simulation and print them fastest
    first, with why the best beats the next."""
    calib = api.load_calibration(calibration)
    job = api.Job(workload=api.Workload(model, architecture=(("seq", seq),) if seq else ()),
                  cluster=api.Cluster(cluster, gpus, device=device),
                  precision=api.Precision(None if dtype == "auto" else dtype),
                  parallelism=api.Parallelism(placement="blocks"),
                  batch=api.Batch(global_batch=global_batch, micro=micro_batch),
                  strategy=api.Strategy(kind="3d"))
    result = api.search_layouts(job, calib, predict_top=top)
    path = None
    if out_dir:
        from ddlsim.reports.layouts import write_search_report

        path = write_search_report(result, f"Layouts of {model} on {gpus} x "
                                           f"{device or cluster}", out_dir)
    if as_json:
        echo_json({"calibration": calib.label, "note": result.note(),
                   "layouts": [c.summary() for c in result.layouts],
                   "enumerated": result.enumerated, "memory_checks": result.checked,
                   "estimated": result.checked, "layouts_per_s": result.layouts_per_s,
                   "fast_path_s": result.fast_s,
                   "fitting": result.fitting, "predicted": result.predicted,
                   **({"report": str(path / "report.md")} if path else {})})
        return
    from ddlsim.reports.layouts import ranked_frame

    click.echo(calib.describe())
    best = result.best
    if best is None:
        click.echo(f"no layout of {model} fits {gpus} GPUs: {result.note()}")
    else:
        click.echo(f"best on {gpus} x {device or cluster}: {best.label}, {best.dtype}: "
                   f"{best.iteration_s:.3g} s per "
                   f"iteration, {best.tokens_per_s:,.0f} tokens/s, MFU {100 * best.mfu:.1f} %, "
                   f"{best.memory_bytes / 2**30:.1f} of {best.capacity_bytes / 2**30:.0f} GiB "
                   "per GPU")
        click.echo(ranked_frame(result).to_string(index=False))
        click.echo(result.note())
    if path:
        click.echo(f"report written to {path}/report.md (plot: layouts.png)")
