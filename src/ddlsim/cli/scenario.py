"""Scenario commands: ``scenarios list|show``, ``run``, ``sweep`` and ``demo``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ddlsim import api
from ddlsim.cli.app import cli
from ddlsim.cli.catalog import echo_profile_summary
from ddlsim.cli.options import DEVICE_CHOICE, MAX_EVENTS, SCENARIO_CALIBRATION, SEED, check_out


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
@click.option("--out", "out_dir", callback=check_out, type=click.Path(file_okay=False),
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
@MAX_EVENTS
@SCENARIO_CALIBRATION
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", is_flag=True, help="Print only the report path.")
def run_cmd(scenario, out_dir, seed, profile, measure, device, max_events, calibration,
            as_json, quiet) -> None:
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
                dtype="float32" if sc.workload.dtype in (None, "tf32") else sc.workload.dtype,
                device=device, progress=progress))
            profile = str(save_profile(df, Path(tmp) / "profile.csv", backend.device_info()))
            if not quiet:
                click.echo(f"measured {len(df)} kernels on {backend.name} ({backend.reason})")
        run = run_scenario(sc, label, RunOptions(seed=seed, profile=profile,
                                                 progress=progress, max_events=max_events,
                                                 calibration=calibration))
        run.profile_csv = profile
        path = write_run_report(run, out_dir or Path("out") / sc.name)
    summary = run.summary()
    if as_json:
        import json

        click.echo(json.dumps({"scenario": sc.name, "report": str(path / "report.html"),
                               "strategies": summary.to_dict(orient="records")}, indent=2))
        return
    if not quiet:
        _echo_summary(run)
    click.echo(f"report: {path / 'report.html'}")


def _echo_summary(run) -> None:
    """The calibration, one headline per strategy, the summary in human units."""
    from ddlsim.reports.headline import headline, human_table
    from ddlsim.reports.run import SUMMARY_COLUMNS

    summary = run.summary()
    click.echo(run.results[0].predicted.calibration.describe())
    for w in dict.fromkeys(w for r in run.results for w in r.predicted.warnings):
        click.echo(f"warning: {w}", err=True)
    for row in summary.to_dict("records"):
        click.echo(headline(row))
    cols = [c for c in SUMMARY_COLUMNS if c in summary.columns]
    click.echo(human_table(summary[cols]).to_string(index=False))


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
@click.option("--out", "out_dir", callback=check_out, type=click.Path(file_okay=False),
              help="Report folder (default: out/<scenario name>-sweep).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Per-point result cache (default: $DDLSIM_CACHE_DIR or "
                   "~/.cache/ddlsim/sweeps).")
@click.option("--seed", type=SEED, help="Override the scenario's seed for every point.")
@SCENARIO_CALIBRATION
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@click.option("--quiet", is_flag=True, help="Print only the report path.")
def sweep_cmd(scenario, axes, workers, dask_address, out_dir, cache_dir, seed, calibration,
              as_json, quiet) -> None:
    """Run SCENARIO over the cartesian product of the axes, in parallel, caching every
    point (an interrupted sweep resumes where it stopped); one table and plots."""
    from ddlsim.api.sweep import SweepOptions, parse_axis, run_sweep
    from ddlsim.reports.sweep import write_sweep_report
    from ddlsim.scenarios import load_scenario

    sc, label = load_scenario(scenario)
    opts = SweepOptions(axes=tuple(parse_axis(a) for a in axes), workers=workers,
                        dask_address=dask_address, cache_dir=cache_dir, seed=seed,
                        calibration=calibration,
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
        click.echo(api.load_calibration(calibration if calibration is not None
                                        else sc.calibration).describe())
        click.echo(result.table[cols].to_string(index=False,
                                                float_format=lambda v: f"{v:.4g}"))
        click.echo(f"{len(result.points)} points: {result.computed} computed, "
                   f"{result.cached} from the cache, {result.discarded} corrupt entries "
                   "recomputed")
    click.echo(f"report: {path / 'report.md'}")


# --------------------------------------------------------------------------- demo
@cli.command("demo")
@click.option("--out", "out_dir", callback=check_out, default="out/demo", show_default=True,
              type=click.Path(file_okay=False))
def demo(out_dir) -> None:
    """The default job, three labelled parts: (1) a capacity question, simulated: ResNet-50
    for 90 epochs on 32 rented V100s, allreduce vs parameter servers vs a pipeline, time
    and cost; (2) real training on the 8x8 digits replaying simulated sync and async
    updates (time-to-accuracy); (3) this machine's kernels, timed."""
    from ddlsim.api.run import RunOptions, run_scenario
    from ddlsim.kernels.profile import save_profile
    from ddlsim.reports.run import write_run_report
    from ddlsim.scenarios import load_scenario

    out = Path(out_dir)
    progress = sys.stderr.isatty()
    sc, label = load_scenario("resnet50-cloud-strategies")
    import textwrap

    click.echo("1/3 Simulated from the device catalog and the stored calibration:")
    click.echo(textwrap.fill(" ".join(sc.description.split()), width=92,
                             initial_indent="    ", subsequent_indent="    "))
    run = run_scenario(sc, label, RunOptions(progress=progress))
    paths = [write_run_report(run, out / sc.name)]
    _echo_summary(run)
    _echo_answer(run)
    sc, label = load_scenario("digits-sync-vs-async")
    click.echo("\n2/3 Real training on this machine: LeNet on the 8x8 digits, each strategy's "
               f"simulated update log ({sc.cluster.gpus} x GPU) replayed with real "
               "gradients, stale ones included...")
    run = run_scenario(sc, label, RunOptions(progress=progress))
    paths.append(write_run_report(run, out / sc.name))
    _echo_summary(run)
    click.echo("\n3/3 Timing LeNet's training kernels on this machine (batch 16)...")
    df, backend = api.bench_kernels(api.KernelBenchOptions(model="lenet-digits", batch=16,
                                                           progress=progress))
    click.echo(f"backend: {backend.name} ({backend.reason})")
    echo_profile_summary(df, 6)
    profile = save_profile(df, out / "lenet-digits-profile.csv", backend.device_info())
    click.echo("These timings are this machine's; parts 1 and 2 simulate catalog GPUs. To "
               "simulate with what you measure, run a scenario on the cpu-cluster preset "
               "with --measure (or pass --profile to a GPU you measured).")
    click.echo("\nreports: " + ", ".join(str(p / "report.html") for p in paths)
               + " (also report.md, CSVs, plots)")
    click.echo(f"kernel profile: {profile}")


def _echo_answer(run) -> None:
    """The fastest and the cheapest strategy that fit, in one line each."""
    rows = [r for r in run.summary().to_dict("records") if r.get("fits") is not False]
    timed = [r for r in rows if r.get("time_to_train_s") == r.get("time_to_train_s")
             and r.get("time_to_train_s") is not None]
    if not timed:
        return
    from ddlsim.reports.headline import duration

    fast = min(timed, key=lambda r: r["time_to_train_s"])
    line = f"answer: fastest is {fast['strategy']}, {duration(fast['time_to_train_s'])}"
    cost = fast.get("cost_usd")
    if cost == cost and cost is not None:
        line += f" for ${cost:,.0f} ({fast['price_source']})"
    click.echo(line)
