"""Plain-text tables for the terminal, with SI values formatted for humans."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from ddlsim import units


def _pct(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


FORMATTERS: dict[str, Callable[[float], str]] = {
    "seconds": units.fmt_seconds,
    "bytes": units.fmt_bytes,
    "rate": units.fmt_rate,
    "flops": units.fmt_flops,
    "pct": _pct,
}


def render(df, formats: Mapping[str, str] | None = None) -> str:
    """Render a DataFrame as aligned text; ``formats`` maps column -> a FORMATTERS key."""
    formats = dict(formats or {})
    view = df.copy()
    for col, kind in formats.items():
        if col in view.columns:
            fmt = FORMATTERS[kind]
            view[col] = [
                "-" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt(v)
                for v in view[col]
            ]
    return view.to_string(index=False)


def cell(v) -> str:
    """One table cell: floats to 4 significant digits, NaN as '-'."""
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def markdown_table(df, columns=None) -> list[str]:
    """Lines of a Markdown table of ``df`` (floats to 4 significant digits, NaN as -)."""
    cols = list(df.columns if columns is None else columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df[cols].itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return lines
