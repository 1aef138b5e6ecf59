"""The launch-point planner: the covering optimiser against spopt, and the API on the demo.

1. MCLP ladder up to 10,000 demand x 1,000 candidates, p = 50 (issue 10 target: optimal or a
   certified gap <= 1 % in under 10 s including the model build), each instance also built
   and solved by spopt 0.7.0 (PuLP + CBC, CBC capped at ``ANTT_BENCH_SPOPT_LIMIT`` s, default
   300): times, objectives and their ratios printed side by side.
2. 100,000 demand x 5,000 candidates (a province at 250 m hexagons), greedy + swap with its
   Lagrangian gap (target: under 10 s). spopt is not run there: its dense cost matrix alone
   would be 100,000 x 5,000 float64 = 4 GB.
3. Hải Phòng from the demo (villages as demand): a suggestion round trip through the API and
   the evaluate latency (p50 / p95), in a throwaway cluster.

Instances are seeded: demand clustered like settlements (a mixture of Gaussian blobs over a
square), weights log-normal like village populations, candidates at random demand points and
random points, one radius. Run: ``antt bench run planner`` (``ANTT_BENCH_PLANNER_SKIP=api``
skips part 3, ``=spopt`` skips spopt).
"""

from __future__ import annotations

import os
import statistics
import time
import warnings

import numpy as np

from geo.planner import covering as cv


def instance(n: int, m: int, side_m: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clustered demand (x, y metres), log-normal weights, candidates (half at demand points)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, side_m, (max(4, n // 250), 2))
    spread = rng.uniform(0.005, 0.03, len(centres)) * side_m
    which = rng.integers(0, len(centres), n)
    demand = centres[which] + rng.normal(0, 1, (n, 2)) * spread[which, None]
    demand = np.clip(demand, 0, side_m)
    weight = np.round(rng.lognormal(6.5, 0.8, n))
    half = m // 2
    cands = np.vstack([demand[rng.choice(n, half, replace=False)], rng.uniform(0, side_m, (m - half, 2))])
    return demand, weight, cands


def hex_instance(n: int, m: int, cell_m: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Demand at the centres of ~n hexagons of side ``cell_m`` (a square block of them),
    weights from a clustered intensity field, candidates at random hexagon centres."""
    rng = np.random.default_rng(seed)
    cols = int(np.sqrt(n * 2 / np.sqrt(3)))
    rows = int(np.ceil(n / cols))
    i, j = np.meshgrid(np.arange(cols), np.arange(rows), indexing="ij")
    i, j = i.ravel()[:n], j.ravel()[:n]
    h = cell_m * np.sqrt(3)
    demand = np.column_stack([1.5 * cell_m * i, j * h + np.where(i % 2 == 1, h / 2, 0.0)])
    side = demand.max()
    centres = rng.uniform(0, side, (200, 2))
    d2 = ((demand[:, None, :] - centres[None, :50, :]) ** 2).sum(-1)
    intensity = np.exp(-d2 / (2 * (0.02 * side) ** 2)).sum(1)
    weight = np.round(5 + 400 * intensity * rng.lognormal(0, 0.5, n))
    cands = demand[rng.choice(n, m, replace=False)]
    return demand, weight, cands


def spopt_mclp(demand: np.ndarray, weight: np.ndarray, cands: np.ndarray, radius: float, p: int,
               limit_s: float) -> dict:
    import pulp
    from scipy.spatial.distance import cdist
    from spopt.locate import MCLP

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    t0 = time.perf_counter()
    cost = cdist(demand, cands)
    model = MCLP.from_cost_matrix(cost, weight, radius, p)
    built = time.perf_counter() - t0
    model = model.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=limit_s))
    total = time.perf_counter() - t0
    status = pulp.LpStatus[model.problem.status]
    chosen = [j for j, v in enumerate(model.fac_vars) if v.value() and v.value() > 0.5]
    covered = cv.covered_by(demand, cands[chosen], radius) if chosen else np.zeros(len(demand), bool)
    return {"status": status, "build_s": built, "total_s": total, "objective": float(weight[covered].sum()),
            "sites": len(chosen)}


def optimiser_part(skip_spopt: bool) -> None:
    limit = float(os.environ.get("ANTT_BENCH_SPOPT_LIMIT", 300))
    print("\n1. MCLP, ours (solver='auto', stop at a certified gap of 1 %, time limit 10 s; then gap 0,\n"
          f"   time limit 60 s) vs spopt (PuLP + CBC, CBC limited to {limit:.0f} s) on the same instances")
    for n, m, p, side, radius in [(1_000, 100, 10, 20_000, 1_500.0), (3_000, 300, 20, 30_000, 1_500.0),
                                  (10_000, 1_000, 50, 40_000, 1_500.0)]:
        demand, weight, cands = instance(n, m, side, seed=n)
        print(f"  {n:,} demand x {m:,} candidates, p = {p}, R = {radius:.0f} m")
        sols = []
        for gap, limit_s in ((0.01, 10.0), (0.0, 60.0)):
            sol = cv.mclp(demand, weight, cands, radius, p, solver="auto", time_limit=limit_s, gap=gap)
            sols.append(sol)
            print(f"    ours gap<={gap:.0%}: {sol.time_s:6.2f} s  status {sol.status:<10} objective "
                  f"{sol.covered_weight:,.0f}  bound {sol.bound:,.0f}  gap {sol.gap:.3%}  ({sol.solver}; "
                  f"{', '.join(f'{k} {v:.2f}s' for k, v in sol.phases.items())})")
        red = sols[0].reduction
        print(f"    reduction: {red['demand']:,} demand -> {red['groups']:,} groups, "
              f"{red['candidates']:,} -> {red['candidates_kept']:,} candidates, {red['nonzeros']:,} nonzeros")
        if skip_spopt:
            continue
        theirs = spopt_mclp(demand, weight, cands, radius, p, limit)
        print(f"    spopt:           {theirs['total_s']:6.2f} s  status {theirs['status']:<10} objective "
              f"{theirs['objective']:,.0f}  (model build {theirs['build_s']:.2f} s)")
        for label, sol in zip(("gap<=1%", "gap 0"), sols, strict=True):
            print(f"    ratio ours {label}: spopt time / ours = {theirs['total_s'] / sol.time_s:.1f}x, "
                  f"objective ours / spopt = {sol.covered_weight / theirs['objective']:.5f}")

    print("\n2. 100,000 demand (250 m hexagons) x 5,000 candidates, greedy + swap + Lagrangian bound")
    demand, weight, cands = hex_instance(100_000, 5_000, 250.0, seed=7)
    for p, radius in [(50, 1_500.0), (200, 1_500.0)]:
        sol = cv.mclp(demand, weight, cands, radius, p, solver="greedy", time_limit=10.0)
        print(f"  p={p}, R={radius:.0f} m: {sol.time_s:.2f} s, status {sol.status}, objective "
              f"{sol.objective:,.0f}, bound {sol.bound:,.0f}, gap {sol.gap:.3%} ({sol.message}); "
              f"groups {sol.reduction['groups']:,}, candidates kept {sol.reduction['candidates_kept']:,}, "
              f"nonzeros {sol.reduction['nonzeros']:,}; "
              f"phases {', '.join(f'{k} {v:.2f}s' for k, v in sol.phases.items())}")
    sol = cv.lscp(demand, weight, cands, 1_500.0, share=0.8, solver="greedy", time_limit=10.0)
    print(f"  LSCP 80 % of weight, R=1500 m: {sol.time_s:.2f} s, status {sol.status}, {sol.objective:.0f} "
          f"sites, lower bound {sol.bound:.0f}, gap {sol.gap:.2%}")


def _round_trip(client, body: dict) -> tuple[float, dict]:
    """POST a suggestion and, for a 202, poll the job until its result: wall time and result."""
    t = time.perf_counter()
    r = client.post("/planner/suggest", json=body)
    if r.status_code == 202:
        job = r.json()["id"]
        while True:
            time.sleep(0.05)
            st = client.get(f"/jobs/{job}").json()
            if st["status"] in ("done", "failed", "cancelled"):
                break
        if st["status"] != "done":
            raise RuntimeError(f"job {st['status']}: {st.get('error')}")
        r = client.get(f"/jobs/{job}/result")
    r.raise_for_status()
    return time.perf_counter() - t, r.json()


def api_part() -> None:
    """Hải Phòng + demo in a throwaway cluster (or ANTT_BENCH_DATABASE_URL), the API under
    uvicorn on loopback, a planner account: suggestion round trips and evaluate latency."""
    import httpx

    from bench.bench_tiles import bench_database, free_port, our_server, pct, token_for

    print("\n3. Hải Phòng demo through the API (uvicorn, one worker, loopback)")
    with bench_database(incidents=10_000) as url:
        headers = {"Authorization": f"Bearer {token_for(url, 'planner')}"}
        port = free_port()
        with our_server(url, port), httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers,
                                                 timeout=300) as client:
            base = {"date": "2026-10-31", "radius_m": 500, "weights": {"population": 1, "incidents": 20,
                                                                       "no_model": 2000},
                    "candidates": {"kinds": ["villages", "institutions", "launch_points"]}}
            province = {"scope": {"province": "31"}}
            cases = [("province, villages, p=10, as a job (cold inputs)", {**province, "p": 10}),
                     ("the same again (inputs reused)", {**province, "p": 10}),
                     ("province, villages, p=10, direct", {**province, "p": 10, "run": "direct"}),
                     ("province, p=40", {**province, "p": 40}),
                     ("province, LSCP 95 % of weight", {**province, "problem": "lscp", "share": 0.95}),
                     ("province, 250 m hexagons, p=20 (job)", {**province, "p": 20, "demand": "hexagons"}),
                     ("one commune (10507), p=3, direct",
                      {"scope": {"commune": "10507"}, "p": 3, "radius_m": 300})]
            results = {}
            for label, extra in cases:
                took, out = _round_trip(client, {**base, **extra})
                sol = out["solver"]
                results[label] = out
                print(f"  {label}: {took:.2f} s round trip; {out['inputs']['demand_units']:,} demand units, "
                      f"{out['inputs']['candidates']:,} candidates; solver {sol['solver']} {sol['status']} "
                      f"gap {sol['gap']:.3%} in {sol['time_s']:.2f} s; {sol['objective']:,.0f} "
                      f"({'weight' if sol['problem'] == 'mclp' else 'sites'})")
            out = results["province, villages, p=10, as a job (cold inputs)"]
            sites = [{"lon": f["geometry"]["coordinates"][0], "lat": f["geometry"]["coordinates"][1]}
                     for f in out["features"]]
            body = {**base, "scope": {"province": "31"}, "p": 10}
            rng = np.random.default_rng(1)
            times = []
            for _ in range(40):
                moved = [dict(s) for s in sites]
                k = int(rng.integers(0, len(moved)))
                moved[k]["lon"] += float(rng.normal(0, 0.004))
                moved[k]["lat"] += float(rng.normal(0, 0.004))
                t = time.perf_counter()
                r = client.post("/planner/evaluate", json={**body, "sites": moved})
                times.append(time.perf_counter() - t)
                r.raise_for_status()
            print(f"  evaluate (province, 10 sites, one moved ~400 m): p50 "
                  f"{statistics.median(times) * 1e3:.0f} ms, p95 {pct(times, 0.95) * 1e3:.0f} ms, "
                  f"max {max(times) * 1e3:.0f} ms over {len(times)} calls")
            commune = results["one commune (10507), p=3, direct"]
            csites = [{"lon": f["geometry"]["coordinates"][0] + 0.002, "lat": f["geometry"]["coordinates"][1]}
                      for f in commune["features"]]
            cbody = {**base, "scope": {"commune": "10507"}, "p": 3, "radius_m": 300}
            ctimes = []
            for _ in range(40):
                t = time.perf_counter()
                client.post("/planner/evaluate", json={**cbody, "sites": csites}).raise_for_status()
                ctimes.append(time.perf_counter() - t)
            print(f"  evaluate (one commune, 3 sites): p50 {statistics.median(ctimes) * 1e3:.0f} ms, "
                  f"p95 {pct(ctimes, 0.95) * 1e3:.0f} ms")


def main() -> None:
    skip = set(os.environ.get("ANTT_BENCH_PLANNER_SKIP", "").split(","))
    print(f"load average at start: {os.getloadavg()}")
    optimiser_part("spopt" in skip)
    if "api" not in skip:
        api_part()
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
