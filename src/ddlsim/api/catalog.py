"""What the catalog commands print (``ddlsim devices``, ``models``, ``collectives``), as
DataFrames in SI units, so the command line needs no simulator module."""

from __future__ import annotations

import math


def device_table():
    """One row per catalog device: dense peak FLOP/s per precision (NaN where the device
    has none), memory (bytes), memory and NVLink bandwidth (bytes/s)."""
    import pandas as pd

    from ddlsim.sim.hardware import CATALOG

    rows = []
    for key, d in CATALOG.items():
        peak = d.peak_flops_per_s
        rows.append({"name": key, "device": d.display_name,
                     "fp32": peak.get("float32", math.nan), "tf32": peak.get("tf32", math.nan),
                     "fp16": peak.get("float16", math.nan),
                     "bf16": peak.get("bfloat16", math.nan), "fp8": peak.get("fp8", math.nan),
                     "memory": d.memory_bytes, "mem_bw": d.memory_bw_bytes_per_s,
                     "nvlink": d.nvlink_bw_bytes_per_s})
    return pd.DataFrame(rows)


def device_sources() -> dict[str, dict[str, str]]:
    """Catalog key -> {field: the source of its number}."""
    from ddlsim.sim.hardware import CATALOG

    return {key: dict(d.sources) for key, d in CATALOG.items()}


def model_table():
    """One row per zoo workload: parameters, layers, forward FLOPs per sample, input."""
    import pandas as pd

    from ddlsim.sim.workloads import get_workload, list_workloads

    rows = []
    for name in list_workloads():
        w = get_workload(name, 1)
        rows.append({"model": name, "params": w.param_count, "layers": len(w.layers),
                     "fwd_flops_per_sample": w.fwd_flops,
                     "input": "x".join(map(str, w.input_shape))})
    return pd.DataFrame(rows)


def collective_table(preset: str, nodes: int, gpus_per_node: int | None, op: str, algo: str,
                     sizes_bytes: list[float], raw: bool = False):
    """Simulated time (s), algbw and busbw (bytes/s) of ``op`` per message size on
    ``nodes`` nodes of ``preset``, in nccl-tests' conventions; ``raw``: line rates, without
    the NCCL efficiency constants. Returns ``(DataFrame, GPU count)``; ConfigError for a
    collective the cluster cannot run."""
    import pandas as pd

    from ddlsim.api.dp import cluster_for
    from ddlsim.errors import ConfigError
    from ddlsim.sim.collectives import collective_bandwidth_table
    from ddlsim.sim.topology import PRESETS, make_cluster

    if preset not in PRESETS:
        make_cluster(preset, 1)  # raises the did-you-mean ConfigError
    gpn = gpus_per_node or int(PRESETS[preset]["gpus_per_node"][0])
    spec = cluster_for(preset, nodes * gpn, calibrated=not raw,
                       overrides=(("gpus_per_node", gpn),))
    if op == "sendrecv" and spec.num_gpus < 2:
        raise ConfigError("op: sendrecv needs at least two GPUs")
    rows = collective_bandwidth_table(spec, op, sizes_bytes, algo=algo)
    return pd.DataFrame(rows, columns=["size", "time", "algbw", "busbw"]), spec.num_gpus
