"""Covering location problems over plain arrays in metres (no database): MCLP and LSCP.

- **MCLP** (maximal covering): choose ``p`` new sites among candidates to maximise the weight of
  demand within reach. Fixed sites (the active models) are required: what they reach counts as
  covered and takes no part in the choice.
- **LSCP** (set covering): the fewest new sites so that every demand unit is reached, or a
  given share of the total weight is. Demand that no site can reach is listed in
  ``Solution.unreachable``, never dropped silently; when the target needs it the answer is
  ``infeasible``.

A demand unit is reached by a site when their Euclidean distance is <= the site's radius
(closed, as ``ST_DWithin`` and spopt's ``cost <= radius``), coordinates in metres of one
projected CRS (EPSG:3405 in this project). Neighbourhoods come from a ``cKDTree``.

Before solving, the instance is reduced as the field's best solvers do: demand already
reached by a fixed site, zero-weight demand (MCLP) and unreachable demand leave it; demand
units with identical candidate sets merge into one weighted group; candidates whose set is
contained in another's (dominated, or equal with a larger index) are dropped, repeated until
stable. The reduction keeps the optimum (for any p) and is reported in ``Solution.reduction``.

Solvers (``geo.planner.solvers``): ``'exact'`` = HiGHS MILP warm-started with the heuristic;
``'greedy'`` = lazy greedy + vertex interchange with a Lagrangian/submodular upper bound;
``'auto'`` = the heuristic, then HiGHS on the remaining time unless the bound already proves
the heuristic optimal or the instance is too large for the MILP. Every answer carries the
solver, its status, the objective, a bound and the gap between them.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from geo.planner import solvers

Solver = Literal["auto", "exact", "greedy"]
# Above this many non-zeros the reduced MILP is left to the heuristic in 'auto' mode (HiGHS
# spends the whole budget on the root LP); 'exact' always tries.
AUTO_MILP_MAX_NNZ = 1_500_000
TOL = 1e-7
FINISH_SHARE = 0.95  # of the time limit for solving; the rest maps the answer back


def as_xy(values: Any, name: str) -> np.ndarray:
    """(n, 2) float array of finite coordinates in metres (ValueError naming ``name``)."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return np.empty((0, 2))
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must be an (n, 2) array of x, y in metres")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite")
    return arr


def radii(radius: Any, n: int, name: str = "radius") -> np.ndarray:
    """One radius per site from a number or an array of n numbers, each finite and > 0."""
    r = np.asarray(radius, dtype=float)
    if r.ndim == 0:
        r = np.full(n, float(r))
    if r.shape != (n,):
        raise ValueError(f"{name} must be a number or one value per site ({n})")
    if n and (not np.isfinite(r).all() or (r <= 0).any()):
        raise ValueError(f"{name} must be finite and > 0")
    return r


def coverage_matrix(demand_xy: Any, site_xy: Any, radius: Any) -> sparse.csr_matrix:
    """Boolean CSR (n_demand x n_sites): (i, j) set when demand i lies within ``radius[j]``
    metres of site j (distance <= radius)."""
    d, s = as_xy(demand_xy, "demand_xy"), as_xy(site_xy, "site_xy")
    r = radii(radius, len(s))
    n, m = len(d), len(s)
    if n == 0 or m == 0:
        return sparse.csr_matrix((n, m), dtype=bool)
    tree = cKDTree(d)
    lists = tree.query_ball_point(s, r[0] if (r == r[0]).all() else r, return_sorted=False)
    lens = np.fromiter((len(x) for x in lists), dtype=np.int64, count=m)
    indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(lens, out=indptr[1:])
    indices = np.fromiter((i for x in lists for i in x), dtype=np.int64, count=int(indptr[-1]))
    csc = sparse.csc_matrix((np.ones(len(indices), dtype=bool), indices, indptr), shape=(n, m))
    out = csc.tocsr()
    out.sort_indices()
    return out


def covered_by(demand_xy: Any, site_xy: Any, radius: Any) -> np.ndarray:
    """Boolean per demand unit: within reach of at least one site."""
    a = coverage_matrix(demand_xy, site_xy, radius)
    return np.diff(a.indptr) > 0


# --- reduction -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Reduced:
    """The reduced instance and how it maps back to the original one."""

    a: sparse.csr_matrix       # groups x kept candidates
    weight: np.ndarray         # weight of each group (sum of its members')
    size: np.ndarray           # number of demand units in each group
    group: np.ndarray          # per original demand unit: its group, or -1 when left out
    candidates: np.ndarray     # original index of each kept column
    fixed: np.ndarray          # per original demand unit: reached by a fixed site
    unreachable: np.ndarray    # original indices of demand reached by no site at all
    stats: dict[str, int]


def _merge_rows(b: sparse.csr_matrix) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Unique rows of a CSR with sorted indices, and each row's unique-row index."""
    ptr, idx = b.indptr, b.indices
    seen: dict[bytes, int] = {}
    inverse = np.fromiter((seen.setdefault(idx[ptr[i]:ptr[i + 1]].tobytes(), len(seen))
                           for i in range(b.shape[0])), dtype=np.int64, count=b.shape[0])
    first = np.full(len(seen), -1, dtype=np.int64)
    order = np.arange(b.shape[0])[::-1]
    first[inverse[order]] = order  # the last write wins: the first occurrence
    return b[first], inverse


def _undominated(b: sparse.csr_matrix) -> np.ndarray:
    """Columns not contained in another column (ties between equal columns: the smallest
    index stays), and not empty."""
    bi = b.astype(np.int32)
    size = np.asarray(bi.sum(axis=0)).ravel()
    overlap = (bi.T @ bi).tocoo()
    j, k, v = overlap.row, overlap.col, overlap.data
    mask = (j != k) & (v == size[j]) & ((size[k] > size[j]) | ((size[k] == size[j]) & (k < j)))
    keep = size > 0
    keep[j[mask]] = False
    return keep


def reduce(a: sparse.spmatrix, weight: np.ndarray, fixed: np.ndarray | None = None,
           keep_zero: bool = False) -> Reduced:
    """Reduce a covering instance (see the module docstring). ``a`` is (demand x candidates);
    ``keep_zero`` keeps zero-weight demand (LSCP covering every unit)."""
    a = sparse.csr_matrix(a, dtype=bool)
    a.sort_indices()
    n, m = a.shape
    weight = np.asarray(weight, dtype=float)
    fixed = np.zeros(n, dtype=bool) if fixed is None else np.asarray(fixed, dtype=bool)
    reachable = np.diff(a.indptr) > 0
    unreachable = np.flatnonzero(~fixed & ~reachable)
    active = ~fixed & reachable & (keep_zero | (weight > 0))
    rows = np.flatnonzero(active)
    b = a[rows]
    cols = np.arange(m)
    group_of_row = np.arange(len(rows))
    for _ in range(10):
        b, inverse = _merge_rows(b)
        group_of_row = inverse[group_of_row]
        keep = _undominated(b)
        if keep.all():
            break
        b = b[:, np.flatnonzero(keep)]
        b.sort_indices()
        cols = cols[keep]
    group = np.full(n, -1, dtype=np.int64)
    group[rows] = group_of_row
    g = b.shape[0]
    gw = np.bincount(group_of_row, weights=weight[rows], minlength=g) if g else np.zeros(0)
    gs = np.bincount(group_of_row, minlength=g) if g else np.zeros(0, dtype=np.int64)
    stats = {"demand": n, "candidates": m, "fixed_covered": int(fixed.sum()),
             "unreachable": len(unreachable), "zero_weight": int((~fixed & reachable & ~active).sum()),
             "groups": g, "candidates_kept": len(cols), "nonzeros": int(b.nnz)}
    return Reduced(b.tocsr(), gw, gs, group, cols, fixed, unreachable, stats)


# --- answers -------------------------------------------------------------------------------

@dataclass
class Solution:
    """A solved (or infeasible) covering problem, in terms of the original indices.

    MCLP: ``objective`` = weight newly covered by the sites (demand reached by fixed sites is
    ``fixed_weight`` and is not part of it), ``bound`` >= the best possible objective. LSCP:
    ``objective`` = number of new sites, ``bound`` <= the fewest possible. ``gap`` =
    (bound - objective) / bound for the MCLP, (objective - bound) / objective for the LSCP; 0
    means proved optimal. ``status``: 'optimal' (proved: gap 0), 'within_gap' (the gap is
    certified <= the requested tolerance), 'time_limit' (the time limit stopped the search,
    HiGHS's or the heuristic's, before it was proved optimal: the best solution found is returned
    with its gap), 'feasible' (the heuristic finished within the time limit, gap as reported),
    'infeasible' (LSCP target out of reach: see ``unreachable``)."""

    problem: str
    solver: str
    status: str
    sites: np.ndarray              # chosen candidates (original indices), ranked by marginal gain
    gains: np.ndarray              # weight newly covered by each, in that order
    objective: float
    bound: float
    gap: float
    covered: np.ndarray            # per demand unit: reached by a fixed or a chosen site
    total_weight: float
    fixed_weight: float
    covered_weight: float          # fixed_weight + weight newly covered
    unreachable: np.ndarray        # demand no site (fixed or candidate) reaches
    time_s: float
    phases: dict[str, float] = field(default_factory=dict)
    reduction: dict[str, int] = field(default_factory=dict)
    p: int | None = None
    target_weight: float | None = None
    message: str = ""

    def summary(self) -> dict[str, Any]:
        """Plain JSON-ready figures (no per-demand arrays)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("covered", "sites", "gains", "unreachable")}
        out["sites"] = [int(s) for s in self.sites]
        out["gains"] = [float(g) for g in self.gains]
        out["unreachable"] = [int(u) for u in self.unreachable]
        return out


def _gap_max(objective: float, bound: float) -> float:
    return 0.0 if bound <= 0 else max(0.0, (bound - objective) / bound)


def _finish(problem: str, solver: str, status: str, red: Reduced, a: sparse.csr_matrix,
            weight: np.ndarray, cols: list[int], objective: float, bound: float, gap: float,
            t0: float, phases: dict[str, float], **extra: Any) -> Solution:
    a_csc = red.a.tocsc()
    order, gains = solvers.rank_by_gain(a_csc, red.weight, cols, order_key=red.candidates)
    sites = red.candidates[np.asarray(order, dtype=np.int64)] if order else np.zeros(0, dtype=np.int64)
    covered = red.fixed.copy()
    if len(sites):
        covered |= np.asarray(a[:, sites].sum(axis=1)).ravel() > 0
    fixed_weight = float(weight[red.fixed].sum())
    return Solution(problem=problem, solver=solver, status=status, sites=sites,
                    gains=np.asarray(gains, dtype=float), objective=float(objective),
                    bound=float(bound), gap=float(gap), covered=covered,
                    total_weight=float(weight.sum()), fixed_weight=fixed_weight,
                    covered_weight=float(weight[covered].sum()), unreachable=red.unreachable,
                    time_s=time.perf_counter() - t0, phases=phases, reduction=red.stats, **extra)


def _fixed_mask(demand_xy: np.ndarray, fixed_xy: Any, fixed_radius: Any, radius: Any) -> np.ndarray:
    f = as_xy(fixed_xy if fixed_xy is not None else np.empty((0, 2)), "fixed_xy")
    if not len(f):
        return np.zeros(len(demand_xy), dtype=bool)
    if fixed_radius is None:
        if np.ndim(radius) != 0:
            raise ValueError("fixed_radius is needed when radius varies per candidate")
        fixed_radius = radius
    return covered_by(demand_xy, f, radii(fixed_radius, len(f), "fixed_radius"))


def _weights(weight: Any, n: int) -> np.ndarray:
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"weight must have one value per demand unit ({n})")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weight must be finite and >= 0")
    return w


# --- MCLP ----------------------------------------------------------------------------------

def mclp(demand_xy: Any, weight: Any, cand_xy: Any, radius: Any, p: int, fixed_xy: Any = None,
         fixed_radius: Any = None, solver: Solver = "auto", time_limit: float = 10.0,
         gap: float = 0.0) -> Solution:
    """Maximal covering: ``p`` sites among ``cand_xy`` (radius: a number or one per candidate)
    maximising the weight of demand within reach; ``fixed_xy`` sites (radius ``fixed_radius``,
    default ``radius``) are kept and what they reach counts as covered. ``gap``: the certified
    relative gap at which to stop (the heuristic's bound or HiGHS's ``mip_rel_gap``; 0: prove
    optimality within ``time_limit``)."""
    t0 = time.perf_counter()
    d = as_xy(demand_xy, "demand_xy")
    c = as_xy(cand_xy, "cand_xy")
    a = coverage_matrix(d, c, radius)
    fixed = _fixed_mask(d, fixed_xy, fixed_radius, radius)
    phases = {"neighbourhoods": time.perf_counter() - t0}
    return mclp_matrix(a, weight, p, fixed, solver=solver, time_limit=time_limit, gap=gap,
                       _t0=t0, _phases=phases)


def mclp_matrix(a: sparse.spmatrix, weight: Any, p: int, fixed: np.ndarray | None = None,
                solver: Solver = "auto", time_limit: float = 10.0, gap: float = 0.0,
                _t0: float | None = None, _phases: dict[str, float] | None = None) -> Solution:
    """The MCLP on a ready coverage matrix (demand x candidates) and a fixed-coverage mask."""
    t0 = _t0 if _t0 is not None else time.perf_counter()
    phases = dict(_phases or {})
    if int(p) != p or p < 1:
        raise ValueError("p must be an integer >= 1")
    if solver not in ("auto", "exact", "greedy"):
        raise ValueError("solver must be 'auto', 'exact' or 'greedy'")
    if not (time_limit > 0):
        raise ValueError("time_limit must be > 0")
    if not (0 <= gap < 1):
        raise ValueError("gap must be within [0, 1)")
    p = int(p)
    a = sparse.csr_matrix(a, dtype=bool)
    w = _weights(weight, a.shape[0])
    deadline = t0 + FINISH_SHARE * float(time_limit)
    t = time.perf_counter()
    red = reduce(a, w, fixed)
    phases["reduction"] = time.perf_counter() - t
    a_csr, a_csc, gw = red.a, red.a.tocsc(), red.weight
    m = a_csr.shape[1]
    if m <= p:  # every useful candidate fits: trivially optimal
        cols = list(range(m))
        value = solvers.covered_value(a_csc, gw, cols)
        msg = "" if m == p else f"only {m} candidates add coverage"
        return _finish("mclp", "exhaustive", "optimal", red, a, w, cols, value, value, 0.0, t0, phases,
                       p=p, message=msg)
    t = time.perf_counter()
    cols = solvers.greedy_mclp(a_csc, gw, p)
    heuristic_deadline = deadline if solver == "greedy" else t + 0.3 * (deadline - t)
    cols, swaps = solvers.swap_mclp(a_csr, a_csc, gw, cols, heuristic_deadline)
    value = solvers.covered_value(a_csc, gw, cols)
    phases["heuristic"] = time.perf_counter() - t
    t = time.perf_counter()
    bound = solvers.submodular_bound(a_csc, gw, cols, p)
    bound_deadline = deadline if solver == "greedy" else t + 0.3 * max(0.0, deadline - t)
    enough = max(TOL, gap)  # a certified relative gap at which to stop
    if solver != "exact" and bound - value > enough * max(1.0, bound):
        aim = value / (1 - gap) if gap > 0 else None  # stop once the bound certifies the gap
        bound = min(bound, solvers.lagrangian_mclp(a_csr, a_csc, gw, p, value, bound_deadline,
                                                   stop_below=aim))
    phases["bound"] = time.perf_counter() - t
    name, status = "greedy+swap", "feasible"
    proved = bound - value <= enough * max(1.0, bound)
    run_milp = solver == "exact" or (solver == "auto" and not proved and a_csr.nnz <= AUTO_MILP_MAX_NNZ)
    message = f"{swaps} swaps"
    if run_milp and time.perf_counter() >= deadline:
        message += "; time limit reached before HiGHS started"
    elif run_milp:
        t = time.perf_counter()
        res = solvers.highs_mclp(a_csc, gw, p, cols, deadline - t, gap)
        phases["milp"] = time.perf_counter() - t
        name, status = "highs", res.status
        message += f"; HiGHS {res.status}, {res.nodes} nodes"
        if res.has_solution:
            mip_value = solvers.covered_value(a_csc, gw, res.cols)
            if mip_value >= value - TOL * max(1.0, value):
                cols, value = res.cols, mip_value
        if np.isfinite(res.dual_bound):
            bound = min(bound, res.dual_bound)
        if res.status not in ("optimal", "time_limit"):
            status = res.status
    bound = max(bound, value)
    g = _gap_max(value, bound)
    if g <= TOL:  # a relative difference of 1e-7 is float rounding in the bound, not a gap
        status, g, bound = "optimal", 0.0, value
    elif g <= gap or status == "optimal":  # HiGHS's "optimal" holds within its mip_rel_gap only
        status = "within_gap"
    elif status == "feasible" and time.perf_counter() >= deadline:
        status = "time_limit"  # the time ran out before the search finished: say so
    return _finish("mclp", name, status, red, a, w, cols, value, bound, g, t0, phases, p=p, message=message)


# --- LSCP ----------------------------------------------------------------------------------

def lscp(demand_xy: Any, weight: Any, cand_xy: Any, radius: Any, share: float | None = None,
         fixed_xy: Any = None, fixed_radius: Any = None, solver: Solver = "auto",
         time_limit: float = 10.0) -> Solution:
    """Set covering: the fewest sites among ``cand_xy`` so that every demand unit is within
    reach (``share=None``), or at least ``share`` of the total weight is (fixed sites' reach
    counts). Unreachable demand is listed in ``Solution.unreachable``; when the target cannot
    be met the status is 'infeasible' and no site is chosen."""
    t0 = time.perf_counter()
    d = as_xy(demand_xy, "demand_xy")
    c = as_xy(cand_xy, "cand_xy")
    a = coverage_matrix(d, c, radius)
    fixed = _fixed_mask(d, fixed_xy, fixed_radius, radius)
    phases = {"neighbourhoods": time.perf_counter() - t0}
    return lscp_matrix(a, weight, share, fixed, solver=solver, time_limit=time_limit, _t0=t0,
                       _phases=phases)


def lscp_matrix(a: sparse.spmatrix, weight: Any, share: float | None = None,
                fixed: np.ndarray | None = None, solver: Solver = "auto", time_limit: float = 10.0,
                _t0: float | None = None, _phases: dict[str, float] | None = None) -> Solution:
    """The LSCP on a ready coverage matrix (demand x candidates) and a fixed-coverage mask."""
    t0 = _t0 if _t0 is not None else time.perf_counter()
    phases = dict(_phases or {})
    if share is not None and not (0 < share <= 1):
        raise ValueError("share must be within (0, 1]")
    if solver not in ("auto", "exact", "greedy"):
        raise ValueError("solver must be 'auto', 'exact' or 'greedy'")
    if not (time_limit > 0):
        raise ValueError("time_limit must be > 0")
    a = sparse.csr_matrix(a, dtype=bool)
    w = _weights(weight, a.shape[0])
    deadline = t0 + FINISH_SHARE * float(time_limit)
    t = time.perf_counter()
    red = reduce(a, w, fixed, keep_zero=share is None)
    phases["reduction"] = time.perf_counter() - t
    a_csr, a_csc = red.a, red.a.tocsc()
    total = float(w.sum())
    fixed_weight = float(w[red.fixed].sum())
    if share is None:  # every unit: cover every group (counted by members)
        gw = red.size.astype(float)
        need = float(gw.sum())
        feasible = len(red.unreachable) == 0
        target_weight = total
    else:
        gw = red.weight
        target_weight = share * total
        need = target_weight - fixed_weight
        feasible = need <= float(gw.sum()) * (1 + TOL) + TOL
    if not feasible:
        return _finish("lscp", "none", "infeasible", red, a, w, [], np.nan, np.nan, np.nan, t0, phases,
                       target_weight=target_weight,
                       message=f"{len(red.unreachable)} demand units cannot be reached by any candidate")
    if need <= TOL * max(1.0, target_weight):
        return _finish("lscp", "none", "optimal", red, a, w, [], 0, 0, 0.0, t0, phases,
                       target_weight=target_weight, message="the fixed sites already meet the target")
    t = time.perf_counter()
    cols = solvers.prune_lscp(a_csc, gw, need, solvers.greedy_lscp(a_csc, gw, need))
    phases["heuristic"] = time.perf_counter() - t
    t = time.perf_counter()
    bound_deadline = t + (0.5 if solver == "greedy" else 0.3) * max(0.0, deadline - t)
    bound = solvers.lscp_lower_bound(a_csr, a_csc, gw, need, len(cols), bound_deadline)
    phases["bound"] = time.perf_counter() - t
    if bound < len(cols):
        t = time.perf_counter()
        swap_deadline = deadline if solver == "greedy" else t + 0.3 * max(0.0, deadline - t)
        cols = solvers.shrink_lscp(a_csr, a_csc, gw, need, cols, swap_deadline, stop_at=bound)
        phases["swaps"] = time.perf_counter() - t
    name, status, message = "greedy", "feasible", ""
    proved = bound >= len(cols)
    run_milp = solver == "exact" or (solver == "auto" and not proved and a_csr.nnz <= AUTO_MILP_MAX_NNZ)
    if run_milp and time.perf_counter() >= deadline:
        message = "time limit reached before HiGHS started"
    elif run_milp:
        t = time.perf_counter()
        res = solvers.highs_lscp(a_csc, gw, None if share is None else need, cols, deadline - t)
        phases["milp"] = time.perf_counter() - t
        name, status = "highs", res.status
        message = f"HiGHS {res.status}, {res.nodes} nodes"
        if res.has_solution and len(res.cols) <= len(cols):
            cov = solvers.coverage_count(a_csc, res.cols) > 0
            if float(gw[cov].sum()) >= need - TOL * max(1.0, need):
                cols = res.cols
        if np.isfinite(res.dual_bound):
            bound = max(bound, int(np.ceil(res.dual_bound - 1e-6)))
        if res.status not in ("optimal", "time_limit"):
            status = res.status
    k = len(cols)
    bound = min(bound, k)
    g = 0.0 if k == 0 else (k - bound) / k
    if g <= TOL:
        status, g = "optimal", 0.0
    elif status == "feasible" and time.perf_counter() >= deadline:
        status = "time_limit"  # the time ran out before the search finished: say so
    return _finish("lscp", name, status, red, a, w, cols, k, bound, g, t0, phases,
                   target_weight=target_weight, message=message)
