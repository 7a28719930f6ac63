"""The command line: real runs through click's CliRunner, and one-line errors."""

import re

import pandas as pd
import pytest
from click.testing import CliRunner

from ddlsim.cli import cli, main


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_help_lists_the_commands():
    out = run("--help").output
    for cmd in ("kernels", "dp", "collectives", "devices", "models", "demo"):
        assert cmd in out


def test_kernels_bench_writes_a_profile_that_show_reads(tmp_path):
    path = tmp_path / "p.csv"
    res = run("kernels", "bench", "--model", "mlp", "--batch", "8", "--repeats", "3",
              "--device", "cpu", "--out", str(path))
    assert res.exit_code == 0, res.output
    assert "backend: numpy" in res.output
    df = pd.read_csv(path)
    assert {"gemm", "sgd_update", "softmax_xent_fwd"} <= set(df["op"])
    assert (df["median_s"] > 0).all() and (df["p10_s"] <= df["median_s"]).all()
    shown = run("kernels", "show", str(path))
    assert shown.exit_code == 0 and "kernels measured on" in shown.output
    # the device identity travels beside the profile and is shown with it
    assert "numpy_version=" in shown.output and "blas=" in shown.output


def test_dp_prints_a_row_per_gpu_count_and_writes_a_report(tmp_path):
    res = run("dp", "--model", "resnet50", "--gpus", "8,16", "--iterations", "3",
              "--out", str(tmp_path / "r"))
    assert res.exit_code == 0, res.output
    summary = pd.read_csv(tmp_path / "r" / "summary.csv")
    assert summary["gpus"].tolist() == [8, 16]
    assert (summary["scaling_efficiency"] <= 1.0 + 1e-9).all()
    for name in ("report.md", "trace.json", "scaling.png", "buckets.csv", "update_log.csv"):
        assert (tmp_path / "r" / name).stat().st_size > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_collectives_table_follows_nccl_tests_conventions():
    res = run("collectives", "--cluster", "dgx-a100", "--nodes", "1", "--min-bytes", "1G",
              "--max-bytes", "1G", "--raw")
    assert res.exit_code == 0, res.output
    line = res.output.strip().splitlines()[-1].split()
    # 1 GiB ring allreduce on 8 GPUs at NVSwitch line rate: busbw = algbw * 2*7/8
    algbw = float(line[4])
    busbw = float(line[6])
    assert busbw == pytest.approx(algbw * 2 * 7 / 8, rel=0.02)


@pytest.mark.parametrize("args, message", [
    (["dp", "--cluster", "dgx-a10"], "did you mean 'dgx-a100'"),
    (["dp", "--gpus", "12", "--cluster", "dgx-a100"], "gpus: must be a multiple of"),
    (["dp", "--model", "resnet5"], "did you mean 'resnet50'"),
    (["kernels", "show", "/nonexistent/profile.csv"], "profile file not found"),
    (["kernels", "bench", "--dtype", "bfloat16", "--device", "cpu"], "bfloat16"),
])
def test_expected_errors_are_one_line_and_exit_1(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_corrupt_profile_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("op,shape\ngemm,m=1\n")
    with pytest.raises(SystemExit) as exc:
        main(["kernels", "show", str(bad)])
    assert exc.value.code == 1
    assert "missing column" in capsys.readouterr().err


def test_gpu_request_without_gpu_is_a_one_line_error(monkeypatch, capsys):
    from ddlsim.kernels import backend

    monkeypatch.setattr(backend, "_detect_cupy", lambda: (None, "no CUDA device: test"))
    with pytest.raises(SystemExit) as exc:
        main(["kernels", "bench", "--device", "gpu"])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert "no CUDA device" in err and len(err.splitlines()) == 1


def test_scenarios_list_and_show():
    out = run("scenarios", "list").output
    for name in ("digits-sync-vs-async", "resnet50-dp-scaling", "vgg16-ps-vs-allreduce",
                 "gpt-model-parallel-split", "gpt3-175b-3d", "digits-learning-rate"):
        assert name in out
    shown = run("scenarios", "show", "resnet50-dp-scaling").output
    assert "model: resnet50" in shown


def test_run_writes_a_comparison_report(tmp_path):
    import json

    scen = tmp_path / "s.yaml"
    scen.write_text(
        "name: small\nworkload: {model: lenet5, batch_per_gpu: 16}\n"
        "cluster: {preset: cloud-25gbe, gpus: 16}\niterations: 3\n"
        "strategies:\n  - {kind: allreduce, name: ring, algo: ring}\n"
        "  - {kind: allreduce, name: tree, algo: tree}\n")
    res = run("run", str(scen), "--out", str(tmp_path / "r"), "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert [s["strategy"] for s in doc["strategies"]] == ["ring", "tree"]
    html = (tmp_path / "r" / "report.html").read_text()
    # throughput + (scaling + timeline) per strategy, all embedded
    assert html.count("data:image/png;base64,") == 1 + 2 * 2
    assert (tmp_path / "r" / "ring" / "trace.json").exists()


def test_run_is_byte_identical_for_the_same_seed(tmp_path):
    for d in ("a", "b"):
        assert run("run", "vgg16-ps-vs-allreduce", "--quiet", "--out",
                   str(tmp_path / d)).exit_code == 0
    for name in ("summary.csv", "allreduce-ring/iterations.csv", "allreduce-ring/buckets.csv",
                 "allreduce-hierarchical/update_log.csv", "ps-asp/update_log.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_invalid_scenario_writes_nothing(tmp_path, capsys):
    scen = tmp_path / "bad.yaml"
    scen.write_text("name: bad\nworkload: {model: resnet50}\ncluster: {gpus: 12}\n"
                    "strategies: [{kind: allreduce}]\n")
    with pytest.raises(SystemExit) as exc:
        main(["run", str(scen), "--out", str(tmp_path / "out")])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "bad.yaml: strategies.0" in err and "gpus: must be a multiple of" in err
    assert not (tmp_path / "out").exists()


def test_python_dash_m_works():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "ddlsim", "--version"], capture_output=True,
                         text=True, check=True)
    assert "ddlsim" in out.stdout


def test_validate_writes_the_markdown(tmp_path):
    out = tmp_path / "v.md"
    res = run("validate", "--category", "data_parallel", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert re.search(r"data_parallel: \d+ of 74 rows predicted; .*leave-one-source-out median",
                     res.output)
    assert out.read_text().startswith("#") and out.with_suffix(".png").stat().st_size > 0


def test_ps_compare_shows_every_strategy(tmp_path):
    res = run("ps", "--model", "lenet5", "--workers", "4", "--updates", "40", "--compare",
              "--out", str(tmp_path / "ps"))
    assert res.exit_code == 0, res.output
    for name in ("allreduce", "ps-bsp", "ps-asp", "ps-ssp", "ps-backup"):
        assert name in res.output
    assert (tmp_path / "ps" / "update_log.csv").exists()


def test_pipeline_and_3d_commands(tmp_path):
    res = run("pipeline", "--model", "gpt-small", "--stages", "2", "--micro-batches", "4",
              "--schedule", "gpipe", "--out", str(tmp_path / "p"))
    assert res.exit_code == 0, res.output
    assert "gpipe" in res.output and (tmp_path / "p" / "report.md").exists()
    res = run("3d", "--model", "gpt3-1.3b", "--tp", "2", "--pp", "2", "--dp", "2",
              "--global-batch", "16")
    assert res.exit_code == 0, res.output
    assert "tokens_per_s" in res.output


def test_place_reports_what_would_fit_instead_of_failing():
    res = run("place", "--model", "gpt3-175b", "--stages", "2")
    assert res.exit_code == 0, res.output
    assert "does not fit" in res.output


def test_converge_compares_strategies_on_real_training(tmp_path):
    res = run("converge", "--model", "mlp", "--workers", "2", "--epochs", "1", "--seeds", "0",
              "--strategy", "allreduce", "--strategy", "asp", "--out", str(tmp_path / "c"))
    assert res.exit_code == 0, res.output
    summary = pd.read_csv(tmp_path / "c" / "summary.csv")
    assert summary["strategy"].tolist() == ["allreduce", "asp"]
    assert (summary["final_test_acc"] > 0.3).all()  # one epoch of real training learns
    # ASP applies one worker's gradient per update: about W times the updates of allreduce.
    ratio = summary.loc[1, "updates"] / summary.loc[0, "updates"]
    assert 1.5 < ratio < 2.5
    assert (tmp_path / "c" / "convergence.png").stat().st_size > 0


def test_lr_sweep_reports_divergence_as_an_outcome(tmp_path):
    res = run("lr-sweep", "--model", "mlp", "--workers", "2", "--epochs", "0.5",
              "--lrs", "0.05,500", "--out", str(tmp_path / "s"))
    assert res.exit_code == 0, res.output
    sweep = pd.read_csv(tmp_path / "s" / "sweep.csv")
    assert sweep["outcome"].tolist()[-1] == "diverged"


def test_plan_prints_the_frontier_and_the_choice(tmp_path):
    res = run("plan", "--model", "resnet50", "--target", "epochs=90", "--deadline", "3h",
              "--budget", "5000USD", "--max-gpus", "32", "--gpus", "h100-sxm",
              "--out", str(tmp_path / "p"))
    assert res.exit_code == 0, res.output
    assert "Pareto frontier" in res.output and "cheapest meeting the deadline" in res.output
    assert (tmp_path / "p" / "pareto.png").exists()


def test_plan_bad_gpu_is_a_one_line_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["plan", "--model", "resnet50", "--target", "epochs=1", "--gpus", "tpu-v5"])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert "tpu-v5" in err and len(err.splitlines()) == 1


def test_sweep_runs_every_point_and_reuses_the_cache(tmp_path):
    args = ["sweep", "resnet50-dp-scaling", "--axis", "cluster.gpus=8,16",
            "--axis", "cluster.preset=dgx-a100,cloud-25gbe", "--workers", "1",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "s")]
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert "4 points: 4 computed, 0 from the cache" in first.output
    second = run(*args)
    assert "4 points: 0 computed, 4 from the cache" in second.output
    table = pd.read_csv(tmp_path / "s" / "sweep.csv")
    assert sorted(zip(table["cluster.gpus"], table["cluster.preset"], strict=True)) == [
        (8, "cloud-25gbe"), (8, "dgx-a100"), (16, "cloud-25gbe"), (16, "dgx-a100")]


def test_run_measure_times_the_kernels_here_and_uses_them(tmp_path):
    scen = tmp_path / "cpu.yaml"
    scen.write_text("name: cpu-mlp\nworkload: {model: mlp, batch_per_gpu: 32}\n"
                    "cluster: {preset: cpu-cluster, gpus: 2}\niterations: 3\n"
                    "strategies: [{kind: allreduce, name: ring, algo: ring}]\n")
    res = run("run", str(scen), "--measure", "--device", "cpu", "--out", str(tmp_path / "r"))
    assert res.exit_code == 0, res.output
    assert "measured" in res.output
    assert (tmp_path / "r" / "kernel_profile.csv").exists()
    assert (tmp_path / "r" / "kernel_profile.device.json").exists()
    # every kernel of the step was priced from the measured rows, none by roofline
    report = (tmp_path / "r" / "ring" / "report.md").read_text()
    assert "Kernel costs: measured:" in report and "roofline" not in report.split(
        "Kernel costs:")[1].split("(")[0]


def test_faults_goodput_and_interval_sweep(tmp_path):
    res = run("faults", "--model", "resnet50", "--gpus", "64", "--gpu-mtbf-hours", "500")
    assert res.exit_code == 0, res.output
    assert "goodput_fraction" in res.output
    res = run("faults", "--gpus", "64", "--gpu-mtbf-hours", "50", "--checkpoint-gb", "100",
              "--train-samples", "1e9", "--sweep", "--out", str(tmp_path / "f"))
    assert res.exit_code == 0, res.output
    assert "Young/Daly" in res.output and (tmp_path / "f" / "report.md").exists()


@pytest.mark.parametrize("args", [
    ["dp", "--gpus", "8", "--iterations", "50", "--max-events", "20"],
    ["pipeline", "--stages", "2", "--micro-batches", "4", "--max-events", "10"],
    ["ps", "--workers", "4", "--updates", "100", "--max-events", "10"],
])
def test_event_budget_stops_with_a_one_line_error(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert "exceeded the event budget" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["dp", "--gpus", "abc"], "expected integers separated by commas"),
    (["dp", "--bogus"], "No such option '--bogus'"),
    (["nosuch"], "No such command 'nosuch'"),
    (["sweep", "resnet50-dp-scaling"], "Missing option '--axis'"),
])
def test_usage_errors_are_one_line_too(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "--help" in err


@pytest.mark.parametrize("args, message, code", [
    (["dp", "--seed", "-1"], "'--seed': -1 is not in the range", 2),
    (["converge", "--seeds", "-1", "--epochs", "0.1"], "seeds must be in [0, 2**32)", 2),
    (["collectives", "--min-bytes", "0"], "at least 1 byte", 2),
    (["collectives", "--min-bytes", "nan"], "at least 1 byte", 2),
    (["collectives", "--min-bytes", "1G", "--max-bytes", "8M"], "must not exceed", 2),
    (["collectives", "--op", "sendrecv", "--gpus-per-node", "1"], "at least two GPUs", 2),
    (["dp", "--gpus", "2000000"], "GPU counts must be in", 2),
    (["dp", "--noise", "normal", "--noise-cv", "5"], "noise.cv: must be <= 0.3", 1),
    (["validate", "--category", "nope"], "unknown category 'nope'", 1),
    (["plan", "--model", "resnet50", "--target", "epochs=1", "--dataset-samples", "0"],
     "dataset_samples: must be >= 1", 1),
    (["kernels", "bench", "--model", "lenet-digits", "--batch", "100000000", "--repeats", "1"],
     "use a smaller --batch", 1),
])
def test_review_found_inputs_are_one_line_errors(args, message, code, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == code
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_scenario_name_cannot_escape_the_output_folder(tmp_path, capsys):
    scen = tmp_path / "s.yaml"
    scen.write_text("name: ../../etc\nworkload: {model: mlp}\nstrategies: [{kind: allreduce}]\n")
    with pytest.raises(SystemExit) as exc:
        main(["run", str(scen)])
    assert exc.value.code == 1
    assert "name: String should match pattern" in capsys.readouterr().err


def test_out_over_a_users_folder_is_refused(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(SystemExit) as exc:
        main(["dp", "--model", "lenet5", "--gpus", "2", "--iterations", "2", "--out", str(mine)])
    assert exc.value.code == 2  # refused while parsing, before any simulation
    assert "is not a ddlsim report" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep"


def test_dp_exports_the_chosen_iterations_and_ranks(tmp_path):
    import json

    res = run("dp", "--gpus", "16", "--iterations", "4", "--trace-iteration", "1",
              "--trace-iteration", "2", "--trace-rank", "0", "--trace-rank", "9",
              "--out", str(tmp_path / "t"))
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "t" / "trace.json").read_text())
    procs = {e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "process_name"}
    assert procs == {"gpu0", "gpu9"}
    steps = [e for e in doc["traceEvents"] if e["ph"] == "X" and e["name"] == "optimizer step"]
    assert len(steps) == 2 * 2  # two iterations x two ranks


@pytest.mark.parametrize("category", ["async_vs_sync", "collectives", "pipeline_parallel",
                                      "time_to_train"])
def test_validate_one_category_at_a_time(category, tmp_path):
    res = run("validate", "--category", category, "--out", str(tmp_path / "v.md"))
    assert res.exit_code == 0, res.output
    assert re.search(rf"{category}: \d+ of \d+ rows predicted", res.output)
