"""Solvers of the reduced covering problems built by ``geo.planner.covering``.

Every function works on a reduced instance: a 0/1 matrix ``A`` (demand groups x candidate
columns, scipy CSR/CSC), non-negative group weights ``w`` and, for the MCLP, the number of
sites ``p``. They return column indices of that matrix; ``covering`` maps them back.

- ``greedy_mclp`` + ``swap_mclp``: the classic lazy greedy (coverage is submodular, so a stale
  gain is an upper bound on the fresh one and only the top of the heap is re-evaluated), then
  vertex interchange (Teitz & Bart) with best-improvement moves, all gains of all swaps out of
  one site computed with one sparse product.
- ``lagrangian_mclp``: the Lagrangian bound of the coverage constraints (Galvao & ReVelle):
  for any 0 <= lambda <= w, sum(max(0, w - lambda)) + (the p largest A^T lambda) bounds the
  optimum from above; subgradient steps drive it to the LP bound. It makes the heuristic's gap
  a number without a MILP.
- ``highs_mclp`` / ``highs_lscp``: the MILPs for HiGHS (``highspy``), warm-started with the
  heuristic's solution; the status, the dual bound and whether an incumbent exists are read
  from HiGHS, never assumed.
- ``greedy_lscp`` + ``prune_lscp`` and ``lscp_lower_bound`` for the set-covering problem.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse

EPS = 1e-9


def _rows(a_csc: sparse.csc_matrix, j: int) -> np.ndarray:
    return a_csc.indices[a_csc.indptr[j]:a_csc.indptr[j + 1]]


def coverage_count(a_csc: sparse.csc_matrix, cols: list[int] | np.ndarray) -> np.ndarray:
    """How many of the columns ``cols`` cover each group."""
    cnt = np.zeros(a_csc.shape[0], dtype=np.int32)
    for j in cols:
        cnt[_rows(a_csc, int(j))] += 1
    return cnt


def covered_value(a_csc: sparse.csc_matrix, w: np.ndarray, cols: list[int] | np.ndarray) -> float:
    """Weight of the groups covered by at least one of ``cols``."""
    return float(w[coverage_count(a_csc, cols) > 0].sum())


def rank_by_gain(a_csc: sparse.csc_matrix, w: np.ndarray, cols: list[int] | np.ndarray,
                 order_key: np.ndarray | None = None) -> tuple[list[int], list[float]]:
    """Order ``cols`` by marginal gain: each next column is the one adding the most weight to
    what the previous ones cover (ties: the smaller ``order_key``, default the column index).
    Returns the order and each column's added weight (they sum to the covered value). Lazy:
    a gain only shrinks as columns are placed, so only the heap's top is re-evaluated."""
    key = order_key if order_key is not None else np.arange(a_csc.shape[1])
    covered = np.zeros(a_csc.shape[0], dtype=bool)
    heap = []
    for j in cols:
        rows = _rows(a_csc, int(j))
        heap.append((-float(w[rows].sum()), int(key[int(j)]), int(j)))
    heapq.heapify(heap)
    order, gains = [], []
    while heap:
        _, k, j = heapq.heappop(heap)
        rows = _rows(a_csc, j)
        fresh = float(w[rows[~covered[rows]]].sum())
        if not heap or (-fresh, k) <= heap[0][:2]:
            order.append(j)
            gains.append(fresh)
            covered[rows] = True
        else:
            heapq.heappush(heap, (-fresh, k, j))
    return order, gains


# --- MCLP heuristics -----------------------------------------------------------------------

def greedy_mclp(a_csc: sparse.csc_matrix, w: np.ndarray, p: int) -> list[int]:
    """Lazy greedy: p columns, each the one with the largest gain given those before it (ties:
    smallest index: a column is taken only when its fresh (gain, index) beats the heap's top).
    Stops early when no column adds anything."""
    covered = np.zeros(a_csc.shape[0], dtype=bool)
    gains = np.asarray(a_csc.T @ w).ravel()
    heap = [(-float(g), j) for j, g in enumerate(gains) if g > 0]
    heapq.heapify(heap)
    chosen: list[int] = []
    while heap and len(chosen) < p:
        _, j = heapq.heappop(heap)
        rows = _rows(a_csc, j)
        fresh = float(w[rows[~covered[rows]]].sum())
        if fresh <= 0:
            continue
        if not heap or (-fresh, j) <= heap[0]:  # fresh beats every (stale, larger) gain left
            chosen.append(j)
            covered[rows] = True
        else:
            heapq.heappush(heap, (-fresh, j))
    return chosen


def swap_mclp(a_csr: sparse.csr_matrix, a_csc: sparse.csc_matrix, w: np.ndarray, chosen: list[int],
              deadline: float) -> tuple[list[int], int]:
    """Vertex interchange: repeatedly apply the best swap (one chosen column out, one other in)
    that raises the covered weight, until none does or the deadline passes. Returns the columns
    and the number of swaps made."""
    m = a_csc.shape[1]
    chosen = list(chosen)
    if not chosen or len(chosen) >= m:
        return chosen, 0
    cnt = coverage_count(a_csc, chosen)
    total = float(w.sum())
    swaps = 0
    while time.perf_counter() < deadline:
        g0 = np.asarray(a_csc.T @ (w * (cnt == 0))).ravel()  # gain of adding each column
        once = cnt == 1
        in_set = np.zeros(m, dtype=bool)
        in_set[chosen] = True
        best = (EPS * max(1.0, total), -1, -1)
        for pos, s in enumerate(chosen):
            rows = _rows(a_csc, s)
            only = rows[once[rows]]  # groups that s alone covers
            loss = float(w[only].sum())
            delta = g0 - loss
            if len(only):
                sub = a_csr[only]
                delta += np.bincount(sub.indices, weights=np.repeat(w[only], np.diff(sub.indptr)),
                                     minlength=m)
            delta[in_set] = -np.inf
            c = int(np.argmax(delta))
            if delta[c] > best[0]:
                best = (float(delta[c]), pos, c)
        if best[1] < 0:
            break
        _, pos, c = best
        cnt[_rows(a_csc, chosen[pos])] -= 1
        cnt[_rows(a_csc, c)] += 1
        chosen[pos] = c
        swaps += 1
    return chosen, swaps


def submodular_bound(a_csc: sparse.csc_matrix, w: np.ndarray, chosen: list[int], p: int) -> float:
    """f(S) + the p largest marginal gains w.r.t. S: an upper bound on the best p columns
    (f(OPT) <= f(S u OPT) <= f(S) + sum over OPT of single gains, by submodularity)."""
    cnt = coverage_count(a_csc, chosen)
    gains = np.asarray(a_csc.T @ (w * (cnt == 0))).ravel()
    top = np.sort(gains)[::-1][:p]
    return float(w[cnt > 0].sum() + top.sum())


def _top_sum(c: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    if k >= len(c):
        return float(c.sum()), np.arange(len(c))
    idx = np.argpartition(-c, k - 1)[:k]
    return float(c[idx].sum()), idx


def lagrangian_mclp(a_csr: sparse.csr_matrix, a_csc: sparse.csc_matrix, w: np.ndarray, p: int,
                    lower: float, deadline: float, max_iter: int = 500,
                    stop_below: float | None = None) -> float:
    """Upper bound on the best p columns: min over the lambdas tried of
    L(lambda) = sum(max(0, w - lambda)) + the p largest (A^T lambda), each a valid bound for any
    lambda in [0, w]; Polyak subgradient steps towards ``lower`` (the best known value). Stops
    once the bound is below ``stop_below`` (default: ``lower`` itself, i.e. optimality proved)."""
    if p <= 0:
        return 0.0
    stop = lower + 1e-7 * max(1.0, abs(lower)) if stop_below is None else stop_below
    lam = w.astype(float).copy()
    x = np.zeros(a_csr.shape[1])
    best = math.inf
    theta, stall = 2.0, 0
    for _ in range(max_iter):
        c = np.asarray(a_csr.T @ lam).ravel()
        top_sum, top = _top_sum(c, p)
        value = float(np.clip(w - lam, 0, None).sum()) + top_sum
        if value < best - EPS * max(1.0, abs(best) if math.isfinite(best) else 1.0):
            best, stall = value, 0
        else:
            stall += 1
            if stall >= 10:
                theta, stall = theta / 2, 0
        if best <= stop or theta < 1e-6 or time.perf_counter() > deadline:
            break
        x[:] = 0.0
        x[top] = 1.0
        grad = (a_csr @ x) - (w > lam)  # sum over chosen columns covering i, minus dL/dy_i
        norm = float(np.square(grad).sum())  # not BLAS ddot: its threads spin on a busy machine
        if norm == 0:
            break
        step = theta * max(value - lower, EPS) / norm
        lam = np.clip(lam - step * grad, 0.0, w)
    return best


# --- HiGHS ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class MipResult:
    """What HiGHS said: its model status (as text), whether it holds a feasible solution, the
    columns chosen in it, its dual bound and its own gap."""

    status: str
    has_solution: bool
    cols: list[int]
    dual_bound: float
    mip_gap: float
    nodes: int


_STATUS = {"kOptimal": "optimal", "kTimeLimit": "time_limit", "kInfeasible": "infeasible",
           "kInterrupt": "interrupted", "kUnboundedOrInfeasible": "infeasible",
           "kIterationLimit": "iteration_limit", "kSolutionLimit": "solution_limit",
           "kMemoryLimit": "memory_limit", "kModelEmpty": "optimal"}


def _colwise(a_csc: sparse.csc_matrix, sign: float, extra_row: int | None) -> tuple[np.ndarray, ...]:
    """Column starts/indices/values of ``sign * A`` with, when ``extra_row`` is given, a 1 added
    at that row in every column (the budget row of the MCLP)."""
    m = a_csc.shape[1]
    nnz = a_csc.nnz
    if extra_row is None:
        return (a_csc.indptr.astype(np.int32), a_csc.indices.astype(np.int32),
                np.full(nnz, sign, dtype=float))
    start = (a_csc.indptr + np.arange(m + 1)).astype(np.int32)
    idx = np.empty(nnz + m, dtype=np.int32)
    val = np.empty(nnz + m, dtype=float)
    extra = start[1:] - 1
    mask = np.ones(nnz + m, dtype=bool)
    mask[extra] = False
    idx[mask], val[mask] = a_csc.indices, sign
    idx[extra], val[extra] = extra_row, 1.0
    return start, idx, val


def _run_highs(lp, start_values: np.ndarray | None, time_limit: float, rel_gap: float,
               n_x: int) -> MipResult:
    """Solve ``lp`` with HiGHS (optionally from a start solution) and read what it says.

    HiGHS 1.16 may return, after a warm start, a ``col_value`` that is not the solution it
    reports (seen on set-covering models whose columns presolve removed: the objective says
    14 sites, the values hold the 16 of the start). So the values are checked against the
    reported objective, and on a mismatch the model is solved again without the start."""
    import highspy

    t0 = time.perf_counter()
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", max(0.01, float(time_limit)))
    h.setOptionValue("mip_rel_gap", float(rel_gap))
    h.setOptionValue("random_seed", 1)
    h.passModel(lp)
    if start_values is not None:
        sol = highspy.HighsSolution()
        sol.col_value = start_values.tolist()
        h.setSolution(sol)
    h.run()
    status = h.getModelStatus()
    name = status.name if hasattr(status, "name") else str(status).split(".")[-1]
    info = h.getInfo()
    has_solution = int(info.primal_solution_status) == int(highspy.kSolutionStatusFeasible)
    cols: list[int] = []
    if has_solution:
        values = np.asarray(h.getSolution().col_value)
        reported = float(info.objective_function_value)
        if abs(float((np.asarray(lp.col_cost_) * values).sum()) - reported) > 1e-6 * max(1.0, abs(reported)):
            if start_values is not None:
                left = float(time_limit) - (time.perf_counter() - t0)
                return _run_highs(lp, None, max(left, 0.01), rel_gap, n_x)
            has_solution = False  # never report values HiGHS does not stand behind
        else:
            cols = [int(j) for j in np.flatnonzero(values[:n_x] > 0.5)]
    return MipResult(_STATUS.get(name, name), has_solution, cols, float(info.mip_dual_bound),
                     float(info.mip_gap), int(info.mip_node_count))


def highs_mclp(a_csc: sparse.csc_matrix, w: np.ndarray, p: int, start: list[int] | None,
               time_limit: float, rel_gap: float = 0.0) -> MipResult:
    """max sum w_i y_i  s.t.  y_i <= sum_j a_ij x_j,  sum_j x_j <= p,  x binary, 0 <= y <= 1.

    y may stay continuous: for integral x the optimum sets y_i = min(1, sum_j a_ij x_j)."""
    import highspy

    g, m = a_csc.shape
    xs, xi, xv = _colwise(a_csc, -1.0, g)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = m + g, g + 1
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = np.concatenate([np.zeros(m), w.astype(float)])
    lp.col_lower_ = np.zeros(m + g)
    lp.col_upper_ = np.ones(m + g)
    lp.row_lower_ = np.concatenate([np.full(g, -highspy.kHighsInf), [-highspy.kHighsInf]])
    lp.row_upper_ = np.concatenate([np.zeros(g), [float(p)]])
    lp.integrality_ = [highspy.HighsVarType.kInteger] * m + [highspy.HighsVarType.kContinuous] * g
    mat = lp.a_matrix_
    mat.format_ = highspy.MatrixFormat.kColwise
    mat.num_col_, mat.num_row_ = m + g, g + 1
    mat.start_ = np.concatenate([xs, xs[-1] + np.arange(1, g + 1)]).astype(np.int32)
    mat.index_ = np.concatenate([xi, np.arange(g, dtype=np.int32)])
    mat.value_ = np.concatenate([xv, np.ones(g)])
    values = None
    if start is not None:
        x = np.zeros(m)
        x[start] = 1.0
        y = (coverage_count(a_csc, start) > 0).astype(float)
        values = np.concatenate([x, y])
    return _run_highs(lp, values, time_limit, rel_gap, m)


def highs_lscp(a_csc: sparse.csc_matrix, w: np.ndarray, target: float | None,
               start: list[int] | None, time_limit: float) -> MipResult:
    """min sum_j x_j  s.t. every group covered (``target`` None: sum_j a_ij x_j >= 1), or
    sum w_i y_i >= target with y_i <= sum_j a_ij x_j, 0 <= y <= 1; x binary."""
    import highspy

    g, m = a_csc.shape
    lp = highspy.HighsLp()
    lp.sense_ = highspy.ObjSense.kMinimize
    mat = lp.a_matrix_
    mat.format_ = highspy.MatrixFormat.kColwise
    if target is None:
        xs, xi, xv = _colwise(a_csc, 1.0, None)
        lp.num_col_, lp.num_row_ = m, g
        lp.col_cost_ = np.ones(m)
        lp.col_lower_, lp.col_upper_ = np.zeros(m), np.ones(m)
        lp.row_lower_, lp.row_upper_ = np.ones(g), np.full(g, highspy.kHighsInf)
        lp.integrality_ = [highspy.HighsVarType.kInteger] * m
        mat.num_col_, mat.num_row_ = m, g
        mat.start_, mat.index_, mat.value_ = xs, xi, xv
    else:
        xs, xi, xv = _colwise(a_csc, -1.0, None)
        lp.num_col_, lp.num_row_ = m + g, g + 1
        lp.col_cost_ = np.concatenate([np.ones(m), np.zeros(g)])
        lp.col_lower_, lp.col_upper_ = np.zeros(m + g), np.ones(m + g)
        lp.row_lower_ = np.concatenate([np.full(g, -highspy.kHighsInf), [float(target)]])
        lp.row_upper_ = np.concatenate([np.zeros(g), [highspy.kHighsInf]])
        lp.integrality_ = [highspy.HighsVarType.kInteger] * m + [highspy.HighsVarType.kContinuous] * g
        mat.num_col_, mat.num_row_ = m + g, g + 1
        # y_i column: +1 in its own row and w_i in the target row
        ys = xs[-1] + 2 * np.arange(g + 1)
        yi = np.column_stack([np.arange(g), np.full(g, g)]).ravel()
        yv = np.column_stack([np.ones(g), w.astype(float)]).ravel()
        mat.start_ = np.concatenate([xs, ys[1:]]).astype(np.int32)
        mat.index_ = np.concatenate([xi, yi]).astype(np.int32)
        mat.value_ = np.concatenate([xv, yv])
    values = None
    if start is not None:
        x = np.zeros(m)
        x[start] = 1.0
        values = x if target is None else np.concatenate(
            [x, (coverage_count(a_csc, start) > 0).astype(float)])
    return _run_highs(lp, values, time_limit, 0.0, m)


# --- LSCP heuristics and bounds -------------------------------------------------------------

def greedy_lscp(a_csc: sparse.csc_matrix, w: np.ndarray, target: float) -> list[int]:
    """Columns added by largest newly covered weight until ``target`` is reached (lazy)."""
    covered = np.zeros(a_csc.shape[0], dtype=bool)
    gains = np.asarray(a_csc.T @ w).ravel()
    heap = [(-float(g), j) for j, g in enumerate(gains) if g > 0]
    heapq.heapify(heap)
    chosen: list[int] = []
    value = 0.0
    while heap and value < target - EPS * max(1.0, target):
        _, j = heapq.heappop(heap)
        rows = _rows(a_csc, j)
        fresh = float(w[rows[~covered[rows]]].sum())
        if fresh <= 0:
            continue
        if not heap or (-fresh, j) <= heap[0]:  # fresh beats every (stale, larger) gain left
            chosen.append(j)
            covered[rows] = True
            value += fresh
        else:
            heapq.heappush(heap, (-fresh, j))
    return chosen


def prune_lscp(a_csc: sparse.csc_matrix, w: np.ndarray, target: float, chosen: list[int]) -> list[int]:
    """Drop redundant columns (latest first) while the rest still reach ``target``."""
    chosen = list(chosen)
    cnt = coverage_count(a_csc, chosen)
    value = float(w[cnt > 0].sum())
    for j in list(reversed(chosen)):
        rows = _rows(a_csc, j)
        lost = float(w[rows[cnt[rows] == 1]].sum())
        if value - lost >= target - EPS * max(1.0, target):
            cnt[rows] -= 1
            value -= lost
            chosen.remove(j)
    return chosen


def shrink_lscp(a_csr: sparse.csr_matrix, a_csc: sparse.csc_matrix, w: np.ndarray, target: float,
                chosen: list[int], deadline: float, stop_at: int = 0) -> list[int]:
    """Try one column fewer: the best k - 1 columns by greedy + vertex interchange (the MCLP
    heuristic); keep them while they still reach ``target``, until they do not, ``stop_at``
    (a proved lower bound) is reached or the deadline passes."""
    tol = EPS * max(1.0, target)
    best = list(chosen)
    while len(best) - 1 > stop_at and time.perf_counter() < deadline:
        k = len(best) - 1
        cols, _ = swap_mclp(a_csr, a_csc, w, greedy_mclp(a_csc, w, k), deadline)
        if covered_value(a_csc, w, cols) < target - tol:
            break
        best = prune_lscp(a_csc, w, target, cols)
    return best


def lscp_lower_bound(a_csr: sparse.csr_matrix, a_csc: sparse.csc_matrix, w: np.ndarray, target: float,
                     upper: int, deadline: float) -> int:
    """A number of columns below which ``target`` cannot be reached: k columns cannot when the
    Lagrangian MCLP bound for k is below it. Starts from the trivial bound (the k best single
    columns), tries to prove upper - 1 impossible, then searches below. The subgradient steps
    aim at the greedy value of k columns (a value k columns do reach, so <= the bound)."""
    tol = 1e-7 * max(1.0, target)
    singles = np.sort(np.asarray(a_csc.T @ w).ravel())[::-1]
    reach = np.cumsum(singles)
    lo = int(np.searchsorted(reach, target - tol) + 1)  # fewest k with reach[k-1] >= target
    lo = min(lo, upper)
    if time.perf_counter() >= deadline:  # no time left: the trivial bound, without more work
        return lo
    prefix = np.cumsum(rank_by_gain(a_csc, w, greedy_mclp(a_csc, w, max(upper - 1, 1)))[1])

    def impossible(k: int) -> bool:
        aim = float(prefix[min(k, len(prefix)) - 1]) if len(prefix) else 0.0
        return lagrangian_mclp(a_csr, a_csc, w, k, aim, deadline, max_iter=400,
                               stop_below=target - tol) < target - tol

    if lo >= upper or impossible(upper - 1):
        return upper
    top = upper - 2  # every k < lo is impossible; search the largest k we can prove so
    while lo <= top and time.perf_counter() < deadline:
        k = (lo + top) // 2
        if impossible(k):
            lo = k + 1
        else:
            top = k - 1
    return lo
