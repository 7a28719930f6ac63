"""Free-text parsers for the cells of a reference measurement table, by meaning.

Each parser reads one cell (or a few) the way a reader would: by the words, numbers and
units it contains, never by a row's id or source. Each returns a small frozen dataclass, or
None when nothing is understood, and lists every guess it made in ``assumptions``.
"""

from __future__ import annotations

from ddlsim.validation.parse.devices import (
    GpuParse,
    InterconnectParse,
    parse_framework,
    parse_gpu,
    parse_interconnect,
)
from ddlsim.validation.parse.metric import (
    MetricParse,
    PrecisionParse,
    parse_metric,
    parse_precision,
)
from ddlsim.validation.parse.model import ModelParse, parse_model
from ddlsim.validation.parse.parallelism import ParallelismParse, parse_parallelism

__all__ = ["GpuParse", "InterconnectParse", "MetricParse", "ModelParse", "ParallelismParse",
           "PrecisionParse", "parse_framework", "parse_gpu", "parse_interconnect", "parse_metric",
           "parse_model", "parse_parallelism", "parse_precision"]
