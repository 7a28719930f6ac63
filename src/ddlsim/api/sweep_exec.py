"""Executors of :mod:`ddlsim.api.sweep`: the worker-side point runner :func:`run_point`
and the inline, process-pool and Dask runners that feed it the points still to compute
(results come back to the calling process, which caches them)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ddlsim.api.sweep_cache import SCALARS
from ddlsim.errors import ConfigError, DdlsimError

if TYPE_CHECKING:
    from ddlsim.api.sweep import SweepPoint

DASK_MISSING = "--dask needs the dask extra: pip install 'ddlsim[dask]'"


def _native(value: Any) -> Any:
    """NumPy scalars -> Python scalars; anything else non-scalar -> its ``str``."""
    if hasattr(value, "item") and not isinstance(value, SCALARS):
        value = value.item()
    return value if isinstance(value, SCALARS) else str(value)


def _one_blas_thread():
    """A context with BLAS limited to one thread: parallel workers then do not
    oversubscribe the cores (OpenBLAS threads spin), and every runner (inline, pool,
    Dask) computes the same floats. threadpoolctl comes with scikit-learn."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn requires it
        from contextlib import nullcontext

        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def run_point(doc: dict, label: str) -> list[dict]:
    """Run one resolved scenario dict; its summary rows as plain JSON-able records.

    Top-level so process pools and Dask can pickle it by reference."""
    from ddlsim.api.run import RunOptions, run_scenario
    from ddlsim.api.user_catalog import register_from_env
    from ddlsim.scenarios.schema import Scenario

    register_from_env()  # a worker process sees the user devices the parent registered
    sc = Scenario.model_validate(doc)
    with _one_blas_thread():
        summary = run_scenario(sc, label, RunOptions()).summary()
    rows = [{str(k): _native(v) for k, v in rec.items()}
            for rec in summary.to_dict(orient="records")]
    # a JSON round trip makes fresh rows identical to rows read back from the cache
    return json.loads(json.dumps(rows))


def _point_label(label: str, point: SweepPoint) -> str:
    return f"{label} [{point.description}]"


def run_inline(todo: list[SweepPoint], label: str, on_done, runner=run_point) -> None:
    """Run the points one after the other in this process, ``on_done(point, rows)`` each."""
    for point in todo:
        on_done(point, _call(point, label, runner))


def _call(point: SweepPoint, label: str, runner) -> list[dict]:
    try:
        return runner(point.doc, _point_label(label, point))
    except DdlsimError as exc:
        raise type(exc)(f"sweep point {point.index} ({point.description}): {exc}") from None


# imported once by the fork server, so its workers start without re-importing them
WORKER_PRELOAD = ["ddlsim.api.sweep", "ddlsim.api.sweep_exec", "ddlsim.api.sweep_cache",
                  "ddlsim.api.run", "ddlsim.scenarios.schema", "pandas", "simpy", "numpy"]


def _mp_context():
    """``forkserver`` (with :data:`WORKER_PRELOAD`) where available, else ``spawn``;
    never ``fork``, which is unsafe once threads (tqdm, Dask) exist."""
    import multiprocessing as mp

    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(WORKER_PRELOAD)
        return ctx
    return mp.get_context("spawn")


def run_pool(todo: list[SweepPoint], label: str, workers: int, on_done,
             runner=run_point) -> None:
    """Run the points on a local process pool of ``workers``; ``on_done`` in the calling
    process as they finish (``runner``: a top-level function, pickled by reference)."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    with ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context()) as pool:
        futures = {pool.submit(runner, p.doc, _point_label(label, p)): p for p in todo}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: futures[f].index):
                    _finish(futures[fut], fut.result, on_done)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _finish(point: SweepPoint, get_rows, on_done) -> None:
    try:
        rows = get_rows()
    except DdlsimError as exc:
        raise type(exc)(f"sweep point {point.index} ({point.description}): {exc}") from None
    on_done(point, rows)


def run_dask(todo: list[SweepPoint], label: str, address: str, on_done,
             runner=run_point) -> None:
    """Run the points on the Dask distributed scheduler at ``address``; ``on_done`` in the
    calling process as they finish (``runner``: a top-level function, pickled by reference)."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ConfigError(DASK_MISSING) from None
    try:
        client = Client(address, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"--dask {address}: cannot connect to the scheduler ({exc})") from None
    try:
        futures = [client.submit(runner, p.doc, _point_label(label, p), pure=False,
                                 key=f"ddlsim-point-{p.hash[:16]}-{p.index}") for p in todo]
        by_key = {f.key: p for f, p in zip(futures, todo, strict=True)}
        try:
            with client.as_current():  # as_completed looks the client up
                for fut in as_completed(futures):
                    _finish(by_key[fut.key], fut.result, on_done)
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        client.close()
