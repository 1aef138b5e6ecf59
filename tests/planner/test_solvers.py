"""geo.planner.solvers on random instances, against spopt (a dev-only dependency, CBC via PuLP).

For every instance: HiGHS's objective equals spopt's; greedy + swap never beats it; every
reported bound is on the right side of the optimum; HiGHS's status is read, not assumed.
"""

from __future__ import annotations

import numpy as np
import pulp
import pytest
from scipy.spatial.distance import cdist

from geo.planner import covering as cv
from geo.planner import solvers as sv

# PuLP 3.3 announces its 4.0 API on every variable spopt makes
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulp.*")


def _instance(seed: int, n: int = 120, m: int = 25, k_fixed: int = 0, per_site: bool = False):
    rng = np.random.default_rng(seed)
    demand = rng.uniform(0, 5000, (n, 2))
    weight = rng.integers(0, 20, n).astype(float)
    cands = rng.uniform(0, 5000, (m, 2))
    fixed = rng.uniform(0, 5000, (k_fixed, 2))
    radius = rng.uniform(500, 1200, m) if per_site else float(rng.uniform(600, 1100))
    return demand, weight, cands, fixed, radius


def _spopt_mclp(demand, weight, cands, fixed, radius, p) -> float:
    from spopt.locate import MCLP

    r = np.broadcast_to(np.asarray(radius, dtype=float), (len(cands),))
    sites = np.vstack([fixed, cands]) if len(fixed) else cands
    site_r = np.concatenate([np.full(len(fixed), r[0]), r]) if len(fixed) else r
    cost = cdist(demand, sites) / site_r[None, :]  # per-site radius as a scaled cost <= 1
    predefined = np.arange(len(fixed)) if len(fixed) else None
    model = MCLP.from_cost_matrix(cost, weight, 1.0, len(fixed) + p, predefined_facilities_arr=predefined)
    model = model.solve(pulp.PULP_CBC_CMD(msg=False))
    assert pulp.LpStatus[model.problem.status] == "Optimal"
    return float(pulp.value(model.problem.objective))


def _spopt_lscp(demand, cands, fixed, radius) -> int:
    from spopt.locate import LSCP

    sites = np.vstack([fixed, cands]) if len(fixed) else cands
    cost = cdist(demand, sites)
    predefined = np.arange(len(fixed)) if len(fixed) else None
    model = LSCP.from_cost_matrix(cost, radius, predefined_facilities_arr=predefined)
    model = model.solve(pulp.PULP_CBC_CMD(msg=False))
    assert pulp.LpStatus[model.problem.status] == "Optimal"
    return int(round(pulp.value(model.problem.objective))) - len(fixed)


@pytest.mark.parametrize("seed", range(8))
def test_mclp_equals_spopt(seed):
    k_fixed = seed % 3
    demand, weight, cands, fixed, radius = _instance(seed, k_fixed=k_fixed, per_site=seed % 2 == 1)
    p = 2 + seed % 4
    # _spopt_mclp gives the fixed sites the first candidate's radius: use the same here
    radius_fixed = float(np.broadcast_to(radius, (len(cands),))[0])
    exact = cv.mclp(demand, weight, cands, radius, p, fixed_xy=fixed, fixed_radius=radius_fixed,
                    solver="exact")
    greedy = cv.mclp(demand, weight, cands, radius, p, fixed_xy=fixed, fixed_radius=radius_fixed,
                     solver="greedy")
    theirs = _spopt_mclp(demand, weight, cands, fixed, radius, p)
    assert exact.status == "optimal" and exact.solver == "highs"
    assert exact.covered_weight == pytest.approx(theirs, abs=1e-6)
    assert greedy.covered_weight <= exact.covered_weight + 1e-9
    for sol in (exact, greedy):
        assert sol.bound >= exact.objective - 1e-6  # never below the optimum
        assert sol.bound >= sol.objective
        assert sol.gap == pytest.approx(0 if sol.bound == 0 else (sol.bound - sol.objective) / sol.bound)
        # the figures are those of the sites reported
        covered = cv.covered_by(demand, np.vstack([fixed, cands[sol.sites]]),
                                np.concatenate([np.full(len(fixed), radius_fixed),
                                                np.broadcast_to(radius, (len(cands),))[sol.sites]]))
        assert weight[covered].sum() == pytest.approx(sol.covered_weight)
        assert len(sol.sites) == p and len(set(sol.sites.tolist())) == p


@pytest.mark.parametrize("seed", range(6))
def test_lscp_equals_spopt(seed):
    rng = np.random.default_rng(100 + seed)
    demand = rng.uniform(0, 4000, (80, 2))
    # candidates at a random half of the demand points plus random points: all demand reachable
    cands = np.vstack([demand[rng.choice(80, 40, replace=False)], rng.uniform(0, 4000, (20, 2))])
    radius = 700.0
    fixed = rng.uniform(0, 4000, (seed % 3, 2))
    unreachable = ~cv.covered_by(demand, np.vstack([fixed, cands]), radius)
    demand = demand[~unreachable]
    weight = np.ones(len(demand))
    exact = cv.lscp(demand, weight, cands, radius, fixed_xy=fixed, solver="exact")
    greedy = cv.lscp(demand, weight, cands, radius, fixed_xy=fixed, solver="greedy")
    theirs = _spopt_lscp(demand, cands, fixed, radius)
    assert exact.status == "optimal" and exact.objective == theirs
    assert greedy.objective >= exact.objective
    for sol in (exact, greedy):
        assert sol.bound <= exact.objective and sol.covered.all()


@pytest.mark.parametrize("seed", range(4))
def test_lagrangian_bound_never_below_the_optimum(seed):
    demand, weight, cands, _, radius = _instance(200 + seed, n=400, m=60)
    red = cv.reduce(cv.coverage_matrix(demand, cands, radius), weight)
    a_csc = red.a.tocsc()
    for p in (1, 3, 8):
        res = sv.highs_mclp(a_csc, red.weight, p, None, 30.0)
        assert res.status == "optimal"
        optimum = sv.covered_value(a_csc, red.weight, res.cols)
        lag = sv.lagrangian_mclp(red.a, a_csc, red.weight, p, 0.0, float("inf"), max_iter=300)
        assert lag >= optimum - 1e-6
        greedy = sv.greedy_mclp(a_csc, red.weight, p)
        assert sv.submodular_bound(a_csc, red.weight, greedy, p) >= optimum - 1e-6


def test_reduction_keeps_the_optimum():
    demand, weight, cands, _, radius = _instance(7, n=300, m=40)
    a = cv.coverage_matrix(demand, cands, radius)
    red = cv.reduce(a, weight)
    assert red.stats["groups"] < 300
    full = sv.highs_mclp(a.tocsc(), weight, 5, None, 30.0)
    small = sv.highs_mclp(red.a.tocsc(), red.weight, 5, None, 30.0)
    assert sv.covered_value(a.tocsc(), weight, full.cols) == pytest.approx(
        sv.covered_value(red.a.tocsc(), red.weight, small.cols))


def test_time_limit_status_is_read_from_highs():
    rng = np.random.default_rng(5)
    demand = rng.uniform(0, 20000, (20000, 2))
    weight = rng.integers(1, 10, 20000).astype(float)
    cands = rng.uniform(0, 20000, (1500, 2))
    red = cv.reduce(cv.coverage_matrix(demand, cands, 900.0), weight)
    a_csc = red.a.tocsc()
    start = sv.greedy_mclp(a_csc, red.weight, 40)
    warm = sv.highs_mclp(a_csc, red.weight, 40, start, 0.02)
    assert warm.status == "time_limit" and warm.has_solution  # the warm start is its incumbent
    cold = sv.highs_mclp(a_csc, red.weight, 40, None, 0.02)
    assert cold.status == "time_limit" and not cold.has_solution and cold.cols == []
    # the public answer under a tight limit still has sites, a finite bound and a gap
    sol = cv.mclp(demand, weight, cands, 900.0, 40, solver="exact", time_limit=0.3)
    # on a busy machine the heuristic may use the whole limit: HiGHS is then never started
    assert sol.status in ("time_limit", "optimal", "feasible") and len(sol.sites) == 40
    assert (sol.solver == "highs") == ("milp" in sol.phases)
    assert np.isfinite(sol.bound) and sol.bound >= sol.objective and 0 <= sol.gap < 1


def test_infeasible_lscp_share_reports_status():
    rng = np.random.default_rng(9)
    demand = rng.uniform(0, 1000, (50, 2))
    a_csc = cv.coverage_matrix(demand, demand[:3], 50.0).tocsc()
    res = sv.highs_lscp(a_csc, np.ones(50), 49.0, None, 5.0)
    assert res.status == "infeasible" and not res.has_solution


def test_warm_start_values_are_checked():
    # HiGHS 1.16 returned the start's 16 columns with an objective of 14 on this instance (see
    # solvers._run_highs); the answer must be HiGHS's own 14, consistent with its objective.
    rng = np.random.default_rng(103)
    demand = rng.uniform(0, 4000, (80, 2))
    cands = np.vstack([demand[rng.choice(80, 40, replace=False)], rng.uniform(0, 4000, (20, 2))])
    red = cv.reduce(cv.coverage_matrix(demand, cands, 700.0), np.ones(80), keep_zero=True)
    a_csc, size = red.a.tocsc(), red.size.astype(float)
    start = sv.prune_lscp(a_csc, size, size.sum(), sv.greedy_lscp(a_csc, size, size.sum()))
    assert len(start) == 16
    res = sv.highs_lscp(a_csc, size, None, start, 10.0)
    assert res.status == "optimal" and len(res.cols) == 14
    assert (sv.coverage_count(a_csc, res.cols) > 0).all()
