"""ZeRO stages 1-3 / distributed optimizer / FSDP (Rajbhandari et al. 2020, arXiv
1910.02054): memory per GPU against the paper's closed forms, the communication that
replaces the gradient allreduce, and the job-level plumbing and advice."""

import math

import numpy as np
import pytest

from ddlsim import api
from ddlsim.api.dp import DPOptions, predict_dp
from ddlsim.api.pipeline import PipelineOptions, predict_model_parallel
from ddlsim.sim.memory import MemoryConfig, layer_memory, stage_memory
from ddlsim.sim.sync_dp import StepCost, SyncDPConfig, simulate_sync_dp
from ddlsim.sim.workloads import get_workload
from ddlsim.sim.zero import ring_bytes_per_gpu, zero_ops

GiB = 2**30


def _model_state(zero: int, d: int):
    wl = get_workload("gpt-small", 1)
    cfg = MemoryConfig(dtype="float16", grad_dtype="float16", optimizer="adam",
                       zero=zero, zero_group=d)
    mem = layer_memory(wl.layers, cfg, int(math.prod(wl.input_shape)))
    return wl, mem, stage_memory(mem, 0, 0, len(wl.layers), 1, 80 * GiB)


@pytest.mark.parametrize("d", [1, 8, 64])
def test_model_state_memory_matches_the_zero_paper_per_stage(d):
    # Fig. 1 / Sec. 5: (2 + 2 + K) Psi baseline, 2 Psi + 2 Psi + K Psi / Nd (P_os),
    # 2 Psi + (2 + K) Psi / Nd (P_os+g), (2 + 2 + K) Psi / Nd (P_os+g+p), K = 12
    k = 12
    wl, _, _ = _model_state(0, d)
    psi = float(sum(lay.param_count for lay in wl.layers))
    expected = {0: (2 + 2 + k) * psi, 1: 2 * psi + 2 * psi + k * psi / d,
                2: 2 * psi + (2 + k) * psi / d, 3: (2 + 2 + k) * psi / d}
    for zero, want in expected.items():
        _, mem, st = _model_state(zero, d)
        got = st.weights_bytes + st.grads_bytes + st.optimizer_bytes
        assert got == pytest.approx(want, rel=1e-12), zero
        # ZeRO-3 works on one gathered unit at a time (its full fp16 weights): a
        # transformer block, or a layer outside the blocks (here the token embedding)
        if zero == 3 and d > 1:
            h = wl.hyperparams["hidden"]
            block = 12 * h * h + 13 * h  # GPT block: attention, MLP, two layernorms
            other = max(lay.param_count for lay in wl.layers if not lay.name.startswith("h."))
            unit = 2 * max(block, other)
            assert st.gathered_bytes == pytest.approx(unit, rel=1e-12)
            assert st.total_bytes == pytest.approx(got + st.activations_bytes
                                                   + st.workspace_bytes + unit)
        else:
            assert st.gathered_bytes == 0.0


def _two_layer_cost() -> StepCost:
    return StepCost(layer_names=("A", "B"), fwd_s=np.array([1.0, 1.5]),
                    fwd_bounds=np.array([0, 1, 2]), bwd_s=np.array([1.0, 2.0, 2.0]),
                    bwd_bounds=np.array([0, 2, 3]), bwd_grad_bytes=np.array([20.0, 10.0]),
                    update_s=0.25)


def _fixed(env, nbytes):  # a collective of known cost: 0.5 s + 0.1 s per byte
    yield env.timeout(0.5 + 0.1 * nbytes)


def test_zero_schedules_on_a_hand_computable_case():
    cost = _two_layer_cost()
    base = dict(iterations=2, bucket_bytes=15, overlap=False)
    plain = simulate_sync_dp([cost] * 2, _fixed, SyncDPConfig(**base))
    np.testing.assert_allclose(plain.iteration_times_s, 2.5 + 5.0 + 4.0 + 0.25)
    # ZeRO-1/2: buckets reduce-scatter (the injected collective), then the step, then the
    # exposed all-gather of the 30 B of updated weights (3.5 s)
    z1 = simulate_sync_dp([cost] * 2, _fixed, SyncDPConfig(**base, zero=1, gather_bytes=30),
                          gather=_fixed)
    np.testing.assert_allclose(z1.iteration_times_s, 2.5 + 5.0 + 4.0 + 0.25 + 3.5)
    # ZeRO-3: the forward waits for its weights (3.5 s gather > 2.5 s forward), no
    # gather after the step
    z3 = simulate_sync_dp([cost] * 2, _fixed, SyncDPConfig(**base, zero=3, gather_bytes=30),
                          gather=_fixed)
    np.testing.assert_allclose(z3.iteration_times_s, 3.5 + 5.0 + 4.0 + 0.25)


def test_zero_ops_volumes_are_the_papers():
    n, d = 1e9, 8
    ar = ring_bytes_per_gpu(0, d, n)
    assert ar == pytest.approx(2 * (d - 1) / d * n)
    assert ring_bytes_per_gpu(1, d, n) == ring_bytes_per_gpu(2, d, n) == pytest.approx(ar)
    assert ring_bytes_per_gpu(3, d, n) == pytest.approx(1.5 * ar)  # 3 Psi vs 2 Psi
    assert zero_ops(2, 0.5) == (("reduce_scatter", 1.0), ("all_gather", 0.5))


def _bytes_carried(zero: int, dtype: str, grad: str) -> tuple[float, object]:
    opts = DPOptions(model="resnet50", batch_per_gpu=8, gpus=8, dtype=dtype, grad_dtype=grad,
                     iterations=2, zero=zero)
    pred = predict_dp(opts)
    return sum(r["bytes_carried"] for r in pred.link_stats), pred


@pytest.mark.parametrize("dtype,grad,ratio", [("float32", "float32", 1.0),
                                              ("bfloat16", "float32", 0.5)])
def test_dp_engine_carries_the_closed_form_volume_per_zero_stage(dtype, grad, ratio):
    base, pred0 = _bytes_carried(0, dtype, grad)
    assert pred0.summary()["zero"] == 0
    for zero in (1, 2, 3):
        got, pred = _bytes_carried(zero, dtype, grad)
        want = ring_bytes_per_gpu(zero, 8, 1.0, ratio) / ring_bytes_per_gpu(0, 8, 1.0)
        assert got / base == pytest.approx(want, rel=1e-9), zero
        assert pred.summary()["zero"] == zero
    if ratio == 1.0:  # same volume as the allreduce for stages 1-2, 1.5x for stage 3
        assert _bytes_carried(1, dtype, grad)[0] == pytest.approx(base, rel=1e-9)


def _gpt13b(zero: int) -> api.Job:
    return api.Job(workload=api.Workload("gpt3-13b"), cluster=api.Cluster("dgx-a100", 8),
                   batch=api.Batch(micro=1), parallelism=api.Parallelism(zero=zero))


def test_a_13b_model_fits_data_parallel_with_zero_and_the_advice_says_so():
    need0, cap = api.check_memory(_gpt13b(0))
    assert cap == 80 * GiB and need0 > cap
    need = {z: api.check_memory(_gpt13b(z))[0] for z in (1, 2, 3)}
    assert need[3] <= cap and need[3] < need[2] < need[1] < need0
    smallest = min(z for z in (1, 2, 3) if need[z] <= cap)
    advice = api.memory_advice(_gpt13b(0))
    msg = f"ZeRO-{smallest} (distributed optimizer) fits ({need[smallest] / GiB:.1f} GiB)"
    assert msg in advice
    assert advice.index(msg) < len(advice) - 1  # before the model-parallel suggestion
    assert "tensor x pipeline" in advice[-1]
    assert api.memory_advice(_gpt13b(3)) == []
    pred = api.predict(_gpt13b(3), calibration="default", max_events=None)
    assert pred.fits and pred.detail.summary()["zero"] == 3


def test_pipeline_engine_shards_over_dp_x_cp_and_gathers():
    kw = dict(model="gpt-small", micro_batch=1, micro_batches=4, stages=2, dp=2, cp=2,
              dtype="float32", grad_dtype="float32", placement="blocks")
    runs = {z: predict_model_parallel(PipelineOptions(**kw, zero=z)) for z in (0, 1, 3)}
    for z in (1, 3):
        a, b = runs[0].memory[0], runs[z].memory[0]
        assert b.optimizer_bytes == pytest.approx(a.optimizer_bytes / 4)
        assert b.weights_bytes == pytest.approx(a.weights_bytes / (4 if z == 3 else 1))
        assert runs[z].summary()["zero"] == z
    # one gradient sync per stage and iteration: reduce-scatter (+ gathers) instead
    dur = {z: sum(e - s for _, _, _, s, e in r.result.allreduces) for z, r in runs.items()}
    assert dur[3] > dur[1] > 0 and dur[0] > 0
