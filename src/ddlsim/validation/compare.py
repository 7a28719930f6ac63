"""Predicted vs published for every row of a reference table, through the one prediction
path, with the stored, default, freshly fitted and leave-one-source-out calibrations."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from ddlsim.api.calibration import DEFAULT_CALIBRATION, Calibration, load_calibration
from ddlsim.api.predict import predict
from ddlsim.errors import ConfigError, DdlsimError
from ddlsim.validation.fit import FIT_RULE, at_bounds, fit, fit_rows
from ddlsim.validation.metrics import abs_pct, predicted_value
from ddlsim.validation.reference import fingerprint, load_reference, source_group
from ddlsim.validation.rows import RowRun, read_row

#: Categories of performance rows (others, such as hardware specs or prices, are data).
CATEGORIES = ("data_parallel", "llm_3d_parallel", "pipeline_parallel", "async_vs_sync",
              "collectives", "time_to_train")
COLUMNS = ["id", "category", "source", "model", "gpu", "num_gpus", "precision", "metric",
           "unit", "published", "predicted", "abs_pct_error", "predicted_default",
           "abs_pct_error_default", "predicted_loso", "abs_pct_error_loso", "status",
           "reason", "used_for_fit"]


@dataclass
class ValidationResult:
    """One row per reference row of the chosen categories (:data:`COLUMNS`)."""

    rows: pd.DataFrame
    calibration: Calibration
    categories: tuple[str, ...]
    reference: str
    at_bounds: dict[str, str] = field(default_factory=dict)
    loso: bool = False


class _Predictor:
    """Predictions of row runs under a calibration, each distinct job simulated once."""

    def __init__(self, calib: Calibration) -> None:
        self.calib, self.cache = calib, {}

    def __call__(self, run: RowRun) -> tuple[float | None, str]:
        key = (replace(run.job, assumptions=()), run.baseline, run.metric, run.steps,
               run.phases)
        if key not in self.cache:
            try:
                pred = predict(run.job, self.calib)
                value = predicted_value(run, pred, self.calib)
                note = "" if pred.fits in (True, None) else "predicted memory exceeds the GPU"
                self.cache[key] = (value, note)
            except DdlsimError as exc:
                self.cache[key] = (None, f"not simulable: {exc}")
        return self.cache[key]


def read_rows(table: pd.DataFrame) -> list[tuple[dict, RowRun | None, str]]:
    """Every row of ``table`` read into a run (or None and the reason)."""
    out = []
    for rec in table.to_dict("records"):
        try:
            run, why = read_row(rec)
        except DdlsimError as exc:
            run, why = None, str(exc)
        out.append((rec, run, why))
    return out


def _calibration(spec, runs) -> Calibration:
    if isinstance(spec, str) and spec == "fit":
        fps = set(fit_rows([(fingerprint(r), run) for r, run, _ in runs if run]))
        chosen = [run for r, run, _ in runs if run and fingerprint(r) in fps]
        calib, _ = fit(chosen, label=f"fitted now on {len(chosen)} rows")
        return replace(calib, fit_rows=tuple(sorted(fps)))
    return load_calibration(spec)


def validate(reference: str | Path | None = None, categories: Iterable[str] | None = None,
             calibration: str | Path | Calibration = "stored", loso: bool = False,
             progress=None) -> ValidationResult:
    """Predict every row of ``categories`` (default: all performance categories) of the
    reference and compare. ``calibration``: ``stored`` | ``default`` | ``fit`` (refit now
    on the declared rows) | a calibration file | a Calibration. ``loso``: also predict
    each source's rows with constants fitted without that source."""
    cats = tuple(categories or CATEGORIES)
    for c in cats:
        if c not in CATEGORIES:
            from ddlsim.errors import unknown_name

            raise unknown_name("category", c, CATEGORIES, "category")
    ref = load_reference(reference)
    table = ref[ref["category"].isin(cats)].reset_index(drop=True)
    runs = read_rows(table)
    calib = _calibration(calibration, runs)
    used = set(calib.fit_rows)
    main, dflt = _Predictor(calib), _Predictor(DEFAULT_CALIBRATION)
    loso_pred = _loso(runs, calib, progress) if loso else {}
    rows = []
    for rec, run, why in runs:
        fp = fingerprint(rec)
        out = {"id": rec["id"], "category": rec["category"], "source": source_group(rec),
               "model": rec["model"], "gpu": rec["gpu"], "num_gpus": rec["num_gpus"],
               "precision": rec["precision"], "metric": rec["metric"], "unit": rec["unit"],
               "published": _num(rec["value"]), "used_for_fit": fp in used}
        if run is None:
            rows.append({**out, "status": "not expressible", "reason": why})
            continue
        scale = run.metric.scale
        value, note = main(run)
        if value is None:
            rows.append({**out, "status": "not expressible",
                         "reason": note or f"metric {run.metric.kind} not predicted"})
            continue
        d, _ = dflt(run)
        lv = loso_pred.get(fp, value)
        rows.append({**out, "predicted": value / scale,
                     "abs_pct_error": abs_pct(value, run.published),
                     "predicted_default": None if d is None else d / scale,
                     "abs_pct_error_default": abs_pct(d, run.published),
                     "predicted_loso": lv / scale if lv is not None else None,
                     "abs_pct_error_loso": abs_pct(lv, run.published),
                     "status": "predicted",
                     "reason": "; ".join(x for x in (*run.job.assumptions, note) if x)})
    df = pd.DataFrame(rows, columns=COLUMNS)
    for col in COLUMNS[9:16]:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    df["used_for_fit"] = df["used_for_fit"].fillna(False).astype(bool)
    return ValidationResult(rows=df, calibration=calib, categories=cats,
                            reference=str(reference or "published.csv"),
                            at_bounds=at_bounds(calib) if calib.fit_rows else {}, loso=loso)


def _num(text: object) -> float:
    try:
        return float(str(text))
    except ValueError:
        return math.nan


def _loso(runs, calib: Calibration, progress=None) -> dict[str, float | None]:
    """fingerprint -> value predicted with constants fitted without the row's source.
    A source that holds no fit row is predicted with ``calib`` itself."""
    fit_fps = set(fit_rows([(fingerprint(r), run) for r, run, _ in runs if run]))
    by_source: dict[str, list] = {}
    for r, run, _ in runs:
        if run is not None:
            by_source.setdefault(source_group(r), []).append((fingerprint(r), run))
    out = {}
    for src, items in by_source.items():
        if not any(fp in fit_fps for fp, _ in items):
            continue
        rest = [run for r, run, _ in runs if run and source_group(r) != src
                and fingerprint(r) in fit_fps]
        try:
            c, _ = fit(rest, label=f"without {src}")
        except ConfigError:
            c = DEFAULT_CALIBRATION
        pred = _Predictor(c)
        for fp, run in items:
            out[fp] = pred(run)[0]
        if progress:
            progress(src)
    return out


def error_summary(result: ValidationResult) -> pd.DataFrame:
    """Per category and overall: rows expressed, median/mean/max absolute % error
    (stored constants, first principles, leave-one-source-out), rows above 15 %."""
    ok = result.rows[result.rows["status"] == "predicted"]
    recs = []
    groups = [(c, ok[ok["category"] == c]) for c in result.categories] + [("all", ok)]
    for name, part in groups:
        n_all = len(result.rows) if name == "all" else int(
            (result.rows["category"] == name).sum())
        if not n_all and name != "all":
            continue
        e, d, lo = (part[c].dropna() for c in ("abs_pct_error", "abs_pct_error_default",
                                                "abs_pct_error_loso"))
        recs.append({"category": name, "expressed": f"{len(part)} of {n_all}",
                     "median %": e.median(), "mean %": e.mean(), "max %": e.max(),
                     "over 15 %": int((e > 15).sum()), "LOSO median %": lo.median(),
                     "LOSO max %": lo.max(), "default median %": d.median()})
    return pd.DataFrame(recs)


def calibrate(reference: str | Path | None = None, fit_ids: Iterable[str] = (),
              out: str | Path | None = None) -> Calibration:
    """Fit the constants on the rows the fit rule declares (or on the rows named by
    ``fit_ids``, the ids of the user's own table) and, with ``out``, store them as JSON
    (constants, fit-row fingerprints, rule, constants at a bound, reference, date)."""
    import datetime
    import json

    from ddlsim.fsutil import atomic_write_text

    ref = load_reference(reference)
    runs = read_rows(ref[ref["category"].isin(CATEGORIES)].reset_index(drop=True))
    ids = set(fit_ids)
    if ids:
        unknown = ids - set(ref["id"])
        if unknown:
            raise ConfigError(f"fit_ids: no row with id {sorted(unknown)[0]!r} in the reference")
        chosen = [(fingerprint(r), run) for r, run, _ in runs if run and r["id"] in ids]
    else:
        fps = set(fit_rows([(fingerprint(r), run) for r, run, _ in runs if run]))
        chosen = [(fingerprint(r), run) for r, run, _ in runs if run and fingerprint(r) in fps]
    calib, bounds = fit([run for _, run in chosen])
    fps = tuple(sorted({fp for fp, _ in chosen}))
    calib = replace(calib, label=f"fitted on {len(fps)} rows", fit_rows=fps)
    if out is not None:
        rec = {"constants": calib.to_dict(), "fit_rows": list(fps), "fit_rule": FIT_RULE,
               "at_bounds": bounds,
               "reference": Path(reference).name if reference else "published.csv",
               "date": datetime.date.today().isoformat()}
        atomic_write_text(out, json.dumps(rec, indent=2) + "\n")
    return calib
