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
    device_default_precision,
    framework_only,
    parse_metric,
    parse_precision,
)
from ddlsim.validation.parse.model import ModelParse, parse_model
from ddlsim.validation.parse.parallelism import ParallelismParse, parse_parallelism
from ddlsim.validation.parse.schedule import (
    DATASETS,
    RESOLUTION,
    Phase,
    low_resolution,
    parse_batch_schedule,
    parse_dataset,
    parse_target_epoch,
    truncate,
)
from ddlsim.validation.parse.systems import INSTANCES, SystemParse, parse_system

__all__ = ["DATASETS", "INSTANCES", "RESOLUTION", "GpuParse", "InterconnectParse", "MetricParse",
           "ModelParse", "ParallelismParse", "Phase", "PrecisionParse", "SystemParse",
           "device_default_precision", "framework_only", "low_resolution",
           "parse_batch_schedule", "parse_dataset", "parse_framework", "parse_gpu",
           "parse_interconnect", "parse_metric", "parse_model", "parse_parallelism",
           "parse_precision", "parse_system", "parse_target_epoch", "truncate"]
