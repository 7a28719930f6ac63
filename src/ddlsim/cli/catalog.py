"""Catalog and measurement commands: ``kernels bench|show``, ``devices``, ``models``,
``collectives``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ddlsim import api
from ddlsim.cli.app import cli
from ddlsim.cli.options import DEVICE_CHOICE, JSON, KERNEL_DTYPE, echo_json, parse_size
from ddlsim.reports import tables


# --------------------------------------------------------------------------- kernels
@cli.group()
def kernels() -> None:
    """Measure the real training kernels on this machine's CPU or GPU."""


@kernels.command("bench")
@click.option("--model", default="lenet5", show_default=True,
              help="Built-in workload whose training step is timed (see `ddlsim models`).")
@click.option("--batch", default=32, show_default=True, type=int, help="Samples per step.")
@click.option("--dtype", default="float32", show_default=True, type=KERNEL_DTYPE)
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
    echo_device(backend.device_info())
    echo_profile_summary(df, top)
    if out_path is not None:
        path = save_profile(df, out_path, backend.device_info())
        click.echo(f"profile written to {path} (device identity beside it, .device.json)")


def echo_device(info: dict) -> None:
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
            echo_device(json.loads(sidecar.read_text()))
        except (OSError, ValueError):
            click.echo(f"note: {sidecar} is unreadable; device identity not shown")
    echo_profile_summary(df, top)


def echo_profile_summary(df, top: int) -> None:
    """The top kernels of a profile by time per step, and the step's kernel total."""
    summary = api.summarize_profile(df, top=top)
    total = float((df["median_s"] * df["calls_per_step"]).sum())
    click.echo(tables.render(summary, {"median_s": "seconds", "step_s": "seconds",
                                       "share": "pct", "flops_per_s": "flops",
                                       "frac_of_peak": "pct"}))
    click.echo(f"sum of kernel time per training step: {tables.FORMATTERS['seconds'](total)}")


# --------------------------------------------------------------------------- catalog
@cli.command("devices")
@click.option("--sources", is_flag=True, help="Print the source of every number.")
@JSON
def devices(sources, as_json) -> None:
    """List the device catalog (dense peak FLOP/s per precision, memory, bandwidths)."""
    from ddlsim.api.catalog import device_sources, device_table

    df = device_table()
    if as_json:
        echo_json({"devices": df.to_dict(orient="records"),
                   **({"sources": device_sources()} if sources else {})})
        return
    click.echo(tables.render(df, {
        "fp32": "flops", "tf32": "flops", "fp16": "flops", "bf16": "flops", "fp8": "flops",
        "memory": "bytes", "mem_bw": "rate", "nvlink": "rate"}))
    if sources:
        for key, fields in device_sources().items():
            click.echo(f"\n{key}:")
            for field, src in fields.items():
                click.echo(f"  {field}: {src}")


@cli.command("models")
@JSON
def models(as_json) -> None:
    """List the built-in workloads with parameters and forward FLOPs per sample."""
    from ddlsim.api.catalog import model_table

    df = model_table()
    if as_json:
        echo_json({"models": df.to_dict(orient="records")})
        return
    df["params"] = [f"{v:,}" for v in df["params"]]
    df["fwd_flops_per_sample"] = [f"{v:.4g}" for v in df["fwd_flops_per_sample"]]
    click.echo(df.rename(columns={"fwd_flops_per_sample": "fwd FLOP/sample"})
               .to_string(index=False))


# --------------------------------------------------------------------------- network
@cli.command("collectives")
@click.option("--cluster", default="dgx-a100", show_default=True, help="Cluster preset.")
@click.option("--nodes", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--gpus-per-node", type=click.IntRange(min=1), help="Default: the preset's.")
@click.option("--op", default="allreduce", show_default=True,
              type=click.Choice(["allreduce", "reduce_scatter", "all_gather", "broadcast",
                                 "alltoall", "sendrecv"]))
@click.option("--algo", default="ring", show_default=True,
              type=click.Choice(["ring", "tree", "hierarchical"]),
              help="Allreduce algorithm (alltoall has one: concurrent point-to-point sends).")
@click.option("--min-bytes", default="8M", show_default=True, help="Smallest size (K/M/G).")
@click.option("--max-bytes", default="8G", show_default=True, help="Largest size (K/M/G).")
@click.option("--factor", default=4, show_default=True, type=int,
              help="Size multiplier between rows (nccl-tests -f).")
@click.option("--raw", is_flag=True, help="Line rates, without the NCCL efficiency constants.")
@JSON
def collectives_cmd(cluster, nodes, gpus_per_node, op, algo, min_bytes, max_bytes, factor,
                    raw, as_json) -> None:
    """Print simulated time, algbw and busbw per message size, in nccl-tests' conventions
    (algbw = S/t; allreduce busbw = algbw x 2(n-1)/n), to compare with nccl-tests runs."""
    from ddlsim.api.catalog import collective_table

    lo, hi = parse_size("min-bytes", min_bytes), parse_size("max-bytes", max_bytes)
    if factor < 2:
        raise click.BadParameter(f"must be >= 2, got {factor}", param_hint="--factor")
    if lo > hi:
        raise click.BadParameter(f"must not exceed --max-bytes ({max_bytes}), got {min_bytes}",
                                 param_hint="--min-bytes")
    sizes = []
    size = lo
    while size <= hi and len(sizes) < 64:
        sizes.append(size)
        size *= factor
    from ddlsim.errors import ConfigError

    try:
        df, gpus = collective_table(cluster, nodes, gpus_per_node, op, algo, sizes, raw)
    except ConfigError as exc:
        if str(exc).startswith("op: "):
            raise click.BadParameter(str(exc).removeprefix("op: "), param_hint="--op") from None
        raise
    algo = "p2p" if op == "alltoall" else algo
    if as_json:
        echo_json({"op": op, "algo": algo, "gpus": gpus, "cluster": cluster,
                   "calibrated": not raw, "rows": df.to_dict(orient="records")})
        return
    click.echo(f"# {op} ({algo}) on {gpus} GPUs: {cluster}, {nodes} node(s)"
               f"{' (line rates)' if raw else ' (NCCL-calibrated)'}")
    click.echo(tables.render(df, {"size": "bytes", "time": "seconds", "algbw": "rate",
                                  "busbw": "rate"}))
