"""ddlsim: predict distributed deep-learning training before paying for the cluster.

    >>> import ddlsim
    >>> job = ddlsim.Job(workload=ddlsim.Workload("resnet50"),
    ...                  cluster=ddlsim.Cluster("dgx-a100", 8), batch=ddlsim.Batch(micro=64))
    >>> ddlsim.predict(job).samples_per_s > 0
    True

The public API is :mod:`ddlsim.api`; its names are also reachable here (``ddlsim.Job``,
``ddlsim.predict``, ...). They load on first use: importing :mod:`ddlsim.kernels` must work
with only NumPy (and optionally CuPy) installed, so nothing here imports simpy, pandas or
click eagerly.
"""

__version__ = "0.1.0"


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
    raise AttributeError(f"module 'ddlsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    import importlib

    return sorted(["__version__", *importlib.import_module("ddlsim.api").__all__])
