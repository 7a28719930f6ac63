"""Cost model: leave-one-out error on the committed measured CPU profiles.

Run: ``.venv/bin/python bench/bench_costs.py [--profiles DIR] [--quick]``

All ``cpu-*.csv`` profiles under ``src/ddlsim/data/profiles/`` are pooled for one device,
this host's CPU (:func:`ddlsim.api.host_device_spec`: cores x clock x FLOPs/cycle peak and
a measured copy bandwidth). Rows are renamed to that spec's name; a shape measured in
several profiles keeps its first row (listed order). Each row is then predicted from all
the others (:func:`ddlsim.sim.costs.leave_one_out_error`) and the absolute percentage
errors are summarised per path the prediction took (interpolated / roofline) and per op
class (and for rows measured under 20 us), for the overhead-free model
(before: ``fit_overhead=False``) and the model with the
fitted per-call overhead (after).

Caveat: the profiles were measured on the reference machine named in their README; on
another CPU the host spec (peak, bandwidth) differs from the one the rows saw, which
changes the roofline axis but not the measured times.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from ddlsim.api import host_device_spec
from ddlsim.kernels.profile import load_profile
from ddlsim.sim.costs import CostModel, ProfileRow, leave_one_out_error, op_class

PROFILES = Path(__file__).resolve().parents[1] / "src" / "ddlsim" / "data" / "profiles"


def load_rows(directory: Path, device_name: str) -> tuple[list[ProfileRow], int, list[str]]:
    """Pooled rows of every ``cpu-*.csv`` in ``directory`` renamed to ``device_name``.

    Returns ``(rows, duplicates dropped, file names)``.
    """
    rows, seen, dropped, names = [], set(), 0, []
    for path in sorted(directory.glob("cpu-*.csv")):
        names.append(path.name)
        for r in load_profile(path).itertuples(index=False):
            key = (r.op, r.shape, r.dtype)
            if key in seen:
                dropped += 1
                continue
            seen.add(key)
            rows.append(ProfileRow(op=r.op, shape_key=r.shape, dtype=r.dtype,
                                   device=device_name, median_s=float(r.median_s),
                                   p10_s=float(r.p10_s), p90_s=float(r.p90_s),
                                   flops=float(r.flops), bytes=float(r.bytes)))
    return rows, dropped, names


def path_of(rows: list[ProfileRow], device, index: int) -> str:
    """Which path predicts row ``index`` when it is held out."""
    model = CostModel(device, rows[:index] + rows[index + 1:])
    row = rows[index]
    return model.estimate(row.kernel_call, row.dtype).path


def summarise(groups: dict[tuple[str, str], list[float]]) -> None:
    print(f"{'path':13s} {'op class':10s} {'rows':>5s} {'median |err|':>13s} "
          f"{'p90 |err|':>10s} {'median signed':>14s}")
    for (path, cls), errs in sorted(groups.items()):
        a = np.abs(errs) * 100
        print(f"{path:13s} {cls:10s} {len(errs):5d} {np.median(a):12.1f}% "
              f"{np.percentile(a, 90):9.1f}% {np.median(errs) * 100:+13.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=Path, default=PROFILES)
    parser.add_argument("--quick", action="store_true",
                        help="accepted for run_all.py; the work is the same (~10 s)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    spec = host_device_spec()
    rows, dropped, names = load_rows(args.profiles, spec.name)
    print(f"# bench_costs {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"device: {spec.name}: peak fp32 {spec.peak_flops('float32') / 1e9:.0f} GFLOP/s, "
          f"memory bw {spec.memory_bw_bytes_per_s / 1e9:.1f} GB/s ({spec.sources})")
    print(f"profiles: {', '.join(names)}")
    print(f"rows: {len(rows)} pooled ({dropped} duplicate shapes dropped)")

    full = CostModel(spec, rows)
    for cls, op in (("gemm-like", "gemm"), ("memory", "relu_fwd")):
        fit = full.roofline_fit(op, "float32")
        print(f"fit on all rows, {cls}: overhead {fit.overhead_s * 1e6:.2f} us, "
              f"efficiency {fit.efficiency:.4f}")

    paths = [path_of(rows, spec, i) for i in range(len(rows))]
    results = {}
    for label, fit_overhead in (("before (no overhead)", False), ("after (fitted overhead)",
                                                                   True)):
        loo = leave_one_out_error(rows, spec, fit_overhead=fit_overhead)
        results[label] = loo
        groups: dict[tuple[str, str], list[float]] = defaultdict(list)
        for (row, _, err), path in zip(loo, paths, strict=True):
            groups[(path, op_class(row.op))].append(err)
            groups[(path, "all")].append(err)
            if row.median_s < 20e-6:
                groups[(path, "<20us")].append(err)
        print(f"\n## leave-one-out, {label}")
        summarise(groups)

    print("\nlargest |error| after, roofline path (row: measured -> before / after):")
    both = zip(results["before (no overhead)"], results["after (fitted overhead)"], paths,
               strict=True)
    worst = sorted(((abs(after[2]), after[0], pre[1], after[1]) for pre, after, path in both
                    if path == "roofline"), key=lambda x: x[0], reverse=True)[:8]
    for _, r, pre, post in worst:
        print(f"  {r.op}({r.kernel_call.shape_key}): {r.median_s * 1e6:.1f} us -> "
              f"{pre * 1e6:.1f} / {post * 1e6:.1f} us")
    print(f"\nwall time {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
