"""bench/gpu/gpu_bench.py on the CPU: the whole script end to end, and its pieces.

The script is meant for a GPU machine; here it runs with ``--device cpu --quick`` (NumPy
backend, tiny models), which exercises every code path except CuPy and CUDA events.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ddlsim import opspec
from ddlsim.kernels import ops
from ddlsim.kernels.backend import get_backend
from ddlsim.kernels.profile import COLUMNS

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu" / "gpu_bench.py"


def _load_bench():
    spec = importlib.util.spec_from_file_location("gpu_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["gpu_bench"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gb = _load_bench()


def _read(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """One ``--device cpu --quick`` run of the script as a subprocess."""
    out = tmp_path_factory.mktemp("gpu_bench")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick",
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    return proc, out


def test_cpu_run_exits_zero_and_all_checks_pass(cpu_run) -> None:
    proc, out = cpu_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    fields, rows = _read(out / "checks.csv")
    assert fields[:5] == ["op", "dtype", "max_rel_err", "tol", "pass"]
    # every op is checked in float32 and float16 (NumPy has no bfloat16)
    for dtype in ("float32", "float16"):
        assert {r["op"] for r in rows if r["dtype"] == dtype} == set(opspec.OP_PARAMS)
    bad = [(r["op"], r["dtype"], r["max_rel_err"], r["error"]) for r in rows
           if r["pass"] != "True"]
    assert not bad
    for r in rows:
        assert 0.0 <= float(r["max_rel_err"]) <= float(r["tol"])
    assert "bfloat16 skipped" in (out / "summary.txt").read_text()


def test_cpu_run_profiles_follow_the_schema_and_count_every_call(cpu_run) -> None:
    _, out = cpu_run
    device = gb.safe_name(gb.device_name(get_backend("cpu")))
    for model, build in (("tiny-cnn", gb.tiny_cnn), ("tiny-gpt", gb.tiny_gpt)):
        wl = build()
        n_calls = sum(len(layer.fwd) + len(layer.bwd) for layer in wl.layers) + len(wl.update)
        for dtype in ("float32", "float16"):
            path = out / f"profile-{device}-{model}-{dtype}.csv"
            fields, rows = _read(path)
            assert fields == COLUMNS
            assert len(rows) == len(gb.step_calls(wl))
            assert sum(int(r["calls_per_step"]) for r in rows) == n_calls
            for r in rows:
                kc = opspec.parse_shape_key(r["op"], r["shape"])
                assert float(r["flops"]) == pytest.approx(opspec.flops(kc), rel=1e-5)
                assert float(r["bytes"]) == pytest.approx(opspec.bytes_moved(kc, dtype),
                                                          rel=1e-5)
                assert 0 < float(r["p10_s"]) <= float(r["median_s"]) <= float(r["p90_s"])
                assert r["dtype"] == dtype and r["backend"] == "numpy"


def test_cpu_run_side_by_side_table(cpu_run) -> None:
    _, out = cpu_run
    fields, rows = _read(out / "side_by_side.csv")
    assert fields == gb.SBS_FIELDS
    if gb.import_torch() is None:
        assert rows == []
        assert "side-by-side: skipped (no torch)" in (out / "summary.txt").read_text()
    else:  # pragma: no cover - torch is not in the project's environment
        for r in rows:
            assert float(r["ratio"]) == pytest.approx(float(r["cupy_s"]) / float(r["torch_s"]),
                                                      rel=1e-4)


def test_max_rel_err_is_relative_to_the_largest_reference_value() -> None:
    ref = [np.array([4.0, -2.0, 1.0])]
    assert gb.max_rel_err([np.array([4.0, -2.0, 1.04])], ref) == pytest.approx(0.01)
    assert math.isnan(gb.max_rel_err([np.array([4.0, np.nan, 1.0])], ref))
    assert gb.max_rel_err([np.array([4.0, -2.0])], ref) == math.inf  # shape mismatch
    ints = [np.array([0, 3, 1], dtype=np.uint8)]
    assert gb.max_rel_err([np.array([0, 3, 1], dtype=np.uint8)], ints) == 0.0
    assert gb.max_rel_err([np.array([0, 2, 1], dtype=np.uint8)], ints) == math.inf


def test_check_op_catches_a_dtype_specific_error(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = get_backend("cpu")
    kc = opspec.call("gemm", **gb.CHECK_SHAPES["gemm"])
    assert gb.check_op(kc, "float32", backend, seed=3) < gb.TOLERANCE["float32"]
    exact = ops.gemm

    def off_in_float32(a, b):
        y = exact(a, b)
        return y if y.dtype == np.float64 else y * np.float32(1.001)

    monkeypatch.setattr(ops, "gemm", off_in_float32)
    assert gb.check_op(kc, "float32", backend, seed=3) == pytest.approx(1e-3, rel=0.01)


def test_check_op_compares_the_in_place_sgd_update() -> None:
    backend = get_backend("cpu")
    kc = opspec.call("sgd_update", numel=101)
    err = gb.check_op(kc, "float32", backend, seed=5)
    assert 0.0 < err < gb.TOLERANCE["float32"]  # rounding differs, so err is not 0


def test_summarise_sbs_geometric_means_and_verdicts() -> None:
    rows = [
        dict(op="gemm", dtype="float32", cupy_s=2.0, torch_s=1.0, source="m"),
        dict(op="bmm", dtype="float32", cupy_s=1.0, torch_s=1.0, source="m"),
        dict(op="gemm", dtype="float32", cupy_s=100.0, torch_s=1.0, source="ceiling"),
        dict(op="conv2d_fwd", dtype="float32", cupy_s=3.0, torch_s=2.0, source="m"),
        dict(op="conv2d_fwd", dtype="float16", cupy_s=3.0, torch_s=1.0, source="m"),
    ]
    s = gb.summarise_sbs(rows)
    assert s["float32"]["gemm_rate_ratio"] == pytest.approx(math.sqrt(0.5))  # ceiling left out
    assert s["float32"]["gemm_n"] == 2
    assert s["float32"]["conv_time_ratio"] == pytest.approx(1.5)
    assert s["all"]["conv_time_ratio"] == pytest.approx(math.sqrt(4.5))
    assert math.isnan(s["float16"]["gemm_rate_ratio"])
    assert gb.verdict(s["float32"]["gemm_rate_ratio"], gb.GEMM_TARGET, True) == "FAIL"
    assert gb.verdict(1.5, gb.CONV_TARGET, False) == "PASS"
    assert gb.verdict(math.sqrt(4.5), gb.CONV_TARGET, False) == "FAIL"
    assert gb.verdict(math.nan, gb.CONV_TARGET, False) == "n/a"


def test_a_failing_part_is_recorded_and_the_next_part_runs() -> None:
    report = gb.Report()
    ran = []

    def broken() -> None:
        raise RuntimeError("out of memory\nsecond line")

    assert gb.run_part("broken", broken, report) is False
    assert gb.run_part("fine", lambda: ran.append(1), report) is True
    assert ran == [1]
    assert report.errors == ["broken: RuntimeError: out of memory"]
    assert gb.exit_code(report, strict_targets=False) == 1
    assert gb.exit_code(gb.Report(), strict_targets=False) == 0


def test_safe_name_keeps_only_file_name_characters() -> None:
    assert gb.safe_name("NVIDIA H100 80GB HBM3") == "NVIDIA-H100-80GB-HBM3"
    assert gb.safe_name("Intel(R) Xeon(R) Processor") == "Intel-R-Xeon-R-Processor"
    assert gb.safe_name("///") == "unknown"
