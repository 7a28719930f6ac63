"""ddlsim: predict distributed deep-learning training before paying for the cluster.

The top-level package stays light: importing :mod:`ddlsim.kernels` must work with only
NumPy (and optionally CuPy) installed, so nothing here imports simpy, pandas or click.
"""

__version__ = "0.1.0"
