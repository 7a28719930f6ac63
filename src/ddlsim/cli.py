"""The ``ddlsim`` command line.

The only module that imports click and the only place that exits. Commands parse their
options, call a pure function from :mod:`ddlsim.api` (or a part's API), and render the
result; a :class:`ddlsim.errors.DdlsimError` becomes a one-line message and exit code 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ddlsim import __version__, api
from ddlsim.errors import DdlsimError
from ddlsim.reports import tables

DEVICE_CHOICE = click.Choice(["auto", "cpu", "gpu"])
SEED = click.IntRange(0, 2**32 - 1)  # numpy's seed range
GPU_COUNT = click.IntRange(1, 1_000_000)


def _check_out(ctx, param, value):
    """Refuse a report folder that would overwrite the user's files before any work."""
    if value is not None:
        from ddlsim.reports.files import check_out_dir

        try:
            check_out_dir(value)
        except DdlsimError as exc:
            raise click.BadParameter(str(exc).removeprefix("out: ")) from None
    return value
DTYPE_CHOICE = click.Choice(["float32", "float16", "bfloat16"])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ddlsim")
def cli() -> None:
    """Predict how deep-learning training behaves on a multi-GPU cluster.

    \b
    Start here:
      ddlsim demo                       time kernels here, compare sync vs async
      ddlsim scenarios list             built-in scenarios; `scenarios show NAME`
      ddlsim run NAME_OR_FILE.yaml      simulate a scenario, write an HTML report
      ddlsim dp --model resnet50 --gpus 8,64,512 --cluster dgx-a100
    """


# --------------------------------------------------------------------------- kernels
@cli.group()
def kernels() -> None:
    """Measure the real training kernels on this machine's CPU or GPU."""


@kernels.command("bench")
@click.option("--model", default="lenet5", show_default=True,
              help="Built-in workload whose training step is timed (see `ddlsim models`).")
@click.option("--batch", default=32, show_default=True, type=int, help="Samples per step.")
@click.option("--dtype", default="float32", show_default=True, type=DTYPE_CHOICE)
@click.option("--device", default="auto", show_default=True, type=DEVICE_CHOICE,
              help="auto: the GPU when CuPy can use one, else NumPy on the CPU.")
@click.option("--repeats", default=15, show_default=True, type=int,
              help="Timed samples per kernel (median, p10, p90 are reported).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the profile CSV here.")
@click.option("--top", default=15, show_default=True, type=int, help="Rows in the summary.")
def kernels_bench(model, batch, dtype, device, repeats, out_path, top) -> None:
    """Time exactly the kernels one training step of MODEL runs (forward, backward, update)."""
    from ddlsim.kernels.profile import save_profile

    opts = api.KernelBenchOptions(model=model, batch=batch, dtype=dtype, device=device,
                                  repeats=repeats, progress=sys.stderr.isatty())
    df, backend = api.bench_kernels(opts)
    click.echo(f"backend: {backend.name} ({backend.reason})")
    _echo_device(backend.device_info())
    _echo_profile_summary(df, top)
    if out_path is not None:
        path = save_profile(df, out_path, backend.device_info())
        click.echo(f"profile written to {path} (device identity beside it, .device.json)")


def _echo_device(info: dict) -> None:
    click.echo("device: " + ", ".join(f"{k}={v}" for k, v in info.items()))


@kernels.command("show")
@click.argument("profile", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--top", default=15, show_default=True, type=int, help="Rows in the summary.")
def kernels_show(profile, top) -> None:
    """Summarise a profile CSV: top kernels by time per step, achieved fraction of peak."""
    import json

    from ddlsim.kernels.profile import device_info_path, load_profile

    df = load_profile(profile)
    devices = ", ".join(sorted(set(map(str, df["device"]))))
    click.echo(f"{profile}: {len(df)} kernels measured on {devices}")
    sidecar = device_info_path(profile)
    if sidecar.exists():
        try:
            _echo_device(json.loads(sidecar.read_text()))
        except (OSError, ValueError):
            click.echo(f"note: {sidecar} is unreadable; device identity not shown")
    _echo_profile_summary(df, top)


def _echo_profile_summary(df, top: int) -> None:
    summary = api.summarize_profile(df, top=top)
    total = float((df["median_s"] * df["calls_per_step"]).sum())
    click.echo(tables.render(summary, {"median_s": "seconds", "step_s": "seconds",
                                       "share": "pct", "flops_per_s": "flops",
                                       "frac_of_peak": "pct"}))
    click.echo(f"sum of kernel time per training step: {tables.FORMATTERS['seconds'](total)}")


# --------------------------------------------------------------------------- catalog
@cli.command("devices")
@click.option("--sources", is_flag=True, help="Print the source of every number.")
def devices(sources) -> None:
    """List the device catalog (peak FLOP/s, memory, bandwidths)."""
    import pandas as pd

    from ddlsim.sim.hardware import CATALOG

    rows = []
    for key, d in CATALOG.items():
        rows.append({"name": key, "device": d.display_name,
                     "fp32": d.peak_flops_per_s.get("float32", float("nan")),
                     "tf32": d.peak_flops_per_s.get("tf32", float("nan")),
                     "fp16": d.peak_flops_per_s.get("float16", float("nan")),
                     "bf16": d.peak_flops_per_s.get("bfloat16", float("nan")),
                     "memory": d.memory_bytes, "mem_bw": d.memory_bw_bytes_per_s,
                     "nvlink": d.nvlink_bw_bytes_per_s})
    click.echo(tables.render(pd.DataFrame(rows), {
        "fp32": "flops", "tf32": "flops", "fp16": "flops", "bf16": "flops",
        "memory": "bytes", "mem_bw": "rate", "nvlink": "rate"}))
    if sources:
        for key, d in CATALOG.items():
            click.echo(f"\n{key}:")
            for field, src in d.sources.items():
                click.echo(f"  {field}: {src}")


@cli.command("models")
def models() -> None:
    """List the built-in workloads with parameters and forward FLOPs per sample."""
    import pandas as pd

    from ddlsim.sim.workloads import get_workload, list_workloads

    rows = []
    for name in list_workloads():
        w = get_workload(name, 1)
        rows.append({"model": name, "params": f"{w.param_count:,}", "layers": len(w.layers),
                     "fwd FLOP/sample": f"{w.fwd_flops:.4g}",
                     "input": "x".join(map(str, w.input_shape))})
    click.echo(pd.DataFrame(rows).to_string(index=False))


# --------------------------------------------------------------------------- network
@cli.command("collectives")
@click.option("--cluster", default="dgx-a100", show_default=True, help="Cluster preset.")
@click.option("--nodes", default=1, show_default=True, type=int)
@click.option("--gpus-per-node", type=int, help="Default: the preset's.")
@click.option("--op", default="allreduce", show_default=True,
              type=click.Choice(["allreduce", "reduce_scatter", "all_gather", "broadcast",
                                 "sendrecv"]))
@click.option("--algo", default="ring", show_default=True,
              type=click.Choice(["ring", "tree", "hierarchical"]))
@click.option("--min-bytes", default="8M", show_default=True, help="Smallest size (K/M/G).")
@click.option("--max-bytes", default="8G", show_default=True, help="Largest size (K/M/G).")
@click.option("--factor", default=4, show_default=True, type=int,
              help="Size multiplier between rows (nccl-tests -f).")
@click.option("--raw", is_flag=True, help="Line rates, without the NCCL efficiency constants.")
def collectives_cmd(cluster, nodes, gpus_per_node, op, algo, min_bytes, max_bytes, factor,
                    raw) -> None:
    """Print simulated time, algbw and busbw per message size, in nccl-tests' conventions
    (algbw = S/t; allreduce busbw = algbw x 2(n-1)/n), to compare with nccl-tests runs."""
    import pandas as pd

    from ddlsim.sim.collectives import collective_bandwidth_table, nccl_calibrated
    from ddlsim.sim.topology import make_cluster

    spec = make_cluster(cluster, nodes, gpus_per_node)
    if not raw:
        spec = nccl_calibrated(spec)
    lo, hi = _parse_size("min-bytes", min_bytes), _parse_size("max-bytes", max_bytes)
    if factor < 2:
        raise click.BadParameter(f"must be >= 2, got {factor}", param_hint="--factor")
    if lo > hi:
        raise click.BadParameter(f"must not exceed --max-bytes ({max_bytes}), got {min_bytes}",
                                 param_hint="--min-bytes")
    if op == "sendrecv" and spec.num_gpus < 2:
        raise click.BadParameter("sendrecv needs at least two GPUs", param_hint="--op")
    sizes = []
    size = lo
    while size <= hi and len(sizes) < 64:
        sizes.append(size)
        size *= factor
    rows = collective_bandwidth_table(spec, op, sizes, algo=algo)
    df = pd.DataFrame(rows, columns=["size", "time", "algbw", "busbw"])
    click.echo(f"# {op} ({algo}) on {spec.num_gpus} GPUs: {cluster}, {nodes} node(s)"
               f"{' (line rates)' if raw else ' (NCCL-calibrated)'}")
    click.echo(tables.render(df, {"size": "bytes", "time": "seconds", "algbw": "rate",
                                  "busbw": "rate"}))


def _parse_size(name: str, text: str) -> float:
    """``8M`` -> 8 MiB in bytes; a finite size of at least one byte."""
    import math

    mult = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    t = text.strip().upper().removesuffix("B")
    try:
        value = float(t[:-1]) * mult[t[-1]] if t and t[-1] in mult else float(t)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1):
        raise click.BadParameter(f"expected a size of at least 1 byte like 8M or 1G, got "
                                 f"{text!r}", param_hint=f"--{name}")
    return value


# --------------------------------------------------------------------------- sync DP
def _seed_list(text: str) -> list[int]:
    seeds = _number_list("seeds", text)
    bad = [v for v in seeds if not 0 <= v < 2**32]
    if bad:
        raise click.BadParameter(f"seeds must be in [0, 2**32), got {bad[0]}",
                                 param_hint="--seeds")
    return seeds


def _number_list(name: str, text: str, kind: type = int) -> list:
    """Parse ``--name 8,64,512`` into numbers of ``kind`` (int or float)."""
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        what = "integers" if kind is int else "numbers"
        raise click.BadParameter(f"expected {what} separated by commas, got {text!r}",
                                 param_hint=f"--{name}") from None
    if not values:
        raise click.BadParameter("needs at least one value", param_hint=f"--{name}")
    return values


def _pairs(option: str, items: tuple[str, ...], key_type, example: str) -> tuple:
    """Parse repeated ``KEY=FACTOR`` options."""
    out = []
    for item in items:
        key, _, factor = item.partition("=")
        try:
            out.append((key_type(key), float(factor)))
        except ValueError:
            raise click.BadParameter(f"expected {example}, got {item!r}",
                                     param_hint=option) from None
    return tuple(out)


CALIBRATION_OPTION = click.option(
    "--calibration", default="stored", show_default=True,
    help="stored: the constants fitted by 'ddlsim calibrate' (data/calibration.json); "
         "default: first principles; or a calibration .json (added to the stored ones).")


@cli.command("dp")
@click.option("--model", default="resnet50", show_default=True)
@click.option("--batch", default=32, show_default=True, type=int, help="Samples per GPU.")
@click.option("--cluster", default="dgx-a100", show_default=True, help="Cluster preset.")
@click.option("--gpus", default="8", show_default=True,
              help="GPU counts, comma-separated (one run each): 8,64,512.")
@click.option("--dtype", default="float32", show_default=True,
              type=click.Choice(["float32", "tf32", "float16", "bfloat16"]))
@click.option("--iterations", default=20, show_default=True, type=int)
@click.option("--algo", default="auto", show_default=True,
              type=click.Choice(["auto", "ring", "tree", "hierarchical"]))
@click.option("--bucket-mb", default=25.0, show_default=True, type=float)
@click.option("--no-overlap", is_flag=True, help="Allreduce only after the whole backward.")
@click.option("--noise", default="none", show_default=True,
              type=click.Choice(["none", "normal", "lognormal", "gamma"]))
@click.option("--noise-cv", default=0.0, show_default=True, type=float,
              help="Coefficient of variation of per-kernel time noise.")
@click.option("--slow-gpu", multiple=True, help="RANK=FACTOR, e.g. 3=1.5 (repeatable).")
@click.option("--slow-link", multiple=True,
              help="LINK=FACTOR, e.g. nic0.tx=4 divides that link's bandwidth by 4 "
                   "(repeatable; ids in links.csv of a report).")
@click.option("--loader-rate", type=float,
              help="Data-loader samples/s per GPU (default: unlimited).")
@click.option("--profile", type=click.Path(dir_okay=False),
              help="Measured kernel profile CSV (from `ddlsim kernels bench`).")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--trace-iteration", "trace_iters", multiple=True, type=click.IntRange(min=0),
              help="Iteration to export in trace.json (repeatable; default: the last).")
@click.option("--trace-rank", "trace_ranks", multiple=True, type=click.IntRange(min=0),
              help="GPU rank whose streams go in the trace (repeatable; default: 0 and 1).")
@click.option("--max-events", type=click.IntRange(min=1),
              help="Stop a simulation that would exceed this many events (default 50 million).")
@click.option("--out", "out_dir", callback=_check_out, type=click.Path(file_okay=False),
              help="Write the report here.")
@CALIBRATION_OPTION
def dp(model, batch, cluster, gpus, dtype, iterations, algo, bucket_mb, no_overlap, noise,
       noise_cv, slow_gpu, slow_link, loader_rate, profile, seed, trace_iters, trace_ranks,
       max_events, out_dir, calibration) -> None:
    """Predict synchronous data-parallel training (allreduce) throughput and scaling."""
    from ddlsim.reports.dp import summary_frame, write_dp_report

    predictions = []
    counts = _number_list("gpus", gpus)
    if not all(1 <= n <= 1_000_000 for n in counts):
        raise click.BadParameter(f"GPU counts must be in [1, 1000000], got {gpus!r}",
                                 param_hint="--gpus")
    calib = api.load_calibration(calibration)
    for n in counts:
        job = api.Job(
            workload=api.Workload(model), cluster=api.Cluster(
                cluster, n, slow_links=_pairs("--slow-link", slow_link, str,
                                              "LINK=FACTOR like nic0.tx=4")),
            precision=api.Precision(None if dtype == "auto" else dtype),
            batch=api.Batch(micro=batch),
            strategy=api.Strategy(kind="allreduce", algo=algo, bucket_bytes=bucket_mb * 1e6,
                                  overlap=not no_overlap),
            iterations=iterations, seed=seed, noise=noise, noise_cv=noise_cv,
            slow_gpus=_pairs("--slow-gpu", slow_gpu, int, "RANK=FACTOR like 3=1.5"),
            loader_samples_per_s=loader_rate, profile=profile)
        pred = api.predict(job, calib, max_events=max_events,
                           trace=(tuple(trace_iters) or (iterations - 1,),
                                  tuple(trace_ranks) or (0, 1)))
        predictions.append(pred.detail)
    click.echo(calib.describe())
    summary = summary_frame(predictions)
    click.echo(tables.render(summary.drop(columns=["model", "cluster"]), {
        "iteration_s": "seconds", "iteration_p10_s": "seconds", "iteration_p90_s": "seconds",
        "exposed_comm_s": "seconds", "scaling_efficiency": "pct", "gpu_busy_frac": "pct"}))
    if out_dir:
        path = write_dp_report(predictions, out_dir)
        click.echo(f"report written to {path}/report.md")


# --------------------------------------------------------------------------- async PS
NOISE_CHOICE = click.Choice(["none", "normal", "lognormal", "gamma"])


def _summary_table(records: list[dict]) -> str:
    import pandas as pd

    return pd.DataFrame(records).to_string(index=False, float_format=lambda v: f"{v:.4g}")


@cli.command("ps")
@click.option("--model", default="resnet50", show_default=True)
@click.option("--batch", "batch_per_worker", default=32, show_default=True, type=int,
              help="Samples per worker per update.")
@click.option("--cluster", default="dgx-a100", show_default=True, help="Cluster preset.")
@click.option("--workers", default=8, show_default=True, type=GPU_COUNT)
@click.option("--mode", default="asp", show_default=True,
              type=click.Choice(["asp", "ssp", "bsp", "backup"]),
              help="asp: fully asynchronous; ssp: bounded staleness; bsp: synchronous PS; "
                   "backup: sync with backup workers.")
@click.option("--updates", default=200, show_default=True, type=int,
              help="Applied worker gradients to simulate.")
@click.option("--staleness-bound", default=3, show_default=True, type=int, help="SSP bound s.")
@click.option("--backup-workers", default=1, show_default=True, type=int, help="Backup b.")
@click.option("--shards", default=1, show_default=True, type=int, help="Server shards S.")
@click.option("--placement", default="colocated", show_default=True,
              type=click.Choice(["colocated", "hosts"]),
              help="Shards on the workers' nodes or on separate CPU server hosts.")
@click.option("--server-nic-gbps", type=float, help="Server host NIC (Gb/s) for --placement hosts.")
@click.option("--dtype", default="float32", show_default=True,
              type=click.Choice(["float32", "tf32", "float16", "bfloat16"]))
@click.option("--noise", default="none", show_default=True, type=NOISE_CHOICE)
@click.option("--noise-cv", default=0.0, show_default=True, type=float)
@click.option("--slow-worker", multiple=True, help="WORKER=FACTOR (repeatable).")
@click.option("--compare", is_flag=True,
              help="Also compare allreduce vs PS BSP/ASP/SSP/backup, with and without a "
                   "straggler (last worker 2x slower).")
@click.option("--profile", type=click.Path(dir_okay=False), help="Measured kernel profile CSV.")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--max-events", type=click.IntRange(min=1),
              help="Stop a simulation that would exceed this many events (default 50 million).")
@click.option("--out", "out_dir", callback=_check_out, type=click.Path(file_okay=False),
              help="Write the report here.")
def ps_cmd(model, batch_per_worker, cluster, workers, mode, updates, staleness_bound,
           backup_workers, shards, placement, server_nic_gbps, dtype, noise, noise_cv,
           slow_worker, compare, profile, seed, max_events, out_dir) -> None:
    """Predict asynchronous / parameter-server data parallelism: throughput, staleness."""
    from ddlsim.api.async_ps import PSOptions, compare_strategies, predict_ps
    from ddlsim.reports.async_ps import comparison_markdown, write_ps_report

    opts = PSOptions(model=model, batch_per_worker=batch_per_worker, cluster=cluster,
                     workers=workers, dtype=dtype, mode=mode, updates=updates,
                     staleness_bound=staleness_bound, backup_workers=backup_workers,
                     shards=shards, placement=placement, server_nic_Gbps=server_nic_gbps,
                     noise=noise, noise_cv=noise_cv,
                     slow_workers=_pairs("--slow-worker", slow_worker, int,
                                         "WORKER=FACTOR like 3=2"),
                     profile=profile, seed=seed, **_events(max_events))
    pred = predict_ps(opts)
    click.echo(_summary_table([pred.summary()]))
    comparison = None
    if compare:
        comparison = compare_strategies(opts)
        click.echo(comparison_markdown(comparison))
    if out_dir:
        path = write_ps_report([pred], out_dir, comparison=comparison)
        click.echo(f"report written to {path}/report.md")


# --------------------------------------------------------------------------- model parallel
def _pipeline_options(f):
    """The options shared by ``pipeline``, ``place`` and ``3d``."""
    opts = [
        click.option("--model", default="gpt-small", show_default=True),
        click.option("--micro-batch", default=4, show_default=True, type=int,
                     help="Samples per micro-batch."),
        click.option("--cluster", default="dgx-a100", show_default=True),
        click.option("--devices", default="", help="Comma-separated device per stage "
                     "(heterogeneous GPUs), e.g. a100-80gb,l4."),
        click.option("--placement", default="auto", show_default=True,
                     type=click.Choice(["auto", "blocks", "manual"])),
        click.option("--balance", default="", help="Layers per stage for --placement manual, "
                     "e.g. 5,7,7,5."),
        click.option("--dtype", default="float32", show_default=True,
                     type=click.Choice(["float32", "tf32", "float16", "bfloat16"])),
        click.option("--optimizer", default="adam", show_default=True,
                     type=click.Choice(["sgd", "momentum", "adam"])),
        click.option("--recompute", default="none", show_default=True,
                     type=click.Choice(["none", "selective", "full"])),
        click.option("--sequence-parallel", is_flag=True),
        click.option("--max-events", type=click.IntRange(min=1),
                     help="Stop a simulation beyond this many events (default 50 million)."),
        click.option("--out", "out_dir", callback=_check_out, type=click.Path(file_okay=False),
                     help="Write the report here."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _events(max_events) -> dict:
    return {} if max_events is None else {"max_events": max_events}


def _pipeline_kwargs(micro_batch, cluster, devices, placement, balance, dtype, optimizer,
                     recompute, sequence_parallel, max_events=None) -> dict:
    return dict(**_events(max_events), micro_batch=micro_batch, cluster=cluster,
                devices=tuple(d for d in devices.split(",") if d), placement=placement,
                balance=tuple(_number_list("balance", balance)) if balance else (),
                dtype=dtype, optimizer=optimizer, recompute=recompute,
                sequence_parallel=sequence_parallel)


def _echo_pipeline(pred, out_dir) -> None:
    import pandas as pd

    from ddlsim.reports.pipeline import write_pipeline_report

    click.echo(_summary_table([pred.summary()]))
    stages = pd.DataFrame(pred.stages_frame_rows())
    fmt = {c: "bytes" for c in stages.columns if c.endswith("_bytes")}
    fmt.update({c: "seconds" for c in stages.columns if c.endswith("_s")})
    click.echo(tables.render(stages, fmt))
    if not pred.fits:
        click.echo("does not fit: " + "; ".join(pred.suggestions))
    if out_dir:
        path = write_pipeline_report(pred, out_dir)
        click.echo(f"report written to {path}/report.md")


@cli.command("pipeline")
@_pipeline_options
@click.option("--stages", default=4, show_default=True, type=int, help="Pipeline stages p.")
@click.option("--micro-batches", default=8, show_default=True, type=int, help="m per iteration.")
@click.option("--schedule", default="1f1b", show_default=True,
              type=click.Choice(["naive", "gpipe", "1f1b"]))
@click.option("--tp", default=1, show_default=True, type=int, help="Tensor-parallel degree.")
@click.option("--dp", default=1, show_default=True, type=int, help="Pipeline replicas (DP).")
def pipeline_cmd(model, micro_batch, cluster, devices, placement, balance, dtype, optimizer,
                 recompute, sequence_parallel, max_events, out_dir, stages, micro_batches,
                 schedule, tp, dp) -> None:
    """Model parallelism: place layers on GPUs under memory limits and simulate the
    naive, GPipe or 1F1B pipeline schedule (optionally with TP and DP)."""
    from ddlsim.api.pipeline import PipelineOptions, predict_pipeline

    opts = PipelineOptions(model=model, stages=stages, micro_batches=micro_batches,
                           schedule=schedule, tp=tp, dp=dp,
                           **_pipeline_kwargs(micro_batch, cluster, devices, placement, balance,
                                              dtype, optimizer, recompute, sequence_parallel,
                                              max_events))
    _echo_pipeline(predict_pipeline(opts), out_dir)


@cli.command("place")
@_pipeline_options
@click.option("--stages", default=4, show_default=True, type=int, help="Pipeline stages p.")
@click.option("--micro-batches", default=8, show_default=True, type=int)
@click.option("--schedule", default="1f1b", show_default=True,
              type=click.Choice(["naive", "gpipe", "1f1b"]))
def place_cmd(model, micro_batch, cluster, devices, placement, balance, dtype, optimizer,
              recompute, sequence_parallel, max_events, out_dir, stages, micro_batches,
              schedule) -> None:
    """Memory-aware layer placement only: the split, per-stage time and memory, and what
    would fit when it does not (exit status 0 either way)."""
    from ddlsim.api.pipeline import PipelineOptions, place

    opts = PipelineOptions(model=model, stages=stages, micro_batches=micro_batches,
                           schedule=schedule,
                           **_pipeline_kwargs(micro_batch, cluster, devices, placement, balance,
                                              dtype, optimizer, recompute, sequence_parallel,
                                              max_events))
    pred = place(opts)
    import pandas as pd

    stages_df = pd.DataFrame(pred.stages_frame_rows())
    fmt = {c: "bytes" for c in stages_df.columns if c.endswith("_bytes")}
    fmt.update({c: "seconds" for c in stages_df.columns if c.endswith("_s")})
    click.echo(tables.render(stages_df, fmt))
    click.echo(f"placement: {pred.placement_note}")
    if not pred.fits:
        click.echo("does not fit: " + "; ".join(pred.suggestions))


@cli.command("3d")
@_pipeline_options
@click.option("--tp", default=8, show_default=True, type=int)
@click.option("--pp", default=16, show_default=True, type=int)
@click.option("--dp", default=8, show_default=True, type=int)
@click.option("--cp", default=1, show_default=True, type=int,
              help="Context-parallel degree: ring attention over CP GPUs, seq/CP tokens each.")
@click.option("--global-batch", default=512, show_default=True, type=int,
              help="Sequences per iteration.")
@CALIBRATION_OPTION
def three_d_cmd(model, micro_batch, cluster, devices, placement, balance, dtype, optimizer,
                recompute, sequence_parallel, max_events, out_dir, tp, pp, dp, cp,
                global_batch, calibration) -> None:
    """TP x CP x PP x DP of a decoder (GPT, Llama, Nemotron; Megatron style): iteration
    time, tokens/s, TFLOP/s per GPU. Options left unset take Megatron's defaults: GPT-3
    175B, micro-batch 1, the even block split, the GPU's mixed precision (bf16 where it
    has it) with fp32 gradient reduction."""
    ctx = click.get_current_context()

    def unset(name: str) -> bool:
        return ctx.get_parameter_source(name) == click.core.ParameterSource.DEFAULT

    if devices:
        raise click.BadParameter("per-stage devices are a 'ddlsim pipeline' option; 3d runs "
                                 "one device type (the cluster's)", param_hint="--devices")
    calib = api.load_calibration(calibration)
    par = api.Parallelism(tp=tp, pp=pp, cp=cp, dp=dp, recompute=recompute,
                          sequence_parallel=sequence_parallel,
                          placement="blocks" if unset("placement") else placement,
                          balance=tuple(_number_list("balance", balance)) if balance else ())
    job = api.Job(
        workload=api.Workload("gpt3-175b" if unset("model") else model),
        cluster=api.Cluster(cluster, tp * cp * pp * dp), parallelism=par,
        precision=api.Precision(None if unset("dtype") else dtype),
        batch=api.Batch(global_batch=global_batch, micro=1 if unset("micro_batch")
                        else micro_batch),
        strategy=api.Strategy(kind="3d"), optimizer=optimizer)
    pred = api.predict(job, calib, max_events=max_events)
    click.echo(calib.describe())
    click.echo(f"{pred.gpus} x {pred.device}, {job.workload.model}, {pred.dtype}: "
               f"{pred.iteration_s:.3g} s per iteration, {pred.tokens_per_s:,.0f} tokens/s, "
               f"{pred.model_tflops_per_gpu:.1f} model TFLOP/s per GPU (MFU "
               f"{100 * pred.mfu:.1f} %), {pred.memory_bytes / 2**30:.1f} GiB on the fullest "
               f"GPU ({'fits' if pred.fits else 'does not fit'})")
    _echo_pipeline(pred.detail, out_dir)


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
        click.option("--out", "out_dir", callback=_check_out, type=click.Path(file_okay=False)),
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
                 staleness_aware, noise_cv, straggler, seed, out_dir, strategies,
                 target_accuracy, seeds) -> None:
    """Simulate each strategy, then train for real on the 8x8 digits, applying exactly the
    updates (stale gradients included) the simulated system applies: accuracy and loss
    against simulated time, and time-to-accuracy over seeds."""
    from ddlsim.api.convergence import ReplayOptions, StrategyRunOptions, converge_strategies
    from ddlsim.reports.convergence import write_convergence_report

    strag = _pairs("--straggler", (straggler,), int, "WORKER=FACTOR like 7=2")[0] \
        if straggler else None
    opts = ReplayOptions(model=model, batch_per_worker=batch_per_worker, epochs=epochs, lr=lr,
                         lr_policy=lr_policy, momentum=momentum,
                         staleness_aware=staleness_aware, target_accuracy=target_accuracy,
                         seed=seed, seeds=tuple(_seed_list(seeds)),
                         progress=sys.stderr.isatty())
    so = StrategyRunOptions(workers=workers, cluster=cluster, noise_cv=noise_cv,
                            straggler=strag, seed=seed)
    preds = converge_strategies(strategies or ("allreduce", "asp", "ssp"), opts, so)
    rows = [{"strategy": k, **{c: v.summary().get(c) for c in (
        "outcome", "updates", "final_test_acc", "time_to_target_s", "tta_reached",
        "tta_median_s")}}
        for k, v in preds.items()]
    click.echo(_summary_table(rows))
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
                 staleness_aware, noise_cv, straggler, seed, out_dir, strategy, lrs) -> None:
    """Learning-rate sweep on one strategy's update log: too small converges slowly, too
    large oscillates or diverges (reported as an outcome, not an error)."""
    from ddlsim.api.convergence import (
        ReplayOptions,
        StrategyRunOptions,
        lr_sweep_prediction,
        simulated_update_log,
    )
    from ddlsim.reports.convergence import sweep_frame, write_lr_sweep_report

    strag = _pairs("--straggler", (straggler,), int, "WORKER=FACTOR like 7=2")[0] \
        if straggler else None
    so = StrategyRunOptions(workers=workers, cluster=cluster, noise_cv=noise_cv,
                            straggler=strag, seed=seed)
    log, _ = simulated_update_log(strategy, model, batch_per_worker, so)
    opts = ReplayOptions(model=model, batch_per_worker=batch_per_worker, workers=workers,
                         epochs=epochs, lr=lr, lr_policy=lr_policy, momentum=momentum,
                         staleness_aware=staleness_aware, seed=seed)
    results = lr_sweep_prediction(log, opts, _number_list("lrs", lrs, float))
    df = sweep_frame(results)
    cols = [c for c in ("base_lr", "outcome", "final_test_acc", "final_test_loss")
            if c in df.columns]
    click.echo(df[cols].to_string(index=False))
    if out_dir:
        path = write_lr_sweep_report(results, out_dir)
        click.echo(f"report written to {path}/report.md")


# --------------------------------------------------------------------------- planning
@cli.command("plan")
@click.option("--model", required=True, help="Workload to train (see `ddlsim models`).")
@click.option("--target", required=True,
              help="epochs=N | samples=N | tokens=N (GPTs) | accuracy (ResNet-50, from the "
                   "statistical-efficiency model).")
@click.option("--deadline", help="Time limit, e.g. 24h, 3d, 90min.")
@click.option("--budget", help="Cost limit, e.g. 5000USD.")
@click.option("--gpus", default="", help="GPU types, comma-separated (default: every priced "
              "GPU with a cluster preset).")
@click.option("--max-gpus", default=64, show_default=True, type=int)
@click.option("--min-gpus", type=int)
@click.option("--batch-per-gpu", default=32, show_default=True, type=int,
              help="Per-GPU batch for data-parallel models.")
@click.option("--global-batch", default=512, show_default=True, type=int,
              help="Sequences per iteration for GPTs.")
@click.option("--dataset-samples", type=int, help="Training-set size (default: the model's).")
@click.option("--prices", type=click.Path(dir_okay=False),
              help="Price CSV (columns of data/prices.csv) overriding the built-in prices.")
@click.option("--failures/--no-failures", default=False, show_default=True,
              help="Account for GPU failures and checkpointing (Young/Daly interval).")
@click.option("--mtbf-gpu-hours", type=float, help="Per-GPU mean time between failures.")
@click.option("--checkpoint-s", default=60.0, show_default=True, type=float)
@click.option("--restart-s", default=300.0, show_default=True, type=float)
@click.option("--out", "out_dir", callback=_check_out, type=click.Path(file_okay=False),
              help="Write the report here.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def plan_cmd(model, target, deadline, budget, gpus, max_gpus, min_gpus, batch_per_gpu,
             global_batch, dataset_samples, prices, failures, mtbf_gpu_hours, checkpoint_s,
             restart_s, out_dir, as_json) -> None:
    """Capacity planning: time-to-train and cost for GPU types x cluster sizes, the Pareto
    frontier of time vs cost, and the cheapest configuration that meets the deadline."""
    from ddlsim.api.plan import PlanOptions, parse_duration, parse_money, plan
    from ddlsim.reports.plan import write_plan_report

    kw = {} if mtbf_gpu_hours is None else {"mtbf_gpu_hours": mtbf_gpu_hours}
    opts = PlanOptions(model=model, target=target,
                       deadline_s=parse_duration(deadline) if deadline else None,
                       budget_usd=parse_money(budget) if budget else None,
                       gpus=tuple(g.strip() for g in gpus.split(",") if g.strip()),
                       max_gpus=max_gpus, min_gpus=min_gpus, batch_per_gpu=batch_per_gpu,
                       global_batch=global_batch, dataset_samples=dataset_samples,
                       prices_path=prices, include_failures=failures,
                       checkpoint_cost_s=checkpoint_s, restart_s=restart_s, **kw)
    result = plan(opts)
    path = write_plan_report(result, out_dir) if out_dir else None
    if as_json:
        import json

        doc = result.summary()
        if path:
            doc["report"] = str(path / "report.md")
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    cols = [c for c in ("gpu", "gpus", "strategy", "hours", "cost_usd") if c in result.frontier]
    click.echo("Pareto frontier (time vs cost):")
    click.echo(result.frontier[cols].to_string(index=False,
                                               float_format=lambda v: f"{v:,.4g}"))
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
@click.option("--checkpoint-gb", type=float,
              help="Checkpoint size in GB (default: 12 bytes per parameter).")
@click.option("--storage-gbps", type=float, help="Checkpoint write bandwidth (GB/s).")
@click.option("--restart-s", type=float, help="Restart time after a failure (s).")
@click.option("--train-samples", type=float, help="Samples to train (default: 90 epochs).")
@click.option("--method", default="expected", show_default=True,
              type=click.Choice(["expected", "simulate"]),
              help="Closed form (Daly 2006) or seeded failure timelines.")
@click.option("--sweep", is_flag=True, help="Sweep the checkpoint interval around Young/Daly.")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--out", "out_dir", callback=_check_out, type=click.Path(file_okay=False),
              help="Write the sweep report here (with --sweep).")
def faults_cmd(model, batch, cluster, gpus, strategy, gpu_mtbf_hours, node_mtbf_hours,
               link_mtbf_hours, checkpoint_interval_s, checkpoint_gb, storage_gbps, restart_s,
               train_samples, method, sweep, seed, out_dir) -> None:
    """Goodput under GPU/node/link failures with checkpointing: time lost to failures and
    to checkpoints, expected time-to-train; --sweep finds the best checkpoint interval."""
    from ddlsim.api.faults import FaultOptions, checkpoint_interval_sweep, predict_goodput

    if strategy == "allreduce":
        pred = api.predict_dp(api.DPOptions(model=model, batch_per_gpu=batch, cluster=cluster,
                                            gpus=gpus, iterations=5, seed=seed))
    else:
        pred = api.predict_ps(api.PSOptions(model=model, batch_per_worker=batch,
                                            cluster=cluster, workers=gpus,
                                            mode=strategy.removeprefix("ps-"),
                                            updates=4 * gpus, seed=seed))
    given = {"gpu_mtbf_hours": gpu_mtbf_hours, "node_mtbf_hours": node_mtbf_hours,
             "link_mtbf_hours": link_mtbf_hours, "checkpoint_interval_s": checkpoint_interval_s,
             "checkpoint_GB": checkpoint_gb, "storage_GBps": storage_gbps,
             "restart_s": restart_s, "train_samples": train_samples}
    opts = FaultOptions(method=method, seed=seed,
                        **{k: v for k, v in given.items() if v is not None})
    if sweep:
        from ddlsim.reports.faults import write_faults_report

        result = checkpoint_interval_sweep(pred, opts)
        click.echo(result.frame().to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        click.echo(f"best interval {result.best_interval_s:.4g} s; Young/Daly "
                   f"sqrt(2CM) = {result.young_daly_interval_s:.4g} s; Daly "
                   f"{result.daly_interval_s:.4g} s")
        if out_dir:
            path = write_faults_report(result, out_dir)
            click.echo(f"report written to {path}/report.md")
        return
    g = predict_goodput(pred, opts)
    click.echo(_summary_table([{k: v for k, v in g.summary().items() if k in (
        "strategy", "gpus", "samples_per_s", "goodput_samples_per_s", "goodput_fraction",
        "checkpoint_interval_s", "failures", "lost_to_failures_s", "checkpoint_s",
        "time_to_train_s")}]))


# --------------------------------------------------------------------------- scenarios
@cli.group()
def scenarios() -> None:
    """Built-in scenario files (YAML): list them, print one to start your own."""


@scenarios.command("list")
def scenarios_list() -> None:
    """List the built-in scenarios with their descriptions."""
    from ddlsim.scenarios import builtin_names, load_scenario

    for name in builtin_names():
        sc, _ = load_scenario(name)
        first = " ".join(sc.description.split())
        click.echo(f"{name:28s} {first[:100]}")


@scenarios.command("show")
@click.argument("name")
def scenarios_show(name) -> None:
    """Print a built-in scenario's YAML (redirect it to a file to make your own)."""
    from ddlsim.scenarios import scenario_text

    click.echo(scenario_text(name), nl=False)


@cli.command("run")
@click.argument("scenario")
@click.option("--out", "out_dir", callback=_check_out, type=click.Path(file_okay=False),
              help="Report folder (default: out/<scenario name>).")
@click.option("--seed", type=SEED, help="Override the scenario's seed.")
@click.option("--profile", type=click.Path(dir_okay=False),
              help="Measured kernel profile CSV to use instead of the scenario's.")
@click.option("--measure", is_flag=True,
              help="Time the workload's kernels on this machine first and use that profile "
                   "(meaningful for the cpu-cluster preset, or a GPU here of the scenario's "
                   "type).")
@click.option("--device", default="auto", show_default=True, type=DEVICE_CHOICE,
              help="Backend for --measure.")
@click.option("--max-events", type=click.IntRange(min=1),
              help="Stop a simulation that would exceed this many events (default 50 million).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", is_flag=True, help="Print only the report path.")
def run_cmd(scenario, out_dir, seed, profile, measure, device, max_events, as_json,
            quiet) -> None:
    """Simulate every strategy of SCENARIO (a YAML file or a built-in name) and write a
    comparison report (HTML, Markdown, CSV, plots, Perfetto traces)."""
    import tempfile

    from ddlsim.api.run import RunOptions, run_scenario
    from ddlsim.reports.run import write_run_report
    from ddlsim.scenarios import load_scenario

    sc, label = load_scenario(scenario)
    progress = sys.stderr.isatty() and not quiet
    with tempfile.TemporaryDirectory(prefix="ddlsim-profile-") as tmp:
        if measure:
            from ddlsim.kernels.profile import save_profile

            df, backend = api.bench_kernels(api.KernelBenchOptions(
                model=sc.workload.model, batch=sc.workload.batch_per_gpu,
                dtype="float32" if sc.workload.dtype == "tf32" else sc.workload.dtype,
                device=device, progress=progress))
            profile = str(save_profile(df, Path(tmp) / "profile.csv", backend.device_info()))
            if not quiet:
                click.echo(f"measured {len(df)} kernels on {backend.name} ({backend.reason})")
        run = run_scenario(sc, label, RunOptions(seed=seed, profile=profile,
                                                 progress=progress, max_events=max_events))
        run.profile_csv = profile
        path = write_run_report(run, out_dir or Path("out") / sc.name)
    summary = run.summary()
    if as_json:
        import json

        click.echo(json.dumps({"scenario": sc.name, "report": str(path / "report.html"),
                               "strategies": summary.to_dict(orient="records")}, indent=2))
        return
    if not quiet:
        from ddlsim.reports.run import SUMMARY_COLUMNS

        cols = [c for c in SUMMARY_COLUMNS if c in summary.columns]
        click.echo(summary[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    click.echo(f"report: {path / 'report.html'}")


# --------------------------------------------------------------------------- sweeps
@cli.command("sweep")
@click.argument("scenario")
@click.option("--axis", "axes", multiple=True, required=True, metavar="PATH=V1,V2,...",
              help="Scenario field (dotted path, e.g. cluster.gpus) or 'strategy' (labels); "
                   "repeat for a cartesian product.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Local worker processes (default: all cores; 1 runs inline).")
@click.option("--dask", "dask_address", metavar="ADDRESS",
              help="Run points on this Dask scheduler (tcp://host:8786); needs ddlsim[dask].")
@click.option("--out", "out_dir", callback=_check_out, type=click.Path(file_okay=False),
              help="Report folder (default: out/<scenario name>-sweep).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Per-point result cache (default: $DDLSIM_CACHE_DIR or "
                   "~/.cache/ddlsim/sweeps).")
@click.option("--seed", type=SEED, help="Override the scenario's seed for every point.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@click.option("--quiet", is_flag=True, help="Print only the report path.")
def sweep_cmd(scenario, axes, workers, dask_address, out_dir, cache_dir, seed, as_json,
              quiet) -> None:
    """Run SCENARIO over the cartesian product of the axes, in parallel, caching every
    point (an interrupted sweep resumes where it stopped); one table and plots."""
    from ddlsim.api.sweep import SweepOptions, parse_axis, run_sweep
    from ddlsim.reports.sweep import write_sweep_report
    from ddlsim.scenarios import load_scenario

    sc, label = load_scenario(scenario)
    opts = SweepOptions(axes=tuple(parse_axis(a) for a in axes), workers=workers,
                        dask_address=dask_address, cache_dir=cache_dir, seed=seed,
                        progress=sys.stderr.isatty() and not quiet)
    result = run_sweep(sc, label, opts)
    path = write_sweep_report(result, out_dir or Path("out") / f"{sc.name}-sweep")
    if as_json:
        import json

        rows = json.loads(result.table.to_json(orient="records"))  # NaN -> null
        click.echo(json.dumps({"scenario": sc.name, "report": str(path / "report.md"),
                               "points": len(result.points), "computed": result.computed,
                               "cached": result.cached, "discarded": result.discarded,
                               "rows": rows}, indent=2))
        return
    if not quiet:
        from ddlsim.reports.run import SUMMARY_COLUMNS

        axis_cols = [name for name, _ in opts.axes]
        cols = ["point", *axis_cols] + [c for c in SUMMARY_COLUMNS
                                        if c in result.table.columns and c not in axis_cols]
        click.echo(result.table[cols].to_string(index=False,
                                                float_format=lambda v: f"{v:.4g}"))
        click.echo(f"{len(result.points)} points: {result.computed} computed, "
                   f"{result.cached} from the cache, {result.discarded} corrupt entries "
                   "recomputed")
    click.echo(f"report: {path / 'report.md'}")


# --------------------------------------------------------------------------- validation
@cli.command("validate")
@click.option("--reference", type=click.Path(dir_okay=False),
              help="Reference CSV in published.csv's columns (default: the bundled table).")
@click.option("--category", "categories", multiple=True,
              help="Row categories to predict (repeatable; default: all).")
@click.option("--calibration", default="stored", show_default=True,
              help="stored: data/calibration.json; fit: refit on the declared rows now; "
                   "default: first principles; or a calibration .json (added to the stored).")
@click.option("--loso/--no-loso", default=True, show_default=True,
              help="Also predict each source's rows with constants fitted without it.")
@click.option("--out", "out_path", default="docs/validation.md", show_default=True,
              type=click.Path(dir_okay=False),
              help="Markdown report; the scatter plot goes next to it (.png).")
def validate_cmd(reference, categories, calibration, loso, out_path) -> None:
    """Predict published measurements and report predicted vs published errors."""
    from ddlsim import validation

    result = validation.validate(reference, tuple(categories) or None, calibration, loso=loso,
                                 progress=lambda src: click.echo(f"  refitted without {src}",
                                                                 err=True))
    validation.write_report(result, out_path)
    click.echo(result.calibration.describe())
    for s in validation.error_summary(result).to_dict("records"):
        line = f"{s['category']}: {s['expressed']} rows predicted"
        if s["expressed"].split()[0] != "0":
            line += (f"; abs % error median {s['median %']:.1f}, max {s['max %']:.1f}, "
                     f"{s['over 15 %']} above 15%")
            if loso:
                line += f"; leave-one-source-out median {s['LOSO median %']:.1f}"
        click.echo(line)
    for key, bound in sorted(result.at_bounds.items()):
        click.echo(f"warning: fitted constant {key} is at its {bound}: a missing mechanism")
    click.echo(f"report written to {out_path} (plot: {Path(out_path).with_suffix('.png')})")


@cli.command("calibrate")
@click.option("--reference", type=click.Path(dir_okay=False),
              help="Reference CSV (default: the bundled table).")
@click.option("--fit-id", "fit_ids", multiple=True,
              help="Row ids of your table to fit on (repeatable; default: the rows the fit "
                   "rule declares: single-GPU rows, and the smallest pure data-parallel "
                   "configuration of a GPU family/precision with none).")
@click.option("--out", "out_path", default=None, type=click.Path(dir_okay=False),
              help="Where to store the constants (default: print only). Use the file with "
                   "--calibration FILE: it adds to the stored constants.")
def calibrate_cmd(reference, fit_ids, out_path) -> None:
    """Fit the global calibration constants (achieved fraction of peak per GPU family and
    precision, memory-bound efficiency, framework factors) on declared rows."""
    import json

    from ddlsim import validation

    calib = validation.calibrate(reference, tuple(fit_ids), out_path)
    click.echo(json.dumps(calib.to_dict(), indent=2, default=str))
    click.echo(f"calibration: {calib.label}")
    if out_path:
        click.echo(f"calibration written to {out_path}")


# --------------------------------------------------------------------------- demo
@cli.command("demo")
@click.option("--out", "out_dir", callback=_check_out, default="out/demo", show_default=True,
              type=click.Path(file_okay=False))
def demo(out_dir) -> None:
    """The default job: time LeNet's training kernels on this machine, then run the
    built-in scenario digits-sync-vs-async (throughput and time-to-accuracy of allreduce
    vs asynchronous parameter servers, with real training on the 8x8 digits)."""
    from ddlsim.api.run import RunOptions, run_scenario
    from ddlsim.kernels.profile import save_profile
    from ddlsim.reports.run import SUMMARY_COLUMNS, write_run_report
    from ddlsim.scenarios import load_scenario

    out = Path(out_dir)
    progress = sys.stderr.isatty()
    click.echo("1/2 timing LeNet's training kernels on this machine (8x8 digits, batch 16)...")
    df, backend = api.bench_kernels(api.KernelBenchOptions(model="lenet-digits", batch=16,
                                                           progress=progress))
    click.echo(f"backend: {backend.name} ({backend.reason})")
    _echo_profile_summary(df, 6)
    profile = save_profile(df, out / "lenet-digits-profile.csv", backend.device_info())
    click.echo("\n2/2 running scenario digits-sync-vs-async (simulate 3 strategies on 8 GPUs, "
               "then train for real replaying each one's updates)...")
    sc, label = load_scenario("digits-sync-vs-async")
    run = run_scenario(sc, label, RunOptions(progress=progress))
    path = write_run_report(run, out / sc.name)
    summary = run.summary()
    cols = [c for c in SUMMARY_COLUMNS if c in summary.columns]
    click.echo(summary[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    click.echo(f"\nreport: {path / 'report.html'} (also report.md, CSVs, plots, traces)")
    click.echo(f"kernel profile: {profile}")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: expected errors become one line on stderr and exit 1."""
    try:
        cli.main(args=argv, prog_name="ddlsim", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        # One line, like every other expected error; the command's --help has the rest.
        ctx = exc.ctx
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        click.echo(f"error: {exc.format_message()}{where}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DdlsimError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
