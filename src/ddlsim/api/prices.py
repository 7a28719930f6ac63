"""Prices for :mod:`ddlsim.api.plan`: the packaged price table (``ddlsim/data/prices.csv``),
user rows that replace or extend it, and budget amounts.

The table holds *quotes*: one row per (device, cloud, instance, kind of pricing), each with
its USD per GPU-hour, source and date; a device may have several. :func:`load_prices` picks
one per device, the one ``plan`` and ``run`` use (:func:`choose_price`):

* the cheapest ``on_demand`` quote (ties: the most recent date, then table order);
* a device with no on-demand quote uses its cheapest quote of another kind (capacity block,
  reserved, ...), and ``plan`` says so in its notes;
* the chosen row names its cloud (``provider``, and the ``instance`` text) and, in
  ``choice``, the quotes it was chosen from.

A user file (same columns; ``provider`` optional, so files written for the one-row-per-device
table still load) replaces *all* packaged quotes of each device it names and adds devices.
A device with no quote has no price: ``plan`` skips it with a one-line note.
"""

from __future__ import annotations

import csv
import importlib.resources
import io
import math
import re
from pathlib import Path

from ddlsim.errors import ConfigError

#: Required columns of a price file; ``provider`` (the cloud) is optional.
PRICE_COLUMNS = ("device", "instance", "usd_per_gpu_hour", "pricing", "source", "date")
ON_DEMAND = "on_demand"


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


def _read_price_rows(text: str, where: str) -> dict[str, list[dict]]:
    """Device -> its quotes, in file order; a one-line ConfigError naming the line, the
    column, the rule and the value for a bad row."""
    from ddlsim.sim.hardware import get_device

    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in PRICE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError(f"{where}: missing columns {missing} (needs "
                          f"{', '.join(PRICE_COLUMNS)}; provider is optional)")
    quotes: dict[str, list[dict]] = {}
    seen: set[tuple] = set()
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
        quote = {"device": device, "provider": (row.get("provider") or "").strip(),
                 "instance": (row["instance"] or "").strip(), "usd_per_gpu_hour": price,
                 "pricing": (row["pricing"] or "").strip(), "source": row["source"].strip(),
                 "date": (row["date"] or "").strip()}
        key = (device, quote["provider"], quote["instance"], quote["pricing"], quote["date"])
        if key in seen:
            raise ConfigError(f"{at}: device: {device!r} has this quote twice (same provider, "
                              f"instance, pricing and date: {quote['instance']!r})")
        seen.add(key)
        quotes.setdefault(device, []).append(quote)
    return quotes


def _label(q: dict) -> str:
    who = q["provider"] or q["instance"] or "unnamed"
    return f"{who} ${q['usd_per_gpu_hour']:g}" + (f" ({q['date']})" if q["date"] else "")


def choose_price(quotes: list[dict]) -> dict:
    """The quote ``plan`` uses among one device's ``quotes`` (rule in the module docstring),
    as a copy with ``quotes`` (how many there were) and ``choice`` (which, and from what)."""
    if not quotes:
        raise ConfigError("prices: a device needs at least one quote, got none")
    on_demand = [q for q in quotes if q["pricing"] == ON_DEMAND]
    pool = sorted(on_demand or quotes, key=lambda q: q["date"], reverse=True)  # newest first
    best = min(pool, key=lambda q: q["usd_per_gpu_hour"])  # min keeps the first of ties
    ranked = ", ".join(_label(q) for q in sorted(pool, key=lambda q: q["usd_per_gpu_hour"]))
    n = len(pool)
    text = (f"cheapest of {n} on-demand quote{'s' * (n > 1)}: {ranked}" if on_demand else
            f"no on-demand quote; cheapest of {n}: {ranked}")
    others = [q for q in quotes if q not in pool]
    if others:
        text += "; other pricing, not compared: " + ", ".join(
            f"{_label(q)} {q['pricing'] or 'unstated'}" for q in others)
    return {**best, "quotes": len(quotes), "choice": text}


def price_quotes(path: str | Path | None = None) -> dict[str, list[dict]]:
    """Device -> every quote: the packaged table's, with the devices of ``path`` (same
    columns) replaced by that file's quotes and new devices added."""
    text = importlib.resources.files("ddlsim").joinpath("data/prices.csv").read_text()
    quotes = _read_price_rows(text, "ddlsim/data/prices.csv")
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"prices_path: no such file {str(p)!r}")
        quotes.update(_read_price_rows(p.read_text(), str(p)))
    return quotes


def load_prices(path: str | Path | None = None) -> dict[str, dict]:
    """Device -> the price row used (:func:`choose_price` of :func:`price_quotes`)."""
    return {device: choose_price(qs) for device, qs in price_quotes(path).items()}
