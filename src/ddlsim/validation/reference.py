"""Reading a reference table: the CSV, its required columns, and what identifies a row
without its id (a fingerprint of its measurement columns, and the group of its source)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ddlsim.errors import ConfigError

#: The bundled reference table.
DEFAULT_REFERENCE = Path(__file__).resolve().parents[1] / "data" / "published.csv"

#: Columns a reference CSV must have (``source``, ``parallelism``, ``notes`` are optional).
REQUIRED_COLUMNS = ("id", "category", "model", "gpu", "num_gpus", "nodes", "interconnect",
                    "precision", "global_batch", "micro_batch", "metric", "value", "unit")
OPTIONAL_COLUMNS = ("source", "parallelism", "notes")

#: Columns that define a measurement (everything but its id, source and notes).
_FINGERPRINT = ("category", "model", "gpu", "num_gpus", "nodes", "interconnect", "precision",
                "parallelism", "global_batch", "micro_batch", "metric", "value", "unit")


def load_reference(path: str | Path | None = None) -> pd.DataFrame:
    """Read a reference CSV (default: the bundled table) as strings; optional columns are
    added empty. ConfigError for a missing file, an unreadable table or a missing column."""
    path = Path(path) if path is not None else DEFAULT_REFERENCE
    if not path.is_file():
        raise ConfigError(f"reference: file not found: {path}")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"reference {path}: not a readable CSV table ({first})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ConfigError(f"reference {path}: missing column {missing[0]!r} "
                          f"(needs {', '.join(REQUIRED_COLUMNS)})")
    for optional in OPTIONAL_COLUMNS:
        if optional not in df.columns:
            df[optional] = ""
    return df


def fingerprint(row: Mapping[str, object]) -> str:
    """A row's identity from its measurement columns (not its id, source or notes)."""
    text = "|".join(str(row.get(c, "")).strip() for c in _FINGERPRINT)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def configuration_key(row: Mapping[str, object]) -> str:
    """Rows of one configuration (same run, other metrics) share this key."""
    cols = ("model", "gpu", "num_gpus", "nodes", "interconnect", "precision", "parallelism",
            "global_batch", "micro_batch")
    return "|".join(str(row.get(c, "")).strip() for c in cols)


def source_group(row: Mapping[str, object]) -> str:
    """The publication a row comes from: its ``source`` text up to the first bracket,
    semicolon or 'Table'/'issue' detail (rows of one paper or repository share it); the
    empty string when no source is given."""
    text = str(row.get("source", "")).strip()
    text = re.split(r"[;(\[]| Table\b| issues? #| docs/| README", text)[0]
    return re.sub(r"\s+", " ", text).strip()[:60]
