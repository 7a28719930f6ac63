"""The ``ddlsim`` command line.

The only module that imports click and the only place that exits. Commands parse their
options, call a pure function from :mod:`ddlsim.api` (or a part's API), and render the
result; a :class:`ddlsim.errors.DdlsimError` becomes a one-line message and exit code 1.
"""

from __future__ import annotations

import sys

import click

from ddlsim import __version__
from ddlsim.errors import DdlsimError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ddlsim")
def cli() -> None:
    """Predict how deep-learning training behaves on a multi-GPU cluster."""


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
