"""The FastAPI application factory: routers are mounted here and nowhere else."""

from __future__ import annotations

import importlib

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware

from antt import __version__
from api import health, problems
from api.admission import AdmissionLimit
from api.readroute import ReadYourWrites

# Router modules, each exposing `router` (an APIRouter) or `make_router()` (a router factory).
ROUTERS = (
    "api.auth",
    "api.features",
    "api.tiles",
    "api.search",
    "api.editing",
    "api.incidents",
    "api.analytics",
    "api.units",
    "api.audit",
    "api.exports",
    "api.planner",
    "api.targets",
    "api.reviews",
    "api.events",
    "api.templates",
    "api.reports",
    "api.jobs",
    "api.web",  # the map page at / and its static assets: last, it owns the root path
)


def create_app() -> FastAPI:
    app = FastAPI(
        title="antt-map",
        version=__version__,
        description="Bản đồ phong trào toàn dân bảo vệ ANTQ / ANTQ movement map API",
    )
    problems.install(app)
    # compresslevel 1: level 9 (the default) took 1.6 s on the 2 MB commune layer; 1 is 13x faster, +20% bytes
    app.add_middleware(ReadYourWrites)  # api/readroute.py: X-Antt-LSN, retry of a lost replica
    app.add_middleware(GZipMiddleware, minimum_size=1000, compresslevel=1)  # GeoJSON/JS over gzip
    app.add_middleware(AdmissionLimit)  # outermost: see api/admission.py (pool/threadpool deadlock)
    app.include_router(health.router)

    for name in ROUTERS:
        module = importlib.import_module(name)
        router = module.make_router() if hasattr(module, "make_router") else module.router
        app.include_router(router)
    return app
