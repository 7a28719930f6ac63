#!/usr/bin/env bash
# One GPU run of bench/gpu/gpu_bench.py plus the machine's facts (see bench/gpu/README.md).
#
#   bash bench/gpu/run.sh [gpu_bench.py options, e.g. --quick]
#
# Without $OUT (an ordinary shell) everything is written to out/gpu/.
# With $OUT (the device tool), which returns at most 8 files, the bench writes into a
# scratch folder and this script puts into $OUT: gpu_results.tar.gz (every file of the
# run, profile CSVs included), and beside it summary.txt, side_by_side.csv, checks.csv,
# env.txt and log.txt for reading without unpacking.
set -euo pipefail
export PYTHONPATH=src:${PYTHONPATH:-}
export PYTHONUNBUFFERED=1

if [ -n "${OUT:-}" ]; then
    WORK="$(mktemp -d)/gpu"
else
    WORK="out/gpu"
fi
mkdir -p "$WORK"

{
    echo "date_utc: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "git_commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)"
    echo "host: $(uname -a)"
    echo "args: $*"
    echo "--- nvidia-smi"
    nvidia-smi 2>&1 || echo "nvidia-smi not available"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm,power.limit \
        --format=csv 2>&1 || true
    echo "--- python"
    python3 --version 2>&1
    python3 - <<'EOF' 2>&1 || true
import importlib
for name in ("numpy", "cupy", "torch", "ml_dtypes"):
    try:
        mod = importlib.import_module(name)
        print(f"{name} {getattr(mod, '__version__', '?')}")
    except Exception as exc:  # noqa: BLE001
        print(f"{name} unavailable: {type(exc).__name__}: {exc}")
try:
    import torch
    if torch.cuda.is_available():
        print("torch device:", torch.cuda.get_device_name(0),
              "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
except Exception as exc:  # noqa: BLE001
    print("torch cuda probe failed:", exc)
EOF
} >"$WORK/env.txt"
cat "$WORK/env.txt"

rc=0
python3 bench/gpu/gpu_bench.py --out "$WORK" "$@" 2>&1 | tee "$WORK/log.txt" || rc=$?

if [ -n "${OUT:-}" ]; then
    tar -czf "$OUT/gpu_results.tar.gz" -C "$WORK" .
    for f in summary.txt side_by_side.csv checks.csv env.txt log.txt; do
        if [ -f "$WORK/$f" ]; then cp "$WORK/$f" "$OUT/"; fi
    done
    echo "results: $OUT/gpu_results.tar.gz (+ summary.txt side_by_side.csv checks.csv env.txt log.txt)"
else
    echo "results: $WORK"
fi
exit "$rc"
