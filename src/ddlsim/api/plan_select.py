"""Choosing among the configurations of a capacity plan (:mod:`ddlsim.api.plan`): the
Pareto frontier of (time, cost) and the cheapest / fastest rows within a deadline and a
budget, with the explanation lines."""

from __future__ import annotations

import math

from ddlsim.reports.plan import format_duration as _dur
from ddlsim.reports.plan import format_usd as _usd


def pareto_mask(time_s, cost_usd) -> list[bool]:
    """True where no other point is at least as fast and as cheap and strictly better in
    one (minimising both); NaN/inf points are never on the frontier. Exact duplicates
    of a frontier point are all kept."""
    pts = [(float(t), float(c)) for t, c in zip(time_s, cost_usd, strict=True)]
    ok = [math.isfinite(t) and math.isfinite(c) for t, c in pts]
    mask = []
    for i, (t, c) in enumerate(pts):
        dominated = any(ok[j] and t2 <= t and c2 <= c and (t2 < t or c2 < c)
                        for j, (t2, c2) in enumerate(pts) if j != i)
        mask.append(ok[i] and not dominated)
    return mask


def select(table, deadline_s: float | None, budget_usd: float | None):
    """(cheapest meeting the deadline and budget, fastest within the budget and deadline,
    explanation lines in human units) over the rows of ``table`` (columns time_s, cost_usd,
    feasible, gpus, gpu, strategy)."""
    ok = table[table["feasible"]]
    lines: list[str] = []
    in_deadline = ok if deadline_s is None else ok[ok["time_s"] <= deadline_s]
    in_budget = ok if budget_usd is None else ok[ok["cost_usd"] <= budget_usd]
    both = in_deadline[in_deadline.index.isin(in_budget.index)]
    cheapest = fastest = None
    if ok.empty:
        lines.append("no configuration can run (see the note column)")
        return None, None, lines
    if deadline_s is not None:
        if both.empty:
            fast = ok.sort_values(["time_s", "cost_usd"]).iloc[0]
            if in_deadline.empty:
                lines.append(f"no configuration meets the deadline of {_dur(deadline_s)}: the "
                             f"fastest is {fast.gpus} x {fast.gpu} at {_dur(fast.time_s)} "
                             f"({_usd(fast.cost_usd)}); allow more GPUs (max_gpus) or time")
            else:
                cheap = in_deadline.sort_values(["cost_usd", "time_s"]).iloc[0]
                lines.append(f"configurations meet the deadline but none within the budget of "
                             f"{_usd(budget_usd)}: the cheapest that meets it costs "
                             f"{_usd(cheap.cost_usd)} ({cheap.gpus} x {cheap.gpu})")
        else:
            best = both.sort_values(["cost_usd", "time_s"]).iloc[0]
            cheapest = best.to_dict()
            lines.append(f"cheapest meeting the deadline of {_dur(deadline_s)}"
                         + ("" if budget_usd is None else f" and the budget of {_usd(budget_usd)}")
                         + f": {best.gpus} x {best.gpu}, {best.strategy}, "
                         f"{_dur(best.time_s)}, {_usd(best.cost_usd)}")
    if budget_usd is not None:
        if both.empty:
            if in_budget.empty:
                cheap = ok.sort_values(["cost_usd", "time_s"]).iloc[0]
                lines.append(f"no configuration fits the budget of {_usd(budget_usd)}: the "
                             f"cheapest costs {_usd(cheap.cost_usd)} ({cheap.gpus} x "
                             f"{cheap.gpu}, {_dur(cheap.time_s)})")
            elif deadline_s is not None:
                f = in_budget.sort_values(["time_s", "cost_usd"]).iloc[0]
                lines.append(f"within the budget the fastest takes {_dur(f.time_s)} "
                             f"({f.gpus} x {f.gpu}), past the deadline")
        else:
            best = both.sort_values(["time_s", "cost_usd"]).iloc[0]
            fastest = best.to_dict()
            lines.append(f"fastest within the budget of {_usd(budget_usd)}"
                         + ("" if deadline_s is None else " and the deadline")
                         + f": {best.gpus} x {best.gpu}, {best.strategy}, "
                         f"{_dur(best.time_s)}, {_usd(best.cost_usd)}")
    return cheapest, fastest, lines
