"""``ddlsim converge`` and ``ddlsim lr-sweep`` on the command line: outcomes per strategy
and per seed, regimes per learning rate, and ``--json``."""

from __future__ import annotations

import json

from click.testing import CliRunner

from ddlsim.cli import cli
from ddlsim.convergence.outcomes import OUTCOMES, REGIMES


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_converge_json_gives_each_strategy_and_seed_an_outcome():
    res = run("converge", "--json", "--model", "mlp", "--workers", "2", "--epochs", "1",
              "--seeds", "0,1", "--strategy", "allreduce", "--strategy", "asp")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["calibration"].startswith("stored")
    assert doc["target_accuracy"] == 0.95
    rows = {r["strategy"]: r for r in doc["rows"]}
    assert list(rows) == ["allreduce", "asp"]
    for r in rows.values():
        assert r["outcome"] in OUTCOMES
        assert r["tta_seeds"] == 2
        per_seed = r["tta_outcomes"].split(",")
        assert len(per_seed) == 2 and set(per_seed) <= set(OUTCOMES)
        assert r["tta_reached"] == per_seed.count("reached")
        assert len(r["tta_times_s"].split(",")) == 2
    assert "completed" not in res.output and "reached-target" not in res.output


def test_converge_names_a_collapse_to_chance():
    # one rate for all and heavy momentum: ASP's stale gradients collapse the MLP
    res = run("converge", "--model", "mlp", "--workers", "4", "--epochs", "1",
              "--seeds", "0", "--strategy", "asp", "--lr", "0.3", "--momentum", "0.9",
              "--no-scale-lr")
    assert res.exit_code == 0, res.output
    assert "collapsed to chance" in res.output and "completed" not in res.output
    assert res.output.splitlines()[0].startswith("calibration: ")


def test_lr_sweep_json_labels_each_rate_with_its_regime(tmp_path):
    res = run("lr-sweep", "--json", "--model", "mlp", "--epochs", "0.5",
              "--lrs", "0.05,500", "--out", str(tmp_path / "s"))
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["calibration"].startswith("stored") and doc["strategy"] == "allreduce"
    assert [r["base_lr"] for r in doc["rows"]] == [0.05, 500]
    assert all(r["regime"] in REGIMES and r["outcome"] in OUTCOMES for r in doc["rows"])
    assert doc["rows"][1]["regime"] == "diverging" and doc["rows"][1]["outcome"] == "diverged"
    assert (tmp_path / "s" / "lr_sweep.png").stat().st_size > 0
    assert "regime" in (tmp_path / "s" / "report.md").read_text()


def test_lr_sweep_linear_warmup_policy_works_from_the_command_line():
    # the policy needs a reference batch: the command gives it one worker's --batch
    res = run("lr-sweep", "--model", "mlp", "--epochs", "0.2", "--lrs", "0.01",
              "--lr-policy", "linear-warmup")
    assert res.exit_code == 0, res.output
    assert "regime" in res.output
