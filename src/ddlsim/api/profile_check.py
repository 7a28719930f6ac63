"""Whether a job's measured kernel profile is used, said out loud: :func:`profile_warnings`.

A profile's rows are used for the devices they were measured on (the ``device`` column,
written from the machine's recorded identity) and for their precision. A profile that
matches none of the job's devices, or none of its precision, would silently fall back to
the roofline; these warnings name both sides instead.
"""

from __future__ import annotations

from ddlsim.job import Job


def profile_warnings(job: Job) -> tuple[str, ...]:
    """One-line warnings for ``job.profile`` (empty when every device of the job has
    measured rows in the job's precision, or when there is no profile)."""
    if not job.profile:
        return ()
    from ddlsim.api.dp import profile_rows
    from ddlsim.api.predict import job_device, resolve_precision
    from ddlsim.sim.costs import row_matches
    from ddlsim.sim.hardware import get_device

    rows = profile_rows(job.profile)
    if not rows:
        return (f"profile {job.profile} has no rows: every kernel is priced by the roofline",)
    devices = list(dict.fromkeys(job.cluster.stage_devices or (job_device(job),)))

    def mine(name: str) -> list:
        if name == "cpu-generic" and any(r.device == "host-cpu" for r in rows):
            return [r for r in rows if r.device == "host-cpu"]
        spec = get_device(name)
        return [r for r in rows if row_matches(r.device, spec)]

    measured_on = ", ".join(sorted({"this host's CPU" if r.device == "host-cpu" else r.device
                                    for r in rows}))
    out = []
    compute, gemm, _ = resolve_precision(job)
    wanted = {compute, gemm or compute}
    for name in devices:
        own = mine(name)
        if not own:
            out.append(f"profile {job.profile} was measured on {measured_on}, not on the "
                       f"job's {name}: its rows are not used (catalog peak x calibration "
                       "instead)")
        elif not wanted & {r.dtype for r in own}:
            have = ", ".join(sorted({r.dtype for r in own}))
            out.append(f"profile {job.profile} holds {have} rows for {name}, the job runs "
                       f"{'/'.join(sorted(wanted))}: its rows are not used (pass --dtype "
                       f"{sorted({r.dtype for r in own})[0]} to use them)")
    return tuple(out)
