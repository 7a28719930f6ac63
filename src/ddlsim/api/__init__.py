"""Composition layer: what the CLI (and notebooks) call.

Each function takes an options dataclass, does the work through the parts (``kernels``,
``sim``, ``reports``) and returns data (DataFrames, result records); rendering is the
caller's. One module per family of commands; the names below are the public API.
"""

from ddlsim.api.advice import memory_advice
from ddlsim.api.async_ps import PSOptions, PSPrediction, predict_ps
from ddlsim.api.calibration import (
    DEFAULT_CALIBRATION,
    Calibration,
    load_calibration,
    stored_calibration,
)
from ddlsim.api.compare import COMPARE_STRATEGIES, compare_strategies
from ddlsim.api.convergence import (
    CONVERGE_STRATEGIES,
    ConvergencePrediction,
    ReplayOptions,
    StrategyRunOptions,
    converge,
    converge_strategies,
    lr_sweep_prediction,
    replay_prediction,
    simulated_update_log,
)
from ddlsim.api.dp import ALLREDUCE_ALGOS, DPOptions, DPPrediction, cost_models, predict_dp
from ddlsim.api.faults import (
    FaultOptions,
    GoodputResult,
    IntervalSweep,
    checkpoint_interval_sweep,
    predict_goodput,
    scenario_fault_options,
)
from ddlsim.api.kernels import (
    KernelBenchOptions,
    bench_kernels,
    host_device_spec,
    peak_for_profile,
    summarize_profile,
    training_step_calls,
)
from ddlsim.api.layout_search import best_layouts, search_layouts
from ddlsim.api.pipeline import (
    PipelineOptions,
    PipelinePrediction,
    ThreeDOptions,
    predict_model_parallel,
)
from ddlsim.api.predict import Prediction, check_memory, place, predict, resolve_precision
from ddlsim.api.profile_check import profile_warnings
from ddlsim.api.run import RunOptions, ScenarioRun, run_scenario
from ddlsim.api.time_to_train import TimeToTrain, time_to_train
from ddlsim.job import Batch, Cluster, Job, Parallelism, Precision, Strategy, Workload
from ddlsim.scenarios import load_scenario

__all__ = [
    "Batch", "Cluster", "Job", "Parallelism", "Precision", "Strategy", "Workload",
    "Calibration", "DEFAULT_CALIBRATION", "load_calibration", "stored_calibration",
    "best_layouts", "search_layouts", "RunOptions", "ScenarioRun", "load_scenario",
    "run_scenario", "TimeToTrain", "time_to_train",
    "Prediction", "check_memory", "memory_advice", "profile_warnings", "place", "predict",
    "resolve_precision",
    "FaultOptions", "GoodputResult", "IntervalSweep", "checkpoint_interval_sweep",
    "predict_goodput", "scenario_fault_options",
    "CONVERGE_STRATEGIES", "ConvergencePrediction", "ReplayOptions", "StrategyRunOptions",
    "converge", "converge_strategies", "lr_sweep_prediction", "replay_prediction",
    "simulated_update_log",
    "COMPARE_STRATEGIES", "PSOptions", "PSPrediction", "compare_strategies", "predict_ps",
    "PipelineOptions", "PipelinePrediction", "ThreeDOptions", "predict_model_parallel",
    "ALLREDUCE_ALGOS", "DPOptions", "DPPrediction", "KernelBenchOptions", "bench_kernels",
    "cost_models", "host_device_spec", "peak_for_profile", "predict_dp", "summarize_profile",
    "training_step_calls",
]
