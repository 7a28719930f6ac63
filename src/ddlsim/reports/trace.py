"""Chrome trace (Trace Event Format) export: opens in Perfetto and chrome://tracing.

Spans are ``(track, name, start_s, duration_s)``; a track such as ``"gpu3 compute"`` or
``"gpu3 comm"`` becomes a thread named after its stream inside a process named after
its GPU, so Perfetto shows one row per GPU stream.
"""

from __future__ import annotations

import json
from collections.abc import Iterable


def chrome_trace(spans: Iterable[tuple[str, str, float, float]]) -> dict:
    """Build the trace document (``{"traceEvents": [...]}``); times become microseconds."""
    pids: dict[str, int] = {}
    tids: dict[str, int] = {}
    events: list[dict] = []
    for track, name, start_s, dur_s in spans:
        proc, _, stream = track.partition(" ")
        if proc not in pids:
            pids[proc] = len(pids)
            events.append({"ph": "M", "name": "process_name", "pid": pids[proc], "tid": 0,
                           "args": {"name": proc}})
        if track not in tids:
            tids[track] = len(tids) + 1
            events.append({"ph": "M", "name": "thread_name", "pid": pids[proc],
                           "tid": tids[track], "args": {"name": stream or track}})
        events.append({"ph": "X", "name": name, "cat": stream or "span", "pid": pids[proc],
                       "tid": tids[track], "ts": start_s * 1e6, "dur": dur_s * 1e6})
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def write_chrome_trace(spans, path) -> None:
    """Write :func:`chrome_trace` of ``spans`` to ``path`` as JSON."""
    from pathlib import Path

    Path(path).write_text(json.dumps(chrome_trace(spans)))
