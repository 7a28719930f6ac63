"""Partitioner: exhaustive oracle on small cases (heterogeneous GPUs, memory limits)."""

import itertools

import numpy as np
import pytest

from ddlsim.errors import ConfigError
from ddlsim.sim.placement import manual_bounds, parse_ranges, partition


def brute_force(times, static, act, mult, cap):
    """Best bottleneck over every split of n layers into p non-empty ranges."""
    p, n = times.shape
    best = None
    for cuts in itertools.combinations(range(1, n), p - 1):
        b = (0, *cuts, n)
        ok, worst = True, 0.0
        for k in range(p):
            seg = slice(b[k], b[k + 1])
            if static[seg].sum() + mult[k] * act[seg].sum() > cap[k]:
                ok = False
                break
            worst = max(worst, times[k, seg].sum())
        if ok and (best is None or worst < best):
            best = worst
    return best


@pytest.mark.parametrize("seed", range(12))
def test_matches_exhaustive_search_heterogeneous(seed):
    rng = np.random.default_rng(seed)
    n, p = 9, 3
    base = rng.uniform(0.1, 2.0, n)
    speed = rng.uniform(0.5, 2.0, p)  # different GPU speeds
    times = base[None, :] * speed[:, None]
    static = rng.uniform(1, 5, n)
    act = rng.uniform(0, 3, n)
    mult = np.array([3.0, 2.0, 1.0])  # 1F1B: in-flight micro-batches fall with the stage
    cap = rng.uniform(12, 25, p)  # different memory sizes
    want = brute_force(times, static, act, mult, cap)
    got = partition(times, static, act, mult, cap)
    if want is None:
        assert not got.fits
    else:
        assert got.fits
        assert got.bottleneck_s == pytest.approx(want, rel=1e-8)
        b = got.bounds
        for k in range(p):
            seg = slice(b[k], b[k + 1])
            assert static[seg].sum() + mult[k] * act[seg].sum() <= cap[k] * (1 + 1e-9)


def test_uniform_layers_split_evenly():
    part = partition(np.ones(12), stages=4)
    assert part.bounds == (0, 3, 6, 9, 12)
    assert part.stage_time_s == (3.0, 3.0, 3.0, 3.0)
    assert part.balance == 1.0


def test_memory_pushes_layers_off_a_small_gpu():
    # stage 0 can hold only 2 layers of 10 B each; time alone would give 3/3
    part = partition(np.ones(6), static_bytes=np.full(6, 10.0), capacity_bytes=[20, 100],
                     stages=2)
    assert part.fits and part.bounds == (0, 2, 6)
    assert part.stage_memory_bytes == (20.0, 40.0)


def test_does_not_fit_is_a_result_not_an_error():
    part = partition(np.ones(4), static_bytes=np.full(4, 10.0), capacity_bytes=15, stages=2)
    assert not part.fits
    assert "no split fits in memory" in part.note
    assert part.bounds == (0, 2, 4)  # time-optimal split still reported


def test_manual_ranges():
    assert manual_bounds([2, 3, 1], 6) == (0, 2, 5, 6)
    assert parse_ranges("0-1,2-4,5-5", 6) == (0, 2, 5, 6)
    with pytest.raises(ConfigError, match="sum to the 6 layers"):
        manual_bounds([2, 3], 6)
    with pytest.raises(ConfigError, match=r"ranges\[1\]: must start at layer 2"):
        parse_ranges("0-1,3-5", 6)
    with pytest.raises(ConfigError, match="need at least 5 layers"):
        partition(np.ones(4), stages=5)
