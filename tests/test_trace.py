import json

from ddlsim.reports.trace import chrome_trace, write_chrome_trace


def test_one_thread_per_gpu_stream_and_microseconds(tmp_path):
    spans = [("gpu0 compute", "fwd A", 1.0, 0.5), ("gpu0 comm", "allreduce", 1.2, 0.25),
             ("gpu1 compute", "fwd A", 1.0, 0.5)]
    doc = chrome_trace(spans)
    meta = [e for e in doc["traceEvents"] if e["ph"] == "M"]
    assert sorted(e["args"]["name"] for e in meta if e["name"] == "process_name") == [
        "gpu0", "gpu1"]
    assert sorted(e["args"]["name"] for e in meta if e["name"] == "thread_name") == [
        "comm", "compute", "compute"]
    x = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert [(e["name"], e["ts"], e["dur"]) for e in x] == [
        ("fwd A", 1e6, 5e5), ("allreduce", 1.2e6, 2.5e5), ("fwd A", 1e6, 5e5)]
    assert x[0]["pid"] == x[1]["pid"] != x[2]["pid"] and x[0]["tid"] != x[1]["tid"]
    out = tmp_path / "t.json"
    write_chrome_trace(spans, out)
    assert json.loads(out.read_text()) == doc
