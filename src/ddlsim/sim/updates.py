"""The update log: the contract between the simulators and the convergence replay.

Every strategy that applies weight updates (sync allreduce, parameter servers, pipelines)
records one row per applied update, as a tuple in :data:`UPDATE_LOG_COLUMNS` order:

``update``           index of the applied update, 0, 1, 2, ... in order of application
``time_s``           simulated time at which the update was applied (s)
``worker``           the worker whose gradient was applied, or -1 when the update combines
                     the gradients of several workers (synchronous strategies)
``version_read``     weight version the gradient was computed on
``version_written``  weight version the update produces (``version_read`` of a sync update
                     + 1; for asynchronous updates the shard's version after applying it)
``staleness``        ``version_written - 1 - version_read``: updates applied between the
                     read and this write (0 for synchronous training)
``n_grads``          number of worker gradients combined into this update (backup
                     workers: the W - b that arrived first)
"""

UPDATE_LOG_COLUMNS = ("update", "time_s", "worker", "version_read", "version_written",
                      "staleness", "n_grads")


def update_row(update: int, time_s: float, worker: int, version_read: int,
               version_written: int, n_grads: int) -> tuple:
    """One update-log row; staleness is derived so it cannot disagree with the versions."""
    return (update, time_s, worker, version_read, version_written,
            version_written - 1 - version_read, n_grads)
