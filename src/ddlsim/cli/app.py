"""The ``ddlsim`` click group and the console-script entry point.

Commands live in the sibling modules (one per family) and register on :data:`cli`; the
package ``__init__`` imports them all. This is the only place that exits.
"""

from __future__ import annotations

import sys

import click

from ddlsim import __version__
from ddlsim.errors import DdlsimError


def _register_catalogs(ctx, param, value):
    """Add the devices and cluster presets of each user catalog file before any command."""
    if value:
        from ddlsim.api.user_catalog import register_user_catalog

        for path in value:
            register_user_catalog(path)
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ddlsim")
@click.option("--catalog", "--devices", "catalogs", multiple=True, envvar="DDLSIM_CATALOG",
              type=click.Path(dir_okay=False, exists=True), callback=_register_catalogs,
              expose_value=False, is_eager=True,
              help="YAML file of your own devices and cluster presets (repeatable; see the "
                   "README's 'Your own devices'); also $DDLSIM_CATALOG.")
def cli() -> None:
    """Predict how deep-learning training behaves on a multi-GPU cluster.

    \b
    Start here:
      ddlsim demo                       time kernels here, compare sync vs async
      ddlsim scenarios list             built-in scenarios; `scenarios show NAME`
      ddlsim run NAME_OR_FILE.yaml      simulate a scenario, write an HTML report
      ddlsim dp --model resnet50 --gpus 8,64,512 --cluster dgx-a100
      ddlsim 3d                         GPT-3 175B on 1024 A100s, Megatron defaults

    Every predicting command uses the stored calibration (say --calibration default
    for first principles) and prints which one it used.
    """


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
