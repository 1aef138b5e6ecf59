"""Map page benchmark: time to draw and bytes transferred, measured in headless Chromium.

Setup: a throwaway PostGIS cluster, the real Hải Phòng 2025 communes (114), the demo data
(``data.demo.build_haiphong_demo``: ~1,000 villages, ~10,000 incidents), the real server under
uvicorn with gzip. Each run opens the page in a fresh browser context (cold cache) as admin with
communes, villages, models, launch points, incident hexagons and the KDE heatmap on, and reads
the page's own performance mark ``antt-layers-loaded`` (all layers finished loading).

Peers: the budget (2 s, 2 MB compressed) and the same transfer without compression (what the
page would cost without GZipMiddleware).
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path

RUNS = 5
BUDGET_S = 2.0
BUDGET_BYTES = 2 * 1024 * 1024
# The page's default view (incidents as heat on the SQL hexagon grid), and the same view with the
# server-side KDE heatmap PNG added.
DEFAULT_LAYERS = "provinces,communes,villages,models,launch_points,incident_hexagons"
KDE_LAYERS = DEFAULT_LAYERS + ",heatmap"
CHROMIUM = "/usr/bin/chromium"


def _prepare_database() -> tuple[object, str]:
    from sqlalchemy import create_engine, text

    from antt.cluster import EmbeddedCluster
    from antt.db import make_engine
    from antt.migrate import upgrade
    from data.boundaries import sources
    from data.boundaries.load import load_2025
    from data.demo import build_haiphong_demo

    home = Path(tempfile.mkdtemp(prefix="antt-bench-web-"))
    cluster = EmbeddedCluster(home=home, fast=True, dbname="postgres")
    admin_url = cluster.up()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE bench_web"))
    admin.dispose()
    url = cluster.url("bench_web")
    upgrade(url)
    eng = make_engine(url)
    load_2025(eng, sources.path_of(sources.COMMUNES_2025_HAIPHONG), province_code="31")
    eng.dispose()
    t0 = time.perf_counter()
    build_haiphong_demo(url)
    print(f"demo built in {time.perf_counter() - t0:.1f} s")
    eng = make_engine(url)
    with eng.begin() as conn:
        counts = {k: conn.execute(text(q)).scalar_one() for k, q in {
            "communes": "SELECT count(*) FROM admin_unit WHERE level='commune'",
            "villages": "SELECT count(*) FROM admin_unit WHERE level='village'",
            "models": "SELECT count(*) FROM security_model",
            "incidents": "SELECT count(*) FROM incident"}.items()}
        from antt.accounts import create_user

        create_user(conn, "bench_admin", "bench-pass", "admin", replace=True)
    eng.dispose()
    print("data: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return cluster, url


def _serve(url: str) -> tuple[object, threading.Thread, str]:
    import os
    import socket

    import uvicorn

    from antt import db, settings

    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("ANTT_SECRET_KEY", "bench-web-secret-key-0123456789-0123456789-abcdef")
    settings.get_settings.cache_clear()
    db.get_engine.cache_clear()
    from api.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def _measure(browser, base: str, gzip: bool, layers: str = DEFAULT_LAYERS) -> dict[str, object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900},
                                  extra_http_headers={} if gzip else {"Accept-Encoding": "identity"})
    r = context.request.post(f"{base}/auth/token", form={"username": "bench_admin",
                                                          "password": "bench-pass"})
    assert r.ok, r.text()
    page = context.new_page()
    finished: list = []
    errors: list[str] = []
    page.on("requestfinished", lambda req: finished.append(req))
    page.on("response", lambda resp: errors.append(f"{resp.status} {resp.url}")
            if resp.status >= 400 else None)
    page.goto(f"{base}/#c=20.86,106.62&z=10&l={layers}")
    page.wait_for_function("document.body.dataset.ready === '1'", timeout=60_000)
    ready_ms = page.evaluate("window.__anttReady")
    page.wait_for_load_state("networkidle")
    slowest = page.evaluate("""performance.getEntriesByType('resource')
        .map(e => [Math.round(e.duration), e.name.replace(location.origin, '')])
        .sort((a, b) => b[0] - a[0]).slice(0, 4)""")
    transferred = 0
    for req in finished:
        sizes = req.sizes()
        transferred += sizes["responseBodySize"] + sizes["responseHeadersSize"]
    context.close()
    return {"ready_s": ready_ms / 1000, "bytes": transferred, "requests": len(finished),
            "errors": errors, "slowest": slowest}


def main() -> None:
    from playwright.sync_api import sync_playwright

    cluster, url = _prepare_database()
    server, thread, base = _serve(url)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM,
                                        args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
            _measure(browser, base, gzip=True)  # warm the server (plans, caches), not the browser
            runs = [_measure(browser, base, gzip=True) for _ in range(RUNS)]
            plain = _measure(browser, base, gzip=False)
            kde = [_measure(browser, base, gzip=True, layers=KDE_LAYERS) for _ in range(2)]
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        from antt.db import get_engine

        get_engine().dispose()
        cluster.destroy()
    ready = [r["ready_s"] for r in runs]
    size = statistics.median(r["bytes"] for r in runs)
    med = statistics.median(ready)
    print(f"map drawn (all layers loaded), cold browser cache, {RUNS} runs: median {med:.2f} s, "
          f"min {min(ready):.2f} s, max {max(ready):.2f} s; ratio to the 2 s budget {med / BUDGET_S:.2f}")
    print(f"transferred with gzip: {size / 1024:.0f} KB in {runs[0]['requests']} requests; "
          f"ratio to the 2 MB budget {size / BUDGET_BYTES:.2f}")
    print(f"transferred without gzip (peer): {plain['bytes'] / 1024:.0f} KB, drawn in "
          f"{plain['ready_s']:.2f} s; gzip saves {1 - size / max(plain['bytes'], 1):.0%}")
    median_run = sorted(runs, key=lambda r: r["ready_s"])[len(runs) // 2]
    print("slowest requests in the median run (ms): "
          + "; ".join(f"{ms} {url[:70]}" for ms, url in median_run["slowest"]))
    kde_ready = statistics.median(r["ready_s"] for r in kde)
    print(f"with the KDE heatmap PNG added: drawn in {kde_ready:.2f} s (median of {len(kde)}), "
          f"{statistics.median(r['bytes'] for r in kde) / 1024:.0f} KB; slowest: "
          + "; ".join(f"{ms} {url[:60]}" for ms, url in kde[0]["slowest"][:2]))
    if runs[0]["errors"]:
        print("failed requests: " + "; ".join(runs[0]["errors"][:10]))
    print(f"within budget: time {'yes' if med < BUDGET_S else 'NO'}, "
          f"size {'yes' if size < BUDGET_BYTES else 'NO'}")


if __name__ == "__main__":
    main()
