"""A time limit that stops the search is reported as ``time_limit`` (QA of issue 10).

A time limit of 1 ms on a 20,000 x 1,500 instance ends before HiGHS can start (building the
neighbourhoods alone takes longer) and before any swap: the answer is then the greedy one,
and saying ``feasible`` would hide that the requested solver never ran. Whatever the solver,
an answer not proved optimal when the time ran out says ``time_limit``, with its gap.
No timing is asserted (speed is shown in bench/): only what the answer says.
"""

from __future__ import annotations

import numpy as np
import pytest

from geo.planner import covering as cv
from geo.planner import solvers as sv


def _instance():
    rng = np.random.default_rng(5)
    demand = rng.uniform(0, 20000, (20000, 2))
    weight = rng.integers(1, 10, 20000).astype(float)
    cands = rng.uniform(0, 20000, (1500, 2))
    return demand, weight, cands


@pytest.mark.parametrize("solver", ["exact", "auto", "greedy"])
def test_mclp_cut_by_the_time_limit_says_so(solver):
    demand, weight, cands = _instance()
    sol = cv.mclp(demand, weight, cands, 900.0, 40, solver=solver, time_limit=0.001)
    assert len(sol.sites) == 40 and sol.gap > 0  # the greedy answer, not proved optimal
    assert sol.status == "time_limit"
    assert sol.bound >= sol.objective and sol.gap == pytest.approx((sol.bound - sol.objective) / sol.bound)
    if solver != "greedy":
        assert "milp" not in sol.phases and "time limit" in sol.message


@pytest.mark.parametrize("share", [None, 0.9])
@pytest.mark.parametrize("solver", ["exact", "auto", "greedy"])
def test_lscp_cut_by_the_time_limit_says_so(solver, share):
    demand, weight, cands = _instance()
    cands = np.vstack([cands, demand[::4]])  # every demand unit reachable
    sol = cv.lscp(demand, weight, cands, 900.0, share, solver=solver, time_limit=0.001)
    assert sol.status == "time_limit" and sol.gap > 0
    assert sol.bound <= sol.objective == len(sol.sites)
    if share is None:
        assert sol.covered.all()
    else:
        assert sol.covered_weight >= share * sol.total_weight - 1e-6


def test_lscp_lower_bound_past_the_deadline_is_the_trivial_one(monkeypatch):
    """Past the deadline the LSCP bound does no more work (no greedy run for the subgradient's
    aim): it returns the bound of the k best single columns at once."""
    demand, weight, cands = _instance()
    red = cv.reduce(cv.coverage_matrix(demand, cands, 900.0), weight)
    a_csc = red.a.tocsc()
    singles = np.sort(np.asarray(a_csc.T @ red.weight).ravel())[::-1]
    need = 0.5 * float(red.weight.sum())
    trivial = int(np.searchsorted(np.cumsum(singles), need) + 1)

    def boom(*args, **kwargs):
        raise AssertionError("no greedy run after the deadline")

    monkeypatch.setattr(sv, "greedy_mclp", boom)
    assert sv.lscp_lower_bound(red.a, a_csc, red.weight, need, 500, deadline=0.0) == trivial
