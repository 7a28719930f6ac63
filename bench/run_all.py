"""Run every ``bench/bench_*.py`` in sequence (what ``make bench`` calls).

Run: ``.venv/bin/python bench/run_all.py [--quick] [--only NAME ...]``

``--quick`` sets ``DDLSIM_BENCH_QUICK=1`` for every script and passes ``--quick`` to the
scripts that declare that flag (a smoke run, not numbers for RESULTS.md). Each script runs
in its own interpreter, one after another (the machines are small; parallel runs would
disturb each other's timings). Exits non-zero when a script fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scripts(only: list[str] | None) -> list[Path]:
    """``bench_*.py`` next to this file, sorted; ``only`` filters by name fragment."""
    found = sorted(HERE.glob("bench_*.py"))
    if only:
        found = [p for p in found if any(o in p.stem for o in only)]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="quick smoke mode")
    parser.add_argument("--only", nargs="*", help="run only scripts whose name contains these")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.quick:
        env["DDLSIM_BENCH_QUICK"] = "1"
    failed = []
    for path in scripts(args.only):
        cmd = [sys.executable, str(path)]
        if args.quick and "--quick" in path.read_text():
            cmd.append("--quick")
        print(f"\n===== {path.name} {' '.join(cmd[2:])}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, env=env)
        print(f"===== {path.name}: exit {rc}, {time.perf_counter() - t0:.1f} s", flush=True)
        if rc != 0:
            failed.append(path.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
