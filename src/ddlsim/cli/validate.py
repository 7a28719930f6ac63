"""Validation commands: ``validate`` (predict published measurements) and ``calibrate``
(fit the global constants on declared rows)."""

from __future__ import annotations

from pathlib import Path

import click

from ddlsim.cli.app import cli


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


