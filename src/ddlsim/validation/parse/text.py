"""Text helpers every cell parser shares: a cell as text, separators collapsed, and the
earliest of several pattern matches."""

from __future__ import annotations

import re


def cell_text(value: object) -> str:
    """``value`` as text; None and NaN are empty."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def spaced(value: object) -> str:
    """Lower case, every run of separators (space, ``_``, ``-``, ``/``, ``.``) one space."""
    return " " + re.sub(r"[\s_\-/.]+", " ", cell_text(value).lower()).strip() + " "


def first(patterns: list[str], text: str) -> re.Match[str] | None:
    """The earliest match of any of ``patterns`` in ``text`` (case-insensitive)."""
    hits = [m for p in patterns if (m := re.search(p, text, re.I))]
    return min(hits, key=lambda m: m.start()) if hits else None
