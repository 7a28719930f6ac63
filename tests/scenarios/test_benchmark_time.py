"""A scenario's ``benchmark`` key: each strategy's time to the MLPerf target from the
reference convergence points, next to the replay check (``convergence.proxy``)."""

import pytest

from ddlsim.api.run import resolve, run_scenario
from ddlsim.convergence.rcp import converge_at
from ddlsim.errors import ConfigError
from ddlsim.reports.run import write_run_report
from ddlsim.scenarios.loader import parse_scenario

BASE = ("name: t\nworkload: {model: resnet50, batch_per_gpu: 64}\n"
        "cluster: {preset: aws-p3-16xlarge, gpus: 32}\n"
        "strategies: [{kind: allreduce, name: ar}, {kind: ps, name: asp, mode: asp}]\n"
        "iterations: 3\n")


def test_each_synchronous_strategy_gets_the_rcp_steps_at_its_global_batch(tmp_path):
    sc = parse_scenario(BASE + "benchmark: auto\nconvergence: {proxy: lenet-digits, "
                        "proxy_batch: 8, epochs: 2, seeds: []}\n", "t.yaml")
    run = run_scenario(sc, "t")
    rows = {r["strategy"]: r for r in run.summary().to_dict("records")}
    steps = converge_at("resnet", 32 * 64).steps
    assert rows["ar"]["benchmark_steps"] == steps
    assert rows["ar"]["benchmark_train_s"] == pytest.approx(steps * rows["ar"]["iteration_s"])
    assert rows["ar"]["benchmark_time_to_train_s"] >= rows["ar"]["benchmark_train_s"]
    assert rows["ar"]["benchmark_note"] == ""  # 2,048 images lie in the published range
    assert "synchronous SGD" in rows["ps-asp"]["benchmark_note"]
    # the replay trained the proxy with each strategy's update log
    assert rows["ps-asp"]["updates"] > rows["ar"]["updates"] > 0
    folder = write_run_report(run, tmp_path / "r")
    report = (folder / "report.md").read_text()
    assert "MLPerf target, and the replay check" in report
    assert "lenet-digits (the proxy for resnet50)" in report
    assert "Time to train at benchmark scale" in (folder / "report.html").read_text()


def test_an_unknown_benchmark_is_a_one_line_error_before_simulating():
    sc = parse_scenario(BASE + "benchmark: resnett\n", "t.yaml")
    with pytest.raises(ConfigError, match="resnett") as err:
        resolve(sc, "t.yaml")
    assert "\n" not in str(err.value)


def test_replaying_a_model_too_big_to_train_needs_a_proxy():
    with pytest.raises(ConfigError, match="convergence.proxy"):
        parse_scenario(BASE + "convergence: {epochs: 2}\n", "t.yaml")
