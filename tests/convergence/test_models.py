"""Models: same parameters as the simulator's layer graphs, exact gradients, seeded init."""

from __future__ import annotations

import numpy as np
import pytest

from ddlsim.convergence.data import from_arrays, load_digits
from ddlsim.convergence.models import LeNetDigits, Mlp, get_model
from ddlsim.errors import ConfigError
from ddlsim.sim.workloads import lenet_digits, mlp


def test_parameter_counts_match_the_workload_graphs():
    assert LeNetDigits().layout.size == lenet_digits(8).param_count == 1898
    assert Mlp().layout.size == mlp(8).param_count == 64 * 128 + 128 + 128 * 10 + 10
    assert Mlp((64, 32, 16, 10)).layout.size == mlp(8, sizes=(64, 32, 16, 10)).param_count


def test_layer_slices_cover_the_flat_vector_once_per_workload_update_call():
    layout = LeNetDigits().layout
    slices = layout.layer_slices()
    assert [name for name, _ in slices] == ["conv1", "conv2", "fc3"]
    sizes = [sl.stop - sl.start for _, sl in slices]
    assert sizes == [kc.params["numel"] for kc in lenet_digits(8).update]
    assert slices[0][1].start == 0 and slices[-1][1].stop == layout.size


@pytest.mark.parametrize("model", [LeNetDigits(), Mlp((64, 12, 10))], ids=["lenet", "mlp"])
def test_backward_matches_central_differences_float64(model):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, *model.input_shape))
    y = np.array([1, 7, 3])
    w = model.layout.init(5, np, "float64")
    w += 0.05 * rng.standard_normal(w.shape)  # non-zero biases too
    _, g = model.loss_and_grad(w, x, y)
    idx = rng.choice(w.size, size=60, replace=False)
    eps = 1e-6
    for i in idx:
        wp, wm = w.copy(), w.copy()
        wp[i] += eps
        wm[i] -= eps
        fd = (float(model.loss_and_grad(wp, x, y)[0]) -
              float(model.loss_and_grad(wm, x, y)[0])) / (2 * eps)
        assert g[i] == pytest.approx(fd, rel=1e-5, abs=1e-8), (i, g[i], fd)


def test_init_is_seeded_and_deterministic():
    layout = LeNetDigits().layout
    assert np.array_equal(layout.init(7), layout.init(7))
    assert not np.array_equal(layout.init(7), layout.init(8))
    views = layout.views(layout.init(7))
    assert np.all(views["conv1.b"] == 0) and views["conv2.w"].shape == (16, 8, 3, 3)
    # He-normal: std sqrt(2 / fan_in) within sampling error (1,152 draws for conv2)
    assert views["conv2.w"].std() == pytest.approx(np.sqrt(2 / 72), rel=0.1)


def test_get_model_suggests_the_closest_name():
    assert isinstance(get_model("lenet_digits"), LeNetDigits)
    with pytest.raises(ConfigError, match="did you mean 'lenet-digits'"):
        get_model("lenet-digit")


def test_digits_split_is_fixed_and_standardised(digits):
    assert digits.x_train.shape == (1348, 1, 8, 8) and digits.x_test.shape == (449, 1, 8, 8)
    assert digits.classes == 10 and set(np.unique(digits.y_train)) == set(range(10))
    again = load_digits()
    assert np.array_equal(digits.y_test, again.y_test)
    assert abs(float(digits.x_train.mean())) < 1e-5
    assert float(digits.x_train.std()) == pytest.approx(1.0, rel=1e-4)
    assert digits.flat().x_train.shape == (1348, 64)


def test_from_arrays_takes_user_images_and_validates():
    rng = np.random.default_rng(0)
    x = rng.random((50, 6, 6))
    y = rng.integers(0, 3, 50)
    ds = from_arrays(x, y, test_fraction=0.2, split_seed=1)
    assert ds.x_train.shape == (40, 1, 6, 6) and ds.x_test.shape == (10, 1, 6, 6)
    with pytest.raises(ConfigError, match="y: must be 1-D"):
        from_arrays(x, y[:10])
    with pytest.raises(ConfigError, match="test_fraction"):
        from_arrays(x, y, test_fraction=1.5)
