"""Validation: predict published measurements through the one prediction path and report.

``reference`` reads a table, ``rows`` turns each row into the job it measured (from its
columns and free text alone, recording every assumption), ``metrics`` reads the row's
metric off a prediction, ``fit`` fits the global constants on the rows a rule declares,
``compare`` predicts and compares (stored, default and leave-one-source-out constants),
``render`` writes the Markdown report and its plot.
"""

from ddlsim.validation.compare import (
    CATEGORIES,
    ValidationResult,
    calibrate,
    error_summary,
    read_rows,
    validate,
)
from ddlsim.validation.reference import DEFAULT_REFERENCE, load_reference
from ddlsim.validation.render import render_markdown, write_report

__all__ = ["CATEGORIES", "DEFAULT_REFERENCE", "ValidationResult", "calibrate",
           "error_summary", "load_reference", "read_rows", "render_markdown", "validate",
           "write_report"]
