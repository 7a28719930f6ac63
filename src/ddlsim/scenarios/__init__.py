"""Scenario files: YAML in, validated frozen SI objects out.

One scenario per file: the workload, the cluster, the strategies to compare, noise and
faults, seed and outputs. Keys carry their unit (``bucket_MB``, ``nic_bandwidth_Gbps``);
the loader validates everything before anything is simulated and converts once.
"""

from ddlsim.scenarios.loader import builtin_names, load_scenario, scenario_text
from ddlsim.scenarios.schema import Scenario

__all__ = ["Scenario", "builtin_names", "load_scenario", "scenario_text"]
