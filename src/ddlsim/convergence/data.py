"""Data sets for the convergence replay: scikit-learn's bundled 8x8 digits, or any arrays.

The digits (UCI optical recognition of handwritten digits, 1,797 images of 8x8 pixels with
values 0..16, 10 classes) ship inside scikit-learn's package files, so nothing is
downloaded at run time. :func:`from_arrays` takes any NumPy arrays (e.g. MNIST loaded by
the user) and applies the same seeded split and scaling.

Images are stored NCHW (``[n, 1, h, w]``), float32 by default, standardised with the mean
and standard deviation of the *training* pixels (one scalar each, so test data never
leaks into the scaling). Labels are int64 class indices ``0 .. classes-1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ddlsim.errors import ConfigError


@dataclass(frozen=True)
class Dataset:
    """A fixed train/test split. ``x_*``: ``[n, *input_shape]`` floats; ``y_*``: ``[n]``
    int64 labels; ``classes``: number of classes; ``name``: for reports."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-sample shape (without the batch axis), e.g. ``(1, 8, 8)``."""
        return tuple(self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        """Training samples."""
        return int(self.x_train.shape[0])

    def flat(self) -> Dataset:
        """The same split with each sample flattened to a feature vector (for an MLP)."""
        return Dataset(self.name, self.x_train.reshape(self.n_train, -1),
                       self.y_train, self.x_test.reshape(self.x_test.shape[0], -1),
                       self.y_test, self.classes)


def _check_xy(label: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim < 2:
        raise ConfigError(f"{label} x: must have a sample axis and features, got shape {x.shape}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ConfigError(f"{label} y: must be 1-D with one label per sample ({x.shape[0]}), "
                          f"got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) and not np.all(np.equal(np.mod(y, 1), 0)):
        raise ConfigError(f"{label} y: labels must be integers, got dtype {y.dtype}")
    if y.size and y.min() < 0:
        raise ConfigError(f"{label} y: labels must be >= 0, got {int(y.min())}")
    if not np.all(np.isfinite(x)):
        raise ConfigError(f"{label} x: must be finite, got NaN or inf")
    return x, y.astype(np.int64)


def _split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded permutation of ``range(n)`` cut into (train indices, test indices)."""
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction: must be in (0, 1), got {test_fraction!r}")
    n_test = int(round(n * test_fraction))
    if n_test < 1 or n_test >= n:
        raise ConfigError(f"test_fraction: leaves {n - n_test} train and {n_test} test "
                          f"samples of {n}; both must be >= 1")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def from_arrays(x: np.ndarray, y: np.ndarray, *, x_test: np.ndarray | None = None,
                y_test: np.ndarray | None = None, test_fraction: float = 0.25,
                split_seed: int = 0, dtype: str = "float32", name: str = "custom",
                classes: int | None = None) -> Dataset:
    """A :class:`Dataset` from user arrays.

    ``x``: ``[n, ...]`` samples (images ``[n, h, w]`` get a channel axis -> ``[n, 1, h,
    w]``); ``y``: ``[n]`` integer labels. Without ``x_test``/``y_test`` a seeded split
    keeps ``test_fraction`` (dimensionless, 0..1) of the samples for testing. Pixels are
    standardised with the training mean and standard deviation. ``classes`` defaults to
    ``max(label) + 1``.
    """
    x, y = _check_xy("train", x, y)
    if (x_test is None) != (y_test is None):
        raise ConfigError("x_test/y_test: give both or neither")
    if x_test is None:
        tr, te = _split(x.shape[0], test_fraction, split_seed)
        x, y, x_test, y_test = x[tr], y[tr], x[te], y[te]
    else:
        x_test, y_test = _check_xy("test", x_test, y_test)
        if x_test.shape[1:] != x.shape[1:]:
            raise ConfigError(f"x_test: per-sample shape must equal x's {x.shape[1:]}, "
                              f"got {x_test.shape[1:]}")
    if x.ndim == 3:
        x, x_test = x[:, None], x_test[:, None]
    x = x.astype(np.float64)
    mean, std = float(x.mean()), float(x.std())
    if not std > 0:
        raise ConfigError(f"x: training samples must not all be equal (std {std})")
    n_classes = int(max(y.max(), y_test.max())) + 1 if classes is None else int(classes)
    if max(y.max(), y_test.max()) >= n_classes:
        raise ConfigError(f"classes: must exceed the largest label "
                          f"{int(max(y.max(), y_test.max()))}, got {n_classes}")
    return Dataset(name, ((x - mean) / std).astype(dtype), y,
                   ((x_test.astype(np.float64) - mean) / std).astype(dtype), y_test,
                   n_classes)


def load_digits(split_seed: int = 0, test_fraction: float = 0.25,
                dtype: str = "float32") -> Dataset:
    """scikit-learn's bundled 8x8 digits as ``[n, 1, 8, 8]`` images, split with a seeded
    permutation (default: 1,348 train / 449 test images)."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    return from_arrays(bunch.images, bunch.target, test_fraction=test_fraction,
                       split_seed=split_seed, dtype=dtype, name="digits", classes=10)
