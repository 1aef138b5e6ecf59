"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from antt import __version__
from antt.db import check_postgis, get_engine


def create_app() -> FastAPI:
    app = FastAPI(
        title="antt-map",
        version=__version__,
        description="Bản đồ phong trào toàn dân bảo vệ ANTQ / ANTQ movement map API",
    )

    @app.get("/healthz", tags=["system"], summary="Tình trạng / health")
    def healthz() -> dict[str, object]:
        versions = check_postgis(get_engine())
        return {"status": "ok", **versions}

    return app
