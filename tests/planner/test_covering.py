"""geo.planner.covering: neighbourhoods, reduction, MCLP and LSCP on instances solved by hand.

The line instance (y = 0, metres; radius 1 unless said):

    demand  d0 x=0 w3   d1 x=1 w1   d2 x=2 w1   d3 x=5 w4   d4 x=6 w2   d5 x=10 w5   (total 16)
    cands   A x=1 -> {d0,d1,d2} 5    B x=5.5 -> {d3,d4} 6    C x=10 -> {d5} 5    D x=3 -> {d2} 1

d0-A and d2-D are exactly 1 m apart: reach is closed (distance <= radius). D is dominated by A.
MCLP optimum: p=1 B (6); p=2 B + A or C (11); p=3 A, B, C (16).
Fixed site F at x=0.5 reaches d0 and d1 (weight 4): then A only adds d2 (1):
p=1 B (6, total 10); p=2 B + C (11, total 15); p=3 adds A or D (12, total 16).
"""

from __future__ import annotations

import numpy as np
import pytest

from geo.planner import covering as cv
from geo.planner import solvers as sv

DEMAND = np.array([[0.0, 0], [1, 0], [2, 0], [5, 0], [6, 0], [10, 0]])
WEIGHT = np.array([3.0, 1, 1, 4, 2, 5])
CANDS = np.array([[1.0, 0], [5.5, 0], [10, 0], [3, 0]])
A, B, C, D = range(4)
FIXED = np.array([[0.5, 0.0]])


def test_coverage_matrix_is_closed_and_per_candidate():
    a = cv.coverage_matrix(DEMAND, CANDS, 1.0).toarray()
    assert a[:, A].tolist() == [True, True, True, False, False, False]
    assert a[:, B].tolist() == [False, False, False, True, True, False]
    assert a[:, D].tolist() == [False, False, True, False, False, False]
    # per-candidate radius: D reaching 2 m also takes d1 (2 m) and d3 (2 m), not d0 (3 m)
    a2 = cv.coverage_matrix(DEMAND, CANDS, [1.0, 1.0, 1.0, 2.0]).toarray()
    assert np.flatnonzero(a2[:, D]).tolist() == [1, 2, 3]
    # 3-4-5 triangle: exactly 5 m is within 5 m, not within 4.999999
    assert cv.coverage_matrix([[3.0, 4.0]], [[0.0, 0.0]], 5.0).toarray().tolist() == [[True]]
    assert cv.coverage_matrix([[3.0, 4.0]], [[0.0, 0.0]], 4.999999).toarray().tolist() == [[False]]


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="radius"):
        cv.coverage_matrix(DEMAND, CANDS, 0.0)
    with pytest.raises(ValueError, match="radius"):
        cv.coverage_matrix(DEMAND, CANDS, [1.0, 2.0])
    with pytest.raises(ValueError, match="demand_xy"):
        cv.coverage_matrix([[0.0, np.nan]], CANDS, 1.0)
    with pytest.raises(ValueError, match="p must"):
        cv.mclp(DEMAND, WEIGHT, CANDS, 1.0, 0)
    with pytest.raises(ValueError, match="weight"):
        cv.mclp(DEMAND, -WEIGHT, CANDS, 1.0, 1)
    with pytest.raises(ValueError, match="share"):
        cv.lscp(DEMAND, WEIGHT, CANDS, 1.0, share=1.5)


def test_reduction_merges_and_drops_dominated():
    red = cv.reduce(cv.coverage_matrix(DEMAND, CANDS, 1.0), WEIGHT)
    # D (only d2) is inside A; then d0, d1, d2 all have candidate set {A} and merge
    assert red.candidates.tolist() == [A, B, C]
    assert red.stats["groups"] == 3
    assert sorted(red.weight.tolist()) == [5.0, 5.0, 6.0]
    assert red.group[0] == red.group[1] == red.group[2] != red.group[3]
    assert sorted(red.size.tolist()) == [1, 2, 3]


def test_reduction_with_fixed_and_unreachable():
    demand = np.vstack([DEMAND, [[20.0, 0.0]]])
    weight = np.append(WEIGHT, 7.0)
    fixed = cv.covered_by(demand, FIXED, 1.0)
    assert fixed.tolist() == [True, True, False, False, False, False, False]
    red = cv.reduce(cv.coverage_matrix(demand, CANDS, 1.0), weight, fixed)
    assert red.unreachable.tolist() == [6]
    assert red.group[[0, 1, 6]].tolist() == [-1, -1, -1]
    # A and D now both reach only d2: equal columns, the smaller index (A) stays
    assert red.candidates.tolist() == [A, B, C]
    assert red.stats["fixed_covered"] == 2 and red.stats["unreachable"] == 1


@pytest.mark.parametrize("solver", ["exact", "greedy", "auto"])
@pytest.mark.parametrize(("p", "objective"), [(1, 6.0), (2, 11.0), (3, 16.0)])
def test_mclp_by_hand(solver, p, objective):
    sol = cv.mclp(DEMAND, WEIGHT, CANDS, 1.0, p, solver=solver)
    assert sol.objective == objective
    assert sol.covered_weight == objective and sol.fixed_weight == 0
    assert sol.status == "optimal" and sol.gap == 0 and sol.bound == pytest.approx(objective)
    assert len(sol.sites) == p and sol.sites[0] == B
    assert sol.gains.sum() == objective


def test_mclp_ranks_by_marginal_gain():
    sol = cv.mclp(DEMAND, WEIGHT, CANDS, 1.0, 3, solver="exact")
    # B adds 6, then A and C add 5 each: the tie goes to the smaller candidate index
    assert sol.sites.tolist() == [B, A, C]
    assert sol.gains.tolist() == [6.0, 5.0, 5.0]
    assert sol.covered.all()


@pytest.mark.parametrize("solver", ["exact", "greedy"])
@pytest.mark.parametrize(("p", "new", "sites"), [(1, 6.0, [B]), (2, 11.0, [B, C]), (3, 12.0, [B, C, A])])
def test_mclp_with_fixed_site(solver, p, new, sites):
    sol = cv.mclp(DEMAND, WEIGHT, CANDS, 1.0, p, fixed_xy=FIXED, solver=solver)
    assert sol.fixed_weight == 4.0
    assert sol.objective == new and sol.covered_weight == 4.0 + new
    assert sol.sites.tolist() == sites
    assert sol.covered[:2].all()  # the fixed site's demand stays covered
    assert sol.status == "optimal"


def test_mclp_more_sites_than_useful_candidates():
    sol = cv.mclp(DEMAND, WEIGHT, CANDS, 1.0, 4)  # D adds nothing once A is chosen
    assert sol.objective == 16.0 and sol.status == "optimal"
    assert sorted(sol.sites.tolist()) == [A, B, C]
    assert "only 3" in sol.message


def test_greedy_trap_is_fixed_by_swaps():
    # demand L1=0 L2=2 X=4 R1=6 R2=8 (weights 1, 1, 0.5, 1, 1); candidates L x=1 r=1 -> {L1, L2},
    # M x=4 r=2 -> {L2, X, R1} (2.5), R x=7 r=1 -> {R1, R2}. Greedy p=2: M then L = 3.5;
    # the optimum is L + R = 4, one swap (M -> R) away.
    demand = np.array([[0.0, 0], [2, 0], [4, 0], [6, 0], [8, 0]])
    weight = np.array([1.0, 1, 0.5, 1, 1])
    cands = np.array([[1.0, 0], [4, 0], [7, 0]])
    radius = np.array([1.0, 2.0, 1.0])
    a = cv.coverage_matrix(demand, cands, radius).tocsc()
    greedy = sv.greedy_mclp(a, weight, 2)
    assert greedy == [1, 0] and sv.covered_value(a, weight, greedy) == 3.5
    # the submodular bound of the greedy answer: 3.5 + the two best gains (R: 1, L/M: 0) = 4.5
    assert sv.submodular_bound(a, weight, greedy, 2) == 4.5
    sol = cv.mclp(demand, weight, cands, radius, 2, solver="greedy")
    assert sorted(sol.sites.tolist()) == [0, 2] and sol.objective == 4.0
    assert sol.status == "optimal" and sol.bound == pytest.approx(4.0)  # the Lagrangian proves it


@pytest.mark.parametrize("solver", ["exact", "greedy", "auto"])
def test_lscp_by_hand(solver):
    sol = cv.lscp(DEMAND, WEIGHT, CANDS, 1.0, solver=solver)
    assert sol.objective == 3 and sorted(sol.sites.tolist()) == [A, B, C]
    assert sol.status == "optimal" and sol.bound == 3 and sol.covered.all()
    with_fixed = cv.lscp(DEMAND, WEIGHT, CANDS, 1.0, fixed_xy=FIXED, solver=solver)
    assert with_fixed.objective == 3  # d2 still needs A or D
    # 60 % of 16 = 9.6: one site gives at most 6, B + A give 11
    share = cv.lscp(DEMAND, WEIGHT, CANDS, 1.0, share=0.6, solver=solver)
    assert share.objective == 2 and share.sites[0] == B and share.covered_weight >= 9.6
    assert share.status == "optimal"
    # with F (4) the rest needs 5.6: B alone (6)
    share_fixed = cv.lscp(DEMAND, WEIGHT, CANDS, 1.0, share=0.6, fixed_xy=FIXED, solver=solver)
    assert share_fixed.sites.tolist() == [B] and share_fixed.covered_weight == 10.0


def test_lscp_fixed_sites_already_enough():
    sol = cv.lscp(DEMAND, WEIGHT, CANDS, 1.0, share=0.25, fixed_xy=FIXED)  # 4 of 16
    assert sol.objective == 0 and sol.status == "optimal" and len(sol.sites) == 0


def test_unreachable_demand_is_reported_never_dropped():
    demand = np.vstack([DEMAND, [[20.0, 0.0]]])
    weight = np.append(WEIGHT, 7.0)
    every = cv.lscp(demand, weight, CANDS, 1.0)
    assert every.status == "infeasible" and every.unreachable.tolist() == [6]
    assert len(every.sites) == 0 and np.isnan(every.objective)
    # 16 of 23 can be reached (69.6 %): 70 % cannot, 69 % can
    assert cv.lscp(demand, weight, CANDS, 1.0, share=0.70).status == "infeasible"
    ok = cv.lscp(demand, weight, CANDS, 1.0, share=0.69)
    assert ok.status == "optimal" and ok.objective == 3 and ok.unreachable.tolist() == [6]
    mclp = cv.mclp(demand, weight, CANDS, 1.0, 3)
    assert mclp.unreachable.tolist() == [6] and mclp.total_weight == 23 and mclp.covered_weight == 16
    assert not mclp.covered[6]


def test_summary_is_plain_json():
    import json

    sol = cv.mclp(DEMAND, WEIGHT, CANDS, 1.0, 2, solver="exact")
    s = sol.summary()
    json.dumps(s)
    assert s["sites"] == sol.sites.tolist() and s["solver"] == "highs" and s["status"] == "optimal"
    assert s["reduction"]["groups"] == 3
