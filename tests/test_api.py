"""The composition layer: kernels -> cost model -> cluster -> sync-DP prediction."""

import pytest

from ddlsim import api
from ddlsim.errors import ConfigError


def test_slower_network_scales_worse():
    fast = api.predict_dp(api.DPOptions(model="resnet50", cluster="dgx-a100", gpus=64,
                                        iterations=3))
    slow = api.predict_dp(api.DPOptions(model="resnet50", cluster="cloud-25gbe", gpus=64,
                                        iterations=3))
    assert 0 < slow.scaling_efficiency < fast.scaling_efficiency <= 1.0 + 1e-12
    assert slow.summary()["exposed_comm_s"] > fast.summary()["exposed_comm_s"]


def test_communication_heavy_model_scales_worse_on_ethernet():
    vgg = api.predict_dp(api.DPOptions(model="vgg16", cluster="cloud-25gbe", gpus=64,
                                       iterations=3))
    r50 = api.predict_dp(api.DPOptions(model="resnet50", cluster="cloud-25gbe", gpus=64,
                                       iterations=3))
    # VGG-16 has 5.4x ResNet-50's parameters for 3.8x its FLOPs: more bytes per FLOP.
    assert vgg.scaling_efficiency < r50.scaling_efficiency


def test_straggler_lowers_throughput():
    base = api.predict_dp(api.DPOptions(gpus=8, iterations=3))
    slow = api.predict_dp(api.DPOptions(gpus=8, iterations=3, slow_gpus=((3, 1.5),)))
    assert slow.samples_per_s == pytest.approx(base.samples_per_s / 1.5, rel=0.05)


def test_measured_cpu_profile_is_used_for_a_cpu_cluster(tmp_path):
    from ddlsim.kernels.profile import save_profile

    df, _ = api.bench_kernels(api.KernelBenchOptions(model="mlp", batch=16, device="cpu",
                                                     repeats=3, progress=False))
    path = save_profile(df, tmp_path / "mlp.csv")
    pred = api.predict_dp(api.DPOptions(model="mlp", batch_per_gpu=16, cluster="cpu-cluster",
                                        gpus=4, iterations=3, profile=str(path)))
    assert set(pred.cost_paths) == {"measured"}
    # One CPU node's step is the sum of the measured kernel medians (plus the update).
    measured = float((df["median_s"] * df["calls_per_step"]).sum())
    assert pred.result.iteration_times_s[0] >= measured * (1 - 1e-9)


def test_gpu_count_must_fill_nodes():
    with pytest.raises(ConfigError, match="gpus: must be a multiple of dgx-a100.s 8 GPUs per node"):
        api.predict_dp(api.DPOptions(gpus=12))
    with pytest.raises(ConfigError, match="algo"):
        api.DPOptions(algo="butterfly")


def test_slow_link_slows_the_allreduce():
    base = api.predict_dp(api.DPOptions(model="vgg16", cluster="cloud-25gbe", gpus=16,
                                        iterations=3))
    slow = api.predict_dp(api.DPOptions(model="vgg16", cluster="cloud-25gbe", gpus=16,
                                        iterations=3, slow_links=(("nic0.tx", 4.0),)))
    assert slow.summary()["exposed_comm_s"] > 2 * base.summary()["exposed_comm_s"]
    with pytest.raises(ConfigError, match="did you mean 'nic0.tx'"):
        api.predict_dp(api.DPOptions(gpus=16, slow_links=(("nic0.txx", 2.0),)))


def test_two_jobs_sharing_nics_slow_each_other():
    """Two DP jobs on one network: each job's allreduces share the NICs, so both slow down."""
    import numpy as np
    import simpy

    from ddlsim.sim.collectives import allreduce_ring
    from ddlsim.sim.network import Network
    from ddlsim.sim.sync_dp import StepCost, SyncDPConfig, sync_dp_process
    from ddlsim.sim.topology import make_cluster

    cluster = make_cluster("cloud-25gbe", 2, gpus_per_node=1)  # 2 GPUs, one NIC each
    cost = StepCost(("L",), np.array([0.01]), np.array([0, 1]), np.array([0.02]),
                    np.array([0, 1]), np.array([200e6]), 0.0)
    cfg = SyncDPConfig(iterations=3, bucket_bytes=1e9)

    def run(jobs: int) -> list:
        env = simpy.Environment()
        net = Network(env, cluster)
        boxes = [[] for _ in range(jobs)]
        for box in boxes:
            env.process(sync_dp_process(
                env, [cost, cost], lambda e, n: allreduce_ring(e, net, [0, 1], n), cfg,
                np.random.default_rng(0), box))
        env.run()
        return [b[0].makespan_s for b in boxes]

    compute = 3 * (0.01 + 0.02)
    alone = run(1)[0]
    together = run(2)
    # Both jobs compute in lock-step, then their allreduces share each NIC: each job's
    # communication time doubles while its compute time stays the same.
    for t in together:
        assert (t - compute) == pytest.approx(2 * (alone - compute), rel=0.01)
