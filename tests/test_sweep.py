"""Sweeps: points and axis values, the per-point cache (resume, corrupt entries,
interrupts), determinism across worker counts, axis validation, Dask, the report."""

from __future__ import annotations

import itertools
import json
import sys

import pytest

from ddlsim.api import sweep as sweep_mod
from ddlsim.api.run import RunOptions, run_scenario
from ddlsim.api.sweep import SweepOptions, parse_axis, point_hash, run_sweep
from ddlsim.errors import ConfigError
from ddlsim.reports.sweep import write_sweep_report
from ddlsim.scenarios.loader import parse_scenario

TINY = """
name: tiny-lenet
description: LeNet-5 on a small allreduce cluster, for sweep tests.
workload: {model: lenet5, batch_per_gpu: 16}
cluster: {preset: dgx-a100, gpus: 8}
strategies:
  - {kind: allreduce, name: ring, algo: ring}
  - {kind: allreduce, name: tree, algo: tree}
iterations: 3
"""


@pytest.fixture
def tiny():
    return parse_scenario(TINY, "tiny.yaml"), "tiny.yaml"


def _opts(tmp_path, *axes: str, **kw) -> SweepOptions:
    kw.setdefault("workers", 1)
    kw.setdefault("cache_dir", tmp_path / "cache")
    return SweepOptions(axes=tuple(parse_axis(a) for a in axes), **kw)


@pytest.fixture
def counted(monkeypatch):
    """Wrap the per-point runner; the list collects the hash of every computed point."""
    calls: list[str] = []
    real = sweep_mod.run_point

    def runner(doc, label):
        calls.append(point_hash(doc))
        return real(doc, label)

    monkeypatch.setattr(sweep_mod, "run_point", runner)
    return calls


def test_one_row_per_point_with_axis_values(tiny, tmp_path):
    sc, label = tiny
    res = run_sweep(sc, label, _opts(tmp_path, "cluster.gpus=1,2,8", "strategy=ring,tree"))
    t = res.table
    expected = list(itertools.product([1, 2, 8], ["ring", "tree"]))
    assert len(t) == 6 and res.computed == 6 and res.cached == 0
    assert list(t["point"]) == list(range(6))
    assert list(zip(t["cluster.gpus"], t["strategy"], strict=True)) == expected
    assert list(t["gpus"]) == [g for g, _ in expected]  # the simulator saw the axis value
    assert t.columns[:3].tolist() == ["point", "cluster.gpus", "strategy"]
    assert t["point_hash"].nunique() == 6
    # oracle: a point's row equals a direct run of the scenario with that value set
    direct = run_scenario(sc.model_copy(update={
        "cluster": sc.cluster.model_copy(update={"gpus": 2}),
        "strategies": [sc.strategies[1]]}), label, RunOptions()).summary()
    row = t[(t["cluster.gpus"] == 2) & (t["strategy"] == "tree")].iloc[0]
    assert row["samples_per_s"] == float(direct["samples_per_s"].iloc[0])
    assert row["iteration_s"] == float(direct["iteration_s"].iloc[0])


def test_without_strategy_axis_every_strategy_runs_per_point(tiny, tmp_path):
    sc, label = tiny
    res = run_sweep(sc, label, _opts(tmp_path, "workload.batch_per_gpu=8,32"))
    assert list(res.table["workload.batch_per_gpu"]) == [8, 8, 32, 32]
    assert list(res.table["strategy"]) == ["ring", "tree", "ring", "tree"]
    assert list(res.table["batch_per_gpu"]) == [8, 8, 32, 32]
    assert res.computed == 2


def test_equal_resolved_scenarios_share_one_computation(tiny, tmp_path, counted):
    sc, label = tiny
    res = run_sweep(sc, label, _opts(tmp_path, "cluster.gpus=8,8.0", "strategy=ring"))
    assert len(res.table) == 2 and len(counted) == 1
    assert res.table["point_hash"].nunique() == 1


def test_resume_recomputes_only_missing_and_corrupt_points(tiny, tmp_path, counted):
    sc, label = tiny
    opts = _opts(tmp_path, "cluster.gpus=1,2,4,8", "strategy=ring")
    first = run_sweep(sc, label, opts)
    hashes = list(first.table["point_hash"])
    cache = tmp_path / "cache"
    assert sorted(p.stem for p in cache.glob("*.json")) == sorted(hashes)
    (cache / f"{hashes[0]}.json").unlink()                        # lost
    (cache / f"{hashes[1]}.json").write_text("{not json")         # truncated / garbage
    entry = json.loads((cache / f"{hashes[2]}.json").read_text())
    entry["rows"] = [{"samples_per_s": [1, 2]}]                   # valid JSON, wrong schema
    (cache / f"{hashes[2]}.json").write_text(json.dumps(entry))
    counted.clear()
    again = run_sweep(sc, label, opts)
    assert sorted(counted) == sorted(hashes[:3])
    assert again.computed == 3 and again.cached == 1 and again.discarded == 2
    assert again.to_csv_text() == first.to_csv_text()
    counted.clear()
    assert run_sweep(sc, label, opts).computed == 0 and counted == []


def test_interrupted_sweep_resumes_without_recomputing_finished_points(
        tiny, tmp_path, monkeypatch):
    sc, label = tiny
    opts = _opts(tmp_path, "cluster.gpus=1,2,4,8", "strategy=ring,tree")
    real = sweep_mod.run_point
    calls: list[str] = []
    k = 3

    def interrupting(doc, lab):
        if len(calls) == k:
            raise KeyboardInterrupt
        calls.append(point_hash(doc))
        return real(doc, lab)

    monkeypatch.setattr(sweep_mod, "run_point", interrupting)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(sc, label, opts)
    finished = list(calls)
    assert len(list((tmp_path / "cache").glob("*.json"))) == k
    assert not list((tmp_path / "cache").glob(".*"))  # no temporary files left behind
    calls.clear()
    monkeypatch.setattr(sweep_mod, "run_point",
                        lambda doc, lab: calls.append(point_hash(doc)) or real(doc, lab))
    res = run_sweep(sc, label, opts)
    assert len(calls) == 8 - k and not set(calls) & set(finished)
    assert list(res.table["point_hash"])[:k] == finished  # inline runs in point order


def test_csv_byte_identical_for_one_and_two_workers(tiny, tmp_path):
    sc, label = tiny
    axes = ("cluster.gpus=2,8", "strategy=ring,tree")
    one = run_sweep(sc, label, _opts(tmp_path, *axes, cache_dir=tmp_path / "c1"))
    two = run_sweep(sc, label, _opts(tmp_path, *axes, workers=2, cache_dir=tmp_path / "c2"))
    assert one.computed == two.computed == 4
    a = write_sweep_report(one, tmp_path / "r1") / "sweep.csv"
    b = write_sweep_report(two, tmp_path / "r2") / "sweep.csv"
    assert a.read_bytes() == b.read_bytes() == one.to_csv_text().encode()
    # and a cached rerun gives the same bytes again
    assert run_sweep(sc, label, _opts(tmp_path, *axes, cache_dir=tmp_path / "c1")
                     ).to_csv_text() == one.to_csv_text()


@pytest.mark.parametrize(("axis", "message"), [
    ("cluster.gpus=8,12", r"^--axis cluster\.gpus: value 12: .*multiple of .*8 GPUs"),
    ("cluster.gpus=8,0", r"^--axis cluster\.gpus: value 0: cluster\.gpus: .*greater than 0"),
    ("cluster.gpu=8", r"^--axis cluster\.gpu: unknown key 'gpu'; did you mean 'gpus'\?"),
    ("clustr.gpus=8", r"^--axis clustr\.gpus: unknown key 'clustr'; did you mean 'cluster'"),
    ("strategy=rnig", r"^--axis strategy: unknown strategy label 'rnig'; did you mean 'ring'\?"),
    ("cluster.preset=dgx-a10", r"^--axis cluster\.preset: value dgx-a10: .*'dgx-a100'"),
    ("iterations.x=3", r"^--axis iterations\.x: iterations holds a value"),
    ("strategies.5.algo=ring", r"^--axis strategies\.5\.algo: strategies is a list of 2"),
])
def test_bad_axis_fails_before_anything_runs(tiny, tmp_path, counted, axis, message):
    sc, label = tiny
    with pytest.raises(ConfigError, match=message) as err:
        run_sweep(sc, label, _opts(tmp_path, "strategy=ring", axis)
                  if not axis.startswith("strategy=") else _opts(tmp_path, axis))
    assert "\n" not in str(err.value)
    assert counted == [] and not (tmp_path / "cache").exists()


def test_axis_syntax_and_options_are_checked(tmp_path):
    assert parse_axis(" cluster.gpus = 8, 64 ") == ("cluster.gpus", ("8", "64"))
    for bad in ("cluster.gpus", "=8", "cluster.gpus=", "cluster.gpus=8,,64"):
        with pytest.raises(ConfigError, match="expected PATH=V1,V2"):
            parse_axis(bad)
    with pytest.raises(ConfigError, match="workers: must be >= 1, got 0"):
        SweepOptions(axes=(("seed", ("1",)),), workers=0)
    with pytest.raises(ConfigError, match="given twice"):
        run_sweep(parse_scenario(TINY), "t", _opts(tmp_path, "seed=1", "seed=2"))


def test_point_hash_is_canonical_and_sensitive():
    doc = {"a": 1, "b": {"c": [1, 2], "d": "x"}}
    same = {"b": {"d": "x", "c": [1, 2]}, "a": 1}
    assert point_hash(doc) == point_hash(same)
    assert point_hash(doc) != point_hash({**doc, "a": 2})
    assert len(point_hash(doc)) == 64


def test_seed_option_overrides_every_point(tiny, tmp_path):
    sc, label = tiny
    res = run_sweep(sc, label, _opts(tmp_path, "strategy=ring", seed=7))
    assert all(p.doc["seed"] == 7 for p in res.points)
    assert res.table["point_hash"][0] != run_sweep(
        sc, label, _opts(tmp_path, "strategy=ring")).table["point_hash"][0]


def test_dask_missing_gives_install_hint(tiny, tmp_path, monkeypatch):
    sc, label = tiny
    monkeypatch.setitem(sys.modules, "distributed", None)
    hint = r"^--dask needs the dask extra: pip install 'ddlsim\[dask\]'$"
    with pytest.raises(ConfigError, match=hint):
        run_sweep(sc, label, _opts(tmp_path, "strategy=ring,tree",
                                   dask_address="tcp://127.0.0.1:1"))


def test_sweep_on_a_local_dask_cluster(tiny, tmp_path):
    distributed = pytest.importorskip("distributed")
    sc, label = tiny
    axes = ("cluster.gpus=2,8", "strategy=tree")
    inline = run_sweep(sc, label, _opts(tmp_path, *axes, cache_dir=tmp_path / "inline"))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        res = run_sweep(sc, label, _opts(tmp_path, *axes, cache_dir=tmp_path / "dask",
                                         dask_address=cluster.scheduler_address))
    assert res.computed == 2 and len(list((tmp_path / "dask").glob("*.json"))) == 2
    assert res.to_csv_text() == inline.to_csv_text()


def test_report_files_table_and_plots(tiny, tmp_path):
    sc, label = tiny
    res = run_sweep(sc, label, _opts(tmp_path, "cluster.gpus=1,2,8", "strategy=ring,tree"))
    out = write_sweep_report(res, tmp_path / "report")
    names = sorted(p.name for p in out.iterdir())
    assert names == [".ddlsim-report", "report.html", "report.md", "scaling_efficiency.png",
                     "sweep.csv", "throughput.png"]
    md = (out / "report.md").read_text()
    assert md.count("\n| ") == 1 + 6  # header + one row per point
    assert "| 5 | 8 | tree |" in md
    assert (out / "sweep.csv").read_text() == res.to_csv_text()
    # no cluster.gpus axis: no efficiency plot; non-numeric axis: bars
    res2 = run_sweep(sc, label, _opts(tmp_path, "strategy=ring,tree"))
    names2 = sorted(p.name for p in write_sweep_report(res2, tmp_path / "r2").iterdir())
    assert "scaling_efficiency.png" not in names2 and "throughput.png" in names2
