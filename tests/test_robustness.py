"""Robustness of the tool: event budgets, corrupt kernel profiles and reference tables
(Hypothesis), determinism of ``ddlsim run`` with noise."""

import csv
import io

import numpy as np
import pytest
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddlsim.errors import ConfigError, SimulationError
from ddlsim.sim.budget import DEFAULT_MAX_EVENTS, run_budgeted


# --------------------------------------------------------------------------- event budget
def _ticker(env, n, out):
    for i in range(n):
        yield env.timeout(1.0)
        out.append(i)


def test_budget_allows_a_run_that_fits_and_matches_env_run():
    # 12 events exactly: the process's start, its 10 timeouts and its end.
    for budget in (12, 13, 1000):
        env, out = simpy.Environment(), []
        env.process(_ticker(env, 10, out))
        run_budgeted(env, max_events=budget)
        assert out == list(range(10)) and env.now == 10.0
    env = simpy.Environment()
    env.process(_ticker(env, 10, []))
    with pytest.raises(SimulationError, match="budget of 11 events"):
        run_budgeted(env, max_events=11)


def test_budget_stops_a_long_run_with_the_message():
    env, out = simpy.Environment(), []
    env.process(_ticker(env, 10**9, out))
    with pytest.raises(SimulationError, match=r"exceeded the event budget of 1,000 events; "
                                              r"reduce iterations/updates or raise "
                                              r"--max-events"):
        run_budgeted(env, max_events=1000, what="toy")
    assert len(out) < 1000


def test_budget_until_event_returns_its_value():
    env = simpy.Environment()

    def proc(env):
        yield env.timeout(3.0)
        return "done"

    p = env.process(proc(env))
    env.process(_ticker(env, 10**6, []))  # keeps going after p: until must stop the run
    assert run_budgeted(env, until=p, max_events=100) == "done" and env.now == 3.0
    assert run_budgeted(env, until=p) == "done"  # already processed


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "10"])
def test_bad_budget_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="max_events: must be an integer >= 1"):
        run_budgeted(simpy.Environment(), max_events=bad)


def test_simulators_honour_the_budget():
    from ddlsim.sim.pipeline import PipelineConfig, StageCost, simulate_pipeline
    from ddlsim.sim.sync_dp import StepCost, SyncDPConfig, simulate_sync_dp

    cost = StepCost(layer_names=("l",), fwd_s=np.array([1e-3]), fwd_bounds=np.array([0, 1]),
                    bwd_s=np.array([2e-3]), bwd_bounds=np.array([0, 1]),
                    bwd_grad_bytes=np.array([1e6]), update_s=1e-4)

    def allreduce(env, nbytes):
        yield env.timeout(1e-3)

    cfg = SyncDPConfig(iterations=200, batch_per_gpu=1)
    assert len(simulate_sync_dp([cost] * 2, allreduce, cfg).iteration_end) == 200
    with pytest.raises(SimulationError, match="sync data-parallel simulation: exceeded the "
                                              "event budget of 50 events"):
        simulate_sync_dp([cost] * 2, allreduce, cfg, max_events=50)
    stages = [StageCost(fwd_s=1e-3, bwd_s=2e-3, update_s=1e-4, act_bytes=1e3, grad_bytes=1e3)
              for _ in range(4)]
    pcfg = PipelineConfig(micro_batches=16, iterations=2)
    assert len(simulate_pipeline(stages, pcfg).iteration_end) == 2
    with pytest.raises(SimulationError, match="pipeline simulation: exceeded"):
        simulate_pipeline(stages, pcfg, max_events=100)
    assert DEFAULT_MAX_EVENTS >= 10_000_000


def test_parameter_server_honours_the_budget(monkeypatch):
    import ddlsim.sim.async_ps as aps
    from ddlsim.api.async_ps import PSOptions, predict_ps

    opts = PSOptions(model="lenet5", workers=4, cluster="pcie-8gpu", updates=40,
                     batch_per_worker=8)
    assert predict_ps(opts).result.num_updates >= 40
    real = aps.simulate_ps
    monkeypatch.setattr(aps, "simulate_ps",
                        lambda *a, **k: real(*a, **{**k, "max_events": 200}))
    with pytest.raises(SimulationError, match="parameter-server simulation: exceeded"):
        predict_ps(opts)


# --------------------------------------------------------------------------- corrupt files
def _one_line_config_error(fn, *args):
    """Call ``fn``; it must succeed or raise ConfigError with a one-line message."""
    try:
        return fn(*args)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc), repr(str(exc))
        return None


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


cells = st.one_of(
    st.sampled_from(["", "nan", "NaN", "inf", "-inf", "-1", "0", "1e400", "-0", "abc",
                     "None", "null", "1,2", "\"", "0x10", "1e-400", "  3 ", "True"]),
    st.text(max_size=8),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**30, 10**30).map(str))


def _corrupted(draw, header, good_rows):
    """Rows of ``good_rows`` with some cells replaced, some columns dropped, some rows
    cut or extended."""
    rows = [list(r) for r in good_rows]
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(rows) - 1))
        j = draw(st.integers(0, len(header) - 1))
        rows[i][j] = draw(cells)
    header = list(header)
    action = draw(st.sampled_from(["none", "drop_column", "short_row", "long_row",
                                   "empty", "header_only", "dup_column"]))
    if action == "drop_column":
        j = draw(st.integers(0, len(header) - 1))
        header.pop(j)
        for r in rows:
            r.pop(j)
    elif action == "short_row":
        rows[0] = rows[0][:draw(st.integers(0, len(header) - 1))]
    elif action == "long_row":
        rows[0] = rows[0] + ["x", "y"]
    elif action == "empty":
        return ""
    elif action == "header_only":
        rows = []
    elif action == "dup_column":
        header[-1] = header[0]
    return _csv_text(header, rows)


def _bundled_rows(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


@st.composite
def corrupt_profiles(draw):
    from importlib import resources

    path = resources.files("ddlsim.data").joinpath("profiles/cpu-lenet5-b64-float32.csv")
    header, rows = _bundled_rows(path)
    n = draw(st.integers(1, 3))
    return _corrupted(draw, header, rows[:n])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=corrupt_profiles())
def test_corrupt_profile_loads_or_is_a_config_error(tmp_path_factory, text):
    from ddlsim.kernels.profile import load_profile

    path = tmp_path_factory.mktemp("p") / "profile.csv"
    path.write_text(text)
    df = _one_line_config_error(load_profile, path)
    if df is not None:  # what loads is usable: finite, non-negative numbers
        for col in ("median_s", "p10_s", "p90_s", "flops", "bytes"):
            assert np.isfinite(df[col].to_numpy(dtype=float)).all()


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=300))
def test_random_bytes_profile_is_a_config_error(tmp_path_factory, data):
    from ddlsim.kernels.profile import load_profile

    path = tmp_path_factory.mktemp("p") / "profile.csv"
    path.write_bytes(data)
    _one_line_config_error(load_profile, path)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=300))
def test_random_bytes_reference_is_a_config_error(tmp_path_factory, data):
    from ddlsim.validation import load_reference

    path = tmp_path_factory.mktemp("r") / "ref.csv"
    path.write_bytes(data)
    _one_line_config_error(load_reference, path)


# --------------------------------------------------------------------------- determinism
NOISY = """name: noisy
workload: {model: lenet5, batch_per_gpu: 16}
cluster: {preset: cloud-25gbe, gpus: 16}
iterations: 4
noise: {distribution: lognormal, cv: 0.2}
faults: {slow_gpus: {3: 1.5}}
strategies:
  - {kind: allreduce, name: ring, algo: ring}
  - {kind: ps, name: asp, mode: asp, shards: 2, updates: 40}
seed: 7
"""

NOISY_FILES = ("summary.csv", "ring/iterations.csv", "ring/buckets.csv",
               "ring/update_log.csv", "asp/update_log.csv")


def test_run_with_noise_is_byte_identical_for_the_same_seed(tmp_path):
    from click.testing import CliRunner

    from ddlsim.cli import cli

    scen = tmp_path / "noisy.yaml"
    scen.write_text(NOISY)
    outs = {}
    for name, extra in (("a", []), ("b", []), ("c", ["--seed", "8"])):
        res = CliRunner().invoke(cli, ["run", str(scen), "--quiet", "--out",
                                       str(tmp_path / name), *extra], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        outs[name] = {f: (tmp_path / name / f).read_bytes() for f in NOISY_FILES}
    assert outs["a"] == outs["b"]
    # The noise is real: another seed changes the iteration times and the async log.
    assert outs["a"]["ring/iterations.csv"] != outs["c"]["ring/iterations.csv"]
    assert outs["a"]["asp/update_log.csv"] != outs["c"]["asp/update_log.csv"]
