"""Tensor-parallel communication overlap (sim.tensor_costs.layer_times, tp_overlap):
the exposed time of a layer's sequence-parallel collectives against a hand count."""

import pytest

from ddlsim.opspec import call
from ddlsim.sim.tensor_costs import layer_times
from ddlsim.sim.workloads.graph import Layer

GEMM = call("gemm", m=1024, n=1024, k=1024)
NORM = call("layernorm_fwd", rows=1024, cols=1024)
LAYER = Layer("h.0.mlp.fc1", "linear", (GEMM, NORM), (GEMM, GEMM))
T_GEMM, T_NORM = 2.0, 0.5  # seconds, by construction of the estimate below


def estimate(kc, dtype):
    return T_GEMM if kc.op == "gemm" else T_NORM


def tp_time(op, nbytes):
    return nbytes / 1e6  # 1 MB/s: a collective of e elements (2 bytes) takes 2e-6 e s


def times(comm, overlap):
    fwd, bwd, _ = layer_times([LAYER], [comm], estimate, "bfloat16", tp_time,
                              tp_overlap=overlap)
    return float(fwd[0]), float(bwd[0])


def test_without_overlap_every_collective_is_exposed():
    comm = (("fwd", "all_gather", 1_000_000), ("bwd", "reduce_scatter", 1_000_000))
    assert times(comm, 0) == pytest.approx((T_GEMM + T_NORM + 2.0, 2 * T_GEMM + 2.0))


def test_a_collective_shorter_than_its_gemms_exposes_one_chunk():
    # forward: 1 s all-gather under 2 s of GEMM, 4 chunks -> 0.25 s exposed;
    # backward: 1 s reduce-scatter under 4 s of GEMMs -> 0.25 s
    comm = (("fwd", "all_gather", 500_000), ("bwd", "reduce_scatter", 500_000))
    assert times(comm, 4) == pytest.approx((T_GEMM + T_NORM + 0.25, 2 * T_GEMM + 0.25))


def test_a_collective_longer_than_its_gemms_exposes_the_excess_and_one_chunk():
    # forward: 3 s of all-gather against 2 s of GEMM, 2 chunks -> 1 + 1.5 = 2.5 s
    comm = (("fwd", "all_gather", 1_500_000),)
    assert times(comm, 2)[0] == pytest.approx(T_GEMM + T_NORM + 2.5)


def test_an_allreduce_is_never_overlapped():
    comm = (("fwd", "allreduce", 500_000),)
    assert times(comm, 8)[0] == pytest.approx(times(comm, 0)[0])
