"""An event budget for SimPy runs: stop early with a clear message instead of running
(and allocating) until the machine gives out.

:func:`run_budgeted` is ``env.run(until)`` with a counter: it processes at most
``max_events`` events and raises :class:`ddlsim.errors.SimulationError` when the run
needs more. The simulators' ``simulate_*`` entry points call it with their
``max_events`` argument (default :data:`DEFAULT_MAX_EVENTS`).
"""

from __future__ import annotations

import math

import simpy
from simpy.core import EmptySchedule, StopSimulation

from ddlsim.errors import ConfigError, SimulationError

#: Default event budget. The largest built-in runs (1,024-GPU sync DP x 100 iterations,
#: 256 PS workers x 20,000 updates) process a few million events; 50 million is about
#: a minute to a few minutes of pure-Python SimPy on one core, and a few GB of memory
#: at most, so only a runaway scenario reaches it.
DEFAULT_MAX_EVENTS = 50_000_000


def check_max_events(max_events: int) -> int:
    """Validate an event budget (an int >= 1) and return it."""
    if isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 1:
        raise ConfigError(f"max_events: must be an integer >= 1, got {max_events!r}")
    return max_events


def budget_message(what: str, max_events: int) -> str:
    """The one-line message of an exceeded budget."""
    return (f"{what}: exceeded the event budget of {max_events:,} events; "
            f"reduce iterations/updates or raise --max-events")


def run_budgeted(env: simpy.Environment, until: simpy.Event | None = None,
                 max_events: int = DEFAULT_MAX_EVENTS, what: str = "simulation"):
    """Run ``env`` like ``env.run(until)`` but process at most ``max_events`` events.

    Args:
        env: the environment to step.
        until: None (run until no event is left) or an event (run until it is
            processed; its value is returned). Numeric ``until`` is not supported: the
            simulators never use it.
        max_events: the budget (events processed by this call).
        what: names the simulation in the error message.

    Raises:
        SimulationError: the run needs more than ``max_events`` events.
        RuntimeError: as ``env.run``, when ``until`` can never be triggered.
    """
    check_max_events(max_events)
    if until is not None:
        if until.callbacks is None:  # already processed
            return until.value
        until.callbacks.append(StopSimulation.callback)
    step = env.step
    try:
        for _ in range(max_events):
            step()
    except StopSimulation as exc:
        return exc.args[0]
    except EmptySchedule:
        if until is not None:
            raise RuntimeError(f"no scheduled events left but {until!r} was not "
                               f"triggered") from None
        return None
    if env.peek() == math.inf and until is None:
        return None  # exactly max_events events: finished within the budget
    raise SimulationError(budget_message(what, max_events))
