"""ddlsim: predict distributed deep-learning training before paying for the cluster.

    >>> import ddlsim
    >>> job = ddlsim.Job(workload=ddlsim.Workload("resnet50"),
    ...                  cluster=ddlsim.Cluster("dgx-a100", 8), batch=ddlsim.Batch(micro=64))
    >>> ddlsim.predict(job).samples_per_s > 0
    True

The public API is :mod:`ddlsim.api` (build a :class:`Job`, :func:`predict` it, load and
run a scenario: :func:`load_scenario`, :func:`run_scenario`) and :mod:`ddlsim.validation`
(:func:`validate` against a measurement table); their names are also reachable here
(``ddlsim.Job``, ``ddlsim.predict``, ``ddlsim.validate``, ...). They load on first use:
importing :mod:`ddlsim.kernels` must work with only NumPy (and optionally CuPy) installed,
so nothing here imports simpy, pandas or click eagerly.
"""

__version__ = "0.1.0"

#: the names of :mod:`ddlsim.validation` reachable here (predicted vs published tables)
VALIDATION_NAMES = ("validate", "calibrate", "error_summary", "load_reference")


def __getattr__(name: str):
    """``ddlsim.NAME`` for every public name of :mod:`ddlsim.api` (loaded lazily)."""
    import importlib
    import importlib.util

    if name.startswith("_") or importlib.util.find_spec(f"ddlsim.{name}") is not None:
        # a subpackage (``from ddlsim import kernels``): let the import system load it
        raise AttributeError(f"module 'ddlsim' has no attribute {name!r}")

    api = importlib.import_module("ddlsim.api")
    if name in api.__all__:
        return getattr(api, name)
    if name in VALIDATION_NAMES:
        return getattr(importlib.import_module("ddlsim.validation"), name)
    raise AttributeError(f"module 'ddlsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    import importlib

    return sorted(["__version__", *importlib.import_module("ddlsim.api").__all__,
                   *VALIDATION_NAMES])
