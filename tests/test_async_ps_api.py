"""api.async_ps: options, predictions, the strategy comparison, validation rows, report."""

from __future__ import annotations

import pandas as pd
import pytest

from ddlsim import api
from ddlsim.api.async_ps import PSOptions, predict_ps
from ddlsim.api.compare import compare_strategies
from ddlsim.errors import ConfigError
from ddlsim.reports.async_ps import comparison_markdown, write_ps_report
from ddlsim.sim.updates import UPDATE_LOG_COLUMNS

PUBLISHED = pd.read_csv(__import__("pathlib").Path(__file__).parents[1]
                        / "src/ddlsim/data/published.csv")


def test_options_validate():
    with pytest.raises(ConfigError, match="mode"):
        PSOptions(mode="async")
    with pytest.raises(ConfigError, match="placement"):
        PSOptions(placement="remote")
    with pytest.raises(ConfigError, match="workers"):
        PSOptions(workers=0)


def test_predict_ps_hosts_bounded_by_ideal_and_server_nic():
    opts = PSOptions(model="lenet5", batch_per_worker=16, cluster="cpu-cluster", workers=4,
                     mode="asp", updates=60, shards=2, placement="hosts", server_nic_Gbps=1.0)
    p = predict_ps(opts)
    s = p.summary()
    assert p.cluster.nodes == 4 + 2  # two server hosts appended
    assert s["updates"] == 60 and s["samples_per_s"] <= s["ideal_samples_per_s"] * (1 + 1e-9)
    nics = [r for r in p.result.server_links if r["kind"].startswith("nic")]
    assert nics and all(r["capacity_Bps"] == pytest.approx(1e9 / 8) for r in nics)
    assert sum(sh.nbytes for sh in p.shards) == pytest.approx(
        __import__("ddlsim.sim.workloads", fromlist=["x"]).get_workload("lenet5", 16)
        .grad_bytes())
    assert all(sh.apply_s > 0 for sh in p.shards)


def test_compare_strategies_table():
    job = api.Job(workload=api.Workload("resnet50"), cluster=api.Cluster("cpu-cluster", 4),
                  batch=api.Batch(micro=8),
                  strategy=api.Strategy(kind="ps", updates=40, backup_workers=1,
                                        staleness_bound=1))
    df = compare_strategies(job, straggler=(-1, 3.0))
    assert list(df["strategy"][:5]) == ["allreduce", "ps-bsp", "ps-asp", "ps-ssp", "ps-backup"]
    assert set(df["straggler"]) == {"none", "worker 3 x3"}
    slow = df[df["straggler"] != "none"].set_index("strategy")["slowdown"]
    # Asynchronous and backup-worker training shrug off a 3x straggler that BSP waits for.
    assert slow["ps-asp"] < 0.8 * slow["ps-bsp"] and slow["ps-backup"] < 0.8 * slow["ps-bsp"]
    assert slow["allreduce"] > 2.0
    assert (df.loc[df["strategy"].isin(["allreduce", "ps-bsp", "ps-backup"]),
                   "staleness_mean"] == 0).all()
    md = comparison_markdown(df)
    assert md.count("\n| ") == len(df) + 1


def test_report_files(tmp_path):
    opts = PSOptions(model="lenet5", batch_per_worker=8, cluster="cpu-cluster", workers=3,
                     updates=30, mode="ssp", staleness_bound=1)
    p = predict_ps(opts)
    out = write_ps_report([p], tmp_path / "ps")
    log = pd.read_csv(out / "update_log.csv")
    assert list(log.columns[:len(UPDATE_LOG_COLUMNS)]) == list(UPDATE_LOG_COLUMNS)
    assert len(log) == 30
    assert (out / "staleness.png").stat().st_size > 1000
    assert "ps-ssp" in (out / "report.md").read_text()


def test_overlap_option_reaches_the_simulator_and_helps():
    base = dict(model="lenet5", batch_per_worker=16, cluster="cpu-cluster", workers=2,
                mode="asp", updates=20, shards=2, placement="hosts", server_nic_Gbps=1.0)
    assert PSOptions(**base).ps_config().overlap is False  # opt-in
    assert PSOptions(**base, overlap=True).ps_config().overlap is True
    on = predict_ps(PSOptions(**base, overlap=True)).summary()
    off = predict_ps(PSOptions(**base, overlap=False)).summary()
    assert off["samples_per_s"] <= on["samples_per_s"] <= on["ideal_samples_per_s"] * (1 + 1e-9)

