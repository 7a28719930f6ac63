"""Atomic output folders: write everything into a hidden sibling, then rename into place.

An interrupted run never leaves a half-written report: either the previous folder is
still there untouched or the new one is complete. Every report folder carries a marker
file; an existing folder is only ever replaced when it is empty or is itself a ddlsim
report, so ``--out`` can never wipe a folder of the user's own files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ddlsim.errors import ConfigError
from ddlsim.fsutil import atomic_write_bytes, atomic_write_text, umask

__all__ = ["MARKER", "atomic_dir", "atomic_write_bytes", "atomic_write_text", "check_out_dir"]

MARKER = ".ddlsim-report"


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """Resolve ``out_dir`` and refuse one that holds anything but a previous report."""
    out = Path(out_dir).expanduser().resolve()
    if out == Path(out.anchor) or out == Path.home() or out == Path.cwd():
        raise ConfigError(f"out: refusing to write a report over {out}; name a new folder")
    if out.exists():
        if not out.is_dir():
            raise ConfigError(f"out: {out} exists and is not a folder")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise ConfigError(f"out: {out} exists and is not a ddlsim report; choose another "
                              "folder or remove it")
    return out


@contextmanager
def atomic_dir(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``out_dir`` as one rename."""
    out = check_out_dir(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        (tmp / MARKER).write_text("written by ddlsim; this folder may be replaced by the next "
                                  "report written here\n")
        os.chmod(tmp, 0o777 & ~umask())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
