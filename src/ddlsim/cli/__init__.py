"""The ``ddlsim`` command line.

The only package that imports click. Commands parse their options into one
:class:`ddlsim.api.Job` (or a scenario), call :mod:`ddlsim.api` and render the result; a
:class:`ddlsim.errors.DdlsimError` becomes a one-line message and exit code 1
(:func:`main`). One module per family of commands registers on the group :data:`cli`.
"""

from ddlsim.cli import (  # noqa: F401  (each module registers its commands)
    catalog,
    converge,
    planning,
    predict,
    scenario,
    search,
    validate,
)
from ddlsim.cli.app import cli, main

__all__ = ["cli", "main"]
