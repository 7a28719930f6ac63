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
DTYPE_CHOICE = click.Choice(["float32", "float16", "bfloat16"])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ddlsim")
def cli() -> None:
    """Predict how deep-learning training behaves on a multi-GPU cluster."""


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
    _echo_profile_summary(df, top)
    if out_path is not None:
        path = save_profile(df, out_path)
        click.echo(f"profile written to {path}")


@kernels.command("show")
@click.argument("profile", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--top", default=15, show_default=True, type=int, help="Rows in the summary.")
def kernels_show(profile, top) -> None:
    """Summarise a profile CSV: top kernels by time per step, achieved fraction of peak."""
    from ddlsim.kernels.profile import load_profile

    df = load_profile(profile)
    devices = ", ".join(sorted(set(map(str, df["device"]))))
    click.echo(f"{profile}: {len(df)} kernels measured on {devices}")
    _echo_profile_summary(df, top)


def _echo_profile_summary(df, top: int) -> None:
    summary = api.summarize_profile(df, top=top)
    total = float((df["median_s"] * df["calls_per_step"]).sum())
    click.echo(tables.render(summary, {"median_s": "seconds", "step_s": "seconds",
                                       "share": "pct", "flops_per_s": "flops",
                                       "frac_of_peak": "pct"}))
    click.echo(f"sum of kernel time per training step: {tables.FORMATTERS['seconds'](total)}")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: expected errors become one line on stderr and exit 1."""
    try:
        cli.main(args=argv, prog_name="ddlsim", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DdlsimError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
