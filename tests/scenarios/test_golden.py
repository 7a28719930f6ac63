"""Golden tables for two small scenarios, derived by hand rather than recorded.

Every kernel of the MLP's training step is given a measured time of exactly 1 ms (a
profile fixture), the cluster is the CPU preset (no PCIe copy, one 10 GbE NIC per node)
at line rate, and the gradients (one bucket) are allreduced with a ring. So an iteration
is exactly: forward kernels + backward kernels + one ring allreduce + update kernels, and
the table can be written down from the closed forms.
"""

import pandas as pd
import pytest
from click.testing import CliRunner

from ddlsim.api.kernels import training_step_calls
from ddlsim.cli import cli
from ddlsim.kernels.host import detect_host
from ddlsim.kernels.profile import COLUMNS
from ddlsim.sim.collectives import ring_allreduce_time
from ddlsim.sim.topology import make_cluster, route
from ddlsim.sim.workloads import get_workload

KERNEL_S = 1e-3
BATCH = 16


def profile_fixture(path):
    calls = training_step_calls(get_workload("mlp", BATCH))
    rows = [{"op": kc.op, "shape": kc.shape_key, "dtype": "float32",
             "device": detect_host().model, "backend": "numpy", "median_s": KERNEL_S,
             "p10_s": KERNEL_S, "p90_s": KERNEL_S, "repeats": 1, "inner": 1, "flops": 0,
             "bytes": 0, "flops_per_s": 0, "bytes_per_s": 0, "calls_per_step": 1}
            for kc in dict.fromkeys(calls)]
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)


def expected_row(nodes: int, slow_factor: float = 1.0) -> dict:
    w = get_workload("mlp", BATCH)
    fwd = sum(len(layer.fwd) for layer in w.layers) * KERNEL_S
    bwd = sum(len(layer.bwd) for layer in w.layers) * KERNEL_S
    update = len(w.update) * KERNEL_S
    compute = (fwd + bwd + update) * slow_factor
    cluster = make_cluster("cpu-cluster", nodes)
    alpha = route(cluster, 0, 1)[1]
    comm = ring_allreduce_time(nodes, w.param_count * 4, cluster.nic_bw_Bps, alpha)
    iteration = compute + comm
    single_samples_per_s = BATCH / (fwd + bwd + update)  # one full-speed worker, no comm
    samples_per_s = nodes * BATCH / iteration
    return {"gpus": nodes, "iteration_s": iteration, "samples_per_s": samples_per_s,
            "scaling_efficiency": samples_per_s / (nodes * single_samples_per_s)}


SCENARIO = """
name: golden-{name}
workload: {{model: mlp, batch_per_gpu: {batch}}}
cluster: {{preset: cpu-cluster, gpus: {nodes}, calibrated: false}}
strategies: [{{kind: allreduce, name: ring, algo: ring}}]
iterations: 4
profile: {profile}
faults: {{slow_gpus: {slow}}}
"""


@pytest.mark.parametrize("name, nodes, slow", [("two-nodes", 2, {}),
                                               ("four-nodes-straggler", 4, {1: 2.0})])
def test_golden_table(tmp_path, name, nodes, slow):
    profile = tmp_path / "profile.csv"
    profile_fixture(profile)
    scen = tmp_path / f"{name}.yaml"
    scen.write_text(SCENARIO.format(name=name, batch=BATCH, nodes=nodes, profile=profile,
                                    slow=slow or "{}"))
    res = CliRunner().invoke(cli, ["run", str(scen), "--quiet", "--out", str(tmp_path / "r")],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    got = pd.read_csv(tmp_path / "r" / "summary.csv").iloc[0]
    factor = max(slow.values(), default=1.0)
    want = expected_row(nodes, factor)
    assert got["gpus"] == want["gpus"]
    for col in ("iteration_s", "samples_per_s", "scaling_efficiency"):
        assert got[col] == pytest.approx(want[col], rel=1e-5), col
