"""``ddlsim search``: ranked, memory-feasible layouts of a decoder, fastest first."""

import json

from click.testing import CliRunner

from ddlsim import api
from ddlsim.cli import cli


def test_search_ranks_feasible_layouts_fastest_first(tmp_path):
    res = CliRunner().invoke(cli, ["search", "--model", "gpt3-1.3b", "--gpus", "8",
                                   "--cluster", "dgx-a100", "--global-batch", "64",
                                   "--top", "3", "--json", "--out", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    rows = doc["layouts"]
    assert len(rows) >= 2 and doc["fitting"] >= len(rows)
    assert [r["iteration_s"] for r in rows] == sorted(r["iteration_s"] for r in rows)
    assert all(r["memory_bytes"] <= r["capacity_bytes"] for r in rows)
    assert all(r["tp"] * r["pp"] * r["dp"] * r["cp"] == 8 for r in rows)
    assert doc["estimated"] == doc["enumerated"] >= doc["fitting"] and doc["layouts_per_s"] > 0
    best = rows[0]
    # the CLI's best is what api.predict gives for that layout
    job = api.Job(workload=api.Workload("gpt3-1.3b"), cluster=api.Cluster("dgx-a100", 8),
                  parallelism=api.Parallelism(tp=best["tp"], pp=best["pp"], cp=best["cp"],
                                              vp=best["vp"], zero=best["zero"],
                                              recompute=best["recompute"], placement="blocks"),
                  batch=api.Batch(global_batch=64, micro=best["micro_batch"]),
                  strategy=api.Strategy(kind="3d"))
    assert api.predict(job).iteration_s == best["iteration_s"]
    assert (tmp_path / "s" / "layouts.png").stat().st_size > 10_000
    assert "fastest" in (tmp_path / "s" / "report.md").read_text()


def test_search_refuses_a_model_that_is_not_a_decoder():
    res = CliRunner().invoke(cli, ["search", "--model", "resnet50", "--gpus", "8"])
    assert res.exit_code != 0
    assert "needs a decoder" in str(res.exception)
