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
shared file system.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddlsim import __version__
from ddlsim.errors import ConfigError, DdlsimError, unknown_name

CACHE_FORMAT = 1
STRATEGY_AXIS = "strategy"
_POINT = "<point>"  # placeholder label stripped from validation messages
DASK_MISSING = "--dask needs the dask extra: pip install 'ddlsim[dask]'"


@dataclass(frozen=True)
class SweepOptions:
    """Options of ``ddlsim sweep``.

    ``axes``: ``((path, (raw value, ...)), ...)`` in command-line order, the last axis
    varying fastest; ``workers``: local worker processes (default ``os.cpu_count()``;
    1 runs inline); ``dask_address``: scheduler address (``tcp://host:8786``) to run the
    points on a Dask distributed cluster instead; ``cache_dir``: folder of per-point
    results (default :func:`default_cache_dir`); ``seed``: overrides the scenario's seed
    for every point; ``progress``: a tqdm bar over points.
    """

    axes: tuple[tuple[str, tuple[str, ...]], ...]
    workers: int | None = None
    dask_address: str | None = None
    cache_dir: Path | None = None
    seed: int | None = None
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


def default_cache_dir() -> Path:
    """``$DDLSIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/ddlsim/sweeps``, else
    ``~/.cache/ddlsim/sweeps``."""
    if os.environ.get("DDLSIM_CACHE_DIR"):
        return Path(os.environ["DDLSIM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ddlsim" / "sweeps"


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


def _profile_digest(doc: dict) -> str | None:
    profile = doc.get("profile")
    if not profile:
        return None
    try:
        return hashlib.sha256(Path(profile).read_bytes()).hexdigest()
    except OSError:
        return None


def point_hash(doc: dict) -> str:
    """SHA-256 of the canonical JSON of a resolved (validated) scenario dict, the ddlsim
    version, the cache format and the digest of its kernel profile file, if any."""
    key = {"scenario": doc, "ddlsim": __version__, "cache_format": CACHE_FORMAT,
           "profile_sha256": _profile_digest(doc)}
    text = json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


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


# --------------------------------------------------------------------------- cache
_SCALARS = (str, int, float, bool, type(None))


def _cache_path(cache_dir: Path, digest: str) -> Path:
    return cache_dir / f"{digest}.json"


def read_cache(cache_dir: Path, digest: str) -> list[dict] | None:
    """The cached rows of a point, ``None`` when absent; a corrupt entry (bad JSON,
    wrong format, hash or row shape) is deleted and ``None`` returned."""
    path = _cache_path(cache_dir, digest)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        text = ""
    rows = _parse_entry(text, digest)
    if rows is None:
        path.unlink(missing_ok=True)
    return rows


def _parse_entry(text: str, digest: str) -> list[dict] | None:
    try:
        entry = json.loads(text)
    except ValueError:
        return None
    if not (isinstance(entry, dict) and entry.get("format") == CACHE_FORMAT
            and entry.get("hash") == digest and isinstance(entry.get("rows"), list)
            and entry["rows"]):
        return None
    rows = entry["rows"]
    keys = None
    for row in rows:
        if not isinstance(row, dict) or not all(isinstance(v, _SCALARS) for v in row.values()):
            return None
        if keys is None:
            keys = list(row)
        elif list(row) != keys:
            return None
    return rows


def write_cache(cache_dir: Path, digest: str, rows: list[dict]) -> Path:
    """Store a point's rows atomically (temporary file + ``os.replace``)."""
    from ddlsim.reports.files import atomic_write_text

    entry = {"format": CACHE_FORMAT, "hash": digest, "ddlsim": __version__, "rows": rows}
    return atomic_write_text(_cache_path(cache_dir, digest), json.dumps(entry, indent=1))


# --------------------------------------------------------------------------- runners
def _native(value: Any) -> Any:
    """NumPy scalars -> Python scalars; anything else non-scalar -> its ``str``."""
    if hasattr(value, "item") and not isinstance(value, _SCALARS):
        value = value.item()
    return value if isinstance(value, _SCALARS) else str(value)


def _one_blas_thread():
    """A context with BLAS limited to one thread: parallel workers then do not
    oversubscribe the cores (OpenBLAS threads spin), and every runner (inline, pool,
    Dask) computes the same floats. threadpoolctl comes with scikit-learn."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn requires it
        from contextlib import nullcontext

        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _run_point(doc: dict, label: str) -> list[dict]:
    """Run one resolved scenario dict; its summary rows as plain JSON-able records.

    Top-level so process pools and Dask can pickle it by reference."""
    from ddlsim.api.run import RunOptions, run_scenario
    from ddlsim.scenarios.schema import Scenario

    sc = Scenario.model_validate(doc)
    with _one_blas_thread():
        summary = run_scenario(sc, label, RunOptions()).summary()
    rows = [{str(k): _native(v) for k, v in rec.items()}
            for rec in summary.to_dict(orient="records")]
    # a JSON round trip makes fresh rows identical to rows read back from the cache
    return json.loads(json.dumps(rows))


def _point_label(label: str, point: SweepPoint) -> str:
    return f"{label} [{point.description}]"


def _run_inline(todo: list[SweepPoint], label: str, on_done) -> None:
    for point in todo:
        on_done(point, _call(point, label))


def _call(point: SweepPoint, label: str) -> list[dict]:
    try:
        return _run_point(point.doc, _point_label(label, point))
    except DdlsimError as exc:
        raise type(exc)(f"sweep point {point.index} ({point.description}): {exc}") from None


# imported once by the fork server, so its workers start without re-importing them
WORKER_PRELOAD = ["ddlsim.api.sweep", "ddlsim.api.run", "ddlsim.scenarios.schema", "pandas",
                  "simpy", "numpy"]


def _mp_context():
    """``forkserver`` (with :data:`WORKER_PRELOAD`) where available, else ``spawn``;
    never ``fork``, which is unsafe once threads (tqdm, Dask) exist."""
    import multiprocessing as mp

    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(WORKER_PRELOAD)
        return ctx
    return mp.get_context("spawn")


def _run_pool(todo: list[SweepPoint], label: str, workers: int, on_done) -> None:
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    with ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context()) as pool:
        futures = {pool.submit(_run_point, p.doc, _point_label(label, p)): p for p in todo}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: futures[f].index):
                    _finish(futures[fut], fut.result, on_done)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _finish(point: SweepPoint, get_rows, on_done) -> None:
    try:
        rows = get_rows()
    except DdlsimError as exc:
        raise type(exc)(f"sweep point {point.index} ({point.description}): {exc}") from None
    on_done(point, rows)


def _run_dask(todo: list[SweepPoint], label: str, address: str, on_done) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ConfigError(DASK_MISSING) from None
    try:
        client = Client(address, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"--dask {address}: cannot connect to the scheduler ({exc})") from None
    try:
        futures = [client.submit(_run_point, p.doc, _point_label(label, p), pure=False,
                                 key=f"ddlsim-point-{p.hash[:16]}-{p.index}") for p in todo]
        by_key = {f.key: p for f, p in zip(futures, todo, strict=True)}
        try:
            with client.as_current():  # as_completed looks the client up
                for fut in as_completed(futures):
                    _finish(by_key[fut.key], fut.result, on_done)
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        client.close()


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
        existed = _cache_path(cache_dir, p.hash).exists()
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
        elif opts.dask_address:
            _run_dask(todo, label, opts.dask_address, on_done)
        elif workers <= 1:
            _run_inline(todo, label, on_done)
        else:
            _run_pool(todo, label, workers, on_done)
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
    return value if isinstance(value, _SCALARS) else json.dumps(value, sort_keys=True)
