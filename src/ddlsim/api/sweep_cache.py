"""The per-point result cache of :mod:`ddlsim.api.sweep`: one JSON file per point,
``<cache_dir>/<hash>.json``, keyed by :func:`point_hash` (the resolved scenario, the
ddlsim version, :data:`CACHE_FORMAT` and the digests of its profile and calibration),
written atomically and validated when read back."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ddlsim import __version__

CACHE_FORMAT = 1
#: The value types a cached row may hold (JSON scalars).
SCALARS = (str, int, float, bool, type(None))


def default_cache_dir() -> Path:
    """``$DDLSIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/ddlsim/sweeps``, else
    ``~/.cache/ddlsim/sweeps``."""
    if os.environ.get("DDLSIM_CACHE_DIR"):
        return Path(os.environ["DDLSIM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ddlsim" / "sweeps"


def _file_digest(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _calibration_digest(doc: dict) -> str:
    """The content of the point's calibration (stored constants plus a user file)."""
    from ddlsim.api.calibration import load_calibration

    calib = load_calibration(doc.get("calibration", "stored"))
    text = json.dumps(calib.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def point_hash(doc: dict) -> str:
    """SHA-256 of the canonical JSON of a resolved (validated) scenario dict, the ddlsim
    version, the cache format, the digest of its kernel profile file, if any, and of the
    calibration constants it runs with."""
    key = {"scenario": doc, "ddlsim": __version__, "cache_format": CACHE_FORMAT,
           "profile_sha256": _file_digest(doc.get("profile")),
           "calibration_sha256": _calibration_digest(doc)}
    text = json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def cache_path(cache_dir: Path, digest: str) -> Path:
    """The file of the entry ``digest`` in ``cache_dir``."""
    return cache_dir / f"{digest}.json"


def read_cache(cache_dir: Path, digest: str) -> list[dict] | None:
    """The cached rows of a point, ``None`` when absent; a corrupt entry (bad JSON,
    wrong format, hash or row shape) is deleted and ``None`` returned."""
    path = cache_path(cache_dir, digest)
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
        if not isinstance(row, dict) or not all(isinstance(v, SCALARS) for v in row.values()):
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
    return atomic_write_text(cache_path(cache_dir, digest), json.dumps(entry, indent=1))
