"""Parameter sweeps: what ``ddlsim sweep`` calls.

A sweep is the cartesian product of *axes* applied to one scenario. An axis is a dotted
path into the scenario's dict form (``scenario.model_dump(mode="json")``), e.g.
``cluster.gpus`` or ``strategies.0.bucket_MB``, with a list of values parsed by
``yaml.safe_load`` (``8`` -> int, ``true`` -> bool, ``dgx-a100`` -> str). The special
axis ``strategy`` selects strategies by label: a point with ``strategy=ring`` runs only
the strategy labelled ``ring`` (and ``strategies.0`` then means that strategy).

Order of work:

1. every point's scenario is resolved and re-validated (schema, names, cluster shape)
   before anything runs, so a bad axis value fails at once with one line naming it;
2. points whose result is in the cache are read back (a corrupt entry is discarded);
3. the others run inline (``workers=1``), on a local process pool, or on a Dask
   distributed cluster (``dask_address``); each result is written to the cache as soon
   as it arrives, so an interrupted sweep resumes without recomputing finished points.

Cache: one JSON file per point, ``<cache_dir>/<hash>.json``, where ``hash`` is the
SHA-256 of the canonical JSON of the point's resolved scenario, the ddlsim version, the
cache format and (when the scenario names a kernel profile) the profile file's digest.
Entries are content-addressed, so one cache folder is shared safely by all sweeps. The
default folder is ``$DDLSIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/ddlsim/sweeps``, else
``~/.cache/ddlsim/sweeps``: it lives outside the report folder because report folders are
replaced as a whole (:func:`ddlsim.reports.files.atomic_dir`). The cache is written by
the process that calls :func:`run_sweep` (not by workers), so Dask workers need no
shared file system. The cache lives in :mod:`ddlsim.api.sweep_cache`, the runners in
:mod:`ddlsim.api.sweep_exec`; their public names are re-exported here.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddlsim.api.sweep_cache import (
    CACHE_FORMAT,
    SCALARS,
    cache_path,
    default_cache_dir,
    point_hash,
    read_cache,
    write_cache,
)
from ddlsim.api.sweep_exec import (
    DASK_MISSING,
    WORKER_PRELOAD,
    run_dask,
    run_inline,
    run_point,
    run_pool,
)
from ddlsim.errors import ConfigError, unknown_name

__all__ = [
    "CACHE_FORMAT", "DASK_MISSING", "STRATEGY_AXIS", "WORKER_PRELOAD", "SweepOptions",
    "SweepPoint", "SweepResult", "default_cache_dir", "parse_axis", "point_hash",
    "read_cache", "resolve_points", "run_point", "run_sweep", "write_cache",
]

STRATEGY_AXIS = "strategy"
_POINT = "<point>"  # placeholder label stripped from validation messages


@dataclass(frozen=True)
class SweepOptions:
    """Options of ``ddlsim sweep``.

    ``axes``: ``((path, (raw value, ...)), ...)`` in command-line order, the last axis
    varying fastest; ``workers``: local worker processes (default ``os.cpu_count()``;
    1 runs inline); ``dask_address``: scheduler address (``tcp://host:8786``) to run the
    points on a Dask distributed cluster instead; ``cache_dir``: folder of per-point
    results (default :func:`default_cache_dir`); ``seed``: overrides the scenario's seed
    for every point; ``calibration``: overrides the scenario's calibration for every
    point; ``progress``: a tqdm bar over points.
    """

    axes: tuple[tuple[str, tuple[str, ...]], ...]
    workers: int | None = None
    dask_address: str | None = None
    cache_dir: Path | None = None
    seed: int | None = None
    calibration: str | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers: must be >= 1, got {self.workers}")
        if not self.axes:
            raise ConfigError("axes: a sweep needs at least one --axis PATH=V1,V2,...")


@dataclass(frozen=True)
class SweepPoint:
    """One point: its index, axis values (parsed), resolved scenario dict and hash."""

    index: int
    values: tuple[tuple[str, Any], ...]
    doc: dict
    hash: str

    @property
    def description(self) -> str:
        return ", ".join(f"{p}={_show(v)}" for p, v in self.values)


@dataclass
class SweepResult:
    """The whole sweep: ``table`` has one row per (point, strategy) in point order with
    the columns ``point``, one per axis (named by its path), the scenario-run summary
    columns (SI units) and ``point_hash``."""

    scenario: object
    label: str
    axes: tuple[tuple[str, tuple[Any, ...]], ...]
    points: list[SweepPoint]
    table: Any  # pandas.DataFrame
    cache_dir: Path
    computed: int = 0
    cached: int = 0
    discarded: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def axis_names(self) -> list[str]:
        return [path for path, _ in self.axes]

    def to_csv_text(self) -> str:
        """The table as CSV with a fixed float format (byte-identical for equal sweeps)."""
        from ddlsim.reports.sweep import sweep_csv_text

        return sweep_csv_text(self.table)


# --------------------------------------------------------------------------- axes
def parse_axis(text: str) -> tuple[str, tuple[str, ...]]:
    """``"cluster.gpus=8,64,512"`` -> ``("cluster.gpus", ("8", "64", "512"))``."""
    path, sep, values = text.partition("=")
    path = path.strip()
    raw = tuple(v.strip() for v in values.split(","))
    if not sep or not path or not values.strip() or any(not v for v in raw):
        raise ConfigError(f"--axis {text!r}: expected PATH=V1,V2,... "
                          "(e.g. cluster.gpus=8,64,512)")
    return path, raw


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _parse_value(path: str, raw: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ConfigError(f"--axis {path}: value {raw}: not a valid YAML scalar") from None


def _check_axes(axes) -> None:
    seen = set()
    for path, values in axes:
        if path in seen:
            raise ConfigError(f"--axis {path}: given twice; list all values in one --axis")
        seen.add(path)
        if not values:
            raise ConfigError(f"--axis {path}: needs at least one value")
        dup = sorted({v for v in values if values.count(v) > 1})
        if dup:
            raise ConfigError(f"--axis {path}: value {dup[0]} repeated")


def _set_path(doc: dict, path: str, value: Any) -> None:
    """Set ``value`` at dotted ``path`` in ``doc`` (lists indexed by integers); a missing
    key is created (the schema then rejects it with a did-you-mean)."""
    parts = path.split(".")
    node: Any = doc
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[:depth]) or "(top level)"
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"--axis {path}: {where} is a list of {len(node)}; "
                                  f"{part!r} is not an index in it")
            key: Any = int(part)
        elif isinstance(node, dict):
            key = part
            if key not in node and not last:
                node[key] = {}
        else:
            raise ConfigError(f"--axis {path}: {where} holds a value ({_show(node)}), "
                              "not a section")
        if last:
            node[key] = value
        else:
            node = node[key]


def _unknown_key(path: str, base: dict) -> str | None:
    """A did-you-mean message when ``path`` names a key the scenario's sections lack."""
    node: Any = base
    for depth, part in enumerate(path.split(".")):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            continue
        if not isinstance(node, dict) or part in node:
            node = node.get(part) if isinstance(node, dict) else None
            continue
        known = list(node) + ([STRATEGY_AXIS] if depth == 0 else [])
        return str(unknown_name(f"--axis {path}", part, known, "key"))
    return None


# --------------------------------------------------------------------------- resolve
def _strip(msg: str) -> str:
    return msg[len(_POINT) + 2:] if msg.startswith(_POINT + ": ") else msg


def _validate(doc: dict, check_names: bool, check_shape: bool):
    """Validate a resolved scenario dict with the schema; with ``check_names`` also like
    a file (the loader's name checks, through YAML text: slow), with ``check_shape`` also
    resolve its strategies (cluster shape, faults); returns the Scenario. Errors are
    ConfigError lines without a file label. A point's names all come from axis values
    checked one by one with ``check_names``, so whole points skip it."""
    import yaml
    from pydantic import ValidationError

    from ddlsim.api.run import resolve
    from ddlsim.scenarios.loader import parse_scenario
    from ddlsim.scenarios.schema import Scenario

    sc = None
    try:
        sc = Scenario.model_validate(doc)
    except ValidationError as exc:
        for err in exc.errors():
            if err.get("type") == "extra_forbidden":
                loc = ".".join(str(p) for p in err.get("loc", ()))
                raise ConfigError(f"unknown key {loc}") from None
    try:
        if sc is None or check_names:  # the loader's path: formatted errors, name checks
            sc = parse_scenario(yaml.safe_dump(doc, sort_keys=False), _POINT)
        if check_shape:
            resolve(sc, _POINT)
    except ConfigError as exc:
        raise ConfigError(_strip(str(exc))) from None
    return sc


def _strategy_index(scenario) -> dict[str, int]:
    """Strategy label -> index in the scenario's ``strategies`` list."""
    return {s.label: i for i, s in enumerate(scenario.strategies)}


def _apply(base_doc: dict, labels: dict[str, int], values) -> dict:
    doc = json.loads(json.dumps(base_doc))
    for path, value in values:
        if path == STRATEGY_AXIS:
            doc["strategies"] = [base_doc["strategies"][labels[str(value)]]]
    for path, value in values:
        if path != STRATEGY_AXIS:
            _set_path(doc, path, value)
    return doc


def resolve_points(scenario, label: str, opts: SweepOptions) -> tuple[list[SweepPoint], tuple]:
    """Every point of the sweep, resolved and validated before anything runs.

    Returns ``(points, axes)`` where ``axes`` holds the parsed values. A value that is
    bad on its own fails as ``--axis PATH: value V: reason``; a combination that is bad
    only together names every axis value of the point.
    """
    _check_axes(opts.axes)
    base = scenario.model_dump(mode="json")
    if opts.seed is not None:
        base["seed"] = opts.seed
    if opts.calibration is not None:
        base["calibration"] = opts.calibration
    labels = _strategy_index(scenario)
    axes = tuple((path, raw if path == STRATEGY_AXIS else tuple(_parse_value(path, v) for v in raw))
                 for path, raw in opts.axes)
    for (path, parsed), (_, raw) in zip(axes, opts.axes, strict=True):
        if path == STRATEGY_AXIS:
            for value, text in zip(parsed, raw, strict=True):
                if str(value) not in labels:
                    raise unknown_name("--axis strategy", text, labels, "strategy label")
            continue
        unknown = _unknown_key(path, base)
        for value, text in zip(parsed, raw, strict=True):
            doc = _apply(base, labels, [(path, value)])
            try:
                _validate(doc, check_names=True, check_shape=False)
            except ConfigError as exc:
                if unknown and str(exc).startswith("unknown key"):
                    raise ConfigError(unknown) from None
                raise ConfigError(f"--axis {path}: value {text}: {exc}") from None
    points = []
    for index, combo in enumerate(itertools.product(*(vals for _, vals in axes))):
        values = tuple(zip([p for p, _ in axes], combo, strict=True))
        doc = _apply(base, labels, values)
        try:
            sc = _validate(doc, check_names=False, check_shape=True)
        except ConfigError as exc:
            raise ConfigError(_blame(base, labels, values, str(exc))) from None
        resolved = sc.model_dump(mode="json")
        points.append(SweepPoint(index, values, resolved, point_hash(resolved)))
    return points, axes


def _blame(base: dict, labels: dict, values, reason: str) -> str:
    """Name the single axis value that fails on its own, else the whole combination."""
    for path, value in values:
        try:
            _validate(_apply(base, labels, [(path, value)]), check_names=False,
                      check_shape=True)
        except ConfigError:
            return f"--axis {path}: value {_show(value)}: {reason}"
    combo = ", ".join(f"{p}={_show(v)}" for p, v in values)
    return f"--axis {combo}: this combination is invalid: {reason}"


# --------------------------------------------------------------------------- sweep
def run_sweep(scenario, label: str, opts: SweepOptions) -> SweepResult:
    """Run the cartesian product of ``opts.axes`` over ``scenario``.

    ``label`` names the scenario (file or built-in) in messages. All points are
    validated first; cached points are read back, the rest run inline, on a process
    pool or on Dask, and are cached as they finish (so Ctrl-C loses no finished point).
    """
    from tqdm.auto import tqdm

    points, axes = resolve_points(scenario, label, opts)
    cache_dir = Path(opts.cache_dir) if opts.cache_dir is not None else default_cache_dir()
    results: dict[str, list[dict]] = {}
    discarded = 0
    for p in points:
        if p.hash in results:
            continue
        existed = cache_path(cache_dir, p.hash).exists()
        rows = read_cache(cache_dir, p.hash)
        if rows is not None:
            results[p.hash] = rows
        elif existed:
            discarded += 1
    todo = list({p.hash: p for p in points if p.hash not in results}.values())
    n_cached = len(points) - sum(1 for p in points if p.hash not in results)
    bar = tqdm(total=len(points), initial=n_cached, desc=f"sweep {scenario.name}",
               unit="point", disable=not opts.progress, leave=False)
    dupes = {h: sum(1 for p in points if p.hash == h) for h in {p.hash for p in todo}}

    def on_done(point: SweepPoint, rows: list[dict]) -> None:
        write_cache(cache_dir, point.hash, rows)
        results[point.hash] = rows
        bar.update(dupes[point.hash])

    workers = min(opts.workers or os.cpu_count() or 1, max(len(todo), 1))
    try:
        if not todo:
            pass
        elif opts.dask_address:  # run_point looked up here, so tests can replace it
            run_dask(todo, label, opts.dask_address, on_done, run_point)
        elif workers <= 1:
            run_inline(todo, label, on_done, run_point)
        else:
            run_pool(todo, label, workers, on_done, run_point)
    finally:
        bar.close()
    table = _table(points, axes, results)
    return SweepResult(scenario=scenario, label=label, axes=axes, points=points, table=table,
                       cache_dir=cache_dir, computed=len(todo), cached=n_cached,
                       discarded=discarded)


def _table(points: list[SweepPoint], axes, results: dict[str, list[dict]]):
    """One row per (point, summary row) in point order: point, axes, summary, hash."""
    import pandas as pd

    axis_names = [path for path, _ in axes]
    rows = []
    for p in points:
        for rec in results[p.hash]:
            row: dict[str, Any] = {"point": p.index}
            row.update({path: _cell(v) for path, v in p.values})
            row.update({k: v for k, v in rec.items() if k not in axis_names and k != "point"})
            row["point_hash"] = p.hash
            rows.append(row)
    return pd.DataFrame(rows)


def _cell(value: Any) -> Any:
    return value if isinstance(value, SCALARS) else json.dumps(value, sort_keys=True)
