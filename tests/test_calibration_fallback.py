"""A GPU generation the calibration rows lack borrows the GEMM efficiency its neighbours
achieve at the same precision, instead of the flat first-principles default."""

import math

import pytest

from ddlsim.api.calibration import Calibration


def test_missing_family_takes_the_geometric_mean_of_its_precision_class():
    c = Calibration(gemm_efficiency={"a100/half": 0.8, "v100/half": 0.5, "a100/tf32": 0.3},
                    default_efficiency=0.4)
    assert c.gemm("float16", "a100-80gb") == pytest.approx(0.8)  # its own entry first
    assert c.gemm("bfloat16", "h100-sxm") == pytest.approx(math.sqrt(0.8 * 0.5))
    assert c.gemm("float32", "h100-sxm") == pytest.approx(0.4)  # no fp32 entry anywhere
    with_class = Calibration(gemm_efficiency={"a100/half": 0.8, "half": 0.6})
    assert with_class.gemm("bfloat16", "h100-sxm") == pytest.approx(0.6)  # class entry wins
