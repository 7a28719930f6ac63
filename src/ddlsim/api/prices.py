"""Prices for :mod:`ddlsim.api.plan`: the packaged per-device price table
(``ddlsim/data/prices.csv``), user rows that replace or extend it, and budget amounts."""

from __future__ import annotations

import csv
import importlib.resources
import io
import math
import re
from pathlib import Path

from ddlsim.errors import ConfigError

PRICE_COLUMNS = ("device", "instance", "usd_per_gpu_hour", "pricing", "source", "date")


def parse_money(text: str) -> float:
    """``"5000USD"``, ``"$5000"``, ``"5e3 usd"``, ``"5000"`` -> US dollars."""
    m = re.fullmatch(r"\s*\$?\s*([0-9]*\.?[0-9]+(?:[eE][+-]?\d+)?)\s*(usd)?\s*", str(text),
                     flags=re.IGNORECASE)
    if not m:
        raise ConfigError(f"budget: must be an amount in USD, e.g. 5000USD or $5000, "
                          f"got {text!r}")
    value = float(m.group(1))
    if not value > 0:
        raise ConfigError(f"budget: must be > 0, got {text!r}")
    return value



def _read_price_rows(text: str, where: str) -> dict[str, dict]:
    from ddlsim.sim.hardware import get_device

    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in PRICE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError(f"{where}: missing columns {missing} (needs "
                          f"{', '.join(PRICE_COLUMNS)})")
    rows: dict[str, dict] = {}
    for i, row in enumerate(reader, start=2):
        at = f"{where} line {i}"
        try:
            device = get_device((row["device"] or "").strip()).name
        except ConfigError as err:
            raise ConfigError(f"{at}: device: {err}") from None
        try:
            price = float(row["usd_per_gpu_hour"])
        except (TypeError, ValueError):
            price = float("nan")
        if not (price > 0 and math.isfinite(price)):
            raise ConfigError(f"{at}: usd_per_gpu_hour: must be a finite number > 0, "
                              f"got {row['usd_per_gpu_hour']!r}")
        if not (row["source"] or "").strip():
            raise ConfigError(f"{at}: source: every price needs a source, got an empty cell")
        if device in rows:
            raise ConfigError(f"{at}: device: {device!r} appears twice (one price per device)")
        rows[device] = {"device": device, "instance": row["instance"] or "",
                        "usd_per_gpu_hour": price, "pricing": row["pricing"] or "",
                        "source": row["source"].strip(), "date": row["date"] or ""}
    return rows


def load_prices(path: str | Path | None = None) -> dict[str, dict]:
    """Device -> price row: the packaged table, with the rows of ``path`` (same columns)
    replacing those of the same device and adding new ones."""
    text = importlib.resources.files("ddlsim").joinpath("data/prices.csv").read_text()
    rows = _read_price_rows(text, "ddlsim/data/prices.csv")
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"prices_path: no such file {str(p)!r}")
        rows.update(_read_price_rows(p.read_text(), str(p)))
    return rows
